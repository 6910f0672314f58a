#!/usr/bin/env bash
# bench/gate_table.sh: gated neuron experts (spx moefy) - executed FFN fraction vs perplexity of the
# trained routers, against the activation-mass oracle and a random router at the same number of
# experts per token, plus the routers' recall of the oracle's experts on held-out tokens.
#
# Usage: bench/gate_table.sh MODEL [build-dir]      MODEL = stories | brown | synth
#   stories  stories260K (ffn 172, E in {8, 16, 32}: moefy pads the FFN with zero neurons to 176/176/192);
#            routers fitted on the Brown corpus, evaluated on the TinyStories sample (documents
#            split at <|endoftext|>, ctx 256): held-out text of another source.
#   brown    llama-brown-hf (ffn 768, E in {8, 16, 32}): fitted on tokens of the first 90% of the
#            Brown stream (the model's training part), evaluated on the last 5% (its validation part).
#   synth    `spx synth --act relu --ffn 512 --layers 4 --seed 1` (E in {8, 16, 32}): same Brown
#            token split as brown (the synthetic model reads any ids < 512).
# Environment: NSAMPLES (32) x SEQLEN (256) calibration windows, SEED (0) for moefy, EVAL_WINDOWS
# (16, brown/synth) windows of EVAL_CTX (256), EPOCHS (30, moefy's default), BENCH_TMP (mktemp).
#
# Per (E, router): moefy with --seed, then `spx ppl --json --gate-recall` in the file's router mode
# (fraction f = executed FFN neurons, recall of the oracle's top-|S| experts per token); then the
# oracle (--gate-mode oracle) and random (--gate-mode random --gate-seed 0) modes at k = max(1,
# round(f E)) experts per token (exact match for moe's fixed top-k; dsti/lte vary per token, so
# their f is matched on average: the table lists each mode's own measured fraction).
# moefy recall = the held-out recall moefy reports on its last 10% of calibration tokens.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:?usage: bench/gate_table.sh stories|brown|synth [build-dir]}
B=${2:-build}
SPX=$B/spx; S=../shared
NS=${NSAMPLES:-32}; SL=${SEQLEN:-256}; SEED=${SEED:-0}; EW=${EVAL_WINDOWS:-16}; EC=${EVAL_CTX:-256}
EPOCHS=${EPOCHS:-30}
PY=python3
[ -d "$S/models/stories260K-hf" ] || { echo "needs ../shared/models" >&2; exit 77; }
T=${BENCH_TMP:-$(mktemp -d)}
mkdir -p "$T"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

# Brown tokens with the stories260K tokenizer (also the llama-brown tokenizer): fit / eval split.
brown_tokens() {
  [ -s "$T/brown_fit.u32" ] && return
  $SPX convert $S/models/stories260K-llama2c/stories260K.bin --tokenizer $S/models/stories260K-llama2c/tok512.bin \
    -o "$T/tok.spx" >/dev/null 2>&1
  $SPX ppl "$T/tok.spx" --text $S/data/brown/brown_detagged.txt --max-windows 1 --save-tokens "$T/brown.u32" >/dev/null
  local n; n=$(( $(stat -c %s "$T/brown.u32") / 4 ))
  head -c $(( n * 90 / 100 * 4 )) "$T/brown.u32" >"$T/brown_fit.u32"
  tail -c $(( (n - n * 95 / 100) * 4 )) "$T/brown.u32" >"$T/brown_eval.u32"
}

brown_tokens
case $MODEL in
  stories)
    $SPX convert $S/models/stories260K-hf -o "$T/dense.spx" >/dev/null
    EXPERTS="8 16 32"
    EVAL=(--text $S/data/tinystories/tinystories_sample.txt --doc-sep '<|endoftext|>' --ctx "$EC")
    ;;
  brown)
    $SPX convert $S/models/llama-brown-hf -o "$T/dense.spx" >/dev/null
    EXPERTS="8 16 32"
    EVAL=(--tokens "$T/brown_eval.u32" --ctx "$EC" --max-windows "$EW")
    ;;
  synth)
    $SPX synth -o "$T/syn" --act relu --ffn 512 --layers 4 --seed 1 >/dev/null
    $SPX convert "$T/syn" -o "$T/dense.spx" >/dev/null
    EXPERTS="8 16 32"
    EVAL=(--tokens "$T/brown_eval.u32" --ctx "$EC" --max-windows "$EW")
    ;;
  *) echo "unknown model '$MODEL' (stories, brown, synth)" >&2; exit 2 ;;
esac
CAL=(--tokens "$T/brown_fit.u32" --nsamples "$NS" --seqlen "$SL" --seed "$SEED" --epochs "$EPOCHS")

# field JSON_FILE EXPR: a value of a one-object JSON file
field() { $PY -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }

dense_ppl=$($SPX ppl "$T/dense.spx" "${EVAL[@]}" --json | $PY -c "import json,sys; print('%.3f' % json.load(sys.stdin)['ppl'])")
echo "model $MODEL: dense PPL $dense_ppl; calibration $NS x $SL Brown tokens (seed $SEED), eval ${EVAL[*]}"
echo
echo "| E | router | k (oracle/random) | router FFN frac | router PPL | oracle PPL | random PPL | router recall | random recall | moefy held-out recall | moefy s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for E in $EXPERTS; do
  for R in moe dsti lte; do
    t0=$(date +%s.%N)
    $SPX moefy "$T/dense.spx" -o "$T/g.spx" --experts "$E" --router "$R" "${CAL[@]}" --json >"$T/moefy.json"
    t1=$(date +%s.%N)
    $SPX ppl "$T/g.spx" "${EVAL[@]}" --gate-recall --json >"$T/r.json"
    f=$(field "$T/r.json" "r['ffn_fraction']")
    k=$($PY -c "import sys; f, E = float(sys.argv[1]), int(sys.argv[2]); print(max(1, min(E, round(f * E))))" "$f" "$E")
    $SPX ppl "$T/g.spx" "${EVAL[@]}" --gate-mode oracle --gate-k "$k" --json >"$T/o.json"
    $SPX ppl "$T/g.spx" "${EVAL[@]}" --gate-mode random --gate-k "$k" --gate-recall --json >"$T/x.json"
    $PY - "$E" "$R" "$k" "$T/r.json" "$T/o.json" "$T/x.json" "$T/moefy.json" "$t0" "$t1" <<'PY'
import json, sys
E, R, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
r, o, x, m = (json.load(open(p)) for p in sys.argv[4:8])
rec = [l["recall"] for l in m["layers"]]
print("| %s | %s | %d (%.3f / %.3f) | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.1f |" % (
    E, R, k, o["ffn_fraction"], x["ffn_fraction"], r["ffn_fraction"], r["ppl"], o["ppl"], x["ppl"],
    r["gate_recall"]["mean"], x["gate_recall"]["mean"], sum(rec) / len(rec),
    float(sys.argv[9]) - float(sys.argv[8])))
PY
  done
done
