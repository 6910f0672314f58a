#!/usr/bin/env bash
# verify_cli.sh: `spx verify` end to end on a synthetic checkpoint (no ../shared needed):
# exactness against the checkpoint it was converted from, threshold failures naming the figure,
# integrity failures (truncated, one bit flipped), --save-baseline/--baseline round trip and a
# forced regression, embedded probe round trip (a flipped logit expectation and a stale probe
# fail), usage errors, and the JSON schema (tests/ref/verify_json_check.py, json module only).
source "$SPX_SRC/tests/lib/common.sh"
# ctest runs two tests at once on this 2-core machine: BLAS threads would only oversubscribe it
# (small matrices; results do not depend on the thread count in these comparisons).
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
T="$SPX_TMP"
PY="${SPX_PYTHON:-$(command -v python3 || true)}"
CHK="$SPX_SRC/tests/ref/verify_json_check.py"
run_exit() {
  expect_exit "$@"
  if grep -q 'Sanitizer' "$T/err.txt"; then fail "sanitizer report: ${*:2}"; fi
  return 0
}
json_ok() {   # json_ok FILE [--expect ...]: schema + expectations (skipped without python)
  [ -n "$PY" ] || return 0
  "$PY" "$CHK" "$@" || fail "json check: $*"
}
"$SPX" synth -o "$T/syn" --layers 2 --seed 11 >/dev/null || fail "spx synth"
"$SPX" convert "$T/syn" -o "$T/dense.spx" >/dev/null || fail "spx convert"
for i in $(seq 1 40); do echo "the quick brown fox $i jumps over the lazy dog while the cat sleeps near the warm fire."; done >"$T/text.txt"
for s in 0.95 0.2 0.3; do
  "$SPX" prune "$T/dense.spx" -o "$T/mag$s.spx" --method magnitude --sparsity $s >/dev/null || fail "prune $s"
done
V=(--text "$T/text.txt" --ctx 64)

# the dense conversion against the checkpoint directory itself (converted on the fly): exact
run_exit 0 "$SPX" verify "$T/dense.spx" --reference "$T/syn" "${V[@]}" --max-kl 0 --min-top1 1 --max-ppl-ratio 1
grep -qx 'kl         mean 0  max 0  p99.9 0 nats' "$T/out.txt" || fail "dense vs checkpoint: KL not exactly 0"
grep -qx 'top1       1.000000' "$T/out.txt" || fail "dense vs checkpoint: top-1 not 1"
grep -q 'ratio 1.000000$' "$T/out.txt" || fail "dense vs checkpoint: ppl ratio not 1"
grep -qx 'result     PASS' "$T/out.txt" || fail "dense vs checkpoint: no PASS line"
[ ! -s "$T/err.txt" ] || fail "dense vs checkpoint: stderr not empty: $(head -3 "$T/err.txt")"
# the temporary conversion of the reference is removed afterwards (private TMPDIR)
mkdir -p "$T/tmpdir"
TMPDIR="$T/tmpdir" run_exit 0 "$SPX" verify "$T/dense.spx" --reference "$T/syn" "${V[@]}" --no-linears
[ -z "$(ls -A "$T/tmpdir")" ] || fail "the temporary reference conversion was not removed: $(ls -A "$T/tmpdir")"
run_exit 0 "$SPX" verify "$T/dense.spx" --reference "$T/syn" "${V[@]}" --json
cp "$T/out.txt" "$T/exact.json"
json_ok "$T/exact.json" --expect 'logits.kl_mean == 0' --expect 'logits.kl_max == 0' --expect 'logits.top1 == 1' \
  --expect 'logits.ppl_ratio == 1' --expect 'layers.1.mlp == 0' --expect 'layers.0.linears == {}' --expect 'pass == true'

# deliberately bad: 95% magnitude pruning fails, naming the figure; 20% passes loose thresholds
run_exit 1 "$SPX" verify "$T/mag0.95.spx" --reference "$T/dense.spx" "${V[@]}" --max-ppl-ratio 1.1
grep -Eq '^spx verify: FAIL: ppl ratio [0-9.]+ > --max-ppl-ratio 1.1$' "$T/err.txt" || fail "ppl ratio failure message: $(cat "$T/err.txt")"
grep -q '^result     FAIL (1 failure)$' "$T/out.txt" || fail "no FAIL result line"
run_exit 1 "$SPX" verify "$T/mag0.95.spx" --reference "$T/dense.spx" "${V[@]}" --max-kl 0.001 --min-top1 0.9
grep -Eq '^spx verify: FAIL: kl mean [0-9.e-]+ > --max-kl 0.001$' "$T/err.txt" || fail "kl failure message: $(cat "$T/err.txt")"
grep -Eq '^spx verify: FAIL: top-1 agreement 0\.[0-9]+ < --min-top1 0.9$' "$T/err.txt" || fail "top-1 failure message"
run_exit 1 "$SPX" verify "$T/mag0.95.spx" --reference "$T/dense.spx" "${V[@]}" --max-ppl-ratio 1.1 --json
cp "$T/out.txt" "$T/bad.json"
json_ok "$T/bad.json" --expect 'pass == false' --expect 'thresholds.max_ppl_ratio == 1.1' --expect 'logits.ppl_ratio > 1.1' \
  --expect 'layers.0.linears.ffn_down > 0.1' --expect 'layers.1.linears.attn_q > 0.1'
