"""Compressed streams: joblib's compressed pickles, plain codecs, bombs and broken streams."""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import lzma
import os
import pickle
import sys
import tracemalloc
import zlib
from pathlib import Path

import pytest

from modelshield.core.findings import Severity
from tests.scanner.containers.conftest import PickleCall, rule_ids, scan
from tests.scanner.containers.zipbuild import deflate_bomb

PAYLOAD = (
    b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
    b"\x8c\x02id\x94\x85\x94R\x94."
)

CODECS = {
    "gzip": gzip.compress,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
    "zlib": zlib.compress,
}


@pytest.fixture(scope="module")
def fitted_model() -> object:
    sklearn = pytest.importorskip("sklearn.linear_model")
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    return sklearn.LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))


@pytest.mark.parametrize("method", ["zlib", "gzip", "bz2", "lzma", "xz", "lz4"])
def test_joblib_compressed_models(
    tmp_path: Path, pickle_calls: list[PickleCall], fitted_model: object, method: str
) -> None:
    joblib = pytest.importorskip("joblib")
    if method == "lz4" and importlib.util.find_spec("lz4") is None:
        pytest.skip("lz4 not installed")
    path = tmp_path / "model.joblib"
    joblib.dump(fitted_model, path, compress=(method, 3))
    result = scan(path)
    assert rule_ids(result) == []
    codec = {"bz2": "bzip2"}.get(method, method)
    assert result.formats_seen[:2] == (codec, "pickle")
    (call,) = pickle_calls
    assert call.location.members == (f"<{codec}>",)
    assert b"sklearn.linear_model" in call.data


def test_joblib_uncompressed_is_a_pickle(tmp_path: Path, fitted_model: object) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "model.joblib"
    joblib.dump(fitted_model, path)
    assert scan(path).format == "pickle"


def test_joblib_old_zfile_format(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    # joblib < 0.10 wrote "ZF", the length in hex padded to 19 characters, then zlib data.
    path = tmp_path / "old.pkl"
    path.write_bytes(b"ZF" + f"{len(PAYLOAD):#x}".ljust(19).encode() + zlib.compress(PAYLOAD))
    result = scan(path)
    assert result.format == "joblib-zfile"
    assert [c.data for c in pickle_calls] == [PAYLOAD]


@pytest.mark.parametrize("codec", list(CODECS))
def test_each_codec_around_a_pickle(
    tmp_path: Path, pickle_calls: list[PickleCall], codec: str
) -> None:
    path = tmp_path / "p.stream"
    path.write_bytes(CODECS[codec](PAYLOAD))
    result = scan(path)
    assert result.format == codec
    assert rule_ids(result) == []
    assert [(c.location.members, c.data) for c in pickle_calls] == [((f"<{codec}>",), PAYLOAD)]
    assert result.bytes_read == path.stat().st_size + len(PAYLOAD)


@pytest.mark.parametrize("codec", ["gzip", "bzip2", "xz"])
def test_payload_in_a_second_stream_is_not_missed(
    tmp_path: Path, pickle_calls: list[PickleCall], codec: str
) -> None:
    # gzip.open, bz2.open and lzma.open read concatenated streams as one.
    benign = pickle.dumps([1, 2, 3])
    path = tmp_path / "two.stream"
    path.write_bytes(CODECS[codec](benign) + CODECS[codec](PAYLOAD))
    assert rule_ids(scan(path)) == []
    assert [c.data for c in pickle_calls] == [benign + PAYLOAD]


def test_gzip_bomb_of_a_gibibyte_stays_bounded(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    raw = deflate_bomb(PAYLOAD, 1024)
    size = (1 << 30) + len(PAYLOAD)
    member = (
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + raw + zlib.crc32(b"").to_bytes(4, "little")
    )
    member += (size & 0xFFFFFFFF).to_bytes(4, "little")
    path = tmp_path / "bomb.pkl.gz"
    path.write_bytes(member)
    tracemalloc.start()
    try:
        result = scan(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rule_ids(result) == ["ARCHIVE-BOMB"]
    assert result.findings[0].severity is Severity.HIGH
    assert peak < 64 << 20
    (call,) = pickle_calls
    assert call.data.startswith(PAYLOAD) and len(call.data) < 32 << 20


def test_many_small_streams_cannot_dodge_the_ratio(tmp_path: Path) -> None:
    # Each bzip2 stream inflates 900 KiB from ~50 bytes: under the 1 MiB floor on its own.
    one = bz2.compress(bytes(900 << 10), 9)
    path = tmp_path / "split.bz2"
    path.write_bytes(one * 40)
    result = scan(path)
    # What was inflated (zeros) is data of no known format: not analysed either.
    assert rule_ids(result) == ["ARCHIVE-BOMB", "SCAN-UNRECOGNISED"]


def test_size_cap_on_streams(tmp_path: Path) -> None:
    path = tmp_path / "big.xz"
    path.write_bytes(lzma.compress(bytes(range(256)) * 20_000))  # 5 MB, low ratio
    result = scan(path, max_decompressed_bytes=1 << 20)
    assert rule_ids(result) == ["ARCHIVE-BOMB", "SCAN-UNRECOGNISED"]
    assert result.findings[0].evidence["inflated"] == str(1 << 20)


def test_truncated_stream_is_malformed_and_partly_analysed(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    data = gzip.compress(PAYLOAD + os.urandom(10_000))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-MALFORMED"]
    assert pickle_calls and pickle_calls[0].data.startswith(PAYLOAD)


def test_zstd_without_its_package_is_unsupported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)
    path = tmp_path / "x.zst"
    path.write_bytes(b"\x28\xb5\x2f\xfd\x20\x05\x29\x00\x00hello")
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-UNSUPPORTED"]
    assert "pip install zstandard" in result.findings[0].message


def test_lz4_without_its_package_is_unsupported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "lz4.frame", None)
    monkeypatch.setitem(sys.modules, "lz4", None)
    path = tmp_path / "x.lz4"
    path.write_bytes(b"\x04\x22\x4d\x18" + bytes(12))
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-UNSUPPORTED"]
    assert "modelshield[archives]" in result.findings[0].message


def test_zstd_stream_when_installed(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    zstandard = pytest.importorskip("zstandard")
    path = tmp_path / "x.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(PAYLOAD))
    assert rule_ids(scan(path)) == []
    assert [c.data for c in pickle_calls] == [PAYLOAD]


def test_zstd_bomb_when_installed(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    zstandard = pytest.importorskip("zstandard")
    c = zstandard.ZstdCompressor().compressobj()
    data = c.compress(PAYLOAD) + b"".join(c.compress(bytes(1 << 20)) for _ in range(512))
    path = tmp_path / "bomb.zst"
    path.write_bytes(data + c.flush())
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-BOMB"]
    assert int(result.findings[0].evidence["inflated"]) < 64 << 20


def test_compressed_npz_of_zeros_is_not_a_bomb(tmp_path: Path) -> None:
    # A real model can hold a large all-zero buffer (fresh optimizer state); deflate inflates
    # it about 1,000 times, which must not read as a bomb below ratio_check_min_bytes.
    import numpy as np

    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, momentum=np.zeros((2 << 20) // 8 * 4, dtype=np.float64))
    assert rule_ids(scan(path)) == []
