#!/usr/bin/env bash
# robust_kill.sh: crash safety of the output files. `spx convert` (a 25 MB synthetic checkpoint)
# and `spx prune` (SparseGPT on a small synthetic model with generated calibration text) are started
# in the background and killed with SIGKILL after a random fraction (0..1.1, seeded) of their
# measured uninterrupted run time, SPX_KILL_TRIALS times each (default 20). After every kill the
# target path must either not exist or hold a complete file: `spx inspect --check` passes and its
# bytes equal the uninterrupted run's (outputs are deterministic). Temporary files
# (<target>.tmp.*) may remain after SIGKILL but are never at the target path; a completed run leaves
# none. Rerunning after the kill must produce the reference bytes. The loop stops early (with at
# least 3 trials of each) when it has used SPX_KILL_BUDGET seconds (default 40) on a loaded machine.
source "$SPX_SRC/tests/lib/common.sh"
T=$SPX_TMP
TRIALS=${SPX_KILL_TRIALS:-20}
BUDGET=${SPX_KILL_BUDGET:-40}
RANDOM=4242

source "$SPX_SRC/tests/lib/kill.sh"

"$SPX" synth -o "$T/big" --dim 256 --ffn 768 --layers 8 --heads 8 --kv-heads 4 --vocab 512 >/dev/null ||
  { fail "synth big"; finish; }
"$SPX" synth -o "$T/small" --dim 64 --ffn 192 --layers 3 --heads 4 --kv-heads 2 --vocab 512 >/dev/null ||
  { fail "synth small"; finish; }
"$SPX" convert "$T/small" -o "$T/small.spx" >/dev/null || { fail "convert small"; finish; }
for i in $(seq 1 200); do
  echo "once upon a time number $i the little cat saw $((i * 7 % 13)) birds and a big dog in the park."
done >"$T/calib.txt"

CONVERT=("$SPX" convert "$T/big" -o "$T/out_convert.spx")
PRUNE=("$SPX" prune "$T/small.spx" -o "$T/out_prune.spx" --method sparsegpt --sparsity 0.5
       --text "$T/calib.txt" --nsamples 8 --seqlen 32)

# reference runs (uninterrupted), timed
t0=$(ms); "${CONVERT[@]}" >/dev/null 2>&1 || fail "reference convert"; t_conv=$(( $(ms) - t0 ))
mv "$T/out_convert.spx" "$T/ref_convert.spx"
t0=$(ms); "${PRUNE[@]}" >/dev/null 2>&1 || fail "reference prune"; t_prune=$(( $(ms) - t0 ))
mv "$T/out_prune.spx" "$T/ref_prune.spx"
"$SPX" inspect --check "$T/ref_convert.spx" >/dev/null || fail "reference convert output does not check"
"$SPX" inspect --check "$T/ref_prune.spx" >/dev/null || fail "reference prune output does not check"
[ "$SPX_FAILS" -eq 0 ] || finish
echo "uninterrupted: convert ${t_conv} ms, prune ${t_prune} ms"

start=$(ms) n=0
for i in $(seq 1 "$TRIALS"); do
  trial convert "$T/out_convert.spx" "$T/ref_convert.spx" "$t_conv" "${CONVERT[@]}"
  trial prune "$T/out_prune.spx" "$T/ref_prune.spx" "$t_prune" "${PRUNE[@]}"
  n=$i
  if [ "$i" -ge 3 ] && [ $(( $(ms) - start )) -gt $((BUDGET * 1000)) ]; then
    echo "time budget of ${BUDGET} s used: stopping after $i trials of each"
    break
  fi
done
echo "$n kills of each command: target absent $absent, complete and identical $complete, temporary files left by kills $leftovers"
[ "$absent" -gt 0 ] || fail "no kill landed before the rename: the test did not exercise an interrupted write"
rm -f "$T"/out_*.tmp.*
finish
