#!/usr/bin/env python3
"""make_gguf.py: an independent GGUF v3 writer (standard library + NumPy), written from the GGUF
specification (ggml docs/gguf.md), for testing `spx convert MODEL.gguf`.

  make_gguf.py model --out M.gguf --hf-dir DIR [--seed N] [--alignment A] [--tied]
      A random llama model (dim 64, ffn 96, 2 layers, 4 heads, 2 kv heads, vocab 96) stored with
      mixed tensor types: Q8_0 (blocks of 32: f16 scale d = max|x|/127, int8 q = round(x/d); the
      value is d*q), F16, BF16 (round to nearest even) and F32. attn_q/attn_k are permuted as
      llama.cpp's converter does (rows of each head reordered to interleaved rotary pairs:
      reshape(n_head, 2, hd/2, in).swapaxes(1, 2)). A llama tokenizer (tokens, scores,
      token_type, bos/eos) is included. DIR receives the reference: config.json and an F32
      model.safetensors with the DEQUANTIZED values in Hugging Face order (the permutation
      undone with NumPy), so tests/ref/llama_ref.py gives the logits the GGUF file encodes.
  make_gguf.py invalid --dir D
      One malformed file per rule, named <rule>.gguf, and D/expected.txt with lines
      "<rule> <SPX_E_NAME>" (the error spx must report).
  make_gguf.py read F.gguf
      Print metadata keys and tensor infos (a reader cross-check of spx-written GGUF files) as
      JSON: {"version", "alignment", "kv": {key: value}, "tensors": [{name, type, ne, offset}],
      "data": {name: base64 of the bytes}}. Exits 1 on any layout violation it notices.
"""
import argparse
import base64
import json
import os
import struct
import sys

import numpy as np

# value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<B",
          U64: "<Q", I64: "<q", F64: "<d"}
# ggml types
T_F32, T_F16, T_Q8_0, T_BF16 = 0, 1, 8, 30


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, value, elem=None):
    out = gstr(key) + struct.pack("<I", vtype)
    if vtype == STR:
        return out + gstr(value)
    if vtype == ARR:
        out += struct.pack("<IQ", elem, len(value))
        if elem == STR:
            return out + b"".join(gstr(v) for v in value)
        return out + b"".join(struct.pack(SCALAR[elem], v) for v in value)
    return out + struct.pack(SCALAR[vtype], value)


