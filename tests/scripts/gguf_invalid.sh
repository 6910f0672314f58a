#!/usr/bin/env bash
# gguf_invalid.sh: malformed GGUF files written by tests/ref/make_gguf.py (one rule each: bad
# magic, bad/old version, big-endian, truncations, impossible counts, huge string/array lengths,
# duplicate keys/tensors, bad alignment key, misaligned/out-of-range/overlapping data, n_dims 5, a
# zero dim, dims overflow, unknown/unsupported types, Q8_0 rows, bad bool, nested array, empty
# key, long name, trailing bytes, wrong architecture) and valid GGUF files holding an inconsistent
# llama model (missing key/tensor, MoE, YaRN, partial rotary, rope_freqs, extra block, bad shape,
# vocab/tokenizer mismatch, wrong key type, NaN weight) make `spx convert` exit 1 with the pinned
# error named in expected.txt and a message naming the file and a byte offset or field, and leave
# no output file.
source "$SPX_SRC/tests/lib/common.sh"
need_python
T=$SPX_TMP
$SPX_PYTHON "$SPX_SRC/tests/ref/make_gguf.py" invalid --dir $T/inv || fail "make_gguf invalid"
n=0
while read -r name code; do
  if [ "$code" = OK ]; then   # the unbroken base of the model_* cases
    expect_exit 0 $SPX convert $T/inv/$name.gguf -o $T/out.spx
    rm -f $T/out.spx
    continue
  fi
  expect_exit 1 $SPX convert $T/inv/$name.gguf -o $T/out.spx
  grep -q "($code)" $T/err.txt || fail "$name: expected $code, got: $(cat $T/err.txt)"
  grep -q "$name.gguf" $T/err.txt || fail "$name: message does not name the file"
  case $code in
    SPX_E_UNSUPPORTED|SPX_E_SHAPE|SPX_E_DUP_NAME|SPX_E_OVERLAP|SPX_E_OVERFLOW|SPX_E_MISSING|SPX_E_CONFIG) ;;   # name a tensor or key
    *) grep -qE "byte|bytes" $T/err.txt || fail "$name: message has no byte offset: $(cat $T/err.txt)" ;;
  esac
  [ ! -e $T/out.spx ] || fail "$name: output file left behind"
  n=$((n + 1))
done < $T/inv/expected.txt
[ "$n" -ge 45 ] || fail "only $n invalid cases"
echo "  $n invalid GGUF files rejected with their pinned errors"
finish
