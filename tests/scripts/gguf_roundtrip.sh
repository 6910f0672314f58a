#!/usr/bin/env bash
# gguf_roundtrip.sh: `spx export --to gguf` and `spx convert MODEL.gguf`.
#  - safetensors -> spx -> gguf -> spx, F32 and F16 (stories260K-hf when ../shared is present, and
#    an `spx synth` model): identical tensors (names, dtypes, dims, data CRCs) and metadata (but
#    spx.source.*), bit-identical logits; the GGUF equals the Hugging Face tensors in llama.cpp's
#    layout (q/k permuted with NumPy by tests/ref/make_gguf.py compare-hf, an independent check);
#  - byte-identical output for the same input (export and import);
#  - --dtype f16: matrices are NumPy's f16 rounding, vectors F32;
#  - a GGUF hand-built by tests/ref/make_gguf.py (Q8_0, F16, BF16, F32 tensors, llama.cpp q/k
#    order, alignment 32 and 64, tied and untied): logits match tests/ref/llama_ref.py on the NumPy-
#    dequantized weights within 1e-5 relative L2 per position (fp32 runtime vs float64 reference
#    on identical weights: observed ~1e-6); a reference that skips the q/k un-permutation must
#    NOT match (the permutation is what makes them agree);
#  - a pruned file exports dense: values equal the .spx decode (tests/interop/spx_read.py);
#  - expanded and gated (moefy) files are refused (SPX_E_UNSUPPORTED, exit 1, no output); usage errors exit 2.
source "$SPX_SRC/tests/lib/common.sh"
need_python
T=$SPX_TMP
MK="$SPX_PYTHON $SPX_SRC/tests/ref/make_gguf.py"
REF="$SPX_PYTHON $SPX_SRC/tests/ref/llama_ref.py"
IDS=1,5,17,40,95,3,60,2,33
cat > $T/same.py <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
key = lambda t: (t["name"], t["dtype"], t["encoding"], t["dims"], t["data_crc32"])
ta, tb = [key(t) for t in a["tensors"]], [key(t) for t in b["tensors"]]
assert ta == tb, [x for x in zip(ta, tb) if x[0] != x[1]][:3]
meta = lambda m: {e["key"]: e.get("value") for e in m["metadata"] if not e["key"].startswith("spx.source.")}
ma, mb = meta(a), meta(b)
assert ma == mb, sorted(k for k in ma.keys() | mb.keys() if ma.get(k) != mb.get(k))
print("  %d tensors and %d metadata keys identical" % (len(ta), len(ma)))
PY

# roundtrip NAME SRC_DIR: convert, export, re-import, compare
roundtrip() {
  local n=$1 src=$2
  $SPX convert $src -o $T/$n.spx >/dev/null || { fail "$n: convert"; return; }
  $SPX export $T/$n.spx --to gguf -o $T/$n.gguf >/dev/null || { fail "$n: export"; return; }
  $SPX convert $T/$n.gguf -o $T/$n.back.spx >/dev/null || { fail "$n: convert gguf"; return; }
  $SPX inspect --json $T/$n.spx >$T/$n.a.json && $SPX inspect --json $T/$n.back.spx >$T/$n.b.json &&
    $SPX_PYTHON $T/same.py $T/$n.a.json $T/$n.b.json || fail "$n: tensors differ after the round trip"
  $MK compare-hf $T/$n.gguf $src/model.safetensors --config $src/config.json || fail "$n: GGUF layout"
  $SPX run $T/$n.spx --prompt-ids $IDS --steps 0 --dump-logits $T/$n.l1 >/dev/null &&
    $SPX run $T/$n.back.spx --prompt-ids $IDS --steps 0 --dump-logits $T/$n.l2 >/dev/null &&
    cmp -s $T/$n.l1 $T/$n.l2 || fail "$n: logits differ"
}

if [ -d "$SPX_SHARED/models/stories260K-hf" ]; then
  M=$SPX_SHARED/models/stories260K-hf
  for v in "" .f16; do
    mkdir -p $T/st$v && cp $M/config.json $M/tokenizer.json $T/st$v/ && ln -sf $M/model$v.safetensors $T/st$v/model.safetensors
    roundtrip stories$v $T/st$v
  done
  # the exported q/k rows are Meta's interleaved layout: byte-identical to llama2.c's wq/wk of the
  # same model (an anchor independent of both spx and make_gguf.py's permute)
  $SPX_PYTHON - $SPX_SRC/tests/ref $T/stories.gguf $SPX_SHARED/models/stories260K-llama2c/stories260K.bin <<'PY' ||
import struct, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from make_gguf import parse_gguf
kvs, t = parse_gguf(sys.argv[2])
b = open(sys.argv[3], "rb").read()
dim, hid, L, nh, nkv, vocab, seq = struct.unpack_from("<7i", b)
f = np.frombuffer(b[28:], "<f4")
kv, o = dim * nkv // nh, vocab * dim + L * dim
wq = f[o:o + L * dim * dim].reshape(L, dim, dim)
wk = f[o + L * dim * dim:o + L * dim * dim + L * kv * dim].reshape(L, kv, dim)
for l in range(L):
    assert t["blk.%d.attn_q.weight" % l][2] == wq[l].tobytes(), l
    assert t["blk.%d.attn_k.weight" % l][2] == wk[l].tobytes(), l
