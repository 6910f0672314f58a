#!/bin/bash
# cluster_ref.sh: cluster/ (PCA, k-means, assignment, ARI/purity) against the NumPy float64
# reference tests/ref/kmeans_ref.py. test_cluster_export writes inputs and C results; the
# reference recomputes them (Lloyd from the same initial centers) and compares; tolerances are
# stated in kmeans_ref.py.
source "$SPX_SRC/tests/lib/common.sh"
need_python
exe="$SPX_BUILD/tests/test_cluster_export"
[ -x "$exe" ] || { fail "missing $exe (build the tests first)"; finish; }
data="$SPX_TMP/data" scratch="$SPX_TMP/scratch"
mkdir -p "$data" "$scratch"
if ! SPX_TMP="$scratch" SPX_CLUSTER_EXPORT_DIR="$data" "$exe"; then
  fail "test_cluster_export failed"
else
  "$SPX_PYTHON" "$SPX_SRC/tests/ref/kmeans_ref.py" "$data" || fail "NumPy reference comparison"
fi
finish
