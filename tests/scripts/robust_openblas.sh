#!/usr/bin/env bash
# robust_openblas.sh: the OpenBLAS re-exec of cli/main.c (issue #7): core type and idle-spin timeout.
# On a CPU with AVX-512 F/BW/VL/DQ and no OPENBLAS_CORETYPE in the environment, spx sets
# OPENBLAS_CORETYPE=SkylakeX and re-executes itself once, so OpenBLAS (which reads the variable at
# load time) uses its SkylakeX kernels: `spx --version --verbose` must then report the SkylakeX core
# and "re-exec: yes". The re-exec must keep argv intact (a real command runs the same),
# must happen once (a set marker stops it: no loop) and SPX_NO_REEXEC=1 turns it off. On CPUs
# without AVX-512 it must not set the core type; the SkylakeX-specific checks are skipped there.
# Independently, without OPENBLAS_THREAD_TIMEOUT spx sets it to 22 (OpenBLAS's idle workers otherwise
# spin 2^28 cycles after each call); a value from the environment is kept.
source "$SPX_SRC/tests/lib/common.sh"
T=$SPX_TMP
clean=(env -u OPENBLAS_CORETYPE -u OPENBLAS_THREAD_TIMEOUT -u GOTO_THREAD_TIMEOUT -u SPX_OPENBLAS_REEXEC -u SPX_NO_REEXEC)
avx512=1
for f in avx512f avx512bw avx512vl avx512dq; do
  grep -q -w "$f" /proc/cpuinfo 2>/dev/null || avx512=0
done

"${clean[@]}" "$SPX" --version --verbose >"$T/v.txt" 2>&1 || fail "--version --verbose failed"
cat "$T/v.txt"
if [ "$avx512" = 1 ]; then
  grep -q "^re-exec: *yes" "$T/v.txt" || fail "AVX-512 CPU without OPENBLAS_CORETYPE: no re-exec"
  grep -q "^openblas coretype: SkylakeX" "$T/v.txt" || fail "OPENBLAS_CORETYPE not SkylakeX after the re-exec"
  if grep -q "DYNAMIC_ARCH" "$T/v.txt"; then
    grep -q "^openblas core: *SkylakeX" "$T/v.txt" || fail "OpenBLAS did not pick SkylakeX kernels"
  fi
else
  echo "NOTE: CPU lacks AVX-512 F/BW/VL/DQ: the SkylakeX checks are skipped"
  grep -q "^openblas coretype: (unset)" "$T/v.txt" || fail "core type set on a CPU without AVX-512"
  grep -q "^re-exec: *yes (set by spx: OPENBLAS_THREAD_TIMEOUT=22)" "$T/v.txt" || fail "re-exec claims: $(grep re-exec "$T/v.txt")"
fi
grep -q "^openblas timeout:  22$" "$T/v.txt" || fail "OPENBLAS_THREAD_TIMEOUT not set to 22 by the re-exec"
"${clean[@]}" OPENBLAS_THREAD_TIMEOUT=25 "$SPX" --version --verbose >"$T/t.txt" 2>&1 || fail "with a timeout"
grep -q "^openblas timeout:  25$" "$T/t.txt" || fail "OPENBLAS_THREAD_TIMEOUT from the environment not kept"
# loop guard: with the marker set spx does not exec again (and does not claim a re-exec it did not do)
"${clean[@]}" SPX_OPENBLAS_REEXEC=0 "$SPX" --version --verbose >"$T/m.txt" 2>&1 || fail "with marker"
grep -q "^re-exec: *no" "$T/m.txt" || fail "marker set: $(grep re-exec "$T/m.txt")"
"${clean[@]}" SPX_NO_REEXEC=1 "$SPX" --version --verbose >"$T/n.txt" 2>&1 || fail "SPX_NO_REEXEC"
grep -q "^re-exec: *no (SPX_NO_REEXEC set)" "$T/n.txt" || fail "SPX_NO_REEXEC=1 ignored"
grep -q "^openblas coretype: (unset)" "$T/n.txt" || fail "SPX_NO_REEXEC=1 still set OPENBLAS_CORETYPE"

# argv and the exit status survive the re-exec: a real pipeline, results equal with and without
"$SPX" synth -o "$T/syn" --dim 32 --ffn 64 --layers 2 --heads 4 --kv-heads 2 --vocab 300 >/dev/null || fail synth
"${clean[@]}" "$SPX" convert "$T/syn" -o "$T/a.spx" >/dev/null || fail "convert (re-exec path)"
"${clean[@]}" SPX_NO_REEXEC=1 "$SPX" convert "$T/syn" -o "$T/b.spx" >/dev/null || fail "convert (no re-exec)"
cmp -s "$T/a.spx" "$T/b.spx" || fail "convert output depends on the re-exec"
for i in $(seq 1 30); do echo "the cat and the dog went to the park on day $i."; done >"$T/text.txt"
"${clean[@]}" "$SPX" ppl "$T/a.spx" --text "$T/text.txt" --ctx 16 >"$T/p1.txt" || fail "ppl (re-exec path)"
"${clean[@]}" SPX_NO_REEXEC=1 "$SPX" ppl "$T/a.spx" --text "$T/text.txt" --ctx 16 >"$T/p2.txt" || fail "ppl (no re-exec)"
grep -q "PPL = " "$T/p1.txt" || fail "ppl printed no perplexity"
"${clean[@]}" "$SPX" inspect --check "$T/a.spx" --no-such-option >/dev/null 2>&1
[ $? = 2 ] || fail "usage error exit status lost across the re-exec"
finish
