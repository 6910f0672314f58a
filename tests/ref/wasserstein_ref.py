#!/usr/bin/env python3
"""wasserstein_ref.py: independent float64 reference for `spx analyze` (cluster/spx_wasserstein.c,
cluster/spx_analyze.c). Standard library + NumPy only (no scipy).

The C code integrates in QUANTILE form with a rational Phi^{-1}. This reference uses the CDF form
    W1 = integral over t of |F_emp(t) - Phi(t)| dt
with the closed-form antiderivatives of Phi on every segment between consecutive sorted samples:
    integral_a^b Phi = A(b) - A(a),  A(t) = t Phi(t) + phi(t)     (used for t <= 0)
                     = (b - a) + B(b) - B(a), B(t) = phi(t) - t (1 - Phi(t))  (t >= 0, no cancellation)
and splits a segment where F_emp = k/n crosses Phi at c = Phi^{-1}(k/n), found by bisection on
math.erfc (independent of the C quantile function). Normalization: z = (y - mean) / std with the
population std (ddof 0); all-identical samples are "constant" with distance 0.

Commands:
  selftest                 the reference against brute-force quadrature and closed forms
  check-export DIR         cases written by test_cluster_wasserstein (SPX_W1_EXPORT_DIR=DIR)
  validate-json FILE       an `spx analyze --json` report against specs/spx-analyze-json.md
  check-dump PREFIX ...    one layer dumped by `spx analyze --dump-layer`: distances from the raw
                           outputs, outputs = inputs x W^T, inputs = a float64 reference forward of
                           the calibration windows (see --help of the subcommand)
Exit 0 when every comparison holds, 1 otherwise (messages on stderr)."""
import argparse
import json
import math
import os
import random
import sys

import numpy as np

FAILS = []
SQRT2 = math.sqrt(2.0)
_erfc = np.frompyfunc(math.erfc, 1, 1)


def check(cond, msg):
    if not cond:
        FAILS.append(msg)
        print("FAIL: " + msg, file=sys.stderr)


def Phi(t):
    return 0.5 * np.asarray(_erfc(-np.asarray(t, dtype=np.float64) / SQRT2), dtype=np.float64)


def Q(t):  # 1 - Phi(t), accurate for t > 0
    return 0.5 * np.asarray(_erfc(np.asarray(t, dtype=np.float64) / SQRT2), dtype=np.float64)


def phi(t):
    t = np.asarray(t, dtype=np.float64)
    return np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)


