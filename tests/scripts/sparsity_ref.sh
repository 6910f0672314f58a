#!/bin/bash
# sparsity_ref.sh: CETT, the per-layer threshold search and the thresholded forward of the
# Sparsing Law mechanism (verify/spx_sparsity*.c) against the float64 NumPy reference
# tests/ref/cett_ref.py (tolerances stated there): the reference writes random activations and a
# synthetic checkpoint's thresholds, test_verify_sparsity (reference-I/O mode) computes, the
# reference compares.
source "$SPX_SRC/tests/lib/common.sh"
need_python
BIN="${SPX_BUILD:-}/tests/test_verify_sparsity"
[ -x "$BIN" ] || skip "$BIN not built"
REF="$SPX_SRC/tests/ref/cett_ref.py"
T=$SPX_TMP
"$SPX" synth -o "$T/syn" --dim 32 --ffn 96 --layers 3 --heads 4 --kv-heads 2 --vocab 300 --seed 3 >/dev/null \
  || fail "synth"
"$SPX" convert "$T/syn" -o "$T/fwd.spx" >/dev/null || fail "convert"
"$SPX_PYTHON" "$REF" gen "$T" "$T/syn" || fail "reference: generating cases"
SPX_SPARSITY_REF_DIR="$T" "$BIN" || fail "C side failed on the reference cases"
"$SPX_PYTHON" "$REF" check "$T" "$T/syn" || fail "C results differ from the float64 reference"
finish
