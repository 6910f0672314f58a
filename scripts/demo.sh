#!/usr/bin/env bash
# scripts/demo.sh: the main job. Sets up (scripts/setup.sh), then runs the pipeline on a model the
# project makes itself (spx synth) and, when ../shared/models is present, on stories260K:
#   synth -> convert -> inspect --check -> ppl -> prune (SparseGPT 50%) -> expand (K=4) -> ppl -> run
# Outputs go to out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
SPX=build/spx
OUT=out/demo
rm -rf "$OUT" && mkdir -p "$OUT"
step() { printf '\n== %s\n' "$*"; }

step "synthetic Llama with planted clusters"
$SPX synth -o $OUT/synth --seed 0 --layers 2
$SPX convert $OUT/synth -o $OUT/synth.spx
$SPX inspect --check $OUT/synth.spx
# evaluation text: the project's own documentation (any UTF-8 text works with the byte-fallback tokenizer)
cat README.md specs/*.md > $OUT/text.txt
$SPX ppl $OUT/synth.spx --text $OUT/text.txt --ctx 128 --max-windows 16 | tail -1
$SPX prune $OUT/synth.spx -o $OUT/synth-sparsegpt50.spx --method sparsegpt --sparsity 0.5 \
  --text $OUT/text.txt --nsamples 16 --seqlen 128 | tail -1
$SPX ppl $OUT/synth-sparsegpt50.spx --text $OUT/text.txt --ctx 128 --max-windows 16 | tail -1
# Sparse Expansion: 4 experts per MLP linear layer; the synthetic model's 4 planted clusters are recovered
$SPX expand $OUT/synth.spx -o $OUT/synth-expand4.spx --clusters 4 --sparsity 0.7 \
  --text $OUT/text.txt --nsamples 16 --seqlen 128 --truth-mod 4 | tail -4

S=../shared
if [ -d $S/models/stories260K-hf ]; then
  step "stories260K (../shared/models/stories260K-hf)"
  $SPX convert $S/models/stories260K-hf -o $OUT/stories260K.spx
  $SPX inspect $OUT/stories260K.spx | sed -n '1,20p'   # sed reads everything: no SIGPIPE under pipefail
  $SPX inspect --check $OUT/stories260K.spx
  $SPX ppl $OUT/stories260K.spx --text $S/data/tinystories/tinystories_sample.txt --ctx 256 --doc-sep '<|endoftext|>' | tail -1
  $SPX prune $OUT/stories260K.spx -o $OUT/stories260K-sparsegpt50.spx --method sparsegpt --sparsity 0.5 \
    --text $S/data/brown/brown_detagged.txt --nsamples 32 --seqlen 256 | tail -1
  $SPX ppl $OUT/stories260K-sparsegpt50.spx --text $S/data/tinystories/tinystories_sample.txt --ctx 256 --doc-sep '<|endoftext|>' | tail -1
  $SPX expand $OUT/stories260K.spx -o $OUT/stories260K-expand4.spx --clusters 4 --sparsity 0.5 \
    --text $S/data/brown/brown_detagged.txt --nsamples 32 --seqlen 256 | tail -2
  $SPX ppl $OUT/stories260K-expand4.spx --text $S/data/tinystories/tinystories_sample.txt --ctx 256 --doc-sep '<|endoftext|>' | tail -1
  $SPX run $OUT/stories260K.spx --prompt "Once upon a time" --steps 48
else
  echo "(../shared/models/stories260K-hf not present: skipped the real-model part)"
fi
