"""The governance database: every ``modelshield ci`` run recorded, and what changed over time.

The same storage layer as the runtime guard's decision log (:mod:`modelshield.storage.sql`):
SQLite by default (WAL, a busy timeout), PostgreSQL by URL, numbered migrations recorded in
``governance_meta`` under a lock, insert-only tables. A run is written in **one
transaction** once it has finished (:func:`record`): it is either complete or absent, so a
process killed at any point leaves no partial run, and two processes recording into one
SQLite file at once both succeed (the second waits for the first's write lock, and retries
while the file stays locked).

Tables (``gov_`` prefix): ``gov_runs`` (one row per run, with the number of model rows it
wrote, so that a reader can check a run is whole), ``gov_models`` (one row per model of a
run), ``gov_findings`` (per model, per fingerprint) and ``gov_metrics`` (the assessment's
figures). :func:`changes` compares, for each model, its latest run in a time window with its
last run before the window (or, when its project has no run before the window, its first run
in the window): new and fixed findings by fingerprint, models that started failing or
passing, models never seen before, models removed, and metric trends. The document it
returns is what ``modelshield report`` renders (``docs/governance.md`` lists its keys).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from modelshield.core.errors import ConfigError, ServiceError
from modelshield.gate.history import SEVERITIES, RunRecord
from modelshield.storage import sql

SCHEMA = "1.0"
"""Version of the document :func:`changes` returns."""

metadata = sa.MetaData()
governance_meta = sql.meta_table(metadata, "governance_meta")

runs = sa.Table(
    "gov_runs",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("git_commit", sa.String(64), nullable=True),
    sa.Column("version", sa.String(40), nullable=False),
    sa.Column("policy_digest", sa.String(64), nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=False),
    sa.Column("pillars", sa.Text, nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("models", sa.Integer, nullable=False),
    sa.Index("ix_gov_runs_ts", "ts_us"),
    sa.Index("ix_gov_runs_project", "project", "ts_us"),
)

models = sa.Table(
    "gov_models",
    metadata,
    sa.Column("id", sql.ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("digest", sa.String(64), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("pillars", sa.Text, nullable=False),
    *(sa.Column(s, sa.Integer, nullable=False) for s in SEVERITIES),
    sa.Index("ix_gov_models_run", "run_id"),
)

findings = sa.Table(
    "gov_findings",
    metadata,
    sa.Column("id", sql.ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("baselined", sa.Integer, nullable=False),
    sa.Column("rule_id", sa.String(100), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Index("ix_gov_findings_run", "run_id"),
)

metrics = sa.Table(
    "gov_metrics",
    metadata,
    sa.Column("id", sql.ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("check_name", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("metric_group", sa.Text, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("passed", sa.Boolean, nullable=True),
    sa.Index("ix_gov_metrics_run", "run_id"),
)

INSERT_ONLY = (runs, models, findings, metrics)
"""Tables a trigger keeps insert-only."""


def _migration_1(conn: sa.Connection) -> None:
    metadata.create_all(conn, checkfirst=True)
    sql.insert_only(conn, INSERT_ONLY, "modelshield_governance_insert_only")


MIGRATIONS: tuple[sql.Migration, ...] = ((1, "runs, models, findings, metrics", _migration_1),)
"""Schema migrations, applied in order; each runs in one transaction."""

SCHEMA_VERSION = MIGRATIONS[-1][0]
"""The schema this version of modelshield writes."""

_LOCK_KEY = 0x6D736776  # "msgv"
TIMEOUT_S = 30.0
"""How long a writer waits for another one holding a SQLite file (its busy timeout)."""
PAUSE_ENV = "MODELSHIELD_GOVERNANCE_TEST_PAUSE_S"
"""For the crash tests only: seconds to wait inside the run's transaction, before commit."""


# ---- opening ----------------------------------------------------------------------------------


