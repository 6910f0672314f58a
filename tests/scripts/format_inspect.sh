# format_inspect.sh: `spx inspect` on the golden files: text, --json, --check, exit codes.
source "$SPX_SRC/tests/lib/common.sh"
G="$SPX_SRC/tests/golden"
V="$G/valid/bitmask_f16.spx"
[ -f "$V" ] || { echo "FAIL: golden file $V is missing" >&2; exit 1; }

# --help: stdout, exit 0
expect_exit 0 "$SPX" inspect --help
grep -q "usage: spx inspect FILE" "$SPX_TMP/out.txt" || fail "--help text not on stdout"
[ -s "$SPX_TMP/err.txt" ] && fail "--help wrote to stderr"

# usage errors: exit 2
expect_exit 2 "$SPX" inspect
expect_exit 2 "$SPX" inspect --bogus "$V"
expect_exit 2 "$SPX" inspect "$V" "$V"
grep -q "Try 'spx inspect --help'" "$SPX_TMP/err.txt" || fail "usage error without hint"

# text output
expect_exit 0 "$SPX" inspect "$V"
for want in "version     1.0" "alignment   64" "general.architecture" '"test"' "bitmask" "\[4, 12\]" "0.5625"; do
  grep -q -- "$want" "$SPX_TMP/out.txt" || fail "text output lacks '$want'"
done

