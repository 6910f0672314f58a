#!/usr/bin/env bash
# robust_max_memory.sh: --max-memory SIZE (issue #8). For prune (SparseGPT), expand, moefy, ppl and
# verify on a small synthetic model: a budget that is too small fails with exit 1, SPX_E_LIMIT and
# a message naming the buffer and both sizes ("... need N KiB, over --max-memory M KiB"), leaving
# no output file (nor a temporary one); a sufficient budget succeeds with output byte-identical to
# a run without the option (the budget only checks, it never changes the computation; the RLIMIT_AS
# backstop it arms must not break OpenBLAS or the input maps). Bad values are usage errors (2).
source "$SPX_SRC/tests/lib/common.sh"
T=$SPX_TMP
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
"$SPX" synth -o "$T/syn" --dim 64 --ffn 192 --layers 3 --heads 4 --kv-heads 2 --vocab 512 >/dev/null || { fail synth; finish; }
"$SPX" convert "$T/syn" -o "$T/m.spx" >/dev/null || { fail convert; finish; }
for i in $(seq 1 200); do echo "once upon a time number $i the little cat saw $((i * 7 % 13)) birds in the park."; done >"$T/calib.txt"
CAL=(--text "$T/calib.txt" --nsamples 8 --seqlen 32)

# check NAME OUT TINY cmd...: without the option (reference), with TINY (must fail), with 256M (same bytes)
check() {
  local name=$1 out=$2 tiny=$3; shift 3
  rm -f "$out" "$out".tmp.*
  expect_exit 0 "$@"
  [ -n "$out" ] && { cp "$out" "$T/ref.out" 2>/dev/null || fail "$name: no reference output"; }
  cp "$SPX_TMP/out.txt" "$T/ref.stdout"
  rm -f "$out"
  expect_exit 1 "$@" --max-memory "$tiny"
  grep -q "over --max-memory .*(SPX_E_LIMIT)" "$SPX_TMP/err.txt" || fail "$name --max-memory $tiny: $(cat "$SPX_TMP/err.txt")"
  grep -q " need [0-9]* \(bytes\|KiB\|MiB\)" "$SPX_TMP/err.txt" || fail "$name: the message does not give the size needed"
  echo "$name --max-memory $tiny: $(head -1 "$SPX_TMP/err.txt")"
  if [ -n "$out" ]; then
    [ ! -e "$out" ] || fail "$name over the budget left $out"
    if compgen -G "$out.tmp.*" >/dev/null; then fail "$name over the budget left a temporary file"; fi
  fi
  expect_exit 0 "$@" --max-memory 256M
  if [ -n "$out" ]; then
    cmp -s "$out" "$T/ref.out" || fail "$name: output with --max-memory 256M differs from the run without"
  else
    cmp -s "$SPX_TMP/out.txt" "$T/ref.stdout" || fail "$name: stdout with --max-memory 256M differs"
  fi
}

check prune "$T/p.spx" 64K "$SPX" prune "$T/m.spx" -o "$T/p.spx" --method sparsegpt --sparsity 0.5 "${CAL[@]}"
# a budget above the weight copies: the failure moves on to the pruning buffers, named by layer
expect_exit 1 "$SPX" prune "$T/m.spx" -o "$T/p.spx" --method sparsegpt --sparsity 0.5 "${CAL[@]}" --max-memory 900K
grep -q -E "(Hessian of the blk\.[0-9]+|SparseGPT .* of blk\.[0-9]+|calibration activations|forward state).* need .* already in use" \
  "$SPX_TMP/err.txt" || fail "prune 900K: $(cat "$SPX_TMP/err.txt")"
echo "prune --max-memory 900K: $(head -1 "$SPX_TMP/err.txt")"
check expand "$T/e.spx" 1M "$SPX" expand "$T/m.spx" -o "$T/e.spx" --clusters 4 --sparsity 0.5 "${CAL[@]}"
check moefy "$T/g.spx" 64K "$SPX" moefy "$T/m.spx" -o "$T/g.spx" --experts 4 "${CAL[@]}"
check ppl "" 100K "$SPX" ppl "$T/m.spx" --text "$T/calib.txt" --ctx 32
check verify "" 300K "$SPX" verify "$T/p.spx" --reference "$T/m.spx" --text "$T/calib.txt" --ctx 32

# convert: enough -> output unchanged; too little for one tensor's F16 conversion buffers -> exit 1
# naming the tensor, nothing left at the target
expect_exit 0 "$SPX" convert "$T/syn" -o "$T/c.spx" --max-memory 256M
cmp -s "$T/c.spx" "$T/m.spx" || fail "convert --max-memory 256M: output differs"
expect_exit 1 "$SPX" convert "$T/syn" -o "$T/c16.spx" --dtype f16 --max-memory 1K
grep -q "conversion buffers of tensor .* over --max-memory" "$T/err.txt" || fail "convert limit message: $(cat "$T/err.txt")"
[ ! -e "$T/c16.spx" ] || fail "convert left an output after the limit"
ls "$T" | grep -q 'c16.spx.*tmp' && fail "convert left a temporary file"
# option forms and bad values
expect_exit 0 "$SPX" ppl --max-memory=2G "$T/m.spx" --text "$T/calib.txt" --ctx 32
for bad in 0 -5 12Q "" 1e30G; do
  expect_exit 2 "$SPX" ppl "$T/m.spx" --text "$T/calib.txt" --max-memory "$bad"
done
expect_exit 2 "$SPX" ppl "$T/m.spx" --text "$T/calib.txt" --max-memory
expect_exit 2 "$SPX" inspect "$T/m.spx" --max-memory 1G
finish