def to_bf16_bits(x):
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def encode(w, ttype):
    """w: float64 [rows, cols] (or [n]) -> (bytes, dequantized float64 array)."""
    w = np.asarray(w, np.float64)
    if ttype == T_F32:
        a = w.astype("<f4")
        return a.tobytes(), a.astype(np.float64)
    if ttype == T_F16:
        a = w.astype("<f2")
        return a.tobytes(), a.astype(np.float64)
    if ttype == T_BF16:
        b = to_bf16_bits(w.astype(np.float32))
        deq = (b.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        return b.astype("<u2").tobytes(), deq
    assert ttype == T_Q8_0 and w.shape[-1] % 32 == 0
    blocks = w.reshape(-1, 32)
    amax = np.abs(blocks).max(axis=1)
    d = (amax / 127.0).astype(np.float16)
    d32 = d.astype(np.float32)
    inv = np.where(d32 > 0, 1.0 / np.where(d32 > 0, d32, 1), 0.0)
    q = np.clip(np.rint(blocks * inv[:, None]), -127, 127).astype(np.int8)
    raw = b"".join(d[i:i + 1].astype("<f2").tobytes() + q[i].tobytes() for i in range(len(q)))
    deq = (d32[:, None] * q.astype(np.float32)).astype(np.float64).reshape(w.shape)
    return raw, deq


def permute(w, n_head):
    """llama.cpp convert: HF rotate_half rows -> interleaved rotary pairs, per head."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def build(kvs, tensors, alignment=32, version=3):
    """kvs: list of kv() bytes; tensors: list of (name, ne list, ggml type, data bytes)."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    infos, data, off = b"", b"", 0
    for name, ne, ttype, raw in tensors:
        infos += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        infos += struct.pack("<IQ", ttype, off)
        pad = (-len(raw)) % alignment
        data += raw + b"\0" * pad
        off += len(raw) + pad
    body = head + infos
    return body + b"\0" * ((-len(body)) % alignment) + data


def tokenizer_kvs(vocab):
    toks = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % i for i in range(16)] + ["\u2581"] + list("abcdefghijklmnop")
    i = 0
    while len(toks) < vocab:
        toks.append("\u2581" + "abcdefghijklmnop"[i % 16] * (1 + i // 16))
        i += 1
    types = [2, 3, 3] + [6] * 16 + [1] * (vocab - 19)   # unknown, control, byte, normal
    return [kv("tokenizer.ggml.model", STR, "llama"),
            kv("tokenizer.ggml.tokens", ARR, toks, STR),
            kv("tokenizer.ggml.scores", ARR, [-float(i) for i in range(vocab)], F32),
            kv("tokenizer.ggml.token_type", ARR, types, I32),
            kv("tokenizer.ggml.bos_token_id", U32, 1),
            kv("tokenizer.ggml.eos_token_id", U32, 2)]


def write_safetensors(path, arrays):
    header, off, blobs = {}, 0, []
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make_model(args):
    rng = np.random.default_rng(args.seed)
    dim, ffn, L, nh, nkv, vocab = 64, 96, 2, 4, 2, 96
    hd = dim // nh
    eps, theta = 1e-5, 10000.0
    kvs = [kv("general.architecture", STR, "llama"), kv("general.name", STR, "gguf-ref"),
           kv("llama.context_length", U32, 128), kv("llama.embedding_length", U32, dim),
           kv("llama.feed_forward_length", U32, ffn), kv("llama.block_count", U32, L),
           kv("llama.attention.head_count", U32, nh), kv("llama.attention.head_count_kv", U32, nkv),
           kv("llama.rope.dimension_count", U32, hd), kv("llama.rope.freq_base", F32, theta),
           kv("llama.attention.layer_norm_rms_epsilon", F32, eps), kv("general.file_type", U32, 7),
           kv("general.quantization_version", U32, 2)]
    if args.alignment != 32:
        kvs.append(kv("general.alignment", U32, args.alignment))
    kvs += tokenizer_kvs(vocab)
    tensors, hf = [], {}

    def add(gname, hfname, w, ttype, perm_heads=0):
        stored = permute(w, perm_heads) if perm_heads else w
        raw, deq = encode(stored, ttype)
        tensors.append((gname, list(reversed(w.shape)), ttype, raw))
        hf[hfname] = unpermute(deq, perm_heads) if perm_heads and not args.ref_no_unpermute else deq

    def mat(r, c, s=0.2):
        return rng.standard_normal((r, c)) * s

    add("token_embd.weight", "model.embed_tokens.weight", mat(vocab, dim, 1.0), T_Q8_0)
    for i in range(L):
        p, b = "blk.%d." % i, "model.layers.%d." % i
        add(p + "attn_norm.weight", b + "input_layernorm.weight", 1 + 0.1 * rng.standard_normal(dim), T_F32)
        add(p + "attn_q.weight", b + "self_attn.q_proj.weight", mat(nh * hd, dim), T_F16 if i == 0 else T_Q8_0, nh)
        add(p + "attn_k.weight", b + "self_attn.k_proj.weight", mat(nkv * hd, dim), T_Q8_0 if i == 0 else T_BF16, nkv)
        add(p + "attn_v.weight", b + "self_attn.v_proj.weight", mat(nkv * hd, dim), T_BF16)
        add(p + "attn_output.weight", b + "self_attn.o_proj.weight", mat(dim, nh * hd), T_F32)
        add(p + "ffn_norm.weight", b + "post_attention_layernorm.weight", 1 + 0.1 * rng.standard_normal(dim), T_F32)
        add(p + "ffn_gate.weight", b + "mlp.gate_proj.weight", mat(ffn, dim), T_Q8_0)
        add(p + "ffn_up.weight", b + "mlp.up_proj.weight", mat(ffn, dim), T_F16)
        add(p + "ffn_down.weight", b + "mlp.down_proj.weight", mat(dim, ffn), T_Q8_0)
    add("output_norm.weight", "model.norm.weight", 1 + 0.1 * rng.standard_normal(dim), T_F32)
    if not args.tied:
        add("output.weight", "lm_head.weight", mat(vocab, dim), T_Q8_0)
    with open(args.out, "wb") as f:
        f.write(build(kvs, tensors, args.alignment))
    os.makedirs(args.hf_dir, exist_ok=True)
    write_safetensors(os.path.join(args.hf_dir, "model.safetensors"), hf)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": dim,
           "intermediate_size": ffn, "num_hidden_layers": L, "num_attention_heads": nh,
           "num_key_value_heads": nkv, "vocab_size": vocab, "max_position_embeddings": 128,
           "rms_norm_eps": eps, "rope_theta": theta, "hidden_act": "silu",
           "tie_word_embeddings": bool(args.tied), "bos_token_id": 1, "eos_token_id": 2}
    with open(os.path.join(args.hf_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)


def tiny_llama(drop=None, drop_t=None, extra=(), extra_t=(), shape=None, tokens=8, nan=None):
    """dim 32, ffn 32, 1 block, 2 heads of 16, vocab 8, F32; untied; ffn_up has a bias only if asked."""
    keys = {"llama.embedding_length": 32, "llama.feed_forward_length": 32, "llama.block_count": 1,
            "llama.attention.head_count": 2, "llama.context_length": 64}
    kvs = [kv("general.architecture", STR, "llama")] + [kv(k, U32, v) for k, v in keys.items() if k != drop]
    kvs += list(extra) + [kv("tokenizer.ggml.model", STR, "llama"),
                          kv("tokenizer.ggml.tokens", ARR, ["t%d" % i for i in range(tokens)], STR)]
    shapes = {"token_embd.weight": [32, 8], "output_norm.weight": [32], "output.weight": [32, 8]}
    for n, sh in [("attn_norm", [32]), ("attn_q", [32, 32]), ("attn_k", [32, 32]), ("attn_v", [32, 32]),
                  ("attn_output", [32, 32]), ("ffn_norm", [32]), ("ffn_gate", [32, 32]), ("ffn_up", [32, 32]),
                  ("ffn_down", [32, 32])]:
        shapes["blk.0.%s.weight" % n] = sh
    shapes.update(shape or {})
    tensors = []
    for name, ne in list(shapes.items()) + list(extra_t):
        if name == drop_t:
            continue
        a = np.full(int(np.prod(ne)), 0.01, "<f4")
        if name == nan:
            a[5] = np.nan
        tensors.append((name, ne, T_F32, a.tobytes()))
    return build(kvs, tensors)


def make_invalid(args):
    """One file per rule; each differs from a small valid file in one respect."""
    os.makedirs(args.dir, exist_ok=True)
    base_kv = [kv("general.architecture", STR, "llama")]
    f32 = np.arange(8, dtype="<f4").tobytes()
    one = [("w", [8], T_F32, f32)]
    good = build(base_kv, one)
    cases = {}
    cases["empty"] = (b"", "SPX_E_TRUNCATED")
    cases["bad_magic"] = (b"GGUG" + good[4:], "SPX_E_BAD_MAGIC")
    cases["bad_version"] = (build(base_kv, one, version=4), "SPX_E_VERSION")
    cases["version1"] = (build(base_kv, one, version=1), "SPX_E_VERSION")
    cases["byteswapped"] = (good[:4] + struct.pack(">I", 3) + good[8:], "SPX_E_BYTESWAPPED")
    cases["truncated_header"] = (good[:20], "SPX_E_TRUNCATED")
    cases["truncated_kv"] = (good[:40], "SPX_E_TRUNCATED")
    cases["truncated_data"] = (good[:-8], "SPX_E_TRUNCATED")
    cases["n_tensors_huge"] = (good[:8] + struct.pack("<Q", 1 << 60) + good[16:], "SPX_E_GGUF")
    cases["n_kv_huge"] = (good[:16] + struct.pack("<Q", (1 << 64) - 1) + good[24:], "SPX_E_GGUF")
    cases["string_len_huge"] = (good[:24] + struct.pack("<Q", (1 << 64) - 2) + good[32:], "SPX_E_TRUNCATED")
    cases["array_len_huge"] = (build([kv("a", ARR, [1], U32)[:-12] + struct.pack("<Q", 1 << 62)], []),
                               "SPX_E_OVERFLOW")
    cases["dup_key"] = (build(base_kv + base_kv, one), "SPX_E_DUP_KEY")
    cases["dup_tensor"] = (build(base_kv, one + one), "SPX_E_DUP_NAME")
    cases["bad_alignment"] = (build(base_kv + [kv("general.alignment", U32, 24)], one), "SPX_E_ALIGN")
    cases["alignment_type"] = (build(base_kv + [kv("general.alignment", U64, 32)], one), "SPX_E_ALIGN")
    mis = bytearray(good)
    off_at = good.index(b"w") + 1 + 4 + 8 + 4   # name, n_dims, ne[0], type -> offset field
    mis[off_at:off_at + 8] = struct.pack("<Q", 4)
    cases["misaligned_offset"] = (bytes(mis), "SPX_E_ALIGN")
    oob = bytearray(good)
    oob[off_at:off_at + 8] = struct.pack("<Q", 1 << 20)
    cases["offset_out_of_range"] = (bytes(oob), "SPX_E_TRUNCATED")
    cases["overlap"] = (build(base_kv, [("a", [8], T_F32, f32), ("b", [8], T_F32, f32)]).replace(
        struct.pack("<IQ", T_F32, 32), struct.pack("<IQ", T_F32, 0)), "SPX_E_OVERLAP")
    cases["n_dims_5"] = (build(base_kv, [("w", [2, 2, 2, 1, 1], T_F32, f32)]), "SPX_E_DIMS")
    cases["dim_zero"] = (build(base_kv, [("w", [8, 0], T_F32, b"")]), "SPX_E_DIMS")
    cases["dims_overflow"] = (build(base_kv, [("w", [1 << 32, 1 << 32, 1 << 8], T_F32, b"")]), "SPX_E_OVERFLOW")
    cases["unknown_type"] = (build(base_kv, [("w", [8], 99, f32)]), "SPX_E_GGUF")
    cases["unsupported_type"] = (build(base_kv, [("w", [256], 12, b"\0" * 144)]), "SPX_E_UNSUPPORTED")
    cases["q8_0_row"] = (build(base_kv, [("w", [16], T_Q8_0, b"\0" * 34)]), "SPX_E_SHAPE")
    cases["bad_bool"] = (build(base_kv + [kv("b", BOOL, 2)], one), "SPX_E_GGUF")
    cases["bad_value_type"] = (build(base_kv + [gstr("x") + struct.pack("<IB", 13, 0)], one), "SPX_E_GGUF")
    cases["nested_array"] = (build(base_kv + [gstr("x") + struct.pack("<IIQ", ARR, ARR, 0)], one), "SPX_E_UNSUPPORTED")
    cases["empty_key"] = (build(base_kv + [kv("", U32, 1)], one), "SPX_E_GGUF")
    cases["long_name"] = (build(base_kv, [("n" * 64, [8], T_F32, f32)]), "SPX_E_NAME")
    cases["trailing"] = (good + b"\0" * 64, "SPX_E_TRAILING")
    cases["not_llama"] = (build([kv("general.architecture", STR, "gpt2")], one), "SPX_E_UNSUPPORTED")
    cases["spx_magic"] = (b"\x89SPX\r\n\x1a\n" + b"\0" * 120, "SPX_E_BAD_MAGIC")
    # valid GGUF files whose llama model is inconsistent (checked by the import, not the parser)
    cases["model_ok"] = (tiny_llama(), "OK")
    cases["model_no_dim"] = (tiny_llama(drop="llama.embedding_length"), "SPX_E_MISSING")
    cases["model_no_embd"] = (tiny_llama(drop_t="token_embd.weight"), "SPX_E_MISSING")
    cases["model_no_down"] = (tiny_llama(drop_t="blk.0.ffn_down.weight"), "SPX_E_MISSING")
    cases["model_moe"] = (tiny_llama(extra=[kv("llama.expert_count", U32, 4)]), "SPX_E_UNSUPPORTED")
    cases["model_yarn"] = (tiny_llama(extra=[kv("llama.rope.scaling.type", STR, "yarn")]), "SPX_E_UNSUPPORTED")
    cases["model_partial_rope"] = (tiny_llama(extra=[kv("llama.rope.dimension_count", U32, 8)]), "SPX_E_UNSUPPORTED")
    cases["model_heads"] = (tiny_llama(extra=[kv("llama.attention.head_count_kv", U32, 3)]), "SPX_E_CONFIG")
    cases["model_rope_freqs"] = (tiny_llama(extra_t=[("rope_freqs.weight", [8])]), "SPX_E_UNSUPPORTED")
    cases["model_extra_block"] = (tiny_llama(extra_t=[("blk.1.attn_norm.weight", [32])]), "SPX_E_CONFIG")
    cases["model_partial_bias"] = (tiny_llama(extra_t=[("blk.0.ffn_up.bias", [32])]), "SPX_E_MISSING")
    cases["model_shape"] = (tiny_llama(shape={"blk.0.ffn_up.weight": [32, 48]}), "SPX_E_SHAPE")
    cases["model_vocab_key"] = (tiny_llama(extra=[kv("llama.vocab_size", U32, 9)]), "SPX_E_CONFIG")
    cases["model_tokens"] = (tiny_llama(tokens=7), "SPX_E_TOKENIZER")
    cases["model_key_type"] = (tiny_llama(extra=[kv("llama.context_length", STR, "x")], drop="llama.context_length"),
                               "SPX_E_GGUF")
    cases["model_nan"] = (tiny_llama(nan="blk.0.attn_k.weight"), "SPX_E_NUMERIC")
    with open(os.path.join(args.dir, "expected.txt"), "w") as ex:
        for name, (data, code) in cases.items():
            with open(os.path.join(args.dir, name + ".gguf"), "wb") as f:
                f.write(data)
            ex.write("%s %s\n" % (name, code))


def read(args):
    b = open(args.file, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, b, pos)
        pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def rstr():
        n = take("<Q")
        nonlocal pos
        s = b[pos:pos + n]
        pos += n
        return s.decode()

    def value(t):
        if t == STR:
            return rstr()
        if t == ARR:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        return take(SCALAR[t])

    assert b[:4] == b"GGUF", "magic"
    pos = 4
    version, nt, nkv = take("<IQQ")
    out = {"version": version, "kv": {}, "tensors": [], "data": {}}
    for _ in range(nkv):
        k = rstr()
        assert k not in out["kv"], "duplicate key " + k
        out["kv"][k] = value(take("<I"))
    align = out["kv"].get("general.alignment", 32)
    out["alignment"] = align
    for _ in range(nt):
        name = rstr()
        nd = take("<I")
        ne = [take("<Q") for _ in range(nd)]
        t, off = take("<IQ")
        assert off % align == 0, "misaligned " + name
        out["tensors"].append({"name": name, "type": t, "ne": ne, "offset": off})
    data = pos + (-pos) % align
    assert all(x == 0 for x in b[pos:data]), "nonzero padding"
    for t in out["tensors"]:
        n = int(np.prod(t["ne"]))
        size = {T_F32: 4 * n, T_F16: 2 * n, T_BF16: 2 * n, T_Q8_0: n // 32 * 34}[t["type"]]
        start = data + t["offset"]
        assert start + size <= len(b), "tensor past EOF " + t["name"]
        out["data"][t["name"]] = base64.b64encode(b[start:start + size]).decode()
    json.dump(out, sys.stdout)


def parse_gguf(path):
    """(kv dict, {name: (type, ne, raw bytes)}) with the layout checks of `read`."""
    b = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from(fmt, b, pos)
        pos += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def rstr():
        nonlocal pos
        n = take("<Q")
        pos += n
        return b[pos - n:pos].decode()

    def value(t):
        if t == STR:
            return rstr()
        if t == ARR:
            et, n = take("<I"), take("<Q")
            return [value(et) for _ in range(n)]
        return take(SCALAR[t])

    assert b[:4] == b"GGUF"
    pos = 4
    version, nt, nkv = take("<IQQ")
    assert version == 3, version
    kvs = {}
    for _ in range(nkv):
        k = rstr()
        kvs[k] = value(take("<I"))
    align = kvs.get("general.alignment", 32)
    infos = []
    for _ in range(nt):
        name = rstr()
        ne = [take("<Q") for _ in range(take("<I"))]
        infos.append((name, ne) + take("<IQ"))
    data = pos + (-pos) % align
    out = {}
    for name, ne, t, off in infos:
        n = int(np.prod(ne))
        size = {T_F32: 4 * n, T_F16: 2 * n, T_BF16: 2 * n, T_Q8_0: n // 32 * 34}[t]
        assert off % align == 0 and data + off + size <= len(b), name
        out[name] = (t, ne, b[data + off:data + off + size])
    return kvs, out


HF_OF = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
         "output.weight": "lm_head.weight"}
HF_BLK = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
          "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
          "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def compare_hf(args):
    """An spx-exported GGUF against the Hugging Face checkpoint it came from: same tensor set,
    ne = reversed HF shape, q/k permuted as llama.cpp's converter does, bytes identical (keep) or
    equal to NumPy's f16 rounding for matrices (--round f16; vectors stay F32)."""
    cfg = json.load(open(args.config))
    kvs, tensors = parse_gguf(args.file)
    b = open(args.safetensors, "rb").read()
    n = struct.unpack_from("<Q", b)[0]
    hdr = json.loads(b[8:8 + n])
    hdr.pop("__metadata__", None)
    npd = {"F32": "<f4", "F16": "<f2"}
    nh, nkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    assert kvs["general.architecture"] == "llama" and kvs["llama.block_count"] == cfg["num_hidden_layers"]
    assert kvs["llama.attention.head_count_kv"] == nkv and kvs["llama.embedding_length"] == cfg["hidden_size"]
    seen = set()
    for g, (t, ne, raw) in tensors.items():
        if g in HF_OF:
            h = HF_OF[g]
        else:
            parts = g.split(".")
            h = "model.layers.%s.%s.%s" % (parts[1], HF_BLK[parts[2]], parts[3])
        info = hdr[h]
        seen.add(h)
        a = np.frombuffer(b[8 + n + info["data_offsets"][0]:8 + n + info["data_offsets"][1]],
                          npd[info["dtype"]]).reshape(info["shape"])
        assert ne == list(reversed(info["shape"])), (g, ne, info["shape"])
        if ".attn_q." in g:
            a = permute(a, nh)
        elif ".attn_k." in g:
            a = permute(a, nkv)
        if args.round == "f16" and a.ndim == 2:
            want, wt = a.astype("<f2"), T_F16
        elif args.round == "f16":
            want, wt = a.astype("<f4"), T_F32
        else:
            want, wt = a, {"F32": T_F32, "F16": T_F16}[info["dtype"]]
        assert t == wt, (g, t, wt)
        assert np.ascontiguousarray(want).tobytes() == raw, "tensor %s differs" % g
    missing = set(hdr) - seen - ({"lm_head.weight"} if cfg.get("tie_word_embeddings") else set())
    assert not missing, sorted(missing)
    print("  %d GGUF tensors match the Hugging Face checkpoint in llama.cpp layout (%s)" % (len(tensors), args.round))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model")
    m.add_argument("--out", required=True)
    m.add_argument("--hf-dir", required=True)
    m.add_argument("--seed", type=int, default=1)
    m.add_argument("--alignment", type=int, default=32)
    m.add_argument("--tied", action="store_true")
    m.add_argument("--ref-no-unpermute", action="store_true",
                   help="negative control: reference keeps llama.cpp's q/k row order")
    c = sub.add_parser("compare-hf")
    c.add_argument("file")
    c.add_argument("safetensors")
    c.add_argument("--config", required=True)
    c.add_argument("--round", choices=["keep", "f16"], default="keep")
    i = sub.add_parser("invalid")
    i.add_argument("--dir", required=True)
    r = sub.add_parser("read")
    r.add_argument("file")
    args = ap.parse_args()
    {"model": make_model, "invalid": make_invalid, "read": read, "compare-hf": compare_hf}[args.cmd](args)


if __name__ == "__main__":
    main()
