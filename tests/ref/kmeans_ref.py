#!/usr/bin/env python3
"""kmeans_ref.py DIR: NumPy float64 reference for cluster/ (PCA, k-means Lloyd, nearest-centroid
assignment, ARI, purity). DIR holds the arrays written by tests/unit/test_cluster_export.c.
Exit 0 when every comparison is within its tolerance, 1 otherwise (messages on stderr).
Only the standard library and NumPy."""
import json
import os
import sys
from collections import Counter

import numpy as np

FAILS = []


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL: " + msg, file=sys.stderr)


def load(d, name, dtype, shape):
    a = np.fromfile(os.path.join(d, name), dtype=dtype)
    return a.reshape(shape)


def sign_fix(v):
    """spx convention: the largest-|value| entry (first on ties) is positive."""
    return v if v[np.argmax(np.abs(v))] >= 0 else -v


def ref_pca(d, meta):
    n, dim, k = meta["n"], meta["d"], meta["k"]
    X = load(d, "pca_X.f32", "<f4", (n, dim)).astype(np.float64)
    mean_c = load(d, "pca_mean.f32", "<f4", (dim,)).astype(np.float64)
    P_c = load(d, "pca_P.f32", "<f4", (k, dim)).astype(np.float64)
    ev_c = load(d, "pca_ev.f64", "<f8", (k,))
    tot_c = load(d, "pca_total.f64", "<f8", (1,))[0]
    Y_c = load(d, "pca_Y.f32", "<f4", (n, k)).astype(np.float64)

    mean = X.mean(axis=0)
    cov = np.cov(X, rowvar=False)
    w, V = np.linalg.eigh(cov)
    order = np.argsort(w)[::-1]
    w, V = w[order], V[:, order]
    # mean: C rounds a double mean to fp32 -> half an ulp (2^-24 relative)
    check(np.all(np.abs(mean_c - mean) <= 2.0 ** -24 * np.abs(mean) + 1e-12), "pca mean")
    # eigenvalues and trace: both sides double; 1e-9 relative covers the different summation
    # orders (C: per-chunk centered dsyrk + merge; NumPy: one centered product)
    check(np.all(np.abs(ev_c - w[:k]) <= 1e-9 * w[0]), "pca explained variance %s vs %s" % (ev_c, w[:k]))
    check(abs(tot_c - np.trace(cov)) <= 1e-10 * np.trace(cov), "pca total variance")
    # components, only meaningful for well-separated eigenvalues (planted gaps are > 10%)
    gaps = (w[: k] - w[1: k + 1]) / w[0]
    check(np.all(gaps > 1e-3), "pca test data has well-separated eigenvalues")
    for c in range(k):
        v = V[:, c]
        cos = abs(np.dot(v, P_c[c])) / np.linalg.norm(P_c[c])
        check(cos > 1 - 1e-5, "pca component %d |cos| %.12f" % (c, cos))
        # same sign convention -> same vector up to fp32 rounding
        check(np.max(np.abs(sign_fix(v) - P_c[c])) < 1e-5, "pca component %d sign/entries" % c)
    # projection with C's own fp32 mean and P: fp32 (x - mean) and a d-term fp32 dot product
    Y = (X - mean_c) @ P_c.T
    rel = np.abs(Y - Y_c) / np.linalg.norm(X - mean_c, axis=1)[:, None]
    check(rel.max() < 4 * dim * 2.0 ** -24, "pca projection relative error %g" % rel.max())
    print("pca: ev %s, max |cos| defect %.2e, projection rel err %.2e" % (
        np.array2string(w[:k], precision=3), max(1 - abs(np.dot(V[:, c], P_c[c])) for c in range(k)), rel.max()))


