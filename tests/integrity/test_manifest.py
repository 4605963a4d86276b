"""Manifests of real model directories: clean verification, and exact findings for each change."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from modelshield.core.findings import Report, Severity
from modelshield.core.limits import Limits
from modelshield.core.policy import ExitCode, Policy
from modelshield.integrity.hashing import blake3_available
from modelshield.integrity.manifest import (
    DEFAULT_NAME,
    Manifest,
    ManifestError,
    create_manifest,
    verify_manifest,
)
from tests.integrity.conftest import CHUNK, by_rule


def make(model: Path, **kwargs: Any) -> Path:
    """Create and write the default manifest of ``model``; return its path."""
    out = model / DEFAULT_NAME if model.is_dir() else model.with_name(model.name + ".manifest.json")
    outcome = create_manifest(model, output=out, chunk_size=CHUNK, **kwargs)
    assert outcome.errors == ()
    out.write_text(outcome.manifest.to_json(), encoding="utf-8")
    return out


def clean(report: Report) -> bool:
    return not report.findings and not report.errors


def test_clean_model_verifies_with_no_findings(model_dir: Path) -> None:
    make(model_dir)
    report = verify_manifest(model_dir)
    assert clean(report)
    assert report.tool == "manifest"
    names = sorted(Path(r.path).relative_to(model_dir).as_posix() for r in report.results)
    assert names == ["config.json", "model.pt", "tokenizer/vocab.json", "weights.npy"]
    assert Policy().exit_code(report) is ExitCode.OK


def test_manifest_records_sizes_and_chunk_digests_of_the_real_files(model_dir: Path) -> None:
    out = make(model_dir, plain=True)
    doc = json.loads(out.read_text())
    assert doc["format"] == "modelshield.manifest"
    assert doc["format_version"] == 1
    assert doc["chunk_size"] == CHUNK
    assert DEFAULT_NAME in doc["ignore"]
    files = {f["path"]: f for f in doc["files"]}
    assert set(files) == {"config.json", "model.pt", "tokenizer/vocab.json", "weights.npy"}
    data = (model_dir / "weights.npy").read_bytes()
    entry = files["weights.npy"]
    assert entry["size"] == len(data)
    assert len(entry["chunks"]) > 1
    assert entry["chunks"] == [
        hashlib.sha256(data[i : i + CHUNK]).hexdigest() for i in range(0, len(data), CHUNK)
    ]
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert "blake3" not in entry  # opt-in: see test_blake3_is_recorded_when_asked
    assert Manifest.from_json(out.read_text()).digest == doc["digest"]["sha256"]


@pytest.mark.skipif(not blake3_available(), reason="the blake3 package is not installed")
def test_blake3_is_recorded_when_asked(model_dir: Path) -> None:
    import blake3

    out = make(model_dir, blake3=True)
    doc = json.loads(out.read_text())
    assert doc["algorithms"] == ["sha256", "blake3"]
    data = (model_dir / "weights.npy").read_bytes()
    entry = {f["path"]: f for f in doc["files"]}["weights.npy"]
    assert entry["blake3"] == blake3.blake3(data).hexdigest()
    assert clean(verify_manifest(model_dir, out))


def test_without_plain_a_multi_chunk_file_has_no_whole_file_digest(model_dir: Path) -> None:
    out = make(model_dir, blake3=False)
    files = {f["path"]: f for f in json.loads(out.read_text())["files"]}
    assert "sha256" not in files["weights.npy"]
    small = (model_dir / "config.json").read_bytes()
    assert files["config.json"]["sha256"] == hashlib.sha256(small).hexdigest()
    assert "blake3" not in files["config.json"]


def test_one_flipped_byte_is_exactly_one_modified_finding(model_dir: Path) -> None:
    make(model_dir)
    weights = model_dir / "weights.npy"
    data = bytearray(weights.read_bytes())
    offset = CHUNK + 17
    data[offset] ^= 0xFF
    weights.write_bytes(bytes(data))
    report = verify_manifest(model_dir)
    assert by_rule(report) == [("MANIFEST-FILE-MODIFIED", "weights.npy")]
    (finding,) = report.findings
    assert finding.severity is Severity.HIGH
    assert finding.evidence["first_changed_range"] == f"{CHUNK}-{2 * CHUNK}"
    assert finding.evidence["changed_chunks"] == "1"
    assert Policy().exit_code(report) is ExitCode.FINDINGS


def test_a_size_change_is_reported_as_such(model_dir: Path) -> None:
    make(model_dir)
    with (model_dir / "config.json").open("a") as fh:
        fh.write(" ")
    report = verify_manifest(model_dir)
    assert by_rule(report) == [("MANIFEST-FILE-MODIFIED", "config.json")]
    assert "expected_size" in report.findings[0].evidence


def test_an_added_file_is_exactly_one_added_finding(model_dir: Path) -> None:
    make(model_dir)
    (model_dir / "extra.pkl").write_bytes(b"\x80\x04N.")
    report = verify_manifest(model_dir)
    assert by_rule(report) == [("MANIFEST-FILE-ADDED", "extra.pkl")]
    assert report.findings[0].severity is Severity.MEDIUM


def test_a_removed_file_is_exactly_one_removed_finding(model_dir: Path) -> None:
    make(model_dir)
    (model_dir / "model.pt").unlink()
    report = verify_manifest(model_dir)
    assert by_rule(report) == [("MANIFEST-FILE-REMOVED", "model.pt")]
    (result,) = [r for r in report.results if r.findings]
    assert result.format == "missing"


def test_a_rename_is_a_removal_and_an_addition_linked_to_each_other(model_dir: Path) -> None:
    make(model_dir)
    (model_dir / "weights.npy").rename(model_dir / "weights-v2.npy")
    report = verify_manifest(model_dir)
    assert by_rule(report) == [
        ("MANIFEST-FILE-ADDED", "weights-v2.npy"),
        ("MANIFEST-FILE-REMOVED", "weights.npy"),
    ]
    by_id = {f.rule_id: f for f in report.findings}
    assert by_id["MANIFEST-FILE-ADDED"].evidence["renamed_from"] == "weights.npy"
    assert by_id["MANIFEST-FILE-REMOVED"].evidence["renamed_to"] == "weights-v2.npy"


def test_an_unrelated_addition_is_not_called_a_rename(model_dir: Path) -> None:
    make(model_dir)
    (model_dir / "config.json").unlink()
    (model_dir / "other.json").write_text('{"hidden_size": 17, "layers": 1}')
    report = verify_manifest(model_dir)
    assert all(
        "renamed_from" not in f.evidence and "renamed_to" not in f.evidence for f in report.findings
    )


def test_symlinks_are_recorded_and_checked_not_followed(model_dir: Path) -> None:
    (model_dir / "latest").symlink_to("model.pt")
    out = make(model_dir)
    files = {f["path"]: f for f in json.loads(out.read_text())["files"]}
    assert files["latest"] == {"path": "latest", "link": "model.pt"}
    assert clean(verify_manifest(model_dir))
    (model_dir / "latest").unlink()
    (model_dir / "latest").symlink_to("weights.npy")
    report = verify_manifest(model_dir)
    assert by_rule(report) == [("MANIFEST-FILE-MODIFIED", "latest")]
    assert report.findings[0].evidence["actual_link"] == "weights.npy"


def test_a_file_replaced_by_a_link_is_modified(model_dir: Path) -> None:
    make(model_dir)
    (model_dir / "config.json").unlink()
    (model_dir / "config.json").symlink_to("/etc/hostname")
    report = verify_manifest(model_dir)
    assert by_rule(report) == [("MANIFEST-FILE-MODIFIED", "config.json")]
    assert report.findings[0].evidence["actual_kind"] == "symlink"


@pytest.mark.timeout(30)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_an_added_fifo_is_reported_without_being_opened(model_dir: Path) -> None:
    make(model_dir)
    os.mkfifo(model_dir / "pipe")
    report = verify_manifest(model_dir)
    assert by_rule(report) == [("MANIFEST-FILE-ADDED", "pipe")]
    assert report.findings[0].evidence["kind"] == "other"


def test_git_metadata_and_the_manifest_itself_are_left_out(model_dir: Path) -> None:
    (model_dir / ".git").mkdir()
    (model_dir / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    out = make(model_dir)
    paths = [f["path"] for f in json.loads(out.read_text())["files"]]
    assert not any(p.startswith(".git") or p == DEFAULT_NAME for p in paths)
    (model_dir / ".git" / "HEAD").write_text("ref: refs/heads/other\n")
    assert clean(verify_manifest(model_dir))


def test_extra_ignore_prefixes_are_recorded_and_honoured(model_dir: Path) -> None:
    out = make(model_dir, ignore=["tokenizer"])
    assert "tokenizer" in json.loads(out.read_text())["ignore"]
    (model_dir / "tokenizer" / "merges.txt").write_text("a b\n")
    assert clean(verify_manifest(model_dir))


def test_a_manifest_outside_the_directory_works_the_same(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "elsewhere.json"
    outcome = create_manifest(model_dir, output=out, chunk_size=CHUNK)
    out.write_text(outcome.manifest.to_json())
    assert DEFAULT_NAME not in outcome.manifest.ignore
    assert clean(verify_manifest(model_dir, out))
    (model_dir / "config.json").write_text("{}")
    assert by_rule(verify_manifest(model_dir, out)) == [("MANIFEST-FILE-MODIFIED", "config.json")]


def test_single_file_model(model_dir: Path, tmp_path: Path) -> None:
    model = model_dir / "model.pt"
    out = make(model)
    assert out.name == "model.pt.manifest.json"
    assert json.loads(out.read_text())["root"]["type"] == "file"
    assert clean(verify_manifest(model))
    # The single file is compared by content whatever it is called now.
    moved = tmp_path / "renamed.pt"
    shutil.copy(model, moved)
    assert clean(verify_manifest(moved, out))
    with model.open("r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01")
    report = verify_manifest(model)
    assert [f.rule_id for f in report.findings] == ["MANIFEST-FILE-MODIFIED"]
    assert report.findings[0].location.path == str(model)


@pytest.mark.skipif(os.name != "posix", reason="POSIX file names are bytes")
def test_file_names_that_are_not_utf8_round_trip(model_dir: Path) -> None:
    # Latin-1 bytes, not UTF-8: Python names the file with a lone surrogate.
    raw = model_dir / os.fsdecode(b"caf\xe9.bin")
    raw.write_bytes(b"data")
    names = {f["path"] for f in json.loads(make(model_dir).read_text())["files"]}
    assert os.fsdecode(b"caf\xe9.bin") in names
    assert clean(verify_manifest(model_dir))
    with raw.open("ab") as fh:
        fh.write(b"!")
    assert [f.rule_id for f in verify_manifest(model_dir).findings] == ["MANIFEST-FILE-MODIFIED"]


def test_a_directory_manifest_does_not_verify_a_file(model_dir: Path) -> None:
    out = make(model_dir)
    report = verify_manifest(model_dir / "model.pt", out)
    assert [f.rule_id for f in report.findings] == ["MANIFEST-INVALID"]


def test_creation_is_deterministic_across_worker_counts(model_dir: Path) -> None:
    one = create_manifest(model_dir, chunk_size=CHUNK, workers=1).manifest
    four = create_manifest(model_dir, chunk_size=CHUNK, workers=4).manifest
    assert one.entries == four.entries
    assert one.digest == four.digest


# ---- invalid manifests -----------------------------------------------------------------------


def _mutations() -> dict[str, Any]:
    def set_key(key: str, value: Any) -> Any:
        return lambda d: {**d, key: value}

    def edit_file(**changes: Any) -> Any:
        def apply(d: dict[str, Any]) -> dict[str, Any]:
            files = [dict(f) for f in d["files"]]
            files[0].update(changes)
            return {**d, "files": files}

        return apply

    def forge_chunk(d: dict[str, Any]) -> dict[str, Any]:
        files = [dict(f) for f in d["files"]]
        target = next(f for f in files if f.get("chunks"))
        target["chunks"] = ["0" * 64, *target["chunks"][1:]]
        return {**d, "files": files}

    return {
        "wrong-format-tag": set_key("format", "something-else"),
        "future-version": set_key("format_version", 99),
        "chunk-size-zero": set_key("chunk_size", 0),
        "chunk-size-string": set_key("chunk_size", "64MiB"),
        "unknown-algorithm": set_key("algorithms", ["sha256", "md5"]),
        "files-not-a-list": set_key("files", {"a": 1}),
        "path-traversal": edit_file(path="../outside.bin"),
        "absolute-path": edit_file(path="/etc/passwd"),
        "negative-size": edit_file(size=-1),
        "chunk-count-mismatch": edit_file(size=10 * CHUNK),
        "bad-hex": edit_file(chunks=["xyz"]),
        "duplicate-path": lambda d: {**d, "files": [d["files"][0], d["files"][0]]},
        "forged-chunk-digest": forge_chunk,
        "digest-removed": set_key("digest", {}),
    }


MUTATIONS = _mutations()


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_malformed_or_forged_manifest_is_invalid(model_dir: Path, name: str) -> None:
    out = make(model_dir)
    doc = json.loads(out.read_text())
    out.write_text(json.dumps(MUTATIONS[name](doc)))
    report = verify_manifest(model_dir)
    assert [(f.rule_id, f.location.path) for f in report.findings] == [
        ("MANIFEST-INVALID", str(out))
    ]
    assert len(report.results) == 1  # nothing is verified against an untrusted manifest
    assert report.findings[0].evidence["problem"]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b'{"format": "modelshield.manifest", "files": [',
        b"\xff\xfe\x00garbage",
        b"[]",
        b"null",
        b"[" * 100_000,
    ],
    ids=["empty", "brace", "cut-short", "binary", "array", "null", "deep-nesting"],
)
def test_unparseable_manifest_text_is_invalid_not_a_crash(model_dir: Path, content: bytes) -> None:
    out = model_dir / DEFAULT_NAME
    out.write_bytes(content)
    report = verify_manifest(model_dir)
    assert [f.rule_id for f in report.findings] == ["MANIFEST-INVALID"]


def test_a_truncated_manifest_is_invalid(model_dir: Path) -> None:
    out = make(model_dir)
    text = out.read_bytes()
    out.write_bytes(text[: len(text) // 2])
    assert [f.rule_id for f in verify_manifest(model_dir).findings] == ["MANIFEST-INVALID"]


def test_a_missing_manifest_is_invalid(model_dir: Path) -> None:
    report = verify_manifest(model_dir)
    assert [f.rule_id for f in report.findings] == ["MANIFEST-INVALID"]
    assert "cannot read" in report.findings[0].message


def test_an_oversized_manifest_is_refused_before_parsing(model_dir: Path) -> None:
    out = make(model_dir)
    policy = Policy(limits=Limits(max_document_bytes=100))
    assert out.stat().st_size > 100
    report = verify_manifest(model_dir, policy=policy)
    assert [f.rule_id for f in report.findings] == ["MANIFEST-INVALID"]
    assert "larger than 100 bytes" in report.findings[0].message


def test_manifest_entries_are_bounded_by_max_members(model_dir: Path) -> None:
    out = make(model_dir)
    with pytest.raises(ManifestError, match="max_members"):
        Manifest.read(out, Limits(max_members=2))


# ---- limits while listing and hashing ----------------------------------------------------------


def test_creation_past_max_members_reports_an_error(model_dir: Path) -> None:
    outcome = create_manifest(model_dir, policy=Policy(limits=Limits(max_members=2)))
    assert outcome.errors
    assert "max_members" in outcome.errors[0].message


def test_a_file_above_max_file_bytes_is_an_error_not_a_pass(model_dir: Path) -> None:
    make(model_dir)
    size = (model_dir / "weights.npy").stat().st_size
    report = verify_manifest(model_dir, policy=Policy(limits=Limits(max_file_bytes=size - 1)))
    assert not report.findings
    (error,) = report.errors
    assert error.location.path.endswith("weights.npy")
    assert Policy().exit_code(report) is ExitCode.ERROR
