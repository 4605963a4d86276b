"""``scan --jobs N``: worker processes give the report a serial scan gives, in input order."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from modelshield.core.errors import ConfigError
from modelshield.core.findings import FileResult
from modelshield.core.policy import ExitCode
from modelshield.scanner import engine
from modelshield.scanner.engine import BATCH_BYTES, BATCH_FILES, scan_paths
from modelshield.scanner.fleet import Executor
from tests.cli.conftest import run_cli
from tests.scanner import fleet_helpers
from tests.scanner.fleet_helpers import mapped
from tests.scanner.fleet_tree import POLICY, build_fleet, comparable


class Recorder:
    """An observer that records what the progress bar would show."""

    def __init__(self) -> None:
        self.total = -1
        self.paths: list[str] = []

    def on_start(self, total: int) -> None:
        self.total = total

    def on_file(self, result: FileResult) -> None:
        self.paths.append(result.path)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return build_fleet(tmp_path_factory.mktemp("fleet"))


@pytest.fixture(scope="module")
def serial(fleet: list[Path]) -> tuple[object, ...]:
    return comparable(scan_paths(fleet, POLICY))


def test_the_tree_has_every_kind_of_result(fleet: list[Path]) -> None:
    """The comparison below means something only if the tree gives each kind of result."""
    report = scan_paths(fleet, POLICY)
    statuses = {r.status for r in report.results}
    assert statuses >= {"complete", "incomplete", "skipped", "error"}
    rules = {f.rule_id for f in report.findings}
    assert {"PICKLE-CALL-DANGEROUS", "SCAN-FILE-TOO-LARGE", "SCAN-LIMIT"} <= rules
    assert "REPO-REMOTE-CODE" in rules  # the repository pass ran on the directory
    assert len(report.results) > BATCH_FILES  # more than one batch
    assert POLICY.exit_code(POLICY.apply(report)) is ExitCode.FINDINGS


def test_two_workers_give_the_serial_report(fleet: list[Path], serial: tuple[object, ...]) -> None:
    recorder = Recorder()
    report = scan_paths(fleet, POLICY, recorder, jobs=2)
    assert comparable(report) == serial
    # Progress still works: the total first, then every file in input order.
    assert recorder.total == len(report.results)
    assert recorder.paths == [r.path for r in report.results]
    assert multiprocessing.active_children() == []  # the pool is gone


def test_more_workers_than_batches(fleet: list[Path], serial: tuple[object, ...]) -> None:
    assert comparable(scan_paths(fleet, POLICY, jobs=None)) == serial  # one per CPU
    assert comparable(scan_paths(fleet, POLICY, jobs=16)) == serial


def test_one_file_or_one_job_runs_in_this_process(
    fleet: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pool(*args: object, **kwargs: object) -> None:
        raise AssertionError("no worker may be started")

    monkeypatch.setattr("modelshield.scanner.fleet.ordered_map", no_pool)
    assert len(scan_paths([fleet[1]], POLICY, jobs=4).results) == 1
    assert scan_paths(fleet, POLICY, jobs=1).results


def test_an_unknown_executor_is_a_configuration_error(fleet: list[Path]) -> None:
    with pytest.raises(ConfigError, match="unknown executor 'spark'"):
        scan_paths(fleet, POLICY, jobs=2, executor="spark")


def test_batches_keep_order_and_send_large_files_alone(tmp_path: Path) -> None:
    small = []
    for i in range(BATCH_FILES + 5):
        path = tmp_path / f"s{i:03d}"
        path.write_bytes(b"x" * 10)
        small.append((str(path), None))
    big = tmp_path / "big"
    big.write_bytes(b"\0" * BATCH_BYTES)
    entries = [*small[:3], (str(big), None), *small[3:], (str(tmp_path / "gone"), "missing")]
    batches = list(engine._batches(entries))
    assert [e for batch in batches for e in batch] == entries
    assert batches[0] == tuple(small[:3])
    assert batches[1] == ((str(big), None),)
    assert all(len(batch) <= BATCH_FILES for batch in batches)


# ---- the ordered map ----------------------------------------------------------------------


def test_ordered_map_yields_in_input_order() -> None:
    results = mapped(fleet_helpers.scaled, 3, range(40), Executor.LOCAL)
    assert list(results) == [3 * i for i in range(40)]


def test_a_killed_worker_loses_only_its_item() -> None:
    """SIGKILL (the out-of-memory killer) takes the pool down: every other item is still
    computed, and the item that kills its worker again is reported lost, in its place."""
    results = list(mapped(fleet_helpers.killed_on, 5, range(12), Executor.LOCAL))
    assert results[:5] == [0, 1, 2, 3, 4] and results[6:] == list(range(6, 12))
    assert isinstance(results[5], str) and results[5].startswith("lost 5: the worker process")
    assert multiprocessing.active_children() == []


def test_a_failing_task_is_lost_with_its_reason() -> None:
    results = list(mapped(fleet_helpers.raises_on, 2, range(4), Executor.LOCAL))
    assert results == [0, 1, "lost 2: the worker failed: ValueError: task failed on 2", 3]


def test_stopping_early_stops_the_workers() -> None:
    results = mapped(fleet_helpers.scaled, 1, range(1000), Executor.LOCAL)
    assert next(results) == 0
    results.close()
    assert multiprocessing.active_children() == []


def test_a_lost_batch_is_an_error_for_each_of_its_files() -> None:
    [one] = engine._lost_batch([("a.pkl", None)], "it died")
    assert one.status == "error" and one.errors[0].message == "not analysed: it died"
    two = engine._lost_batch([("a.pkl", None), ("b.pkl", None)], "it died")
    assert [r.path for r in two] == ["a.pkl", "b.pkl"]
    assert all("one of 2 files" in r.errors[0].message for r in two)


# ---- the command line ---------------------------------------------------------------------


def test_cli_jobs_gives_the_serial_json(fleet: list[Path], tmp_path: Path) -> None:
    def run(*extra: str) -> tuple[int, list[dict[str, object]]]:
        done = run_cli("scan", "-f", "json", *extra, *map(str, fleet[:2]), cwd=tmp_path)
        document = json.loads(done.stdout)
        for result in document["results"]:
            result.pop("duration_s", None)
        return done.code, document["results"]

    assert run("--jobs", "2") == run() == run("--jobs", "auto")


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_cli_bad_jobs_is_a_usage_error(value: str, tmp_path: Path) -> None:
    done = run_cli("scan", "--jobs", value, str(tmp_path), cwd=tmp_path)
    assert done.code == 2 and "--jobs" in done.stderr and "Traceback" not in done.stderr


def test_cli_ray_without_the_extra_says_how_to_install_it(
    fleet: list[Path], tmp_path: Path
) -> None:
    """Ray is imported only for --executor ray; without it, the install command (exit 2)."""
    fake = tmp_path / "no-ray"
    (fake / "ray").mkdir(parents=True)
    (fake / "ray" / "__init__.py").write_text("raise ImportError('no ray here')\n")
    args = ("scan", "--jobs", "2", "--executor", "ray", str(fleet[0]))
    done = run_cli(*args, cwd=tmp_path, env={"PYTHONPATH": str(fake)})
    assert done.code == 2, done.stderr
    assert "pip install 'modelshield[ray]'" in done.stderr and "Traceback" not in done.stderr
    # Local workers need nothing of Ray.
    assert run_cli("scan", "--jobs", "2", str(fleet[1]), cwd=tmp_path).code == 0
