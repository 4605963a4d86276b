"""The decision log: insert-only, hash-chained, verified; spooled while the database is down
and replayed without loss or duplicates; flushed at shutdown."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from modelshield.guard import store
from tests.guard.conftest import ALICE, Data, rows_in_db


def serve(guard: Any, data: Data, n: int, start: int = 0) -> list[int]:
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    with TestClient(build_app(guard, str(data.tokens))) as c:
        return [
            c.post(
                "/predict", json={"instances": data.rows(start + i, 1)}, headers=ALICE
            ).status_code
            for i in range(n)
        ]


def test_shutdown_writes_every_record(make_guard: Callable[..., Any], data: Data) -> None:
    guard = make_guard(flush_interval_ms=60_000, batch_size=10_000)  # never by itself
    serve(guard, data, 25)
    engine = store.connect(guard.log.url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.decisions)).scalar() == 25


def test_the_tables_are_insert_only(make_guard: Callable[..., Any], data: Data) -> None:
    guard = make_guard()
    serve(guard, data, 3)
    engine = store.connect(guard.log.url)
    for statement in (
        "UPDATE guard_decisions SET decision = 'allow'",
        "DELETE FROM guard_decisions",
        "DELETE FROM guard_window_counts",
        "UPDATE guard_chains SET replica = 'x'",
        "DELETE FROM guard_references",
    ):
        with pytest.raises(sa.exc.DatabaseError, match="insert-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)


def tamper(url: str, *statements: str) -> None:
    """What an attacker with the database's owner rights does: drop the triggers, edit."""
    engine = store.connect(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER guard_decisions_no_update")
        conn.exec_driver_sql("DROP TRIGGER guard_decisions_no_delete")
        for s in statements:
            conn.exec_driver_sql(s)


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("UPDATE guard_decisions SET decision = 'block' WHERE seq = 5", "edited"),
        ("UPDATE guard_decisions SET client = 'mallory' WHERE seq = 2", "edited"),
        ("DELETE FROM guard_decisions WHERE seq = 4", "missing"),
        ("DELETE FROM guard_decisions WHERE seq IN (1, 2)", "missing"),
        ("UPDATE guard_decisions SET seq = seq + 100 WHERE seq = 7", "missing"),
    ],
)
def test_verify_finds_edited_and_deleted_records(
    make_guard: Callable[..., Any], data: Data, statement: str, kind: str, capsys: Any
) -> None:
    from modelshield.cli import main

    guard = make_guard()
    serve(guard, data, 10)
    assert main(["guard", "verify", "--db", guard.log.url]) == 0
    assert "INTACT" in capsys.readouterr().out
    tamper(guard.log.url, statement)
    result = store.verify(store.connect(guard.log.url))
    assert kind in {p.kind for p in result.problems}
    assert main(["guard", "verify", "--db", guard.log.url, "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert not doc["intact"] and doc["problems"]


def test_verify_finds_a_recomputed_row_by_its_broken_link(
    make_guard: Callable[..., Any], data: Data
) -> None:
    """An attacker who edits a row and recomputes its hash breaks the next row's link."""
    guard = make_guard()
    serve(guard, data, 6)
    engine = store.connect(guard.log.url)
    with engine.connect() as conn:
        row = dict(
            conn.execute(sa.select(store.decisions).where(store.decisions.c.seq == 3))
            .mappings()
            .one()
        )
    row["decision"] = "allow" if row["decision"] != "allow" else "flag"
    forged = store.row_hash(row["prev_hash"], row)
    tamper(
        guard.log.url,
        f"UPDATE guard_decisions SET decision = '{row['decision']}', hash = '{forged}' "
        "WHERE seq = 3",
    )
    problems = store.verify(engine).problems
    assert [(p.seq, p.kind) for p in problems] == [(4, "relinked")]


def test_database_down_mid_run_spools_and_replays_without_loss(
    make_guard: Callable[..., Any], data: Data, tmp_path: Path
) -> None:
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    # The writer's logic runs in this process here (the thread writer) so that the test can
    # take its database away; the writer process runs the same code (tests/guard/test_logproc.py).
    guard = make_guard(flush_interval_ms=10, log_writer="thread")
    log = guard.log
    with TestClient(build_app(guard, str(data.tokens))) as c:
        ids = []
        for i in range(10):
            r = c.post("/predict", json={"instances": data.rows(i, 1)}, headers=ALICE)
            ids.append(r.json()["request_id"])
        assert log.flush(10)
        good = log.engine
        log.engine = store.connect(str(tmp_path / "missing-dir" / "x.db"))  # the database is gone
        for i in range(10, 40):
            r = c.post("/predict", json={"instances": data.rows(i, 1)}, headers=ALICE)
            assert r.status_code == 200
            ids.append(r.json()["request_id"])
        assert log.flush(10)
        assert log.spooled_total == 30 and not log.db_ok
        assert c.get("/healthz").json()["log"] == "spooling"
        assert Path(log.spool_path).stat().st_size > 0
        log.engine = good  # it comes back
        ids.extend(
            c.post("/predict", json={"instances": data.rows(i, 1)}, headers=ALICE).json()[
                "request_id"
            ]
            for i in range(40, 45)
        )
        assert log.flush(10)
        import time

        deadline = time.monotonic() + 10
        while not log.db_ok and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.db_ok and log.replayed_total == 30
        assert Path(log.spool_path).stat().st_size == 0
    assert log.dropped_total == 0
    records = rows_in_db_after_close(guard)
    assert [r["request_id"] for r in sorted(records, key=lambda r: r["seq"])] == ids
    assert not store.verify(store.connect(guard.log.url)).problems
    with store.connect(guard.log.url).connect() as conn:
        kinds = conn.execute(sa.select(store.alerts.c.kind)).scalars().all()
    assert "log-spooling" in kinds and "log-recovered" in kinds


def rows_in_db_after_close(guard: Any) -> list[dict[str, Any]]:
    with store.connect(guard.log.url).connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(store.decisions)).mappings()]


