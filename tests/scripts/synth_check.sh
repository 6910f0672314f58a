#!/usr/bin/env bash
# synth_check.sh: checkpoints written by `spx synth` (hence by the C safetensors writer) pass an
# independent Python + NumPy check (tests/ref/synth_check.py): safetensors reference rules,
# shapes/dtypes against config.json, planted clusters in the embeddings, tokenizer.json validity
# and a plain-Python BPE round trip; sharded sets with their index.
source "$SPX_SRC/tests/lib/common.sh"
need_python

check() {
  local dir=$1; shift
  "$SPX" synth -o "$dir" "$@" >"$SPX_TMP/out.txt" 2>"$SPX_TMP/err.txt" || { fail "synth $*: $(cat "$SPX_TMP/err.txt")"; return; }
  "$SPX_PYTHON" "$SPX_SRC/tests/ref/synth_check.py" "$dir" >"$SPX_TMP/py.txt" 2>&1 || fail "synth $*: $(cat "$SPX_TMP/py.txt")"
  sed 's/^/  /' "$SPX_TMP/py.txt"
}

check "$SPX_TMP/default"
check "$SPX_TMP/f16" --dtype f16 --untied --act gelu --layers 3 --seed 5
check "$SPX_TMP/bf16" --dtype bf16 --dim 96 --heads 6 --kv-heads 3 --ffn 256 --clusters 8 --vocab 1000
check "$SPX_TMP/minvocab" --vocab 259 --clusters 1 --layers 1
check "$SPX_TMP/bigvocab" --vocab 20000 --dim 32 --heads 2 --kv-heads 1 --ffn 64 --layers 1
check "$SPX_TMP/sharded" --shard-size 60000 --untied
check "$SPX_TMP/oneshard" --shard-size 100000000
finish