def open_for_writing(url: str) -> sa.Engine:
    """An engine on the governance database, its schema created or upgraded; a database
    that cannot be reached or used is a ServiceError naming it."""
    _check_sqlite_folder(url)
    engine = sql.connect(url, timeout=TIMEOUT_S)
    try:
        sql.migrate(
            engine,
            governance_meta,
            MIGRATIONS,
            lock_key=_LOCK_KEY,
            what=f"the governance database {sql.display_url(url)}",
        )
    except sa.exc.SQLAlchemyError as e:
        engine.dispose()
        raise ServiceError(f"cannot use the governance database {_describe(url, e)}") from e
    except BaseException:
        engine.dispose()
        raise
    return engine


def open_for_reading(url: str) -> sa.Engine:
    """An engine on an existing governance database; anything else (no such file, another
    database, a newer schema) is a ServiceError naming it."""
    full = sql.normalise_url(url)
    if full.startswith("sqlite"):
        path = sa.engine.make_url(full).database or ""
        if path and path != ":memory:" and not os.path.isfile(path):  # noqa: PTH113
            raise ServiceError(f"no governance database at {path}")
    engine = sql.connect(url, timeout=TIMEOUT_S)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(governance_meta.name):
                raise ServiceError(
                    f"{sql.display_url(url)} is not a modelshield governance database (no "
                    f"{governance_meta.name} table); `modelshield ci --record` creates one"
                )
            version = sql.schema_version(conn, governance_meta)
    except sa.exc.SQLAlchemyError as e:
        engine.dispose()
        raise ServiceError(f"cannot read the governance database {_describe(url, e)}") from e
    except BaseException:
        engine.dispose()
        raise
    if version > SCHEMA_VERSION:
        engine.dispose()
        raise ServiceError(
            f"the governance database {sql.display_url(url)} has schema version {version}, "
            f"newer than this modelshield ({SCHEMA_VERSION}): upgrade modelshield"
        )
    return engine


def _check_sqlite_folder(url: str) -> None:
    full = sql.normalise_url(url)
    if not full.startswith("sqlite"):
        return
    path = sa.engine.make_url(full).database or ""
    if not path or path == ":memory:":
        return
    folder = os.path.dirname(os.path.abspath(path))  # noqa: PTH100, PTH120
    if not os.path.isdir(folder):  # noqa: PTH112
        raise ConfigError(f"the governance database {path}: the folder {folder} does not exist")


