#!/usr/bin/env bash
# runtime_ref.sh: spx logits vs the independent float64 NumPy forward (tests/ref/llama_ref.py)
# reading the Hugging Face safetensors directly.
#
# Bound: per position ||spx - ref|| / ||ref|| < 1e-5. spx computes in fp32 (round-off 6e-8 per
# operation, dims <= 768, <= 6 blocks: measured ~1e-6); a wrong convention gives > 1e-2.
# F16/BF16 checkpoints are compared with the reference run on the same F16/BF16 weights (same
# bound: the weights convert to fp32 exactly) and their distance to the F32 reference is reported.
# Cases: a synthetic checkpoint from `spx synth` (always), stories260K (F32/F16/BF16 and the
# llama2.c .bin whose q/k rows convert permutes) and llama-brown (F32, and --dtype bf16) when
# ../shared is present. Also greedy decoding (KV-cache path) vs the reference's recomputation.
source "$SPX_SRC/tests/lib/common.sh"
need_python
REF="$SPX_SRC/tests/ref/llama_ref.py"
T="$SPX_TMP"
# 48 tokens: the start of the first TinyStories story (BOS + "Once upon a time there was ...")
IDS=1,403,407,261,378,383,286,261,376,268,414,422,395,368,302,426,368,302,401,396,267,344,444,427,421,414,276,265,263,304,341,261,420,277,264,270,288,426,346,394,284,303,422,261,423,412,451,299

# compare NAME SPX_FILE MODEL_DIR [ref options...]: dump spx logits and compare (bound 1e-5)
compare() {
  local name=$1 spx=$2 dir=$3; shift 3
  if ! "$SPX" run "$spx" --prompt-ids "$IDS" --steps 0 --dump-logits "$T/$name.f32" 2>"$T/err.txt"; then
    fail "$name: spx run --dump-logits failed: $(cat "$T/err.txt")"; return
  fi
  local out
  out=$("$SPX_PYTHON" "$REF" --model "$dir" --tokens "$IDS" --compare "$T/$name.f32" --tol 1e-5 "$@" 2>&1) \
    || fail "$name: $out"
  echo "$name: $out"
}

# report NAME F32_DIR: distance of $T/NAME.f32 to the F32 reference (information only)
report_vs_f32() {
  local out
  out=$("$SPX_PYTHON" "$REF" --model "$2" --tokens "$IDS" --compare "$T/$1.f32" --tol 1e9 2>&1)
  echo "$1 vs F32 reference: $out"
}

# greedy NAME SPX_FILE MODEL_DIR [ref options]: 16 greedy tokens, spx (KV cache) vs reference
greedy() {
  local name=$1 spx=$2 dir=$3; shift 3
  local got want
  got=$("$SPX" run "$spx" --prompt-ids "$IDS" --steps 16 --tokens-out 2>"$T/err.txt" | tail -n 1)
  want=$("$SPX_PYTHON" "$REF" --model "$dir" --tokens "$IDS" --greedy 16 "$@" | sed -n 's/^greedy //p')
  [ "$got" = "$want" ] || fail "$name greedy: spx '$got' != reference '$want'"
  echo "$name greedy: $got"
}

# --- synthetic checkpoint (no ../shared needed): GQA 4/2, untied, 3 layers ------------------
SYN="$T/synth"
"$SPX" synth -o "$SYN" --dim 64 --ffn 96 --layers 3 --heads 4 --kv-heads 2 --vocab 300 --untied --seed 7 >/dev/null \
  || fail "spx synth failed"
"$SPX" convert "$SYN" -o "$T/synth.spx" >/dev/null || fail "convert synth"
SIDS=$IDS
IDS=$(echo "$IDS" | tr ',' '\n' | awk '{ if (NR > 1) printf ","; printf "%d", $1 % 300 }')
compare synth "$T/synth.spx" "$SYN"
"$SPX" convert "$SYN" --dtype bf16 -o "$T/synth_bf16.spx" >/dev/null || fail "convert synth bf16"
compare synth_bf16 "$T/synth_bf16.spx" "$SYN" --round bf16
report_vs_f32 synth_bf16 "$SYN"
IDS=$SIDS

if [ ! -e "$SPX_SHARED/models/stories260K-hf/model.safetensors" ]; then
  echo "SKIP (partly): ../shared/models is absent; only the synthetic checkpoint was checked" >&2
  finish
fi

# --- stories260K: F32, F16, BF16 files and the llama2.c .bin ------------------------------
M="$SPX_SHARED/models/stories260K-hf"
L="$SPX_SHARED/models/stories260K-llama2c"
"$SPX" convert "$M" -o "$T/s_f32.spx" >/dev/null || fail "convert stories260K-hf"
compare stories_f32 "$T/s_f32.spx" "$M"
greedy stories_f32 "$T/s_f32.spx" "$M"
"$SPX" convert "$M/model.f16.safetensors" -o "$T/s_f16.spx" >/dev/null || fail "convert f16"
compare stories_f16 "$T/s_f16.spx" "$M" --weights "$M/model.f16.safetensors"
report_vs_f32 stories_f16 "$M"
"$SPX" convert "$M/model.bf16.safetensors" -o "$T/s_bf16.spx" >/dev/null || fail "convert bf16"
compare stories_bf16 "$T/s_bf16.spx" "$M" --weights "$M/model.bf16.safetensors"
report_vs_f32 stories_bf16 "$M"
if [ -e "$L/stories260K.bin" ]; then
  "$SPX" convert "$L/stories260K.bin" --tokenizer "$L/tok512.bin" -o "$T/s_bin.spx" >/dev/null || fail "convert .bin"
  compare stories_llama2c_bin "$T/s_bin.spx" "$M"
fi

# --- llama-brown: untied, dim 256, 6 layers ------------------------------------------------
B="$SPX_SHARED/models/llama-brown-hf"
if [ -e "$B/model.safetensors" ]; then
  "$SPX" convert "$B" -o "$T/b_f32.spx" >/dev/null || fail "convert llama-brown-hf"
  compare brown_f32 "$T/b_f32.spx" "$B"
  greedy brown_f32 "$T/b_f32.spx" "$B"
  "$SPX" convert "$B" --dtype bf16 -o "$T/b_bf16.spx" >/dev/null || fail "convert llama-brown-hf bf16"
  compare brown_bf16 "$T/b_bf16.spx" "$B" --round bf16
  report_vs_f32 brown_bf16 "$B"
fi
finish
