#!/usr/bin/env python3
"""spx_read.py: an independent .spx reader written from specs/spx-format.md alone.

Python 3 + NumPy only. It does not share code with format/ (the C reference): it exists to
show that the spec is complete enough to interoperate with.

Usage:
  spx_read.py check FILE [--no-data] [--json]
      Validate FILE as section 9 ("A compliant reader must") says, steps 1..20, decode every
      tensor to float32 and parse the metadata. Prints "OK <n tensors> <n keys>" and exits 0, or
      "ERROR SPX_E_<NAME>: message" and exits 1.
  spx_read.py mlp FILE --layer L --in X.f32 --out Y.f32 [--compare C.f32 [--tol 1e-5]]
      Recompute the MLP of block L (dense, pruned or expanded per section 12.4, gated per 12.5)
      for the rows of X.f32 (raw little-endian float32 [n, dim]: the post-ffn_norm hidden state)
      and write the result (raw float32 [n, dim]); with --compare, exit 1 unless
      max|Y - C| <= tol * max|Y|. Arithmetic is float64 except where the spec
      says fp32 (the routing inputs).
"""
import json
import struct
import sys
import zlib

import numpy as np

MAGIC = b"\x89SPX\r\n\x1a\n"
ERR = {  # section 10
    "SPX_E_BAD_MAGIC": -10, "SPX_E_BYTESWAPPED": -11, "SPX_E_VERSION": -12, "SPX_E_FEATURE": -13,
    "SPX_E_TRUNCATED": -14, "SPX_E_TRAILING": -15, "SPX_E_HEADER_CRC": -16, "SPX_E_RESERVED": -17,
    "SPX_E_ALIGN": -18, "SPX_E_TABLE": -19, "SPX_E_TABLE_CRC": -20, "SPX_E_NAME": -21,
    "SPX_E_DUP_NAME": -22, "SPX_E_DTYPE": -23, "SPX_E_ENCODING": -24, "SPX_E_DIMS": -25,
    "SPX_E_OFFSET": -26, "SPX_E_OVERLAP": -27, "SPX_E_SIZE": -28, "SPX_E_DATA_CRC": -29,
    "SPX_E_META": -30, "SPX_E_META_CRC": -31, "SPX_E_DUP_KEY": -32, "SPX_E_SPARSE": -33,
    "SPX_E_GAP": -34, "SPX_E_MISSING": -46, "SPX_E_SHAPE": -47, "SPX_E_UNSUPPORTED": -43,
}
U64_MAX = (1 << 64) - 1
DT_SIZE = {0: 4, 1: 2, 2: 2, 3: 4, 4: 1}       # section 5.1
DT_NAME = {0: "F32", 1: "F16", 2: "BF16", 3: "I32", 4: "U8"}
ENC_NAME = {0: "dense", 1: "bitmask", 2: "nm", 3: "csr16", 4: "csr32"}
HDR, REC = 128, 192


class SpxError(Exception):
    def __init__(self, code, msg):
        super().__init__("%s: %s" % (code, msg))
        self.code = code


def fail(code, path, msg):
    raise SpxError(code, "%s: %s" % (path, msg))


def align_up(v, a):
    return (v + a - 1) // a * a


def crc(b):
    return zlib.crc32(b) & 0xFFFFFFFF


def layout(enc, nnz, S, rows, cols, nm_m):
    """Section 7 sizes: (data_size, [sub-array (start, length)]). Python ints cannot overflow;
    callers compare against U64_MAX where the spec demands an overflow check."""
    B = (cols + 7) // 8
    if enc == 0:
        return nnz * S, [(0, nnz * S)]
    o1 = align_up(nnz * S, 64)
    if enc == 1:
        o2 = align_up(o1 + rows * B, 64)
        return o2 + 8 * rows, [(0, nnz * S), (o1, rows * B), (o2, 8 * rows)]
    if enc == 2:
        return o1 + rows * B, [(0, nnz * S), (o1, rows * B)]
    w = 2 if enc == 3 else 4
    o2 = align_up(o1 + w * nnz, 64)
    return o2 + 8 * (rows + 1), [(0, nnz * S), (o1, w * nnz), (o2, 8 * (rows + 1))]