# --check on every valid golden file
for f in "$G"/valid/*.spx; do
  expect_exit 0 "$SPX" inspect --check "$f"
  grep -qE "^check: OK \([0-9]+ tensors, [0-9]+ bytes\)$" "$SPX_TMP/out.txt" || fail "no check line for $f"
done

# every invalid golden file: exit 1 with the expected code name in the message
while read -r file code; do
  expect_exit 1 "$SPX" inspect --check "$G/invalid/$file"
  grep -q "^spx inspect: error: .*$file.*($code)\$" "$SPX_TMP/err.txt" || fail "$file: stderr lacks ($code): $(cat "$SPX_TMP/err.txt")"
  [ -s "$SPX_TMP/out.txt" ] && fail "$file: output on stdout despite the error"
done < "$G/invalid/EXPECTED"

# data-level corruption passes a plain open and fails --check
expect_exit 0 "$SPX" inspect "$G/invalid/data_crc.spx"
expect_exit 1 "$SPX" inspect --check "$G/invalid/data_crc.spx"
expect_exit 1 "$SPX" inspect "$SPX_TMP/does-not-exist.spx"
grep -q "(SPX_E_IO)" "$SPX_TMP/err.txt" || fail "missing file not reported as SPX_E_IO"

expect_exit 0 "$SPX" inspect --json --check "$V"
cp "$SPX_TMP/out.txt" "$SPX_TMP/v.json"
if [ -n "${SPX_PYTHON:-}" ]; then
  "$SPX_PYTHON" - "$SPX_TMP/v.json" "$V" <<'EOF' || fail "JSON output does not match the file"
import json, sys, zlib
j = json.load(open(sys.argv[1]))
raw = open(sys.argv[2], "rb").read()
assert j["format"] == "spx" and j["inspect_schema"] == 1
h = j["header"]
assert h["file_size"] == len(raw) and h["major"] == 1 and h["alignment"] == 64
assert h["header_crc32"] == zlib.crc32(raw[:124])
assert h["table_crc32"] == zlib.crc32(raw[h["table_offset"]:h["table_offset"] + 192 * h["tensor_count"]])
assert h["meta_crc32"] == zlib.crc32(raw[h["meta_offset"]:h["meta_offset"] + h["meta_size"]])
m = {e["key"]: e for e in j["metadata"]}
assert m["general.architecture"] == {"key": "general.architecture", "type": "STR", "length": 4, "value": "test"}
assert m["test.rows"]["value"] == 4
t = j["tensors"][0]
assert t["name"] == "w" and t["encoding"] == "bitmask" and t["dims"] == [4, 12] and t["numel"] == 48
assert t["data_crc32"] == zlib.crc32(raw[t["data_offset"]:t["data_offset"] + t["data_size"]])
assert t["layer"] == 0 and t["expert"] is None and abs(t["density"] - t["nnz"] / 48) < 1e-12
assert j["check"] == {"ok": True, "tensors": 2, "bytes": len(raw)}
EOF
  # an independent writer built from specs/spx-format.md alone: long string, string array, float
  # array and one dense tensor; spx must accept it and abbreviate the long values
  "$SPX_PYTHON" - "$SPX_TMP/py.spx" <<'PYEOF' || fail "python writer failed"
import struct, sys, zlib
def key(k, t): return struct.pack("<H", len(k)) + k.encode() + bytes([t])
def s(v): b = v.encode(); return struct.pack("<I", len(b)) + b
toks = ["<unk>", "<s>", "</s>"] + ["tok%d" % i for i in range(17)]
ents = [key("general.architecture", 7) + s("llama"),
        key("tokenizer.ggml.scores", 8) + bytes([4]) + struct.pack("<Q", 3) + struct.pack("<3f", 0.5, -1.0, 2.0),
        key("tokenizer.ggml.tokens", 8) + bytes([7]) + struct.pack("<Q", len(toks)) + b"".join(s(t) for t in toks),
        key("tokenizer.huggingface.json", 7) + s('{"version": "1.0", "model": {"type": "BPE"}, ' + "x" * 500 + "}")]
meta = struct.pack("<I", len(ents)) + b"".join(ents)
data = struct.pack("<6f", 1, 2, 3, 4, 5, 6)                # dense F32 [2, 3] at byte 128
moff = 128 + len(data); moff += (-moff) % 8
toff = moff + len(meta); toff += (-toff) % 8
rec = b"emb.weight".ljust(96, b"\0") + bytes([0, 0, 2, 0, 0, 0]) + struct.pack("<H", 1)
rec += struct.pack("<4Q", 2, 3, 0, 0) + struct.pack("<QQQ", 128, len(data), 6)
rec += struct.pack("<III", zlib.crc32(data), 0xFFFFFFFF, 0xFFFFFFFF) + bytes(20)
size = toff + len(rec)
h = b"\x89SPX\r\n\x1a\n" + struct.pack("<HHIQQQIIQQQII", 1, 0, 128, 0, 0, size, 64, 1, toff, moff, len(meta),
                                       zlib.crc32(rec), zlib.crc32(meta)) + b"python-ref".ljust(32, b"\0") + bytes(12)
h += struct.pack("<I", zlib.crc32(h))
out = bytearray(size)
out[0:128] = h; out[128:128 + len(data)] = data; out[moff:moff + len(meta)] = meta; out[toff:] = rec
open(sys.argv[1], "wb").write(out)
PYEOF
  expect_exit 0 "$SPX" inspect --check "$SPX_TMP/py.spx"
  expect_exit 0 "$SPX" inspect "$SPX_TMP/py.spx"
  grep -q 'tokenizer.huggingface.json STR   [0-9]* bytes: "{\\"version\\"' "$SPX_TMP/out.txt" ||
    fail "long string not abbreviated: $(grep huggingface "$SPX_TMP/out.txt")"
  grep -q 'STR\[20\] "<unk>", "<s>", "</s>", "tok0",.*, \.\.\.$' "$SPX_TMP/out.txt" ||
    fail "string array not abbreviated: $(grep tokens "$SPX_TMP/out.txt")"
  grep -q 'F32\[3\] 0.5, -1, 2$' "$SPX_TMP/out.txt" || fail "float array: $(grep scores "$SPX_TMP/out.txt")"
  expect_exit 0 "$SPX" inspect --json "$SPX_TMP/py.spx"
  "$SPX_PYTHON" -c '
import json, sys
m = {e["key"]: e for e in json.load(open(sys.argv[1]))["metadata"]}
j = m["tokenizer.huggingface.json"]
assert j["truncated"] and j["length"] > 500 and len(j["preview"]) == 60 and "value" not in j, j
t = m["tokenizer.ggml.tokens"]
assert t["count"] == 20 and t["truncated"] and t["values"][:3] == ["<unk>", "<s>", "</s>"] and len(t["values"]) == 16
' "$SPX_TMP/out.txt" || fail "JSON abbreviation"
else
  echo "note: no python with NumPy; JSON and independent-writer checks skipped" >&2
fi
finish
