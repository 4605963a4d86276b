"""Content no reader recognises: read as a pickle from byte 0, reported under a loader's name.

Every loader that falls back to pickle starts at byte 0, so any unrecognised buffer (a file,
an archive member, an inflated stream) is followed the way an unpickler reads it, and what it
would run before failing is reported. Ordinary files must stay quiet: prose that happens to
read as opcodes imports nothing that exists. A file of unknown content under a name a model
loader opens fails closed (``SCAN-UNRECOGNISED``).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from modelshield.core.findings import FileResult, Severity
from modelshield.core.policy import ExitCode, Policy
from modelshield.scanner.engine import scan as scan_and_apply
from modelshield.scanner.registry import EXECUTABLE_EXTENSIONS
from tests.conftest import CORPUS, corpus_rows
from tests.scanner.containers.conftest import rule_ids, scan

#: Bytes no detector claims and no unpickler reads past byte 0 (0x01 is no opcode).
OPAQUE = bytes(range(1, 256)) * 8


def _png() -> bytes:
    """A real 2x2 RGB PNG image, written by hand."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    pixels = zlib.compress(b"\x00" + bytes(6) + b"\x00" + bytes(6))
    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows([["name", "value"], *[[f"row{i}", i * 0.5] for i in range(50)]])
    return out.getvalue().encode()