def _describe(url: str, error: sa.exc.SQLAlchemyError) -> str:
    """The URL and the driver's reason in one line (never the password)."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"{sql.display_url(url)}: {reason[0] if reason else type(error).__name__}"


# ---- writing ----------------------------------------------------------------------------------


def record(engine: sa.Engine, run: RunRecord) -> None:
    """Write one run, all its rows in one transaction (see the module)."""
    run_row = {
        "run_id": run.run_id,
        "ts_us": run.ts_us,
        "project": run.project,
        "git_commit": run.git_commit,
        "version": run.version,
        "policy_digest": run.policy_digest,
        "verdict": run.verdict,
        "exit_code": run.exit_code,
        "pillars": json.dumps(list(run.pillars)),
        "duration_s": run.duration_s,
        "models": len(run.models),
    }
    model_rows = [
        {
            "run_id": run.run_id,
            "path": m.path,
            "kind": m.kind,
            "digest": m.digest,
            "outcome": m.outcome,
            "pillars": json.dumps(dict(m.pillars), sort_keys=True),
            **{s: int(m.counts.get(s, 0)) for s in SEVERITIES},
        }
        for m in run.models
    ]
    finding_rows = [
        {
            "run_id": run.run_id,
            "path": m.path,
            "fingerprint": f.fingerprint,
            "count": f.count,
            "baselined": f.baselined,
            "rule_id": f.rule_id,
            "severity": f.severity,
            "title": f.title[:2000],
        }
        for m in run.models
        for f in m.findings
    ]
    metric_rows = [
        {
            "run_id": run.run_id,
            "path": m.path,
            "check_name": x.check,
            "name": x.name,
            "metric_group": x.group,
            "value": x.value,
            "threshold": x.threshold,
            "passed": x.passed,
        }
        for m in run.models
        for x in m.metrics
    ]
    pause = _test_pause()

    def write() -> None:
        with engine.begin() as conn:
            sql.lock_for_writing(conn, _LOCK_KEY)
            conn.execute(runs.insert(), [run_row])
            if model_rows:
                conn.execute(models.insert(), model_rows)
            if pause:
                import sys
                import time

                print(f"modelshield: pausing {pause:g} s before commit", file=sys.stderr)
                sys.stderr.flush()
                time.sleep(pause)
            if finding_rows:
                conn.execute(findings.insert(), finding_rows)
            if metric_rows:
                conn.execute(metrics.insert(), metric_rows)

    try:
        sql.retry_locked(engine, write, deadline_s=2 * TIMEOUT_S)
    except sa.exc.SQLAlchemyError as e:
        raise ServiceError(f"cannot record the run in {_describe(str(engine.url), e)}") from e


def _test_pause() -> float:
    try:
        return max(0.0, float(os.environ.get(PAUSE_ENV, "0") or 0))
    except ValueError:
        return 0.0


# ---- reading ----------------------------------------------------------------------------------


def iso(us: int) -> str:
    """Microseconds since the epoch as ISO 8601 (UTC, seconds)."""
    return dt.datetime.fromtimestamp(us / 1e6, tz=dt.UTC).isoformat(timespec="seconds")


def _run_doc(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "run_id": row["run_id"],
        "time": iso(row["ts_us"]),
        "git_commit": row["git_commit"],
        "version": row["version"],
        "verdict": row["verdict"],
    }


def changes(
    engine: sa.Engine,
    since_us: int,
    until_us: int,
    *,
    project: str | None = None,
) -> dict[str, Any]:
    """What changed in [since, until) across every model (see the module); ``project``
    limits it to one project."""
    with engine.connect() as conn:
        where = [runs.c.ts_us < until_us]
        if project is not None:
            where.append(runs.c.project == project)
        window = [
            dict(r)
            for r in conn.execute(
                sa.select(runs)
                .where(runs.c.ts_us >= since_us, *where)
                .order_by(runs.c.ts_us, runs.c.run_id)
            ).mappings()
        ]
        before_count = conn.execute(
            sa.select(sa.func.count()).select_from(runs).where(runs.c.ts_us < since_us, *where)
        ).scalar_one()
        projects = sorted({r["project"] for r in window})
        last_before = _last_runs_before(conn, since_us, projects)
        window_ids = [r["run_id"] for r in window]
        window_models = _rows(conn, models, window_ids)
        prior = _prior_models(conn, since_us, projects)
        prior_ids = sorted({row["run_id"] for row in prior})
        wanted = sorted(set(window_ids) | set(prior_ids))
        finding_rows = _rows(conn, findings, wanted)
        metric_rows = _rows(conn, metrics, wanted)
    by_run = {r["run_id"]: r for r in window}
    run_info = {**by_run, **{r["run_id"]: r for r in last_before.values()}}
    for row in prior:
        run_info.setdefault(row["run_id"], row["_run"])
    found: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for f in finding_rows:
        found[(f["run_id"], f["path"])].append(f)
    measured: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for x in metric_rows:
        measured[(x["run_id"], x["path"])].append(x)

    entries: list[dict[str, Any]] = []
    new_findings: list[dict[str, Any]] = []
    fixed_findings: list[dict[str, Any]] = []
    trends: list[dict[str, Any]] = []
    for name in projects:
        runs_here = [r for r in window if r["project"] == name]
        end_run = runs_here[-1]
        had_before = name in last_before
        in_window: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for m in window_models:
            if by_run[m["run_id"]]["project"] == name:
                in_window[m["path"]].append(m)
        before = {m["path"]: m for m in prior if m["_run"]["project"] == name}
        start_run = last_before.get(name) or runs_here[0]
        start_paths = {m["path"] for m in prior if m["run_id"] == start_run["run_id"]}
        if not had_before:
            start_paths = {
                p for p, ms in in_window.items() if ms[0]["run_id"] == start_run["run_id"]
            }
        end_scanned = "scan" in json.loads(end_run["pillars"])
        end_paths = {p for p, ms in in_window.items() if ms[-1]["run_id"] == end_run["run_id"]}
        for path in sorted(set(in_window) | start_paths):
            rows = in_window.get(path, [])
            start = before.get(path)
            first_here = bool(rows) and rows[0]["run_id"] == start_run["run_id"]
            if start is None and not had_before and first_here:
                start = rows[0]
            removed = path not in end_paths and end_scanned and path != "."
            end = rows[-1] if rows else None
            if end is None and start is None:
                continue
            latest = end or start
            assert latest is not None
            start_fp = _fingerprints(found.get((start["run_id"], path), [])) if start else {}
            end_fp = {}
            if end is not None and not removed:
                end_fp = _fingerprints(found.get((end["run_id"], path), []))
            added = _diff(end_fp, start_fp)
            gone = _diff(start_fp, end_fp)
            status = "new" if start is None else "removed" if removed else "seen"
            before_outcome = start["outcome"] if start else None
            after_outcome = None if removed or end is None else end["outcome"]
            change = None
            if before_outcome is not None and after_outcome is not None:
                if after_outcome == "fail" and before_outcome != "fail":
                    change = "started-failing"
                elif after_outcome == "pass" and before_outcome != "pass":
                    change = "started-passing"
            entry = {
                "project": name,
                "path": path,
                "kind": latest["kind"],
                "status": status,
                "change": change,
                "outcome": after_outcome,
                "previous_outcome": before_outcome,
                "pillars": json.loads(latest["pillars"]),
                "counts": {s: latest[s] for s in SEVERITIES},
                "digest": None if removed else latest["digest"],
                "digest_changed": bool(
                    start and end and not removed and start["digest"] != end["digest"]
                ),
                "runs_in_window": len(rows),
                "last_run": _run_doc(run_info[latest["run_id"]]),
                "compared_with": _run_doc(run_info[start["run_id"]]) if start else None,
                "new_findings": added,
                "fixed_findings": gone,
            }
            entries.append(entry)
            new_findings.extend({"project": name, "path": path, **f} for f in added)
            fixed_findings.extend({"project": name, "path": path, **f} for f in gone)
            trends.extend(_trends(name, path, start, rows, measured, run_info))

    verdicts = {v: sum(1 for r in window if r["verdict"] == v) for v in ("pass", "fail", "error")}
    return {
        "tool": "modelshield",
        "kind": "governance-report",
        "schema_version": SCHEMA,
        "database": sql.display_url(str(engine.url)),
        "since": iso(since_us),
        "until": iso(until_us),
        "project": project,
        "runs": {
            "in_window": len(window),
            "before_window": int(before_count),
            "first": iso(window[0]["ts_us"]) if window else None,
            "last": iso(window[-1]["ts_us"]) if window else None,
            "verdicts": verdicts,
            "projects": projects,
            "latest": [_run_doc(r) | {"project": r["project"]} for r in _latest(window)],
        },
        "summary": {
            "models": sum(1 for e in entries if e["status"] != "removed" and e["path"] != "."),
            "new_models": sum(1 for e in entries if e["status"] == "new"),
            "removed_models": sum(1 for e in entries if e["status"] == "removed"),
            "started_failing": sum(1 for e in entries if e["change"] == "started-failing"),
            "started_passing": sum(1 for e in entries if e["change"] == "started-passing"),
            "failing": sum(1 for e in entries if e["outcome"] == "fail"),
            "new_findings": sum(f["count"] for f in new_findings),
            "fixed_findings": sum(f["count"] for f in fixed_findings),
        },
        "models": entries,
        "new_findings": new_findings,
        "fixed_findings": fixed_findings,
        "metrics": trends,
    }


def _latest(window: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for r in window:
        last[r["project"]] = r
    return [last[p] for p in sorted(last)]


def _rows(conn: sa.Connection, table: sa.Table, run_ids: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(run_ids), 500):
        chunk = run_ids[i : i + 500]
        query = sa.select(table).where(table.c.run_id.in_(chunk)).order_by(table.c.id)
        out.extend(dict(r) for r in conn.execute(query).mappings())
    order = {run_id: i for i, run_id in enumerate(run_ids)}
    out.sort(key=lambda r: (order[r["run_id"]], r["id"]))
    return out


def _last_runs_before(
    conn: sa.Connection, since_us: int, projects: Iterable[str]
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name in projects:
        row = (
            conn.execute(
                sa.select(runs)
                .where(runs.c.project == name, runs.c.ts_us < since_us)
                .order_by(runs.c.ts_us.desc(), runs.c.run_id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        if row is not None:
            found[name] = dict(row)
    return found


def _prior_models(conn: sa.Connection, since_us: int, projects: list[str]) -> list[dict[str, Any]]:
    """Each model's row in its last run before the window (per project)."""
    if not projects:
        return []
    joined = models.join(runs, models.c.run_id == runs.c.run_id)
    latest = (
        sa.select(models.c.path, runs.c.project, sa.func.max(runs.c.ts_us).label("last_us"))
        .select_from(joined)
        .where(runs.c.ts_us < since_us, runs.c.project.in_(projects))
        .group_by(models.c.path, runs.c.project)
        .subquery()
    )
    query = (
        sa.select(models, *(runs.c[k].label(f"run_{k}") for k in _RUN_KEYS))
        .select_from(
            joined.join(
                latest,
                sa.and_(
                    latest.c.path == models.c.path,
                    latest.c.project == runs.c.project,
                    latest.c.last_us == runs.c.ts_us,
                ),
            )
        )
        .order_by(models.c.id)
    )
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in conn.execute(query).mappings():
        row = dict(r)
        run = {k: row.pop(f"run_{k}") for k in _RUN_KEYS}
        row["_run"] = run
        chosen[(run["project"], row["path"])] = row
    return list(chosen.values())


