#!/usr/bin/env bash
# synth_convert.sh: synth -> convert -> inspect --check -> ppl / run on a small generated text.
# Stages whose subcommand is not built yet are skipped with a message. The f32, f16 and bf16
# synths of one seed are the same weights at different precisions, so their perplexities must
# agree: within 1% for f16 (10-bit mantissa: relative weight error <= 2^-11, logits <= ~5) and
# 5% for bf16 (7-bit mantissa: <= 2^-8).
source "$SPX_SRC/tests/lib/common.sh"

built() { "$SPX" "$1" --help >/dev/null 2>&1; }
built convert || skip "spx convert is not built yet"

# a deterministic text: 40 sentences over a small vocabulary
words=(the cat sat on mat dog ran away from house little girl who liked to play in garden with her friends every day once upon a time there was big tree bird sky)
: >"$SPX_TMP/text.txt"
for i in $(seq 0 39); do
  s=""
  for j in 0 1 2 3 4 5 6 7; do s="$s ${words[$(( (i * 7 + j * 11 + i * j) % ${#words[@]} ))]}"; done
  echo "${s# }." >>"$SPX_TMP/text.txt"
done

convert() {   # convert DIR OUT [extra synth args]
  local d=$1 out=$2; shift 2
  "$SPX" synth -o "$d" "$@" >/dev/null 2>"$SPX_TMP/err.txt" || { fail "synth $*: $(cat "$SPX_TMP/err.txt")"; return 1; }
  "$SPX" convert "$d" -o "$out" >"$SPX_TMP/conv.txt" 2>&1 || { fail "convert of synth $*: $(cat "$SPX_TMP/conv.txt")"; return 1; }
  [ -s "$out" ] || { fail "convert wrote no $out"; return 1; }
}

convert "$SPX_TMP/f32" "$SPX_TMP/f32.spx"
convert "$SPX_TMP/f16" "$SPX_TMP/f16.spx" --dtype f16
convert "$SPX_TMP/bf16" "$SPX_TMP/bf16.spx" --dtype bf16
convert "$SPX_TMP/untied" "$SPX_TMP/untied.spx" --untied --act relu --layers 3 --seed 4
convert "$SPX_TMP/sharded" "$SPX_TMP/sharded.spx" --shard-size 50000
convert "$SPX_TMP/gelu" "$SPX_TMP/gelu.spx" --act gelu --clusters 8 --vocab 800 --seed 11

if built inspect; then
  for m in f32 f16 bf16 untied sharded gelu; do
    "$SPX" inspect --check "$SPX_TMP/$m.spx" >"$SPX_TMP/insp.txt" 2>&1 || fail "inspect --check $m.spx: $(tail -3 "$SPX_TMP/insp.txt")"
  done
  # the sharded and the single-file synth of one seed hold the same tensors
  "$SPX" inspect "$SPX_TMP/f32.spx" --json >"$SPX_TMP/a.json" 2>/dev/null
  "$SPX" inspect "$SPX_TMP/sharded.spx" --json >"$SPX_TMP/b.json" 2>/dev/null
  if [ -n "${SPX_PYTHON:-}" ]; then
    "$SPX_PYTHON" - "$SPX_TMP/a.json" "$SPX_TMP/b.json" <<'PY' || fail "sharded and single-file conversions differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ta = {t["name"]: t.get("data_crc32") for t in a["tensors"]}
tb = {t["name"]: t.get("data_crc32") for t in b["tensors"]}
sys.exit(0 if ta == tb and len(ta) == 20 and None not in ta.values() else 1)
PY
  fi
else
  echo "SKIP part: spx inspect is not built yet" >&2
fi

ppl_of() { "$SPX" ppl "$1" --text "$SPX_TMP/text.txt" --ctx 64 --json 2>"$SPX_TMP/ppl.err" | sed -n 's/.*"ppl": *\([0-9.eE+-]*\).*/\1/p'; }
if built ppl; then
  p32=$(ppl_of "$SPX_TMP/f32.spx"); p16=$(ppl_of "$SPX_TMP/f16.spx"); pbf=$(ppl_of "$SPX_TMP/bf16.spx")
  pun=$(ppl_of "$SPX_TMP/untied.spx"); psh=$(ppl_of "$SPX_TMP/sharded.spx"); pge=$(ppl_of "$SPX_TMP/gelu.spx")
  echo "ppl: f32 $p32 f16 $p16 bf16 $pbf untied $pun sharded $psh gelu $pge"
  for v in "$p32" "$p16" "$pbf" "$pun" "$psh" "$pge"; do
    awk -v p="$v" 'BEGIN { exit !(p > 1 && p < 1e7) }' || fail "perplexity '$v' not finite and > 1 ($(cat "$SPX_TMP/ppl.err"))"
  done
  [ "$p32" = "$psh" ] || fail "sharded synth gives ppl $psh, single file $p32"
  awk -v a="$p32" -v b="$p16" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.01 * a) }' || fail "f16 ppl $p16 vs f32 $p32 (> 1%)"
  awk -v a="$p32" -v b="$pbf" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.05 * a) }' || fail "bf16 ppl $pbf vs f32 $p32 (> 5%)"
  [ "$p32" != "$pun" ] || fail "different models give the same ppl"
else
  echo "SKIP part: spx ppl is not built yet" >&2
fi

if built run; then
  "$SPX" run "$SPX_TMP/f32.spx" --prompt "the cat" --steps 8 >"$SPX_TMP/run.txt" 2>"$SPX_TMP/run.err" || fail "run: $(cat "$SPX_TMP/run.err")"
  grep -q "^the cat" "$SPX_TMP/run.txt" || fail "run output does not start with the prompt"
else
  echo "SKIP part: spx run is not built yet" >&2
fi
finish
