"""The typed "not fully analysed" state: set by the engine from what it did, kept by the
policy, shown by every reporter, and never a pass unless the policy accepts it."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from modelshield.core.limits import Limits
from modelshield.core.policy import ExitCode, Policy
from modelshield.scanner.engine import scan, scan_file, scan_paths


def _pickle(path: Path) -> Path:
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    return path


def test_a_clean_pickle_is_complete(tmp_path: Path) -> None:
    result = scan_file(str(_pickle(tmp_path / "m.pkl")), Policy())
    assert result.status == "complete"
    assert result.gaps == ()


def test_a_file_above_the_size_limit_is_skipped_and_fails_at_any_threshold(
    tmp_path: Path,
) -> None:
    target = _pickle(tmp_path / "m.pkl")
    for fail_on in ("critical", "medium"):
        policy = Policy.from_mapping({"fail_on": fail_on, "limits": {"max_file_bytes": 4}})
        report = scan(target, policy)
        assert report.results[0].status == "skipped"
        assert [g.rule_id for g in report.results[0].gaps] == ["SCAN-FILE-TOO-LARGE"]
        if fail_on == "critical":
            assert policy.exit_code(report) is ExitCode.ERROR


def test_a_tripped_limit_makes_the_file_incomplete(tmp_path: Path) -> None:
    target = tmp_path / "deep.pkl"
    target.write_bytes(b"\x80\x04" + b"(" * 5000 + b"N.")
    policy = Policy(limits=Limits(max_stack_depth=100), fail_on=Policy().fail_on.CRITICAL)
    report = scan(target, policy)
    result = report.results[0]
    assert result.status == "incomplete"
    assert {g.rule_id for g in result.gaps} == {"SCAN-LIMIT"}
    assert policy.exit_code(report) is ExitCode.ERROR


def test_accept_incomplete_accepts_a_rule_for_some_paths_only(tmp_path: Path) -> None:
    (tmp_path / "legacy").mkdir()
    _pickle(tmp_path / "legacy" / "a.pkl")
    _pickle(tmp_path / "b.pkl")
    policy = Policy.from_mapping(
        {
            "fail_on": "critical",
            "limits": {"max_file_bytes": 4},
            "accept_incomplete": [{"rule": "SCAN-FILE-TOO-LARGE", "paths": ["*/legacy/*"]}],
        }
    )
    report = scan(tmp_path, policy)
    accepted = {Path(r.path).name: r.gaps[0].accepted for r in report.results}
    assert accepted == {"a.pkl": True, "b.pkl": False}
    assert policy.exit_code(report) is ExitCode.ERROR
    everywhere = Policy.from_mapping(
        {
            "fail_on": "critical",
            "limits": {"max_file_bytes": 4},
            "accept_incomplete": [{"rule": "SCAN-FILE-TOO-LARGE"}],
        }
    )
    assert everywhere.exit_code(scan(tmp_path, everywhere)) is ExitCode.OK


def test_a_recognised_format_without_a_reader_is_not_a_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelshield.scanner import registry
    from modelshield.scanner.registry import Format

    monkeypatch.setitem(registry._HANDLERS, Format.HDF5, None)  # a format without a reader
    target = tmp_path / "model.h5"
    target.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    policy = Policy.from_mapping({"fail_on": "critical"})
    report = scan(target, policy)
    result = report.results[0]
    assert result.status == "incomplete"
    assert [g.rule_id for g in result.gaps] == ["SCAN-FORMAT-NOT-ANALYSED"]
    assert policy.exit_code(report) is ExitCode.ERROR


def test_a_scan_that_finds_no_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    report = scan_paths([tmp_path / "empty"])
    assert [r.status for r in report.results] == ["error"]
    assert "holds no file" in report.results[0].errors[0].message
    assert Policy().exit_code(report) is ExitCode.ERROR


def test_an_unreadable_directory_is_an_error_not_a_silent_skip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pickle(tmp_path / "ok.pkl")
    locked = tmp_path / "locked"
    locked.mkdir()
    _pickle(locked / "hidden.pkl")
    real_scandir = os.scandir

    def scandir(path: str | os.PathLike[str]) -> object:
        # What listing a mode-000 directory does (root ignores the mode, so it is simulated).
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = scan_paths([tmp_path])
    statuses = {Path(r.path).name: r.status for r in report.results}
    assert statuses == {"ok.pkl": "complete", "locked": "error"}
    assert "cannot list directory" in report.results[-1].errors[0].message
    assert Policy().exit_code(report) is ExitCode.ERROR
