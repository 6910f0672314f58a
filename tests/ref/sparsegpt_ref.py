#!/usr/bin/env python3
"""Independent float64 NumPy reference for spx's pruning kernels (prune/).

Written from the algorithm descriptions (IST-DASLab/sparsegpt, locuslab/wanda, the
Sparse-Expansion damping retry), deliberately simple: the Hessian is a literal per-sequence
running mean, U comes from the reference route chol(H) -> inverse -> chol(upper), and the sweep
updates the whole rest of the matrix after every column (no lazy block updates). Only the mask
selection follows the block rule, because it is part of the algorithm's definition.

  sparsegpt_ref.py gen DIR     write cases.txt, <case>.W.f32, <case>.X.f32 (fixed seed)
  sparsegpt_ref.py check DIR   compare the C outputs (<case>.out.f32, .H.f32, .colsq.f64,
                               .rep.txt written by test_prune_sparsegpt) with this reference

N:M convention (as spx): nm_n = weights KEPT per group of nm_m.
Ties (where the original leaves them unspecified): the lower column index is pruned first.
"""
import os
import sys

import numpy as np

# name, method, rows, cols, nseq, seqlen, sparsity, nm_n, nm_m, blocksize, percdamp, retry_damp,
# max_retries, special ("" | "dead" | "singular")
CASES = [
    ("sgpt_u50", "sparsegpt", 48, 320, 6, 96, 0.5, 0, 0, 128, 0.01, 0.01, 8, ""),
    ("sgpt_u70", "sparsegpt", 48, 320, 6, 96, 0.7, 0, 0, 128, 0.01, 0.01, 8, ""),
    ("sgpt_24", "sparsegpt", 48, 320, 6, 96, 0.0, 2, 4, 128, 0.01, 0.01, 8, ""),
    ("sgpt_48", "sparsegpt", 48, 320, 6, 96, 0.0, 4, 8, 128, 0.01, 0.01, 8, ""),
    ("sgpt_dead", "sparsegpt", 48, 320, 5, 96, 0.5, 0, 0, 128, 0.01, 0.01, 8, "dead"),
    ("sgpt_dead24", "sparsegpt", 48, 320, 5, 96, 0.0, 2, 4, 64, 0.01, 0.01, 8, "dead"),
    ("sgpt_singular", "sparsegpt", 32, 128, 2, 20, 0.5, 0, 0, 128, 0.0, 0.01, 8, "singular"),
    ("wanda_u50", "wanda", 48, 320, 6, 96, 0.5, 0, 0, 128, 0.01, 0.01, 8, ""),
    ("wanda_24", "wanda", 48, 320, 6, 96, 0.0, 2, 4, 128, 0.01, 0.01, 8, ""),
    ("wanda_48", "wanda", 48, 320, 6, 96, 0.0, 4, 8, 128, 0.01, 0.01, 8, ""),
    ("mag_u50", "magnitude", 48, 320, 1, 8, 0.5, 0, 0, 128, 0.01, 0.01, 8, ""),
    ("mag_24", "magnitude", 48, 320, 1, 8, 0.0, 2, 4, 128, 0.01, 0.01, 8, ""),
]


def gen_inputs(rng, tokens, cols, special):
    mix = np.eye(cols) + 0.5 * rng.standard_normal((cols, cols)) / np.sqrt(cols)
    scale = np.exp(0.7 * rng.standard_normal(cols))
    scale[rng.choice(cols, 3, replace=False)] *= 20.0          # a few outlier features
    X = (rng.standard_normal((tokens, cols)) @ mix) * scale
    if special == "dead":
        X[:, [3, 50, 51, 200, 319]] = 0.0
    if special == "singular":                                   # duplicated inputs
        X[:, 7] = X[:, 6]
        X[:, 100] = X[:, 99]
    return X.astype(np.float32)


def gen(d):
    rng = np.random.default_rng(0)
    with open(os.path.join(d, "cases.txt"), "w") as f:
        for c in CASES:
            name, method, rows, cols, nseq, seqlen = c[:6]
            W = rng.standard_normal((rows, cols)).astype(np.float32)
            X = gen_inputs(rng, nseq * seqlen, cols, c[13])
            W.astype("<f4").tofile(os.path.join(d, name + ".W.f32"))
            X.astype("<f4").tofile(os.path.join(d, name + ".X.f32"))
            f.write(" ".join(str(v) for v in c[:13]) + "\n")


def hessian_ref(X, nseq, seqlen):
    """Per sequence: H *= n/(n+1); n += 1; H += (2/n) X X^T. Wanda: same with 1/n, diag only."""
    cols = X.shape[1]
    H = np.zeros((cols, cols))
    colsq = np.zeros(cols)
    n = 0
    for s in range(nseq):
        x = X[s * seqlen:(s + 1) * seqlen].astype(np.float64).T   # cols x tokens
        H *= n / (n + 1)
        colsq *= n / (n + 1)
        n += 1
        H += (2.0 / n) * (x @ x.T)
        colsq += np.sum(x * x, axis=1) / n
    return H, colsq


