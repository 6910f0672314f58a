#!/bin/bash
# moefy_cli.sh: `spx moefy` end to end. Exit codes (help 0, usage 2, data 1), a run on a synthetic
# ReLU model (output passes `spx inspect --check`, same seed -> byte-identical file, JSON report with
# held-out recall above twice the random recall), and perplexity through the runtime: with every
# expert selected (--top-k E) the gated model computes the dense model, so its PPL line equals the
# dense one (4 decimals). With ../shared, the same on stories260K.
source "$SPX_SRC/tests/lib/common.sh"
T=$SPX_TMP

expect_exit 0 "$SPX" moefy --help
grep -q "usage: spx moefy" "$T/out.txt" || fail "--help text on stdout"
expect_exit 2 "$SPX" moefy
expect_exit 2 "$SPX" moefy in.spx -o out.spx --text x.txt
expect_exit 2 "$SPX" moefy in.spx -o out.spx --experts 4
expect_exit 2 "$SPX" moefy in.spx -o out.spx --experts 4 --text a --tokens b
expect_exit 2 "$SPX" moefy in.spx -o out.spx --experts 4 --text x --router nope
expect_exit 2 "$SPX" moefy in.spx -o out.spx --experts 4 --text x --router dsti --top-k 2
expect_exit 2 "$SPX" moefy in.spx -o out.spx --experts 4 --text x --router dsti --tau 1.5
expect_exit 2 "$SPX" moefy in.spx -o out.spx --experts 4 --text x --split nope
expect_exit 2 "$SPX" moefy in.spx -o out.spx --experts 4 --top-k 5 --text x
expect_exit 2 "$SPX" moefy in.spx -o out.spx --experts 4 --text x --bogus
expect_exit 1 "$SPX" moefy "$T/missing.spx" -o "$T/o.spx" --experts 4 --text "$SPX_SRC/README.md"

"$SPX" synth -o "$T/syn" --act relu --ffn 128 --layers 2 >/dev/null || fail "synth"
"$SPX" convert "$T/syn" -o "$T/syn.spx" >/dev/null || fail "convert"
for i in $(seq 1 40); do echo "the quick brown fox $i jumps over the lazy dog number $((i * 7))"; done >"$T/text.txt"
ARGS=(--text "$T/text.txt" --nsamples 16 --seqlen 64)
expect_exit 0 "$SPX" moefy "$T/syn.spx" -o "$T/m1.spx" --experts 8 "${ARGS[@]}"
grep -q "mean recall" "$T/out.txt" || fail "text report"
expect_exit 0 "$SPX" inspect --check "$T/m1.spx"
expect_exit 0 "$SPX" moefy "$T/syn.spx" -o "$T/m2.spx" --experts 8 "${ARGS[@]}" --json
cmp -s "$T/m1.spx" "$T/m2.spx" || fail "same seed wrote different files"
cp "$T/out.txt" "$T/report.json"
if [ -n "${SPX_PYTHON:-}" ]; then
  "$SPX_PYTHON" - "$T/report.json" <<'EOF' || fail "JSON report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["router"] == "moe" and r["experts"] == 8 and r["top_k"] == 2, r
assert len(r["layers"]) == 2
for l in r["layers"]:
    assert l["recall"] > 2 * l["random_recall"], l
    assert l["heldout_loss"] < l["init_heldout_loss"], l
    assert len(l["history"]) == l["epochs"] + 1
EOF
fi
expect_exit 2 "$SPX" moefy "$T/syn.spx" -o "$T/bad.spx" --experts 129 "${ARGS[@]}"
expect_exit 1 "$SPX" moefy "$T/m1.spx" -o "$T/bad.spx" --experts 8 "${ARGS[@]}"
[ -e "$T/bad.spx" ] && fail "failed run left an output file"
for r in dsti lte; do
  expect_exit 0 "$SPX" moefy "$T/syn.spx" -o "$T/$r.spx" --experts 8 --router $r --split coact --epochs 5 "${ARGS[@]}"
  expect_exit 0 "$SPX" inspect --check "$T/$r.spx"
done

# every expert selected == the dense model
expect_exit 0 "$SPX" moefy "$T/syn.spx" -o "$T/all.spx" --experts 8 --top-k 8 --epochs 2 "${ARGS[@]}"
dense=$("$SPX" ppl "$T/syn.spx" --text "$T/text.txt" --ctx 64 | tail -1)
gated=$("$SPX" ppl "$T/all.spx" --text "$T/text.txt" --ctx 64 | tail -1)
[ -n "$dense" ] && [ "$dense" = "$gated" ] || fail "top-k = E ppl '$gated' != dense '$dense'"

