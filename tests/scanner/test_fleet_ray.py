"""``scan --executor ray``: a distributed scan gives the serial report, on a local Ray cluster
that the tests start (one for the module: starting Ray takes seconds)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelshield.scanner.engine import scan_paths
from modelshield.scanner.fleet import Executor
from tests.cli.conftest import run_cli
from tests.scanner import fleet_helpers
from tests.scanner.fleet_helpers import mapped
from tests.scanner.fleet_tree import POLICY, build_fleet, comparable

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray head node with two CPUs; yields the address other drivers join."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return build_fleet(tmp_path_factory.mktemp("fleet"))


def test_ray_gives_the_serial_report(cluster: str, fleet: list[Path]) -> None:
    serial = comparable(scan_paths(fleet, POLICY))
    assert comparable(scan_paths(fleet, POLICY, jobs=2, executor="ray")) == serial
    assert comparable(scan_paths(fleet, POLICY, jobs=None, executor="ray")) == serial
    assert ray.is_initialized()  # a session the caller opened is left open


def test_relative_paths_mean_the_same_on_the_workers(
    cluster: str, fleet: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(fleet[0].parent)
    inputs = [os.path.relpath(p) for p in fleet]
    serial = comparable(scan_paths(inputs, POLICY))
    assert comparable(scan_paths(inputs, POLICY, jobs=2, executor="ray")) == serial


@pytest.mark.parametrize("func", [fleet_helpers.raises_on, fleet_helpers.killed_on])
def test_a_failed_or_killed_task_is_lost_not_a_crash(
    cluster: str, func: Callable[[int, int], int]
) -> None:
    """A task that raises, or whose worker is killed (Ray retries it once), is lost."""
    results = list(mapped(func, 1, range(3), Executor.RAY))
    assert results[0] == 0 and results[2] == 2
    assert isinstance(results[1], str) and results[1].startswith("lost 1: the Ray task failed")


def test_cli_joins_the_cluster_and_gives_the_serial_json(
    cluster: str, fleet: list[Path], tmp_path: Path
) -> None:
    def run(*extra: str, env: dict[str, str] | None = None) -> tuple[int, object]:
        done = run_cli("scan", "-f", "json", *extra, str(fleet[0]), cwd=tmp_path, env=env)
        assert "Traceback" not in done.stderr, done.stderr
        document = json.loads(done.stdout)
        for result in document["results"]:
            result.pop("duration_s", None)
        return done.code, (document["results"], document["repositories"])

    assert run("--executor", "ray", env={"RAY_ADDRESS": cluster}) == run()
