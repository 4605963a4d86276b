"""Decompressed data is streamed to bounded buffers, and one budget covers a whole file."""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from pathlib import Path

import pytest

from modelshield.core.findings import FileResult, Finding, Severity
from modelshield.scanner import context
from modelshield.scanner.memio import Spill
from tests.conftest import traced_peak
from tests.scanner.containers.conftest import rule_ids, scan
from tests.scanner.containers.zipbuild import Entry, build_zip
from tests.scanner.hostile_files import large_pickle_gzip, low_ratio_block

_MIB = 1 << 20


def test_a_spill_keeps_small_data_in_memory_and_large_data_in_a_file() -> None:
    with Spill(10) as small:
        small.write(b"abc")
        small.write(b"def")
        assert not small.spilled and small.in_memory == 6
        assert bytes(small.view()) == b"abcdef"
    with Spill(10) as large:
        large.write(b"0123456789")
        large.write(b"abc")
        assert large.spilled and large.in_memory == 0 and large.size == 13
        view = large.view()
        assert bytes(view[8:]) == b"89abc"
        large.release_pages()
        assert bytes(view[:2]) == b"01"  # read again from the file
        del view
    assert large.view is not None and large.size == 13


def test_a_slice_that_outlives_its_spill_does_not_break_closing() -> None:
    spill = Spill(0)
    spill.write(b"x" * 100)
    kept = spill.view()[10:20]
    spill.close()  # the mapping stays alive for the slice
    assert bytes(kept) == b"x" * 10


def test_a_large_gzip_is_analysed_without_holding_it_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context, "INFLATED_IN_MEMORY", _MIB)
    path = tmp_path / "big.pkl.gz"
    path.write_bytes(large_pickle_gzip(96))
    result, peak = traced_peak(lambda: scan(path))
    # The payload after 96 MiB of inflated data is found ...
    assert rule_ids(result) == ["PICKLE-CALL-DANGEROUS"]
    assert result.findings[0].location.members == ("<gzip>",)
    # ... and the inflated data never sat in memory.
    assert peak < 16 * _MIB, peak


def test_a_large_zip_member_is_analysed_without_holding_it_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context, "INFLATED_IN_MEMORY", _MIB)
    plain = gzip.decompress(large_pickle_gzip(80))
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = compressor.compress(plain) + compressor.flush()
    path = tmp_path / "big.zip"
    path.write_bytes(build_zip([Entry(b"model.pkl", raw, plain, method=8)]))
    del plain
    result, peak = traced_peak(lambda: scan(path))
    assert rule_ids(result) == ["PICKLE-CALL-DANGEROUS"]  # and no CRC mismatch
    assert peak < 16 * _MIB, peak


def test_a_deflated_member_with_a_wrong_crc_is_still_reported(tmp_path: Path) -> None:
    data = b"not a pickle, just text " * 1000
    entry = Entry.deflated("notes.txt", data, crc=zlib.crc32(data) ^ 1)
    result = scan(_write(tmp_path / "m.zip", build_zip([entry])))
    assert rule_ids(result) == ["ZIP-CRC-MISMATCH"]
    assert rule_ids(scan(_write(tmp_path / "ok.zip", build_zip([Entry.deflated("n", data)])))) == []


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _budget_findings(result: FileResult) -> list[Finding]:
    """The findings about inflation (the members hold data of no known format, which is
    reported as not analysed: SCAN-UNRECOGNISED is beside the point here)."""
    return [f for f in result.findings if f.rule_id != "SCAN-UNRECOGNISED"]


def _budget_rules(result: FileResult) -> list[str]:
    return [f.rule_id for f in _budget_findings(result)]


def test_members_of_an_archive_share_one_decompression_budget(tmp_path: Path) -> None:
    block = low_ratio_block()
    members = {f"m{i}.bin": block * 8 for i in range(3)}  # 8 MiB each
    path = _write(tmp_path / "three.zip", _zip(members))
    assert _budget_rules(scan(path, max_decompressed_bytes=30 * _MIB)) == []
    result = scan(path, max_decompressed_bytes=20 * _MIB)
    [bomb] = _budget_findings(result)
    assert bomb.rule_id == "ARCHIVE-BOMB" and bomb.severity is Severity.HIGH
    assert bomb.location.members == ("m2.bin",)
    assert "decompression budget" in bomb.message
    assert [g.rule_id for g in result.gaps if g.rule_id != "SCAN-UNRECOGNISED"] == ["ARCHIVE-BOMB"]


def test_nested_streams_share_one_decompression_budget(tmp_path: Path) -> None:
    # A gzip in a zip in a gzip: 8 MiB for a zip member, then 4 MiB for the gzip in the next.
    inner = gzip.compress(low_ratio_block() * 4, mtime=0)
    middle = _zip({"pad.bin": low_ratio_block() * 8, "inner.gz": inner})
    path = _write(tmp_path / "nested.gz", gzip.compress(middle, mtime=0))
    assert _budget_rules(scan(path, max_decompressed_bytes=13 * _MIB)) == []
    result = scan(path, max_decompressed_bytes=11 * _MIB)
    [bomb] = _budget_findings(result)
    assert bomb.rule_id == "ARCHIVE-BOMB"
    assert bomb.location.members == ("<gzip>", "inner.gz")
    assert "decompression budget" in bomb.message
