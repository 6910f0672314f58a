#!/usr/bin/env bash
# fixtures.sh DIR: inputs for the CLI contract cases, built from `spx synth` (no ../shared):
#   DIR/syn/        synthetic Hugging Face checkpoint (2 layers, seed 11)
#   DIR/dense.spx   its conversion
#   DIR/mag95.spx   95% magnitude pruning (fails verify thresholds)
#   DIR/mag20.spx   20% magnitude pruning (passes loose thresholds)
#   DIR/trunc.spx   mag20.spx without its last 100 bytes
#   DIR/probed.spx  mag20.spx with an embedded probe (prompt "the quick brown fox")
#   DIR/text.txt    40 lines of English text (~2200 tokens)
set -eu
: "${SPX:?}"
D=$1
mkdir -p "$D"
"$SPX" synth -o "$D/syn" --layers 2 --seed 11 >/dev/null
"$SPX" convert "$D/syn" -o "$D/dense.spx" >/dev/null
"$SPX" prune "$D/dense.spx" -o "$D/mag95.spx" --method magnitude --sparsity 0.95 >/dev/null
"$SPX" prune "$D/dense.spx" -o "$D/mag20.spx" --method magnitude --sparsity 0.2 >/dev/null
size=$(stat -c %s "$D/mag20.spx")
head -c $((size - 100)) "$D/mag20.spx" >"$D/trunc.spx"
"$SPX" verify "$D/mag20.spx" --embed-probe --prompt "the quick brown fox" -o "$D/probed.spx" >/dev/null
for i in $(seq 1 40); do
  echo "the quick brown fox $i jumps over the lazy dog while the cat sleeps near the warm fire."
done >"$D/text.txt"