def nm_prune_mask(score, keep):
    """score [rows x M]: True for the M-keep smallest per row, ties by lower index first."""
    order = np.argsort(score, axis=1, kind="stable")[:, :score.shape[1] - keep]
    mask = np.zeros(score.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def sparsegpt_ref(W, H, sparsity, keep, m, bs, percdamp, retry_damp, max_retries):
    W = W.astype(np.float64).copy()
    H = H.copy()
    c = H.shape[0]
    dead = np.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    mean = np.mean(np.diag(H))
    U = None
    for k in range(max_retries + 1):
        Hd = H + (percdamp + k * retry_damp) * mean * np.eye(c)
        try:
            L = np.linalg.cholesky(Hd)
            Linv = np.linalg.inv(L)
            U = np.linalg.cholesky(Linv.T @ Linv).T               # upper, H^-1 = U^T U
        except np.linalg.LinAlgError:
            continue
        if np.all(np.isfinite(U)):
            break
        U = None
    if U is None:
        return None, -1, 0.0
    d = np.diag(U)
    mask = np.zeros(W.shape, dtype=bool)
    loss = 0.0
    for i1 in range(0, c, bs):
        i2 = min(i1 + bs, c)
        if m == 0 and sparsity > 0:
            sc = W[:, i1:i2] ** 2 / d[i1:i2] ** 2
            th = np.sort(sc.ravel())[int(sc.size * sparsity)]
            mask[:, i1:i2] = sc <= th
        for i in range(i1, i2):
            if m and (i - i1) % m == 0:
                mask[:, i:i + m] = nm_prune_mask(W[:, i:i + m] ** 2 / d[i:i + m] ** 2, keep)
            err = np.where(mask[:, i], W[:, i] / d[i], 0.0)
            loss += np.sum(err ** 2) / 2
            W[:, i:] -= np.outer(err, U[i, i:])
            W[mask[:, i], i] = 0.0
    return W, k, loss


def wanda_ref(W, colsq, sparsity, keep, m):
    score = np.abs(W.astype(np.float64)) * np.sqrt(colsq)
    return prune_by_score(W, score, sparsity, keep, m)


def prune_by_score(W, score, sparsity, keep, m):
    W = W.copy()
    rows, cols = W.shape
    if m:
        for g in range(0, cols, m):
            W[:, g:g + m][nm_prune_mask(score[:, g:g + m], keep)] = 0.0
    else:
        k = int(cols * sparsity)
        order = np.argsort(score, axis=1, kind="stable")[:, :k]
        np.put_along_axis(W, order, 0.0, axis=1)
    return W


def magnitude_ref(W, sparsity, keep, m):
    if m:
        return prune_by_score(W, np.abs(W.astype(np.float64)), 0.0, keep, m)
    a = np.abs(W)
    th = np.sort(a.ravel())[int(a.size * sparsity)]
    W = W.copy()
    W[a <= th] = 0.0
    return W


def rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def check(d):
    fails = 0
    for line in open(os.path.join(d, "cases.txt")):
        f = line.split()
        name, method = f[0], f[1]
        rows, cols, nseq, seqlen = map(int, f[2:6])
        sparsity = float(f[6])
        keep, m, bs = int(f[7]), int(f[8]), int(f[9])
        percdamp, retry_damp, max_retries = float(f[10]), float(f[11]), int(f[12])
        p = lambda ext: os.path.join(d, name + ext)
        W = np.fromfile(p(".W.f32"), dtype="<f4").reshape(rows, cols)
        X = np.fromfile(p(".X.f32"), dtype="<f4").reshape(nseq * seqlen, cols)
        Wc = np.fromfile(p(".out.f32"), dtype="<f4").reshape(rows, cols).astype(np.float64)
        Hc = np.fromfile(p(".H.f32"), dtype="<f4").reshape(cols, cols).astype(np.float64)
        cqc = np.fromfile(p(".colsq.f64"), dtype="<f8")
        rc, retries, pruned, zeros, loss_c, _damp = open(p(".rep.txt")).read().split()
        rc, retries = int(rc), int(retries)
        H, colsq = hessian_ref(X, nseq, seqlen)
        msgs, ok = [], rc == 0
        # fp32 ssyrk accumulation vs float64: ~1e-7 relative
        eh, ec = rel(Hc, H), rel(cqc, colsq)
        ok &= eh < 1e-6 and ec < 1e-12
        msgs.append("H %.1e colsq %.1e" % (eh, ec))
        if method == "sparsegpt":
            Wr, kr, loss_r = sparsegpt_ref(W, H, sparsity, keep, m, bs, percdamp, retry_damp,
                                           max_retries)
            if Wr is None:
                ok = False
                msgs.append("reference Cholesky failed")
            else:
                ew = rel(Wc, Wr)
                mism = int(np.sum((Wc == 0) != (Wr == 0)))
                el = abs(float(loss_c) - loss_r) / loss_r
                # fp32 sweep + fp32 H vs all-float64: observed ~1e-7..1e-6
                ok &= ew < 1e-5 and mism == 0 and retries == kr and el < 1e-4
                msgs.append("W' %.1e mask mismatches %d retries C %d ref %d loss %.1e sparsity %.4f"
                            % (ew, mism, retries, kr, el, np.mean(Wc == 0)))
        else:
            Wr = wanda_ref(W, colsq, sparsity, keep, m) if method == "wanda" else \
                magnitude_ref(W, sparsity, keep, m)
            mism = int(np.sum((Wc == 0) != (Wr == 0)))
            exact = bool(np.array_equal(Wc, Wr.astype(np.float64)))
            ok &= mism == 0 and exact
            msgs.append("mask mismatches %d identical %s sparsity %.4f" % (mism, exact, np.mean(Wc == 0)))
        if m:   # exactly nm_n nonzeros kept per group (no zeros in W to start with, no dead here)
            nz = np.count_nonzero(Wc.reshape(rows, cols // m, m), axis=2)
            okg = bool(np.all(nz == keep)) if "dead" not in name else bool(np.all(nz <= keep))
            ok &= okg
            msgs.append("N:M groups ok %s" % okg)
        print("%-14s %-4s %s" % (name, "ok" if ok else "FAIL", "; ".join(msgs)))
        fails += not ok
    return fails


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("gen", "check"):
        sys.stderr.write(__doc__)
        return 2
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
        return 0
    return 1 if check(sys.argv[2]) else 0


if __name__ == "__main__":
    sys.exit(main())
