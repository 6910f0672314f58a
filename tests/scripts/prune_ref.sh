#!/bin/bash
# prune_ref.sh: SparseGPT / Wanda / magnitude kernels (prune/) against the independent float64
# NumPy reference tests/ref/sparsegpt_ref.py. The reference generates fixed-seed W and X, the C
# side (test_prune_sparsegpt in reference-I/O mode) accumulates the Hessian and prunes, and the
# reference compares: H and colsq, pruned W (relative Frobenius < 1e-5 for SparseGPT, identical
# for Wanda/magnitude), masks, damping retry counts, N:M group counts.
source "$SPX_SRC/tests/lib/common.sh"
need_python
BIN="${SPX_BUILD:-}/tests/test_prune_sparsegpt"
[ -x "$BIN" ] || skip "$BIN not built"
REF="$SPX_SRC/tests/ref/sparsegpt_ref.py"

"$SPX_PYTHON" "$REF" gen "$SPX_TMP" || fail "reference: generating cases"
SPX_PRUNE_REF_DIR="$SPX_TMP" "$BIN" || fail "C side failed on the reference cases"
"$SPX_PYTHON" "$REF" check "$SPX_TMP" || fail "C results differ from the float64 reference"
finish