_RUN_KEYS = ("run_id", "ts_us", "project", "git_commit", "version", "verdict", "pillars")


def _fingerprints(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        r["fingerprint"]: {
            "fingerprint": r["fingerprint"],
            "rule_id": r["rule_id"],
            "severity": r["severity"],
            "title": r["title"],
            "count": r["count"],
            "baselined": r["baselined"],
        }
        for r in rows
    }


def _diff(
    after: Mapping[str, dict[str, Any]], before: Mapping[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Findings of ``after`` not in ``before`` (by fingerprint, counting repeats)."""
    out = []
    for digest, f in after.items():
        extra = f["count"] - (before[digest]["count"] if digest in before else 0)
        if extra > 0:
            out.append({**f, "count": extra})
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    out.sort(key=lambda f: (rank.get(f["severity"], 9), f["rule_id"], f["fingerprint"]))
    return out


def _trends(
    project: str,
    path: str,
    start: Mapping[str, Any] | None,
    rows: list[dict[str, Any]],
    measured: Mapping[tuple[str, str], list[dict[str, Any]]],
    run_info: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """One trend per metric of the model: its value in the compared run, then in each run in
    the window."""
    sources = list(rows)
    if start is not None and (not rows or start["run_id"] != rows[0]["run_id"]):
        sources.insert(0, dict(start))
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    meta: dict[tuple[str, str, str], dict[str, Any]] = {}
    for m in sources:
        when = run_info[m["run_id"]]
        for x in measured.get((m["run_id"], path), []):
            key = (x["check_name"], x["name"], x["metric_group"])
            series.setdefault(key, []).append(
                {
                    "time": iso(when["ts_us"]),
                    "run_id": m["run_id"],
                    "value": x["value"],
                    "passed": x["passed"],
                }
            )
            meta[key] = {"threshold": x["threshold"]}
    out = []
    for (check, name, group), points in sorted(series.items()):
        first, last = points[0], points[-1]
        delta = (
            None
            if first["value"] is None or last["value"] is None
            else last["value"] - first["value"]
        )
        out.append(
            {
                "project": project,
                "path": path,
                "check": check,
                "name": name,
                "group": group,
                "threshold": meta[(check, name, group)]["threshold"],
                "first": first["value"],
                "last": last["value"],
                "change": delta,
                "passed": last["passed"],
                "series": points,
            }
        )
    return out
