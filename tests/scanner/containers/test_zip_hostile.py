"""Hostile zip archives, built byte by byte and named after the technique they reproduce.

Each test asserts the exact rules reported and that the pickle inside still reaches the pickle
analyzer (through the ``pickle_calls`` recorder) under a location naming the member.
"""

from __future__ import annotations

import io
import pickle
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from modelshield.core.findings import Severity
from tests.scanner.containers.conftest import PickleCall, rule_ids, scan
from tests.scanner.containers.zipbuild import (
    Entry,
    build_zip,
    deflate,
    deflate_bomb,
    zipcrypto_encrypt,
)

# A protocol-4 pickle calling os.system('id'), written opcode by opcode (never loaded).
PAYLOAD = (
    b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
    b"\x8c\x02id\x94\x85\x94R\x94."
)
BENIGN = pickle.dumps({"weights": [0.5, 1.5]}, protocol=2)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _members(calls: list[PickleCall]) -> list[tuple[str, ...]]:
    return [c.location.members for c in calls]


def test_plain_zip_member_named_data_txt_is_found_by_content(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    # malicious1_wrong_ext.zip: the pickle hides under a name that is not a pickle's.
    path = _write(tmp_path, "m.zip", build_zip([Entry.stored("data.txt", PAYLOAD)]))
    result = scan(path)
    assert rule_ids(result) == []
    assert pickle_calls == [PickleCall(pickle_calls[0].location, PAYLOAD, False)]
    assert _members(pickle_calls) == [("data.txt",)]


@pytest.mark.parametrize("flag", [0x1, 0x20, 0x40])
def test_cve_2025_1945_flag_bits_on_clear_data(
    tmp_path: Path, pickle_calls: list[PickleCall], flag: int
) -> None:
    for method_entry in (Entry.stored, Entry.deflated):
        path = _write(
            tmp_path, "m.zip", build_zip([method_entry("model/config.pkl", PAYLOAD, flags=flag)])
        )
        pickle_calls.clear()
        result = scan(path)
        assert rule_ids(result) == ["ZIP-FLAG-ANOMALY"]
        assert [c.data for c in pickle_calls] == [PAYLOAD]
        with zipfile.ZipFile(path) as z, pytest.raises((RuntimeError, NotImplementedError)):
            z.read("model/config.pkl")  # what a zipfile-based scanner runs into


def test_cve_2025_1944_local_and_central_names_differ(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    entry = Entry.stored("archive/data.pkl", PAYLOAD, local_name=b"archive/datap.kl")
    path = _write(tmp_path, "m.pt", build_zip([Entry.stored("archive/version", b"3\n"), entry]))
    result = scan(path)
    assert rule_ids(result) == ["ZIP-NAME-MISMATCH"]
    finding = result.findings[0]
    assert finding.severity is Severity.HIGH
    assert finding.evidence == {
        "central_name": "archive/data.pkl",
        "local_name": "archive/datap.kl",
    }
    # Torch looks data.pkl up by its central name: it is analysed as the checkpoint pickle.
    assert "pytorch-zip" in result.formats_seen
    (call,) = pickle_calls
    assert call.data == PAYLOAD and call.persistent_ids_expected
    assert call.location.members == ("archive/data.pkl (local header: archive/datap.kl)",)


def test_cve_2025_10156_bad_crc_is_reported_and_still_read(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    path = _write(tmp_path, "m.zip", build_zip([Entry.stored("data.pkl", PAYLOAD, crc=0xDEADBEEF)]))
    result = scan(path)
    assert rule_ids(result) == ["ZIP-CRC-MISMATCH"]
    assert [c.data for c in pickle_calls] == [PAYLOAD]


def test_zipcrypto_encrypted_member_is_medium_and_not_scanned(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    crc = zlib.crc32(PAYLOAD)
    secret = zipcrypto_encrypt(PAYLOAD, b"secret", crc)
    path = _write(
        tmp_path,
        "m.zip",
        build_zip([Entry(b"data.pkl", secret, PAYLOAD, flags=1, size=len(PAYLOAD))]),
    )
    with zipfile.ZipFile(path) as z:
        assert z.read("data.pkl", pwd=b"secret") == PAYLOAD  # a real ZipCrypto member
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-ENCRYPTED-MEMBER"]
    assert result.max_severity is Severity.MEDIUM
    assert pickle_calls == []


def test_fake_zipcrypto_sizes_around_a_clear_pickle(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    # Flag 0x1 and a compressed size 12 bytes above the size look like ZipCrypto, but a reader
    # that ignores the flag reads the clear pickle.
    entry = Entry(b"data.pkl", PAYLOAD + bytes(12), PAYLOAD, flags=1, crc=0)
    result = scan(_write(tmp_path, "m.zip", build_zip([entry])))
    assert rule_ids(result) == ["ZIP-FLAG-ANOMALY"]
    assert [c.data[: len(PAYLOAD)] for c in pickle_calls] == [PAYLOAD]


def test_aes_member_is_reported_encrypted(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.zip", build_zip([Entry(b"w.bin", b"\x01" * 40, method=99, flags=1)]))
    assert rule_ids(scan(path)) == ["ARCHIVE-ENCRYPTED-MEMBER"]


def test_unknown_method_is_unsupported_not_silent(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.zip", build_zip([Entry(b"data.pkl", b"\x00" * 40, method=9)]))
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-UNSUPPORTED"]
    assert "deflate64" in result.findings[0].message


def test_duplicate_names_both_copies_analysed(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    path = _write(
        tmp_path,
        "m.zip",
        build_zip([Entry.stored("data.pkl", BENIGN), Entry.stored("data.pkl", PAYLOAD)]),
    )
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-DUPLICATE-NAME"]
    assert [c.data for c in pickle_calls] == [BENIGN, PAYLOAD]
    assert _members(pickle_calls) == [("data.pkl",), ("data.pkl (copy 2)",)]


@pytest.mark.parametrize(
    "name",
    [
        "../../../etc/evil.pkl",
        "/etc/cron.d/evil",
        "C:\\Windows\\evil.dll",
        "a\\..\\..\\evil",
        "x/../../y",
    ],
)
def test_zip_slip_names(tmp_path: Path, pickle_calls: list[PickleCall], name: str) -> None:
    path = _write(tmp_path, "m.zip", build_zip([Entry.stored(name, PAYLOAD)]))
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-PATH-TRAVERSAL"]
    assert result.findings[0].severity is Severity.HIGH
    assert [c.data for c in pickle_calls] == [PAYLOAD]  # still analysed


def test_harmless_dots_are_not_traversal(tmp_path: Path) -> None:
    path = _write(tmp_path, "m.zip", build_zip([Entry.stored("a/..b/c..d/.x", b"data")]))
    assert rule_ids(scan(path)) == []


def test_unix_symlink_entry_pointing_outside(tmp_path: Path) -> None:
    link = Entry.stored("model/weights", b"/home/user/.ssh/id_rsa", made_by=(3 << 8) | 20)
    link.external_attr = 0o120777 << 16
    inside = Entry.stored("model/alias", b"weights", made_by=(3 << 8) | 20)
    inside.external_attr = 0o120777 << 16
    result = scan(_write(tmp_path, "m.zip", build_zip([link, inside])))
    assert rule_ids(result) == ["ARCHIVE-SYMLINK", "ARCHIVE-SYMLINK"]
    severities = {f.evidence["target"]: f.severity for f in result.findings}
    assert severities == {"/home/user/.ssh/id_rsa": Severity.HIGH, "weights": Severity.MEDIUM}


def test_deflate_bomb_stops_early(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    kernel = deflate_bomb(PAYLOAD, 1024)  # a payload, then 1 GiB of zeros
    bomb = Entry(b"data.pkl", kernel, method=8, crc=0, size=(1 << 30) + len(PAYLOAD))
    path = _write(tmp_path, "bomb.zip", build_zip([bomb]))
    tracemalloc.start()
    try:
        result = scan(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rule_ids(result) == ["ARCHIVE-BOMB"]
    assert peak < 64 << 20  # a GiB bomb must not allocate a GiB
    # What was inflated before the stop still reaches the analyzer, payload first.
    (call,) = pickle_calls
    assert call.data.startswith(PAYLOAD)


def test_size_limit_caps_inflation(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40_000  # 10 MB, ratio far below the ratio limit
    path = _write(tmp_path, "m.zip", build_zip([Entry.deflated("big.bin", data)]))
    result = scan(path, max_decompressed_bytes=1 << 20)
    # A member named .bin (torch.load's name) whose content is of no known format also fails
    # closed on its own.
    assert rule_ids(result) == ["ARCHIVE-BOMB", "SCAN-UNRECOGNISED"]
    assert result.findings[0].evidence["inflated"] == str(1 << 20)


def test_overlapping_entries_bomb(tmp_path: Path) -> None:
    # Fifield-style non-recursive bomb: many central entries share one local entry.
    kernel = Entry.deflated("k0", BENIGN)
    shared = [
        Entry(b"k%d" % i, deflate(BENIGN), BENIGN, method=8, header_offset=0) for i in range(1, 5)
    ]
    result = scan(_write(tmp_path, "m.zip", build_zip([kernel, *shared])))
    # Sharing a local header also means the names disagree with it.
    assert rule_ids(result) == ["ZIP-NAME-MISMATCH"] * 4 + ["ZIP-OVERLAPPING-ENTRIES"]
    overlap = next(f for f in result.findings if f.rule_id == "ZIP-OVERLAPPING-ENTRIES")
    assert overlap.evidence["overlaps"] == "4"


def test_local_and_central_sizes_disagree(tmp_path: Path) -> None:
    entry = Entry.stored("data.pkl", BENIGN, local_size=len(BENIGN) * 1000)
    result = scan(_write(tmp_path, "m.zip", build_zip([entry])))
    assert rule_ids(result) == ["ZIP-HEADER-MISMATCH"]
    assert result.findings[0].evidence == {"fields": "size"}


def test_polyglot_pickle_prefix_is_analysed(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    # torch.load and pickle.load read the pickle at the start; zip readers see the archive.
    archive = build_zip([Entry.stored("archive/data.pkl", BENIGN)])
    result = scan(_write(tmp_path, "poly.pt", PAYLOAD + archive))
    assert result.format == "pytorch-zip"
    assert rule_ids(result) == ["ZIP-POLYGLOT"]
    by_member = {c.location.members: c.data for c in pickle_calls}
    assert by_member[("<prefix>",)] == PAYLOAD
    assert by_member[("archive/data.pkl",)] == BENIGN


def test_truncated_central_directory_falls_back_to_local_headers(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    archive = build_zip([Entry.stored("a.txt", b"hello"), Entry.deflated("b.bin", PAYLOAD)])
    cut = archive[: archive.index(b"PK\x01\x02") + 20]  # central directory cut mid-entry
    result = scan(_write(tmp_path, "m.zip", cut))
    assert rule_ids(result) == ["ARCHIVE-MALFORMED"]
    assert "walking the local headers" in result.findings[0].message
    assert [c.data for c in pickle_calls] == [PAYLOAD]


def test_zip64_archive_is_read(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    path = _write(tmp_path, "m.zip", build_zip([Entry.deflated("x/data.txt", PAYLOAD)], zip64=True))
    assert rule_ids(scan(path)) == []
    assert [c.data for c in pickle_calls] == [PAYLOAD]


def test_executable_member_is_reported(tmp_path: Path) -> None:
    elf = b"\x7fELF\x02\x01\x01\x00" + bytes(200)
    result = scan(_write(tmp_path, "m.zip", build_zip([Entry.stored("model/extra/run", elf)])))
    assert rule_ids(result) == ["ARCHIVE-EXECUTABLE-MEMBER"]
    assert result.findings[0].location.members == ("model/extra/run",)


def test_twenty_deep_nesting_is_followed(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    data = PAYLOAD
    for level in range(20):
        data = build_zip([Entry.stored(f"level{level}.zip", data)])
    result = scan(_write(tmp_path, "deep.zip", data))
    assert rule_ids(result) == []
    [call] = pickle_calls
    assert call.data == PAYLOAD and len(call.location.members) == 20


def test_deeper_nesting_trips_the_depth_limit_and_still_names_the_stored_payload(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    data = PAYLOAD
    for level in range(40):
        data = build_zip([Entry.stored(f"level{level}.zip", data)])
    result = scan(_write(tmp_path, "deep.zip", data))
    assert rule_ids(result) == ["PICKLE-IMPORT-DANGEROUS", "SCAN-LIMIT"]
    found, limit = sorted(result.findings, key=lambda f: f.rule_id)
    assert limit.evidence["limit"] == "max_nested_depth"
    # The limit trips when the 33rd archive is about to be opened ...
    assert len(limit.location.members) == 33
    assert pickle_calls == []
    # ... and the stored bytes it was not followed into are searched for imports in place.
    assert found.severity is Severity.CRITICAL
    assert found.evidence["callable"] == "os.system"
    assert found.evidence["found_by"] == "linear pass over content beyond limits.max_nested_depth"
    assert found.location.members == limit.location.members
    assert "1 import(s) were found" in limit.message


def test_too_many_members_trips_the_member_limit(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    entries = [Entry.stored(f"m{i}.txt", b"x") for i in range(30)] + [Entry.stored("p", PAYLOAD)]
    result = scan(_write(tmp_path, "m.zip", build_zip(entries)), max_members=10)
    assert rule_ids(result) == ["SCAN-LIMIT"]
    assert result.findings[0].evidence == {"limit": "max_members"}
    full = scan(_write(tmp_path, "m.zip", build_zip(entries)))
    assert rule_ids(full) == [] and pickle_calls[-1].data == PAYLOAD


def test_garbage_after_zip_magic_is_malformed_not_a_crash(tmp_path: Path) -> None:
    result = scan(_write(tmp_path, "m.zip", b"PK\x03\x04" + b"\xff" * 40))
    assert result.errors == ()
    assert "ARCHIVE-MALFORMED" in rule_ids(result)


def test_bzip2_and_lzma_members(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    for compression in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=compression) as z:
            z.writestr("inner.bin", PAYLOAD)
        pickle_calls.clear()
        assert rule_ids(scan(_write(tmp_path, "m.zip", buf.getvalue()))) == []
        assert [c.data for c in pickle_calls] == [PAYLOAD]


def test_corpus_zip_tricks(corpus_dir: Path, pickle_calls: list[PickleCall]) -> None:
    base = corpus_dir / "files" / "picklescan"
    expected = {
        "data/malicious1_0x1.zip": ["ZIP-FLAG-ANOMALY"],
        "data/malicious1_0x20.zip": ["ZIP-FLAG-ANOMALY"],
        "data/malicious1_0x40.zip": ["ZIP-FLAG-ANOMALY"],
        "data/malicious1_central_directory.zip": ["ZIP-NAME-MISMATCH"],
        "data2/malicious1_crc.zip": ["ZIP-CRC-MISMATCH"],
        "data/malicious1_wrong_ext.zip": [],
        "data/benign_password_protected.zip": ["ARCHIVE-ENCRYPTED-MEMBER"],
    }
    for name, rules in expected.items():
        pickle_calls.clear()
        result = scan(base / name)
        assert rule_ids(result) == rules, name
        if "password" not in name:
            assert len(pickle_calls) == 1 and b"eval" in pickle_calls[0].data, name
    password = scan(corpus_dir / "files" / "modelscan" / "password_protected.zip")
    assert rule_ids(password) == ["ARCHIVE-ENCRYPTED-MEMBER"]
    assert password.max_severity is Severity.MEDIUM
    traversal = scan(corpus_dir / "files/modelaudit/samples/archives/path_traversal.zip")
    assert "ARCHIVE-PATH-TRAVERSAL" in rule_ids(traversal)


def test_struct_sanity_of_builder() -> None:
    # The builder's archives are real zips: zipfile reads a plain one back.
    data = build_zip([Entry.deflated("a", b"abc"), Entry.stored("b", b"def")])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.read("a") == b"abc" and z.read("b") == b"def"
    assert struct.unpack_from("<I", data, 0)[0] == 0x04034B50


def test_rar_is_recognised_but_unsupported(tmp_path: Path) -> None:
    path = _write(tmp_path, "model.rar", b"Rar!\x1a\x07\x01\x00" + bytes(64))
    result = scan(path)
    assert result.format == "rar"
    assert rule_ids(result) == ["ARCHIVE-UNSUPPORTED"]
