#!/usr/bin/env bash
# expand_e2e.sh: `spx expand` (Sparse Expansion) end to end.
#  - synthetic model with 4 planted clusters (spx synth): K=4 recovers them (ARI >= 0.99 in every
#    block) and its experts reconstruct their layers far better than K=1 (every block's gate/up/down
#    error at most half of K=1's) at 70% sparsity;
#  - the written file's runtime routing equals the clustering for every calibration token;
#  - stories260K (when ../shared is present): K=1 equals plain SparseGPT on the MLP layers exactly
#    (identical perplexity bits), and K=4 beats K=1 at 50%.
source "$SPX_SRC/tests/lib/common.sh"
T=$SPX_TMP
cat "$SPX_SRC"/README.md "$SPX_SRC"/specs/*.md > $T/text.txt
$SPX synth -o $T/syn --clusters 4 --layers 2 --seed 1 >/dev/null || fail "synth"
$SPX convert $T/syn -o $T/syn.spx >/dev/null || fail "convert"
CAL="--text $T/text.txt --nsamples 32 --seqlen 128"
for K in 1 4; do
  $SPX expand $T/syn.spx -o $T/e$K.spx --clusters $K --sparsity 0.7 $CAL --truth-mod 4 --json > $T/e$K.json \
    || fail "expand K=$K"
done
$SPX inspect --check $T/e4.spx >/dev/null || fail "expanded file does not verify"
if [ -n "${SPX_PYTHON:-}" ]; then
  $SPX_PYTHON - $T/e1.json $T/e4.json <<'PY' || fail "synthetic expansion figures"
import json, sys
k1, k4 = (json.load(open(p)) for p in sys.argv[1:])
for r in (k1, k4):
    rc = r["routing_check"]
    assert rc["agree"] == rc["total"] > 0, rc
for b1, b4 in zip(k1["blocks"], k4["blocks"]):
    print("  block %d: ARI %.4f purity %.4f; recon gate %.4g -> %.4g, up %.4g -> %.4g, down %.4g -> %.4g" % (
        b4["layer"], b4["ari_up"], b4["purity_up"], b1["recon_gate"], b4["recon_gate"], b1["recon_up"],
        b4["recon_up"], b1["recon_down"], b4["recon_down"]))
    assert b4["ari_up"] >= 0.99, b4
    assert sorted(b4["sizes_up"]) == sorted(b4["sizes_up"]) and sum(b4["sizes_up"]) == 32 * 128
    for key in ("recon_gate", "recon_up", "recon_down"):
        assert b4[key] <= 0.5 * b1[key], (key, b1[key], b4[key])
PY
else
  grep -q '"agree"' $T/e4.json || fail "no routing check in the report"
fi
# determinism
$SPX expand $T/syn.spx -o $T/e4b.spx --clusters 4 --sparsity 0.7 $CAL >/dev/null
cmp -s $T/e4.spx $T/e4b.spx || fail "expand is not deterministic"
# usage errors
expect_exit 2 $SPX expand $T/syn.spx -o $T/x.spx --clusters 0 --sparsity 0.5 $CAL
expect_exit 2 $SPX expand $T/syn.spx -o $T/x.spx --clusters 4 $CAL
expect_exit 2 $SPX expand $T/syn.spx -o $T/x.spx --clusters 4 --sparsity 0.5

if [ -d "$SPX_SHARED/models/stories260K-hf" ]; then
  S=$SPX_SHARED
  $SPX convert $S/models/stories260K-hf -o $T/dense.spx >/dev/null
  grep -v '^[[:space:]]*$' $S/data/tinystories/tinystories_sample.txt | grep -v '<|endoftext|>' | tr '\n' ' ' > $T/eval.txt
  BC="--text $S/data/brown/brown_detagged.txt --nsamples 16 --seqlen 256"
  $SPX prune $T/dense.spx -o $T/p.spx --sparsity 0.5 --targets ffn_gate,ffn_up,ffn_down $BC >/dev/null || fail "prune"
  $SPX expand $T/dense.spx -o $T/k1.spx --clusters 1 --sparsity 0.5 $BC >/dev/null || fail "expand K=1"
  $SPX expand $T/dense.spx -o $T/k4.spx --clusters 4 --sparsity 0.5 $BC >/dev/null || fail "expand K=4"
  pp=$($SPX ppl $T/p.spx --text $T/eval.txt --ctx 256 --json | sed 's/.*"nll_sum": \([0-9.e+-]*\).*/\1/')
  p1=$($SPX ppl $T/k1.spx --text $T/eval.txt --ctx 256 --json | sed 's/.*"nll_sum": \([0-9.e+-]*\).*/\1/')
  p4=$($SPX ppl $T/k4.spx --text $T/eval.txt --ctx 256 --json | sed 's/.*"nll_sum": \([0-9.e+-]*\).*/\1/')
  echo "  stories260K 50%: nll_sum SparseGPT(MLP) $pp, K=1 $p1, K=4 $p4"
  [ "$pp" = "$p1" ] || fail "K=1 differs from plain SparseGPT: $p1 vs $pp"
  awk -v a="$p4" -v b="$p1" 'BEGIN { exit !(a < b) }' || fail "K=4 ($p4) does not beat K=1 ($p1)"
else
  echo "  (../shared absent: stories260K part skipped)"
fi
finish