# spx ppl --gate-recall (verify/spx_gate_recall.c): the oracle mode and every-expert selections
# have recall exactly 1, random selections about k/E, the trained router well above random; a
# dense file is a usage error. m1.spx: moe, E = 8, top-2.
expect_exit 2 "$SPX" ppl "$T/syn.spx" --text "$T/text.txt" --ctx 64 --gate-recall
recall() { "$SPX" ppl "$@" --text "$T/text.txt" --ctx 64 --gate-recall --json | sed 's/.*"gate_recall": {"mean": \([0-9.e+-]*\).*/\1/'; }
r_oracle=$(recall "$T/m1.spx" --gate-mode oracle --gate-k 2)
r_all=$(recall "$T/all.spx")
r_router=$(recall "$T/m1.spx")
r_random=$(recall "$T/m1.spx" --gate-mode random --gate-k 2)
[ "$r_oracle" = 1 ] || fail "oracle recall '$r_oracle' != 1"
[ "$r_all" = 1 ] || fail "top-k = E recall '$r_all' != 1"
awk -v r="$r_random" 'BEGIN { exit !(r > 0.15 && r < 0.35) }' || fail "random recall '$r_random' not near 2/8"
awk -v a="$r_router" -v b="$r_random" 'BEGIN { exit !(a > b + 0.1) }' || fail "router recall '$r_router' <= random '$r_random'"
"$SPX" ppl "$T/m1.spx" --text "$T/text.txt" --ctx 64 --gate-recall | grep -q "^recall " || fail "text recall line"
echo "gate recall: router $r_router, random $r_random, oracle $r_oracle"

# E that does not divide the FFN width (128 = 2^7; 12 experts): the FFN is padded with zero neurons
# to 132 first; every expert running (top-k = E) must equal the dense model exactly, the padding is
# recorded, and no temporary padded file is left next to the output
expect_exit 0 "$SPX" moefy "$T/syn.spx" -o "$T/pad.spx" --experts 12 --top-k 12 --epochs 2 "${ARGS[@]}"
grep -q "FFN padded with zero neurons: 128 -> 132" "$T/out.txt" || fail "padding not reported: $(head -3 "$T/out.txt")"
"$SPX" inspect "$T/pad.spx" | grep -q "spx.moefy.ffn_unpadded *U32 *128" || fail "spx.moefy.ffn_unpadded missing"
"$SPX" inspect "$T/pad.spx" | grep -q "feed_forward_length *U32 *132" || fail "padded feed_forward_length missing"
ls "$T" | grep -q ffnpad && fail "temporary padded file left behind: $(ls "$T" | grep ffnpad)"
gated=$("$SPX" ppl "$T/pad.spx" --text "$T/text.txt" --ctx 64 | tail -1)
# (equal within 1e-6 relative: the padded width changes the BLAS summation blocking, nothing else)
awk -v a="${gated#PPL = }" -v b="${dense#PPL = }" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= 1e-6 * b) }' \
  || fail "padded top-k = E ppl '$gated' != dense '$dense'"

if [ -e "$SPX_SHARED/models/stories260K-llama2c/stories260K.bin" ]; then
  M=$SPX_SHARED/models/stories260K-llama2c
  TXT=$SPX_SHARED/data/tinystories/tinystories_sample.txt
  "$SPX" convert "$M/stories260K.bin" --tokenizer "$M/tok512.bin" -o "$T/st.spx" >/dev/null 2>&1 || fail "convert stories260K"
  expect_exit 0 "$SPX" moefy "$T/st.spx" -o "$T/st4.spx" --experts 4 --top-k 4 --epochs 2 --text "$TXT" --nsamples 8
  dense=$("$SPX" ppl "$T/st.spx" --text "$TXT" --doc-sep '<|endoftext|>' | tail -1)
  gated=$("$SPX" ppl "$T/st4.spx" --text "$TXT" --doc-sep '<|endoftext|>' | tail -1)
  [ -n "$dense" ] && [ "$dense" = "$gated" ] || fail "stories260K top-k = E ppl '$gated' != dense '$dense'"
else
  echo "note: ../shared absent, stories260K part skipped" >&2
fi
finish
