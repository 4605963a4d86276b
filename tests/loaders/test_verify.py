"""``modelshield scan --verify-load``: each file the scan passed is loaded by the restricted
loader in a limited child process; a refusal is a finding, a crash or timeout an error."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from modelshield.core.findings import FileResult, Report
from modelshield.core.policy import Policy
from modelshield.loaders.verify import Outcome, Request, verify_report
from tests.cli.conftest import run_cli
from tests.scanner.pickle.hostile import Asm


def _scan(*args: str, cwd: Path) -> tuple[int, dict[str, Any]]:
    run = run_cli("scan", "--format", "json", *args, cwd=cwd)
    assert "Traceback" not in run.stderr, run.stderr
    return run.code, json.loads(run.stdout)


def _by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {Path(r["path"]).name: r for r in doc["results"]}


def test_verify_load_is_off_by_default(tmp_path: Path) -> None:
    (tmp_path / "m.pkl").write_bytes(pickle.dumps({"w": [1.0]}))
    code, doc = _scan("m.pkl", cwd=tmp_path)
    assert code == 0
    assert "verify_load" not in _by_name(doc)["m.pkl"]["metadata"]


@pytest.mark.slow  # imports torch in the child
def test_clean_files_are_loaded_and_say_by_which_loader(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.ones(3)}, tmp_path / "w.pt")
    (tmp_path / "m.pkl").write_bytes(pickle.dumps({"w": [1.0]}))
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "bad.pkl").write_bytes(Asm(2).call("os", "system", "id").stop().bytes())
    code, doc = _scan("--verify-load", ".", cwd=tmp_path)
    results = _by_name(doc)
    assert code == 1  # bad.pkl: the scan's own finding; it is never loaded
    assert "loaded by the restricted torch loader" in results["w.pt"]["metadata"]["verify_load"]
    assert "restricted pickle loader" in results["m.pkl"]["metadata"]["verify_load"]
    assert "not verified" in results["notes.txt"]["metadata"]["verify_load"]
    assert "verify_load" not in results["bad.pkl"]["metadata"]


@pytest.mark.slow  # imports scipy in the child
def test_a_file_the_scan_passes_and_the_load_refuses_is_a_mismatch(tmp_path: Path) -> None:
    """A pickled scipy distribution: the scan passes it today, the load stops its exec (or the
    scan refuses it, once the safe list stops covering it: then nothing is verified)."""
    stats = pytest.importorskip("scipy.stats")
    (tmp_path / "dist.pkl").write_bytes(pickle.dumps(stats.norm(0, 1), protocol=4))
    code, doc = _scan("--verify-load", "dist.pkl", cwd=tmp_path)
    result = _by_name(doc)["dist.pkl"]
    rules = [f["rule_id"] for f in result["findings"]]
    assert code == 1
    if "LOAD-VERIFY-MISMATCH" in rules:
        [mismatch] = [f for f in result["findings"] if f["rule_id"] == "LOAD-VERIFY-MISMATCH"]
        assert mismatch["severity"] == "high"
        assert mismatch["evidence"]["load_rule"] == "LOAD-SINK-BLOCKED"
        assert mismatch["evidence"]["loader"] == "pickle"
    else:
        assert "verify_load" not in result["metadata"]


def test_a_mismatch_on_an_unknown_callable(tmp_path: Path) -> None:
    """--fail-on high passes an unlisted import; the restricted unpickler refuses it."""
    (tmp_path / "m.pkl").write_bytes(Asm(4).stack_global("acme_tools", "Thing").stop().bytes())
    code, doc = _scan("--verify-load", "--fail-on", "high", "m.pkl", cwd=tmp_path)
    findings = {f["rule_id"]: f for f in _by_name(doc)["m.pkl"]["findings"]}
    assert code == 1
    assert findings["LOAD-VERIFY-MISMATCH"]["evidence"]["load_rule"] == "PICKLE-IMPORT-UNKNOWN"


def test_a_child_that_runs_out_of_memory_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(b"\0" * 20_000_000, protocol=4))
    code, doc = _scan("--verify-load", "--verify-load-memory", "1", "m.pkl", cwd=tmp_path)
    [error] = _by_name(doc)["m.pkl"]["errors"]
    assert code == 2
    assert error["stage"] == "verify-load"


def test_a_child_that_runs_out_of_time_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(list(range(10))))
    code, doc = _scan("--verify-load", "--verify-load-timeout", "0.001", "m.pkl", cwd=tmp_path)
    [error] = _by_name(doc)["m.pkl"]["errors"]
    assert code == 2
    assert "did not finish within" in error["message"]


def test_outcomes_map_to_findings_errors_and_notes() -> None:
    """The parent's side, with the child replaced: each outcome's place in the report."""
    policy = Policy()
    clean = FileResult(path="m.pkl", format="pickle")
    report = Report.of("scan", [clean])
    seen: list[Request] = []

    def runner(outcome: Outcome) -> Any:
        def run(request: Request, seconds: float) -> Outcome:
            seen.append(request)
            assert seconds == policy.limits.verify_load_seconds
            return outcome

        return run

    crashed = verify_report(report, policy, runner=runner(Outcome("error", reason="signal 9")))
    assert crashed.results[0].errors[0].message.endswith("signal 9")
    assert not crashed.results[0].finished
    refused = Outcome("refused", stage="format", reason="joblib < 0.10")
    assert verify_report(report, policy, runner=runner(refused)).results[0].errors
    ignored = Policy(ignore=frozenset({"LOAD-VERIFY-MISMATCH"}))
    mismatch = Outcome("refused", stage="load", reason="x")
    assert verify_report(report, ignored, runner=runner(mismatch)).results[0].findings == ()
    assert seen[0].loader == "pickle"
    assert seen[0].memory_bytes == policy.limits.verify_load_memory_bytes
