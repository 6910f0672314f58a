#!/usr/bin/env bash
# convert_cli.sh: `spx convert` command line: --help, usage errors (exit 2), data errors (exit 1)
# that leave no output or temporary file behind. Inputs are made here (no ../shared needed), plus
# truncated copies of the real checkpoints when ../shared exists.
. "$SPX_SRC/tests/lib/common.sh"
T="$SPX_TMP"
OUT="$T/out"
mkdir -p "$OUT"

no_output() {   # the output directory must stay empty after a failed conversion
  if [ -n "$(ls -A "$OUT")" ]; then fail "files left behind after '$*': $(ls -A "$OUT")"; rm -f "$OUT"/*; fi
}
data_error() {  # data_error NEEDLE INPUT [options]: exit 1, message naming NEEDLE, no output
  local needle=$1; shift
  expect_exit 1 "$SPX" convert "$@" -o "$OUT/x.spx"
  grep -q -- "$needle" "$T/err.txt" || fail "'$*': stderr lacks '$needle': $(cat "$T/err.txt")"
  no_output "$@"
}

expect_exit 0 "$SPX" convert --help
grep -q "^usage: spx convert" "$T/out.txt" || fail "--help does not print usage on stdout"
expect_exit 2 "$SPX" convert
expect_exit 2 "$SPX" convert somewhere
expect_exit 2 "$SPX" convert -o "$OUT/x.spx"
expect_exit 2 "$SPX" convert a b -o "$OUT/x.spx"
expect_exit 2 "$SPX" convert a -o "$OUT/x.spx" --bogus
expect_exit 2 "$SPX" convert a -o "$OUT/x.spx" --dtype f8
expect_exit 2 "$SPX" convert a -o
expect_exit 2 "$SPX" convert a -o "$OUT/x.spx" --tokenizer
grep -q "Try 'spx convert --help'" "$T/err.txt" || fail "usage errors point at --help"
no_output usage

# data errors on inputs made here
data_error "no such file" "$T/absent"
mkdir -p "$T/emptydir"
data_error "model.safetensors" "$T/emptydir"
printf 'garbage' > "$T/junk.safetensors"
data_error "SPX_E_SAFETENSORS" "$T/junk.safetensors"
printf '\x00\x10\x00\x00\x00\x00\x00\x00{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}\x00\x00\x00\x00' > "$T/hdr.safetensors"
data_error "byte 0" "$T/hdr.safetensors"
printf '\x08\x00\x00\x00\x00\x00\x00\x00{}      ' > "$T/empty.safetensors"
data_error "config.json" "$T/empty.safetensors"
printf '\x40\x00\x00\x00\x40\x00\x00\x00' > "$T/short.bin"
data_error "SPX_E_LLAMA2C" "$T/short.bin"
printf '\x40\x00\x00\x00' > "$T/tiny.bin"
data_error "28-byte" "$T/tiny.bin"

if [ -e "$SPX_SHARED/models/stories260K-llama2c/stories260K.bin" ]; then
  L2C="$SPX_SHARED/models/stories260K-llama2c"
  HF="$SPX_SHARED/models/stories260K-hf"
  head -c 500000 "$L2C/stories260K.bin" > "$T/trunc.bin"
  data_error "data runs out at byte 500000" "$T/trunc.bin"
  { cat "$L2C/stories260K.bin"; printf 'xyz'; } > "$T/trail.bin"
  data_error "3 trailing bytes" "$T/trail.bin"
  data_error "SPX_E_LLAMA2C" "$L2C/stories260K.bin" --tokenizer "$T/short.bin"
  mkdir -p "$T/hf"
  cp "$HF/config.json" "$T/hf/"
  head -c 100000 "$HF/model.safetensors" > "$T/hf/model.safetensors"
  data_error "past the end of the file" "$T/hf"
  # unsupported architecture and quantization named in the message
  cp "$HF/model.safetensors" "$T/hf/model.safetensors"
  sed 's/"model_type": "llama"/"model_type": "bloom"/' "$HF/config.json" > "$T/hf/config.json"
  data_error "'bloom'" "$T/hf"
  sed 's/"use_cache": true/"use_cache": true, "quantization_config": {"quant_method": "awq"}/' "$HF/config.json" > "$T/hf/config.json"
  data_error "awq" "$T/hf"
  # shape mismatch vs config
  sed 's/"intermediate_size": 172/"intermediate_size": 128/' "$HF/config.json" > "$T/hf/config.json"
  data_error "got shape \[172, 64\], expected \[128, 64\]" "$T/hf"
  # success path from a copy, with --name and --progress (progress goes to stderr only)
  cp "$HF/config.json" "$T/hf/config.json"
  expect_exit 0 "$SPX" convert "$T/hf" -o "$OUT/ok.spx" --name tiny --progress
  grep -q "'tiny'" "$T/out.txt" || fail "--name not used: $(cat "$T/out.txt")"
  grep -q "convert 47/47" "$T/err.txt" || fail "--progress shows nothing on stderr"
  grep -q "tokenizer: none" "$T/out.txt" || fail "no tokenizer beside the copy"
  grep -q "note: no tokenizer.json" "$T/out.txt" || fail "missing-tokenizer note"
  [ "$(ls -A "$OUT")" = ok.spx ] || fail "unexpected files: $(ls -A "$OUT")"
  # converting onto the input itself is refused; a .spx is not an input format
  expect_exit 2 "$SPX" convert "$OUT/ok.spx" -o "$OUT/ok.spx"
  cp "$OUT/ok.spx" "$T/ok.spx"
  expect_exit 1 "$SPX" convert "$T/ok.spx" -o "$OUT/again.spx"
  grep -q "already a .spx file" "$T/err.txt" || fail "a .spx input is not recognised: $(cat "$T/err.txt")"
fi
finish
