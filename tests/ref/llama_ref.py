#!/usr/bin/env python3
"""llama_ref.py: an independent float64 NumPy forward of a Hugging Face Llama checkpoint.

Reads config.json and model.safetensors (or the file given by --weights, or a sharded
model.safetensors.index.json) DIRECTLY: the safetensors header is parsed with json and the tensors
with numpy.frombuffer (F32, F16, BF16 (u16 << 16 reinterpreted as f32), F64). No torch, no
transformers. Computes the logits of every position of the given token ids.

Conventions (transformers' LlamaForCausalLM): RMSNorm x / sqrt(mean(x^2) + eps) * w; rotary
"rotate_half" on the first partial_rotary_factor * head_dim dims of each head with
inv_freq = theta^(-2i/rot_dim) (+ linear / llama3 rope_scaling); GQA (kv head = h // group);
causal softmax attention scaled by 1/sqrt(head_dim); SwiGLU MLP down(act(gate x) * up x);
optional attention_bias / mlp_bias; lm_head tied to embed_tokens when tie_word_embeddings.

Usage:
  llama_ref.py --model DIR [--weights FILE] --tokens 1,2,3 [--out LOGITS.f64]
               [--compare SPX_LOGITS.f32 [--tol 1e-5]] [--greedy N]
  llama_ref.py --model DIR [--weights FILE] --ppl-tokens IDS.u32 --ctx C [--max-windows N]
--compare reads raw little-endian float32 logits [n x vocab] and prints, per position,
||a - b|| / ||b|| (b = this reference); exits 1 when the maximum exceeds --tol.
--greedy N prints the N greedily generated ids (full recomputation at every step).
--ppl-tokens evaluates perplexity with the protocol of spx ppl (non-overlapping windows of C
tokens, remainder dropped, each window predicts its tokens 1..C-1; log-softmax in float64) and
prints "windows W tokens T nll_mean X ppl Y".
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np


def read_safetensors(path):
    """Return {name: float64 ndarray} for one .safetensors file."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError(f"{path}: too short for a safetensors header")
    (hlen,) = struct.unpack("<Q", buf[:8])
    if hlen > 100_000_000 or 8 + hlen > len(buf):
        raise ValueError(f"{path}: header length {hlen} out of range")
    header = json.loads(buf[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, shape = info["dtype"], info["shape"]
        b, e = info["data_offsets"]
        raw = buf[base + b:base + e]
        count = int(np.prod(shape)) if shape else 1
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4", count=count).astype(np.float64)
        elif dt == "F64":
            a = np.frombuffer(raw, dtype="<f8", count=count).copy()
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2", count=count).astype(np.float64)
        elif dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2", count=count).astype(np.uint32) << 16
            a = u.view(np.float32).astype(np.float64)
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        out[name] = a.reshape(shape)
    return out


def round_to(w, dtype):
    """Round float64 weights to f16 or bf16 (round to nearest even), as a converter would."""
    out = {}
    for k, a in w.items():
        if dtype == "f16":
            out[k] = a.astype(np.float16).astype(np.float64)
        else:
            u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
            u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
            out[k] = u.astype(np.uint32).view(np.float32).astype(np.float64)
    return out


def load_weights(model_dir, weights):
    if weights:
        return read_safetensors(weights)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        w = {}
        for fn in files:
            w.update(read_safetensors(os.path.join(model_dir, fn)))
        return w
    return read_safetensors(os.path.join(model_dir, "model.safetensors"))


def inv_freq(cfg, rot_dim):
    theta = float(cfg.get("rope_theta", 10000.0))
    inv = 1.0 / theta ** (np.arange(0, rot_dim, 2, dtype=np.float64) / rot_dim)
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        inv = inv / float(rs["factor"])
    elif kind == "llama3":
        factor, lo, hi = float(rs["factor"]), float(rs["low_freq_factor"]), float(rs["high_freq_factor"])
        orig = float(rs["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv
        scaled = np.where(wavelen > orig / lo, inv / factor, inv)
        smooth = (orig / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= orig / hi) & (wavelen <= orig / lo)
        inv = np.where(medium, smoothed, scaled)
    elif kind not in (None, "default"):
        raise ValueError(f"unsupported rope_scaling {kind}")
    return inv


def act_fn(name):
    if name == "silu":
        return lambda x: x / (1.0 + np.exp(-x))
    if name == "relu":
        return lambda x: np.maximum(x, 0.0)
    if name in ("gelu_pytorch_tanh", "gelu_new", "gelu_tanh"):
        return lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "gelu":
        erf = np.vectorize(math.erf)
        return lambda x: 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    raise ValueError(f"unsupported hidden_act {name}")


def forward(cfg, W, tokens):
    d = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or d // nh
    rot = int(hd * float(cfg.get("partial_rotary_factor", 1.0)))
    eps = float(cfg.get("rms_norm_eps", 1e-6))
    act = act_fn(cfg.get("hidden_act", "silu"))
    n = len(tokens)
    pre = "model."

    def rms(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

    def lin(x, name):
        y = x @ W[name + ".weight"].T
        if name + ".bias" in W:
            y = y + W[name + ".bias"]
        return y

    ang = np.arange(n, dtype=np.float64)[:, None] * inv_freq(cfg, rot)[None, :]  # [n, rot/2]
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(x):  # x [n, heads, hd]
        half = rot // 2
        x = x.copy()
        x1, x2 = x[:, :, :half].copy(), x[:, :, half:rot].copy()
        c, s = cos[:, None, :], sin[:, None, :]
        x[:, :, :half] = x1 * c - x2 * s
        x[:, :, half:rot] = x2 * c + x1 * s
        return x

    x = W[pre + "embed_tokens.weight"][np.asarray(tokens)]
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"{pre}layers.{i}."
        a = rms(x, W[p + "input_layernorm.weight"])
        q = rope(lin(a, p + "self_attn.q_proj").reshape(n, nh, hd))
        k = rope(lin(a, p + "self_attn.k_proj").reshape(n, nkv, hd))
        v = lin(a, p + "self_attn.v_proj").reshape(n, nkv, hd)
        out = np.empty((n, nh, hd))
        for h in range(nh):
            g = h // (nh // nkv)
            s = q[:, h, :] @ k[:, g, :].T / math.sqrt(hd) + mask
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            out[:, h, :] = s @ v[:, g, :]
        x = x + lin(out.reshape(n, nh * hd), p + "self_attn.o_proj")
        m = rms(x, W[p + "post_attention_layernorm.weight"])
        x = x + lin(act(lin(m, p + "mlp.gate_proj")) * lin(m, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = rms(x, W[pre + "norm.weight"])
    head = W.get("lm_head.weight")
    if head is None:  # tied embeddings (tie_word_embeddings): no lm_head stored
        head = W[pre + "embed_tokens.weight"]
    return x @ head.T


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="directory with config.json")
    ap.add_argument("--weights", help="safetensors file (default DIR/model.safetensors)")
    ap.add_argument("--tokens", help="comma-separated token ids")
    ap.add_argument("--round", choices=["f16", "bf16"], help="round the weights to this dtype first")
    ap.add_argument("--ppl-tokens", help="raw little-endian u32 token file for perplexity")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--max-windows", type=int, default=0)
    ap.add_argument("--out", help="write float64 logits [n x vocab] here")
    ap.add_argument("--compare", help="raw float32 logits [n x vocab] to compare")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--greedy", type=int, default=0)
    args = ap.parse_args()
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    W = load_weights(args.model, args.weights)
    if args.round:
        W = round_to(W, args.round)
    if args.ppl_tokens:
        ids = np.fromfile(args.ppl_tokens, dtype="<u4").astype(np.int64)
        C = args.ctx
        windows = len(ids) // C
        if args.max_windows:
            windows = min(windows, args.max_windows)
        total, count = 0.0, 0
        for w in range(windows):
            win = ids[w * C:(w + 1) * C]
            lg = forward(cfg, W, list(win))
            mx = lg.max(axis=1, keepdims=True)
            lse = mx[:, 0] + np.log(np.exp(lg - mx).sum(axis=1))
            total += float((lse[:-1] - lg[np.arange(C - 1), win[1:]]).sum())
            count += C - 1
        print(f"windows {windows} tokens {count} nll_mean {total / count:.10f} ppl {math.exp(total / count):.6f}")
        return 0
    if not args.tokens:
        ap.error("--tokens or --ppl-tokens is required")
    tokens = [int(t) for t in args.tokens.split(",") if t != ""]
    ref = forward(cfg, W, tokens)
    if args.out:
        ref.astype("<f8").tofile(args.out)
    status = 0
    if args.compare:
        got = np.fromfile(args.compare, dtype="<f4").astype(np.float64)
        if got.size != ref.size:
            print(f"size mismatch: {got.size} values, expected {ref.size}", file=sys.stderr)
            return 1
        got = got.reshape(ref.shape)
        rel = np.linalg.norm(got - ref, axis=1) / np.linalg.norm(ref, axis=1)
        worst = float(rel.max())
        print(f"positions {len(tokens)} vocab {ref.shape[1]} max_rel_err {worst:.3e} "
              f"mean_rel_err {float(rel.mean()):.3e} max_abs_err {float(np.abs(got - ref).max()):.3e}")
        if not worst < args.tol:
            print(f"FAIL: max relative error {worst:.3e} >= {args.tol:g}", file=sys.stderr)
            status = 1
    if args.greedy:
        seq = list(tokens)
        gen = []
        for _ in range(args.greedy):
            nxt = int(np.argmax(forward(cfg, W, seq)[-1]))
            gen.append(nxt)
            seq.append(nxt)
        print("greedy " + " ".join(str(t) for t in gen))
    if not args.compare and not args.out and not args.greedy:
        np.savetxt(sys.stdout, ref, fmt="%.9g")
    return status


if __name__ == "__main__":
    sys.exit(main())
