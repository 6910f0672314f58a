# tests/lib/arch.sh: shared by tests/scripts/arch_*.sh (sourced after common.sh and need_python).
# Defines REF (the NumPy Hugging Face reference forward), T, IDS (a fixed prompt), and
#   compare NAME SPX_FILE MODEL_DIR [ref options]  logits of `spx run --dump-logits` vs the reference
#                                                  (per position relative error < 1e-5)
#   greedy NAME SPX_FILE MODEL_DIR                 8 greedy tokens through the KV cache vs the reference
#   json_field KEY                                 a scalar of a one-line JSON object on stdin
#   rel_close A B TOL                              |A - B| <= TOL |B|
# and writes $T/cal.u32: 4096 token ids in [3, 300) (seed 0) for ppl and calibration.
REF="$SPX_SRC/tests/ref/hf_forward_ref.py"
T="$SPX_TMP"
IDS=1,40,7,261,78,83,286,261,76,268,14,22,95,68,102,26,68,102,101,96,267,44,144,227,121,214,276,265

compare() {   # NAME SPX_FILE MODEL_DIR [ref options]
  local name=$1 spx=$2 dir=$3; shift 3
  "$SPX" run "$spx" --prompt-ids "$IDS" --steps 0 --dump-logits "$T/$name.f32" >/dev/null 2>"$T/err.txt" \
    || { fail "$name: spx run failed: $(cat "$T/err.txt")"; return; }
  local out
  out=$("$SPX_PYTHON" "$REF" --model "$dir" --tokens "$IDS" --compare "$T/$name.f32" --tol 1e-5 "$@" 2>&1) \
    || fail "$name: $out"
  echo "$name: $out"
}
greedy() {    # NAME SPX_FILE MODEL_DIR
  local got want
  got=$("$SPX" run "$2" --prompt-ids "$IDS" --steps 8 --tokens-out 2>/dev/null | tail -n 1)
  want=$("$SPX_PYTHON" "$REF" --model "$3" --tokens "$IDS" --greedy 8 | sed -n 's/^greedy //p')
  [ -n "$want" ] && [ "$got" = "$want" ] || fail "$1 greedy: spx '$got' != reference '$want'"
  echo "$1 greedy: $got"
}
json_field() { sed -n "s/.*\"$1\": \([^,}]*\).*/\1/p"; }
rel_close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; if (b < 0) b = -b; exit !(d <= t * b) }'; }

"$SPX_PYTHON" -c "
import numpy as np
np.random.seed(0)
np.random.randint(3, 300, size=4096).astype('<u4').tofile('$T/cal.u32')" || fail "token file"
