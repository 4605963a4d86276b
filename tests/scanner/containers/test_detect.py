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
    ordinary_kind,
    sniff_strong,
)
from tests.scanner.containers.conftest import PickleCall, rule_ids, scan
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
HOSTILE = b"cos\nsystem\n(S'id'\ntR."  # built byte by byte, never loaded


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
        b"\x80\x02}\xff",  # a header, then an opcode no unpickler knows
        b"cos\nsystem\n",  # truncated right after the GLOBAL: nothing is called
    ],
)
def test_text_and_lookalikes_are_not_pickles(text: bytes) -> None:
    # A JSON document is recognised as JSON (its strings are analysed), Python source as
    # Python, other printable UTF-8 as ordinary text (read as a pickle from byte 0 by its
    # handler too); anything else that is no pickle stays unknown.
    try:
        text.decode("utf-8")
        expected = Format.JSON if text.startswith(b"{") else Format.TEXT
        if text.startswith(b"import "):
            expected = Format.PYTHON
    except UnicodeDecodeError:
        expected = Format.UNKNOWN
    assert fmt(text) is expected


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


def test_onnx_header_but_not_tensorflow_saved_model() -> None:
    # What onnx.save writes first: ir_version 8, producer "pytorch" 2.1, then the graph.
    onnx = b"\x08\x08\x12\x07pytorch\x1a\x052.1.0:\x8a\x01\n"
    assert fmt(onnx) is Format.ONNX
    saved_model = b"\x08\x01\x12\x1f\n\x0e\n\x05Const\x12\x05Const"  # cut short
    assert fmt(saved_model) is Format.TF_SAVEDMODEL


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
    assert fmt((base / "data" / "bad_pytorch.pt").read_bytes()) is Format.IMAGE  # a PNG
    assert fmt((base / "data2" / "GHSA-jgw4-cr84-mqxg.bin").read_bytes()) is Format.PICKLE
    assert fmt((base / "data" / "malicious1.7z").read_bytes()) is Format.SEVENZIP
    assert fmt((base / "data" / "pytorch_model.bin").read_bytes()) is Format.TORCH_LEGACY
    for path in (base / "data").glob("*.pkl"):
        # broken_model.pkl fails (a BINUNICODE longer than the file) before it calls exec:
        # not a pickle a loader reads (its bytes are printable text); its import is reported by
        # the tolerant pass that every text file gets.
        expected = Format.TEXT if path.name == "broken_model.pkl" else Format.PICKLE
        assert fmt(path.read_bytes()) is expected, path.name


# ---- tar headers as Python's tarfile reads them (torch.load tries tarfile on every non-zip) ---


def _opens_as_tar(data: bytes) -> bool:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            return archive.firstmember is not None
    except Exception:
        return False


def _checksum_field(block: bytearray, signed: bool, spelling: str) -> bytes:
    block = bytearray(block)
    block[148:156] = b" " * 8
    total = sum(c - 256 if signed and c >= 0x80 else c for c in block)
    if total < 0:
        return b"\xff" + (total % 256**7).to_bytes(7, "big")  # base-256, negative
    return (spelling % total).encode()[:8].ljust(8, b"\x00")


def _v7(members: dict[str, bytes], *, signed: bool = False) -> bytes:
    """An old (v7) tar: no ustar magic, checksum computed over signed or unsigned bytes."""
    data = bytearray(_tar(members, tarfile.GNU_FORMAT))
    block = data[:512]
    block[257:265] = bytes(8)
    block[148:156] = _checksum_field(block, signed, "%06o\x00 ")
    data[:512] = block
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT]),
    st.text(min_size=1, max_size=30).filter(lambda n: "\x00" not in n and "/" not in n),
    st.lists(st.tuples(st.integers(0, 511), st.integers(0, 255)), max_size=3),
    st.sampled_from([None, "%06o\x00 ", "%07o\x00", "  %o\x00", "%o", "%06o  "]),
    st.booleans(),
)
def test_tar_detection_matches_tarfile(
    fmt_: int, name: str, edits: list[tuple[int, int]], spelling: str | None, signed: bool
) -> None:
    data = bytearray(_tar({name: b"payload"}, fmt_)[:2048])
    for offset, value in edits:
        data[offset] = value
    if spelling is not None:
        data[148:156] = _checksum_field(data[:512], signed, spelling)
    raw = bytes(data)
    assert (fmt(raw) is Format.TAR) == _opens_as_tar(raw), raw[:512]


def test_v7_tar_with_a_signed_checksum_is_opened(pickle_calls: list[PickleCall]) -> None:
    # A non-ASCII member name makes the signed and unsigned sums differ: tarfile accepts both.
    data = _v7({"modèle/pickle": pickle.dumps(PAYLOAD)}, signed=True)
    assert _opens_as_tar(data)
    assert fmt(data) is Format.TAR


