# tests/lib/kill.sh: kill -9 trials shared by tests/scripts/robust_kill*.sh (sourced after common.sh).
#   ms                               milliseconds since the epoch
#   trial NAME OUT REF RUNTIME_MS cmd...
#       runs cmd in the background, kills it with SIGKILL after a random delay in
#       [0, 1.1 x RUNTIME_MS], then requires: OUT absent, or complete (inspect --check) and
#       byte-identical to REF; then reruns cmd with the killed run's temporary files still there:
#       it must complete, check, equal REF and add no temporary file of its own.
#   Counters: absent, complete, leftovers (temporary files left by kills).
ms() { echo $(( $(date +%s%N) / 1000000 )); }

absent=0 complete=0 leftovers=0
# trial NAME OUT REF RUNTIME_MS cmd...
trial() {
  local name=$1 out=$2 ref=$3 t_ms=$4; shift 4
  rm -f "$out" "$out".tmp.*
  local delay_ms=$(( RANDOM % (t_ms * 11 / 10 + 1) ))
  "$@" >/dev/null 2>&1 &
  local pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [ -e "$out" ]; then
    complete=$((complete + 1))
    "$SPX" inspect --check "$out" >/dev/null 2>&1 || fail "$name killed at ${delay_ms} ms: $out exists but does not check"
    cmp -s "$out" "$ref" || fail "$name killed at ${delay_ms} ms: $out differs from the uninterrupted output"
  else
    absent=$((absent + 1))
  fi
  local tmps
  tmps=$(find "$(dirname "$out")" -maxdepth 1 -name "$(basename "$out").tmp.*" | wc -l)
  leftovers=$((leftovers + tmps))
  # rerun to completion (temporary files of the killed run still there): same bytes, no new leftovers
  rm -f "$out"
  "$@" >/dev/null 2>&1 || fail "$name rerun after kill at ${delay_ms} ms failed"
  "$SPX" inspect --check "$out" >/dev/null 2>&1 || fail "$name rerun after kill at ${delay_ms} ms does not check"
  cmp -s "$out" "$ref" || fail "$name rerun after kill at ${delay_ms} ms differs from the uninterrupted output"
  local after
  after=$(find "$(dirname "$out")" -maxdepth 1 -name "$(basename "$out").tmp.*" | wc -l)
  [ "$after" -le "$tmps" ] || fail "$name: a completed run left $out.tmp.* behind"
  rm -f "$out".tmp.*
}

