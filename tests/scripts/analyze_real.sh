#!/bin/bash
# analyze_real.sh: `spx analyze` on the real stories260K model (../shared, converted here): the
# calibration text is tokenized by the independent tests/ref/tokenizer_ref.py, then a deep MLP
# layer and an attention layer are dumped and recomputed by tests/ref/wasserstein_ref.py
# check-dump (distances to 1e-11 from the raw outputs, outputs = X W^T within the fp32 bound,
# inputs = the float64 reference forward to 1e-4, distances of the float64 forward to 2e-4);
# the JSON validates and two runs are byte-identical; --text runs end to end.
source "$SPX_SRC/tests/lib/common.sh"
need_python
need_shared models/stories260K-hf/model.safetensors
need_shared data/tinystories/tinystories_sample.txt
T="$SPX_TMP" REF="$SPX_SRC/tests/ref/wasserstein_ref.py" M="$SPX_SHARED/models/stories260K-hf"
TXT="$SPX_SHARED/data/tinystories/tinystories_sample.txt"
"$SPX" convert "$M" -o "$T/st.spx" >/dev/null || { fail "convert"; finish; }
grep -v '^[[:space:]]*$' "$TXT" | grep -v 'endoftext' >"$T/lines.txt"
"$SPX_PYTHON" "$SPX_SRC/tests/ref/tokenizer_ref.py" "$M/tokenizer.json" "$T/lines.txt" "$T/ids.txt" || { fail "tokenize"; finish; }
"$SPX_PYTHON" - "$T/ids.txt" "$T/ids.u32" <<'PY'
import sys, numpy as np
ids = [1]                                   # BOS, then every line's ids
for line in open(sys.argv[1]):
    ids += [int(t) for t in line.split()]
np.array(ids, dtype="<u4").tofile(sys.argv[2])
PY
A=(--tokens "$T/ids.u32" --nsamples 16 --seqlen 128 --max-tokens 1500)
for spec in "blk.3.ffn_down.weight:" "blk.1.attn_output.weight:--all-linears"; do
  L=${spec%%:*} X=${spec#*:}
  "$SPX" analyze "$T/st.spx" "${A[@]}" $X --dump-layer $L --dump-prefix "$T/dump" --json >"$T/r.json" \
    || { fail "analyze --dump-layer $L"; continue; }
  "$SPX_PYTHON" "$REF" validate-json "$T/r.json" || fail "JSON schema"
  "$SPX_PYTHON" "$REF" check-dump "$T/dump" --model "$M" --layer $L --json "$T/r.json" --tokens "$T/ids.u32" \
    --nsamples 16 --seqlen 128 || fail "check-dump $L"
done
"$SPX" analyze "$T/st.spx" --text "$TXT" --nsamples 16 --seqlen 256 --json >"$T/t1.json" || fail "analyze --text"
"$SPX" analyze "$T/st.spx" --text "$TXT" --nsamples 16 --seqlen 256 --json >"$T/t2.json" || fail "analyze --text (2)"
cmp -s "$T/t1.json" "$T/t2.json" || fail "two runs differ"
"$SPX_PYTHON" "$REF" validate-json "$T/t1.json" || fail "JSON schema (--text)"
finish
