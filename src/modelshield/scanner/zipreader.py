"""A relaxed zip reader that reads archives the way PyTorch's loader does.

Python's :mod:`zipfile` is strict where PyTorch's reader (miniz) is lenient: it refuses members
whose general-purpose flags say "encrypted", raises on a CRC mismatch and on a local header
whose name differs from the central directory's. Attackers use exactly these differences to
hide a pickle from scanners built on :mod:`zipfile` while ``torch.load`` still runs it. This
reader parses the structures itself (with :mod:`struct`, lazily, from a memoryview, so a 2 GB
checkpoint is never read whole), ignores what miniz ignores, and reports every anomaly as data
so that the caller can turn it into findings.

Nothing here raises for malformed input except :class:`ZipError` for an archive whose
directory cannot be found at all; member reads return a :class:`MemberData` that says how far
they got.
"""

from __future__ import annotations

import bz2
import lzma
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

from msgspec import Struct, field
from msgspec.structs import replace

from modelshield.scanner.memio import Spill

SIG_LOCAL = b"PK\x03\x04"
SIG_CENTRAL = b"PK\x01\x02"
SIG_END = b"PK\x05\x06"
SIG_END64 = b"PK\x06\x06"
SIG_END64_LOCATOR = b"PK\x06\x07"
SIG_DESCRIPTOR = b"PK\x07\x08"

FLAG_ENCRYPTED = 0x0001
FLAG_DESCRIPTOR = 0x0008
FLAG_PATCHED = 0x0020
FLAG_STRONG_ENCRYPTION = 0x0040
FLAG_UTF8 = 0x0800

METHOD_STORED = 0
METHOD_DEFLATED = 8
METHOD_BZIP2 = 12
METHOD_LZMA = 14
METHOD_AES = 99

#: Compression methods this reader inflates.
SUPPORTED_METHODS = frozenset({METHOD_STORED, METHOD_DEFLATED, METHOD_BZIP2, METHOD_LZMA})
METHOD_NAMES = {
    0: "stored",
    1: "shrunk",
    6: "imploded",
    8: "deflated",
    9: "deflate64",
    12: "bzip2",
    14: "lzma",
    93: "zstd",
    95: "xz",
    98: "ppmd",
    99: "aes-encrypted",
}

_END = struct.Struct("<4sHHHHIIH")
_END64 = struct.Struct("<4sQHHIIQQQQ")
_END64_LOCATOR = struct.Struct("<4sIQI")
# Unused fields are skipped with pad bytes (x): times, versions needed, disks, attributes.
_CENTRAL = struct.Struct("<4sH2xHH4xIIIHHH4xII")
_LOCAL = struct.Struct("<4s2xHH4xIIIHH")
_MAX_COMMENT = 0xFFFF
# Input goes in by 16 KiB: decoders that buffer input (bz2, lzma) are judged on what they
# were given, so a bomb is caught within max_ratio * 16 KiB of output.
_CHUNK = 1 << 14
_STEP = 1 << 20
_MIB = 1 << 20
_MAX_CANDIDATES = 64


class ZipError(Exception):
    """The buffer has no zip structure this reader can find."""


class EndRecord(Struct, frozen=True):
    """The end-of-central-directory record (zip64 values merged in)."""

    offset: int
    """Where the record starts in the buffer."""
    cd_offset: int
    """Central directory offset as recorded."""
    cd_size: int
    """Central directory size as recorded."""
    entries: int
    """Entry count as recorded."""
    base: int
    """Bytes before the archive proper (a prefix); recorded offsets are shifted by it."""
    zip64: bool
    """Whether zip64 records were used."""
    exact: bool
    """Whether the record and its comment end exactly at the end of the buffer."""


