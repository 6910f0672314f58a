#!/usr/bin/env python3
"""hf_forward_ref.py: independent float64 NumPy forwards of Hugging Face GPT-2, GPT-NeoX (Pythia)
and OPT checkpoints, written from the equations of transformers' GPT2LMHeadModel,
GPTNeoXForCausalLM and OPTForCausalLM (no torch, no transformers, no spx code).

Reads config.json and model.safetensors (or a sharded model.safetensors.index.json) DIRECTLY,
in the checkpoint's own layout: GPT-2 Conv1D weights [in, out] are used as x @ W; the fused
c_attn output is split as [q | k | v]; GPT-NeoX query_key_value output is viewed as
[n_heads, 3 * head_dim] and split per head; OPT positions read embed_positions[pos + 2].

Conventions (all three): LayerNorm (x - mean) / sqrt(var + eps) * w + b, causal softmax
attention scaled by head_dim^-0.5, biases as stored.
  GPT-2: x = wte[t] + wpe[p]; x += attn(ln_1 x); x += mlp(ln_2 x), mlp = c_proj(act(c_fc));
         act from activation_function (gelu_new = tanh form); logits = ln_f(x) wte^T (tied).
  GPT-NeoX: rotary on the first int(head_dim * rotary_pct) dims ("rotate_half", inv_freq =
         base^(-2i/rot)); parallel residual x + attn(ln1 x) + mlp(ln2 x) when
         use_parallel_residual, else sequential; logits = final_layer_norm(x) embed_out^T.
  OPT:   pre-norm (do_layer_norm_before) or post-norm x = LN(x + attn(x)), x = LN(x + mlp(x));
         decoder.final_layer_norm only for pre-norm; relu MLP fc2(act(fc1)); tied lm_head.

Usage:
  hf_forward_ref.py --model DIR --tokens 1,2,3 [--compare SPX_LOGITS.f32 [--tol 1e-5]]
                    [--round f16|bf16] [--greedy N]
  hf_forward_ref.py --model DIR --ppl-tokens IDS.u32 --ctx C [--max-windows N]
--compare reads raw little-endian float32 logits [n x vocab], prints per-position
||a - b|| / ||b|| statistics (b = this reference) and exits 1 when the maximum exceeds --tol.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    (hlen,) = struct.unpack("<Q", buf[:8])
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
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2", count=count).astype(np.float64)
        elif dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2", count=count).astype(np.uint32) << 16
            a = u.view(np.float32).astype(np.float64)
        elif dt == "F64":
            a = np.frombuffer(raw, dtype="<f8", count=count).copy()
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dt}")
        out[name] = a.reshape(shape)
    return out


def load_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        w = {}
        for fn in files:
            w.update(read_safetensors(os.path.join(model_dir, fn)))
        return w
    return read_safetensors(os.path.join(model_dir, "model.safetensors"))


def round_to(w, dtype):
    out = {}
    for k, a in w.items():
        if dtype == "f16":
            out[k] = a.astype(np.float16).astype(np.float64)
        else:
            u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
            u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
            out[k] = u.astype(np.uint32).view(np.float32).astype(np.float64)
    return out


def act_fn(name):
    if name == "relu":
        return lambda x: np.maximum(x, 0.0)
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if name == "gelu":
        erf = np.vectorize(math.erf)
        return lambda x: 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    if name in ("silu", "swish"):
        return lambda x: x / (1.0 + np.exp(-x))
    raise ValueError(f"unsupported activation {name}")


def layer_norm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def attention(q, k, v):
    """q, k, v [n, heads, hd] -> [n, heads * hd]; causal, scaled by hd^-0.5."""
    n, nh, hd = q.shape
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    out = np.empty((n, nh, hd))
    for h in range(nh):
        s = q[:, h, :] @ k[:, h, :].T * hd ** -0.5 + mask
        s = np.exp(s - s.max(axis=1, keepdims=True))
        s /= s.sum(axis=1, keepdims=True)
        out[:, h, :] = s @ v[:, h, :]
    return out.reshape(n, nh * hd)


def get(W, name, prefixes):
    """Checkpoints saved from the base model lack the head-model prefix."""
    for p in prefixes:
        if p + name in W:
            return W[p + name]
    raise KeyError(name)


def gpt2(cfg, W, tokens):
    d, nh = cfg["n_embd"], cfg["n_head"]
    hd = d // nh
    eps = float(cfg.get("layer_norm_epsilon", 1e-5))
    act = act_fn(cfg.get("activation_function", "gelu_new"))
    pre = ("transformer.", "")
    g = lambda name: get(W, name, pre)
    n = len(tokens)
    x = g("wte.weight")[np.asarray(tokens)] + g("wpe.weight")[np.arange(n)]
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        a = layer_norm(x, g(p + "ln_1.weight"), g(p + "ln_1.bias"), eps)
        qkv = a @ g(p + "attn.c_attn.weight") + g(p + "attn.c_attn.bias")     # Conv1D: x W + b
        q, k, v = (qkv[:, j * d:(j + 1) * d].reshape(n, nh, hd) for j in range(3))
        x = x + attention(q, k, v) @ g(p + "attn.c_proj.weight") + g(p + "attn.c_proj.bias")
        m = layer_norm(x, g(p + "ln_2.weight"), g(p + "ln_2.bias"), eps)
        h = act(m @ g(p + "mlp.c_fc.weight") + g(p + "mlp.c_fc.bias"))
        x = x + h @ g(p + "mlp.c_proj.weight") + g(p + "mlp.c_proj.bias")
    x = layer_norm(x, g("ln_f.weight"), g("ln_f.bias"), eps)
    head = W.get("lm_head.weight")
    if head is None or cfg.get("tie_word_embeddings", True):
        head = g("wte.weight")
    return x @ head.T


def neox(cfg, W, tokens):
    d, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = d // nh
    pct = float(cfg.get("partial_rotary_factor", cfg.get("rotary_pct", 0.25)))
    rot = int(hd * pct)
    base = float(cfg.get("rope_theta", cfg.get("rotary_emb_base", 10000)))
    eps = float(cfg.get("layer_norm_eps", 1e-5))
    act = act_fn(cfg.get("hidden_act", "gelu"))
    parallel = cfg.get("use_parallel_residual", True)
    n = len(tokens)
    inv = 1.0 / base ** (np.arange(0, rot, 2, dtype=np.float64) / rot)
    ang = np.arange(n, dtype=np.float64)[:, None] * inv[None, :]
    emb = np.concatenate([ang, ang], axis=1)                      # [n, rot] as in the HF rotary cache
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]

    def rotate_half(t):
        h = t.shape[-1] // 2
        return np.concatenate([-t[..., h:], t[..., :h]], axis=-1)

    def rope(t):  # t [n, heads, hd]: rotary on t[..., :rot], the rest passes
        tr, tp = t[..., :rot], t[..., rot:]
        return np.concatenate([tr * cos + rotate_half(tr) * sin, tp], axis=-1)

    def lin(x, name):
        return x @ W[name + ".weight"].T + W[name + ".bias"]

    x = W["gpt_neox.embed_in.weight"][np.asarray(tokens)]
    for i in range(cfg["num_hidden_layers"]):
        p = f"gpt_neox.layers.{i}."
        a = layer_norm(x, W[p + "input_layernorm.weight"], W[p + "input_layernorm.bias"], eps)
        qkv = lin(a, p + "attention.query_key_value").reshape(n, nh, 3 * hd)
        q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
        att = lin(attention(rope(q), rope(k), v), p + "attention.dense")

        def mlp(t):
            m = layer_norm(t, W[p + "post_attention_layernorm.weight"], W[p + "post_attention_layernorm.bias"], eps)
            return lin(act(lin(m, p + "mlp.dense_h_to_4h")), p + "mlp.dense_4h_to_h")
        if parallel:
            x = mlp(x) + att + x
        else:
            x = x + att
            x = mlp(x) + x
    x = layer_norm(x, W["gpt_neox.final_layer_norm.weight"], W["gpt_neox.final_layer_norm.bias"], eps)
    head = W.get("embed_out.weight")
    if head is None:
        head = W["gpt_neox.embed_in.weight"]
    return x @ head.T


def opt(cfg, W, tokens):
    d, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = d // nh
    eps = 1e-5                                                     # nn.LayerNorm default
    act = act_fn(cfg.get("activation_function", "relu"))
    before = cfg.get("do_layer_norm_before", True)
    pre = ("model.decoder.", "decoder.")
    g = lambda name: get(W, name, pre)
    n = len(tokens)

    def lin(x, name):
        return x @ g(name + ".weight").T + g(name + ".bias")

    def ln(x, name):
        return layer_norm(x, g(name + ".weight"), g(name + ".bias"), eps)

    x = g("embed_tokens.weight")[np.asarray(tokens)] + g("embed_positions.weight")[np.arange(n) + 2]
    for i in range(cfg["num_hidden_layers"]):
        p = f"layers.{i}."
        r = x
        h = ln(x, p + "self_attn_layer_norm") if before else x
        q = (lin(h, p + "self_attn.q_proj")).reshape(n, nh, hd)
        k = lin(h, p + "self_attn.k_proj").reshape(n, nh, hd)
        v = lin(h, p + "self_attn.v_proj").reshape(n, nh, hd)
        x = r + lin(attention(q, k, v), p + "self_attn.out_proj")
        if not before:
            x = ln(x, p + "self_attn_layer_norm")
        r = x
        h = ln(x, p + "final_layer_norm") if before else x
        x = r + lin(act(lin(h, p + "fc1")), p + "fc2")
        if not before:
            x = ln(x, p + "final_layer_norm")
    if before and not cfg.get("_remove_final_layer_norm", False):
        x = ln(x, "final_layer_norm")
    head = W.get("lm_head.weight")
    if head is None or cfg.get("tie_word_embeddings", True):
        head = g("embed_tokens.weight")
    return x @ head.T


def forward(cfg, W, tokens):
    kind = cfg.get("model_type")
    if kind == "gpt2":
        return gpt2(cfg, W, tokens)
    if kind == "gpt_neox":
        return neox(cfg, W, tokens)
    if kind == "opt":
        return opt(cfg, W, tokens)
    raise ValueError(f"model_type {kind} is not gpt2, gpt_neox or opt")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens")
    ap.add_argument("--round", choices=["f16", "bf16"])
    ap.add_argument("--ppl-tokens")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--max-windows", type=int, default=0)
    ap.add_argument("--compare")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--greedy", type=int, default=0)
    args = ap.parse_args()
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    W = load_weights(args.model)
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
    if not args.compare and not args.greedy:
        np.savetxt(sys.stdout, ref, fmt="%.9g")
    return status


if __name__ == "__main__":
    sys.exit(main())