print("  exported attn_q/attn_k equal llama2.c's wq/wk (Meta interleaved layout) in all %d layers" % L)
PY
    fail "stories q/k layout differs from llama2.c"
else
  echo "  (../shared absent: stories260K round trip skipped)"
fi
for d in f32 f16; do
  $SPX synth -o $T/syn_$d --dtype $d --seed 3 --untied >/dev/null || fail "synth $d"
  roundtrip synth_$d $T/syn_$d
done

# deterministic: same input -> byte-identical GGUF and .spx
$SPX export $T/synth_f32.spx --to gguf -o $T/again.gguf >/dev/null && cmp -s $T/synth_f32.gguf $T/again.gguf ||
  fail "export is not deterministic"
$SPX convert $T/synth_f32.gguf -o $T/again.spx >/dev/null && cmp -s $T/synth_f32.back.spx $T/again.spx ||
  fail "GGUF import is not deterministic"

# --dtype f16 from an F32 file
$SPX export $T/synth_f32.spx --to gguf --dtype f16 -o $T/h.gguf >/dev/null || fail "export f16"
$MK compare-hf $T/h.gguf $T/syn_f32/model.safetensors --config $T/syn_f32/config.json --round f16 || fail "f16 values"

# hand-built GGUF files vs the NumPy reference
for variant in "untied:" "tied:--tied" "align64:--alignment 64"; do
  n=${variant%%:*} opt=${variant#*:}
  $MK model --out $T/$n.gguf --hf-dir $T/ref_$n --seed 7 $opt || { fail "make_gguf $n"; continue; }
  $SPX convert $T/$n.gguf -o $T/$n.spx >/dev/null || { fail "convert $n.gguf"; continue; }
  $SPX run $T/$n.spx --prompt-ids $IDS --steps 0 --dump-logits $T/$n.f32 >/dev/null || fail "run $n"
  out=$($REF --model $T/ref_$n --tokens $IDS --compare $T/$n.f32 --tol 1e-5 2>&1) || fail "$n logits: $out"
  echo "  $n: $out"
done
$MK model --out $T/np.gguf --hf-dir $T/ref_np --seed 7 --ref-no-unpermute || fail "make_gguf control"
$REF --model $T/ref_np --tokens $IDS --compare $T/untied.f32 --tol 1e-5 >/dev/null 2>&1 &&
  fail "control: logits match a reference without the q/k un-permutation"
$SPX inspect --json $T/untied.spx | grep -q '"tokenizer.ggml.token_type"' || fail "tokenizer not imported"
$SPX run $T/untied.spx --prompt "a b" --steps 2 >/dev/null || fail "imported tokenizer does not run"

# pruned -> dense GGUF
$SPX prune $T/synth_f32.spx -o $T/p.spx --method magnitude --sparsity 0.5 --encoding bitmask >/dev/null || fail "prune"
$SPX export $T/p.spx --to gguf -o $T/p.gguf >/dev/null && $SPX convert $T/p.gguf -o $T/p.back.spx >/dev/null ||
  fail "pruned export"
$SPX_PYTHON - $SPX_SRC/tests/interop $T/p.spx $T/p.back.spx <<'PY' || fail "pruned values"
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import spx_read
a, b = (spx_read.open_spx(p) for p in sys.argv[2:4])
ta, tb = ({t["name"]: t for t in f["tensors"]} for f in (a, b))
assert ta.keys() == tb.keys()
zeros = 0
for k in ta:
    x, y = spx_read.decode(a, ta[k]), spx_read.decode(b, tb[k])
    assert np.array_equal(x, y), k
    zeros += int((y == 0).sum())
print("  pruned file exported dense: %d tensors equal, %d zeros" % (len(ta), zeros))
PY

# refusals and usage
cat "$SPX_SRC"/README.md "$SPX_SRC"/specs/*.md > $T/text.txt
$SPX expand $T/synth_f32.spx -o $T/e.spx --clusters 2 --sparsity 0.5 --text $T/text.txt --nsamples 4 --seqlen 32 \
  >/dev/null || fail "expand"
expect_exit 1 $SPX export $T/e.spx --to gguf -o $T/e.gguf
grep -q "SPX_E_UNSUPPORTED" $T/err.txt && grep -q "ffn_gate_inp" $T/err.txt || fail "expanded: $(cat $T/err.txt)"
[ ! -e $T/e.gguf ] || fail "output left after refusal"
$SPX moefy $T/synth_f32.spx -o $T/g.spx --experts 4 --text $T/text.txt >/dev/null 2>&1 || fail "moefy"
expect_exit 1 $SPX export $T/g.spx --to gguf -o $T/g.gguf
grep -q "SPX_E_UNSUPPORTED" $T/err.txt && grep -q "ffn_router" $T/err.txt || fail "gated: $(cat $T/err.txt)"
[ ! -e $T/g.gguf ] || fail "output left after refusal (gated)"
expect_exit 2 $SPX export $T/synth_f32.spx --to gguf --format sparse-bitmask -o $T/x.gguf
expect_exit 2 $SPX export $T/synth_f32.spx --to gguf --dtype f8 -o $T/x.gguf
expect_exit 2 $SPX convert $T/untied.gguf --tokenizer $T/x.json -o $T/x.spx
expect_exit 0 $SPX export --help
grep -q "gguf" $T/out.txt || fail "export --help does not mention gguf"
finish
