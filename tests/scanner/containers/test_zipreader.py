"""The relaxed zip reader against archives written by Python's zipfile and built byte by byte."""

from __future__ import annotations

import io
import os
import pickle
import zipfile
import zlib

import pytest

from modelshield.scanner.zipreader import (
    ZipError,
    ZlibDecompressor,
    find_end_record,
    inflate,
    read_directory,
    read_member,
)
from tests.scanner.containers.zipbuild import Entry, build_zip

LIMIT = 1 << 30


def _written(compression: int, members: dict[str, bytes], **kw: object) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression, **kw) as z:  # type: ignore[arg-type]
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


MEMBERS = {
    "model/data.pkl": pickle.dumps({"a": list(range(100))}),
    "model/notes.txt": b"hello " * 1000,
    "model/empty": b"",
    "model/ünïcode.bin": os.urandom(300),
}


@pytest.mark.parametrize(
    "compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]
)
def test_reads_what_zipfile_writes(compression: int) -> None:
    data = memoryview(_written(compression, MEMBERS))
    directory = read_directory(data, max_members=100)
    assert directory.problems == ()
    assert [e.name for e in directory.entries] == list(MEMBERS)
    for entry in directory.entries:
        member = read_member(data, entry, max_bytes=LIMIT, max_ratio=1000)
        assert member.complete and member.error is None and member.bomb is None
        assert bytes(member.data) == MEMBERS[entry.name]
        assert member.crc_ok is True


def test_streamed_members_with_data_descriptors() -> None:
    # zipfile writes a data descriptor (flag bit 3) when writing to an unseekable stream.
    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            self.buf += b
            return len(b)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, payload in MEMBERS.items():
            with z.open(name, "w") as f:
                f.write(payload)
    data = memoryview(bytes(sink.buf))
    directory = read_directory(data, max_members=100)
    assert all(e.flags & 0x8 for e in directory.entries)
    assert all(not e.local_mismatch for e in directory.entries)
    got = {
        e.name: bytes(read_member(data, e, max_bytes=LIMIT, max_ratio=1000).data)
        for e in directory.entries
    }
    assert got == MEMBERS
    # Without its central directory the entries are recovered by walking local headers,
    # measuring each deflated member to find the next header.
    cd = find_end_record(data)
    assert cd is not None
    truncated = memoryview(bytes(data[: cd.cd_offset]))
    walked = read_directory(truncated, max_members=100)
    assert [e.name for e in walked.entries] == list(MEMBERS)
    assert "walking the local headers" in walked.problems[-1]
    assert (
        bytes(read_member(truncated, walked.entries[0], max_bytes=LIMIT, max_ratio=1000).data)
        == (MEMBERS["model/data.pkl"])
    )


def test_zip64_records_are_followed() -> None:
    payload = pickle.dumps(list(range(50)))
    data = memoryview(build_zip([Entry.deflated("a/data.pkl", payload)], zip64=True))
    end = find_end_record(data)
    assert end is not None and end.zip64
    (entry,) = read_directory(data, max_members=10).entries
    assert entry.size == len(payload)
    assert bytes(read_member(data, entry, max_bytes=LIMIT, max_ratio=1000).data) == payload


def test_prefix_shifts_offsets() -> None:
    archive = _written(zipfile.ZIP_DEFLATED, MEMBERS)
    data = memoryview(b"P" * 1234 + archive)
    directory = read_directory(data, max_members=100)
    assert directory.base == 1234
    first = directory.entries[0]
    assert first.header_offset == 1234
    assert (
        bytes(read_member(data, first, max_bytes=LIMIT, max_ratio=1000).data)
        == (MEMBERS["model/data.pkl"])
    )


def test_member_count_is_bounded() -> None:
    data = memoryview(build_zip([Entry.stored(f"m{i}", b"x") for i in range(50)]))
    directory = read_directory(data, max_members=10)
    assert len(directory.entries) == 10 and directory.truncated


def test_no_zip_at_all_raises_zip_error() -> None:
    with pytest.raises(ZipError):
        read_directory(memoryview(b"not a zip at all" * 10), max_members=10)


def test_peek_reads_only_the_start() -> None:
    payload = os.urandom(100_000)
    data = memoryview(build_zip([Entry.deflated("big", payload)]))
    (entry,) = read_directory(data, max_members=10).entries
    peek = read_member(data, entry, max_bytes=64, max_ratio=1000, limit=64)
    assert bytes(peek.data) == payload[:64]
    assert peek.bomb is None and peek.consumed < len(data)


def test_inflate_stops_a_bomb_early_with_bounded_memory() -> None:
    c = zlib.compressobj(9)
    kernel = b"".join(c.compress(bytes(1 << 20)) for _ in range(256)) + c.flush()  # 256 MiB
    result = inflate(
        kernel, ZlibDecompressor(15), max_bytes=LIMIT, max_ratio=1000, ratio_min_bytes=1 << 20
    )
    assert result.bomb is not None and "1000 times" in result.bomb
    assert len(result.data) <= 2 << 20  # stopped right after the first MiB

    capped = inflate(kernel, ZlibDecompressor(15), max_bytes=3 << 20, max_ratio=10**9)
    assert capped.bomb is not None and "more than 3145728 bytes" in capped.bomb
    assert len(capped.data) == 3 << 20


def test_inflate_reports_corrupt_and_truncated_streams() -> None:
    good = zlib.compress(b"x" * 10_000)
    truncated = inflate(good[:-20], ZlibDecompressor(15), max_bytes=LIMIT, max_ratio=1000)
    assert not truncated.complete and "ends before" in (truncated.error or "")
    corrupt = inflate(
        b"\x78\x9c\xff\xff\xff\xff", ZlibDecompressor(15), max_bytes=LIMIT, max_ratio=1000
    )
    assert not corrupt.complete and "invalid" in (corrupt.error or "")
