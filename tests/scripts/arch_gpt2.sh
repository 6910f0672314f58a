#!/usr/bin/env bash
# arch_gpt2.sh: GPT-2 (GPT2LMHeadModel) end to end: spx synth --arch gpt2 -> convert -> spx run /
# spx ppl against the independent float64 NumPy forward tests/ref/hf_forward_ref.py, which reads
# the Hugging Face safetensors directly (Conv1D [in, out] weights, fused c_attn, learned wpe).
#
# Bound: per position ||spx - ref|| / ||ref|| < 1e-5. spx computes in fp32 (round-off ~6e-8 per
# operation, dim 64, <= 3 blocks: measured ~3e-7); a wrong convention (untransposed Conv1D, a
# q/k/v block swapped, positions off by one, tanh vs erf GELU) gives > 1e-3.
# Also: greedy decoding through the KV cache (positions > 0 of the learned table) equals the
# reference's recomputation; spx ppl's nll_mean equals the reference's within 1e-5 relative; BF16
# conversion vs the reference on BF16-rounded weights; a sharded checkpoint without the
# "transformer." prefix (as saved from GPT2Model) converts to the same tensors; prune
# (magnitude, wanda, sparsegpt) leaves biases and norms untouched and halves every block matrix;
# expand (K=1, sparsity 0) and moefy (all experts) reproduce the dense perplexity.
source "$SPX_SRC/tests/lib/common.sh"
need_python
source "$SPX_SRC/tests/lib/arch.sh"

# --- tied, 3 layers, n_inner null (ffn 4*dim) ------------------------------------------------
G="$T/gpt2"
"$SPX" synth --arch gpt2 -o "$G" --dim 64 --ffn 256 --layers 3 --heads 4 --vocab 300 --seed 11 >/dev/null || fail "synth gpt2"
grep -Eq '"n_inner":[[:space:]]*null' "$G/config.json" || fail "config.json: n_inner should be null for ffn = 4*dim"
grep -Eq '"activation_function":[[:space:]]*"gelu_new"' "$G/config.json" || fail "config.json: gelu_new expected"
"$SPX" convert "$G" -o "$T/g.spx" >/dev/null || fail "convert gpt2"
"$SPX" inspect "$T/g.spx" >"$T/insp.txt" || fail "inspect"
grep -q 'general.architecture.*gpt2' "$T/insp.txt" || fail "architecture metadata"
grep -q 'spx.position_embd.count' "$T/insp.txt" || fail "no spx.position_embd.count"
grep -Eq 'position_embd.weight +F32 +dense +\[256, 64\]' "$T/insp.txt" || fail "position_embd.weight [256, 64] missing"
compare gpt2 "$T/g.spx" "$G"
greedy gpt2 "$T/g.spx" "$G"
# sensitivity: the same logits against a model with other weights must fail the bound
"$SPX" synth --arch gpt2 -o "$T/other" --dim 64 --ffn 256 --layers 3 --heads 4 --vocab 300 --seed 12 >/dev/null
"$SPX_PYTHON" "$REF" --model "$T/other" --tokens "$IDS" --compare "$T/gpt2.f32" --tol 1e-5 >/dev/null 2>&1 \
  && fail "the comparison does not detect different weights"

# ppl: spx and the reference on the same token stream
J=$("$SPX" ppl "$T/g.spx" --tokens "$T/cal.u32" --ctx 64 --max-windows 3 --json) || fail "spx ppl"
R=$("$SPX_PYTHON" "$REF" --model "$G" --ppl-tokens "$T/cal.u32" --ctx 64 --max-windows 3) || fail "ref ppl"
N1=$(echo "$J" | json_field nll_mean); N2=$(echo "$R" | sed 's/.*nll_mean \([^ ]*\).*/\1/')
rel_close "$N1" "$N2" 1e-5 || fail "ppl nll_mean spx $N1 vs reference $N2"
echo "gpt2 ppl: spx nll_mean $N1, reference $N2"

# BF16 conversion against the reference on BF16-rounded weights
"$SPX" convert "$G" --dtype bf16 -o "$T/g_bf16.spx" >/dev/null || fail "convert bf16"
compare gpt2_bf16 "$T/g_bf16.spx" "$G" --round bf16

# --- untied, sharded, names without "transformer." (GPT2Model-style checkpoint) -------------
U="$T/gpt2u"
"$SPX" synth --arch gpt2 -o "$U" --dim 64 --ffn 96 --layers 2 --heads 2 --vocab 300 --untied --seed 13 \
  --shard-size 60000 >/dev/null || fail "synth gpt2 untied"
"$SPX_PYTHON" - "$U" <<'PY' || fail "prefix strip"
import json, os, struct, sys
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
strip = lambda n: n[len("transformer."):] if n.startswith("transformer.") else n
for fn in sorted(set(idx["weight_map"].values())):
    p = os.path.join(d, fn)
    buf = open(p, "rb").read()
    (hl,) = struct.unpack("<Q", buf[:8])
    h = json.loads(buf[8:8 + hl])
    h2 = json.dumps({strip(k): v for k, v in h.items()}).encode()
    h2 += b" " * ((8 - len(h2) % 8) % 8)
    open(p, "wb").write(struct.pack("<Q", len(h2)) + h2 + buf[8 + hl:])