def utf8_ok(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def key_ok(k):
    if not 1 <= len(k) <= 255 or k[:1] == b"." or k[-1:] == b"." or b".." in k:
        return False
    return all(c in b"abcdefghijklmnopqrstuvwxyz0123456789_." for c in k)


class Meta:
    """Section 6 parser over the metadata bytes; every length is checked against what remains."""

    def __init__(self, path, buf, base):
        self.path, self.buf, self.base, self.p = path, buf, base, 0

    def need(self, n, what):
        if n > len(self.buf) - self.p:
            fail("SPX_E_META", self.path, "metadata %s needs %d bytes, %d left (offset %d)"
                 % (what, n, len(self.buf) - self.p, self.base + self.p))

    def take(self, fmt, what):
        n = struct.calcsize(fmt)
        self.need(n, what)
        v = struct.unpack_from("<" + fmt, self.buf, self.p)[0]
        self.p += n
        return v

    def value(self, t, key):
        scal = {0: "I", 1: "i", 2: "Q", 3: "q", 4: "f", 5: "d"}
        if t in scal:
            return self.take(scal[t], key)
        if t == 6:
            v = self.take("B", key)
            if v > 1:
                fail("SPX_E_META", self.path, "key %s: BOOL value %d (offset %d)" % (key, v, self.base + self.p - 1))
            return bool(v)
        if t == 7:
            n = self.take("I", key)
            self.need(n, key + " string")
            s = bytes(self.buf[self.p:self.p + n])
            if b"\0" in s or not utf8_ok(s):
                fail("SPX_E_META", self.path, "key %s: string is not UTF-8 without NUL (offset %d)" % (key, self.base + self.p))
            self.p += n
            return s.decode("utf-8")
        fail("SPX_E_META", self.path, "key %s: unknown type %d (offset %d)" % (key, t, self.base + self.p - 1))

    def parse(self):
        count = self.take("I", "count")
        if count * 5 > len(self.buf) - 4:
            fail("SPX_E_META", self.path, "entry count %d does not fit %d bytes" % (count, len(self.buf)))
        out, prev = {}, None
        for _ in range(count):
            klen = self.take("H", "key_len")
            self.need(klen, "key")
            k = bytes(self.buf[self.p:self.p + klen])
            if not key_ok(k):
                fail("SPX_E_META", self.path, "bad key %r (offset %d)" % (k, self.base + self.p))
            if prev is not None and k == prev:
                fail("SPX_E_DUP_KEY", self.path, "duplicate key %s (offset %d)" % (k.decode(), self.base + self.p))
            if prev is not None and k < prev:
                fail("SPX_E_META", self.path, "key %s not after %s (offset %d)" % (k.decode(), prev.decode(), self.base + self.p))
            self.p += klen
            prev = k
            key = k.decode()
            t = self.take("B", key)
            if t == 8:
                et = self.take("B", key)
                n = self.take("Q", key)
                if et > 7:
                    fail("SPX_E_META", self.path, "key %s: bad array element type %d" % (key, et))
                minsz = {0: 4, 1: 4, 2: 8, 3: 8, 4: 4, 5: 8, 6: 1, 7: 4}[et]
                self.need(n * minsz, key + " array")   # before allocating
                if et in (0, 1, 2, 3, 4, 5):
                    dt = "<" + {0: "u4", 1: "i4", 2: "u8", 3: "i8", 4: "f4", 5: "f8"}[et]
                    v = np.frombuffer(self.buf, dtype=dt, count=n, offset=self.p).copy()
                    self.p += n * minsz
                else:
                    v = [self.value(et, key) for _ in range(n)]
                out[key] = v
            else:
                out[key] = self.value(t, key)
        if self.p != len(self.buf):
            fail("SPX_E_META", self.path, "%d trailing bytes in the metadata (offset %d)"
                 % (len(self.buf) - self.p, self.base + self.p))
        return out


def open_spx(path, verify_data=True):
    """Validate and return {"header", "tensors" (list of dicts, table order), "meta", "buf"}."""
    with open(path, "rb") as fh:
        buf = fh.read()
    n = len(buf)
    # 1-3 magic
    if n < 8:
        fail("SPX_E_BAD_MAGIC", path, "only %d bytes" % n)
    if buf[:8] == MAGIC[::-1]:
        fail("SPX_E_BYTESWAPPED", path, "byte-swapped magic at offset 0")
    if buf[:8] != MAGIC:
        fail("SPX_E_BAD_MAGIC", path, "bad magic at offset 0")
    if n >= 16 and buf[8] == 0 and buf[12:16] == b"\0\0\0\x80":
        fail("SPX_E_BYTESWAPPED", path, "big-endian major/header_size at offset 8")
    if n < HDR:
        fail("SPX_E_TRUNCATED", path, "%d bytes, shorter than the 128-byte header" % n)
    (major, minor, hsize, req, opt, fsize, align, tcount, toff, moff, msize, tcrc, mcrc) = \
        struct.unpack_from("<HHIQQQIIQQQII", buf, 8)
    writer = buf[80:112]
    hcrc = struct.unpack_from("<I", buf, 124)[0]
    if crc(buf[:124]) != hcrc:                                          # 5
        fail("SPX_E_HEADER_CRC", path, "header_crc32 mismatch (offset 124)")
    if major != 1:                                                      # 6
        fail("SPX_E_VERSION", path, "major %d (offset 8)" % major)
    if hsize != HDR:
        fail("SPX_E_VERSION", path, "header_size %d (offset 12)" % hsize)
    if req != 0:                                                        # 7
        fail("SPX_E_FEATURE", path, "unknown required_features 0x%x (offset 16)" % req)
    if any(buf[112:124]):                                               # 8
        fail("SPX_E_RESERVED", path, "reserved header bytes (offset 112)")
    if fsize > n:                                                       # 9
        fail("SPX_E_TRUNCATED", path, "file_size %d > length %d (offset 32)" % (fsize, n))
    if fsize < n:
        fail("SPX_E_TRAILING", path, "file_size %d < length %d (offset 32)" % (fsize, n))
    if align < 64 or align & (align - 1):                               # 10
        fail("SPX_E_ALIGN", path, "alignment %d (offset 40)" % align)
    if tcount > (1 << 24):                                              # 11
        fail("SPX_E_TABLE", path, "tensor_count %d (offset 44)" % tcount)
    if toff % 8:
        fail("SPX_E_ALIGN", path, "table_offset %d (offset 48)" % toff)
    if toff < HDR:
        fail("SPX_E_TABLE", path, "table_offset %d (offset 48)" % toff)
    tend = toff + REC * tcount
    if tend > U64_MAX:
        fail("SPX_E_TABLE", path, "table end overflows")
    if tend > fsize:
        fail("SPX_E_TRUNCATED", path, "table ends at %d past file_size %d" % (tend, fsize))
    if moff % 8:                                                        # 12
        fail("SPX_E_ALIGN", path, "meta_offset %d (offset 56)" % moff)
    if moff < HDR or not 4 <= msize <= (64 << 20) or moff + msize > toff:
        fail("SPX_E_META", path, "metadata [%d, +%d) out of range (offset 56)" % (moff, msize))
    if crc(buf[toff:tend]) != tcrc:                                     # 13
        fail("SPX_E_TABLE_CRC", path, "table_crc32 mismatch (offset 72)")
    if crc(buf[moff:moff + msize]) != mcrc:
        fail("SPX_E_META_CRC", path, "meta_crc32 mismatch (offset 76)")
    tensors = []
    prev = None
    for i in range(tcount):                                             # 14
        ro = toff + REC * i
        raw = buf[ro:ro + 96]
        z = raw.find(b"\0")
        nm = raw[:z] if z >= 0 else raw
        if (z <= 0 or any(raw[z:]) or any(c < 0x20 or c == 0x7F for c in nm) or not utf8_ok(nm)):
            fail("SPX_E_NAME", path, "record %d: bad name (offset %d)" % (i, ro))
        name = nm.decode("utf-8")
        dtype, enc, ndim, nm_n, nm_m, res1, role = struct.unpack_from("<BBBBBBH", buf, ro + 96)
        dims = struct.unpack_from("<4Q", buf, ro + 104)
        doff, dsize, nnz, dcrc, layer, expert = struct.unpack_from("<QQQIII", buf, ro + 136)
        where = "tensor %s (record %d at offset %d)" % (name, i, ro)
        if dtype not in DT_SIZE:
            fail("SPX_E_DTYPE", path, "%s: dtype %d" % (where, dtype))
        if enc not in ENC_NAME:
            fail("SPX_E_ENCODING", path, "%s: encoding %d" % (where, enc))
        if not 1 <= ndim <= 4 or any(d == 0 for d in dims[:ndim]) or any(d != 0 for d in dims[ndim:]):
            fail("SPX_E_DIMS", path, "%s: ndim %d dims %s" % (where, ndim, dims))
        S = DT_SIZE[dtype]
        numel = 1
        for d in dims[:ndim]:
            numel *= d
        if numel * S > U64_MAX:
            fail("SPX_E_DIMS", path, "%s: size overflows" % where)
        rows, cols = (dims[0], dims[1]) if ndim == 2 else (0, 0)
        if enc != 0 and (ndim != 2 or dtype > 2):
            fail("SPX_E_ENCODING", path, "%s: %s needs a 2-D float tensor" % (where, ENC_NAME[enc]))
        if enc != 2 and (nm_n or nm_m):
            fail("SPX_E_ENCODING", path, "%s: nm_n/nm_m set" % where)
        if enc == 0 and nnz != numel:
            fail("SPX_E_ENCODING", path, "%s: dense nnz %d != numel %d" % (where, nnz, numel))
        if enc in (1, 3, 4) and nnz > numel:
            fail("SPX_E_ENCODING", path, "%s: nnz %d > numel" % (where, nnz))
        if enc == 2 and (not 1 <= nm_n <= nm_m <= 32 or cols % nm_m or nnz != rows * (cols // nm_m) * nm_n):
            fail("SPX_E_ENCODING", path, "%s: bad %d:%d / nnz %d" % (where, nm_n, nm_m, nnz))
        if enc == 3 and cols > 65536:
            fail("SPX_E_ENCODING", path, "%s: csr16 with %d cols" % (where, cols))
        lsize, subs = layout(enc, nnz, S, rows, cols, nm_m)
        if lsize > U64_MAX:
            fail("SPX_E_DIMS", path, "%s: layout size overflows" % where)
        if res1 or any(buf[ro + 172:ro + 192]):
            fail("SPX_E_RESERVED", path, "%s: reserved bytes" % where)
        if doff % align:
            fail("SPX_E_ALIGN", path, "%s: data_offset %d" % (where, doff))
        if doff < HDR or (prev is not None and doff <= prev["offset"]):
            fail("SPX_E_OFFSET", path, "%s: data_offset %d not ascending" % (where, doff))
        if prev is not None and doff < prev["offset"] + prev["size"]:
            fail("SPX_E_OVERLAP", path, "%s: overlaps %s" % (where, prev["name"]))
        if dsize != lsize:
            fail("SPX_E_SIZE", path, "%s: data_size %d, layout says %d" % (where, dsize, lsize))
        if doff + dsize > moff:
            fail("SPX_E_OFFSET", path, "%s: data [%d, +%d) past meta_offset %d" % (where, doff, dsize, moff))
        prev = dict(name=name, dtype=dtype, enc=enc, ndim=ndim, nm_n=nm_n, nm_m=nm_m, role=role,
                    dims=list(dims[:ndim]), offset=doff, size=dsize, nnz=nnz, crc=dcrc, layer=layer,
                    expert=expert, subs=subs, record=ro)
        tensors.append(prev)
    names = sorted(t["name"].encode() for t in tensors)                # 15
    for a, b in zip(names, names[1:]):
        if a == b:
            fail("SPX_E_DUP_NAME", path, "two tensors named %s" % a.decode())
    meta = Meta(path, memoryview(buf)[moff:moff + msize], moff).parse()  # 16
    if tend != fsize:                                                   # 17
        fail("SPX_E_TRAILING", path, "%d bytes after the table" % (fsize - tend))
    if verify_data:
        end = HDR
        for t in tensors:
            if any(buf[end:t["offset"]]):                               # 18
                fail("SPX_E_GAP", path, "nonzero gap byte before tensor %s (offset %d)" % (t["name"], end))
            blob = buf[t["offset"]:t["offset"] + t["size"]]
            if crc(blob) != t["crc"]:                                   # 19
                fail("SPX_E_DATA_CRC", path, "tensor %s: data_crc32 mismatch (offset %d)" % (t["name"], t["record"] + 160))
            check_encoding(path, t, blob)                               # 20
            end = t["offset"] + t["size"]
        if any(buf[end:moff]):
            fail("SPX_E_GAP", path, "nonzero gap byte before the metadata (offset %d)" % end)
        if any(buf[moff + msize:toff]):
            fail("SPX_E_GAP", path, "nonzero gap byte before the table (offset %d)" % (moff + msize))
    hdr = dict(major=major, minor=minor, alignment=align, writer=writer.rstrip(b"\0").decode("ascii", "replace"),
               optional_features=opt, file_size=fsize)
    return dict(header=hdr, tensors=tensors, meta=meta, buf=buf, path=path)


def sub(blob, t, k, dt):
    off, ln = t["subs"][k]
    return np.frombuffer(blob, dtype=dt, count=ln // np.dtype(dt).itemsize, offset=off)


def mask_bits(path, t, blob, k):
    rows, cols = t["dims"]
    B = (cols + 7) // 8
    bm = sub(blob, t, k, np.uint8).reshape(rows, B)
    bits = np.unpackbits(bm, axis=1, bitorder="little")
    if bits[:, cols:].any():
        fail("SPX_E_SPARSE", path, "tensor %s: nonzero bitmask padding bits" % t["name"])
    return bits[:, :cols].astype(bool)


def check_encoding(path, t, blob):
    """Section 7 invariants and zero padding between sub-arrays."""
    subs = t["subs"]
    for (o, ln), (o2, _) in zip(subs, subs[1:]):
        if any(blob[o + ln:o2]):
            fail("SPX_E_GAP", path, "tensor %s: nonzero padding between sub-arrays (offset %d)"
                 % (t["name"], t["offset"] + o + ln))
    enc = t["enc"]
    if enc == 0:
        return
    rows, cols = t["dims"]
    nm = t["name"]
    if enc in (1, 2):
        m = mask_bits(path, t, blob, 1)
        if enc == 1:
            cnt = m.sum(axis=1, dtype=np.int64)
            ro = sub(blob, t, 2, "<i8")
            pre = np.concatenate([[0], np.cumsum(cnt)[:-1]]) if rows else cnt
            if int(cnt.sum()) != t["nnz"] or not np.array_equal(ro, pre):
                fail("SPX_E_SPARSE", path, "tensor %s: popcount/row_offsets disagree with nnz %d" % (nm, t["nnz"]))
        else:
            g = m.reshape(rows, cols // t["nm_m"], t["nm_m"]).sum(axis=2)
            if (g != t["nm_n"]).any():
                fail("SPX_E_SPARSE", path, "tensor %s: a group does not keep exactly %d of %d"
                     % (nm, t["nm_n"], t["nm_m"]))
        return
    ci = sub(blob, t, 1, "<u2" if enc == 3 else "<u4").astype(np.int64)
    rp = sub(blob, t, 2, "<u8")
    if rp[0] != 0 or rp[-1] != t["nnz"] or (np.diff(rp.astype(np.float64)) < 0).any():
        fail("SPX_E_SPARSE", path, "tensor %s: bad row_ptr" % nm)
    if (ci >= cols).any():
        fail("SPX_E_SPARSE", path, "tensor %s: column index >= %d" % (nm, cols))
    rp = rp.astype(np.int64)
    if t["nnz"] > 1:
        d = np.diff(ci)
        starts = np.zeros(t["nnz"], dtype=bool)   # position i starts a row: no ordering vs i-1
        starts[rp[:-1][rp[:-1] < t["nnz"]]] = True
        if (d[~starts[1:]] <= 0).any():
            fail("SPX_E_SPARSE", path, "tensor %s: column indices not strictly ascending in a row" % nm)


def values_f32(raw, dtype):
    if dtype == 0:
        return np.frombuffer(raw, "<f4").astype(np.float32)
    if dtype == 1:
        return np.frombuffer(raw, "<f2").astype(np.float32)
    if dtype == 2:
        return (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
    if dtype == 3:
        return np.frombuffer(raw, "<i4").astype(np.float32)
    return np.frombuffer(raw, np.uint8).astype(np.float32)


def decode(f, t):
    """Tensor t (from open_spx) as a float32 array of its dims (section 7.5: absent = +0.0)."""
    blob = f["buf"][t["offset"]:t["offset"] + t["size"]]
    o, ln = t["subs"][0]
    vals = values_f32(blob[o:o + ln], t["dtype"])
    if t["enc"] == 0:
        return vals.reshape(t["dims"])
    rows, cols = t["dims"]
    out = np.zeros((rows, cols), np.float32)
    if t["enc"] in (1, 2):
        m = mask_bits(f["path"], t, blob, 1)
        out[m] = vals      # boolean assignment walks row-major = the stored order
    else:
        ci = sub(blob, t, 1, "<u2" if t["enc"] == 3 else "<u4").astype(np.int64)
        rp = sub(blob, t, 2, "<u8").astype(np.int64)
        r = np.repeat(np.arange(rows), np.diff(rp))
        out[r, ci] = vals
    return out


# ---- MLP recomputation (sections 12, 12.4, 12.5) ----

def act(name, x):
    if name == "silu":
        return x / (1.0 + np.exp(-x))
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "gelu":
        from math import erf
        return 0.5 * x * (1.0 + np.vectorize(erf)(x / np.sqrt(2.0)))
    if name == "gelu_tanh":
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))
    raise SpxError("SPX_E_UNSUPPORTED", "activation %s" % name)


def route(T, pre, x):
    """x [n, in] float32 -> expert per row (nearest centroid, ties lowest)."""
    if pre + "mean" in T:
        y = ((x.astype(np.float64) - T[pre + "mean"]) @ T[pre + "proj"].astype(np.float64).T).astype(np.float32)
    else:
        y = x
    d = ((y.astype(np.float64)[:, None, :] - T[pre + "centroids"].astype(np.float64)[None]) ** 2).sum(axis=2)
    return np.argmin(d, axis=1)   # argmin returns the first (lowest) index on ties


def mlp(f, layer, x):
    T = {t["name"]: t for t in f["tensors"]}
    M = f["meta"]
    get = lambda n: decode(f, T[n]).astype(np.float64)  # noqa: E731
    A = M.get("spx.ffn.activation", "silu")
    gated = bool(M.get("spx.ffn.gated", True))
    p = "blk.%d." % layer
    bias = lambda n: get(n) if n in T else 0.0  # noqa: E731
    x64 = x.astype(np.float64)
    if p + "ffn_up.router.centroids" in T:
        R = {k: decode(f, T[k]) for k in T if k.startswith(p) and ".router." in k}
        e_up = route(R, p + "ffn_up.router.", x)
        h = np.zeros((x.shape[0], T[p + "ffn_up.0.weight"]["dims"][0]))
        for e in np.unique(e_up):
            r = e_up == e
            u = x64[r] @ get(p + "ffn_up.%d.weight" % e).T + bias(p + "ffn_up.%d.bias" % e)
            if gated:
                g = x64[r] @ get(p + "ffn_gate.%d.weight" % e).T + bias(p + "ffn_gate.%d.bias" % e)
                h[r] = act(A, g) * u
            else:
                h[r] = act(A, u)
        e_dn = route(R, p + "ffn_down.router.", h.astype(np.float32))
        y = np.zeros(x.shape)
        for e in np.unique(e_dn):
            r = e_dn == e
            y[r] = h[r] @ get(p + "ffn_down.%d.weight" % e).T + bias(p + "ffn_down.%d.bias" % e)
        return y, {"up": e_up.tolist(), "down": e_dn.tolist()}
    u = x64 @ get(p + "ffn_up.weight").T + bias(p + "ffn_up.bias")
    h = act(A, x64 @ get(p + "ffn_gate.weight").T + bias(p + "ffn_gate.bias")) * u if gated else act(A, u)
    info = {}
    if p + "ffn_router.w1" in T:
        sel = gate_select(f, T, M, p, x64)
        E = sel.shape[1]
        h = h * np.repeat(sel, h.shape[1] // E, axis=1)
        info["selected"] = sel.sum(axis=1).tolist()
    return h @ get(p + "ffn_down.weight").T + bias(p + "ffn_down.bias"), info


def gate_select(f, T, M, p, x):
    kind = M["spx.gate.kind"]
    E = int(M["spx.gate.experts"])
    if M.get("spx.gate.input_norm", False):
        nrm = np.sqrt((x * x).sum(axis=1, keepdims=True))
        x = np.where(nrm > 0, x / np.where(nrm > 0, nrm, 1), 0)
    g = lambda n: decode(f, T[p + n]).astype(np.float64)  # noqa: E731
    a = x @ g("ffn_router.w1").T + g("ffn_router.b1")
    if kind == "moe":
        s = np.tanh(a) @ g("ffn_router.w2").T + g("ffn_router.b2")
    elif kind == "dsti":
        s = np.abs(np.maximum(a, 0) @ g("ffn_router.w2").T + g("ffn_router.b2"))
    else:
        s = 1.0 / (1.0 + np.exp(-a))
    sel = np.zeros((x.shape[0], E))
    for i in range(x.shape[0]):
        order = sorted(range(E), key=lambda e: (-s[i, e], e))
        if kind == "moe":
            keep = order[:int(M["spx.gate.top_k"])]
        elif kind == "dsti":
            total = sum(s[i, e] for e in order)
            keep, acc = [], 0.0
            for e in order:
                keep.append(e)
                acc += s[i, e]
                if acc >= float(M["spx.gate.tau"]) * total:
                    break
        else:
            keep = [e for e in range(E) if s[i, e] >= float(M["spx.gate.threshold"])] or order[:1]
        sel[i, keep] = 1
    return sel


def main(argv):
    if len(argv) < 2 or argv[0] not in ("check", "mlp"):
        print(__doc__)
        return 2
    path = argv[1]
    try:
        if argv[0] == "check":
            f = open_spx(path, verify_data="--no-data" not in argv)
            nz = 0
            for t in f["tensors"]:
                a = decode(f, t)
                assert list(a.shape) == t["dims"]
                nz += int(np.count_nonzero(a))
            enc = sorted({"%s/%s" % (DT_NAME[t["dtype"]], ENC_NAME[t["enc"]]) for t in f["tensors"]})
            print("OK %d tensors, %d metadata keys, %d nonzeros; %s" % (len(f["tensors"]), len(f["meta"]), nz,
                                                                      " ".join(enc)))
            return 0
        opt = dict(zip(argv[2::2], argv[3::2]))
        f = open_spx(path)
        dim = int(f["meta"][f["meta"]["general.architecture"] + ".embedding_length"])
        x = np.fromfile(opt["--in"], "<f4").reshape(-1, dim)
        y, info = mlp(f, int(opt["--layer"]), x)
        y.astype("<f4").tofile(opt["--out"])
        if "--compare" in opt:   # the C runtime's output for the same rows
            c = np.fromfile(opt["--compare"], "<f4").astype(np.float64)
            if c.size != y.size:
                print("ERROR compare: %d values, want %d" % (c.size, y.size))
                return 1
            rel = np.abs(y.ravel() - c).max() / max(np.abs(y).max(), 1e-30)
            print("rel err %.3g %s" % (rel, json.dumps(info)))
            return 0 if rel <= float(opt.get("--tol", "1e-5")) else 1
        print(json.dumps(info))
        return 0
    except SpxError as e:
        print("ERROR %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
