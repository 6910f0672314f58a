#!/usr/bin/env bash
# bench/bench_decode.sh: decode / prefill speed and peak memory of the runtime (`spx run --timing`)
# on a ~110M-parameter synthetic Llama-shaped model in several storage forms (issue #7).
# Usage: bench/bench_decode.sh [build-dir] [model-dir] [repeats] [threads list]
#   build-dir   default build;   model-dir default /tmp/spx_bench_decode (built by
#               bench/bench_decode_models.sh when missing: dim 768, ffn 2048, 12 layers, vocab 32000)
#   repeats     default 5 (median);   threads default "1 2"
# Every run: a 64-token prompt (one batched forward = prefill) then 64 greedy decode steps.
# Reported per model and thread count: median decode tokens/s, prefill tokens/s, peak RSS (MiB,
# getrusage: includes the touched pages of the memory-mapped file) and the ratios to dense fp32.
# Runs are interleaved model by model inside each repeat (the machine is shared and noisy).
# "p50 --fp32" is the 50% file decoded to fp32 (OpenBLAS), the runtime's path before the kernels.
# x8 (Sparse Expansion, attention dense) is compared with x1 (K=1: one expert per block, same
# pipeline) and p50mlp (the MLP magnitude-pruned 50%, attention dense): the decode ratios are printed
# at the end. Separate processes differ by +-20% on a shared host: bench/bench_route.c measures the
# same comparison interleaved token by token in one process.
# OPENBLAS_CORETYPE=SkylakeX is exported on AVX-512 CPUs (Debian's OpenBLAS 0.3.21 misdetects Zen 5).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}; D=${2:-/tmp/spx_bench_decode}; REPS=${3:-5}; THREADS=${4:-"1 2"}
SPX=$(cd "$B" && pwd)/spx
# forced even when the environment sets another core type (some environments export Haswell)
if grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi
[ -f "$D/x8.spx" ] && [ -f "$D/x1.spx" ] && [ -f "$D/p50mlp.spx" ] || bench/bench_decode_models.sh "$B" "$D" >&2
PROMPT=$(awk 'BEGIN { for (i = 0; i < 64; i++) printf "%s%d", i ? "," : "", (i * 37) % 32000 + 3 }')
MODELS="dense32 dense16 p50 p24 p50mlp x1 x8 p50:fp32"
R=$(mktemp); trap 'rm -f "$R"' EXIT
for th in $THREADS; do
  for rep in $(seq "$REPS"); do
    for spec in $MODELS; do
      m=${spec%%:*}; extra=; [ "$spec" != "$m" ] && extra=--fp32
      line=$("$SPX" run "$D/$m.spx" --prompt-ids "$PROMPT" --steps 64 --timing --threads "$th" $extra 2>&1 >/dev/null \
             | grep '^timing:')
      echo "$spec $th $line" >> "$R"
      echo "  [$th threads, rep $rep] $spec: $line" >&2
    done
  done
done
isa=$(grep -q avx512f /proc/cpuinfo && echo AVX-512 || echo no AVX-512)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) CPUs, $isa); OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}; $REPS repeats, median"
echo
echo "| model | threads | decode tok/s | x dense32 | prefill tok/s (64) | x dense32 | peak RSS MiB | x dense32 |"
echo "|---|---|---|---|---|---|---|---|"
awk -v models="$MODELS" -v threads="$THREADS" '
  function med(arr, n,   i, j, t) {   # median of arr[1..n]
    for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t }
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
  }
  { k = $1 SUBSEP $2; n[k]++
    for (i = 3; i <= NF; i++) {
      if ($i == "decode_tok_s") dec[k, n[k]] = $(i + 1)
      if ($i == "prefill_tok_s") pre[k, n[k]] = $(i + 1)
      if ($i == "peak_rss_mib") rss[k, n[k]] = $(i + 1)
    } }
  END {
    nm = split(models, M, " "); nt = split(threads, T, " ")
    for (a = 1; a <= nt; a++) {
      for (b = 1; b <= nm; b++) {
        k = M[b] SUBSEP T[a]; c = n[k]
        for (i = 1; i <= c; i++) x[i] = dec[k, i]; d = med(x, c)
        for (i = 1; i <= c; i++) x[i] = pre[k, i]; p = med(x, c)
        for (i = 1; i <= c; i++) x[i] = rss[k, i]; s = med(x, c)
        if (b == 1) { d0 = d; p0 = p; s0 = s }
        if (M[b] == "p50mlp") dm[a] = d
        if (M[b] == "x8") dx[a] = d
        if (M[b] == "x1") d1[a] = d
        name = M[b]; sub(":fp32", " --fp32", name)
        printf "| %s | %s | %.1f | %.2f | %.1f | %.2f | %.0f | %.2f |\n", name, T[a], d, d / d0, p, p / p0, s, s / s0
      }
    }
    printf "\n"
    for (a = 1; a <= nt; a++)
      if (dm[a] > 0 && d1[a] > 0) printf "routing cost, %s thread(s): x8 decode time = %.3f x x1, %.3f x p50mlp\n", T[a], d1[a] / dx[a], dm[a] / dx[a]
  }' "$R"
