#!/bin/bash
# analyze_w1_ref.sh: the exact W1-to-N(0,1) kernel (cluster/spx_wasserstein.c) against the
# independent float64 NumPy reference tests/ref/wasserstein_ref.py (CDF form, bisection quantiles):
# the reference first checks itself against brute-force quadrature and the closed forms, then
# test_cluster_wasserstein (export mode) writes 11 sample sets (normal, exponential, bimodal,
# Student t, sparse spikes, ties, tiny n, constant, n = 65536) with the C distances, and the
# reference compares them to 1e-11 absolute + 1e-10 relative (tolerance stated in the script).
source "$SPX_SRC/tests/lib/common.sh"
need_python
exe="$SPX_BUILD/tests/test_cluster_wasserstein"
[ -x "$exe" ] || { fail "missing $exe (build the tests first)"; finish; }
REF="$SPX_SRC/tests/ref/wasserstein_ref.py"
"$SPX_PYTHON" "$REF" selftest || fail "reference self-test"
mkdir -p "$SPX_TMP/cases" "$SPX_TMP/scratch"
cases="$SPX_TMP/cases" scratch="$SPX_TMP/scratch"
if SPX_W1_EXPORT_DIR="$cases" SPX_TMP="$scratch" "$exe"; then
  "$SPX_PYTHON" "$REF" check-export "$cases" || fail "C distances differ from the float64 reference"
else
  fail "test_cluster_wasserstein failed"
fi
finish
