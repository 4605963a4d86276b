"""Build zip archives byte by byte, including the malformed ones real archivers never write.

Only what the hostile tests need: stored/deflated members with any flags, CRC, names and
attributes; the central directory, optionally zip64; a prefix before the archive.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass


def deflate(data: bytes) -> bytes:
    """Raw deflate, as zip's method 8 stores it."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def deflate_bomb(head: bytes, mebibytes: int) -> bytes:
    """Raw deflate of ``head`` then ``mebibytes`` MiB of zeros, built in milliseconds.

    After a full flush the compressor forgets its history, so every 1 MiB block of zeros
    compresses to the same bytes: compress one and repeat it.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return start + block * mebibytes + c.flush()


@dataclass
class Entry:
    """One member. ``payload`` is what is stored (already compressed for method 8)."""

    name: bytes
    payload: bytes
    plain: bytes | None = None
    method: int = 0
    flags: int = 0
    crc: int | None = None
    local_name: bytes | None = None
    external_attr: int = 0
    made_by: int = 20
    size: int | None = None
    local_size: int | None = None
    header_offset: int | None = None

    @classmethod
    def stored(cls, name: str, data: bytes, **kw: object) -> Entry:
        return cls(name.encode(), data, data, **kw)  # type: ignore[arg-type]

    @classmethod
    def deflated(cls, name: str, data: bytes, **kw: object) -> Entry:
        return cls(name.encode(), deflate(data), data, method=8, **kw)  # type: ignore[arg-type]


def build_zip(
    entries: list[Entry], *, prefix: bytes = b"", zip64: bool = False, skip_central: bool = False
) -> bytes:
    """Lay the entries out, then the central directory and end records."""
    out = bytearray(prefix)
    offsets = []
    for e in entries:
        plain = e.payload if e.plain is None else e.plain
        crc = zlib.crc32(plain) if e.crc is None else e.crc
        size = len(plain) if e.size is None else e.size
        local_name = e.name if e.local_name is None else e.local_name
        offsets.append(len(out) - len(prefix) if e.header_offset is None else e.header_offset)
        if e.header_offset is not None:
            continue  # shares another entry's local header and data
        lsize = size if e.local_size is None else e.local_size
        if zip64:
            extra = struct.pack("<HHQQ", 1, 16, lsize, len(e.payload))
            csize32 = usize32 = 0xFFFFFFFF
        else:
            extra, csize32, usize32 = b"", len(e.payload), lsize
        out += struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            45 if zip64 else 20,
            e.flags,
            e.method,
            0,
            0x21,
            crc,
            csize32,
            usize32,
            len(local_name),
            len(extra),
        )
        out += local_name + extra + e.payload
    cd_start = len(out) - len(prefix)
    for e, offset in zip(entries, offsets, strict=True):
        plain = e.payload if e.plain is None else e.plain
        crc = zlib.crc32(plain) if e.crc is None else e.crc
        size = len(plain) if e.size is None else e.size
        if zip64:
            extra = struct.pack("<HHQQQ", 1, 24, size, len(e.payload), offset)
            csize32 = usize32 = off32 = 0xFFFFFFFF
        else:
            extra, csize32, usize32, off32 = b"", len(e.payload), size, offset
        out += struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            e.made_by,
            20,
            e.flags,
            e.method,
            0,
            0x21,
            crc,
            csize32,
            usize32,
            len(e.name),
            len(extra),
            0,
            0,
            0,
            e.external_attr,
            off32,
        )
        out += e.name + extra
    cd_size = len(out) - len(prefix) - cd_start
    if skip_central:
        del out[len(prefix) + cd_start :]
        cd_size = 0
    n = len(entries)
    if zip64:
        eocd64 = len(out) - len(prefix)
        out += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, cd_size, cd_start)
        out += struct.pack("<4sIQI", b"PK\x06\x07", 0, eocd64, 1)
        out += struct.pack(
            "<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0
        )
    else:
        out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, cd_size, cd_start, 0)
    return bytes(out)


def _crc_byte(crc: int, b: int) -> int:
    return zlib.crc32(bytes([b]), crc ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def zipcrypto_encrypt(plain: bytes, password: bytes, crc: int) -> bytes:
    """Traditional PKWARE encryption (what `zip -e` writes): a 12-byte header, then data."""
    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(byte: int) -> None:
        keys[0] = _crc_byte(keys[0], byte)
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = _crc_byte(keys[2], keys[1] >> 24)

    def stream_byte() -> int:
        temp = (keys[2] | 2) & 0xFFFF
        return ((temp * (temp ^ 1)) >> 8) & 0xFF

    for byte in password:
        update(byte)
    header = bytes(range(11)) + bytes([crc >> 24])
    out = bytearray()
    for byte in header + plain:
        out.append(byte ^ stream_byte())
        update(byte)
    return bytes(out)
