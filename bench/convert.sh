#!/usr/bin/env bash
# bench/convert.sh: throughput and peak memory of `spx convert` on a sharded synthetic
# safetensors checkpoint larger than 2 GB.
# Usage: bench/convert.sh [build-dir] [layers] [shard-bytes]
#   defaults: b-bench 3 1000000000 -> llama dim 4096 ffn 11008, 3 blocks, f32: 2.43 GB in 3 shards
# Env: DIM (4096), FFN (11008), VOCAB (32000), REPEATS (3), DTYPES (the --dtype values to time, default "keep f16"), TMPDIR (scratch, the
#      checkpoint + output need ~2x its size; everything is removed at exit).
# Each run: /usr/bin/time -v gives wall time and peak RSS (VmHWM: mmap'ed input pages that are
# resident count too); a 20 ms sampler of /proc/PID/status splits it into RssAnon (private
# memory) and RssFile (resident file pages, reclaimable by the kernel). The input is in the page
# cache after `spx synth` wrote it (warm-cache figures; the caches are not dropped because other
# jobs share the machine). CPU s = user + sys of the run: on a busy host the wall time also
# holds the time spent waiting for a core, MB per CPU second does not.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-b-bench}; NL=${2:-3}; SHARD=${3:-1000000000}; REPEATS=${REPEATS:-3}; DIM=${DIM:-4096}; FFN=${FFN:-11008}; VOCAB=${VOCAB:-32000}; DTYPES=${DTYPES:-keep f16}
SPX=$PWD/$B/spx
[ -x "$SPX" ] || { echo "no $SPX (build first)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time)" >&2; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/spx-convbench.XXXXXX"); trap 'rm -rf "$T"' EXIT

t0=$(date +%s.%N)
$SPX synth -o "$T/hf" --dim "$DIM" --ffn "$FFN" --layers "$NL" --heads 32 --kv-heads 32 --vocab "$VOCAB" \
    --untied --ctx 2048 --shard-size "$SHARD" >/dev/null
t1=$(date +%s.%N)
ck=$(cat "$T"/hf/*.safetensors | wc -c)
nsh=$(ls "$T"/hf/*.safetensors | wc -l)
# Peak RssAnon / RssFile (kB) of the spx child of /usr/bin/time (pid $1), sampled every 20 ms:
# VmHWM alone cannot tell private memory from resident pages of the mmap'ed input.
sample_rss() {
    local tp=$1 c="" a f
    PEAK_ANON=0; PEAK_FILE=0
    set +e   # the child may exit between any two reads
    while kill -0 "$tp" 2>/dev/null; do
        [ -z "$c" ] && c=$(pgrep -P "$tp" 2>/dev/null | head -1 || true)
        if [ -n "$c" ] && [ -r "/proc/$c/status" ]; then
            a=$(awk '/^RssAnon/ {print $2}' "/proc/$c/status" 2>/dev/null); f=$(awk '/^RssFile/ {print $2}' "/proc/$c/status" 2>/dev/null)
            [ -n "$a" ] && [ "$a" -gt "$PEAK_ANON" ] && PEAK_ANON=$a
            [ -n "$f" ] && [ "$f" -gt "$PEAK_FILE" ] && PEAK_FILE=$f
        fi
        sleep 0.02
    done
    set -e
}
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "machine: $cpu, $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; load avg $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'checkpoint: %d bytes (%.2f GB) in %d shards (llama dim %d ffn %d, %d blocks, vocab %d, f32); synth %.1f s\n' \
    "$ck" "$(echo "$ck / 1000000000" | bc -l)" "$nsh" "$DIM" "$FFN" "$NL" "$VOCAB" "$(echo "$t1 - $t0" | bc -l)"
echo
echo "| --dtype | median s | MB/s (input) | CPU s (user+sys) | MB per CPU s | peak RSS MB | peak RssAnon MB | peak RssFile MB | RSS / ckpt | anon / ckpt | output bytes |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for dt in $DTYPES; do
    W=(); R=(); RA=(); RF=(); CPU=()
    for _ in $(seq "$REPEATS"); do
        rm -f "$T/out.spx"
        /usr/bin/time -v -o "$T/time.txt" "$SPX" convert "$T/hf" -o "$T/out.spx" --dtype "$dt" >/dev/null &
        sample_rss $!
        wait $!
        w=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,p,":"); s=0; for (i=1;i<=n;i++) s=s*60+p[i]; print s}' "$T/time.txt")
        r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$T/time.txt")
        u=$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$T/time.txt")
        W+=("$w"); R+=("$r"); RA+=("$PEAK_ANON"); RF+=("$PEAK_FILE"); CPU+=("$u")
    done
    mw=$(med "${W[@]}"); mr=$(med "${R[@]}"); ma=$(med "${RA[@]}"); mf=$(med "${RF[@]}"); mc=$(med "${CPU[@]}"); out=$(stat -c %s "$T/out.spx")
    printf '| %s | %.2f | %.0f | %.2f | %.0f | %.1f | %.1f | %.1f | %.4f | %.4f | %d |\n' "$dt" "$mw" \
        "$(echo "$ck / $mw / 1000000" | bc -l)" "$mc" "$(echo "$ck / $mc / 1000000" | bc -l)" "$(echo "$mr / 1024" | bc -l)" "$(echo "$ma / 1024" | bc -l)" \
        "$(echo "$mf / 1024" | bc -l)" "$(echo "$mr * 1024 / $ck" | bc -l)" "$(echo "$ma * 1024 / $ck" | bc -l)" "$out"
done
