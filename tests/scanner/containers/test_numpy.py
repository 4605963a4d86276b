"""NumPy .npy and .npz files written by numpy, and hostile headers built byte by byte."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from modelshield.core.findings import Severity
from tests.scanner.containers.conftest import PickleCall, rule_ids, scan

PAYLOAD = (
    b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
    b"\x8c\x02id\x94\x85\x94R\x94."
)


def _npy(header: str, body: bytes, version: tuple[int, int] = (1, 0)) -> bytes:
    text = header.encode("utf-8" if version[0] == 3 else "latin-1")
    pad = b" " * (-(len(text) + 12) % 64) + b"\n"
    fmt = "<H" if version[0] == 1 else "<I"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(text + pad)) + text + pad + body


@pytest.mark.parametrize(
    "array",
    [
        np.arange(1000, dtype=np.int64),
        np.ones((3, 4), dtype=np.float32, order="F"),
        np.array(["ab", "cde"]),
        np.zeros(5, dtype=[("a", "<f4"), ("b", "<i2", (3,))]),
        np.zeros((2, 3), dtype="M8[ns]"),
        np.zeros(0, dtype=np.complex128),
    ],
    ids=["int64", "fortran-f32", "unicode", "structured", "datetime", "empty"],
)
def test_numeric_arrays_are_clean_and_not_read(
    tmp_path: Path, pickle_calls: list[PickleCall], array: np.ndarray
) -> None:
    path = tmp_path / "a.npy"
    np.save(path, array)
    result = scan(path)
    assert rule_ids(result) == []
    assert pickle_calls == []
    assert result.bytes_read <= 128 + 12  # the header only


@pytest.mark.parametrize(
    "array",
    [
        np.array([1, "a", None], dtype=object),
        np.zeros(2, dtype=[("x", "<f4"), ("obj", "O")]),
    ],
    ids=["object", "structured-with-object"],
)
def test_object_arrays_reach_the_pickle_analyzer(
    tmp_path: Path, pickle_calls: list[PickleCall], array: np.ndarray
) -> None:
    path = tmp_path / "o.npy"
    np.save(path, array, allow_pickle=True)
    result = scan(path)
    assert rule_ids(result) == []
    assert "numpy-object" in result.formats_seen
    (call,) = pickle_calls
    assert call.location.members == ("<object array>",)
    raw = path.read_bytes()
    assert raw.endswith(call.data) and call.data.startswith(b"\x80")


def test_object_array_payload_built_by_hand(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    # dns_exfiltration.npy pattern: an object array whose data is a hostile pickle.
    path = tmp_path / "evil.npy"
    path.write_bytes(_npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", PAYLOAD))
    assert rule_ids(scan(path)) == []
    assert [c.data for c in pickle_calls] == [PAYLOAD]


def test_npz_plain_and_compressed(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    arrays = {"a": np.arange(10), "b": np.array([{"k": 1}], dtype=object)}
    for saver in (np.savez, np.savez_compressed):
        path = tmp_path / "arrays.npz"
        saver(path, **arrays)
        pickle_calls.clear()
        result = scan(path)
        assert rule_ids(result) == []
        assert {"zip", "numpy", "numpy-object"} <= set(result.formats_seen)
        assert [c.location.members for c in pickle_calls] == [("b.npy", "<object array>")]


@pytest.mark.parametrize("version", [(2, 0), (3, 0)])
def test_newer_header_versions(
    tmp_path: Path, pickle_calls: list[PickleCall], version: tuple[int, int]
) -> None:
    path = tmp_path / "v.npy"
    path.write_bytes(
        _npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", PAYLOAD, version)
    )
    assert rule_ids(scan(path)) == []
    assert [c.data for c in pickle_calls] == [PAYLOAD]


def test_truncated_numeric_data_is_low(tmp_path: Path) -> None:
    path = tmp_path / "t.npy"
    path.write_bytes(
        _npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 1000), }", bytes(1024))
    )
    result = scan(path)
    assert rule_ids(result) == ["NUMPY-TRUNCATED"]
    assert result.findings[0].severity is Severity.LOW
    assert result.findings[0].evidence == {"expected_bytes": "4000000", "available_bytes": "1024"}


def test_pickle_hidden_after_numeric_data(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    path = tmp_path / "n.npy"
    path.write_bytes(
        _npy("{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", bytes(16) + PAYLOAD)
    )
    assert rule_ids(scan(path)) == []
    assert [(c.location.members, c.data) for c in pickle_calls] == [(("<trailing data>",), PAYLOAD)]


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("{'descr': __import__('os').system('id'), 'shape': (1,)}", "not a Python literal"),
        ("['descr', '|O']", "not a dict"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "not a tuple of sizes"),
        ("{'descr': '<f4', 'shape': " + "(" * 4000 + ")" * 4000 + "}", "not a Python literal"),
    ],
)
def test_invalid_headers_are_reported_and_data_sniffed(
    tmp_path: Path, pickle_calls: list[PickleCall], header: str, problem: str
) -> None:
    path = tmp_path / "bad.npy"
    path.write_bytes(_npy(header, PAYLOAD, (2, 0)))
    result = scan(path)
    assert rule_ids(result) == ["NUMPY-HEADER-INVALID"]
    assert problem in result.findings[0].message
    assert [c.data for c in pickle_calls] == [PAYLOAD]  # the data was still looked at


def test_oversized_header_is_reported(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    # numpy.load(allow_pickle=True) lifts numpy's 10,000-byte header bound.
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), 'pad': '" + "x" * 20_000 + "'}"
    path = tmp_path / "big.npy"
    path.write_bytes(_npy(header, PAYLOAD, (2, 0)))
    result = scan(path)
    assert rule_ids(result) == ["NUMPY-HEADER-INVALID"]
    assert [c.data for c in pickle_calls] == [PAYLOAD]


def test_unknown_version_and_tiny_files(tmp_path: Path) -> None:
    path = tmp_path / "v9.npy"
    path.write_bytes(b"\x93NUMPY\x09\x00" + bytes(8))
    # The bytes after the header are then analysed by content: zeros, of no known format.
    assert rule_ids(scan(path)) == ["NUMPY-HEADER-INVALID", "SCAN-UNRECOGNISED"]
    path.write_bytes(b"\x93NUMPY")
    assert rule_ids(scan(path)) == ["NUMPY-HEADER-INVALID"]


def test_corpus_numpy(corpus_dir: Path, pickle_calls: list[PickleCall]) -> None:
    base = corpus_dir / "files" / "picklescan" / "data2"
    assert rule_ids(scan(base / "int_array.npy")) == []
    assert rule_ids(scan(base / "int_arrays_compressed.npz")) == []
    assert pickle_calls == []
    result = scan(base / "dns_exfiltration.npy")
    assert "numpy-object" in result.formats_seen
    assert b"ssl" in pickle_calls[-1].data


def test_pickle_is_not_a_numpy_file(tmp_path: Path) -> None:
    path = tmp_path / "x.npy"
    path.write_bytes(pickle.dumps([1, 2]))
    assert scan(path).format == "pickle"


# ---- dtypes spelled other than '|O': what numpy.load unpickles, the scan analyses ------------


class Marker:
    """An unlisted class of this module: its import in a scanned pickle is reported, which
    proves that the pickle was analysed."""


def _object_data(shape: tuple[int, ...]) -> bytes:
    """What numpy.save writes after the header of an object array of Markers."""
    array = np.empty(shape, dtype=object)
    array.flat[:] = [Marker() for _ in range(array.size)]
    return pickle.dumps(array, protocol=3)


@pytest.mark.parametrize(
    ("descr", "shape"),
    [
        ("'object'", (1,)),
        ("'O8'", (1,)),
        ("'<O'", (1,)),
        ("'O4'", (1,)),
        ("'(2,)O'", (1, 2)),
        ("'2O'", (1, 2)),
        ("('O', (2,))", (1, 2)),
        ("'T'", (1,)),
    ],
)
def test_object_dtype_spellings_are_unpickled_by_numpy_and_analysed(
    tmp_path: Path, descr: str, shape: tuple[int, ...]
) -> None:
    path = tmp_path / "o.npy"
    header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': {shape[:1]}, }}"
    path.write_bytes(_npy(header, _object_data(shape)))
    loaded = np.load(path, allow_pickle=True)  # harmless content: Markers
    assert loaded.dtype.hasobject
    result = scan(path)
    assert "numpy-object" in result.formats_seen
    assert f"{__name__}:Marker" in result.imports


@pytest.mark.parametrize(
    "descr",
    [
        "'object'",
        "'(2,)O'",
        "'T'",
        "[('a', '<i4'), ('b', 'O', (2,))]",
        "[('a', '<i4'), ('b', '(2,)O')]",
        "'i4,O'",
    ],
)
def test_hostile_object_array_under_any_spelling_is_found(tmp_path: Path, descr: str) -> None:
    path = tmp_path / "evil.npy"
    path.write_bytes(
        _npy(f"{{'descr': {descr}, 'fortran_order': False, 'shape': (1,), }}", PAYLOAD)
    )
    assert "PICKLE-CALL-DANGEROUS" in rule_ids(scan(path))


def test_structured_and_subarray_object_arrays_written_by_numpy(tmp_path: Path) -> None:
    arrays = {
        "field": np.array([(1, Marker())], dtype=[("a", "<i4"), ("b", "O")]),
        "subarray-field": np.array(
            [(1, (Marker(), Marker()))], dtype=[("a", "<i4"), ("b", "O", (2,))]
        ),
        "subarray": np.array([[Marker(), Marker()]], dtype=("O", (2,))),
    }
    for name, array in arrays.items():
        path = tmp_path / f"{name}.npy"
        np.save(path, array, allow_pickle=True)
        assert np.load(path, allow_pickle=True).dtype.hasobject
        assert f"{__name__}:Marker" in scan(path).imports, name


def test_unnamed_object_padding_is_read_as_raw_bytes(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    # descr_to_dtype drops unnamed void fields, subarrays of objects included: numpy reads the
    # data as plain bytes and never unpickles it.
    path = tmp_path / "pad.npy"
    path.write_bytes(
        _npy("{'descr': [('', 'O', (2,))], 'fortran_order': False, 'shape': (1,), }", bytes(16))
    )
    assert not np.load(path, allow_pickle=True).dtype.hasobject
    scan(path)
    assert pickle_calls == []


def test_python2_header_with_long_integers(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    # numpy reads version 1/2 headers that Python 2 wrote ('shape': (1L,)).
    path = tmp_path / "py2.npy"
    path.write_bytes(_npy("{'descr': '|O', 'fortran_order': False, 'shape': (1L,), }", PAYLOAD))
    assert rule_ids(scan(path)) == []
    assert [(c.location.members, c.data) for c in pickle_calls] == [(("<object array>",), PAYLOAD)]
