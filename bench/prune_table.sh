#!/usr/bin/env bash
# bench/prune_table.sh: perplexity table of one-shot pruning on stories260K (issue: pruning).
# Usage: bench/prune_table.sh [build-dir] [nsamples] [wikitext-windows]
#   nsamples: calibration windows of 256 tokens from the Brown corpus (default 128; the anchors'
#   parity runs used 32). wikitext-windows: 0 = the whole WikiText-2 test set (default).
# Prints a markdown table: PPL on the TinyStories sample (documents split at <|endoftext|>, each
# with BOS, ctx 256) and on WikiText-2 test (whole file, ctx 256, non-overlapping windows).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}; NS=${2:-128}; WW=${3:-0}
SPX=$B/spx; S=../shared
[ -d "$S/models/stories260K-hf" ] || { echo "needs ../shared/models/stories260K-hf" >&2; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
$SPX convert $S/models/stories260K-hf -o $T/dense.spx >/dev/null
ts() { $SPX ppl "$1" --text $S/data/tinystories/tinystories_sample.txt --ctx 256 --doc-sep '<|endoftext|>' --json | sed 's/.*"ppl": \([0-9.e+-]*\).*/\1/'; }
wt() { local mw=""; [ "$WW" != 0 ] && mw="--max-windows $WW"; $SPX ppl "$1" --text $S/data/wikitext-2-raw/wiki.test.raw --ctx 256 $mw --json | sed 's/.*"ppl": \([0-9.e+-]*\).*/\1/'; }
printf '| method | setting | TinyStories PPL | WikiText-2 PPL | bytes |\n|---|---|---|---|---|\n'
printf '| dense | - | %.3f | %.3f | %s |\n' "$(ts $T/dense.spx)" "$(wt $T/dense.spx)" "$(stat -c %s $T/dense.spx)"
for setting in "--sparsity 0.5" "--sparsity 0.7" "--nm 2:4" "--nm 4:8"; do
  for m in magnitude wanda sparsegpt; do
    data="--text $S/data/brown/brown_detagged.txt --nsamples $NS --seqlen 256 --seed 0"
    [ $m = magnitude ] && data=""
    $SPX prune $T/dense.spx -o $T/p.spx --method $m $setting $data >/dev/null
    printf '| %s | %s | %.3f | %.3f | %s |\n' $m "${setting#--* }" "$(ts $T/p.spx)" "$(wt $T/p.spx)" "$(stat -c %s $T/p.spx)"
  done
done