run_exit 0 "$SPX" verify "$T/mag0.2.spx" --reference "$T/dense.spx" "${V[@]}" --max-ppl-ratio 1.1 --max-kl 0.01 --min-top1 0.9

# integrity: truncated and one-bit-flipped copies fail with the error code
size=$(stat -c %s "$T/mag0.2.spx")
head -c $((size - 100)) "$T/mag0.2.spx" >"$T/trunc.spx"
run_exit 1 "$SPX" verify "$T/trunc.spx" --reference "$T/dense.spx" "${V[@]}"
grep -q 'integrity check failed.*(SPX_E_TRUNCATED)$' "$T/err.txt" || fail "truncated: $(cat "$T/err.txt")"
cp "$T/mag0.2.spx" "$T/flip.spx"
off=$((size / 2))
byte=$(od -An -tu1 -j $off -N1 "$T/flip.spx" | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 4)))" | dd of="$T/flip.spx" bs=1 seek=$off conv=notrunc status=none
cmp -s "$T/flip.spx" "$T/mag0.2.spx" && fail "bit flip did not change the file"
run_exit 1 "$SPX" verify "$T/flip.spx" --reference "$T/dense.spx" "${V[@]}"
grep -q 'integrity check failed.*(SPX_E_DATA_CRC)$' "$T/err.txt" || fail "bit flip: $(cat "$T/err.txt")"
run_exit 1 "$SPX" verify "$T/flip.spx"
grep -q '(SPX_E_DATA_CRC)$' "$T/err.txt" || fail "bit flip (probe mode): $(cat "$T/err.txt")"
run_exit 1 "$SPX" verify "$T/mag0.2.spx" --reference "$T/flip.spx" "${V[@]}"
grep -q 'reference integrity check failed.*(SPX_E_DATA_CRC)$' "$T/err.txt" || fail "bad reference: $(cat "$T/err.txt")"

# baseline: save, compare the same run (pass), a worse candidate regresses (each figure named)
run_exit 0 "$SPX" verify "$T/mag0.2.spx" --reference "$T/dense.spx" "${V[@]}" --save-baseline "$T/base.json"
json_ok "$T/base.json" --expect 'logits.ppl_ratio > 1'
run_exit 0 "$SPX" verify "$T/mag0.2.spx" --reference "$T/dense.spx" "${V[@]}" --baseline "$T/base.json"
run_exit 1 "$SPX" verify "$T/mag0.3.spx" --reference "$T/dense.spx" "${V[@]}" --baseline "$T/base.json"
grep -q '^spx verify: FAIL: ppl ratio .* regressed from baseline .* --baseline-tol 0.01' "$T/err.txt" || fail "ppl regression: $(cat "$T/err.txt")"
grep -q '^spx verify: FAIL: kl mean .* regressed from baseline' "$T/err.txt" || fail "kl regression"
grep -q '^spx verify: FAIL: top-1 agreement .* regressed from baseline' "$T/err.txt" || fail "top-1 regression"
run_exit 0 "$SPX" verify "$T/mag0.3.spx" --reference "$T/dense.spx" "${V[@]}" --baseline "$T/base.json" \
  --baseline-tol 100 --baseline-top1-tol 0.5
run_exit 1 "$SPX" verify "$T/mag0.2.spx" --reference "$T/dense.spx" "${V[@]}" --max-windows 1 --baseline "$T/base.json"
grep -q 'baseline setup differs' "$T/err.txt" || fail "baseline setup mismatch not reported"
run_exit 1 "$SPX" verify "$T/mag0.2.spx" --reference "$T/dense.spx" "${V[@]}" --baseline "$T/missing.json"
grep -q 'missing.json' "$T/err.txt" || fail "missing baseline not named"
echo '{"schema": "spx-verify", "version": 1}' >"$T/nofig.json"
run_exit 1 "$SPX" verify "$T/mag0.2.spx" --reference "$T/dense.spx" "${V[@]}" --baseline "$T/nofig.json"
grep -q '(SPX_E_JSON)' "$T/err.txt" || fail "baseline without figures"