class ZipEntry(Struct, frozen=True):
    """One member as the central directory (or, failing it, a local header) describes it."""

    index: int
    """Position in the directory, from 0."""
    name: str
    """The name the loader uses: the central directory's (the local header's in a fallback)."""
    raw_name: bytes
    """``name`` undecoded."""
    local_name: str | None
    """The local header's name when it differs from ``name``, else None."""
    flags: int
    """General-purpose bit flags (central directory)."""
    method: int
    """Compression method."""
    crc: int
    """Recorded CRC-32 of the uncompressed data."""
    compressed_size: int
    """Recorded compressed size."""
    size: int
    """Recorded uncompressed size."""
    header_offset: int
    """Absolute offset of the local header in the buffer."""
    data_offset: int | None
    """Absolute offset of the member's data, or None when the local header is missing."""
    external_attr: int
    """External attributes (unix mode in the high 16 bits when made on unix)."""
    create_system: int
    """The ``version made by`` host (3 = unix)."""
    local_mismatch: tuple[str, ...] = ()
    """Fields whose local-header value disagrees with the central directory."""

    @property
    def is_dir(self) -> bool:
        """A directory entry (name ends with a slash and holds nothing)."""
        return self.name.endswith("/") and self.size == 0

    @property
    def unix_mode(self) -> int:
        """The unix mode bits, or 0 when the entry was not made on unix."""
        return (self.external_attr >> 16) & 0xFFFF if self.create_system == 3 else 0

    @property
    def is_symlink(self) -> bool:
        """Made on unix with a symbolic-link file type."""
        return (self.unix_mode & 0o170000) == 0o120000

    @property
    def encryption_flagged(self) -> bool:
        """Whether a general-purpose flag claims encryption or patched data."""
        return bool(self.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_PATCHED))


class ZipDirectory(Struct, frozen=True):
    """Every entry of an archive, with the structural anomalies met while reading them."""

    entries: tuple[ZipEntry, ...]
    """Entries in directory order."""
    end: EndRecord | None
    """The end record, or None when the entries came from walking local headers."""
    problems: tuple[str, ...] = ()
    """Structural anomalies, for a person."""
    truncated: bool = False
    """True when more entries exist than the caller allowed."""

    @property
    def base(self) -> int:
        """Bytes before the archive proper."""
        return self.end.base if self.end is not None else 0


class MemberData(Struct):
    """The result of reading one member (bounded)."""

    data: bytes | bytearray | memoryview = b""
    """What was read or inflated (possibly partial); inflated data is a view of the
    :class:`Spill` the caller passed, valid until the caller closes it."""
    complete: bool = True
    """False when reading stopped early (limit, ratio, error, truncation)."""
    error: str | None = None
    """Why the member could not be read fully."""
    bomb: str | None = None
    """Set when the size or ratio limit stopped inflation."""
    crc_ok: bool | None = None
    """CRC-32 check of the complete data, or None when not checked."""
    consumed: int = 0
    """Compressed bytes consumed."""
    crc: int | None = None
    """CRC-32 of inflated data, computed while inflating."""
    produced: int = 0
    """Bytes inflated by this read."""
    notes: list[str] = field(default_factory=list)
    """Anything else worth reporting."""


# ---- directory ---------------------------------------------------------------------------------


def find_end_record(data: memoryview) -> EndRecord | None:
    """Locate a plausible end-of-central-directory record in the last 64 KiB of ``data``."""
    size = len(data)
    if size < _END.size:
        return None
    start = max(0, size - _END.size - _MAX_COMMENT)
    tail = bytes(data[start:])
    pos = len(tail)
    for _ in range(16):  # a few candidates at most: the signature may occur in a comment
        pos = tail.rfind(SIG_END, 0, pos)
        if pos < 0:
            return None
        record = _end_record_at(data, start + pos)
        if record is not None:
            return record
    return None


def _end_record_at(data: memoryview, offset: int) -> EndRecord | None:
    raw = bytes(data[offset : offset + _END.size])
    if len(raw) < _END.size:
        return None
    _sig, _disk, _cd_disk, _n_disk, entries, cd_size, cd_offset, comment_len = _END.unpack(raw)
    exact = offset + _END.size + comment_len == len(data)
    if offset + _END.size + comment_len > len(data):
        return None
    zip64 = False
    directory_end = offset
    if 0xFFFF in (entries,) or 0xFFFFFFFF in (cd_size, cd_offset):
        located = _zip64_end(data, offset)
        if located is not None:
            entries, cd_size, cd_offset, directory_end = located
            zip64 = True
    if entries == 0 and cd_size == 0:
        return EndRecord(offset, cd_offset, cd_size, 0, 0, zip64, exact)
    for base in (0, directory_end - cd_size - cd_offset):
        where = cd_offset + base
        if base >= 0 and 0 <= where < len(data) and bytes(data[where : where + 4]) == SIG_CENTRAL:
            return EndRecord(offset, cd_offset, cd_size, entries, base, zip64, exact)
    return None


