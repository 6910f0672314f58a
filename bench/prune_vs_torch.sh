#!/usr/bin/env bash
# bench/prune_vs_torch.sh: end-to-end `spx prune --method sparsegpt` vs a PyTorch implementation
# of the same algorithm (bench/sparsegpt_torch.py) on the same synthetic llama layer stack.
# Usage: bench/prune_vs_torch.sh [build-dir] [nsamples] [seqlen] [dim] [ffn] [layers]
#   defaults: b-bench 8 256 4096 11008 2 (a 4096x11008 llama-7B-class block stack, 32 heads)
# Env: SPX_PYTHON (python with numpy + torch; default /usr/bin/python3), REPEATS (3),
#      SHARE=1 also times the torch variant that shares q/k/v and gate/up Hessians like spx.
# Both sides: fp32 weights, 2 threads, the same OpenBLAS (torch links Debian's libblas/OpenBLAS;
# OPENBLAS_CORETYPE=SkylakeX is set when the CPU has AVX-512), one calibration pass per block
# (spx --no-true-sequential = the reference driver), the same token file (spx samples its windows
# with --seed 0, torch takes the first nsamples*seqlen ids: same shapes, different windows, which
# does not change the work). Runs alternate spx / torch so that both see the same host load.
# Times are medians of REPEATS; torch also reports its Hessian+factor+sweep part ("algo").
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-b-bench}; NS=${2:-8}; SL=${3:-256}; DIM=${4:-4096}; FFN=${5:-11008}; NL=${6:-2}
PY=${SPX_PYTHON:-/usr/bin/python3}; REPEATS=${REPEATS:-3}
SPX=$PWD/$B/spx
[ -x "$SPX" ] || { echo "no $SPX (build first)" >&2; exit 2; }
$PY -c 'import torch, numpy' 2>/dev/null || { echo "$PY has no torch/numpy (apt-get install python3-torch)" >&2; exit 77; }
# Debian's OpenBLAS 0.3.21 takes Zen 5 for Haswell (AVX2); both sides get the AVX-512 kernels
grep -q avx512f /proc/cpuinfo && export OPENBLAS_CORETYPE=SkylakeX
export OPENBLAS_NUM_THREADS=2
# torch's OpenMP workers spin between ops by default: on a shared 2-core host that made the
# torch run 10x slower on a small model; passive waiting is torch's best setting here
export OMP_WAIT_POLICY=PASSIVE
T=$(mktemp -d "${TMPDIR:-/tmp}/spx-pvt.XXXXXX"); trap 'rm -rf "$T"' EXIT

$SPX synth -o "$T/hf" --dim "$DIM" --ffn "$FFN" --layers "$NL" --heads 32 --kv-heads 32 \
    --vocab 512 --ctx "$SL" >/dev/null
$PY -c "import numpy as np; np.random.default_rng(1).integers(0, 512, size=$((4 * NS * SL))).astype('<u4').tofile('$T/tok.u32')"
$SPX convert "$T/hf" -o "$T/dense.spx" >/dev/null

spx_run() {
    local t0 t1
    t0=$(date +%s.%N)
    $SPX prune "$T/dense.spx" -o "$T/p.spx" --method sparsegpt --sparsity 0.5 --tokens "$T/tok.u32" \
        --nsamples "$NS" --seqlen "$SL" --no-true-sequential >/dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
torch_run() {   # prints "total algo forward"
    $PY bench/sparsegpt_torch.py "$T/hf" "$T/tok.u32" --nsamples "$NS" --seqlen "$SL" --threads 2 \
        --repeats 1 "$@" | $PY -c 'import json,sys; d=json.loads(sys.stdin.readline()); print(d["total"], d["algo"], d["forward"])'
}
S=(); TT=(); TA=(); TF=(); ST=(); SA=(); RT=(); RA=()
for r in $(seq "$REPEATS"); do
    S+=("$(spx_run)")
    read -r a b c < <(torch_run)
    TT+=("$a"); TA+=("$b"); TF+=("$c")
    if [ "${SHARE:-0}" = 1 ]; then
        read -r a b c < <(torch_run --share-hessian)
        ST+=("$a"); SA+=("$b")
    fi
    RT+=("$(echo "${TT[-1]} / ${S[-1]}" | bc -l)"); RA+=("$(echo "${TA[-1]} / ${S[-1]}" | bc -l)")
    echo "repeat $r: spx ${S[-1]} s, torch total ${TT[-1]} s (algo ${TA[-1]} s)" >&2
done
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ms=$(med "${S[@]}"); mt=$(med "${TT[@]}"); ma=$(med "${TA[@]}"); mf=$(med "${TF[@]}")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo
echo "machine: $cpu, $(nproc) cores; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "model: llama dim $DIM ffn $FFN layers $NL heads 32/32 fp32; calibration $NS x $SL tokens; 50% unstructured"
echo
echo "| run (median of $REPEATS) | seconds | torch / spx |"
echo "|---|---|---|"
printf '| spx prune (end to end: load, forward passes, Hessian, factor, sweep, write) | %.2f | 1.00 |\n' "$ms"
printf '| torch, reference driver (forward + per-linear Hessian/factor/sweep) | %.2f | %.2f |\n' "$mt" "$(echo "$mt / $ms" | bc -l)"
printf '| torch, Hessian + factor + sweep only | %.2f | %.2f |\n' "$ma" "$(echo "$ma / $ms" | bc -l)"
printf '| torch, forward passes only | %.2f | - |\n' "$mf"
# the host load drifts between repeats: the ratio within each spx/torch pair is the steadier figure
printf '| median of the per-repeat ratios: torch total / spx | - | %.2f |\n' "$(med "${RT[@]}")"
printf '| median of the per-repeat ratios: torch algo / spx | - | %.2f |\n' "$(med "${RA[@]}")"
if [ "${SHARE:-0}" = 1 ]; then
    mst=$(med "${ST[@]}"); msa=$(med "${SA[@]}")
    printf '| torch, shared Hessians like spx (total) | %.2f | %.2f |\n' "$mst" "$(echo "$mst / $ms" | bc -l)"
    printf '| torch, shared Hessians, Hessian + factor + sweep only | %.2f | %.2f |\n' "$msa" "$(echo "$msa / $ms" | bc -l)"
fi
