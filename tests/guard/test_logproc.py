"""The decision log's writer process: the same records as the thread writer, the service's
counters kept, and no record lost when the writer process itself is killed."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from modelshield.core.errors import ServiceError
from modelshield.guard import store
from modelshield.guard.log import Pending, now_us
from modelshield.guard.logproc import WRITER_HASHES_UP_TO, ProcessLog
from tests.guard.conftest import Data
from tests.guard.test_log import serve


def _records(url: str) -> list[dict[str, Any]]:
    engine = store.connect(url)
    try:
        with engine.connect() as conn:
            query = sa.select(store.decisions).order_by(store.decisions.c.id)
            return [dict(r) for r in conn.execute(query).mappings()]
    finally:
        engine.dispose()


def _comparable(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    keys = ("status", "decision", "reasons", "prediction", "features", "seq")
    return [tuple(r[k] for k in keys) for r in records]


def test_the_process_writer_logs_what_the_thread_writer_logs(
    make_guard: Callable[..., Any], data: Data, tmp_path: Path
) -> None:
    logged = {}
    for writer in ("thread", "process"):
        guard = make_guard(db=str(tmp_path / f"{writer}.db"), log_writer=writer, redact=["f1"])
        assert type(guard.log).__name__ == ("ProcessLog" if writer == "process" else "DecisionLog")
        statuses = serve(guard, data, 20)
        assert statuses == [200] * 20
        records = _records(guard.log.url)
        assert len(records) == 20
        assert guard.log.written_total == 20 and guard.log.pending == 0
        logged[writer] = records
    assert _comparable(logged["process"]) == _comparable(logged["thread"])
    assert '"f1": "[redacted]"' in logged["process"][0]["features"].replace('":"', '": "')
    for record in logged["process"]:
        assert len(record["request_hash"]) == 64
    assert not store.verify(store.connect(str(tmp_path / "process.db"))).problems


def test_the_request_hash_is_the_bodys_whoever_makes_it(
    make_guard: Callable[..., Any], tmp_path: Path
) -> None:
    """A small body goes to the writer process as it is (hashed there, off the request
    path), a larger one as its digest: the record's ``request_hash`` is the body's SHA-256
    either way, and no body reaches the database or the spool."""
    guard = make_guard()
    log = guard.log
    assert isinstance(log, ProcessLog)
    log.start()
    bodies = {
        "empty": b"",
        "small": b'{"instances": [{"f0": 1.5}]}',
        "at-limit": b"a" * WRITER_HASHES_UP_TO,
        "large": b"b" * (WRITER_HASHES_UP_TO + 1),
    }
    for rid, body in bodies.items():
        assert log.submit(Pending(now_us(), rid, "c", 200, "allow", [], {}, [1], None, 1, body))
    assert log.flush(30)
    log.close()
    hashes = {r["request_id"]: r["request_hash"] for r in _records(log.url)}
    assert hashes == {rid: hashlib.sha256(body).hexdigest() for rid, body in bodies.items()}
    database = Path(log.url.removeprefix("sqlite:///"))
    assert database.is_file()
    for path in database.parent.iterdir():  # the database, its WAL and any spool
        stored = path.read_bytes()
        assert b"a" * 64 not in stored and b"b" * 64 not in stored, path.name
    assert not store.verify(store.connect(log.url)).problems


def test_a_killed_writer_process_is_replaced_and_nothing_is_lost(
    make_guard: Callable[..., Any], tmp_path: Path
) -> None:
    guard = make_guard(flush_interval_ms=20)
    log = guard.log
    assert isinstance(log, ProcessLog)
    log.start()
    first_chain = log.chain
    sent = []
    for i in range(300):
        rid = f"r{i:04d}"
        sent.append(rid)
        assert log.submit(Pending(now_us(), rid, "c", 200, "allow", [], {}, [i], None, 1, b"x"))
        if i == 150:
            assert log._proc is not None
            os.kill(log._proc.pid, signal.SIGKILL)
        time.sleep(0.001)
    deadline = time.monotonic() + 30
    while log.restarts == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.restarts == 1
    assert log.flush(30)
    assert log.pending == 0 and log.dropped_total == 0
    assert log.chain != first_chain
    log.close()
    records = _records(log.url)
    ids = [r["request_id"] for r in records]
    assert set(ids) == set(sent)  # every record, at most those of one batch twice
    assert len(ids) - len(set(ids)) <= 300 - 150
    assert {r["chain"] for r in records} == {first_chain, log.chain}
    assert not store.verify(store.connect(log.url)).problems
    with store.connect(log.url).connect() as conn:
        kinds = conn.execute(sa.select(store.alerts.c.kind)).scalars().all()
    assert "log-writer-restart" not in kinds  # no alerter attached in this test: logged only


def test_the_service_killed_leaves_the_writer_to_write_what_it_was_sent(
    make_guard: Callable[..., Any], tmp_path: Path
) -> None:
    """The service dies (its end of the pipe closes): the writer commits every record it
    received and exits."""
    guard = make_guard(flush_interval_ms=10_000)  # the writer never commits by itself
    log = guard.log
    log.start()
    for i in range(40):
        log.submit(Pending(now_us(), f"k{i}", "c", 200, "allow", [], {}, [i], None, 1, b"x"))
    log._send_queued()  # what the sender thread does every interval
    proc = log._proc
    assert proc is not None and proc.stdin is not None
    proc.stdin.close()  # as the kernel does when the service is killed
    assert proc.wait(30) == 0
    assert len(_records(log.url)) == 40
    log._closing = log._stop = True
    log._wake.set()
    assert log._sender is not None and log._receiver is not None
    log._sender.join(10)
    log._receiver.join(10)
    assert proc.stdout is not None
    proc.stdout.close()
    log._proc = None


def test_a_writer_that_cannot_open_the_database_fails_the_start(
    make_guard: Callable[..., Any], tmp_path: Path
) -> None:
    target = tmp_path / "not-a-dir"
    target.write_text("a file where the database's folder should be")
    guard = make_guard(db=str(target / "guard.db"))
    with pytest.raises(ServiceError, match="decision log"):
        guard.log.start()


def test_served_the_log_has_no_thread_and_survives_its_writer_killed(
    make_guard: Callable[..., Any], data: Data
) -> None:
    """The service pumps the log from its event loop (no sender or receiver thread); a
    writer process killed while requests arrive is replaced and every answered request is in
    the log."""
    import threading

    from starlette.testclient import TestClient

    from modelshield.guard import build_app
    from tests.guard.conftest import ALICE, READ

    guard = make_guard(flush_interval_ms=20)
    log = guard.log
    ids = []
    before = set(threading.enumerate())
    with TestClient(build_app(guard, str(data.tokens))) as c:
        names = {t.name for t in set(threading.enumerate()) - before}
        assert not names & {"guard-log-sender", "guard-log-receiver"}
        for i in range(60):
            r = c.post("/predict", json={"instances": data.rows(i, 1)}, headers=ALICE)
            assert r.status_code == 200
            ids.append(r.json()["request_id"])
            if i == 30:
                assert log._proc is not None
                os.kill(log._proc.pid, signal.SIGKILL)
                time.sleep(0.3)  # requests keep coming while the writer is replaced
        deadline = time.monotonic() + 30
        while log.restarts == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.restarts == 1
        assert log.flush(30)
        assert log.dropped_total == 0
        metrics = c.get("/metrics", headers=READ).text
        assert "modelshield_guard_log_dropped_total 0.0" in metrics
    records = _records(log.url)
    assert set(ids) <= {r["request_id"] for r in records}
    assert not store.verify(store.connect(log.url)).problems
    with store.connect(log.url).connect() as conn:
        kinds = conn.execute(sa.select(store.alerts.c.kind)).scalars().all()
    assert "log-writer-restart" in kinds  # the service's alerter recorded it