def lloyd(X, C, tol, max_iter):
    """sklearn-style Lloyd in float64 with spx's stopping rule and empty-cluster re-seeding."""
    tol_abs = tol * X.var(axis=0).mean() if tol > 0 else 0.0
    prev = None
    n_iter = 0
    reseeds = 0
    for it in range(max_iter):
        D = ((X[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
        lab = D.argmin(axis=1)  # first minimum: ties -> lowest index
        changed = prev is None or np.any(lab != prev)
        counts = np.bincount(lab, minlength=C.shape[0]).astype(np.float64)
        sums = np.zeros_like(C)
        np.add.at(sums, lab, X)
        far = D[np.arange(len(X)), lab].copy()
        for j in range(C.shape[0]):
            if counts[j] > 0:
                continue
            ok = np.where((far >= 0) & (counts[lab] >= 2))[0]
            p = ok[np.argmax(far[ok])]
            old = lab[p]
            sums[old] -= X[p]
            counts[old] -= 1
            sums[j] = X[p]
            counts[j] = 1
            lab[p] = j
            far[p] = -1
            reseeds += 1
        Cn = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], C)
        shift = ((Cn - C) ** 2).sum()
        C = Cn
        prev = lab
        n_iter = it + 1
        if not changed or shift <= tol_abs:
            break
    D = ((X[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
    lab = D.argmin(axis=1)
    inertia = D[np.arange(len(X)), lab].sum()
    return C, lab, n_iter, reseeds, inertia


def ref_kmeans(d, meta):
    n, dim, k, nq = meta["n"], meta["d"], meta["k"], meta["nq"]
    X = load(d, "km_X.f32", "<f4", (n, dim)).astype(np.float64)
    for v in (0, 1):
        init = load(d, "km%d_init.f32" % v, "<f4", (k, dim)).astype(np.float64)
        C_c = load(d, "km%d_C.f32" % v, "<f4", (k, dim)).astype(np.float64)
        lab_c = load(d, "km%d_labels.u32" % v, "<u4", (n,))
        inertia_c, n_iter_c, reseeds_c, tol = load(d, "km%d_stats.f64" % v, "<f8", (4,))
        # k-means++ picks data points
        rows = {tuple(r) for r in X}
        check(all(tuple(c) in rows for c in init), "kmeans%d: initial centers are data points" % v)
        C, lab, n_iter, reseeds, inertia = lloyd(X, init.copy(), tol, meta["max_iter"])
        check(np.array_equal(lab, lab_c), "kmeans%d: %d labels differ" % (v, int(np.sum(lab != lab_c))))
        # centroids: C stores fp32 means of the same points (double sums) -> fp32 rounding, 1e-5 rel
        err = np.abs(C - C_c) / (np.abs(C) + 1.0)
        check(err.max() < 1e-5, "kmeans%d: centroid rel error %g" % (v, err.max()))
        check(abs(inertia - inertia_c) <= 1e-6 * inertia, "kmeans%d: inertia %r vs %r" % (v, inertia_c, inertia))
        check(n_iter == int(n_iter_c), "kmeans%d: iterations %d vs %d" % (v, int(n_iter_c), n_iter))
        check(reseeds == int(reseeds_c), "kmeans%d: reseeds %d vs %d" % (v, int(reseeds_c), reseeds))
        print("kmeans tol=%g: %d iterations, centroid rel err %.2e, inertia %.6f" % (
            tol, n_iter, err.max(), inertia))
    # nearest-centroid rule on fresh points against the exported fp32 centroids (naive float64)
    C = load(d, "km0_C.f32", "<f4", (k, dim)).astype(np.float64)
    Q = load(d, "km_Q.f32", "<f4", (nq, dim)).astype(np.float64)
    qlab = load(d, "km_Qlab.u32", "<u4", (nq,))
    D = ((Q[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
    Ds = np.sort(D, axis=1)
    clear = (Ds[:, 1] - Ds[:, 0]) > 1e-9 * Ds[:, 1]  # exclude (near-)ties
    check(np.array_equal(D.argmin(axis=1)[clear], qlab[clear]), "assign: labels differ from float64 argmin")
    print("assign: %d of %d fresh points (ties excluded) agree" % (int(clear.sum()), nq))


def ref_metrics(d, meta):
    n = meta["n"]
    a = load(d, "lab_a.u32", "<u4", (n,)).tolist()
    b = load(d, "lab_b.u32", "<u4", (n,)).tolist()
    ari_c, pur_c = load(d, "metrics.f64", "<f8", (2,))

    def c2(m):
        return m * (m - 1) / 2.0

    table = Counter(zip(a, b))
    sij = sum(c2(v) for v in table.values())
    sa = sum(c2(v) for v in Counter(a).values())
    sb = sum(c2(v) for v in Counter(b).values())
    exp = sa * sb / c2(n)
    ari = (sij - exp) / ((sa + sb) / 2.0 - exp)
    best = {}
    for (x, y), v in table.items():
        best[x] = max(best.get(x, 0), v)
    purity = sum(best.values()) / float(n)
    check(abs(ari - ari_c) <= 1e-12, "ari %r vs %r" % (ari_c, ari))
    check(abs(purity - pur_c) <= 1e-12, "purity %r vs %r" % (pur_c, purity))
    print("metrics: ari %.12f purity %.12f" % (ari, purity))


def main():
    if len(sys.argv) != 2:
        print("usage: kmeans_ref.py DIR", file=sys.stderr)
        return 2
    d = sys.argv[1]
    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    ref_pca(d, meta["pca"])
    ref_kmeans(d, meta["kmeans"])
    ref_metrics(d, meta["metrics"])
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
