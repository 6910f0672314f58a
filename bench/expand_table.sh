#!/usr/bin/env bash
# bench/expand_table.sh: Sparse Expansion perplexity table (issue: Sparse Expansion).
# Usage: bench/expand_table.sh [build-dir] [model: stories|brown|synth] [nsamples] [Ks] [settings]
#   stories: stories260K, calibration Brown 128 x 256 (out of domain), evaluation TinyStories sample
#            (non-empty story lines joined by spaces, the anchors' protocol), ctx 256.
#   brown:   llama-brown-hf (trained on the first 95% of the Brown token stream): calibration on the
#            first 95% of brown_detagged.txt, evaluation on the last 5% (in domain, disjoint), ctx 256.
#   synth:   spx synth --clusters 8 model; calibration and evaluation on the project's own docs.
# Prints a markdown table (rows: sparsity setting; columns: K) and the time and peak RSS of every
# `spx expand` run (from /usr/bin/time when present).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}; MODEL=${2:-stories}; NS=${3:-128}; KS=${4:-"1 2 4 8 16"}
SETTINGS=${5:-"--sparsity=0.5 --sparsity=0.7 --sparsity=0.8 --nm=2:4"}
SPX=$B/spx; S=../shared
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
case $MODEL in
  stories)
    $SPX convert $S/models/stories260K-hf -o $T/dense.spx >/dev/null
    grep -v '^[[:space:]]*$' $S/data/tinystories/tinystories_sample.txt | grep -v '<|endoftext|>' | tr '\n' ' ' > $T/eval.txt
    CAL="--text $S/data/brown/brown_detagged.txt --nsamples $NS --seqlen 256"
    EVAL=(--text $T/eval.txt --ctx 256);;
  brown)
    $SPX convert $S/models/llama-brown-hf -o $T/dense.spx >/dev/null
    CAL="--text $S/data/brown/brown_detagged.txt --range 0:0.95 --nsamples $NS --seqlen 256"
    # evaluation: the last 5% of the corpus, each line its own document with BOS (as in training)
    n=$(wc -l < $S/data/brown/brown_detagged.txt); tail -n $((n / 20)) $S/data/brown/brown_detagged.txt > $T/eval.txt
    EVAL=(--text $T/eval.txt --ctx 256 --doc-sep $'\n');;
  synth)
    $SPX synth -o $T/syn --clusters 8 --layers 2 --dim 128 --ffn 344 --seed 3 >/dev/null
    $SPX convert $T/syn -o $T/dense.spx >/dev/null
    cat README.md specs/*.md > $T/eval.txt
    CAL="--text $T/eval.txt --nsamples $NS --seqlen 128"
    EVAL=(--text $T/eval.txt --ctx 128);;
esac
ppl() { $SPX ppl "$1" "${EVAL[@]}" --json | sed 's/.*"ppl": \([0-9.e+-]*\).*/\1/'; }
TIME=""; [ -x /usr/bin/time ] && TIME="/usr/bin/time -f %e:%M -o $T/time"
printf 'model %s, calibration %s windows; dense PPL %.3f\n\n' "$MODEL" "$NS" "$(ppl $T/dense.spx)"
printf '| setting |'; for K in $KS; do printf ' K=%s |' $K; done; printf '\n|---|'; for K in $KS; do printf -- '---|'; done; printf '\n'
for s in $SETTINGS; do
  printf '| %s |' "${s#--}"
  for K in $KS; do
    $TIME $SPX expand $T/dense.spx -o $T/e.spx --clusters $K ${s/=/ } $CAL --no-check-routing >/dev/null
    [ -n "$TIME" ] && echo "K=$K ${s#--}: $(cut -d: -f1 $T/time) s, peak RSS $(( $(cut -d: -f2 $T/time) / 1024 )) MiB, $(stat -c %s $T/e.spx) bytes" >> $T/costs
    printf ' %.3f |' "$(ppl $T/e.spx)"
  done
  printf '\n'
done
[ -f $T/costs ] && { printf '\nspx expand cost per run:\n'; cat $T/costs; }
