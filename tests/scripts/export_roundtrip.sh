#!/usr/bin/env bash
# export_roundtrip.sh: `spx export --to safetensors`.
#  - safetensors -> spx -> safetensors is bit-identical in tensor bytes (same names, dtypes, shapes)
#    for dense F32, F16 and BF16 (stories260K-hf when ../shared is present, else spx synth), and the
#    exported directory converts back to a .spx with equal tensor CRCs;
#  - a 50% pruned (bitmask) file: --format dense equals the reader's decode; --format
#    sparse-bitmask writes P.shape/P.compressed/P.bitmask/P.row_offsets that decode to the same
#    dense matrix and a compressed-tensors sparsity_config; --dtype f16 equals NumPy's rounding;
#  - expanded files are refused with SPX_E_UNSUPPORTED (exit 1); usage errors exit 2.
source "$SPX_SRC/tests/lib/common.sh"
need_python
T=$SPX_TMP
RD=$SPX_SRC/tests/interop
cat > $T/cmp.py <<'PY'
import json, struct, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import spx_read
def st(path):
    b = open(path, "rb").read()
    n = struct.unpack_from("<Q", b)[0]
    h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
def to_np(e):
    dt, shape, raw = e
    if dt == "BF16":
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return np.frombuffer(raw, {"F32": "<f4", "F16": "<f2", "I64": "<i8", "U8": "u1"}[dt]).reshape(shape)
mode = sys.argv[2]
if mode == "same":          # A.safetensors B.safetensors: identical tensors
    a, b = st(sys.argv[3]), st(sys.argv[4])
    assert a.keys() == b.keys(), (sorted(a.keys() ^ b.keys()))
    bad = [k for k in a if a[k] != b[k]]
    assert not bad, bad[:5]
    print("  %d tensors bit-identical (%s)" % (len(a), sys.argv[3].split("/")[-2]))
elif mode == "crc":         # A.spx B.spx: equal tensor names and CRCs
    a, b = (spx_read.open_spx(p) for p in sys.argv[3:5])
    ca = {t["name"]: t["crc"] for t in a["tensors"]}; cb = {t["name"]: t["crc"] for t in b["tensors"]}
    assert ca == cb, [k for k in ca if ca.get(k) != cb.get(k)][:5]
    print("  %d tensor CRCs equal after the second convert" % len(ca))
elif mode == "sparse":      # F.spx dense.safetensors sparse.safetensors f16.safetensors config.json
    f = spx_read.open_spx(sys.argv[3])
    d, s, h = st(sys.argv[4]), st(sys.argv[5]), st(sys.argv[6])
    cfg = json.load(open(sys.argv[7]))
    sc = cfg["quantization_config"]["sparsity_config"]
    assert sc["format"] == "sparse-bitmask", sc
    n = 0
    for k, v in d.items():
        x = to_np(v)
        assert np.array_equal(to_np(h[k]), x.astype(np.float16)) or v[0] != "F32", k
        p = k[:-7]
        if p + ".bitmask" not in s:
            assert s[k] == v, k
            continue
        n += 1
        shape = to_np(s[p + ".shape"]); m = np.unpackbits(to_np(s[p + ".bitmask"]), axis=1, bitorder="little")
        m = m[:, :shape[1]].astype(bool); ro = to_np(s[p + ".row_offsets"]); vals = to_np(s[p + ".compressed"])
        y = np.zeros(tuple(shape), np.float32); y[m] = vals
        assert np.array_equal(ro, np.concatenate([[0], np.cumsum(m.sum(1))[:-1]])), p
        assert np.array_equal(y, x) and np.count_nonzero(vals) == vals.size and k in sc["targets"], p
    T = {t["name"]: t for t in f["tensors"]}
    assert np.array_equal(to_np(d["model.layers.0.mlp.up_proj.weight"]), spx_read.decode(f, T["blk.0.ffn_up.weight"]))
    print("  %d sparse-bitmask tensors decode to the dense export; global_sparsity %.3f" % (n, sc["global_sparsity"]))
PY
PYC="$SPX_PYTHON $T/cmp.py $RD"

if [ -d "$SPX_SHARED/models/stories260K-hf" ]; then
  M=$SPX_SHARED/models/stories260K-hf
  for v in "" .f16 .bf16; do
    mkdir -p $T/src$v && cp $M/config.json $M/tokenizer.json $T/src$v/ && ln -sf $M/model$v.safetensors $T/src$v/model.safetensors
  done
else
  echo "  (../shared absent: synthetic models)"
  for v in "" .f16 .bf16; do
    $SPX synth -o $T/src$v --dtype $(echo ${v:-.f32} | tr -d .) --seed 5 >/dev/null || fail "synth $v"
  done
fi
for v in "" .f16 .bf16; do
  $SPX convert $T/src$v -o $T/a$v.spx >/dev/null || fail "convert $v"
  $SPX export $T/a$v.spx --to safetensors -o $T/hf$v >/dev/null || fail "export $v"
  [ -s $T/hf$v/config.json ] && [ -s $T/hf$v/tokenizer.json ] || fail "export $v: no config/tokenizer"
  $PYC same $T/src$v/model.safetensors $T/hf$v/model.safetensors || fail "round trip $v not bit-identical"
  $SPX convert $T/hf$v -o $T/b$v.spx >/dev/null || fail "convert exported $v"
  $PYC crc $T/a$v.spx $T/b$v.spx || fail "CRCs differ $v"
done
cmp -s $T/src/tokenizer.json $T/hf/tokenizer.json || fail "tokenizer.json not identical"

$SPX prune $T/a.spx -o $T/p50.spx --method magnitude --sparsity 0.5 --encoding bitmask >/dev/null || fail "prune"
$SPX export $T/p50.spx --to safetensors -o $T/pd.safetensors >/dev/null || fail "export dense"
$SPX export $T/p50.spx --to safetensors --format sparse-bitmask -o $T/ps >/dev/null || fail "export sparse"
$SPX export $T/p50.spx --to safetensors --dtype f16 -o $T/ph.safetensors >/dev/null || fail "export f16"
[ ! -e $T/pd/config.json ] || fail "single-file export wrote config.json"
$PYC sparse $T/p50.spx $T/pd.safetensors $T/ps/model.safetensors $T/ph.safetensors $T/ps/config.json || fail "sparse-bitmask"

cat "$SPX_SRC"/README.md "$SPX_SRC"/specs/*.md > $T/text.txt
$SPX synth -o $T/syn --seed 1 >/dev/null && $SPX convert $T/syn -o $T/syn.spx >/dev/null || fail "synth"
$SPX expand $T/syn.spx -o $T/e.spx --clusters 2 --sparsity 0.5 --text $T/text.txt --nsamples 4 --seqlen 32 >/dev/null || fail "expand"
expect_exit 1 $SPX export $T/e.spx --to safetensors -o $T/ex
grep -q "SPX_E_UNSUPPORTED" $T/err.txt && grep -q "routing" $T/err.txt || fail "expanded: $(cat $T/err.txt)"
[ ! -e $T/ex/model.safetensors ] || fail "output left after refusal"
expect_exit 2 $SPX export $T/a.spx --to onnx -o $T/x
expect_exit 2 $SPX export $T/a.spx --to safetensors
expect_exit 2 $SPX export $T/a.spx --to safetensors -o $T/x --dtype f8
expect_exit 0 $SPX export --help
finish
