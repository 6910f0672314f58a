#!/usr/bin/env python3
"""Independent check of a checkpoint written by `spx synth` (standard library + NumPy only).

usage: synth_check.py DIR

safetensors: the reference reader's rules (u64 header length <= 1e8 and a multiple of 8, JSON
object, tensors contiguous from 0 in offset order, prod(shape) * dtype size == end - begin, no
trailing bytes), keys sorted by name, and for sharded sets the index's weight_map/total_size.
config.json: every tensor a Llama with this config needs is there with the right shape and the
dtype named by torch_dtype, values finite and not constant. Planted clusters: the nearest class
mean (classes id % K, the truth recorded in config.json) of each embedding row is its own class
for >= 95% of tokens. tokenizer.json: the stories260K layout, ids 0..V-1, byte tokens at 3..258,
every merge "a b" has a, b and ab in the vocabulary, and a plain rank-based BPE encoder round-trips
a sample text.
"""
import json
import os
import struct
import sys

import numpy as np

SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4,
         "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
TORCH = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
META = "\u2581"


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        fail(f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", buf[:8])
    if n > 100_000_000 or 8 + n > len(buf):
        fail(f"{path}: header length {n} invalid")
    if n % 8:
        fail(f"{path}: header length {n} is not a multiple of 8")
    raw = buf[8:8 + n]
    stripped = raw.rstrip(b" ")
    if not stripped.endswith(b"}") or len(raw) - len(stripped) >= 8:
        fail(f"{path}: header not padded with fewer than 8 spaces")
    hdr = json.loads(raw.decode("utf-8"))
    names = [k for k in hdr if k != "__metadata__"]
    if names != sorted(names, key=lambda s: s.encode("utf-8")):
        fail(f"{path}: tensor keys not sorted by name")
    meta = hdr.get("__metadata__", {})
    if not all(isinstance(v, str) for v in meta.values()):
        fail(f"{path}: __metadata__ values must be strings")
    data = buf[8 + n:]
    pos = 0
    tensors = {}
    for name in sorted(names, key=lambda k: hdr[k]["data_offsets"][0]):
        t = hdr[name]
        b, e = t["data_offsets"]
        if b != pos:
            fail(f"{path}: {name} begins at {b}, expected {pos} (hole or overlap)")
        size = SIZES[t["dtype"]]
        for d in t["shape"]:
            size *= d
        if e - b != size:
            fail(f"{path}: {name} has {e - b} bytes, shape says {size}")
        pos = e
        raw_t = np.frombuffer(data, dtype=np.uint8, count=size, offset=b)
        if t["dtype"] == "F32":
            arr = raw_t.view("<f4").astype(np.float64)
        elif t["dtype"] == "F16":
            arr = raw_t.view("<f2").astype(np.float64)
        elif t["dtype"] == "BF16":
            arr = (raw_t.view("<u2").astype(np.uint32) << 16).view("<f4").astype(np.float64)
        else:
            fail(f"{path}: {name}: unexpected dtype {t['dtype']}")
        tensors[name] = (t["dtype"], tuple(t["shape"]), arr.reshape(t["shape"]))
    if pos != len(data):
        fail(f"{path}: {len(data) - pos} trailing bytes")
    return tensors


def load_model(d):
    single = os.path.join(d, "model.safetensors")
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            idx = json.load(f)
        tensors, total = {}, 0
        files = sorted(set(idx["weight_map"].values()))
        for i, fn in enumerate(files):
            if fn != f"model-{i + 1:05d}-of-{len(files):05d}.safetensors":
                fail(f"unexpected shard name {fn}")
            part = read_safetensors(os.path.join(d, fn))
            for k, v in part.items():
                if idx["weight_map"].get(k) != fn:
                    fail(f"index maps {k} to {idx['weight_map'].get(k)}, found in {fn}")
                tensors[k] = v
                total += v[2].size * SIZES[v[0]]
        if set(tensors) != set(idx["weight_map"]):
            fail("index weight_map and shard contents differ")
        if idx["metadata"]["total_size"] != total:
            fail(f"index total_size {idx['metadata']['total_size']} != {total}")
        print(f"sharded: {len(files)} shards")
        return tensors
    return read_safetensors(single)


def check_model(d, cfg):
    t = load_model(d)
    dim, ffn, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    nh, nkv, V = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["vocab_size"]
    hd = cfg.get("head_dim", dim // nh)
    want = {"model.embed_tokens.weight": (V, dim), "model.norm.weight": (dim,)}
    if not cfg["tie_word_embeddings"]:
        want["lm_head.weight"] = (V, dim)
    for i in range(L):
        p = f"model.layers.{i}."
        want.update({p + "input_layernorm.weight": (dim,), p + "post_attention_layernorm.weight": (dim,),
                     p + "self_attn.q_proj.weight": (nh * hd, dim), p + "self_attn.k_proj.weight": (nkv * hd, dim),
                     p + "self_attn.v_proj.weight": (nkv * hd, dim), p + "self_attn.o_proj.weight": (dim, nh * hd),
                     p + "mlp.gate_proj.weight": (ffn, dim), p + "mlp.up_proj.weight": (ffn, dim),
                     p + "mlp.down_proj.weight": (dim, ffn)})
    if set(t) != set(want):
        fail(f"tensor names differ from config: extra {sorted(set(t) - set(want))}, "
             f"missing {sorted(set(want) - set(t))}")
    dt = TORCH[cfg["torch_dtype"]]
    for name, (dtype, shape, arr) in t.items():
        if dtype != dt or shape != want[name]:
            fail(f"{name}: {dtype} {shape}, config says {dt} {want[name]}")
        if not np.all(np.isfinite(arr)) or np.std(arr) == 0:
            fail(f"{name}: non-finite or constant values")
    syn = cfg["spx_synth"]
    K = syn["clusters"]
    if syn["cluster_of_token"] != "id % K":
        fail("unexpected cluster_of_token rule")
    emb = t["model.embed_tokens.weight"][2]
    labels = np.arange(V) % K
    means = np.stack([emb[labels == k].mean(axis=0) for k in range(K)])
    d2 = ((emb[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)
    acc = float(np.mean(d2.argmin(axis=1) == labels))
    if acc < 0.95:
        fail(f"embedding rows recover their cluster for only {acc:.3f}")
    n = sum(v[2].size for v in t.values())
    print(f"model: {len(t)} tensors, {n} params, {dt}, cluster recovery {acc:.3f}")


def bpe_encode(text, vocab, ranks):
    """Plain BPE: metaspace normalization, lowest-rank pair first, byte fallback."""
    s = META + text.replace(" ", META)
    syms = list(s)
    while True:
        best = None
        for i in range(len(syms) - 1):
            r = ranks.get((syms[i], syms[i + 1]))
            if r is not None and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            break
        i = best[1]
        syms[i:i + 2] = [syms[i] + syms[i + 1]]
    ids = []
    for sym in syms:
        if sym in vocab:
            ids.append(vocab[sym])
        else:
            ids.extend(vocab[f"<0x{b:02X}>"] for b in sym.encode("utf-8"))
    return ids


def bpe_decode(ids, inv):
    out = b""
    for i in ids:
        p = inv[i]
        if len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
            out += bytes([int(p[3:5], 16)])
        else:
            out += p.replace(META, " ").encode("utf-8")
    s = out.decode("utf-8")
    return s[1:] if s.startswith(" ") else s


def check_tokenizer(d, cfg):
    with open(os.path.join(d, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    m = tok["model"]
    if m["type"] != "BPE" or not m["byte_fallback"] or not m["fuse_unk"] or m["unk_token"] != "<unk>":
        fail("tokenizer model is not a byte-fallback BPE with <unk>")
    norms = [n["type"] for n in tok["normalizer"]["normalizers"]]
    decs = [x["type"] for x in tok["decoder"]["decoders"]]
    if norms != ["Prepend", "Replace"] or decs != ["Replace", "ByteFallback", "Fuse", "Strip"]:
        fail(f"tokenizer normalizer/decoder differ: {norms} {decs}")
    if tok["pre_tokenizer"] is not None or tok["post_processor"]["type"] != "TemplateProcessing":
        fail("tokenizer pre_tokenizer/post_processor differ")
    vocab = m["vocab"]
    V = cfg["vocab_size"]
    if len(vocab) != V or sorted(vocab.values()) != list(range(V)):
        fail(f"vocab has {len(vocab)} entries, ids not 0..{V - 1}")
    if [vocab["<unk>"], vocab["<s>"], vocab["</s>"]] != [0, 1, 2]:
        fail("special tokens are not 0, 1, 2")
    for b in range(256):
        if vocab.get(f"<0x{b:02X}>") != 3 + b:
            fail(f"byte token <0x{b:02X}> is not id {3 + b}")
    ranks = {}
    for r, mg in enumerate(m["merges"]):
        a, b = mg.split(" ") if isinstance(mg, str) else mg
        if a not in vocab or b not in vocab or a + b not in vocab:
            fail(f"merge {mg!r}: a part or the result is not in the vocabulary")
        if (a, b) in ranks:
            fail(f"duplicate merge {mg!r}")
        ranks[(a, b)] = r
    inv = {i: p for p, i in vocab.items()}
    text = "the cat sat on the mat. Then, 42 dogs ran away! caf\u00e9 \u2014 ok"
    ids = bpe_encode(text, vocab, ranks)
    back = bpe_decode(ids, inv)
    if META not in vocab:
        # vocab 259: "▁" itself is byte-fallback, and the HF decoder order (Replace before
        # ByteFallback) leaves U+2581 in the text; only the bytes must survive
        back = back.replace(META, " ").lstrip(" ")
    if back != text:
        fail(f"BPE round trip: {back!r} != {text!r}")
    print(f"tokenizer: {V} pieces, {len(ranks)} merges, sample text -> {len(ids)} tokens")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    d = sys.argv[1]
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "vocab_size", "rms_norm_eps", "rope_theta", "hidden_act",
              "tie_word_embeddings", "torch_dtype", "spx_synth"):
        if k not in cfg:
            fail(f"config.json lacks {k}")
    check_model(d, cfg)
    check_tokenizer(d, cfg)
    print("ok")


if __name__ == "__main__":
    main()
