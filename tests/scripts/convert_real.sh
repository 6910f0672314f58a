#!/usr/bin/env bash
# convert_real.sh: `spx convert` on the real checkpoints in ../shared (stories260K in HF F32/F16/BF16
# and llama2.c form, llama-brown with an untied lm_head): exit codes, summary figures, determinism.
# The bit-exact .bin vs HF comparison is in unit.convert_llama2c.
. "$SPX_SRC/tests/lib/common.sh"
need_shared models/stories260K-hf/model.safetensors
need_shared models/stories260K-llama2c/stories260K.bin
need_shared models/llama-brown-hf/model.safetensors
HF="$SPX_SHARED/models/stories260K-hf"
L2C="$SPX_SHARED/models/stories260K-llama2c"
T="$SPX_TMP"

# json_field FILE KEY: value of a top-level scalar in the --json report
json_field() { sed -n "s/^  \"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}$/\1/p" "$1"; }

check_report() {   # FILE tensors params dtype tokenizer
  local f=$1
  [ "$(json_field "$f" tensors)" = "$2" ] || fail "$f: tensors $(json_field "$f" tensors), want $2"
  [ "$(json_field "$f" parameters)" = "$3" ] || fail "$f: parameters $(json_field "$f" parameters), want $3"
  [ "$(json_field "$f" dtype)" = "$4" ] || fail "$f: dtype $(json_field "$f" dtype), want $4"
  [ "$(json_field "$f" tokenizer)" = "$5" ] || fail "$f: tokenizer $(json_field "$f" tokenizer), want $5"
}

# stories260K: 1 + 5*9 + 1 = 47 tensors, 260,032 parameters (tied: no output.weight)
expect_exit 0 "$SPX" convert "$HF" -o "$T/hf.spx" --json
cp "$T/out.txt" "$T/hf.json"
check_report "$T/hf.json" 47 260032 F32 huggingface.json
[ "$(json_field "$T/hf.json" tied_embeddings)" = true ] || fail "stories260K must be tied"
[ "$(json_field "$T/hf.json" name)" = stories260K-hf ] || fail "general.name from the directory"

expect_exit 0 "$SPX" convert "$HF/model.f16.safetensors" -o "$T/f16.spx" --json
check_report "$T/out.txt" 47 260032 F16 huggingface.json
expect_exit 0 "$SPX" convert "$HF/model.bf16.safetensors" --tokenizer "$HF/tokenizer.json" -o "$T/bf16.spx" --json
check_report "$T/out.txt" 47 260032 BF16 huggingface.json
# F16/BF16 data is half the F32 data
[ "$(json_field "$T/out.txt" data_bytes)" = 520064 ] || fail "bf16 data bytes"

expect_exit 0 "$SPX" convert "$HF" --dtype f16 -o "$T/f16b.spx"
expect_exit 0 "$SPX" convert "$HF" --dtype bf16 -o "$T/bf16b.spx"

# llama2.c .bin with its tokenizer; the text summary names the skipped rotary tables
expect_exit 0 "$SPX" convert "$L2C/stories260K.bin" --tokenizer "$L2C/tok512.bin" -o "$T/bin.spx"
grep -q "47 tensors, 260032 parameters" "$T/out.txt" || fail "bin summary: $(cat "$T/out.txt")"
grep -q "skipped: freq_cis_real" "$T/out.txt" || fail "bin summary lacks the skipped freq_cis tables"
grep -q "tokenizer: llama2c" "$T/out.txt" || fail "bin tokenizer not embedded"
expect_exit 0 "$SPX" convert "$L2C/stories260K.bin" -o "$T/bin-notok.spx" --json
grep -q '"no tokenizer given' "$T/out.txt" || fail "missing-tokenizer note"

# determinism
expect_exit 0 "$SPX" convert "$HF" -o "$T/hf2.spx"
cmp -s "$T/hf.spx" "$T/hf2.spx" || fail "two HF conversions differ"
expect_exit 0 "$SPX" convert "$L2C/stories260K.bin" --tokenizer "$L2C/tok512.bin" -o "$T/bin2.spx"
cmp -s "$T/bin.spx" "$T/bin2.spx" || fail "two .bin conversions differ"

# llama-brown: untied lm_head -> 1 + 6*9 + 2 = 57 tensors, 4,984,064 parameters
expect_exit 0 "$SPX" convert "$SPX_SHARED/models/llama-brown-hf" -o "$T/brown.spx" --json
check_report "$T/out.txt" 57 4984064 F32 huggingface.json
[ "$(json_field "$T/out.txt" tied_embeddings)" = false ] || fail "llama-brown must be untied"

# Independent NumPy reference (tests/ref/spx_convert_ref.py): converted tensors equal their sources
# bit for bit; the .bin conversion equals the HF one; F32 -> f16/bf16 by spx equals the F16/BF16
# checkpoints (both round to nearest even).
if [ -n "${SPX_PYTHON:-}" ]; then
  REF="$SPX_PYTHON $SPX_SRC/tests/ref/spx_convert_ref.py"
  $REF vs-safetensors "$T/hf.spx" "$HF/model.safetensors" || fail "hf.spx vs model.safetensors"
  $REF vs-safetensors "$T/f16.spx" "$HF/model.f16.safetensors" || fail "f16.spx vs model.f16.safetensors"
  $REF vs-safetensors "$T/bf16.spx" "$HF/model.bf16.safetensors" || fail "bf16.spx vs model.bf16.safetensors"
  $REF vs-safetensors "$T/brown.spx" "$SPX_SHARED/models/llama-brown-hf/model.safetensors" || fail "brown.spx"
  $REF vs-llama2c "$T/bin.spx" "$L2C/stories260K.bin" || fail "bin.spx vs stories260K.bin"
  $REF same-data "$T/bin.spx" "$T/hf.spx" || fail "the .bin conversion differs from the HF conversion"
  $REF same-data "$T/f16b.spx" "$T/f16.spx" || fail "--dtype f16 differs from the F16 checkpoint"
  $REF same-data "$T/bf16b.spx" "$T/bf16.spx" || fail "--dtype bf16 differs from the BF16 checkpoint"
else
  echo "note: no python3 with NumPy: reference comparisons skipped" >&2
fi

# spx inspect, when it exists, sees the classifier
if "$SPX" inspect "$T/brown.spx" >/dev/null 2>&1; then
  "$SPX" inspect "$T/brown.spx" > "$T/inspect.txt" 2>&1
  grep -q "output.weight" "$T/inspect.txt" || fail "inspect does not list output.weight"
fi
finish
