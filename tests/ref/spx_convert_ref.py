#!/usr/bin/env python3
"""Independent reference checks for `spx convert` (standard library + NumPy only).

Reads .spx files by the byte layout of specs/spx-format.md (header + 192-byte tensor records),
safetensors by their JSON header, and llama2.c .bin files with NumPy, and compares tensor data
bit for bit. The llama2.c rotary permutation is restated here with NumPy reshapes (an independent
formulation of the row permutation in convert/spx_archmap.c).

  spx_convert_ref.py same-data A.spx B.spx           tensors (names, dtypes, dims, bytes) equal
  spx_convert_ref.py vs-safetensors OUT.spx FILE     every tensor equals its HF source, and every
                                                     HF tensor is used (lm_head only when untied)
  spx_convert_ref.py vs-llama2c OUT.spx MODEL.bin    every tensor equals the permuted llama2.c array
Exit 0 when equal, 1 with a message otherwise.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {0: "F32", 1: "F16", 2: "BF16", 3: "I32", 4: "U8"}


def read_spx(path):
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:8] != b"\x89SPX\r\n\x1a\n":
        raise SystemExit(f"{path}: not a .spx file")
    count, = struct.unpack_from("<I", buf, 44)
    table, = struct.unpack_from("<Q", buf, 48)
    out = []
    for i in range(count):
        r = table + 192 * i
        name = buf[r:r + 96].split(b"\0", 1)[0].decode()
        dtype, enc, ndim = buf[r + 96], buf[r + 97], buf[r + 98]
        dims = struct.unpack_from("<4Q", buf, r + 104)[:ndim]
        off, size = struct.unpack_from("<QQ", buf, r + 136)
        out.append((name, DTYPES.get(dtype, "?"), enc, tuple(dims), buf[off:off + size]))
    return out


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    n, = struct.unpack_from("<Q", buf, 0)
    hdr = json.loads(buf[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = (v["dtype"], tuple(v["shape"]), buf[base + b:base + e])
    return out


def hf_name(canon):
    """Canonical name -> Hugging Face Llama name (restated independently of spx_archmap.c)."""
    glob = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
            "output.weight": "lm_head.weight"}
    if canon in glob:
        return glob[canon]
    _, layer, base, sfx = canon.split(".")
    sub = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
           "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
           "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
           "ffn_down": "mlp.down_proj"}[base]
    return f"model.layers.{layer}.{sub}.{sfx}"


def same_data(a, b):
    ta, tb = read_spx(a), read_spx(b)
    if len(ta) != len(tb):
        return f"{len(ta)} vs {len(tb)} tensors"
    for x, y in zip(ta, tb):
        if x != y:
            return f"tensor {x[0]} ({x[1]} {x[3]}) differs from {y[0]} ({y[1]} {y[3]})"
    return None


def vs_safetensors(spx, st):
    src = read_safetensors(st)
    used = set()
    for name, dt, enc, dims, data in read_spx(spx):
        h = hf_name(name)
        if h not in src:
            return f"{name}: no {h} in {st}"
        sdt, shape, sdata = src[h]
        used.add(h)
        if enc != 0 or dt != sdt or dims != shape or data != sdata:
            return f"{name} differs from {h} ({dt} {dims} vs {sdt} {shape})"
    rest = set(src) - used - {"lm_head.weight"}
    if rest:
        return f"source tensors not converted: {sorted(rest)}"
    return None


def vs_llama2c(spx, path):
    raw = np.fromfile(path, dtype="<f4")
    dim, hid, L, nh, nkv, vocab, seq = np.frombuffer(raw[:7].tobytes(), dtype="<i4").tolist()
    hs = dim // nh
    kv = hs * nkv
    pos = 7
    arrays = {}
    for name, shape in [("emb", (abs(vocab), dim)), ("rms_att", (L, dim)), ("wq", (L, dim, dim)),
                        ("wk", (L, kv, dim)), ("wv", (L, kv, dim)), ("wo", (L, dim, dim)),
                        ("rms_ffn", (L, dim)), ("w1", (L, hid, dim)), ("w2", (L, dim, hid)),
                        ("w3", (L, hid, dim)), ("rms_final", (dim,)), ("freq_real", (seq, hs // 2)),
                        ("freq_imag", (seq, hs // 2))] + ([("wcls", (-vocab, dim))] if vocab < 0 else []):
        n = int(np.prod(shape))
        arrays[name] = raw[pos:pos + n].reshape(shape)
        pos += n
    if pos != raw.size:
        return f"{path}: size mismatch"

    def unrope(w):
        # rows (h, j, pair) -> (h, pair, j): even rows of each head first, then odd rows
        rows, cols = w.shape
        return w.reshape(rows // hs, hs // 2, 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)

    want = {"token_embd.weight": arrays["emb"], "output_norm.weight": arrays["rms_final"]}
    if vocab < 0:
        want["output.weight"] = arrays["wcls"]
    for l in range(L):
        for base, arr in [("attn_norm", arrays["rms_att"][l]), ("attn_q", unrope(arrays["wq"][l])),
                          ("attn_k", unrope(arrays["wk"][l])), ("attn_v", arrays["wv"][l]),
                          ("attn_output", arrays["wo"][l]), ("ffn_norm", arrays["rms_ffn"][l]),
                          ("ffn_gate", arrays["w1"][l]), ("ffn_down", arrays["w2"][l]), ("ffn_up", arrays["w3"][l])]:
            want[f"blk.{l}.{base}.weight"] = arr
    got = read_spx(spx)
    if len(got) != len(want):
        return f"{len(got)} tensors, want {len(want)}"
    for name, dt, enc, dims, data in got:
        w = want.get(name)
        if w is None or dt != "F32" or enc != 0 or dims != w.shape or data != np.ascontiguousarray(w).tobytes():
            return f"{name} differs from the llama2.c array"
    return None


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("same-data", "vs-safetensors", "vs-llama2c"):
        print(__doc__, file=sys.stderr)
        return 2
    fn = {"same-data": same_data, "vs-safetensors": vs_safetensors, "vs-llama2c": vs_llama2c}[sys.argv[1]]
    err = fn(sys.argv[2], sys.argv[3])
    if err:
        print(f"{sys.argv[1]}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
