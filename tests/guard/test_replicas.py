"""Two stateless replicas against one PostgreSQL: one decision log, merged drift counts, one
report; the database going down and coming back mid-run loses nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.guard.conftest import ALICE, BOB, Data, engine_of
from tests.guard.postgres import Postgres, running_postgres

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    yield from running_postgres()


def replica(data: Data, tmp_path: Path, url: str, name: str, **table: Any) -> Any:
    from modelshield.core.policy import Policy
    from modelshield.guard import build_guard

    return build_guard(
        str(data.reference),
        Policy.from_mapping({"guard": {"rate": {"enabled": False}, **table}}),
        model=str(data.model),
        db=url,
        target="label",
        spool=str(tmp_path / f"{name}.spool"),
        replica=name,
    )


def test_two_replicas_share_one_log_and_one_drift(
    pg: Postgres, data: Data, tmp_path: Path, capsys: Any
) -> None:
    from starlette.testclient import TestClient

    from modelshield.cli import main
    from modelshield.guard import build_app, store

    a = replica(data, tmp_path, pg.url, "replica-a")
    b = replica(data, tmp_path, pg.url, "replica-b")
    app_a, app_b = build_app(a, str(data.tokens)), build_app(b, str(data.tokens))
    with TestClient(app_a) as ca, TestClient(app_b) as cb:
        # A load balancer alternates; replica b sees the shifted half of f3.
        for i in range(0, 300, 10):
            rows = data.rows(i, 10)
            assert ca.post("/predict", json={"instances": rows}, headers=ALICE).status_code == 200
            shifted = [{**r, "f3": r["f3"] + 2.0} for r in data.rows(300 + i, 10)]
            assert cb.post("/predict", json={"instances": shifted}, headers=BOB).status_code == 200
        app_a._flush_counts()
        app_b._flush_counts()
        assert a.log.flush(10) and b.log.flush(10)
        # Either replica computes the same drift: from the summed counts of both.
        drift_a = {r["feature"]: r for r in app_a.check_now()}
        drift_b = {r["feature"]: r for r in app_b.check_now()}
        assert drift_a == drift_b
        assert drift_a["f3"]["count"] == 600 and drift_a["f3"]["drifted"]
        assert not drift_a["f0"]["drifted"]
    assert main(["guard", "report", "--db", pg.url, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total_requests"] == 60
    assert doc["log"]["chains"] == 2
    assert {c["client"]: c["requests"] for c in doc["top_clients"]} == {"alice": 30, "bob": 30}
    with engine_of(pg.url) as engine:
        result = store.verify(engine)
    assert not result.problems and result.chains == 2 and result.records == 60
    assert main(["guard", "verify", "--db", pg.url]) == 0


def test_postgres_down_mid_run_spools_and_replays(pg: Postgres, data: Data, tmp_path: Path) -> None:
    import sqlalchemy as sa
    from starlette.testclient import TestClient

    from modelshield.guard import build_app, store

    guard = replica(data, tmp_path, pg.url, "replica-c", flush_interval_ms=20)
    log = guard.log
    with TestClient(build_app(guard, str(data.tokens))) as c:
        ids = [
            c.post("/predict", json={"instances": data.rows(i, 1)}, headers=ALICE).json()[
                "request_id"
            ]
            for i in range(10)
        ]
        assert log.flush(10)
        pg.stop("fast")
        try:
            for i in range(10, 40):
                r = c.post("/predict", json={"instances": data.rows(i, 1)}, headers=ALICE)
                assert r.status_code == 200
                ids.append(r.json()["request_id"])
            assert log.flush(30)
            assert log.spooled_total == 30 and not log.db_ok
        finally:
            pg.start()
        deadline = time.monotonic() + 30
        while not log.db_ok and time.monotonic() < deadline:
            time.sleep(0.1)
        assert log.db_ok and log.replayed_total == 30
    assert log.dropped_total == 0
    with engine_of(pg.url) as engine, engine.connect() as conn:
        stored = set(
            conn.execute(
                sa.select(store.decisions.c.request_id).where(store.decisions.c.chain == log.chain)
            ).scalars()
        )
        assert stored == set(ids)
        assert not store.verify(engine).problems


def test_insert_only_on_postgres(pg: Postgres, data: Data, tmp_path: Path) -> None:
    import sqlalchemy as sa

    guard = replica(data, tmp_path, pg.url, "replica-d")
    guard.log.start()
    guard.log.close()
    with engine_of(pg.url) as engine:
        for statement in ("DELETE FROM guard_chains", "TRUNCATE guard_decisions"):
            with pytest.raises(sa.exc.DatabaseError, match="insert-only"), engine.begin() as conn:
                conn.exec_driver_sql(statement)
