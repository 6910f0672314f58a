#!/usr/bin/env bash
# interop_reader.sh: the independent NumPy reader tests/interop/spx_read.py (written from
# specs/spx-format.md alone) against files written by the C tool-chain.
#  - golden files: every tests/golden/valid file opens and decodes; every tests/golden/invalid file
#    is rejected with the code named in tests/golden/invalid/EXPECTED;
#  - dense F32/F16/BF16 (spx synth --dtype, and stories260K-hf when ../shared is present), pruned
#    50% (bitmask), 2:4 (nm), 95% (csr16), expanded (K=4) and gated (spx moefy moe/dsti/lte):
#    the reader validates every CRC and invariant and decodes every tensor;
#  - MLP check: for blocks 0 and 1 and 16 random rows x (seed 0), the reader's NumPy MLP
#    (float64, routing per spec 12.4 / gating per 12.5) equals the C runtime's MLP
#    (unit.verify_interop helper, fp32) within max|diff| <= 1e-5 * max|y|: fp32 accumulation over
#    <= 2 * 172 products gives relative errors ~1e-7, far below; a routing or decoding mistake is O(1).
source "$SPX_SRC/tests/lib/common.sh"
need_python
T=$SPX_TMP
PY="$SPX_PYTHON $SPX_SRC/tests/interop/spx_read.py"
HELPER="$SPX_BUILD/tests/test_verify_interop"
[ -x "$HELPER" ] || fail "helper $HELPER missing"

for f in "$SPX_SRC"/tests/golden/valid/*.spx; do
  $PY check "$f" >$T/r.txt || fail "golden valid $(basename $f): $(cat $T/r.txt)"
done
n=0
while read -r f code; do
  [ -n "$f" ] || continue
  out=$($PY check "$SPX_SRC/tests/golden/invalid/$f")
  [ $? -eq 1 ] || fail "golden invalid $f accepted"
  case "$out" in "ERROR $code:"*) n=$((n + 1));; *) fail "$f: want $code, got: $out";; esac
done < "$SPX_SRC/tests/golden/invalid/EXPECTED"
echo "  golden invalid: $n files rejected with the expected code"

mlp_check() {  # FILE LAYER (x.f32 made by make_x for the current DIM)
  SPX_INTEROP_FILE=$1 SPX_INTEROP_IN=$T/x.f32 SPX_INTEROP_OUT=$T/yc.f32 SPX_INTEROP_LAYER=$2 "$HELPER" \
    || { fail "C MLP of $1 block $2"; return; }
  $PY mlp "$1" --layer $2 --in $T/x.f32 --out $T/yp.f32 --compare $T/yc.f32 --tol 1e-5 >$T/info.txt \
    || fail "MLP mismatch $1 block $2: $(cat $T/info.txt)"
  printf '  MLP %-14s block %s: %s\n' "$(basename $1)" $2 "$(cut -c1-80 $T/info.txt)"
}
make_x() {
  $SPX_PYTHON -c "import numpy as np; np.random.seed(0); np.random.randn(16, $DIM).astype('<f4').tofile('$T/x.f32')"
}

check_file() {  # FILE
  $PY check "$1" >$T/r.txt || { fail "$(basename $1): $(cat $T/r.txt)"; return; }
  echo "  $(basename $1): $(cat $T/r.txt)"
  mlp_check "$1" 0
  mlp_check "$1" 1
}

DIM=64
make_x
for dt in f32 f16 bf16; do
  $SPX synth -o $T/syn_$dt --dtype $dt --seed 3 >/dev/null || fail "synth $dt"
  $SPX convert $T/syn_$dt -o $T/syn_$dt.spx >/dev/null || fail "convert $dt"
  check_file $T/syn_$dt.spx
done
# other architectures (learned positions, norm biases, split fused qkv): container + every tensor
for a in gpt2 gpt_neox opt; do
  $SPX synth -o $T/arch_$a --arch $a --seed 3 >/dev/null && $SPX convert $T/arch_$a -o $T/arch_$a.spx >/dev/null \
    || { fail "synth/convert $a"; continue; }
  $PY check $T/arch_$a.spx >$T/r.txt || fail "$a: $(cat $T/r.txt)"
  echo "  arch_$a.spx: $(cat $T/r.txt)"
done
S=$T/syn_f32.spx
$SPX prune $S -o $T/p50.spx --method magnitude --sparsity 0.5 --encoding bitmask >/dev/null || fail "prune 50%"
$SPX prune $S -o $T/p24.spx --method magnitude --nm 2:4 --encoding nm >/dev/null || fail "prune 2:4"
$SPX prune $S -o $T/p95.spx --method magnitude --sparsity 0.95 --encoding csr16 >/dev/null || fail "prune 95%"
$SPX prune $T/syn_bf16.spx -o $T/p50bf.spx --method magnitude --sparsity 0.5 --encoding csr32 >/dev/null || fail "prune bf16 csr32"
for f in p50 p24 p95 p50bf; do check_file $T/$f.spx; done
cat "$SPX_SRC"/README.md "$SPX_SRC"/specs/*.md > $T/text.txt
CAL="--text $T/text.txt --nsamples 8 --seqlen 64"
$SPX expand $S -o $T/e4.spx --clusters 4 --sparsity 0.5 $CAL >/dev/null || fail "expand"
check_file $T/e4.spx
if $SPX --help | grep -q '^  moefy'; then
  for r in moe dsti lte; do
    $SPX moefy $S -o $T/g_$r.spx --experts 4 --router $r --epochs 2 --kmeans-init 1 $CAL >/dev/null || fail "moefy $r"
    check_file $T/g_$r.spx
  done
fi

if [ -d "$SPX_SHARED/models/stories260K-hf" ]; then
  M=$SPX_SHARED/models/stories260K-hf
  DIM=$($SPX_PYTHON -c "import json; print(json.load(open('$M/config.json'))['hidden_size'])")
  make_x
  for v in "" .f16 .bf16; do
    mkdir -p $T/real$v && cp $M/config.json $M/tokenizer.json $T/real$v/ && ln -sf $M/model$v.safetensors $T/real$v/model.safetensors
    $SPX convert $T/real$v -o $T/real$v.spx >/dev/null || fail "convert stories260K$v"
    check_file $T/real$v.spx
  done
else
  echo "  (../shared absent: stories260K files not checked)"
fi
finish