def test_a_spool_replayed_twice_inserts_once(
    make_guard: Callable[..., Any], data: Data, tmp_path: Path
) -> None:
    """A crash after the replay's commit but before the spool is emptied: the next start
    replays the same spool, and the batches already in the database are skipped."""
    guard = make_guard(log_writer="thread")
    log = guard.log
    log.start()
    good = log.engine
    log.engine = store.connect(str(tmp_path / "missing-dir" / "x.db"))
    from modelshield.guard.log import Pending, now_us

    for i in range(5):
        log.submit(Pending(now_us(), f"r{i}", "c", 200, "allow", [], {}, [0], None, 1, b"x"))
    assert log.flush(10)
    saved = Path(log.spool_path).read_bytes()
    log.engine = good
    assert log._replay()
    Path(log.spool_path).write_bytes(saved)  # as if the truncation never happened
    assert log._replay()
    log.close()
    ids = sorted(r["request_id"] for r in rows_in_db_after_close(guard))
    assert ids == [f"r{i}" for i in range(5)]


def test_back_pressure_refuses_what_cannot_be_logged(
    make_guard: Callable[..., Any], data: Data
) -> None:
    guard = make_guard(max_pending=3, flush_interval_ms=60_000, batch_size=10_000)
    statuses = serve(guard, data, 6)
    assert statuses == [200, 200, 200, 503, 503, 503]
    assert guard.log.backpressure_total == 3
    assert guard.log.dropped_total == 0
    assert len(rows_in_db_after_close(guard)) == 3


def test_records_redact_features(make_guard: Callable[..., Any], data: Data) -> None:
    guard = make_guard(redact=["f1"])
    serve(guard, data, 1)
    [record] = rows_in_db_after_close(guard)
    features = json.loads(record["features"])[0]
    assert features["f1"] == "[redacted]" and isinstance(features["f0"], float)
    guard = make_guard(log_features=False, db=str(Path(guard.log.url).with_name("g2.db")))
    serve(guard, data, 1)
    [record] = rows_in_db_after_close(guard)
    assert record["features"] is None


