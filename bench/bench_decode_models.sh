#!/usr/bin/env bash
# bench/bench_decode_models.sh: builds the ~110M-parameter synthetic Llama-shaped models that
# bench/bench_decode.sh times (dim 768, ffn 2048, 12 layers, 12 heads, vocab 32000, untied output).
# Usage: bench/bench_decode_models.sh BUILD_DIR OUT_DIR
#   dense32.spx  dense fp32            dense16.spx  dense fp16
#   p50.spx      magnitude 50%, bitmask encoding, fp16 values
#   p24.spx      magnitude 2:4, N:M encoding, fp16 values
#   p50mlp.spx   magnitude 50% of the MLP linears only (attention dense fp16, as in Sparse
#                Expansion): the "one sparse model" that x8's routing overhead is measured against
#   x8.spx       Sparse Expansion K=8 at 50% (bitmask, fp16), calibrated on 8 x 128 random tokens
#   x1.spx       the same with K=1: one SparseGPT-pruned MLP per block through the same expanded
#                path; x8 against x1 is the cost of routing between experts (bench/bench_route.c)
# Existing files are kept (delete OUT_DIR to rebuild).
set -euo pipefail
B=$(cd "${1:?build dir}" && pwd); O=${2:?output dir}
SPX=$B/spx
mkdir -p "$O"; cd "$O"
[ -f hf/config.json ] || $SPX synth -o hf --dim 768 --ffn 2048 --layers 12 --heads 12 --kv-heads 12 \
    --vocab 32000 --untied --clusters 8 --seed 1 >/dev/null
[ -f dense32.spx ] || $SPX convert hf -o dense32.spx --dtype f32 >/dev/null
[ -f dense16.spx ] || $SPX convert hf -o dense16.spx --dtype f16 >/dev/null
[ -f p50.spx ] || $SPX prune dense16.spx -o p50.spx --method magnitude --sparsity 0.5 --encoding bitmask >/dev/null
[ -f p50mlp.spx ] || $SPX prune dense16.spx -o p50mlp.spx --method magnitude --sparsity 0.5 --encoding bitmask \
    --targets ffn_gate,ffn_up,ffn_down >/dev/null
[ -f p24.spx ] || $SPX prune dense16.spx -o p24.spx --method magnitude --nm 2:4 --encoding nm >/dev/null
if [ ! -f tokens.bin ]; then   # 8 x 128 calibration tokens: a fixed LCG over the vocabulary
    python3 -c 'import struct,sys
s = 12345; out = []
for i in range(1024):
    s = (s * 1103515245 + 12345) % 2147483648; out.append(s % 32000)
sys.stdout.buffer.write(struct.pack("<1024I", *out))' > tokens.bin
fi
[ -f x8.spx ] || $SPX expand dense16.spx -o x8.spx --clusters 8 --sparsity 0.5 --tokens tokens.bin \
    --nsamples 8 --seqlen 128 --encoding bitmask >/dev/null
[ -f x1.spx ] || $SPX expand dense16.spx -o x1.spx --clusters 1 --sparsity 0.5 --tokens tokens.bin \
    --nsamples 8 --seqlen 128 --encoding bitmask >/dev/null
ls -l "$O"/*.spx
