"""safetensors: files written by the real library are clean and inert; hostile headers built byte
by byte are reported, and the reference loader agrees with every verdict."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save_file
from safetensors.torch import save_file as save_torch

from modelshield.core.findings import Severity
from tests.scanner.formats.conftest import EVIL_PICKLE, of, rules, scan, scan_bytes

F32x2 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


def build(header: Any, data: bytes = b"\0" * 8, *, raw: bytes | None = None) -> bytes:
    """A safetensors file: length, header JSON (or ``raw`` bytes), data."""
    text = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def loads(path: Path) -> bool:
    """Whether the reference loader opens the file and reads every tensor."""
    try:
        with safe_open(str(path), "pt") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
                f.get_tensor(key)
    except Exception:
        return False
    return True


# ---- real files ------------------------------------------------------------------------------


def test_files_written_by_safetensors_are_clean_and_inert(tmp_path: Path) -> None:
    numpy_file = tmp_path / "n.safetensors"
    save_file(
        {"a": np.zeros((3, 4), np.float32), "b": np.arange(10), "empty": np.zeros(0, np.float16)},
        str(numpy_file),
        metadata={"format": "np", "description": "a small test model"},
    )
    torch_file = tmp_path / "t.safetensors"
    save_torch(
        {
            "w": torch.randn(4, 4, dtype=torch.bfloat16),
            "mask": torch.ones(3, dtype=torch.bool),
            "f8": torch.zeros(5, dtype=torch.float8_e4m3fn),
            "c": torch.zeros(2, dtype=torch.complex64),
        },
        str(torch_file),
        metadata={"format": "pt"},
    )
    for path in (numpy_file, torch_file):
        assert loads(path)
        result = scan(path)
        assert result.findings == ()
        assert result.status == "complete"
        assert result.format == "safetensors"
        assert "runs nothing" in result.metadata["inert"]
        # Tensor data is never read: only the length field and the header.
        assert result.bytes_read < 1024


def test_sub_byte_dtypes_are_understood(tmp_path: Path) -> None:
    data = build({"f4": {"dtype": "F4", "shape": [4], "data_offsets": [0, 2]}}, b"\0\0")
    path = tmp_path / "f4.safetensors"
    path.write_bytes(data)
    assert loads(path)
    assert scan(path).findings == ()


# ---- hostile headers: the loader refuses, the scanner reports -----------------------------

HOSTILE_HEADERS: list[tuple[str, bytes, str]] = [
    ("length-2**63", struct.pack("<Q", 2**63) + b'{"a": 1}', "above the loader's limit"),
    ("length-past-end", struct.pack("<Q", 5000) + b'{"a": 1}', "file has only"),
    ("not-utf8", build(None, raw=b'{"\xff": 1}'), "not UTF-8"),
    ("not-json", build(None, raw=b'{"a": }'), "not JSON"),
    ("nan", build(None, raw=b'{"__metadata__": {"x": NaN}}'), "NaN"),
    ("deep", build(None, raw=b'{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}"), "too deeply"),
    ("duplicate-metadata", build(None, raw=b'{"__metadata__":{},"__metadata__":{}}'), "two"),
    ("unknown-dtype", build({"a": {**F32x2, "dtype": "Q4"}}), "unknown dtype"),
    ("negative-shape", build({"a": {**F32x2, "shape": [-2]}}), "not a list of sizes"),
    ("float-offsets", build({"a": {**F32x2, "data_offsets": [0.0, 8]}}), "not [begin, end]"),
    ("reversed-offsets", build({"a": {**F32x2, "data_offsets": [8, 0]}}), "not [begin, end]"),
    ("metadata-not-strings", build({"__metadata__": {"x": 1}, "a": F32x2}), "map of strings"),
]


@pytest.mark.parametrize(
    ("data", "problem"), [h[1:] for h in HOSTILE_HEADERS], ids=[h[0] for h in HOSTILE_HEADERS]
)
def test_invalid_headers_are_reported(tmp_path: Path, data: bytes, problem: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(data)
    assert not loads(path)
    result = scan(path)
    assert result.format == "safetensors"
    [finding] = of(result, "SAFETENSORS-HEADER-INVALID")
    assert problem in finding.evidence["problem"]
    assert "inert" not in result.metadata


def test_duplicate_tensor_names_are_reported_though_the_loader_keeps_the_last(
    tmp_path: Path,
) -> None:
    one = {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}
    two = {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}
    raw = b'{"a": ' + json.dumps(one).encode() + b', "a": ' + json.dumps(two).encode() + b"}"
    path = tmp_path / "dup.safetensors"
    path.write_bytes(build(None, b"\1\2", raw=raw))
    assert loads(path)  # the reference loader keeps the last entry
    [finding] = of(scan(path), "SAFETENSORS-HEADER-INVALID")
    assert "twice" in finding.evidence["problem"]


LAYOUTS: list[tuple[str, Any, bytes, str]] = [
    ("out-of-bounds", {"a": {**F32x2, "data_offsets": [0, 8]}}, b"\0" * 4, "ends at byte 8"),
    ("size-mismatch", {"a": {**F32x2, "data_offsets": [0, 4]}}, b"\0" * 4, "needs 8"),
    ("overlap", {"a": F32x2, "b": F32x2}, b"\0" * 8, "overlaps"),
    ("gap", {"a": {**F32x2, "data_offsets": [4, 12]}}, b"\0" * 12, "gap before"),
    ("trailing", {"a": F32x2}, b"\0" * 12, "after the last tensor"),
    ("half-byte", {"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, b"\0\0", "whole"),
]


@pytest.mark.parametrize(
    ("header", "data", "problem"), [x[1:] for x in LAYOUTS], ids=[x[0] for x in LAYOUTS]
)
def test_tensors_that_do_not_tile_the_buffer_are_reported(
    tmp_path: Path, header: Any, data: bytes, problem: str
) -> None:
    path = tmp_path / "layout.safetensors"
    path.write_bytes(build(header, data))
    assert not loads(path)
    result = scan(path)
    found = of(result, "SAFETENSORS-LAYOUT-INVALID")
    assert any(problem in f.evidence["problem"] for f in found), found
    assert "inert" not in result.metadata


def test_a_pickle_hidden_after_the_tensors_is_analysed(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, build({"a": F32x2}, b"\0" * 8 + EVIL_PICKLE))
    assert "SAFETENSORS-LAYOUT-INVALID" in rules(result)
    [call] = of(result, "PICKLE-CALL-DANGEROUS")
    assert call.location.members == ("<data after the last tensor>",)


def test_a_pickle_hidden_in_a_gap_is_analysed(tmp_path: Path) -> None:
    header = {"a": {**F32x2, "data_offsets": [len(EVIL_PICKLE), len(EVIL_PICKLE) + 8]}}
    result = scan_bytes(tmp_path, build(header, EVIL_PICKLE + b"\0" * 8))
    assert of(result, "PICKLE-CALL-DANGEROUS")


# ---- metadata --------------------------------------------------------------------------------


def test_metadata_strings_are_analysed(tmp_path: Path) -> None:
    metadata = {
        "init": "import subprocess; subprocess.call(['id'])",
        "state": base64.b64encode(EVIL_PICKLE).decode(),
        "license": "apache-2.0",
    }
    path = tmp_path / "m.safetensors"
    save_file({"a": np.zeros(2, np.float32)}, str(path), metadata=metadata)
    result = scan(path)
    assert {"METADATA-CODE", "METADATA-EMBEDDED-PICKLE", "PICKLE-CALL-DANGEROUS"} <= rules(result)
    assert "inert" in result.metadata  # the tensors are still only numbers


def test_json_configuration_in_metadata_is_a_document(tmp_path: Path) -> None:
    config = json.dumps({"chat_template": "{{ cycler.__init__.__globals__.os.popen('id') }}"})
    path = tmp_path / "c.safetensors"
    save_file({"a": np.zeros(2, np.float32)}, str(path), metadata={"config": config})
    result = scan(path)
    [finding] = of(result, "TEMPLATE-SANDBOX-ESCAPE")
    assert finding.severity is Severity.CRITICAL
    assert finding.location.members == ("<metadata config>",)


def test_large_metadata_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "big.safetensors"
    save_file({"a": np.zeros(2, np.float32)}, str(path), metadata={"blob": "x" * (2 << 20)})
    assert loads(path)
    assert rules(scan(path)) == {"SAFETENSORS-LARGE-METADATA"}


def test_detection_follows_the_loader(tmp_path: Path) -> None:
    # The loader accepts whitespace before the JSON object: so does detection.
    spaced = tmp_path / "spaced"
    spaced.write_bytes(build(None, raw=b"  \n" + json.dumps({"a": F32x2}).encode()))
    assert loads(spaced)
    assert scan(spaced).format == "safetensors"
    # A header length of 2**40 (no text bytes) is safetensors with an impossible header.
    huge = scan_bytes(tmp_path, struct.pack("<Q", 2**40) + b'{"a": 1}')
    assert huge.format == "safetensors"
    assert rules(huge) == {"SAFETENSORS-HEADER-INVALID"}
    # Eight characters of text and then a JSON object is a text file.
    text = scan_bytes(tmp_path, b'version {"a": 1}')
    assert text.format != "safetensors"


def test_headers_above_the_member_limit_are_not_parsed(tmp_path: Path) -> None:
    header = {f"t{i}": {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(20)}
    result = scan_bytes(tmp_path, build(header, b"\0" * 20), max_members=10)
    assert rules(result) == {"SCAN-LIMIT"}
    assert result.status == "incomplete"


def test_headers_with_too_many_values_are_not_parsed(tmp_path: Path) -> None:
    header = {"__metadata__": {f"k{i}": "v" for i in range(100)}, "a": F32x2}
    result = scan_bytes(tmp_path, build(header), max_document_values=50)
    assert rules(result) == {"SCAN-LIMIT"}
