#!/usr/bin/env bash
# arch_opt.sh: OPT (OPTForCausalLM) end to end: spx synth --arch opt -> convert -> spx run / spx ppl
# against the independent float64 NumPy forward tests/ref/hf_forward_ref.py (reads the Hugging
# Face safetensors directly: learned positions at index pos + 2, ReLU MLP fc1/fc2, biases on
# q/k/v/out_proj, pre-norm or post-norm (do_layer_norm_before false: no final layer norm)).
#
# Bound: per position ||spx - ref|| / ||ref|| < 1e-5 (fp32 round-off, measured ~3e-7; a position
# offset of 0 instead of 2 or a pre/post-norm mix-up gives > 1e-3). Cases: pre-norm tied,
# post-norm, untied, BF16; greedy decoding through the KV cache; spx ppl vs the reference;
# post-norm logits must FAIL against a pre-norm reading (the test can fail); expand (K=1,
# sparsity 0) and moefy (all experts) reproduce the dense perplexity; word_embed_proj_dim !=
# hidden_size (project_in/out) is refused with SPX_E_UNSUPPORTED naming the field.
source "$SPX_SRC/tests/lib/common.sh"
need_python
source "$SPX_SRC/tests/lib/arch.sh"

# --- pre-norm, tied ------------------------------------------------------------------------------
O="$T/opt"
"$SPX" synth --arch opt -o "$O" --dim 64 --ffn 128 --layers 3 --heads 4 --vocab 300 --seed 31 >/dev/null \
  || fail "synth opt"
"$SPX" convert "$O" -o "$T/o.spx" >/dev/null || fail "convert opt"
"$SPX" inspect "$T/o.spx" >"$T/insp.txt" || fail "inspect"
grep -Eq 'position_embd.weight +F32 +dense +\[258, 64\]' "$T/insp.txt" || fail "position_embd.weight [258, 64] missing"
compare opt "$T/o.spx" "$O"
greedy opt "$T/o.spx" "$O"
J=$("$SPX" ppl "$T/o.spx" --tokens "$T/cal.u32" --ctx 64 --max-windows 3 --json) || fail "spx ppl"
R=$("$SPX_PYTHON" "$REF" --model "$O" --ppl-tokens "$T/cal.u32" --ctx 64 --max-windows 3) || fail "ref ppl"
N1=$(echo "$J" | json_field nll_mean); N2=$(echo "$R" | sed 's/.*nll_mean \([^ ]*\).*/\1/')
rel_close "$N1" "$N2" 1e-5 || fail "ppl nll_mean spx $N1 vs reference $N2"
echo "opt ppl: spx nll_mean $N1, reference $N2"
"$SPX" convert "$O" --dtype bf16 -o "$T/o_bf16.spx" >/dev/null || fail "convert bf16"
compare opt_bf16 "$T/o_bf16.spx" "$O" --round bf16

# --- post-norm (do_layer_norm_before false), untied ------------------------------------------------
P="$T/optpost"
"$SPX" synth --arch opt --post-norm --untied -o "$P" --dim 64 --ffn 96 --layers 2 --heads 2 --vocab 300 --seed 32 \
  >/dev/null || fail "synth opt post-norm"
grep -q final_layer_norm "$P/config.json" && fail "config.json mentions a final layer norm"
"$SPX" convert "$P" -o "$T/p.spx" >/dev/null || fail "convert opt post-norm"
"$SPX" inspect "$T/p.spx" >"$T/insp.txt"
grep -q 'spx.norm.post' "$T/insp.txt" || fail "no spx.norm.post"
grep -q 'output_norm' "$T/insp.txt" && fail "post-norm OPT has an output_norm tensor"
compare opt_postnorm "$T/p.spx" "$P"
greedy opt_postnorm "$T/p.spx" "$P"
# sensitivity: the post-norm logits against the same weights read as pre-norm (no final norm)
mkdir -p "$T/precfg" && cp "$P/model.safetensors" "$T/precfg/"
"$SPX_PYTHON" -c "
import json
c = json.load(open('$P/config.json')); c['do_layer_norm_before'] = True; c['_remove_final_layer_norm'] = True
json.dump(c, open('$T/precfg/config.json', 'w'))"
"$SPX_PYTHON" "$REF" --model "$T/precfg" --tokens "$IDS" --compare "$T/opt_postnorm.f32" --tol 1e-5 >/dev/null 2>&1 \
  && fail "the comparison does not distinguish post-norm from pre-norm"
"$SPX" convert "$T/precfg" -o "$T/pre_same.spx" >/dev/null || fail "convert pre-norm without final layer norm"
compare opt_prenorm_no_final_norm "$T/pre_same.spx" "$T/precfg"

# --- expand K=1 sparsity 0 and moefy with all experts reproduce the dense model -------------------
"$SPX" expand "$T/p.spx" -o "$T/x.spx" --clusters 1 --sparsity 0 --tokens "$T/cal.u32" --nsamples 8 --seqlen 64 \
  >/dev/null 2>"$T/err.txt" || fail "expand: $(cat "$T/err.txt")"
D=$("$SPX" ppl "$T/p.spx" --tokens "$T/cal.u32" --ctx 64 --max-windows 3 --json | json_field nll_mean)
X=$("$SPX" ppl "$T/x.spx" --tokens "$T/cal.u32" --ctx 64 --max-windows 3 --json | json_field nll_mean)
rel_close "$X" "$D" 1e-6 || fail "expand K=1 S=0 nll $X != dense $D"
"$SPX" moefy "$T/p.spx" -o "$T/m.spx" --experts 4 --tokens "$T/cal.u32" --nsamples 8 --seqlen 64 \
  >/dev/null 2>"$T/err.txt" || fail "moefy: $(cat "$T/err.txt")"
M=$("$SPX" ppl "$T/m.spx" --tokens "$T/cal.u32" --ctx 64 --max-windows 3 --gate-mode topk --gate-k 4 --json | json_field nll_mean)
rel_close "$M" "$D" 1e-5 || fail "moefy all experts nll $M != dense $D"
echo "opt post-norm expand K=1: nll $X; moefy all experts: nll $M; dense $D"

# --- refusal: project_in / project_out ----------------------------------------------------------
mkdir -p "$T/proj" && cp "$O/model.safetensors" "$T/proj/"
"$SPX_PYTHON" -c "
import json
c = json.load(open('$O/config.json')); c['word_embed_proj_dim'] = 32
json.dump(c, open('$T/proj/config.json', 'w'))"
expect_exit 1 "$SPX" convert "$T/proj" -o "$T/proj.spx"
grep -q word_embed_proj_dim "$SPX_TMP/err.txt" || fail "refusal does not name word_embed_proj_dim"
[ -e "$T/proj.spx" ] && fail "a refused conversion left an output file"
finish