# --range and --tokens give the same figures as the equivalent stream
"$SPX" ppl "$T/dense.spx" --text "$T/text.txt" --save-tokens "$T/ids.u32" >/dev/null || fail "save tokens"
run_exit 0 "$SPX" verify "$T/mag0.2.spx" --reference "$T/dense.spx" --tokens "$T/ids.u32" --ctx 64 --json
if [ -n "$PY" ]; then
  for f in ppl_ratio kl_mean kl_max top1; do
    json_ok "$T/out.txt" --expect "logits.$f == $("$PY" -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))["logits"][sys.argv[2]]))' "$T/base.json" $f)"
  done
fi
run_exit 0 "$SPX" verify "$T/mag0.2.spx" --reference "$T/dense.spx" "${V[@]}" --json
json_ok "$T/out.txt" --expect 'data.windows == 35'
run_exit 0 "$SPX" verify "$T/mag0.2.spx" --reference "$T/dense.spx" "${V[@]}" --range 0:0.5 --json
json_ok "$T/out.txt" --expect 'data.windows == 17'

# embedded probe: round trip, flipped logit expectation, stale probe after pruning
run_exit 0 "$SPX" verify "$T/mag0.2.spx" --embed-probe --prompt "the quick brown fox" -o "$T/probed.spx"
grep -q '^probe: [0-9]* tokens, tol .*, embedded in ' "$T/out.txt" || fail "embed-probe output: $(cat "$T/out.txt")"
run_exit 0 "$SPX" verify "$T/probed.spx"
grep -q '^probe      ok: ' "$T/out.txt" || fail "probe not ok: $(cat "$T/out.txt")"
run_exit 0 "$SPX" verify "$T/probed.spx" --json
json_ok "$T/out.txt" --expect 'probe.status == "ok"' --expect 'probe.max_abs_err == 0' --expect 'reference == null'
run_exit 0 "$SPX" verify "$T/probed.spx" --embed-probe --text "$T/text.txt" --probe-len 100 --probe-tol 0.01 -o "$T/probed2.spx"
grep -q '^probe: 100 tokens, tol 0.01,' "$T/out.txt" || fail "--probe-len/--probe-tol: $(cat "$T/out.txt")"
run_exit 0 "$SPX" verify "$T/probed2.spx" --reference "$T/dense.spx" "${V[@]}"
grep -q '^probe      ok: 100 positions' "$T/out.txt" || fail "probe with --reference"
run_exit 1 "$SPX" verify "$T/dense.spx"
grep -q 'no embedded probe.*(SPX_E_MISSING)' "$T/err.txt" || fail "no probe: $(cat "$T/err.txt")"
"$SPX" prune "$T/probed.spx" -o "$T/stale.spx" --method magnitude --sparsity 0.5 >/dev/null || fail "prune probed"
run_exit 1 "$SPX" verify "$T/stale.spx"
grep -q '^spx verify: FAIL: probe is stale' "$T/err.txt" || fail "stale probe: $(cat "$T/err.txt")"
run_exit 0 "$SPX" verify "$T/stale.spx" --reference "$T/dense.spx" "${V[@]}"
grep -q '^probe      stale' "$T/out.txt" || fail "stale probe not shown with --reference"
if [ -n "$PY" ]; then
  cp "$T/probed.spx" "$T/flipped.spx"
  "$PY" "$SPX_SRC/tests/ref/spx_meta_edit.py" "$T/flipped.spx" spx.verify.probe_logits 7 --add 1.0 >/dev/null || fail "meta edit"
  run_exit 0 "$SPX" inspect --check "$T/flipped.spx"
  run_exit 1 "$SPX" verify "$T/flipped.spx"
  grep -q '^spx verify: FAIL: probe logits max |diff| 1 > tol .* (token id 7)$' "$T/err.txt" || fail "flipped logit: $(cat "$T/err.txt")"
  cp "$T/probed.spx" "$T/flipped1.spx"
  "$PY" "$SPX_SRC/tests/ref/spx_meta_edit.py" "$T/flipped1.spx" spx.verify.probe_top1 2 --add 1 >/dev/null || fail "meta edit"
  run_exit 1 "$SPX" verify "$T/flipped1.spx"
  grep -q '^spx verify: FAIL: probe top-1 mismatch at 1 of .* positions (first at position 2' "$T/err.txt" || fail "flipped top-1"
  cp "$T/probed.spx" "$T/badver.spx"
  "$PY" "$SPX_SRC/tests/ref/spx_meta_edit.py" "$T/badver.spx" spx.verify.version --add 1 >/dev/null || fail "meta edit"
  run_exit 1 "$SPX" verify "$T/badver.spx"
  grep -q '(SPX_E_UNSUPPORTED)' "$T/err.txt" || fail "unknown probe version"