def test_hostile_member_of_a_signed_checksum_tar_is_found(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(_v7({"modèle/pickle": HOSTILE}, signed=True))
    assert "PICKLE-CALL-DANGEROUS" in rule_ids(scan(path))


def test_tar_header_whose_name_is_a_pickle_is_read_both_ways(tmp_path: Path) -> None:
    # A polyglot: a valid tar for tarfile whose first bytes (the member name) are a pickle
    # that pickle.load (torch.load's fallback when tarfile is not used) runs.
    data = _tar({HOSTILE.decode("latin-1"): b"x"}, tarfile.GNU_FORMAT)
    assert fmt(data) is Format.TAR
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    assert "PICKLE-CALL-DANGEROUS" in rule_ids(scan(path))


# ---- LZMA-alone headers as liblzma reads them --------------------------------------------------


def _lzma_alone(payload: bytes, lc: int = 3, lp: int = 0, pb: int = 2) -> bytes:
    lzma1 = {"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": 1 << 16}
    return lzma.compress(payload, format=lzma.FORMAT_ALONE, filters=[lzma1])


def _auto_decodes(data: bytes) -> bool:
    try:
        lzma.LZMADecompressor(lzma.FORMAT_AUTO).decompress(data)
    except lzma.LZMAError:
        return False
    return True


DICT_SIZES = [1, 2, 3, 4, 6, 1 << 11, 3 << 10, 1 << 16, 1 << 31, 3 << 30, 0xFFFFFFFF, 5, 0x12345]


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)).filter(
        lambda p: p[0] + p[1] <= 4
    ),
    st.sampled_from(DICT_SIZES) | st.integers(0, 0xFFFFFFFF),
    st.sampled_from([None, (1 << 64) - 1, (1 << 38) - 1, 1 << 38, 0]),
)
def test_lzma_detection_matches_liblzma(
    props: tuple[int, int, int], dict_size: int, usize: int | None
) -> None:
    lc, lp, pb = props
    payload = pickle.dumps(list(range(200)))
    data = bytearray(_lzma_alone(payload, lc, lp, pb))
    struct.pack_into("<I", data, 1, dict_size)
    if usize is not None:
        struct.pack_into("<Q", data, 5, usize)
    raw = bytes(data)
    assert (fmt(raw) is Format.LZMA) == _auto_decodes(raw), (props, dict_size, usize)


def test_joblib_lzma_files_are_found(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    for compress in ("lzma", ("lzma", 9), ("lzma", 1)):
        path = tmp_path / "m.joblib"
        joblib.dump({"w": np.arange(10)}, path, compress=compress)
        assert fmt(path.read_bytes()) is Format.LZMA, compress


def test_lzma_with_a_small_dictionary_holding_a_payload_is_found(tmp_path: Path) -> None:
    data = bytearray(_lzma_alone(HOSTILE))
    struct.pack_into("<I", data, 1, 3 << 10)  # 3 KiB: liblzma takes it; any dictionary fits
    path = tmp_path / "model.pkl.xz"
    path.write_bytes(bytes(data))
    assert lzma.LZMADecompressor(lzma.FORMAT_AUTO).decompress(bytes(data)) == HOSTILE
    assert "PICKLE-CALL-DANGEROUS" in rule_ids(scan(path))


def test_zeros_and_float_data_are_not_lzma() -> None:
    assert fmt(bytes(20_000)) is Format.UNKNOWN
    assert fmt(np.ones(2).tobytes()) is Format.UNKNOWN
    assert fmt(np.arange(5, dtype="<i8").tobytes()) is Format.UNKNOWN


# ---- ordinary files -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(8), "a PNG image"),
        (b"\xff\xd8\xff\xe0" + bytes(8), "a JPEG image"),
        (b"SR\x00\x04" + bytes(8), "an IDL save file"),
        ("Licence: MIT\n\u00e9t\u00e9\n".encode(), "text"),
        (b'{"a": [1, 2]}\n', "text"),
        (b"\xef\xbb\xbfa,b\n1,2\n", "text"),
        (b"\x00\x01binary", None),
        (b"\x80\x02}q\x00.", None),
    ],
)
def test_ordinary_kinds(head: bytes, kind: str | None) -> None:
    assert ordinary_kind(head) == kind


# ---- joblib's pre-0.10 'ZF' files, as joblib's read_zfile reads them ------------------------


@settings(max_examples=200, deadline=None)
@given(
    # Spellings of the right length (joblib also checks the inflated length, after inflating),
    # and some it refuses.
    st.sampled_from(["{:#x}", "{:#X}", "{:x}", "{:X}", "+{:#x}", "{:_x}", "0x{:_x}", "{:x}g"]),
    st.integers(0, 6),
    st.booleans(),
    st.sampled_from([b"", b" "]),
)
def test_joblib_zfile_detection_matches_read_zfile(
    spelling: str, left: int, left_pad: bool, extra: bytes
) -> None:
    from joblib.numpy_pickle_compat import read_zfile

    inner = pickle.dumps(PAYLOAD) * 3
    text = " " * left + spelling.format(len(inner)) if left_pad else spelling.format(len(inner))
    field = text.ljust(19)[:19].encode()
    data = b"ZF" + field + extra + zlib.compress(inner)
    try:
        accepted = read_zfile(io.BytesIO(data)) == inner
    except Exception:
        accepted = False
    assert (fmt(data) is Format.JOBLIB_ZFILE) == accepted, field
