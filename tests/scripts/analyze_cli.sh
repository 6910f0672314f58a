#!/bin/bash
# analyze_cli.sh: `spx analyze` on a `spx synth` model: exit codes, table, JSON validated against
# specs/spx-analyze-json.md, --all-linears / --targets, SVG files (well-formed XML), determinism
# (two runs give byte-identical JSON and SVG), and one dumped layer recomputed by
# tests/ref/wasserstein_ref.py check-dump (distances from the raw outputs to 1e-11, outputs =
# X W^T within the fp32 bound, inputs = the float64 reference forward of the same windows to 1e-4).
source "$SPX_SRC/tests/lib/common.sh"
need_python
T="$SPX_TMP" REF="$SPX_SRC/tests/ref/wasserstein_ref.py"
"$SPX" synth -o "$T/syn" --layers 2 --seed 3 >/dev/null || { fail "synth"; finish; }
"$SPX" convert "$T/syn" -o "$T/syn.spx" >/dev/null || { fail "convert"; finish; }
"$SPX_PYTHON" -c "import numpy as np; np.random.default_rng(5).integers(0, 512, 4000).astype('<u4').tofile('$T/ids.u32')"
A=(--tokens "$T/ids.u32" --nsamples 8 --seqlen 96)

# usage and data errors
expect_exit 0 "$SPX" analyze --help
grep -q "Memory:" "$T/out.txt" || fail "--help states the memory use"
expect_exit 2 "$SPX" analyze "$T/syn.spx"                                  # no data
expect_exit 2 "$SPX" analyze "$T/syn.spx" "${A[@]}" --bogus
expect_exit 2 "$SPX" analyze "$T/syn.spx" "${A[@]}" --targets ffn_up,nope
expect_exit 2 "$SPX" analyze "$T/syn.spx" "${A[@]}" --dump-layer blk.0.ffn_up.weight
expect_exit 2 "$SPX" analyze "$T/syn.spx" "${A[@]}" --dump-layer blk.9.ffn_up.weight --dump-prefix "$T/x"
expect_exit 2 "$SPX" analyze "$T/syn.spx" "${A[@]}" --threshold -1
expect_exit 1 "$SPX" analyze "$T/missing.spx" "${A[@]}"
expect_exit 1 "$SPX" analyze "$T/syn.spx" --tokens "$T/missing.u32"
ls "$T"/x.* >/dev/null 2>&1 && fail "a failed run left dump files"

# table
expect_exit 0 "$SPX" analyze "$T/syn.spx" "${A[@]}" --top 3
[ "$(grep -c '^blk\.[01]\.ffn_\(gate\|up\|down\)\.weight ' "$T/out.txt")" = 12 ] || fail "table: 6 layers + 6 top lines"

# JSON: schema, determinism, SVG
"$SPX" analyze "$T/syn.spx" "${A[@]}" --json --svg "$T/svg1" >"$T/a.json" || fail "analyze --json"
"$SPX" analyze "$T/syn.spx" "${A[@]}" --json --svg "$T/svg2" >"$T/b.json" || fail "analyze --json (2)"
"$SPX_PYTHON" "$REF" validate-json "$T/a.json" || fail "JSON schema"
cmp -s "$T/a.json" "$T/b.json" || fail "two runs differ (JSON)"
diff -r "$T/svg1" "$T/svg2" >/dev/null || fail "two runs differ (SVG)"
[ "$(ls "$T/svg1" | wc -l)" = 6 ] || fail "6 SVG files expected"
"$SPX_PYTHON" - "$T/svg1" <<'PY' || fail "SVG files are not well-formed"
import os, sys, xml.etree.ElementTree as ET
d = sys.argv[1]
for f in sorted(os.listdir(d)):
    root = ET.parse(os.path.join(d, f)).getroot()
    assert root.tag.endswith("svg"), f
    assert len(root.findall(".//{http://www.w3.org/2000/svg}rect")) > 5, f
    assert root.findall(".//{http://www.w3.org/2000/svg}polyline"), f
PY
ls "$T"/svg1/*.tmp.* >/dev/null 2>&1 && fail "temporary files left"

# all linears, subsampling
"$SPX" analyze "$T/syn.spx" "${A[@]}" --all-linears --max-tokens 300 --json >"$T/c.json" || fail "--all-linears"
"$SPX_PYTHON" "$REF" validate-json "$T/c.json" || fail "JSON schema (--all-linears)"
"$SPX_PYTHON" -c "import json,sys; r=json.load(open('$T/c.json')); sys.exit(not (len(r['layers']) == 14 and r['tokens'] == 300))" \
  || fail "--all-linears: 14 layers over 300 tokens"
"$SPX" analyze "$T/syn.spx" "${A[@]}" --targets attn_v,ffn_down --json >"$T/d.json" || fail "--targets"
"$SPX_PYTHON" -c "import json,sys; r=json.load(open('$T/d.json')); sys.exit(r['targets'] != ['attn_v', 'ffn_down'] or len(r['layers']) != 4)" \
  || fail "--targets attn_v,ffn_down"

# constant neurons: a 99.9% magnitude-pruned model has all-zero rows (distance 0, listed), and
# layers whose every neuron is constant still get a well-formed SVG
"$SPX" prune "$T/syn.spx" -o "$T/pr.spx" --method magnitude --sparsity 0.999 >/dev/null || fail "prune"
"$SPX" analyze "$T/pr.spx" "${A[@]}" --json --svg "$T/svgp" >"$T/p.json" || fail "analyze pruned"
"$SPX_PYTHON" "$REF" validate-json "$T/p.json" || fail "JSON schema (pruned)"
"$SPX_PYTHON" - "$T/p.json" "$T/svgp" <<'PY' || fail "constant neurons"
import json, os, sys, xml.etree.ElementTree as ET
r = json.load(open(sys.argv[1]))
assert all(L["n_constant"] > 0 for L in r["layers"]), [L["n_constant"] for L in r["layers"]]
assert any(L["n_constant"] == L["rows"] and L["max"] == 0 for L in r["layers"])
for f in os.listdir(sys.argv[2]):
    ET.parse(os.path.join(sys.argv[2], f))
PY

# one layer recomputed independently
for L in blk.1.ffn_down.weight blk.0.attn_k.weight; do
  "$SPX" analyze "$T/syn.spx" "${A[@]}" --all-linears --max-tokens 500 --dump-layer $L --dump-prefix "$T/dump" \
    --json >"$T/e.json" || { fail "dump $L"; continue; }
  "$SPX_PYTHON" "$REF" check-dump "$T/dump" --model "$T/syn" --layer $L --json "$T/e.json" --tokens "$T/ids.u32" \
    --nsamples 8 --seqlen 96 || fail "check-dump $L"
done
finish
