#!/usr/bin/env python3
"""spx_meta_edit.py: change one numeric metadata value of a .spx file in place (tests only).

  spx_meta_edit.py FILE.spx KEY [INDEX] --add X

adds X to the scalar KEY, or to element INDEX of the ARR KEY (U32/I32/U64/I64/F32/F64 values),
then rewrites the metadata CRC and the header CRC, so that the file stays valid and only the value
differs (e.g. a flipped expectation of an embedded probe). Standard library only: the metadata
layout is read from specs/spx-format.md (u32 count; entries of u16 key_len, key, u8 type, value;
ARR = u8 elem type, u64 count, elements). Exit 0 on success, 1 with a message otherwise.
"""
import struct
import sys
import zlib

SCALAR = {0: "<I", 1: "<i", 2: "<Q", 3: "<q", 4: "<f", 5: "<d", 6: "<B"}


def skip_value(buf, p, typ):
    if typ in SCALAR:
        return p + struct.calcsize(SCALAR[typ])
    if typ == 7:  # STR
        n, = struct.unpack_from("<I", buf, p)
        return p + 4 + n
    if typ == 8:  # ARR
        et = buf[p]
        cnt, = struct.unpack_from("<Q", buf, p + 1)
        p += 9
        if et == 7:
            for _ in range(cnt):
                n, = struct.unpack_from("<I", buf, p)
                p += 4 + n
            return p
        return p + cnt * struct.calcsize(SCALAR[et])
    raise SystemExit(f"unknown metadata type {typ}")


def main():
    args = sys.argv[1:]
    if len(args) < 4 or args[-2] != "--add":
        print(__doc__, file=sys.stderr)
        return 1
    path, key, delta = args[0], args[1].encode(), float(args[-1])
    index = int(args[2]) if len(args) == 5 else None
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    meta_off, meta_size = struct.unpack_from("<QQ", buf, 56)
    count, = struct.unpack_from("<I", buf, meta_off)
    p = meta_off + 4
    for _ in range(count):
        kl, = struct.unpack_from("<H", buf, p)
        k = bytes(buf[p + 2:p + 2 + kl])
        typ = buf[p + 2 + kl]
        v = p + 3 + kl
        if k == key:
            if typ == 8:
                et = buf[v]
                cnt, = struct.unpack_from("<Q", buf, v + 1)
                if index is None or not 0 <= index < cnt or et not in SCALAR:
                    print(f"{key.decode()}: bad index {index} (count {cnt}, elem type {et})", file=sys.stderr)
                    return 1
                fmt, at = SCALAR[et], v + 9 + index * struct.calcsize(SCALAR[et])
            else:
                fmt, at = SCALAR[typ], v
            old, = struct.unpack_from(fmt, buf, at)
            new = old + delta if fmt in ("<f", "<d") else int(old + delta)
            struct.pack_into(fmt, buf, at, new)
            struct.pack_into("<I", buf, 76, zlib.crc32(bytes(buf[meta_off:meta_off + meta_size])))
            struct.pack_into("<I", buf, 124, zlib.crc32(bytes(buf[0:124])))
            with open(path, "wb") as f:
                f.write(buf)
            print(f"{key.decode()}: {old} -> {new}")
            return 0
        p = skip_value(buf, v, typ)
    print(f"{path}: no metadata key {key.decode()}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
