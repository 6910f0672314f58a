#!/usr/bin/env bash
# scripts/fuzz.sh: build the libFuzzer targets of tests/fuzz with clang and run each for a while.
#
#   scripts/fuzz.sh [SECONDS] [--merge] [--jobs N] [--targets "a b ..."] [--build DIR]
#
#   SECONDS     run time per target (default: $FUZZ_SECONDS, else 60)
#   --merge     afterwards, merge the inputs that add coverage into tests/fuzz/corpus/<target>
#               (libFuzzer -merge=1: only new features are copied; only inputs of at most
#               FUZZ_MERGE_MAX bytes, default 2048, are candidates, so the corpus stays small)
#   --jobs N    targets run N at a time (default 1; this machine has 2 cores)
#   --targets   subset of targets (default: all of tests/fuzz/CMakeLists.txt)
#   --build     build directory (default build-fz)
#
# Configures DIR with clang and -DSPX_FUZZ=ON (every library instrumented with
# -fsanitize=fuzzer-no-link,address,undefined), generates the binary seeds with fuzz_seedgen, and
# runs fuzz_<target> on DIR/fuzz-work/<target> (scratch corpus, kept between runs) plus the
# committed corpus and the seeds. Crashes, leaks, timeouts and OOMs are written to
# DIR/fuzz-crashes/<target>/; minimize one with
#   DIR/tests/fuzz/fuzz_<target> -minimize_crash=1 -runs=10000 CRASHFILE
# and add it to tests/fuzz/corpus/<target>/ so that fuzz.replay.<target> keeps checking it.
# Prints a table: target, executions, exec/s, corpus size (scratch corpus), crashes.
# Exit status 1 when any target found a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
SECS=${FUZZ_SECONDS:-60} MERGE=0 JOBS=1 BUILD=build-fz MERGE_MAX=${FUZZ_MERGE_MAX:-2048}
TARGETS="spx_open spx_model encoding st_open st_index hfconfig tokenizer_json llama2c llama2c_vocab gguf"
while [ $# -gt 0 ]; do
  case "$1" in
    --merge) MERGE=1 ;;
    --jobs) JOBS=$2; shift ;;
    --targets) TARGETS=$2; shift ;;
    --build) BUILD=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    [0-9]*) SECS=$1 ;;
    *) echo "fuzz.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
command -v clang >/dev/null || { echo "fuzz.sh: clang not found (run scripts/setup-fuzz.sh: Debian packages clang libclang-rt-14-dev)" >&2; exit 1; }

# per-target input size limits: large enough for the biggest seed of each target
max_len() {
  case "$1" in
    spx_open|spx_model|gguf) echo 40000 ;;
    st_open) echo 32768 ;;
    tokenizer_json) echo 16384 ;;
    llama2c|llama2c_vocab) echo 8192 ;;
    encoding) echo 4096 ;;
    *) echo 2048 ;;
  esac
}
dict() {
  case "$1" in
    spx_open|spx_model) echo "-dict=$SRC/tests/fuzz/spx.dict" ;;
    st_open|st_index|hfconfig|tokenizer_json) echo "-dict=$SRC/tests/fuzz/json.dict" ;;
    *) echo "" ;;
  esac
}

cmake -S "$SRC" -B "$BUILD" -DCMAKE_C_COMPILER=clang -DSPX_FUZZ=ON -DSPX_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j2 --target fuzz_seedgen >"$BUILD/fuzz-build.log" 2>&1 ||
  { tail -30 "$BUILD/fuzz-build.log" >&2; exit 1; }
# each target on its own: one that does not build (e.g. a module clang cannot compile) is reported
# in the table and the others still run
built=""
for t in $TARGETS; do
  if cmake --build "$BUILD" -j2 --target "fuzz_$t" >>"$BUILD/fuzz-build.log" 2>&1; then
    built="$built $t"
  else
    echo "fuzz.sh: fuzz_$t does not build (see $BUILD/fuzz-build.log)" >&2
  fi
done
FZ=$BUILD/tests/fuzz
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TMPDIR=${TMPDIR:-$BUILD}
"$FZ/fuzz_seedgen" "$BUILD/fuzz-seeds" >/dev/null

