#!/usr/bin/python3
"""bench/sparsegpt_torch.py: PyTorch (CPU, float32) SparseGPT of a llama layer stack, the timing
baseline of bench/prune_vs_torch.sh. Benchmark only: torch is not a dependency of spx.

The algorithm follows IST-DASLab/sparsegpt (SparseGPT.add_batch / fasterprune and the per-block
driver of its llama script, one calibration pass per block, no true-sequential groups), written
here from the paper and that code's structure:
  - every linear layer gets its own running-mean Hessian H = (2/n) sum_s X_s^T X_s (fp32 matmul),
  - fasterprune: dead inputs, damping 1% of mean(diag H), Hinv = upper Cholesky factor of H^-1
    via cholesky -> cholesky_inverse -> cholesky(upper) in fp32, then column blocks of 128 with
    the per-column update of the whole block row and the lazy block update by matmul,
  - the block is run again on the pruned weights to give the next block's inputs.
Weights are read from the Hugging Face safetensors directory with NumPy (F32/F16/BF16), the
calibration windows are the first nsamples * seqlen ids of a raw little-endian uint32 file.

Prints one JSON line per repeat: total seconds (forward + pruning), `algo` seconds (the sum of
add_batch + fasterprune: Hessian + factor + sweep per linear layer), `forward` seconds.
  usage: sparsegpt_torch.py MODEL_DIR TOKENS.u32 [--nsamples N] [--seqlen N] [--sparsity S]
         [--threads T] [--repeats R] [--share-hessian]
--share-hessian: q/k/v and gate/up share one Hessian and one factor, like spx (the reference
computes them per linear). """
import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch


def load_safetensors(model_dir):
    """name -> float32 numpy array (copies; the files are closed afterwards)."""
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for fn in files:
        path = os.path.join(model_dir, fn)
        with open(path, "rb") as f:
            (hlen,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(hlen))
        mm = np.memmap(path, dtype=np.uint8, mode="r")
        base = 8 + hlen
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            a, b = meta["data_offsets"]
            raw = mm[base + a:base + b]
            dt = meta["dtype"]
            if dt == "F32":
                arr = raw.view(np.float32)
            elif dt == "F16":
                arr = raw.view(np.float16).astype(np.float32)
            elif dt == "BF16":
                arr = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                raise SystemExit(f"{path}: tensor {name}: dtype {dt} not supported")
            out[name] = np.array(arr, dtype=np.float32).reshape(meta["shape"])
        del mm
    return out


class Hessian:
    """Running mean of 2 X^T X over sequences (the reference's add_batch, batch of 1)."""

    def __init__(self, cols):
        self.H = torch.zeros((cols, cols), dtype=torch.float32)
        self.n = 0

    def add(self, x):                      # x [tokens, cols]
        self.H *= self.n / (self.n + 1)
        self.n += 1
        xs = math.sqrt(2.0 / self.n) * x.t()
        self.H += xs.matmul(xs.t())


def inverse_factor(H, percdamp=0.01):
    """(upper Cholesky factor of the damped H^-1, dead-input mask); H is modified."""
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    damp = percdamp * torch.mean(torch.diag(H))
    idx = torch.arange(H.shape[0])
    H[idx, idx] += damp
    L = torch.linalg.cholesky(H)
    Hi = torch.cholesky_inverse(L)
    return torch.linalg.cholesky(Hi, upper=True), dead


def sweep(W, Hinv, dead, sparsity, blocksize=128):
    """Unstructured SparseGPT column sweep of W [rows, cols] in place."""
    W[:, dead] = 0
    rows, cols = W.shape
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        nb = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        E1 = torch.zeros_like(W1)
        Hb = Hinv[i1:i2, i1:i2]
        score = W1 ** 2 / torch.diag(Hb).reshape(1, -1) ** 2
        thresh = torch.sort(score.flatten())[0][int(score.numel() * sparsity)]
        mask = score <= thresh
        for i in range(nb):
            w = W1[:, i]
            q = w.clone()
            q[mask[:, i]] = 0
            Q1[:, i] = q
            err = (w - q) / Hb[i, i]
            W1[:, i:] -= err.unsqueeze(1).matmul(Hb[i, i:].unsqueeze(0))
            E1[:, i] = err
        W[:, i1:i2] = Q1
        W[:, i2:] -= E1.matmul(Hinv[i1:i2, i2:])


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_tables(seqlen, hd, theta):
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    f = torch.outer(torch.arange(seqlen, dtype=torch.float32), inv)
    f = torch.cat([f, f], dim=-1)
    return f.cos(), f.sin()


def rope(x, cos, sin):                     # x [heads, T, hd]
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
    return x * cos + rot * sin


LINEARS = ["q", "k", "v", "o", "gate", "up", "down"]
KIND = {"q": "attn", "k": "attn", "v": "attn", "o": "o", "gate": "mlp", "up": "mlp", "down": "down"}