def int_Phi(a, b):
    """integral_a^b Phi(t) dt, vectorized, a <= b finite."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    A = lambda t: t * Phi(t) + phi(t)
    B = lambda t: phi(t) - t * Q(t)
    neg = A(np.minimum(b, 0.0)) - A(np.minimum(a, 0.0))          # part on t <= 0
    pos = (np.maximum(b, 0.0) - np.maximum(a, 0.0)) + B(np.maximum(b, 0.0)) - B(np.maximum(a, 0.0))
    return neg + pos


_ppf_cache = {}


def levels_ppf(n):
    """c_k = Phi^{-1}(k/n), k = 1..n-1, by 100 bisection steps on erfc (lower half by symmetry)."""
    if n in _ppf_cache:
        return _ppf_cache[n]
    k = np.arange(1, n, dtype=np.float64)
    p = np.minimum(k, n - k) / n            # the smaller tail probability, exact
    lo, hi = np.full(p.shape, -40.0), np.zeros(p.shape)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        below = Phi(mid) < p
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    c = 0.5 * (lo + hi)
    c = np.where(k <= n - k, c, -c)
    _ppf_cache[n] = c
    return c


def normalize(y):
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0 or np.all(y == y[0]):
        return None
    return (y - y.mean()) / y.std()


def w1_sorted_cdf(z):
    """Exact W1(empirical(z), N(0,1)) in CDF form; z sorted ascending."""
    n = z.size
    total = (z[0] * Phi(z[0]) + phi(z[0])) + (phi(z[-1]) - z[-1] * Q(z[-1]))   # the two tails
    if n > 1:
        l, r, p, c = z[:-1], z[1:], np.arange(1, n) / n, levels_ppf(n)
        up = int_Phi(l, r) - p * (r - l)                      # integral of Phi - p over [l, r]
        cc = np.clip(c, l, r)
        split = (p * (cc - l) - int_Phi(l, cc)) + (int_Phi(cc, r) - p * (r - cc))
        seg = np.where(c <= l, up, np.where(c >= r, -up, split))
        total = total + seg.sum()
    return float(total)


def w1(y):
    z = normalize(y)
    return 0.0 if z is None else w1_sorted_cdf(np.sort(z))


def w1_brute(y, pts=2_000_001):
    """Trapezoid quadrature of |F_emp - Phi| on a fine grid (self-test only, ~1e-6 accurate)."""
    z = np.sort(normalize(y))
    t = np.linspace(min(z[0], -12.0) - 1.0, max(z[-1], 12.0) + 1.0, pts)
    F = np.searchsorted(z, t, side="right") / z.size
    f = np.abs(F - Phi(t))
    return float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(t)))


RADEMACHER = 2.0 * (2.0 * 0.5 * math.erfc(-1.0 / SQRT2) - 1.5 - 1.0 / math.sqrt(2 * math.pi)
                    + 2.0 * math.exp(-0.5) / math.sqrt(2 * math.pi))


def selftest():
    rng = np.random.default_rng(1)
    # 1. closed forms
    check(abs(w1([-1.0, 1.0]) - RADEMACHER) < 1e-14, "Rademacher %.17g vs %.17g" % (w1([-1.0, 1.0]), RADEMACHER))
    check(abs(w1([3.0, 5.0] * 50) - RADEMACHER) < 1e-13, "Rademacher, 100 samples")
    # 2. against brute-force quadrature (its own error ~1e-6 with 2M points)
    for name, y in [("normal", rng.standard_normal(300)), ("exp", rng.exponential(size=257)),
                    ("bimodal", np.concatenate([rng.normal(-3, 0.3, 100), rng.normal(2, 1, 61)])),
                    ("ties", np.round(rng.standard_normal(200) * 2) / 2), ("three", [0.0, 1.0, 5.0])]:
        a, b = w1(y), w1_brute(y)
        # trapezoid error: <= h/2 (h = grid step ~1.5e-5) summed over the 1/n jumps of F_emp, plus
        # O(h^2) on the smooth parts: 1e-5 holds, while a formula mistake is >= 1e-3 here
        check(abs(a - b) < 1e-5, "%s: closed form %.12g vs quadrature %.12g" % (name, a, b))
    # 3. invariances: shift, positive scale, sign flip (N(0,1) is symmetric)
    y = rng.gamma(2.0, size=500)
    check(abs(w1(y) - w1(3.5 * y - 7.0)) < 1e-12, "affine invariance")
    check(abs(w1(y) - w1(-y)) < 1e-12, "mirror invariance")
    print("selftest: Rademacher %.15f, gamma(2) n=500 %.6f" % (RADEMACHER, w1(y)))


def check_export(d):
    with open(os.path.join(d, "cases.json")) as f:
        cases = json.load(f)
    worst = 0.0
    for c in cases:
        y = np.fromfile(os.path.join(d, c["file"]), dtype="<f4").astype(np.float64)
        check(y.size == c["n"], "%s: %d samples, want %d" % (c["name"], y.size, c["n"]))
        ref = w1(y)
        const = normalize(y) is None
        check(bool(c["constant"]) == const, "%s: constant flag %s vs %s" % (c["name"], c["constant"], const))
        # both sides float64 from the same fp32 samples; the C quantile function is accurate to
        # ~1e-15 relative and the summation orders differ: 1e-11 absolute + 1e-10 relative is
        # far above those errors and far below any formula mistake (>= 1e-6 for these n).
        err = abs(c["w1"] - ref)
        worst = max(worst, err)
        check(err <= 1e-11 + 1e-10 * ref, "%s (n=%d): C %.15g vs reference %.15g" % (c["name"], c["n"], c["w1"], ref))
        if not const:
            yy = y
            check(abs(c["mean"] - yy.mean()) <= 1e-12 * (1 + abs(yy.mean())), "%s: mean" % c["name"])
            check(abs(c["std"] - yy.std()) <= 1e-12 * yy.std(), "%s: std" % c["name"])
    print("check-export: %d cases, max |C - reference| = %.3g" % (len(cases), worst))


HF = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
      "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
      "ffn_down": "mlp.down_proj"}


class Capture:
    """Stands in for W^T of one linear inside llama_ref.forward: `x @ W.T` lands in __rmatmul__
    (numpy defers because __array_ufunc__ is None), which records x and returns x @ W^T."""
    __array_ufunc__ = None

    def __init__(self, wt):
        self.wt = wt
        self.seen = []

    def __rmatmul__(self, x):
        self.seen.append(np.array(x))
        return x @ self.wt


class Weight:
    def __init__(self, w, cap):
        self.w, self.T = w, cap


def windows_like_spx(ids, nsamples, seqlen, seed):
    """spx_calib_windows stream mode: random.seed(seed); i = randint(0, n - seqlen - 1)."""
    random.seed(seed)
    out = []
    for _ in range(nsamples):
        i = random.randint(0, len(ids) - seqlen - 1)
        out.append(ids[i:i + seqlen])
    return out


def check_dump(a):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import llama_ref  # the project's independent float64 forward

    blk, base = a.layer.split(".")[1], a.layer.split(".")[2]
    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    W = llama_ref.load_weights(a.model, None)
    wname = "model.layers.%s.%s.weight" % (blk, HF[base])
    Wt = W[wname]                                       # [rows x cols] float64
    rows, cols = Wt.shape
    X = np.fromfile(a.prefix + ".x.f32", dtype="<f4").astype(np.float64)
    m = X.size // cols
    X = X.reshape(m, cols)
    Y = np.fromfile(a.prefix + ".y.f32", dtype="<f4").astype(np.float64).reshape(rows, m)
    D = np.fromfile(a.prefix + ".w1.f64", dtype="<f8")
    tok = np.fromfile(a.prefix + ".tok.u32", dtype="<u4")
    idx = np.fromfile(a.prefix + ".idx.u64", dtype="<u8")
    check(D.size == rows and tok.size == m and idx.size == m, "dump sizes")
    check(np.all(np.diff(idx.astype(np.int64)) > 0), "token indices strictly increasing")

    # 1. distances from the raw outputs: same float32 data, float64 both sides (see check_export)
    ref = np.array([w1(Y[j]) for j in range(rows)])
    err = np.abs(ref - D)
    check(np.all(err <= 1e-11 + 1e-10 * ref), "distances vs reference: max err %.3g" % err.max())
    # 2. outputs = inputs x W^T: fp32 sgemm vs float64; bound cols * 2^-24 * (|W| |X|^T) per entry
    Yref = Wt @ X.T
    bound = cols * 2.0 ** -24 * (np.abs(Wt) @ np.abs(X).T) + 1e-30
    check(np.all(np.abs(Y - Yref) <= bound), "outputs vs X W^T: max ratio %.3g" % np.max(np.abs(Y - Yref) / bound))

    # 3. inputs = reference forward of the calibration windows
    ids = np.fromfile(a.tokens, dtype="<u4").tolist()
    wins = windows_like_spx(ids, a.nsamples, a.seqlen, a.seed)
    s_idx, pos = idx // a.seqlen, idx % a.seqlen
    check(all(wins[int(s)][int(p)] == int(t) for s, p, t in zip(s_idx, pos, tok)), "token ids vs windows")
    cap = Capture(Wt.T)
    W2 = dict(W)
    W2[wname] = Weight(Wt, cap)
    Xref = np.zeros((m, cols))
    for s in sorted(set(int(v) for v in s_idx)):
        cap.seen = []
        llama_ref.forward(cfg, W2, wins[s])
        xin = cap.seen[0].reshape(a.seqlen, cols)
        sel = np.nonzero(s_idx == s)[0]
        Xref[sel] = xin[pos[sel]]
    # fp32 runtime vs float64 after several blocks: 1e-4 relative to the row's norm
    rel = np.linalg.norm(X - Xref, axis=1) / (np.linalg.norm(Xref, axis=1) + 1e-30)
    check(rel.max() < 1e-4, "inputs vs reference forward: max relative row error %.3g" % rel.max())
    # distances of the float64 reference outputs: W1 is 1-Lipschitz in the normalized samples,
    # so an fp32 perturbation of ~1e-5 relative moves it by about that much
    D64 = np.array([w1(r) for r in (Wt @ Xref.T)])
    check(np.max(np.abs(D64 - D)) < 2e-4, "distances vs float64 forward: max err %.3g" % np.max(np.abs(D64 - D)))

    # 4. the JSON report for this layer agrees with the distances
    with open(a.json) as f:
        rep = json.load(f)
    L = [l for l in rep["layers"] if l["name"] == a.layer]
    check(len(L) == 1, "layer in JSON")
    if L:
        L = L[0]
        tol = 1e-12
        check(abs(L["mean"] - ref.mean()) < 1e-9 and abs(L["median"] - np.median(ref)) < 1e-9 and
              abs(L["max"] - ref.max()) < 1e-9, "JSON mean/median/max")
        check(L["n_above"] == int(np.sum(D > rep["threshold"])), "JSON n_above")
        order = sorted(range(rows), key=lambda j: (-D[j], j))
        check([t["index"] for t in L["top"]] == order[:len(L["top"])], "JSON top indices")
        check(all(abs(t["distance"] - D[t["index"]]) <= tol for t in L["top"]), "JSON top distances")
        check(L["rows"] == rows and L["cols"] == cols and rep["tokens"] == m, "JSON shape/tokens")
    print("check-dump %s: %d neurons x %d tokens; max |C - ref| %.3g; inputs rel err %.3g; "
          "vs float64 forward %.3g; mean %.4f max %.4f" % (a.layer, rows, m, err.max(), rel.max(),
                                                         np.max(np.abs(D64 - D)), ref.mean(), ref.max()))


LIN_ORDER = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]


def validate_json(path):
    """specs/spx-analyze-json.md, version 1: members, types and internal consistency."""
    with open(path) as f:
        r = json.load(f)
    num = (int, float)
    for k, t in [("schema", str), ("model", str), ("metric", str), ("normalization", str), ("nsamples", int),
                 ("seqlen", int), ("seed", int), ("max_tokens", int), ("tokens_total", int), ("tokens", int),
                 ("threshold", num), ("top_n", int), ("targets", list), ("layers", list), ("summary", dict)]:
        check(k in r and isinstance(r[k], t) and not isinstance(r[k], bool), "top-level member %s" % k)
    if FAILS:
        return
    check(r["schema"] == "spx-analyze/1" and r["metric"] == "w1_normal" and
          r["normalization"] == "zscore_population", "schema/metric/normalization values")
    check(r["tokens_total"] == r["nsamples"] * r["seqlen"], "tokens_total")
    check(r["tokens"] == (min(r["max_tokens"], r["tokens_total"]) if r["max_tokens"] else r["tokens_total"]),
          "tokens vs max_tokens")
    check(r["targets"] == [t for t in LIN_ORDER if t in r["targets"]], "targets order")
    prev = (-1, -1)
    for L in r["layers"]:
        for k, t in [("name", str), ("block", int), ("linear", str), ("rows", int), ("cols", int), ("mean", num),
                     ("median", num), ("max", num), ("argmax", int), ("n_above", int), ("frac_above", num),
                     ("n_constant", int), ("top", list), ("constant", list)]:
            check(k in L and isinstance(L[k], t), "%s: member %s" % (L.get("name"), k))
        if FAILS:
            return
        nm = L["name"]
        check(nm == "blk.%d.%s.weight" % (L["block"], L["linear"]) and L["linear"] in r["targets"], nm + ": name")
        key = (L["block"], LIN_ORDER.index(L["linear"]))
        check(key > prev, nm + ": layer order")
        prev = key
        check(0 <= L["median"] <= L["max"] and 0 <= L["mean"] <= L["max"], nm + ": mean/median/max")
        check(0 <= L["argmax"] < L["rows"], nm + ": argmax")
        check(abs(L["frac_above"] - L["n_above"] / L["rows"]) < 1e-15, nm + ": frac_above")
        check(len(L["top"]) == min(r["top_n"], L["rows"]), nm + ": top length")
        d = [t["distance"] for t in L["top"]]
        check(all(d[i] > d[i + 1] or (d[i] == d[i + 1] and L["top"][i]["index"] < L["top"][i + 1]["index"])
                  for i in range(len(d) - 1)), nm + ": top order")
        if d:
            check(d[0] == L["max"] and L["top"][0]["index"] == L["argmax"], nm + ": top[0] is the max")
        check(len(L["constant"]) == L["n_constant"] and L["constant"] == sorted(set(L["constant"])),
              nm + ": constant list")
        check(all(t["index"] not in L["constant"] or t["distance"] == 0 for t in L["top"]), nm + ": constant = 0")
    S = r["summary"]
    names = [L["name"] for L in r["layers"]]
    for key, field in [("by_mean", "mean"), ("by_max", "max")]:
        want = [L["name"] for L in sorted(r["layers"], key=lambda L: (-L[field], L["name"]))]
        check(S.get(key) == want, "summary." + key)
    if names:
        best = max(r["layers"], key=lambda L: L["max"])
        mo = S.get("most_entangled", {})
        check(mo.get("layer") == best["name"] and mo.get("index") == best["argmax"] and
              mo.get("distance") == best["max"], "summary.most_entangled")
    print("validate-json: %d layers ok" % len(names))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("selftest")
    e = sub.add_parser("check-export")
    e.add_argument("dir")
    v = sub.add_parser("validate-json")
    v.add_argument("file")
    d = sub.add_parser("check-dump")
    d.add_argument("prefix")
    d.add_argument("--model", required=True, help="Hugging Face directory the .spx was converted from")
    d.add_argument("--layer", required=True, help="canonical tensor name that was dumped")
    d.add_argument("--json", required=True, help="the analyze --json report of the same run")
    d.add_argument("--tokens", required=True, help="raw u32 calibration token file given to spx analyze")
    d.add_argument("--nsamples", type=int, required=True)
    d.add_argument("--seqlen", type=int, required=True)
    d.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.cmd == "selftest":
        selftest()
    elif a.cmd == "check-export":
        check_export(a.dir)
    elif a.cmd == "validate-json":
        validate_json(a.file)
    else:
        check_dump(a)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
