"""Format detection by content: real files from real libraries, hostile and confusing prefixes."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelshield.core.findings import Severity
from modelshield.scanner.detect import (
    Format,
    detect,
    executable_kind,
    extension_mismatch,
    looks_like_pickle,
    sniff_strong,
)
from tests.scanner.containers.zipbuild import Entry, build_zip


def fmt(data: bytes) -> Format:
    return detect(memoryview(data))


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _tar(members: dict[str, bytes], fmt_: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt_) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


PAYLOAD = {"weights": [1.0, 2.0], "name": "model"}


def test_empty_buffer_is_empty() -> None:
    assert fmt(b"") is Format.EMPTY


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize(
    "obj", [PAYLOAD, [1, 2, 3], "text", ("a", b"b"), 3.5, None, {1, 2}], ids=repr
)
def test_every_protocol_pickle_is_detected(protocol: int, obj: object) -> None:
    assert fmt(pickle.dumps(obj, protocol)) is Format.PICKLE


@pytest.mark.parametrize(
    "stream",
    [
        b"cos\nsystem\n(S'id'\ntR.",  # classic protocol-0 payload
        b"cos\nsystem\n",  # truncated right after the GLOBAL
        b"cposix\nsystem\n(S'ls'\ntR\xff\xff garbage after the payload",  # nullifAI-style tail
        b"(i__builtin__\nexec\n(S'print(1)'\ntb.",  # INST first
        b"I12345\n.",  # pickle.loads payload of GHSA nested pickles
        b"N.",
    ],
)
def test_hand_written_protocol_0_pickles_are_detected(stream: bytes) -> None:
    assert fmt(stream) is Format.PICKLE


@pytest.mark.parametrize(
    "text",
    [
        b"cmod\n\xf8\n",  # not_a_pickle.bin: starts with GLOBAL's 'c' but is no pickle
        b"Notes about this model\n",
        b"(c) 2024 The Authors\nAll rights reserved.\n",
        b"Version 1.0\n2024-01-01\n",
        b"import os\nos.system('id')\n",
        b'{"architectures": ["Bert"]}',
        b"]",
        b"\x80\x06\x95",  # PROTO with an unknown protocol
    ],
)
def test_text_and_lookalikes_are_not_pickles(text: bytes) -> None:
    # A JSON document is recognised as JSON (its strings are analysed), never as a pickle.
    assert fmt(text) is (Format.JSON if text.startswith(b"{") else Format.UNKNOWN)


def test_legacy_torch_magic_is_detected() -> None:
    magic = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
    assert fmt(magic + pickle.dumps(1001, protocol=2)) is Format.TORCH_LEGACY


def test_computed_legacy_magic_is_still_a_pickle() -> None:
    # pytorch_magic_bypass.pt: the magic is produced by a call, so the literal is absent.
    stream = b"\x80\x02cbuiltins\neval\nX\x16\x00\x00\x000x1950A86A20F9469CFC6C\x85R."
    assert fmt(stream) is Format.PICKLE


def test_real_containers_and_streams(tmp_path: Path) -> None:
    inner = pickle.dumps(PAYLOAD)
    np.save(tmp_path / "a.npy", np.arange(10))
    samples = {
        Format.ZIP: _zip({"a/data.pkl": inner}),
        Format.TAR: _tar({"data.pkl": inner}),
        Format.GZIP: gzip.compress(inner),
        Format.BZIP2: bz2.compress(inner),
        Format.XZ: lzma.compress(inner),
        Format.LZMA: lzma.compress(inner, format=lzma.FORMAT_ALONE),
        Format.ZLIB: zlib.compress(inner),
        Format.NUMPY: (tmp_path / "a.npy").read_bytes(),
        Format.SAFETENSORS: struct.pack("<Q", 2) + b"{}",
        Format.GGUF: b"GGUF" + struct.pack("<I", 3) + bytes(16),
        Format.HDF5: b"\x89HDF\r\n\x1a\n" + bytes(64),
        Format.SEVENZIP: b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24),
        Format.RAR: b"Rar!\x1a\x07\x01\x00" + bytes(8),
        Format.ZSTD: b"\x28\xb5\x2f\xfd" + bytes(8),
    }
    for expected, data in samples.items():
        assert fmt(data) is expected, expected


def test_zlib_levels_all_detected() -> None:
    inner = pickle.dumps(PAYLOAD) * 50
    for level in range(10):
        assert fmt(zlib.compress(inner, level)) is Format.ZLIB, level


def test_lz4_frame_detected() -> None:
    lz4_frame = pytest.importorskip("lz4.frame")
    assert fmt(lz4_frame.compress(pickle.dumps(PAYLOAD))) is Format.LZ4


def test_v7_tar_without_magic_is_detected() -> None:
    data = _tar({"data.pkl": pickle.dumps(PAYLOAD)}, tarfile.USTAR_FORMAT)
    block = bytearray(data[:512])
    block[257:265] = bytes(8)  # drop the ustar magic and version: an old v7 header
    block[148:156] = b"        "
    block[148:156] = f"{sum(block):06o}\x00 ".encode()
    assert fmt(bytes(block) + data[512:]) is Format.TAR


def test_hdf5_with_user_block_is_detected() -> None:
    assert fmt(bytes(512) + b"\x89HDF\r\n\x1a\n" + bytes(64)) is Format.HDF5


def test_joblib_zfile_is_detected() -> None:
    inner = pickle.dumps(PAYLOAD)
    data = b"ZF" + f"{len(inner):#x}".ljust(19).encode() + zlib.compress(inner)
    assert fmt(data) is Format.JOBLIB_ZFILE


def test_zip_with_a_prefix_is_found_from_its_end() -> None:
    archive = _zip({"data.pkl": pickle.dumps(PAYLOAD)})
    assert fmt(b"#!/bin/sh\necho hello\n" + archive) is Format.ZIP
    # a polyglot starting like a pickle is opened as a zip (whose handler scans the prefix)
    assert fmt(pickle.dumps(PAYLOAD) + archive) is Format.ZIP


def test_pickle_holding_zip_bytes_stays_a_pickle() -> None:
    archive = _zip({"data.pkl": b"x" * 100})
    assert fmt(pickle.dumps({"blob": archive, "after": list(range(10))})) is Format.PICKLE


def test_zip64_end_record_is_found_with_prefix() -> None:
    archive = build_zip([Entry.stored("a/data.pkl", pickle.dumps(PAYLOAD))], zip64=True)
    assert fmt(b"JUNK" * 10 + archive) is Format.ZIP


def test_random_bytes_rarely_claim_a_format() -> None:
    rng = np.random.default_rng(1234)
    claimed = 0
    for _ in range(2000):
        data = rng.bytes(256)
        if fmt(data) is not Format.UNKNOWN:
            claimed += 1
    assert claimed <= 4  # a few hits on 1-2 byte magics (e.g. 0x80 0x02) are expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_detect_never_raises(data: bytes) -> None:
    assert isinstance(fmt(data), Format)


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x7fELF\x02\x01\x01" + bytes(57), "ELF executable"),
        (b"\xcf\xfa\xed\xfe" + bytes(60), "Mach-O executable"),
        (b"#!/bin/sh\ncurl x | sh\n", "script with an interpreter line (#!)"),
    ],
)
def test_executables_are_named(head: bytes, kind: str) -> None:
    assert executable_kind(head) == kind


def test_pe_needs_its_signature() -> None:
    pe = bytearray(b"MZ" + bytes(126))
    struct.pack_into("<I", pe, 0x3C, 64)
    pe[64:68] = b"PE\x00\x00"
    assert executable_kind(bytes(pe)) == "Windows PE executable"
    assert executable_kind(b"MZ" + bytes(126)) is None


def test_strict_sniffing_ignores_float_data_that_starts_like_a_pickle() -> None:
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(20_000):
        head = b"\x80" + bytes([rng.integers(2, 6)]) + rng.bytes(62)
        hits += sniff_strong(head) is not None
    assert hits == 0
    assert sniff_strong(pickle.dumps(PAYLOAD, 2)[:64]) is Format.PICKLE
    assert looks_like_pickle(b"\x80\x02}\xff", complete=True)  # loose: a header is enough


def test_onnx_header_but_not_tensorflow_saved_model() -> None:
    # What onnx.save writes first: ir_version 8, producer "pytorch" 2.1, then the graph.
    onnx = b"\x08\x08\x12\x07pytorch\x1a\x052.1.0:\x8a\x01\n"
    assert fmt(onnx) is Format.ONNX
    saved_model = b"\x08\x01\x12\x1f\n\x0e\n\x05Const\x12\x05Const"
    assert fmt(saved_model) is Format.UNKNOWN


def test_extension_mismatch_names_png_as_pt() -> None:
    finding = extension_mismatch("models/bad_pytorch.pt", Format.UNKNOWN)
    assert finding is not None
    assert finding.rule_id == "FORMAT-EXTENSION-MISMATCH"
    assert finding.severity is Severity.LOW
    assert finding.evidence == {"extension": ".pt", "detected": "unknown"}


@pytest.mark.parametrize(
    ("name", "detected", "mismatch"),
    [
        ("pytorch_model.bin", Format.PICKLE, True),  # CVE-2025-10155: bare pickle as .bin
        ("pytorch_model.bin", Format.ZIP, False),
        ("model.pt", Format.TORCH_LEGACY, False),
        ("model.PKL", Format.ZLIB, False),  # joblib compressed
        ("model.joblib", Format.PICKLE, False),
        ("arr.npy", Format.PICKLE, True),
        ("arr.npz", Format.ZIP, False),
        ("w.safetensors", Format.PICKLE, True),
        ("m.onnx", Format.UNKNOWN, True),  # ONNX is recognised by its fields in any order
        ("m.onnx", Format.ZIP, True),
        ("m.gguf", Format.EMPTY, True),
        ("notes.txt", Format.PICKLE, False),  # not a model name: nothing to say
        ("m.keras", Format.ZIP, False),
    ],
)
def test_extension_mismatch_table(name: str, detected: Format, mismatch: bool) -> None:
    assert (extension_mismatch(name, detected) is not None) is mismatch


def test_corpus_lookalikes(corpus_dir: Path) -> None:
    base = corpus_dir / "files" / "picklescan"
    assert fmt((base / "data" / "not_a_pickle.bin").read_bytes()) is Format.UNKNOWN
    assert fmt((base / "data" / "bad_pytorch.pt").read_bytes()) is Format.UNKNOWN
    assert fmt((base / "data2" / "GHSA-jgw4-cr84-mqxg.bin").read_bytes()) is Format.PICKLE
    assert fmt((base / "data" / "malicious1.7z").read_bytes()) is Format.SEVENZIP
    assert fmt((base / "data" / "pytorch_model.bin").read_bytes()) is Format.TORCH_LEGACY
    for path in (base / "data").glob("*.pkl"):
        assert fmt(path.read_bytes()) is Format.PICKLE, path.name