def block(x, P, cfg, cos, sin, hook):
    """One llama block on x [T, dim]; hook(kind, input) sees each linear's input."""
    T, dim = x.shape
    nh, nkv = cfg["heads"], cfg["kv_heads"]
    hd = dim // nh
    h = rmsnorm(x, P["ln1"], cfg["eps"])
    hook("attn", h)
    q = (h @ P["q"].t()).view(T, nh, hd).transpose(0, 1)
    k = (h @ P["k"].t()).view(T, nkv, hd).transpose(0, 1)
    v = (h @ P["v"].t()).view(T, nkv, hd).transpose(0, 1)
    q, k = rope(q, cos, sin), rope(k, cos, sin)
    if nkv != nh:
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
    s = q @ k.transpose(1, 2) / math.sqrt(hd)
    s = s + torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
    a = (torch.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(T, dim)
    hook("o", a)
    x = x + a @ P["o"].t()
    h = rmsnorm(x, P["ln2"], cfg["eps"])
    hook("mlp", h)
    m = torch.nn.functional.silu(h @ P["gate"].t()) * (h @ P["up"].t())
    hook("down", m)
    return x + m @ P["down"].t()


def run(tensors, cfg, X0, sparsity, share):
    """Prune every block; returns (total, algo, forward) seconds."""
    t_start = time.perf_counter()
    algo = 0.0
    fwd = 0.0
    ns, T, _ = X0.shape
    cos, sin = rope_tables(T, cfg["hd"], cfg["theta"])
    inps = X0.clone()
    for layer in range(cfg["layers"]):
        pre = f"model.layers.{layer}."
        names = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
                 "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
                 "down": "mlp.down_proj"}
        P = {k: torch.from_numpy(tensors[pre + n + ".weight"].copy()) for k, n in names.items()}
        P["ln1"] = torch.from_numpy(tensors[pre + "input_layernorm.weight"])
        P["ln2"] = torch.from_numpy(tensors[pre + "post_attention_layernorm.weight"])
        if share:
            hs = {kind: Hessian(P[lin].shape[1]) for lin, kind in KIND.items()}
            per_lin = {lin: hs[KIND[lin]] for lin in LINEARS}
        else:
            per_lin = {lin: Hessian(P[lin].shape[1]) for lin in LINEARS}
        users = {kind: sorted({id(per_lin[l]): per_lin[l] for l in LINEARS if KIND[l] == kind}.items())
                 for kind in set(KIND.values())}
        t_hook = [0.0]

        def hook(kind, inp):
            t0 = time.perf_counter()
            for _, hh in users[kind]:
                hh.add(inp)
            t_hook[0] += time.perf_counter() - t0

        t0 = time.perf_counter()
        for s in range(ns):
            block(inps[s], P, cfg, cos, sin, hook)
        fwd += time.perf_counter() - t0 - t_hook[0]
        algo += t_hook[0]
        t0 = time.perf_counter()
        factors = {}
        for lin in LINEARS:
            hh = per_lin[lin]
            if id(hh) not in factors:
                factors[id(hh)] = inverse_factor(hh.H)
            Hinv, dead = factors[id(hh)]
            sweep(P[lin], Hinv, dead, sparsity)
        algo += time.perf_counter() - t0
        del factors, per_lin, users
        t0 = time.perf_counter()
        nothing = lambda kind, inp: None  # noqa: E731
        for s in range(ns):
            inps[s] = block(inps[s], P, cfg, cos, sin, nothing)
        fwd += time.perf_counter() - t0
    return time.perf_counter() - t_start, algo, fwd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("tokens")
    ap.add_argument("--nsamples", type=int, default=8)
    ap.add_argument("--seqlen", type=int, default=256)
    ap.add_argument("--sparsity", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--share-hessian", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_grad_enabled(False)
    with open(os.path.join(a.model, "config.json")) as f:
        c = json.load(f)
    dim = c["hidden_size"]
    cfg = {"layers": c["num_hidden_layers"], "heads": c["num_attention_heads"],
           "kv_heads": c.get("num_key_value_heads", c["num_attention_heads"]),
           "eps": c.get("rms_norm_eps", 1e-5), "theta": c.get("rope_theta", 10000.0)}
    cfg["hd"] = dim // cfg["heads"]
    tensors = load_safetensors(a.model)
    ids = np.fromfile(a.tokens, dtype="<u4")
    need = a.nsamples * a.seqlen
    if ids.size < need:
        sys.exit(f"{a.tokens}: {ids.size} tokens, need {need}")
    emb = tensors["model.embed_tokens.weight"]
    X0 = torch.from_numpy(emb[ids[:need].astype(np.int64)].reshape(a.nsamples, a.seqlen, dim).copy())
    for r in range(a.repeats):
        total, algo, fwd = run(tensors, cfg, X0, a.sparsity, a.share_hessian)
        print(json.dumps({"repeat": r, "total": round(total, 3), "algo": round(algo, 3),
                          "forward": round(fwd, 3), "threads": torch.get_num_threads(),
                          "share_hessian": a.share_hessian}), flush=True)


if __name__ == "__main__":
    main()
