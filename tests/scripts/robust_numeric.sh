#!/usr/bin/env bash
# robust_numeric.sh: non-finite numbers at the CLI level.
#  1. Weights: a NaN, +Inf or -Inf in a synthetic safetensors checkpoint makes `spx convert` exit 1
#     with SPX_E_NUMERIC, a message naming the tensor and the flat index, and no output file.
#  2. Activations: finite but huge RMSNorm weights (1e30 in blk.1.ffn_norm) convert fine, then
#     overflow the MLP of block 1 to Inf; `spx ppl` and `spx verify` must exit 1 with SPX_E_NUMERIC
#     instead of printing a result, and name the first non-finite activation (block, stage, window,
#     token, element: verify/spx_nonfinite.c); an overflow in block 0's attention is located there.
# The checkpoint is patched with the standard library's struct/json only.
source "$SPX_SRC/tests/lib/common.sh"
T=$SPX_TMP
PY=${SPX_PYTHON:-python3}
command -v "$PY" >/dev/null || skip "no python3"

"$SPX" synth -o "$T/base" --dim 32 --ffn 64 --layers 2 --heads 4 --kv-heads 2 --vocab 300 >/dev/null ||
  { fail "synth"; finish; }

# patch DIR TENSOR INDEX|all VALUE: overwrite F32 element(s) of TENSOR in DIR/model.safetensors
patch() {
  "$PY" - "$1/model.safetensors" "$2" "$3" "$4" <<'PYEOF'
import json, struct, sys
path, name, index, value = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
with open(path, "r+b") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
    t = hdr[name]
    assert t["dtype"] == "F32", t["dtype"]
    begin, end = t["data_offsets"]
    idx = range((end - begin) // 4) if index == "all" else [int(index)]
    for i in idx:
        f.seek(8 + n + begin + 4 * i)
        f.write(struct.pack("<f", value))
PYEOF
}

UP=model.layers.1.mlp.up_proj.weight
for v in nan inf -inf; do
  rm -rf "$T/w_$v" && cp -r "$T/base" "$T/w_$v"
  patch "$T/w_$v" "$UP" 37 "$v" || { fail "patch $v"; continue; }
  expect_exit 1 "$SPX" convert "$T/w_$v" -o "$T/w_$v.spx"
  grep -q "SPX_E_NUMERIC" "$SPX_TMP/err.txt" || fail "convert with $v: no SPX_E_NUMERIC in: $(cat "$SPX_TMP/err.txt")"
  grep -q -e "$UP" -e "blk.1.ffn_up.weight" "$SPX_TMP/err.txt" || fail "convert with $v: tensor not named"
  grep -q "index 37" "$SPX_TMP/err.txt" || fail "convert with $v: flat index 37 not named"
  [ ! -e "$T/w_$v.spx" ] || fail "convert with $v left an output file"
  ls "$T/w_$v.spx".tmp.* >/dev/null 2>&1 && fail "convert with $v left a temporary file"
done
# the same with F16 output: 1e5 is finite in F32 but overflows F16
rm -rf "$T/w_big" && cp -r "$T/base" "$T/w_big"
patch "$T/w_big" "$UP" 5 1e5
expect_exit 1 "$SPX" convert "$T/w_big" -o "$T/w_big.spx" --dtype f16
grep -q "SPX_E_NUMERIC" "$SPX_TMP/err.txt" && grep -q "index 5" "$SPX_TMP/err.txt" ||
  fail "F16 overflow: $(cat "$SPX_TMP/err.txt")"

# activations: huge norm weights
rm -rf "$T/act" && cp -r "$T/base" "$T/act"
patch "$T/act" model.layers.1.post_attention_layernorm.weight all 1e30
expect_exit 0 "$SPX" convert "$T/act" -o "$T/act.spx"
expect_exit 0 "$SPX" convert "$T/base" -o "$T/base.spx"
for i in $(seq 1 40); do echo "the cat and the dog went to the park on day $i."; done >"$T/text.txt"
expect_exit 0 "$SPX" ppl "$T/base.spx" --text "$T/text.txt" --ctx 32
expect_exit 1 "$SPX" ppl "$T/act.spx" --text "$T/text.txt" --ctx 32
grep -q "SPX_E_NUMERIC" "$SPX_TMP/err.txt" || fail "ppl on Inf activations: no SPX_E_NUMERIC in: $(cat "$SPX_TMP/err.txt")"
grep -q "PPL =" "$SPX_TMP/out.txt" && fail "ppl on Inf activations printed a perplexity"
# the diagnosis pass (verify/spx_nonfinite.c) names the first non-finite activation: 1e30 norm
# weights keep the ffn_up input finite (|x| ~ 1e30 < 3.4e38), the up/gate products overflow, so
# the first Inf/NaN is in block 1's ffn_down input (act(gate) * up)
grep -q -E "non-finite activation in blk\.1 ffn_down input \(window 0, token [0-9]+, element [0-9]+\): (-?inf|nan)" \
  "$SPX_TMP/err.txt" || fail "ppl does not name the first non-finite activation: $(cat "$SPX_TMP/err.txt")"
echo "ppl: $(head -1 "$SPX_TMP/err.txt")"
# block 0 is untouched: nothing non-finite may be reported before blk.1
grep -q "blk\.0" "$SPX_TMP/err.txt" && fail "ppl blames block 0"
# verify: the same diagnosis, naming which model
expect_exit 1 "$SPX" verify "$T/act.spx" --reference "$T/base.spx" --text "$T/text.txt" --ctx 32
grep -q "SPX_E_NUMERIC" "$SPX_TMP/err.txt" || fail "verify on Inf activations: $(cat "$SPX_TMP/err.txt")"
grep -q -E "candidate: non-finite activation in blk\.1 ffn_down input \(window 0, token [0-9]+, element [0-9]+\)" \
  "$SPX_TMP/err.txt" || fail "verify does not name the first non-finite activation: $(cat "$SPX_TMP/err.txt")"
echo "verify: $(head -1 "$SPX_TMP/err.txt")"
# NaN in the attention input of block 0 (attn_norm weight): found at the first stage, block 0
rm -rf "$T/nan0" && cp -r "$T/base" "$T/nan0"
patch "$T/nan0" model.layers.0.input_layernorm.weight all 1e38
patch "$T/nan0" model.layers.0.self_attn.q_proj.weight all 1e38
expect_exit 0 "$SPX" convert "$T/nan0" -o "$T/nan0.spx"
expect_exit 1 "$SPX" ppl "$T/nan0.spx" --text "$T/text.txt" --ctx 32
grep -q -E "non-finite activation in (blk\.0 (attn_q input|attn_output input|output)|token embeddings)" "$SPX_TMP/err.txt" ||
  fail "attention overflow in block 0 not located: $(cat "$SPX_TMP/err.txt")"
echo "ppl (block 0 attention): $(head -1 "$SPX_TMP/err.txt")"
finish