@pytest.mark.parametrize("writer", ["process", "thread"])
def test_commit_durability_answers_after_the_commit(
    make_guard: Callable[..., Any], data: Data, writer: str
) -> None:
    guard = make_guard(durability="commit", flush_interval_ms=5, log_writer=writer)
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    with TestClient(build_app(guard, str(data.tokens))) as c:
        for i in range(5):
            r = c.post("/predict", json={"instances": data.rows(i, 1)}, headers=ALICE)
            rid = r.json()["request_id"]
            # Already in the database when the answer arrives: no flush asked for.
            with guard.log.engine.connect() as conn:
                found = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(store.decisions)
                    .where(store.decisions.c.request_id == rid)
                ).scalar()
            assert found == 1


def test_rows_in_db_helper_sees_records(client: Any, data: Data) -> None:
    client.post("/predict", json={"instances": data.rows(0, 1)}, headers=ALICE)
    assert len(rows_in_db(client.guard)) == 1


def test_a_row_the_database_refuses_is_quarantined_not_blocking(
    make_guard: Callable[..., Any], data: Data
) -> None:
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    guard = make_guard()
    log = guard.log
    with TestClient(build_app(guard, str(data.tokens))) as c:
        c.post("/predict", json={"instances": data.rows(0, 1)}, headers=ALICE)
        assert log.flush(10)
        # A row that breaks a constraint (the chain registered twice), in a batch with
        # ordinary records.
        log.add_row("guard_chains", {"chain": log.chain, "replica": "x", "started_us": 1})
        for i in range(3):
            c.post("/predict", json={"instances": data.rows(i, 1)}, headers=ALICE)
        assert log.flush(10)
        assert log.db_ok and log.quarantined_total == 1 and log.dropped_total == 0
        c.post("/predict", json={"instances": data.rows(5, 1)}, headers=ALICE)
    assert len(rows_in_db_after_close(guard)) == 5
    quarantine = Path(str(log.spool_path) + ".quarantine").read_text()
    assert "guard_chains" in quarantine
    assert not store.verify(store.connect(log.url)).problems


def test_a_log_started_twice_registers_its_chain_once(
    make_guard: Callable[..., Any], data: Data
) -> None:
    guard = make_guard()
    serve(guard, data, 2)
    serve(guard, data, 2)  # the lifespan runs again (an ASGI server restarting the app)
    assert guard.log.quarantined_total == 0 and guard.log.spooled_total == 0
    records = rows_in_db_after_close(guard)
    assert sorted(r["seq"] for r in records) == [1, 2, 3, 4]
    assert not store.verify(store.connect(guard.log.url)).problems


@pytest.mark.parametrize(("durability", "most"), [("batched", 12), ("commit", None)])
def test_the_writer_commits_once_per_interval_under_load(
    make_guard: Callable[..., Any], durability: str, most: int | None
) -> None:
    """Under a steady stream a batched writer commits once per interval, timed from the start
    of the previous write (never further apart than the interval, the documented bound), not
    again as soon as a write ends; with commit durability the waiting requests come first."""
    import time

    from modelshield.guard.log import Pending

    guard = make_guard(flush_interval_ms=200, durability=durability, log_writer="thread")
    log = guard.log
    persist = log._persist
    starts: list[float] = []

    def slow_persist(rows: Any, decisions: int) -> None:
        starts.append(time.monotonic())
        time.sleep(0.02)  # a commit that takes a tenth of the interval
        persist(rows, decisions)

    log._persist = slow_persist
    log.start()
    sent = 0
    stop = time.monotonic() + 1.5
    while time.monotonic() < stop:
        record = Pending(0, f"r{sent}", "alice", 200, "allow", [], {}, 1, None, 0, b"")
        assert log.submit(record)
        sent += 1
        time.sleep(0.002)
    log.close()
    commits = [s for s in starts if s <= stop]
    if most is not None:
        # About 1.5 s / 0.2 s commits, not one per 20 ms write.
        assert len(commits) <= most, len(commits)
        gaps = [b - a for a, b in itertools.pairwise(commits)]
        assert max(gaps) < 0.2 + 0.3  # the interval, and slack for a loaded machine
    else:
        assert len(commits) > 20
    engine = store.connect(log.url)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(store.decisions)).scalar() == sent
        )
    assert not store.verify(engine).problems
