#!/usr/bin/env bash
# verify_ref.sh: every figure of `spx verify --json` (per-block attention/MLP/block errors,
# per-linear errors, KL mean/max/p99.9, top-1, both ppls and their ratio) against the independent
# float64 NumPy recomputation tests/ref/verify_ref.py (tolerances stated there: 1e-4 relative on
# errors and KL, 1e-5 on ppl, top-1 within 2 positions). The candidate is a NumPy magnitude-pruned
# copy of a synthetic checkpoint in which only some linears differ (the others must not be
# reported); the reference is given as the checkpoint directory (converted on the fly).
source "$SPX_SRC/tests/lib/common.sh"
# ctest runs two tests at once on this 2-core machine: BLAS threads would only oversubscribe it
# (small matrices; results do not depend on the thread count in these comparisons).
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
need_python
T="$SPX_TMP"
REF="$SPX_SRC/tests/ref/verify_ref.py"
"$SPX" synth -o "$T/syn" --layers 3 --seed 5 --untied >/dev/null || fail "synth"
"$SPX_PYTHON" "$REF" prune --model "$T/syn" --out "$T/cand" --sparsity 0.5 \
  --targets "layers.0.self_attn.q_proj,layers.0.mlp.up_proj,layers.2.self_attn.o_proj,mlp.down_proj" || fail "numpy prune"
"$SPX" convert "$T/cand" -o "$T/cand.spx" >/dev/null || fail "convert candidate"
"$SPX_PYTHON" -c 'import numpy as np, sys; np.random.default_rng(1).integers(0, 512, size=300).astype("<u4").tofile(sys.argv[1])' \
  "$T/ids.u32" || fail "ids"
for ctx in 48 7; do
  "$SPX" verify "$T/cand.spx" --reference "$T/syn" --tokens "$T/ids.u32" --ctx $ctx --max-windows 5 --json \
    >"$T/rep$ctx.json" || fail "spx verify --ctx $ctx"
  "$SPX_PYTHON" "$SPX_SRC/tests/ref/verify_json_check.py" "$T/rep$ctx.json" || fail "schema ($ctx)"
  "$SPX_PYTHON" "$REF" check --ref "$T/syn" --cand "$T/cand" --ids "$T/ids.u32" --ctx $ctx --max-windows 5 \
    --report "$T/rep$ctx.json" || fail "figures differ from the NumPy reference (ctx $ctx)"
done
finish
