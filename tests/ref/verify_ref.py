#!/usr/bin/env python3
"""verify_ref.py: an independent float64 NumPy recomputation of the figures of `spx verify`.

  verify_ref.py prune --model DIR --out DIR2 --sparsity S --targets LIST
      write a Hugging Face copy of DIR (config.json, tokenizer.json copied) whose listed linear
      layers (HF module names matched as substrings, e.g. "layers.0.self_attn.q_proj,mlp.down_proj")
      have the fraction S of their smallest-magnitude weights set to zero (per matrix)
  verify_ref.py check --ref DIR --cand DIR2 --ids IDS.u32 --ctx C [--max-windows N] --report R.json
      recompute every figure of the `spx verify --json` report R.json and compare

Protocol restated from specs/spx-verify-json.md (not from the C code): windows of C tokens, each
from an empty cache; for block l both models' blocks get the REFERENCE's residual stream x_l:
attn = o_proj(attention(rms(x_l))), mlp = block MLP of (x_l + attn), block = attn + mlp; relative
error ||y_c - y_r||_F / ||y_r||_F summed over all windows; per linear layer whose weights differ,
||W_c x - W_r x|| / ||W_r x|| on the reference's input of that layer. Logits: positions 0..C-2 of
every window, KL(ref || cand) = sum p_r (log p_r - log p_c), mean, max and nearest-rank 99.9th
percentile, top-1 agreement, ppl = exp(mean nll) of both and their ratio.

Tolerances (the C code computes in fp32, this script in float64): relative errors and KL figures
1e-4 relative (+1e-7 absolute: an identical block must be exactly 0 in both), ppl 1e-5 relative,
top-1 agreement within 2 positions (fp32 rounding can flip an argmax at a near tie).
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_ref import act_fn, inv_freq, read_safetensors  # noqa: E402

LINEARS = [("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
           ("attn_output", "self_attn.o_proj"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
           ("ffn_down", "mlp.down_proj")]


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def cmd_prune(a):
    W = read_safetensors(os.path.join(a.model, "model.safetensors"))
    targets = [t for t in a.targets.split(",") if t]
    os.makedirs(a.out, exist_ok=True)
    for fn in ("config.json", "tokenizer.json"):
        if os.path.exists(os.path.join(a.model, fn)):
            shutil.copy(os.path.join(a.model, fn), os.path.join(a.out, fn))
    out = {}
    for name, w in W.items():
        w = w.copy()
        if w.ndim == 2 and name.endswith(".weight") and any(t in name for t in targets):
            k = int(w.size * a.sparsity)
            idx = np.argsort(np.abs(w), axis=None, kind="stable")[:k]
            w.reshape(-1)[idx] = 0.0
        out[name] = w
    write_safetensors(os.path.join(a.out, "model.safetensors"), out)
    return 0


class Model:
    def __init__(self, d):
        with open(os.path.join(d, "config.json")) as f:
            self.cfg = cfg = json.load(f)
        self.W = read_safetensors(os.path.join(d, "model.safetensors"))
        self.d = cfg["hidden_size"]
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg.get("num_key_value_heads", self.nh)
        self.hd = cfg.get("head_dim") or self.d // self.nh
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        self.act = act_fn(cfg.get("hidden_act", "silu"))
        self.inv = inv_freq(cfg, self.hd)
        self.L = cfg["num_hidden_layers"]

    def w(self, name):
        return self.W["model." + name]

    def rms(self, x, name):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * self.w(name)

    def lin(self, x, l, mod):
        return x @ self.w(f"layers.{l}.{mod}.weight").T

    def rope(self, x, n):
        ang = np.arange(n, dtype=np.float64)[:, None] * self.inv[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        h = self.hd // 2
        x1, x2 = x[:, :, :h], x[:, :, h:]
        return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=2)

    def block(self, x, l):
        """Returns attn [n x d], mlp [n x d] and the inputs of every linear layer."""
        n = x.shape[0]
        a = self.rms(x, f"layers.{l}.input_layernorm.weight")
        q = self.rope(self.lin(a, l, "self_attn.q_proj").reshape(n, self.nh, self.hd), n)
        k = self.rope(self.lin(a, l, "self_attn.k_proj").reshape(n, self.nkv, self.hd), n)
        v = self.lin(a, l, "self_attn.v_proj").reshape(n, self.nkv, self.hd)
        o = np.empty((n, self.nh, self.hd))
        mask = np.triu(np.full((n, n), -np.inf), k=1)
        for h in range(self.nh):
            g = h // (self.nh // self.nkv)
            s = q[:, h] @ k[:, g].T / math.sqrt(self.hd) + mask
            s = np.exp(s - s.max(axis=1, keepdims=True))
            o[:, h] = (s / s.sum(axis=1, keepdims=True)) @ v[:, g]
        o = o.reshape(n, self.nh * self.hd)
        attn = self.lin(o, l, "self_attn.o_proj")
        m = self.rms(x + attn, f"layers.{l}.post_attention_layernorm.weight")
        hid = self.act(self.lin(m, l, "mlp.gate_proj")) * self.lin(m, l, "mlp.up_proj")
        mlp = self.lin(hid, l, "mlp.down_proj")
        inputs = {"attn_q": a, "attn_k": a, "attn_v": a, "attn_output": o, "ffn_gate": m, "ffn_up": m,
                  "ffn_down": hid}
        return attn, mlp, inputs

    def logits(self, x):
        head = self.W.get("lm_head.weight")
        if head is None:
            head = self.w("embed_tokens.weight")
        return self.rms(x, "norm.weight") @ head.T


def log_softmax(lg):
    mx = lg.max(axis=1, keepdims=True)
    return lg - (mx + np.log(np.exp(lg - mx).sum(axis=1, keepdims=True)))


def cmd_check(a):
    R, Cm = Model(a.ref), Model(a.cand)
    ids = np.fromfile(a.ids, dtype="<u4").astype(np.int64)
    C = a.ctx
    windows = len(ids) // C
    if a.max_windows:
        windows = min(windows, a.max_windows)
    acc = np.zeros((R.L, 3, 2))
    differs = {}
    for l in range(R.L):
        for key, mod in LINEARS:
            name = f"layers.{l}.{mod}.weight"
            differs[(l, key)] = not np.array_equal(R.w(name), Cm.w(name))
    lin_acc = {k: np.zeros(2) for k, v in differs.items() if v}
    kls, agree, nll_r, nll_c = [], 0, 0.0, 0.0
    for wi in range(windows):
        win = ids[wi * C:(wi + 1) * C]
        x = R.w("embed_tokens.weight")[win]
        for l in range(R.L):
            ar, mr, inp = R.block(x, l)
            ac, mc, _ = Cm.block(x, l)
            for j, (yc, yr) in enumerate(((ac, ar), (mc, mr), (ac + mc, ar + mr))):
                acc[l, j] += [np.sum((yc - yr) ** 2), np.sum(yr ** 2)]
            for key, mod in LINEARS:
                if differs[(l, key)]:
                    yr, yc = R.lin(inp[key], l, mod), Cm.lin(inp[key], l, mod)
                    lin_acc[(l, key)] += [np.sum((yc - yr) ** 2), np.sum(yr ** 2)]
            x = x + ar + mr
        xc = Cm.w("embed_tokens.weight")[win]
        for l in range(Cm.L):
            ac, mc, _ = Cm.block(xc, l)
            xc = xc + ac + mc
        lr, lc = log_softmax(R.logits(x))[:-1], log_softmax(Cm.logits(xc))[:-1]
        kls.extend(np.sum(np.exp(lr) * (lr - lc), axis=1).tolist())
        agree += int(np.sum(np.argmax(lr, axis=1) == np.argmax(lc, axis=1)))
        tgt = win[1:]
        nll_r -= float(lr[np.arange(C - 1), tgt].sum())
        nll_c -= float(lc[np.arange(C - 1), tgt].sum())

    def rel(v):
        return 0.0 if v[0] == 0 else math.sqrt(v[0] / v[1])

    with open(a.report) as f:
        rep = json.load(f)
    errors = []

    def near(what, got, want, rtol, atol):
        if got is None or not abs(got - want) <= rtol * abs(want) + atol:
            errors.append(f"{what}: spx {got} vs reference {want}")

    n = len(kls)
    kls_sorted = sorted(kls)
    if rep["data"]["positions"] != n or rep["data"]["windows"] != windows or rep["data"]["ctx"] != C:
        errors.append(f"data: {rep['data']} vs windows {windows} positions {n} ctx {C}")
    lg = rep["logits"]
    near("kl_mean", lg["kl_mean"], sum(kls) / n, 1e-4, 1e-7)
    near("kl_max", lg["kl_max"], kls_sorted[-1], 1e-4, 1e-7)
    near("kl_p999", lg["kl_p999"], kls_sorted[math.ceil(0.999 * n) - 1], 1e-4, 1e-7)
    near("top1", lg["top1"], agree / n, 0.0, 2.0 / n)
    near("ppl_ref", lg["ppl_ref"], math.exp(nll_r / n), 1e-5, 0)
    near("ppl_cand", lg["ppl_cand"], math.exp(nll_c / n), 1e-5, 0)
    near("ppl_ratio", lg["ppl_ratio"], math.exp((nll_c - nll_r) / n), 1e-5, 0)
    for l in range(R.L):
        L = rep["layers"][l]
        for j, key in enumerate(("attn", "mlp", "block")):
            near(f"layer {l} {key}", L[key], rel(acc[l, j]), 1e-4, 1e-7)
        want = {key for (ll, key), d in differs.items() if d and ll == l}
        if set(L["linears"]) != want:
            errors.append(f"layer {l}: linears reported {sorted(L['linears'])}, differing {sorted(want)}")
        for key in want & set(L["linears"]):
            near(f"layer {l} {key}", L["linears"][key], rel(lin_acc[(l, key)]), 1e-4, 1e-7)
    print(f"reference: windows {windows} positions {n} kl_mean {sum(kls) / n:.6g} top1 {agree / n:.4f} "
          f"ppl_ratio {math.exp((nll_c - nll_r) / n):.6f}")
    for e in errors:
        print("MISMATCH " + e, file=sys.stderr)
    return 1 if errors else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prune")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sparsity", type=float, required=True)
    p.add_argument("--targets", required=True)
    c = sub.add_parser("check")
    c.add_argument("--ref", required=True)
    c.add_argument("--cand", required=True)
    c.add_argument("--ids", required=True)
    c.add_argument("--ctx", type=int, required=True)
    c.add_argument("--max-windows", type=int, default=0)
    c.add_argument("--report", required=True)
    a = ap.parse_args()
    return cmd_prune(a) if a.cmd == "prune" else cmd_check(a)


if __name__ == "__main__":
    sys.exit(main())
