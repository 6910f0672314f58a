#!/usr/bin/env python3
"""cett_ref.py: float64 NumPy reference of the Sparsing Law CETT threshold search and of the
thresholded forward (spx sparsity; definitions in verify/spx_sparsity.h).

  cett_ref.py gen DIR [MODEL_DIR]   write the cases (MODEL_DIR: a Hugging Face checkpoint whose
                                    converted .spx the C side opens as DIR/fwd.spx)
  cett_ref.py check DIR [MODEL_DIR] compare the C results written by test_verify_sparsity

CETT case: random activations a [n x ffn] (about a third exact zeros, as after ReLU, one
all-zero token) and W_down [dim x ffn] with one zero column. Reference: n_ij = |a_ij| ||d_j||,
n_min, n_p99 = np.percentile(n, 99), T_k = n_min + (n_p99 - n_min) k / 65535,
CETT(T) = mean_i ||sum_{n_ij <= T} a_ij d_j|| / ||sum_j a_ij d_j|| (0 for a zero output), and the
binary search for the largest k with CETT(T_k) <= c (-1: none).
Tolerances: n_min / n_p99 1e-12 relative and CETT 1e-10 absolute (both sides in double from the
same fp32 data; only summation orders differ, ~1e-15); the searched k must be identical (the
CETT values of neighbouring candidates differ from c by far more than 1e-10 on this data: a
tie would show up as a k mismatch, never as a silent pass).
Forward case: the reference forward of tests/ref/llama_ref.py with down_proj's input thresholded
(|h| <= thr[l][j] or h == 0 -> 0), thresholds = fp32 per-neuron medians of |h| of the dense
reference times a random factor in [0.5, 1.5). Bound per position ||spx - ref|| / ||ref|| < 1e-5
(the dense bound of runtime_ref.sh: fp32 round-off); the zeroed count must match exactly (an
activation within fp32 round-off of its threshold would flip it: none on this fixed case).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402

K = 65536
CS = [0.0, 0.001, 0.01, 0.05, 0.1, 0.2, 0.35, 0.5, 0.9]
IDS = [1, 17, 299, 42, 5, 99, 250, 3, 77, 123, 8, 200, 64, 31, 150, 11]


class Cett:
    def __init__(self, a, down):
        self.a = a.astype(np.float64)
        self.d = down.astype(np.float64)                   # [dim x ffn]
        self.cn = np.sqrt((self.d ** 2).sum(axis=0))       # [ffn]
        self.nv = np.abs(self.a) * self.cn[None, :]        # [n x ffn]
        self.y = np.linalg.norm(self.a @ self.d.T, axis=1)  # [n]
        self.nmin = self.nv.min()
        self.p99 = np.percentile(self.nv, 99)
        self.memo = {}

    def cand(self, k):
        return self.nmin + (self.p99 - self.nmin) * k / (K - 1)

    def cett(self, T):
        part = np.where(self.nv <= T, self.a, 0.0) @ self.d.T
        r = np.zeros(len(self.y))
        nz = self.y > 0
        r[nz] = np.linalg.norm(part[nz], axis=1) / self.y[nz]
        return r.mean()

    def search(self, c):
        lo, hi, best = 0, K - 1, -1
        while lo <= hi:
            mid = (lo + hi) // 2
            if mid not in self.memo:
                self.memo[mid] = self.cett(self.cand(mid))
            if self.memo[mid] <= c:
                best, lo = mid, mid + 1
            else:
                hi = mid - 1
        return best


class ThrDown:
    """Stands for W[down_proj.weight] in llama_ref.forward: `x @ W.T` lands in __rmatmul__,
    which thresholds (and records) the hidden activations before the product."""
    __array_ufunc__ = None

    def __init__(self, w, thr, log):
        self.w, self.thr, self.log = w, thr, log

    @property
    def T(self):
        return self

    def __rmatmul__(self, h):
        h = np.array(h, dtype=np.float64)
        if self.thr is not None:
            z = (h == 0) | (np.abs(h) <= self.thr[None, :])
            h[z] = 0.0
            self.log["zero"] += int(z.sum())
            self.log["total"] += h.size
        self.log["h"].append(h)
        return h @ self.w.T


def run_forward(model_dir, thr):
    cfg = llama_ref.json.load(open(os.path.join(model_dir, "config.json")))
    W = dict(llama_ref.load_weights(model_dir, None))
    log = {"zero": 0, "total": 0, "h": []}
    for i in range(cfg["num_hidden_layers"]):
        name = f"model.layers.{i}.mlp.down_proj.weight"
        W[name] = ThrDown(np.asarray(W[name], dtype=np.float64), None if thr is None else thr[i], log)
    return llama_ref.forward(cfg, W, IDS), log


def gen(d, model_dir):
    rng = np.random.default_rng(20241122)
    n, dim, ffn = 300, 16, 48
    a = rng.standard_normal((n, ffn)) * rng.exponential(1.0, (1, ffn))
    a[rng.random((n, ffn)) < 0.33] = 0.0
    a[7] = 0.0
    down = rng.standard_normal((dim, ffn)) / np.sqrt(ffn)
    down[:, 5] = 0.0
    a.astype("<f4").tofile(os.path.join(d, "cett_a.f32"))
    down.astype("<f4").tofile(os.path.join(d, "cett_down.f32"))
    with open(os.path.join(d, "cett_meta.txt"), "w") as f:
        f.write(f"{n} {dim} {ffn}\n")
    with open(os.path.join(d, "cett_c.txt"), "w") as f:
        f.write(" ".join(repr(c) for c in CS) + "\n")
    if model_dir:
        _, log = run_forward(model_dir, None)
        thr = np.stack([np.median(np.abs(h), axis=0) * rng.uniform(0.5, 1.5, h.shape[1]) for h in log["h"]])
        thr.astype("<f4").tofile(os.path.join(d, "fwd_thr.f32"))
        np.asarray(IDS, dtype="<u4").tofile(os.path.join(d, "fwd_ids.u32"))


def check(d, model_dir):
    ok = True
    n, dim, ffn = map(int, open(os.path.join(d, "cett_meta.txt")).read().split())
    a = np.fromfile(os.path.join(d, "cett_a.f32"), "<f4").reshape(n, ffn)
    down = np.fromfile(os.path.join(d, "cett_down.f32"), "<f4").reshape(dim, ffn)
    R = Cett(a, down)
    lines = open(os.path.join(d, "cett_out.txt")).read().split("\n")
    nmin, p99 = map(float, lines[0].split())
    if abs(nmin - R.nmin) > 1e-12 * max(R.nmin, 1e-300) or abs(p99 - R.p99) > 1e-12 * R.p99:
        print(f"range: C {nmin} {p99} vs ref {R.nmin} {R.p99}")
        ok = False
    nk = nc = 0
    for ln in lines[1:]:
        p = ln.split()
        if not p:
            continue
        if p[0] == "k":
            k, got = int(p[1]), float(p[2])
            want = R.cett(R.cand(k))
            nk += 1
            if abs(got - want) > 1e-10:
                print(f"CETT at k={k}: C {got!r} vs ref {want!r}")
                ok = False
        else:
            c, k, T, cv = float(p[1]), int(p[2]), float(p[3]), float(p[4])
            kr = R.search(c)
            nc += 1
            margin = min([abs(R.memo[m] - c) for m in R.memo] or [1.0])
            if k != kr or (kr >= 0 and (abs(T - R.cand(kr)) > 1e-12 * R.p99 or abs(cv - R.memo[kr]) > 1e-10)):
                print(f"search c={c}: C k={k} T={T} cett={cv} vs ref k={kr} (min |CETT - c| on the path {margin:.3g})")
                ok = False
    print(f"cett: {nk} CETT values and {nc} searches compared; n_min {R.nmin:.6g} n_p99 {R.p99:.6g}")
    if model_dir:
        thr = np.fromfile(os.path.join(d, "fwd_thr.f32"), "<f4").astype(np.float64)
        cfg = llama_ref.json.load(open(os.path.join(model_dir, "config.json")))
        thr = thr.reshape(cfg["num_hidden_layers"], -1)
        logits, log = run_forward(model_dir, thr)
        got = np.fromfile(os.path.join(d, "fwd_logits.f32"), "<f4").astype(np.float64).reshape(logits.shape)
        rel = np.linalg.norm(got - logits, axis=1) / np.linalg.norm(logits, axis=1)
        dense, _ = run_forward(model_dir, None)
        rel_dense = np.linalg.norm(dense - logits, axis=1) / np.linalg.norm(logits, axis=1)
        z, t = map(int, open(os.path.join(d, "fwd_zero.txt")).read().split())
        print(f"forward: max rel err {rel.max():.3g} (thresholded vs dense reference {rel_dense.max():.3g}), "
              f"zeroed C {z}/{t} ref {log['zero']}/{log['total']}")
        if not rel.max() < 1e-5:
            ok = False
        if rel_dense.max() < 1e-3:
            print("forward: the thresholds changed nothing (test would not detect a missing threshold)")
            ok = False
        if (z, t) != (log["zero"], log["total"]):
            ok = False
    return ok


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("gen", "check"):
        print(__doc__)
        return 2
    d, model_dir = sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
    if sys.argv[1] == "gen":
        gen(d, model_dir)
        return 0
    return 0 if check(d, model_dir) else 1


if __name__ == "__main__":
    sys.exit(main())
