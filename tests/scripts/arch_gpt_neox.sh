#!/usr/bin/env bash
# arch_gpt_neox.sh: GPT-NeoX / Pythia (GPTNeoXForCausalLM) end to end: spx synth --arch gpt_neox ->
# convert -> spx run / spx ppl against the independent float64 NumPy forward
# tests/ref/hf_forward_ref.py (reads the Hugging Face safetensors directly: fused per-head
# query_key_value, partial rotary "rotate_half" on the first head_dim*rotary_pct dims, parallel
# or sequential residual, untied embed_out).
#
# Bound: per position ||spx - ref|| / ||ref|| < 1e-5 (fp32 round-off, measured ~3e-7; a wrong
# q/k/v interleave, rotary pairing or residual form gives > 1e-3). Cases: parallel residual with
# rotary_pct 0.25 (Pythia), sequential residual, rotary_pct 1 and 0.5, tied head, BF16; greedy
# decoding through the KV cache; spx ppl vs the reference (1e-5 relative); the parallel model's
# logits must FAIL against the same weights read as sequential (the test can fail); expand
# (K=1, sparsity 0) and moefy (all experts) reproduce the dense perplexity.
source "$SPX_SRC/tests/lib/common.sh"
need_python
source "$SPX_SRC/tests/lib/arch.sh"

# --- Pythia-like: parallel residual, rotary_pct 0.25, untied --------------------------------
N="$T/neox"
"$SPX" synth --arch gpt_neox -o "$N" --dim 64 --ffn 128 --layers 3 --heads 4 --vocab 300 --seed 21 >/dev/null \
  || fail "synth gpt_neox"
"$SPX" convert "$N" -o "$T/n.spx" >/dev/null || fail "convert gpt_neox"
"$SPX" inspect "$T/n.spx" >"$T/insp.txt" || fail "inspect"
grep -q 'spx.residual.parallel' "$T/insp.txt" || fail "no spx.residual.parallel"
grep -q 'output.weight' "$T/insp.txt" || fail "untied output.weight missing"
compare neox_parallel "$T/n.spx" "$N"
greedy neox_parallel "$T/n.spx" "$N"
J=$("$SPX" ppl "$T/n.spx" --tokens "$T/cal.u32" --ctx 64 --max-windows 3 --json) || fail "spx ppl"
R=$("$SPX_PYTHON" "$REF" --model "$N" --ppl-tokens "$T/cal.u32" --ctx 64 --max-windows 3) || fail "ref ppl"
N1=$(echo "$J" | json_field nll_mean); N2=$(echo "$R" | sed 's/.*nll_mean \([^ ]*\).*/\1/')
rel_close "$N1" "$N2" 1e-5 || fail "ppl nll_mean spx $N1 vs reference $N2"
echo "neox ppl: spx nll_mean $N1, reference $N2"
# sensitivity: the same weights read as a sequential-residual model must not match
mkdir -p "$T/seqcfg" && cp "$N/model.safetensors" "$T/seqcfg/"
"$SPX_PYTHON" -c "
import json
c = json.load(open('$N/config.json')); c['use_parallel_residual'] = False
json.dump(c, open('$T/seqcfg/config.json', 'w'))"
"$SPX_PYTHON" "$REF" --model "$T/seqcfg" --tokens "$IDS" --compare "$T/neox_parallel.f32" --tol 1e-5 >/dev/null 2>&1 \
  && fail "the comparison does not distinguish parallel from sequential residuals"
"$SPX" convert "$T/seqcfg" -o "$T/seq_same.spx" >/dev/null || fail "convert sequential config"
compare neox_same_weights_sequential "$T/seq_same.spx" "$T/seqcfg"

# --- variants -----------------------------------------------------------------------------------
variant() {   # NAME synth options...
  local name=$1; shift
  "$SPX" synth --arch gpt_neox -o "$T/$name" --dim 64 --ffn 96 --layers 2 --heads 4 --vocab 300 "$@" >/dev/null \
    || { fail "synth $name"; return; }
  "$SPX" convert "$T/$name" -o "$T/$name.spx" >/dev/null || { fail "convert $name"; return; }
  compare "$name" "$T/$name.spx" "$T/$name"
}
variant neox_sequential --sequential --seed 22
variant neox_rot100 --rotary-pct 1 --seed 23
variant neox_rot50_tied --rotary-pct 0.5 --tied --seed 24
"$SPX" convert "$N" --dtype bf16 -o "$T/n_bf16.spx" >/dev/null || fail "convert bf16"
compare neox_bf16 "$T/n_bf16.spx" "$N" --round bf16

# --- expand K=1 sparsity 0 and moefy with all experts reproduce the dense model ----------------
"$SPX" expand "$T/n.spx" -o "$T/x.spx" --clusters 1 --sparsity 0 --tokens "$T/cal.u32" --nsamples 8 --seqlen 64 \
  >/dev/null 2>"$T/err.txt" || fail "expand: $(cat "$T/err.txt")"
X=$("$SPX" ppl "$T/x.spx" --tokens "$T/cal.u32" --ctx 64 --max-windows 3 --json | json_field nll_mean)
rel_close "$X" "$N1" 1e-6 || fail "expand K=1 S=0 nll $X != dense $N1"
"$SPX" moefy "$T/n.spx" -o "$T/m.spx" --experts 4 --tokens "$T/cal.u32" --nsamples 8 --seqlen 64 \
  >/dev/null 2>"$T/err.txt" || fail "moefy: $(cat "$T/err.txt")"
M=$("$SPX" ppl "$T/m.spx" --tokens "$T/cal.u32" --ctx 64 --max-windows 3 --gate-mode topk --gate-k 4 --json | json_field nll_mean)
rel_close "$M" "$N1" 1e-5 || fail "moefy all experts nll $M != dense $N1"
echo "neox expand K=1: nll $X; moefy all experts: nll $M; dense $N1"
finish
