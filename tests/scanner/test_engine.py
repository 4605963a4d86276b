"""The engine: path expansion, one result per input, errors that never stop a scan."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from modelshield.core.findings import Severity
from modelshield.core.limits import Limits
from modelshield.core.policy import ExitCode, Policy
from modelshield.scanner.engine import scan, scan_paths
from tests.scanner.pickle.hostile import reduce_call


def test_directory_scan_goes_past_bad_files(tmp_path: Path) -> None:
    (tmp_path / "a_clean.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}))
    (tmp_path / "b_truncated.pkl").write_bytes(reduce_call("os", "system", "id")[:-3])
    (tmp_path / "c_clean.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    report = scan_paths([tmp_path])
    assert [Path(r.path).name for r in report.results] == [
        "a_clean.pkl",
        "b_truncated.pkl",
        "c_clean.pkl",
    ]
    bad = report.results[1]
    assert {f.rule_id for f in bad.findings} >= {"PICKLE-IMPORT-DANGEROUS", "PICKLE-MALFORMED"}
    assert report.results[0].findings == () and report.results[2].findings == ()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_an_error_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.pkl")
    (tmp_path / "ok.pkl").write_bytes(pickle.dumps(1))
    report = scan_paths([tmp_path])
    pipe = next(r for r in report.results if r.path.endswith("pipe.pkl"))
    assert pipe.errors and "not a regular file" in pipe.errors[0].message
    assert Policy().exit_code(report) is ExitCode.ERROR


def test_missing_path_is_an_error_naming_it(tmp_path: Path) -> None:
    report = scan_paths([tmp_path / "nope.pt"])
    (result,) = report.results
    assert result.errors and result.errors[0].location.path.endswith("nope.pt")
    assert Policy().exit_code(report) is ExitCode.ERROR


def test_links_to_files_are_scanned_as_their_target(tmp_path: Path) -> None:
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    (blobs / "abc123").write_bytes(reduce_call("os", "system", "id"))
    snap = tmp_path / "snapshot"
    snap.mkdir()
    (snap / "model.pkl").symlink_to(blobs / "abc123")
    report = scan_paths([snap])
    (result,) = report.results
    assert result.max_severity is Severity.CRITICAL


def test_file_over_the_size_limit_is_a_finding(tmp_path: Path) -> None:
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps(list(range(1000))))
    report = scan(path, Policy(limits=Limits(max_file_bytes=100)))
    assert [f.rule_id for f in report.findings] == ["SCAN-FILE-TOO-LARGE"]
    assert Policy().exit_code(report) is ExitCode.FINDINGS


def test_time_budget_trips_into_a_scan_limit_finding(tmp_path: Path) -> None:
    path = tmp_path / "many.pkl"
    path.write_bytes(pickle.dumps([[i] for i in range(300_000)]))
    report = scan(path, Policy(limits=Limits(max_seconds_per_file=0.001)))
    assert [f.rule_id for f in report.findings] == ["SCAN-LIMIT"]
    assert report.findings[0].evidence["limit"] == "max_seconds_per_file"


def test_policy_ignore_and_override_apply_through_the_api(tmp_path: Path) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(reduce_call("os", "system", "id"))
    report = scan(path, Policy(ignore=frozenset({"PICKLE-CALL-DANGEROUS"})))
    assert report.findings == () and report.suppressed == 1
    lowered = scan(path, Policy(severity_overrides={"PICKLE-CALL-DANGEROUS": Severity.LOW}))
    assert lowered.max_severity is Severity.LOW
