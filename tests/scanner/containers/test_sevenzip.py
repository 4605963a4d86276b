"""7z archives written by py7zr (the optional ``archives`` extra), and without it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelshield.core.findings import Severity
from tests.scanner.containers.conftest import PickleCall, rule_ids, scan

py7zr = pytest.importorskip("py7zr")

PAYLOAD = (
    b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
    b"\x8c\x02id\x94\x85\x94R\x94."
)


def _7z(path: Path, members: dict[str, bytes], password: str | None = None) -> Path:
    with py7zr.SevenZipFile(path, "w", password=password) as z:
        for name, data in members.items():
            z.writestr(data, name)
    return path


def test_members_are_analysed_by_content(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    path = _7z(tmp_path / "m.7z", {"archive/data.txt": PAYLOAD, "readme.md": b"# model\n"})
    result = scan(path)
    assert result.format == "7z"
    assert rule_ids(result) == []
    assert [(c.location.members, c.data) for c in pickle_calls] == [
        (("archive/data.txt",), PAYLOAD)
    ]


def test_nested_zip_inside_7z(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", PAYLOAD)
    path = _7z(tmp_path / "m.7z", {"model.pt": buf.getvalue()})
    assert rule_ids(scan(path)) == []
    assert [c.location.members for c in pickle_calls] == [("model.pt", "archive/data.pkl")]


def test_password_protected_7z_is_medium(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    path = _7z(tmp_path / "p.7z", {"data.pkl": PAYLOAD}, password="secret")
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-ENCRYPTED-MEMBER"]
    assert result.max_severity is Severity.MEDIUM
    assert pickle_calls == []


def test_member_limit(tmp_path: Path) -> None:
    path = _7z(tmp_path / "many.7z", {f"f{i}": b"x" for i in range(20)})
    result = scan(path, max_members=5)
    assert rule_ids(result) == ["SCAN-LIMIT"]
    assert result.findings[0].evidence == {"limit": "max_members"}


def test_declared_bomb_is_not_extracted(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    path = _7z(tmp_path / "bomb.7z", {"zeros.bin": bytes(32 << 20)})
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-BOMB"]
    small_limit = scan(
        _7z(tmp_path / "b2.7z", {"r.bin": bytes(range(256)) * 8192}), max_decompressed_bytes=1 << 20
    )
    assert rule_ids(small_limit) == ["ARCHIVE-BOMB"]


def test_corrupt_7z_is_malformed_not_a_crash(tmp_path: Path) -> None:
    data = _7z(tmp_path / "ok.7z", {"data.pkl": PAYLOAD * 50}).read_bytes()
    path = tmp_path / "bad.7z"
    path.write_bytes(data[:40] + bytes(len(data) - 40))
    assert rule_ids(scan(path)) == ["ARCHIVE-MALFORMED"]


def test_without_py7zr_it_is_unsupported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _7z(tmp_path / "m.7z", {"data.pkl": PAYLOAD})
    monkeypatch.setitem(sys.modules, "py7zr", None)
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-UNSUPPORTED"]
    assert "pip install 'modelshield[archives]'" in result.findings[0].message


def test_corpus_7z(corpus_dir: Path, pickle_calls: list[PickleCall]) -> None:
    result = scan(corpus_dir / "files" / "picklescan" / "data" / "malicious1.7z")
    assert rule_ids(result) == []
    assert [c.location.members for c in pickle_calls] == [("data.pkl",)]
    assert b"eval" in pickle_calls[0].data


def test_traversal_name_is_reported_and_the_rest_analysed(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    import struct
    import zlib

    # py7zr refuses to write such a name: write a same-length one in a plain (unencoded)
    # header, patch it, and fix the two header CRCs.
    path = tmp_path / "t.7z"
    with py7zr.SevenZipFile(path, "w") as z:
        z.set_encoded_header_mode(False)
        z.writestr(PAYLOAD, "ab/cd/evil.pkl")
        z.writestr(PAYLOAD, "ok.pkl")
    data = bytearray(path.read_bytes())
    at = data.find("ab/cd/evil.pkl".encode("utf-16-le"))
    data[at : at + 28] = "../../evil.pkl".encode("utf-16-le")
    offset, size = struct.unpack_from("<QQ", data, 12)
    struct.pack_into("<I", data, 28, zlib.crc32(data[32 + offset : 32 + offset + size]))
    struct.pack_into("<I", data, 8, zlib.crc32(data[12:32]))
    path.write_bytes(bytes(data))
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-PATH-TRAVERSAL"]
    assert result.findings[0].location.members == ("../../evil.pkl",)
    assert [c.location.members for c in pickle_calls] == [("ok.pkl",)]