def _zip64_end(data: memoryview, end_offset: int) -> tuple[int, int, int, int] | None:
    at = end_offset - _END64_LOCATOR.size
    if at < 0:
        return None
    sig, _disk, record_offset, _disks = _END64_LOCATOR.unpack(bytes(data[at : at + 20]))
    if sig != SIG_END64_LOCATOR:
        return None
    # The locator's offset is relative to the archive start; with a prefix it is off by the
    # prefix length, and the record sits right before the locator anyway.
    for where in (record_offset, at - _END64.size):
        raw = bytes(data[where : where + _END64.size]) if 0 <= where < len(data) else b""
        if len(raw) == _END64.size and raw[:4] == SIG_END64:
            fields = _END64.unpack(raw)
            return fields[7], fields[8], fields[9], where
    return None


def read_directory(data: memoryview, *, max_members: int) -> ZipDirectory:
    """Read the central directory; fall back to walking local headers when it is broken."""
    end = find_end_record(data)
    problems: list[str] = []
    if end is not None:
        entries, truncated, broken = _read_central(data, end, max_members)
        if not broken or entries:
            if broken:
                problems.append(broken)
            if end.entries != len(entries) and not truncated:
                problems.append(
                    f"the end record announces {end.entries} entries but the central "
                    f"directory holds {len(entries)}"
                )
            return ZipDirectory(tuple(entries), end, tuple(problems), truncated)
        problems.append(broken)
    else:
        problems.append("no end-of-central-directory record was found")
    local, truncated = _walk_local(data, max_members)
    if not local:
        raise ZipError("; ".join(problems) or "no zip entries found")
    problems.append("entries were recovered by walking the local headers")
    return ZipDirectory(tuple(local), None, tuple(problems), truncated)


def _read_central(
    data: memoryview, end: EndRecord, max_members: int
) -> tuple[list[ZipEntry], bool, str]:
    entries: list[ZipEntry] = []
    pos = end.cd_offset + end.base
    while pos + _CENTRAL.size <= len(data):
        raw = bytes(data[pos : pos + _CENTRAL.size])
        if raw[:4] != SIG_CENTRAL:
            break
        if len(entries) >= max_members:
            return entries, True, ""
        fields = _CENTRAL.unpack(raw)
        _sig, made_by, flags, method, crc, csize, usize, name_len, extra_len = fields[:9]
        comment_len, external, header_offset = fields[9:]
        var_end = pos + _CENTRAL.size + name_len + extra_len + comment_len
        if var_end > len(data):
            return entries, False, f"central directory entry {len(entries)} is truncated"
        name_raw = bytes(data[pos + _CENTRAL.size : pos + _CENTRAL.size + name_len])
        extra = bytes(
            data[pos + _CENTRAL.size + name_len : pos + _CENTRAL.size + name_len + extra_len]
        )
        usize, csize, header_offset = _apply_zip64(extra, usize, csize, header_offset)
        entry = ZipEntry(
            index=len(entries),
            name=decode_name(name_raw, flags),
            raw_name=name_raw,
            local_name=None,
            flags=flags,
            method=method,
            crc=crc,
            compressed_size=csize,
            size=usize,
            header_offset=header_offset + end.base,
            data_offset=None,
            external_attr=external,
            create_system=made_by >> 8,
        )
        entries.append(_attach_local(data, entry))
        pos = var_end
    broken = "" if entries or end.entries == 0 else "the central directory could not be read"
    return entries, False, broken