ORDINARY = {
    "LICENSE": b"MIT License\n\nCopyright (c) 2024 The Authors\n\nPermission is hereby granted",
    "README.md": b"# Model card\n\nThis model classifies cats and dogs.\n\n## Usage\n",
    "config.json": json.dumps({"architectures": ["Bert"], "hidden_size": 768}).encode(),
    "data.csv": _csv(),
    "picture.png": _png(),
    "vocab.txt": b"[PAD]\n[UNK]\ncat\ndog\nclass\nconfig\n",
    "words.txt": b"cat\ndog\nNone of these\nmore words\n",  # reads as GLOBAL cat.dog, NONE...
    "requirements.txt": b"cython\nnumpy\ntorch\n",  # GLOBAL cython.numpy, then TUPLE fails
    "CMakeLists.txt": b"cmake_minimum_required(VERSION 3.1)\nproject(foo)\n",
    "script.py": b"import os\nprint(os.getcwd())\n",
    "notes.txt": b"ios\nsystem\n",  # INST without a MARK fails before the import (C)
}


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_files_stay_quiet(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(ORDINARY[name])
    assert scan(path).findings == ()


@pytest.mark.parametrize("ext", sorted(EXECUTABLE_EXTENSIONS))
def test_unknown_content_under_a_loaders_name_is_not_analysed(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"model{ext}"
    path.write_bytes(OPAQUE)
    result = scan(path)
    assert "SCAN-UNRECOGNISED" in rule_ids(result)
    finding = next(f for f in result.findings if f.rule_id == "SCAN-UNRECOGNISED")
    assert finding.severity >= Severity.MEDIUM
    assert result.status == "incomplete"
    assert [g.rule_id for g in result.gaps] == ["SCAN-UNRECOGNISED"]
    assert Policy().exit_code(scan_and_apply(path, Policy())) is not ExitCode.OK
    lenient = Policy.from_mapping({"fail_on": "critical"})
    assert lenient.exit_code(scan_and_apply(path, lenient)) is ExitCode.ERROR  # not analysed


@pytest.mark.parametrize("name", ["notes.dat", "blob", "image.raw"])
def test_unknown_content_under_other_names_is_low_but_not_analysed(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(OPAQUE)
    result = scan(path)
    assert [(f.rule_id, f.severity) for f in result.findings] == [
        ("SCAN-UNRECOGNISED", Severity.LOW)
    ]
    assert result.status == "incomplete"
    lenient = Policy.from_mapping({"fail_on": "critical"})
    assert lenient.exit_code(scan_and_apply(path, lenient)) is ExitCode.ERROR


@pytest.mark.parametrize("content", [_png(), ORDINARY["LICENSE"], b"SR\x00\x04" + OPAQUE])
def test_ordinary_content_under_a_model_name_is_only_a_mismatch(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    assert rule_ids(scan(path)) == ["FORMAT-EXTENSION-MISMATCH"]


def _member_results(tmp_path: Path, archive: str, data: bytes) -> FileResult:
    path = tmp_path / archive
    path.write_bytes(data)
    return scan(path)


def test_members_are_judged_by_their_own_names(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("weights.pkl", OPAQUE)
        z.writestr("notes.dat", OPAQUE)
    result = _member_results(tmp_path, "bundle.zip", buf.getvalue())
    assert [(f.rule_id, f.severity, f.location.members) for f in result.findings] == [
        ("SCAN-UNRECOGNISED", Severity.MEDIUM, ("weights.pkl",)),
        ("SCAN-UNRECOGNISED", Severity.LOW, ("notes.dat",)),
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("sub/model.joblib")
        info.size = len(OPAQUE)
        t.addfile(info, io.BytesIO(OPAQUE))
    result = _member_results(tmp_path, "bundle.tar", buf.getvalue())
    assert rule_ids(result) == ["SCAN-UNRECOGNISED"]


def test_an_inflated_stream_goes_by_the_name_it_was_inflated_from(tmp_path: Path) -> None:
    result = _member_results(tmp_path, "model.pkl.gz", gzip.compress(OPAQUE))
    assert [(f.rule_id, f.location.members) for f in result.findings] == [
        ("SCAN-UNRECOGNISED", ("<gzip>",))
    ]
    other = _member_results(tmp_path, "notes.gz", gzip.compress(OPAQUE))
    assert [(f.rule_id, f.severity) for f in other.findings] == [
        ("SCAN-UNRECOGNISED", Severity.LOW)
    ]


# ---- the tolerant pass: what a pickle loader runs before it fails ------------------------------

DANGEROUS_IMPORT_THEN_EOF = b"cos\nsystem\n"
BROKEN_CALL = b"cbuiltins\nexec\n(X\xff\xff\xff\x7fprint(1)"  # BINUNICODE longer than the file


@pytest.mark.parametrize("stream", [DANGEROUS_IMPORT_THEN_EOF, BROKEN_CALL])
@pytest.mark.parametrize("name", ["notes.txt", "model.pkl", "weights.bin"])
def test_a_dangerous_import_before_the_first_error_is_reported(
    tmp_path: Path, stream: bytes, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(stream)
    result = scan(path)
    ids = rule_ids(result)
    assert "PICKLE-IMPORT-DANGEROUS" in ids
    assert "PICKLE-MALFORMED" in ids
    assert "SCAN-UNRECOGNISED" not in ids
    assert result.format == "pickle"
    assert result.max_severity is not None and result.max_severity >= Severity.HIGH


def test_the_tolerant_pass_reads_archive_members_too(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("docs/readme.txt", BROKEN_CALL)
    result = _member_results(tmp_path, "bundle.zip", buf.getvalue())
    assert ("PICKLE-IMPORT-DANGEROUS", ("docs/readme.txt",)) in [
        (f.rule_id, f.location.members) for f in result.findings
    ]


def test_unlisted_import_alone_is_quiet_but_with_a_call_is_reported(tmp_path: Path) -> None:
    quiet = tmp_path / "a.txt"
    quiet.write_bytes(b"cmymodule\nhelper\n\xff")
    # Binary content of no known format: not analysed (low), but no import is reported.
    assert rule_ids(scan(quiet)) == ["SCAN-UNRECOGNISED"]
    loud = tmp_path / "b.txt"
    loud.write_bytes(b"cmymodule\nhelper\n)R\xff")  # imports, then calls, then fails
    assert "PICKLE-IMPORT-UNKNOWN" in rule_ids(scan(loud))


def test_benign_corpus_files_get_nothing_new_from_the_tolerant_pass() -> None:
    rows = [r for r in corpus_rows() if r["label"] == "benign"]
    if not rows:
        pytest.skip(f"public corpus not found at {CORPUS}")
    for row in rows:
        result = scan(CORPUS / row["file"])
        ids = rule_ids(result)
        # Content of no known format is not analysed (SCAN-UNRECOGNISED, a gap), never a false
        # alarm at high or above.
        assert result.max_severity is None or result.max_severity < Severity.HIGH, row["file"]
        if "SCAN-UNRECOGNISED" in ids:
            assert result.status == "incomplete", row["file"]
        if result.format not in ("pickle", "pytorch-legacy", "pytorch-zip", "numpy", "zip"):
            assert not [f for f in result.findings if f.rule_id.startswith("PICKLE-")], row["file"]