run_one() {
  local t=$1 work=$BUILD/fuzz-work/$1 crashes=$BUILD/fuzz-crashes/$1 log=$BUILD/fuzz-logs/$1.log
  # findings of earlier runs are dropped: minimized ones belong in tests/fuzz/corpus/<target>
  rm -rf "$crashes"
  mkdir -p "$work" "$crashes" "$BUILD/fuzz-logs" "$SRC/tests/fuzz/corpus/$t"
  local extra=()
  [ -d "$BUILD/fuzz-seeds/$t" ] && extra+=("$BUILD/fuzz-seeds/$t")
  # shellcheck disable=SC2046
  "$FZ/fuzz_$t" -max_total_time="$SECS" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$crashes/" $(dict "$t") \
    "$work" "$SRC/tests/fuzz/corpus/$t" "${extra[@]}" >"$log" 2>&1 || true
}

running=0
for t in $built; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
done
wait

# --merge: the inputs of the scratch corpus that add coverage beyond the committed corpus AND the
# generated seeds (which are rebuilt at test time, so they are not committed) are copied into
# tests/fuzz/corpus/<target>/ under their SHA-1 names.
if [ "$MERGE" = 1 ]; then
  for t in $built; do
    m=$(mktemp -d "$BUILD/merge.XXXXXX")
    cp "$SRC/tests/fuzz/corpus/$t"/* "$m"/ 2>/dev/null || true
    [ -d "$BUILD/fuzz-seeds/$t" ] && cp "$BUILD/fuzz-seeds/$t"/* "$m"/
    ls "$m" | sort >"$m.before"
    # only small inputs are candidates, so that the committed corpora stay small (< 2 MB in all)
    mkdir -p "$m.in"
    find "$BUILD/fuzz-work/$t" -type f -size -$((MERGE_MAX + 1))c -exec cp {} "$m.in"/ \;
    if "$FZ/fuzz_$t" -merge=1 -max_len="$(max_len "$t")" "$m" "$m.in" \
        >"$BUILD/fuzz-logs/$t.merge.log" 2>&1; then
      added=0
      for f in $(ls "$m" | sort | comm -13 "$m.before" -); do
        cp "$m/$f" "$SRC/tests/fuzz/corpus/$t/$f"
        added=$((added + 1))
      done
      echo "merge $t: $added new inputs into tests/fuzz/corpus/$t"
    else
      echo "fuzz.sh: merge of $t failed (see $BUILD/fuzz-logs/$t.merge.log)" >&2
    fi
    rm -rf "$m" "$m.before" "$m.in"
  done
  echo "committed corpora: $(du -sb "$SRC/tests/fuzz/corpus" | cut -f1) bytes (keep under 2 MB)"
fi

status=0
printf '%-16s %12s %9s %16s %8s\n' target executions exec/s corpus crashes
for t in $TARGETS; do
  case " $built " in
    *" $t "*) ;;
    *) printf '%-16s %12s\n' "$t" "not built"; status=1; continue ;;
  esac
  log=$BUILD/fuzz-logs/$t.log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  files=$(find "$BUILD/fuzz-work/$t" -type f | wc -l)
  bytes=$(du -sb "$BUILD/fuzz-work/$t" | cut -f1)
  found=$(find "$BUILD/fuzz-crashes/$t" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
          -o -name 'oom-*' -o -name 'slow-unit-*' \) | wc -l)
  # a run that died before printing its stats (e.g. a crash) has no stat:: lines
  if grep -q -E '^==[0-9]+==ERROR|^SUMMARY: |fuzz oracle failed|deadly signal' "$log"; then
    found=$((found > 0 ? found : 1))
  fi
  [ "$found" -gt 0 ] && status=1
  printf '%-16s %12s %9s %9s/%6sB %8s\n' "$t" "${execs:-?}" "${rate:-?}" "$files" "$bytes" "$found"
done
[ "$status" = 0 ] || echo "fuzz.sh: findings in $BUILD/fuzz-crashes/ (logs in $BUILD/fuzz-logs/)" >&2
exit $status