def _apply_zip64(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    for tag, body in _extra_fields(extra):
        if tag != 0x0001:
            continue
        values = [v for (v,) in struct.iter_unpack("<Q", body[: len(body) // 8 * 8])]
        if usize == 0xFFFFFFFF and values:
            usize = values.pop(0)
        if csize == 0xFFFFFFFF and values:
            csize = values.pop(0)
        if offset == 0xFFFFFFFF and values:
            offset = values.pop(0)
    return usize, csize, offset


def _extra_fields(extra: bytes) -> Iterator[tuple[int, bytes]]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        yield tag, extra[pos + 4 : pos + 4 + length]
        pos += 4 + length


class _Local(Struct, frozen=True):
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    raw_name: bytes
    data_offset: int


def _local_header(data: memoryview, at: int) -> _Local | None:
    raw = bytes(data[at : at + _LOCAL.size]) if 0 <= at < len(data) else b""
    if len(raw) < _LOCAL.size or raw[:4] != SIG_LOCAL:
        return None
    _sig, flags, method, crc, csize, usize, name_len, extra_len = _LOCAL.unpack(raw)
    name_end = at + _LOCAL.size + name_len
    name_raw = bytes(data[at + _LOCAL.size : name_end])
    usize, csize, _ = _apply_zip64(bytes(data[name_end : name_end + extra_len]), usize, csize, 0)
    return _Local(flags, method, crc, csize, usize, name_raw, name_end + extra_len)


def _attach_local(data: memoryview, entry: ZipEntry) -> ZipEntry:
    """Find the member's data through its local header, noting where the two headers differ."""
    local = _local_header(data, entry.header_offset)
    if local is None:
        return entry
    mismatch: list[str] = []
    if local.method != entry.method:
        mismatch.append("method")
    # With a data descriptor (bit 3) the local header may leave CRC and sizes as zero.
    deferred = local.flags & FLAG_DESCRIPTOR and not (local.crc or local.compressed_size)
    if not deferred:
        for name, here, there in (
            ("compressed size", local.compressed_size, entry.compressed_size),
            ("size", local.size, entry.size),
            ("crc", local.crc, entry.crc),
        ):
            if here != there:
                mismatch.append(name)
    same = local.raw_name == entry.raw_name
    return replace(
        entry,
        local_name=None if same else decode_name(local.raw_name, local.flags),
        data_offset=local.data_offset,
        local_mismatch=tuple(mismatch),
    )


def _walk_local(data: memoryview, max_members: int) -> tuple[list[ZipEntry], bool]:
    """Recover entries by reading local headers one after another from the first one."""
    entries: list[ZipEntry] = []
    pos = _find(data, SIG_LOCAL, 0)
    while pos >= 0:
        local = _local_header(data, pos)
        if local is None:
            break
        if len(entries) >= max_members:
            return entries, True
        csize = local.compressed_size
        if local.flags & FLAG_DESCRIPTOR and csize == 0:
            csize = _measure_deferred(data, local.data_offset)
        entries.append(
            ZipEntry(
                index=len(entries),
                name=decode_name(local.raw_name, local.flags),
                raw_name=local.raw_name,
                local_name=None,
                flags=local.flags,
                method=local.method,
                crc=local.crc,
                compressed_size=csize,
                size=local.size,
                header_offset=pos,
                data_offset=local.data_offset,
                external_attr=0,
                create_system=0,
            )
        )
        pos = local.data_offset + csize
        if local.flags & FLAG_DESCRIPTOR:
            pos += 16 if bytes(data[pos : pos + 4]) == SIG_DESCRIPTOR else 12
    return entries, False


def _measure_deferred(data: memoryview, start: int) -> int:
    """The compressed size of a member whose local header defers it to a data descriptor.

    Found by searching, never by inflating (which a bomb would make endless), and only up to
    the next header signature: the first descriptor signature whose recorded compressed size
    matches its distance from the start, else the distance to that next header.
    """
    # Each search stops at the previous hit, so walking a whole archive stays linear.
    limit = len(data)
    for sig in (SIG_LOCAL, SIG_CENTRAL):
        found = _find(data, sig, start, limit)
        limit = found if found >= 0 else limit
    pos = start
    for _ in range(_MAX_CANDIDATES):
        found = _find(data, SIG_DESCRIPTOR, pos, limit)
        if found < 0:
            break
        raw = bytes(data[found + 8 : found + 12])
        if len(raw) == 4 and struct.unpack("<I", raw)[0] == found - start:
            return found - start
        pos = found + 1
    return limit - start


def _find(data: memoryview, needle: bytes, start: int, end: int | None = None) -> int:
    """``bytes.find`` over ``data[start:end]``, chunk by chunk (never copying it whole)."""
    end = len(data) if end is None else min(end, len(data))
    pos = start
    while pos < end:
        chunk = bytes(data[pos : min(pos + _STEP + len(needle) - 1, end)])
        hit = chunk.find(needle)
        if hit >= 0:
            return pos + hit
        pos += _STEP
    return -1


def decode_name(raw: bytes, flags: int) -> str:
    """Decode a member name: UTF-8 when flagged (or valid), else code page 437 like zipfile."""
    if flags & FLAG_UTF8:
        return raw.decode("utf-8", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp437")


# ---- members -----------------------------------------------------------------------------------


def read_member(
    data: memoryview,
    entry: ZipEntry,
    *,
    max_bytes: int,
    max_ratio: int,
    ratio_min_bytes: int = 16 * _MIB,
    limit: int | None = None,
    check_crc: bool = True,
    sink: Spill | None = None,
    progress: Callable[[], None] | None = None,
) -> MemberData:
    """Read (inflating when needed) one member's data, bounded by size and ratio.

    ``limit`` reads only the first bytes (a peek). Flags are ignored for reading, as PyTorch's
    reader does; the CRC is checked (unless ``check_crc`` is False) when the whole member was
    read. Inflated data goes to ``sink`` (kept in memory up to its threshold, in a temporary
    file beyond); ``progress`` is called now and then while inflating.
    """
    if entry.data_offset is None:
        return MemberData(complete=False, error="its local header is missing")
    start = entry.data_offset
    available = max(0, len(data) - start)
    csize = entry.compressed_size
    note: list[str] = []
    if csize > available:
        note.append(f"the member claims {csize} compressed bytes but only {available} remain")
        csize = available
    raw = data[start : start + csize]
    if entry.method == METHOD_STORED:
        # Stored data is a slice of the mapped file: nothing is inflated, nothing is copied.
        want = csize if limit is None else min(csize, limit)
        result = MemberData(data=raw[:want], complete=want == csize, consumed=want)
    else:
        factory = _DECOMPRESSORS.get(entry.method)
        if factory is None:
            name = METHOD_NAMES.get(entry.method, f"method {entry.method}")
            return MemberData(
                complete=False, error=f"its compression method ({name}) is not supported"
            )
        cap = max_bytes if limit is None else min(max_bytes, limit)
        result = inflate(
            raw,
            factory(),
            max_bytes=cap,
            max_ratio=max_ratio,
            ratio_min_bytes=ratio_min_bytes,
            peek=limit is not None,
            sink=sink,
            progress=progress,
            crc=check_crc and limit is None,
        )
        if sink is not None:
            result.data = sink.view()
    result.notes.extend(note)
    if note:
        result.complete = False
    if result.complete and limit is None and check_crc:
        crc = result.crc if result.crc is not None else zlib.crc32(result.data)
        result.crc_ok = (crc & 0xFFFFFFFF) == entry.crc
    return result


class Decompressor(Protocol):
    """The streaming interface of :mod:`bz2`, :mod:`lzma` and ``lz4.frame`` decompressors."""

    @property
    def eof(self) -> bool:
        """The end-of-stream marker was reached."""

    @property
    def needs_input(self) -> bool:
        """No buffered output is left: feed more input."""

    @property
    def unused_data(self) -> bytes | None:
        """Input found after the end of the stream."""

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        """Inflate ``data`` (plus buffered input), at most ``max_length`` bytes out."""


class ZlibDecompressor:
    """A zlib/gzip/raw-deflate decompressor with the ``needs_input`` discipline of the others."""

    def __init__(self, wbits: int) -> None:
        """``wbits`` as for :func:`zlib.decompressobj` (-15 raw, 15 zlib, 31 gzip)."""
        self._inner = zlib.decompressobj(wbits)
        self._pending = b""
        # zlib may have taken all input yet hold output back when max_length stopped it
        # (a long run of a compressible block): then it needs another call, not more input.
        self._held = False

    @property
    def eof(self) -> bool:
        """The end-of-stream marker was reached."""
        return self._inner.eof

    @property
    def needs_input(self) -> bool:
        """All input given so far was consumed and no output is held back."""
        return not self._pending and not self._held

    @property
    def unused_data(self) -> bytes:
        """Input found after the end of the stream."""
        return self._inner.unused_data

    @property
    def pending(self) -> int:
        """Input bytes given but not consumed yet."""
        return len(self._pending)

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        """Inflate pending input first, then ``data``."""
        source = self._pending + data if self._pending else data
        limit = max(0, max_length)
        out = self._inner.decompress(source, limit)
        self._pending = self._inner.unconsumed_tail
        self._held = limit > 0 and len(out) >= limit and not self._inner.eof
        return out


class ZipLzmaDecompressor:
    """Zip's LZMA method: a 2-byte version, a 2-byte properties length, the properties, then
    raw LZMA1 data (what :mod:`zipfile` decodes the same way)."""

    def __init__(self) -> None:
        """Start before the properties header."""
        self._head = b""
        self._inner: lzma.LZMADecompressor | None = None

    @property
    def eof(self) -> bool:
        """The end-of-stream marker was reached."""
        return self._inner is not None and self._inner.eof

    @property
    def needs_input(self) -> bool:
        """No buffered output is left."""
        return self._inner is None or self._inner.needs_input

    @property
    def unused_data(self) -> bytes:
        """Input found after the end of the stream."""
        return self._inner.unused_data if self._inner is not None else b""

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        """Read the properties header once, then inflate."""
        if self._inner is None:
            self._head += data
            if len(self._head) < 4:
                return b""
            (props_len,) = struct.unpack_from("<H", self._head, 2)
            if len(self._head) < 4 + props_len:
                return b""
            props = self._head[4 : 4 + props_len]
            lzma_filter = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
            self._inner = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[lzma_filter])
            data = self._head[4 + props_len :]
        return self._inner.decompress(data, max_length)


_DECOMPRESSORS: dict[int, Callable[[], Decompressor]] = {
    METHOD_DEFLATED: lambda: ZlibDecompressor(-15),
    METHOD_BZIP2: bz2.BZ2Decompressor,
    METHOD_LZMA: ZipLzmaDecompressor,
}


def inflate(
    raw: memoryview | bytes,
    decompressor: Decompressor,
    *,
    max_bytes: int,
    max_ratio: int,
    ratio_min_bytes: int = 16 * _MIB,
    peek: bool = False,
    sink: Spill | None = None,
    progress: Callable[[], None] | None = None,
    crc: bool = False,
) -> MemberData:
    """Stream ``raw`` through ``decompressor`` with a hard output cap and a ratio check.

    Never inflates in one shot: input goes in 16 KiB chunks and output comes out at most 1 MiB
    at a time, so a bomb stops at the cap (or as soon as the ratio trips, past
    ``ratio_min_bytes``). Output goes to ``sink`` (a private in-memory one when None, for
    small reads): memory stays bounded by the sink's threshold whatever the cap. With ``peek``
    the cap is the wanted prefix, not a bomb. ``consumed`` counts the input used, up to the
    end of the stream; with ``crc``, ``result.crc`` is the CRC-32 of what was written.
    ``progress`` is called every 64 MiB of output or so (deadline checks).
    """
    out = sink if sink is not None else Spill(max_bytes + _STEP)
    produced = 0
    checksum = 0
    pos = 0
    result = MemberData()
    stalled = 0
    steps = 0
    try:
        while not decompressor.eof:
            chunk = b""
            if decompressor.needs_input:
                if pos >= len(raw):
                    result.complete = False
                    result.error = "the compressed data ends before its end-of-stream marker"
                    break
                chunk = bytes(raw[pos : pos + _CHUNK])
                pos += len(chunk)
            piece = decompressor.decompress(chunk, min(_STEP, max_bytes - produced + 1))
            stalled = 0 if piece or chunk else stalled + 1
            if stalled > 2:  # no input taken and no output made: a decoder that cannot progress
                raise ValueError("the decoder made no progress")
            steps += 1
            if progress is not None and not steps & 0x3F:
                progress()
            if produced + len(piece) > max_bytes:
                piece = piece[: max_bytes - produced]
                out.write(piece)
                produced += len(piece)
                result.complete = False
                if not peek:
                    result.bomb = f"it inflates to more than {max_bytes} bytes"
                break
            out.write(piece)
            if crc:
                checksum = zlib.crc32(piece, checksum)
            produced += len(piece)
            used = pos - decompressor.pending if isinstance(decompressor, ZlibDecompressor) else pos
            if not peek and produced > ratio_min_bytes and produced > max_ratio * used:
                result.complete = False
                result.bomb = (
                    f"it inflates more than {max_ratio} times ({produced} bytes from {used})"
                )
                break
    except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError, RuntimeError) as e:
        result.complete = False
        result.error = f"its compressed data is invalid ({e})"
    if sink is None:
        result.data = out.view()  # else the caller views the sink once it wrote everything
    result.crc = checksum if crc and result.complete else None
    if decompressor.eof:
        pos -= len(decompressor.unused_data or b"")  # lz4 says None for "nothing"
    result.consumed = pos
    result.produced = produced
    return result


def member_ranges(entries: tuple[ZipEntry, ...]) -> list[tuple[int, int, int]]:
    """``(start, end, index)`` of every entry's header and data, sorted by start."""
    return sorted(
        (e.header_offset, e.data_offset + e.compressed_size, e.index)
        for e in entries
        if e.data_offset is not None
    )
