"""Corrupted containers never crash the scanner: every byte flip gives findings, not errors."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scanner.containers.conftest import scan
from tests.scanner.containers.zipbuild import Entry, build_zip

INNER = pickle.dumps({"w": [1.0, 2.0], "n": "x" * 40}, protocol=2)


def _zip(compression: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        z.writestr("archive/data.pkl", INNER)
        z.writestr("archive/version", b"3\n")
        z.writestr("archive/data/0", bytes(64))
    return buf.getvalue()


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("a/data.pkl")
        info.size = len(INNER)
        t.addfile(info, io.BytesIO(INNER))
    return buf.getvalue()


def _npz() -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.arange(10), b=np.array([{"k": 1}], dtype=object))
    return buf.getvalue()


def _7z() -> bytes:
    py7zr = pytest.importorskip("py7zr")
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w") as z:
        z.writestr(INNER, "data.pkl")
    return buf.getvalue()


SEEDS = {
    "zip-stored": lambda: _zip(zipfile.ZIP_STORED),
    "zip-deflated": lambda: _zip(zipfile.ZIP_DEFLATED),
    "zip64": lambda: build_zip([Entry.deflated("a/data.pkl", INNER)], zip64=True),
    "tar": _tar,
    "npz": _npz,
    "gzip": lambda: gzip.compress(INNER),
    "bzip2": lambda: bz2.compress(INNER),
    "xz": lambda: lzma.compress(INNER),
    "7z": _7z,
}


def _scan_bytes(data: bytes) -> None:
    fd, name = tempfile.mkstemp()
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        scan(name)  # asserts that no internal error was recorded
    finally:
        Path(name).unlink()


def check_byte_flips(original: bytes) -> None:
    """Scan copies of ``original`` with a few bytes changed and a cut: never an error."""

    @settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", "60")),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        st.lists(st.tuples(st.integers(0, len(original) - 1), st.integers(0, 255)), max_size=6),
        st.integers(0, len(original)),
    )
    def flip(changes: list[tuple[int, int]], cut: int) -> None:
        data = bytearray(original)
        for at, value in changes:
            data[at] = value
        _scan_bytes(bytes(data[: max(cut, 1)]))

    flip()


@pytest.mark.parametrize("seed", list(SEEDS))
def test_byte_flips_never_crash(seed: str) -> None:
    check_byte_flips(SEEDS[seed]())
