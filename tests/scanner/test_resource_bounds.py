"""Resource bounds that hold for every input, measured on files built to break them.

Each file of :mod:`tests.scanner.hostile_files` is scanned by the command line in a child
process (``modelshield scan --format json FILE``), two at a time, and must end within 30 s
and 1 GiB of resident memory, with exit 1 or 2, or 0 only when the analysis was complete.
Files that carry an ``os.system`` payload behind the exhausting part must have it named at
critical severity. Timings are generous upper bounds, not benchmarks (``bench/`` has those).
"""

from __future__ import annotations

import contextlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from bench.bench_scan import measure
from msgspec import Struct

from tests.scanner.hostile_files import HOSTILE

pytestmark = pytest.mark.slow

MAX_SECONDS = 30.0
MAX_RSS = 1 << 30
#: Address-space cap of each child, only to protect the machine if a bound breaks (memory
#: maps of spilled data count here, so it cannot be the 1 GiB being tested).
_SAFETY_AS = 8 << 30
_KILL_AFTER = 90.0

#: File names by builder: the extension a user would give such a file.
_SUFFIX = {
    "big-gzip": ".pkl.gz",
    "gzip-zip-gzip": ".gz",
    "bzip2-bomb": ".bz2",
    "deep-joblib": ".joblib",
    "nested-zips": ".zip",
    "zip-many-members": ".zip",
    "deflate-zip-bomb": ".zip",
}


class Outcome(Struct):
    """How one scan ended."""

    exit_code: int
    seconds: float
    max_rss: int
    report: dict[str, Any] | None


#: ``python -m modelshield`` under an address-space cap (set in the child itself: a
#: ``preexec_fn`` is unsafe while other threads run).
#: The child writes its own peak RSS (``VmHWM``) at exit: the ``wait4`` figure of a child
#: forked from a large test process counts the parent's pages from before the ``exec``, so it
#: measures the test run rather than the scan once pytest itself passes 1 GiB.
_CHILD = (
    "import atexit, os, resource, runpy, sys; "
    "peak = os.environ.get('MODELSHIELD_TEST_PEAK_FILE'); "
    "atexit.register(lambda: peak and open(peak, 'w').write(next(line for line in "
    "open('/proc/self/status') if line.startswith('VmHWM')))); "
    f"resource.setrlimit(resource.RLIMIT_AS, ({_SAFETY_AS}, {_SAFETY_AS})); "
    "sys.argv[0] = 'modelshield'; "
    "runpy.run_module('modelshield', run_name='__main__', alter_sys=True)"
)


def _scan(path: Path, policy: Path) -> Outcome:
    report = path.with_suffix(".json")
    peak = path.with_suffix(".peak")
    cmd = [sys.executable, "-c", _CHILD, "scan", "-f", "json", "--policy", str(policy)]
    run = measure(
        [*cmd, "-o", str(report), str(path)],
        timeout=_KILL_AFTER,
        extra_env={"MODELSHIELD_TEST_PEAK_FILE": str(peak)},
    )
    max_rss = int(run.peak_mb * 2**20)  # killed before exit: the wait4 figure, an upper bound
    with contextlib.suppress(OSError, IndexError, ValueError):
        max_rss = int(peak.read_text().split()[1]) * 1024  # "VmHWM:  123456 kB"
    try:
        document = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        document = None
    return Outcome(run.code, run.wall_s, max_rss, document)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Build every hostile file and scan it (two scans at a time, one per core)."""
    files = tmp_path_factory.mktemp("hostile")
    policy = files / "defaults.toml"  # the defaults are what is tested, whatever the cwd holds
    policy.write_text("")
    paths = {
        name: build(files / f"{name}{_SUFFIX.get(name, '.pkl')}")
        for name, (build, _) in HOSTILE.items()
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_scan, path, policy) for name, path in paths.items()}
        done = {name: future.result() for name, future in futures.items()}
    for path in paths.values():
        path.unlink()
    return done


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_ends_in_bounded_time_and_memory(
    name: str, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcomes[name]
    assert outcome.report is not None, f"exit {outcome.exit_code}, no report"
    [result] = outcome.report["results"]
    assert outcome.seconds < MAX_SECONDS, outcome.seconds
    assert outcome.max_rss < MAX_RSS, outcome.max_rss
    assert result["errors"] == []
    if outcome.exit_code == 0:
        assert result["status"] == "complete"
    else:
        assert outcome.exit_code in (1, 2)
    findings = result["findings"]
    assert len(findings) <= 2_100
    if HOSTILE[name][1]:
        named = {f["evidence"].get("callable") for f in findings if f["severity"] == "critical"}
        assert "os.system" in named, [f["rule_id"] for f in findings]
