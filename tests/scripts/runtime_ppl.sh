#!/usr/bin/env bash
# runtime_ppl.sh: perplexity and generation of the real stories260K model.
#  - ppl at ctx 256 on tinystories_sample.txt, stories split at '<|endoftext|>' with one BOS each
#    (llama2.c's pretokenization, how the published val loss 1.297 -> ppl 3.66 was measured):
#    must lie in [3.0, 5.0];
#  - the same token stream through the NumPy reference (tests/ref/llama_ref.py --ppl-tokens):
#    nll_mean equal within 1e-5 relative (fp32 logits, log-softmax in double on both sides);
#  - the whole file tokenized as one text (literal '<|endoftext|>' markers kept) is reported;
#  - the llama2.c .bin conversion and the HF conversion: same tokens, same ppl (1e-6 relative:
#    identical weights after the q/k permutation), identical greedy tokens for "Once upon a time";
#  - the BF16 file's ppl is within 2% of F32 (reported).
source "$SPX_SRC/tests/lib/common.sh"
need_shared models/stories260K-hf/model.safetensors
need_shared data/tinystories/tinystories_sample.txt
M="$SPX_SHARED/models/stories260K-hf"
L="$SPX_SHARED/models/stories260K-llama2c"
TXT="$SPX_SHARED/data/tinystories/tinystories_sample.txt"
T="$SPX_TMP"
SEP='<|endoftext|>'

json_field() { sed -n "s/.*\"$1\": \([^,}]*\).*/\1/p"; }
# rel_close A B TOL: |A-B| <= TOL*|B|
rel_close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; if (b < 0) b = -b; exit !(d <= t * b) }'; }

"$SPX" convert "$M" -o "$T/f32.spx" >/dev/null || fail "convert stories260K-hf"
"$SPX" convert "$M/model.bf16.safetensors" -o "$T/bf16.spx" >/dev/null || fail "convert bf16"

# text output ends with the exact PPL line
"$SPX" ppl "$T/f32.spx" --text "$TXT" --ctx 256 --doc-sep "$SEP" --save-tokens "$T/ids.u32" >"$T/ppl.txt" \
  || fail "spx ppl failed"
cat "$T/ppl.txt"
tail -n 1 "$T/ppl.txt" | grep -Eq '^PPL = [0-9]+\.[0-9]{4}$' || fail "last line is not 'PPL = x.xxxx'"
PPL=$(tail -n 1 "$T/ppl.txt" | sed 's/^PPL = //')
awk -v p="$PPL" 'BEGIN { exit !(p >= 3.0 && p <= 5.0) }' || fail "stories260K ppl $PPL outside [3.0, 5.0]"
echo "stories260K F32 ppl (ctx 256, one BOS per story) = $PPL (published val loss 1.297 -> 3.66)"

J=$("$SPX" ppl "$T/f32.spx" --text "$TXT" --ctx 256 --doc-sep "$SEP" --json) || fail "ppl --json"
NLL=$(echo "$J" | json_field nll_mean)
[ "$(echo "$J" | json_field ctx)" = 256 ] || fail "json ctx: $J"
[ "$(echo "$J" | json_field tokens)" = "$(( $(echo "$J" | json_field windows) * 255 ))" ] || fail "json tokens: $J"

if [ -n "${SPX_PYTHON:-}" ]; then
  R=$("$SPX_PYTHON" "$SPX_SRC/tests/ref/llama_ref.py" --model "$M" --ppl-tokens "$T/ids.u32" --ctx 256) \
    || fail "reference ppl failed"
  RNLL=$(echo "$R" | sed -n 's/.*nll_mean \([^ ]*\).*/\1/p')
  echo "reference: $R"
  rel_close "$NLL" "$RNLL" 1e-5 || fail "nll_mean spx $NLL vs reference $RNLL"
else
  echo "no NumPy: reference ppl comparison skipped" >&2
fi

W=$("$SPX" ppl "$T/f32.spx" --text "$TXT" --ctx 256 --json) || fail "ppl whole text"
echo "whole file as one text (markers kept, one BOS): $W"

JB=$("$SPX" ppl "$T/bf16.spx" --text "$TXT" --ctx 256 --doc-sep "$SEP" --json) || fail "ppl bf16"
PB=$(echo "$JB" | json_field ppl)
PF=$(echo "$J" | json_field ppl)
echo "ppl F32 $PF  BF16 $PB"
rel_close "$PB" "$PF" 0.02 || fail "bf16 ppl $PB not within 2% of f32 $PF"

if [ -e "$L/stories260K.bin" ]; then
  "$SPX" convert "$L/stories260K.bin" --tokenizer "$L/tok512.bin" -o "$T/bin.spx" >/dev/null || fail "convert .bin"
  JL=$("$SPX" ppl "$T/bin.spx" --text "$TXT" --ctx 256 --doc-sep "$SEP" --json) || fail "ppl .bin"
  PL=$(echo "$JL" | json_field ppl)
  echo "ppl llama2.c .bin conversion $PL"
  rel_close "$PL" "$PF" 1e-6 || fail ".bin ppl $PL != HF ppl $PF"
  A=$("$SPX" run "$T/f32.spx" --prompt "Once upon a time" --steps 64 --tokens-out) || fail "run hf"
  B=$("$SPX" run "$T/bin.spx" --prompt "Once upon a time" --steps 64 --tokens-out) || fail "run bin"
  echo "$A"
  [ "$(echo "$A" | tail -n 1)" = "$(echo "$B" | tail -n 1)" ] || fail "greedy tokens differ: HF '$A' vs .bin '$B'"
  [ "$A" = "$B" ] || fail "generated text differs between the two tokenizers"
  [ "$(echo "$A" | tail -n 1 | wc -w)" -ge 1 ] || fail "no tokens generated"
  echo "$A" | head -n 1 | grep -q '^Once upon a time' || fail "text does not start with the prompt"
fi
finish
