#!/usr/bin/env bash
# robust_kill_expand.sh: crash safety of `spx expand` and `spx moefy` outputs (robust_kill.sh does
# convert and prune). Each command runs in the background and is killed with SIGKILL after a random
# fraction (0..1.1, seeded) of its measured uninterrupted run time, SPX_KILL_TRIALS times each
# (default 10: 20 kills across the two stages). After every kill the target path must either not
# exist or hold a complete file that passes `spx inspect --check` and equals the uninterrupted
# run's bytes (outputs are deterministic); temporary files (<target>.tmp.*) may remain after
# SIGKILL but never at the target path. The rerun after each kill must complete and reproduce the
# reference bytes without leaving a temporary file. Stops early (at least 3 trials each) after
# SPX_KILL_BUDGET seconds (default 50) on a loaded machine.
source "$SPX_SRC/tests/lib/common.sh"
T=$SPX_TMP
TRIALS=${SPX_KILL_TRIALS:-10}
BUDGET=${SPX_KILL_BUDGET:-50}
RANDOM=4343
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"

source "$SPX_SRC/tests/lib/kill.sh"

"$SPX" synth -o "$T/mid" --dim 128 --ffn 384 --layers 4 --heads 4 --kv-heads 2 --vocab 512 >/dev/null ||
  { fail "synth"; finish; }
"$SPX" convert "$T/mid" -o "$T/mid.spx" >/dev/null || { fail "convert"; finish; }
for i in $(seq 1 200); do
  echo "once upon a time number $i the little cat saw $((i * 7 % 13)) birds and a big dog in the park."
done >"$T/calib.txt"

EXPAND=("$SPX" expand "$T/mid.spx" -o "$T/out_expand.spx" --clusters 4 --sparsity 0.5
        --text "$T/calib.txt" --nsamples 8 --seqlen 64)
MOEFY=("$SPX" moefy "$T/mid.spx" -o "$T/out_moefy.spx" --experts 4 --text "$T/calib.txt" --nsamples 16 --seqlen 64)

t0=$(ms); "${EXPAND[@]}" >/dev/null 2>&1 || fail "reference expand"; t_exp=$(( $(ms) - t0 ))
mv "$T/out_expand.spx" "$T/ref_expand.spx"
t0=$(ms); "${MOEFY[@]}" >/dev/null 2>&1 || fail "reference moefy"; t_moe=$(( $(ms) - t0 ))
mv "$T/out_moefy.spx" "$T/ref_moefy.spx"
"$SPX" inspect --check "$T/ref_expand.spx" >/dev/null || fail "reference expand output does not check"
"$SPX" inspect --check "$T/ref_moefy.spx" >/dev/null || fail "reference moefy output does not check"
[ "$SPX_FAILS" -eq 0 ] || finish
echo "uninterrupted: expand ${t_exp} ms, moefy ${t_moe} ms"

start=$(ms) n=0
for i in $(seq 1 "$TRIALS"); do
  trial expand "$T/out_expand.spx" "$T/ref_expand.spx" "$t_exp" "${EXPAND[@]}"
  trial moefy "$T/out_moefy.spx" "$T/ref_moefy.spx" "$t_moe" "${MOEFY[@]}"
  n=$i
  if [ "$i" -ge 3 ] && [ $(( $(ms) - start )) -gt $((BUDGET * 1000)) ]; then
    echo "time budget of ${BUDGET} s used: stopping after $i trials of each"
    break
  fi
done
echo "$n kills of each command: target absent $absent, complete and identical $complete, temporary files left by kills $leftovers"
[ "$absent" -gt 0 ] || fail "no kill landed before the rename: the test did not exercise an interrupted write"
finish
