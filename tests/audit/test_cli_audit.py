"""``modelshield audit`` and ``modelshield db update`` end to end, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelshield.report import OutputFormat

from .osv_server import serve
from .test_osv_api import closed_port

cli = pytest.importorskip("modelshield.cli")
if not hasattr(cli, "main"):  # pragma: no cover - the CLI package lands separately
    pytest.skip("modelshield.cli has no main yet", allow_module_level=True)


def modelshield(*args: str | Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELSHIELD_CACHE_DIR": str(cache), "NO_COLOR": "1"}
    env.pop("MODELSHIELD_OSV_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "modelshield", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def assert_clean_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for needle in needles:
        assert needle in proc.stderr + proc.stdout


@pytest.fixture
def requirements(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.txt"
    path.write_text("scikit-learn==0.23.0\njoblib==1.2.0\n")
    return path


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_offline_audit_every_format(
    fmt: OutputFormat,
    requirements: Path,
    advisories_dir: Path,
    snapshot_cache: Path,
    snapshot_db: object,
) -> None:
    proc = modelshield(
        "audit",
        "--db",
        advisories_dir / "pypa",
        "--format",
        fmt.value,
        requirements,
        cache=snapshot_cache,
    )
    assert proc.returncode == 1, proc.stderr
    if fmt is OutputFormat.JSON:
        doc = json.loads(proc.stdout)
        assert doc["command"] == "audit"
        rules = [f["rule_id"] for r in doc["results"] for f in r["findings"]]
        # The snapshot's newest advisory is from 2024: the audit says the database is stale.
        assert rules == ["AUDIT-VULNERABLE-DEPENDENCY"] * 2 + ["AUDIT-DATABASE-STALE"]
    elif fmt is OutputFormat.SARIF:
        doc = json.loads(proc.stdout)
        results = doc["runs"][0]["results"]
        assert {r["ruleId"] for r in results} == {
            "AUDIT-VULNERABLE-DEPENDENCY",
            "AUDIT-DATABASE-STALE",
        }
    else:
        assert "PYSEC-2020-107" in proc.stdout


def test_ignores_and_fail_threshold(
    requirements: Path, advisories_dir: Path, snapshot_cache: Path, snapshot_db: object
) -> None:
    db = advisories_dir / "pypa"
    ignored = modelshield(
        "audit",
        "--db",
        db,
        "--ignore",
        "CVE-2020-13092",
        "--ignore",
        "PYSEC-2020-108",
        requirements,
        cache=snapshot_cache,
    )
    assert ignored.returncode == 0, ignored.stdout + ignored.stderr
    by_rule = modelshield(
        "audit",
        "--db",
        db,
        "--ignore",
        "AUDIT-VULNERABLE-DEPENDENCY",
        requirements,
        cache=snapshot_cache,
    )
    assert by_rule.returncode == 0
    critical_only = modelshield(
        "audit", "--db", db, "--fail-on", "critical", requirements, cache=snapshot_cache
    )
    assert critical_only.returncode == 0


def test_offline_without_a_database_exits_2(requirements: Path, tmp_path: Path) -> None:
    proc = modelshield("audit", "--offline", requirements, cache=tmp_path / "empty-cache")
    assert_clean_error(proc, "no", "modelshield db update", "--db")


def test_unreachable_api_exits_2(requirements: Path, tmp_path: Path) -> None:
    proc = modelshield(
        "audit",
        "--osv-url",
        f"http://127.0.0.1:{closed_port()}",
        "--timeout",
        "2",
        requirements,
        cache=tmp_path / "cache",
    )
    assert_clean_error(proc, "cannot reach the OSV API")


def test_malformed_inputs_exit_2_naming_the_file(tmp_path: Path, snapshot_vulns: Path) -> None:
    lock = tmp_path / "poetry.lock"
    lock.write_text("[[package]\nname = 'x'\n")
    with serve(snapshot_vulns) as srv:
        proc = modelshield("audit", "--osv-url", srv.url, lock, cache=tmp_path / "cache")
    assert_clean_error(proc, str(lock), "not valid TOML")
    nothing = modelshield("audit", cache=tmp_path / "cache")
    assert_clean_error(nothing, "nothing to audit")


def test_db_update_then_offline_audit(tmp_path: Path, snapshot_vulns: Path) -> None:
    cache = tmp_path / "cache"
    req = tmp_path / "requirements.txt"
    req.write_text("onnx==1.12.0\ntorch==1.12.0\n")
    with serve(snapshot_vulns, export_packages=["onnx", "torch"]) as srv:
        update = modelshield("db", "update", "--url", f"{srv.url}/export/all.zip", cache=cache)
        assert update.returncode == 0, update.stderr
        assert "Stored 2 OSV records" in update.stdout
        failed = modelshield("db", "update", "--url", f"{srv.url}/missing.zip", cache=cache)
    assert_clean_error(failed, "HTTP 404")
    proc = modelshield("audit", "--offline", "--format", "json", req, cache=cache)
    assert proc.returncode == 1, proc.stderr
    findings = json.loads(proc.stdout)["results"][0]["findings"]
    ids = sorted(f["evidence"]["ids"] for f in findings if "ids" in f["evidence"])
    # JSON schema 2.0: id lists are lists.
    assert ids == [["PYSEC-2022-43015", "CVE-2022-45907"], ["PYSEC-2023-38", "CVE-2022-25882"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "x", "--osv-url", "http://127.0.0.1:9"], "two sources"),
        (["--offline", "--osv-url", "http://127.0.0.1:9"], "contradict"),
        (["--timeout", "0"], "--timeout must be positive"),
    ],
)
def test_conflicting_options_are_usage_errors(
    args: list[str], message: str, requirements: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["audit", *args, str(requirements)]) == 2
    assert message in capsys.readouterr().err