fi

# expert MLPs (Sparse Expansion, gated neuron experts) are compared through the block entry
# points: attention exactly unchanged, MLP errors > 0, no per-linear figures for expert MLPs
for kind in expand moefy; do
  "$SPX" --help | grep -q "^  $kind " || { echo "note: spx $kind not registered, skipped" >&2; continue; }
  if [ $kind = expand ]; then
    "$SPX" expand "$T/dense.spx" -o "$T/x_$kind.spx" --clusters 4 --sparsity 0.5 --text "$T/text.txt" --nsamples 8 --seqlen 64 >/dev/null
  else
    "$SPX" moefy "$T/dense.spx" -o "$T/x_$kind.spx" --experts 4 --text "$T/text.txt" --nsamples 8 --seqlen 64 >/dev/null
  fi || { fail "spx $kind"; continue; }
  run_exit 0 "$SPX" verify "$T/x_$kind.spx" --reference "$T/dense.spx" "${V[@]}" --json
  json_ok "$T/out.txt" --expect 'layers.0.attn == 0' --expect 'layers.1.attn == 0' --expect 'layers.0.mlp > 0' \
    --expect 'layers.1.mlp > 0' --expect 'layers.0.linears == {}' --expect 'logits.kl_mean > 0'
done

# usage errors (exit 2)
run_exit 2 "$SPX" verify
run_exit 2 "$SPX" verify "$T/dense.spx" --reference "$T/dense.spx"
run_exit 2 "$SPX" verify "$T/dense.spx" --text "$T/text.txt"
run_exit 2 "$SPX" verify "$T/dense.spx" --max-kl 0.1
run_exit 2 "$SPX" verify "$T/dense.spx" --reference "$T/dense.spx" --text "$T/text.txt" --tokens "$T/ids.u32"
run_exit 2 "$SPX" verify "$T/dense.spx" --reference "$T/dense.spx" --text "$T/text.txt" --ctx 1
run_exit 2 "$SPX" verify "$T/dense.spx" --reference "$T/dense.spx" --text "$T/text.txt" --max-kl abc
run_exit 2 "$SPX" verify "$T/dense.spx" --reference "$T/dense.spx" --text "$T/text.txt" --range 0.5
run_exit 2 "$SPX" verify "$T/dense.spx" --embed-probe --prompt hi
run_exit 2 "$SPX" verify "$T/dense.spx" --embed-probe -o "$T/x.spx"
run_exit 2 "$SPX" verify "$T/dense.spx" --embed-probe --prompt hi --text "$T/text.txt" -o "$T/x.spx"
run_exit 2 "$SPX" verify "$T/dense.spx" --prompt hi
run_exit 2 "$SPX" verify "$T/dense.spx" --embed-probe --prompt hi -o "$T/x.spx" --reference "$T/dense.spx"
[ -e "$T/x.spx" ] && fail "a usage error left an output file"
# data errors (exit 1)
run_exit 1 "$SPX" verify "$T/dense.spx" --reference "$T/nope" "${V[@]}"
grep -q "$T/nope" "$T/err.txt" || fail "missing reference not named"
mkdir -p "$T/badckpt"
echo '{"model_type": "llama"}' >"$T/badckpt/config.json"
TMPDIR="$T/tmpdir" run_exit 1 "$SPX" verify "$T/dense.spx" --reference "$T/badckpt" "${V[@]}"
grep -q 'converting the reference' "$T/err.txt" || fail "failed reference conversion: $(cat "$T/err.txt")"
[ -z "$(ls -A "$T/tmpdir")" ] || fail "a failed reference conversion left files: $(ls -A "$T/tmpdir")"
run_exit 1 "$SPX" verify "$T/dense.spx" --reference "$T/dense.spx" --text "$T/nope.txt"
run_exit 1 "$SPX" verify "$T/dense.spx" --reference "$T/dense.spx" --text "$T/text.txt" --ctx 100000
"$SPX" synth -o "$T/syn4" --layers 3 --seed 1 >/dev/null && "$SPX" convert "$T/syn4" -o "$T/l3.spx" >/dev/null
run_exit 1 "$SPX" verify "$T/l3.spx" --reference "$T/dense.spx" "${V[@]}"
grep -q 'blocks.*(SPX_E_SHAPE)' "$T/err.txt" || fail "layer-count mismatch: $(cat "$T/err.txt")"
finish