idx["weight_map"] = {strip(k): v for k, v in idx["weight_map"].items()}
json.dump(idx, open(os.path.join(d, "model.safetensors.index.json"), "w"))
PY
"$SPX" convert "$U" -o "$T/u.spx" >/dev/null || fail "convert unprefixed sharded gpt2"
compare gpt2_untied_noprefix "$T/u.spx" "$U"

# --- prune: biases and norms untouched, block matrices at 50% --------------------------------
bias_crcs() { "$SPX" inspect "$1" | awk '$2 ~ /(bias|norm.weight|embd.weight)$/ { print $2, $NF }'; }
bias_crcs "$T/g.spx" >"$T/b0.txt"
for m in magnitude wanda sparsegpt; do
  "$SPX" prune "$T/g.spx" -o "$T/p_$m.spx" --method "$m" --sparsity 0.5 --tokens "$T/cal.u32" --nsamples 8 \
    --seqlen 64 >/dev/null 2>"$T/err.txt" || { fail "prune $m: $(cat "$T/err.txt")"; continue; }
  bias_crcs "$T/p_$m.spx" | cmp -s - "$T/b0.txt" || fail "prune $m changed a bias, norm or embedding"
  # density column: the field after the element count that follows the "[r, c]" shape
  n=$("$SPX" inspect "$T/p_$m.spx" | awk '$2 ~ /^blk\..*(attn_[qkv]|attn_output|ffn_up|ffn_down)\.weight$/ {
        for (i = 3; i < NF; i++) if ($i ~ /\]$/) { d = $(i + 2); if (d >= 0.499 && d <= 0.501) k++; break } }
      END { print k + 0 }')
  [ "$n" = 18 ] || fail "prune $m: $n of 18 block matrices at density 0.5 (+-0.001)"
  P=$("$SPX" ppl "$T/p_$m.spx" --tokens "$T/cal.u32" --ctx 64 --max-windows 3 --json | json_field ppl)
  echo "gpt2 prune $m 50%: ppl $P (dense $(echo "$J" | json_field ppl))"
done

# --- expand K=1 sparsity 0 and moefy with all experts reproduce the dense model --------------
"$SPX" expand "$T/g.spx" -o "$T/x.spx" --clusters 1 --sparsity 0 --tokens "$T/cal.u32" --nsamples 8 --seqlen 64 \
  >/dev/null 2>"$T/err.txt" || fail "expand: $(cat "$T/err.txt")"
X=$("$SPX" ppl "$T/x.spx" --tokens "$T/cal.u32" --ctx 64 --max-windows 3 --json | json_field nll_mean)
rel_close "$X" "$N1" 1e-6 || fail "expand K=1 S=0 nll $X != dense $N1"
"$SPX" moefy "$T/g.spx" -o "$T/m.spx" --experts 4 --tokens "$T/cal.u32" --nsamples 8 --seqlen 64 \
  >/dev/null 2>"$T/err.txt" || fail "moefy: $(cat "$T/err.txt")"
M=$("$SPX" ppl "$T/m.spx" --tokens "$T/cal.u32" --ctx 64 --max-windows 3 --gate-mode topk --gate-k 4 --json | json_field nll_mean)
rel_close "$M" "$N1" 1e-5 || fail "moefy all experts nll $M != dense $N1"
echo "gpt2 expand K=1: nll $X; moefy all experts: nll $M; dense $N1"

# --- positions beyond the learned table: SPX_E_LIMIT, not a read past the table ----------------
"$SPX" synth --arch gpt2 -o "$T/short" --dim 32 --ffn 64 --layers 1 --heads 2 --vocab 300 --ctx 16 >/dev/null \
  || fail "synth short"
"$SPX" convert "$T/short" -o "$T/short.spx" >/dev/null || fail "convert short"
expect_exit 1 "$SPX" run "$T/short.spx" --prompt-ids "$IDS" --steps 0 --dump-logits "$T/short.f32"
grep -q "16 learned positions" "$SPX_TMP/err.txt" || fail "position overflow message: $(cat "$SPX_TMP/err.txt")"
[ -e "$T/short.f32" ] && fail "logits written despite the position overflow"
# 12 prompt tokens + 5 steps feed positions 0..15 (the last token is never fed back); 6 steps overflow
expect_exit 0 "$SPX" run "$T/short.spx" --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12 --steps 5
expect_exit 1 "$SPX" run "$T/short.spx" --prompt-ids 1,2,3,4,5,6,7,8,9,10,11,12 --steps 6

# --- refusals ---------------------------------------------------------------------------------
mkdir -p "$T/bad" && cp "$G/model.safetensors" "$T/bad/"
"$SPX_PYTHON" -c "
import json, sys
c = json.load(open('$G/config.json')); c['scale_attn_weights'] = False
json.dump(c, open('$T/bad/config.json', 'w'))"
expect_exit 1 "$SPX" convert "$T/bad" -o "$T/bad.spx"
grep -q scale_attn_weights "$SPX_TMP/err.txt" || fail "refusal does not name scale_attn_weights"
finish
