"""The decision log writer: batched, off the request path, never silently lossy.

The request path appends a :class:`Pending` record to an in-memory queue (a ``deque``
append: well under a microsecond) and answers. A writer thread wakes every
``flush_interval_ms`` (or as soon as ``batch_size`` records wait), numbers and hash-chains the
records, and inserts them in one transaction with the other rows waiting (window counts,
alerts, feedback).

Where the writer runs is ``[guard] log_writer``: ``thread`` runs this class in the service;
``process`` (the default) runs it in a child process fed encoded records through a pipe
(:mod:`modelshield.guard.logproc`), so that its work never takes the service's interpreter
lock. The bounds below hold for both; with the process, a record already handed to the child
also survives a crash of the service.

What can be lost, and when:

* **shutdown** (SIGTERM, Ctrl-C, the ASGI lifespan's end): nothing; the queue is written out
  before the process exits.
* **crash** (``kill -9``, OOM kill) with ``durability = "batched"``: the records still in the
  queue, i.e. those of requests answered during the last ``flush_interval_ms`` plus the time
  of the commit in progress. With ``durability = "commit"`` a request is answered only once
  its record is committed (or spooled), so a crash loses no answered request's record.
  SQLite runs in WAL mode with ``synchronous=NORMAL``: a killed process loses no committed
  transaction (a power cut may lose the last ones).
* **database unavailable**: each batch that fails goes, whole and already chained, to an
  append-only spool file (fsync'ed); the writer retries the database every second and, once
  it answers, replays the spool in one transaction, marking each replayed batch in
  ``guard_meta`` so that a crash between the replay and the spool's truncation never inserts a
  batch twice. Batches that arrive while the spool holds anything go to the spool too, so
  order is kept.
* **database and spool both failing**: the batch is counted in ``dropped_total`` and logged
  as an error. The tests prove this counter stays 0 while the database is down.
* **queue full** (``max_pending``): :meth:`DecisionLog.submit` refuses and the request gets
  503: the service does not answer what it cannot log.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa

from modelshield.core.errors import ServiceError
from modelshield.core.guard_settings import GuardSettings
from modelshield.guard import store

logger = logging.getLogger("modelshield.guard")

_TABLES = {t.name: t for t in (store.chains, *store.INSERT_ONLY)}
RETRY_SECONDS = 1.0
"""How often the writer tries the database again while it spools."""


class Pending:
    """A decision waiting for the writer (built on the request path: plain slots)."""

    __slots__ = (
        "body",
        "client",
        "decision",
        "features",
        "latency_us",
        "prediction",
        "reasons",
        "request_id",
        "scores",
        "status",
        "ts_us",
        "waiter",
    )

    def __init__(
        self,
        ts_us: int,
        request_id: str,
        client: str,
        status: int,
        decision: str,
        reasons: list[str],
        scores: dict[str, Any],
        prediction: Any,
        features: Any,
        latency_us: int,
        body: bytes | str,
    ) -> None:
        """Hold the facts of one request."""
        self.ts_us = ts_us
        self.request_id = request_id
        self.client = client
        self.status = status
        self.decision = decision
        self.reasons = reasons
        self.scores = scores
        self.prediction = prediction
        self.features = features
        self.latency_us = latency_us
        self.body = body
        self.waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None


class DecisionLog:
    """The database and the writer thread (see the module docstring)."""

    def __init__(self, url: str, settings: GuardSettings, replica: str, spool: str | None = None):
        """Connect (nothing is written before :meth:`start`)."""
        self.url = url
        self.settings = settings
        self.replica = replica[:200]
        self.engine = store.connect(url)
        self.chain = str(uuid.uuid4())
        self._seq = 0
        self._prev = store.genesis(self.chain)
        self._queue: deque[Pending] = deque()
        self._rows: deque[tuple[str, dict[str, Any]]] = deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.spool_path = Path(spool or settings.spool)
        self._spooled_batches = 0
        self._registered = False
        self._last_retry = 0.0
        self._submitted = 0
        self._done = 0
        self.written_total = 0
        """Decision records committed to the database (replays included)."""
        self.spooled_total = 0
        """Decision records written to the spool file."""
        self.replayed_total = 0
        """Decision records replayed from the spool into the database."""
        self.dropped_total = 0
        """Decision records lost: the database and the spool both failed."""
        self.backpressure_total = 0
        """Requests refused (503) because the queue was full."""
        self.quarantined_total = 0
        """Rows the database refused as data (a constraint), set aside in the quarantine
        file beside the spool instead of blocking the log (never expected; alerted)."""
        self.db_ok = True
        """The last write to the database succeeded."""
        self.on_alert: Any = None
        """Called with (kind, subject, message) when the log starts or stops spooling."""
        self.on_batch: Any = None
        """Called (on the writer thread) after each batch is committed or spooled and after
        each replay: the writer process reports its counters with it."""

    # ---- life cycle --------------------------------------------------------------------
    def start(self, loop: Any = None) -> None:
        """Migrate the schema, register this chain, replay a spool left over, start writing.
        Starting a log that runs is a no-op; a closed log starts again on the same chain.
        ``loop`` is ignored (the writer is a thread: see ProcessLog.start)."""
        if self._thread is not None:
            return
        self._stop = False
        try:
            store.migrate(self.engine)
        except sa.exc.SQLAlchemyError as e:
            cause = getattr(e, "orig", None) or e
            raise ServiceError(
                f"cannot open the decision log {store.display_url(self.url)}: "
                f"{type(cause).__name__}: {str(cause).strip()[:300]}"
            ) from e
        if self._spool_size() > 0 and not self._replay():
            self._spooled_batches = 1
        if not self._registered:
            self._registered = True
            self.add_row(
                "guard_chains",
                {"chain": self.chain, "replica": self.replica, "started_us": now_us()},
            )
        self._thread = threading.Thread(target=self._run, name="guard-log-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 60.0) -> None:
        """Write everything out and stop the writer."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        seq, head = self.head()
        logger.info("decision log closed: chain %s head %d %s", self.chain, seq, head)
        self.engine.dispose()

    def head(self) -> tuple[int, str]:
        """This chain's last record number and hash (what ``guard verify`` should find)."""
        return self._seq, self._prev

    @property
    def pending(self) -> int:
        """Records waiting for the writer."""
        return len(self._queue)

    # ---- the request path --------------------------------------------------------------
    def submit(self, record: Pending) -> bool:
        """Queue a record; False (refuse the request) when the queue is full."""
        if len(self._queue) >= self.settings.max_pending:
            self.backpressure_total += 1
            return False
        self.accept(record)
        return True

    def accept(self, record: Pending) -> None:
        """Queue a record with no limit: the writer process's side of :meth:`submit` (the
        service enforced ``max_pending`` when it submitted the record)."""
        self._queue.append(record)
        self._submitted += 1
        if len(self._queue) >= self.settings.batch_size:
            self._wake.set()

    def add_row(self, table: str, row: dict[str, Any]) -> None:
        """Queue a row of another table (counts, alerts, feedback)."""
        self._rows.append((table, row))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every record submitted so far is committed or spooled."""
        target = self._submitted
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._done < target or self._rows:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(left, 0.05))
        return True

    # ---- the writer thread -------------------------------------------------------------
    def _run(self) -> None:
        interval = self.settings.flush_interval_ms / 1000.0
        # Batched durability: one write per interval, timed from the start of the previous
        # one, so that a commit is never further than the interval from the last (the
        # documented bound) but a write does not follow the last at once when it took less
        # than the interval: bigger batches, fewer commits and fewer turns of the interpreter
        # lock taken from the request path. With "commit" the requests wait: write at once.
        paced = self.settings.durability == "batched"
        started = time.monotonic()
        while True:
            self._wake.wait(max(0.0, started + interval - time.monotonic()))
            self._wake.clear()
            stopping = self._stop
            started = time.monotonic()
            try:
                while self._queue or self._rows:
                    self._write_batch()
                    if paced and not self._stop and len(self._queue) < self.settings.batch_size:
                        break
                if self._spooled_batches and time.monotonic() - self._last_retry > RETRY_SECONDS:
                    self._replay()
            except Exception:  # a bug of ours: never let the writer die silently
                logger.exception("decision log writer failed; retrying")
                time.sleep(interval)
            if stopping and not self._queue and not self._rows:
                if self._spooled_batches:
                    self._replay()
                return

    def _write_batch(self) -> None:
        records: list[Pending] = []
        queue = self._queue
        while queue and len(records) < self.settings.batch_size:
            records.append(queue.popleft())
        rows: list[tuple[str, dict[str, Any]]] = []
        while self._rows and len(rows) < self.settings.batch_size:
            rows.append(self._rows.popleft())
        encode = msgspec.json.encode
        sha256 = hashlib.sha256
        row_hash = store.row_hash
        chain = self.chain
        seq, prev = self._seq, self._prev
        for r in records:
            seq += 1
            features = r.features
            row = {
                "chain": chain,
                "seq": seq,
                "ts_us": r.ts_us,
                "request_id": r.request_id,
                "client": r.client[:200],
                "status": r.status,
                "decision": r.decision,
                "reasons": encode(r.reasons).decode(),
                "scores": encode(r.scores).decode(),
                "prediction": encode(r.prediction).decode(),
                "features": None
                if features is None
                else encode(features.dicts() if hasattr(features, "dicts") else features).decode(),
                "latency_us": r.latency_us,
                # The writer process receives a small body as bytes, a larger one's digest
                # (made by the service) as text.
                "request_hash": r.body if isinstance(r.body, str) else sha256(r.body).hexdigest(),
                "prev_hash": prev,
            }
            row["hash"] = prev = row_hash(prev, row)
            rows.append(("guard_decisions", row))
        self._seq, self._prev = seq, prev
        self._persist(rows, len(records))
        for r in records:
            if r.waiter is not None:
                loop, fut = r.waiter
                with contextlib.suppress(RuntimeError):  # the loop has closed
                    loop.call_soon_threadsafe(_resolve, fut)
        with self._idle:
            self._done += len(records)
            self._idle.notify_all()
        if self.on_batch is not None:
            self.on_batch()

    def _persist(self, rows: list[tuple[str, dict[str, Any]]], decisions: int) -> None:
        if self._spooled_batches and not self._replay():
            self._spool(rows, decisions)
            return
        try:
            with self.engine.begin() as conn:
                _insert_grouped(conn, rows)
        except (sa.exc.IntegrityError, sa.exc.DataError):
            try:
                self._insert_isolating(rows)
            except sa.exc.SQLAlchemyError:
                self._spool(rows, decisions)
            return
        except sa.exc.SQLAlchemyError as e:
            if self.db_ok:
                self._alert(
                    "log-spooling",
                    "the decision log database failed "
                    f"({type(getattr(e, 'orig', None) or e).__name__}); "
                    f"records go to the spool {self.spool_path} until it answers",
                )
            self.db_ok = False
            self._spool(rows, decisions)
            return
        self.written_total += decisions

    def _spool(self, rows: list[tuple[str, dict[str, Any]]], decisions: int) -> None:
        batch = str(uuid.uuid4())
        lines = b"".join(
            msgspec.json.encode({"b": batch, "t": table, "r": row}) + b"\n" for table, row in rows
        )
        try:
            fd = os.open(self.spool_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, lines)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            self.dropped_total += decisions
            logger.error(
                "decision log: %d record(s) LOST: the database and the spool %s both failed: %s",
                decisions,
                self.spool_path,
                e,
            )
            return
        self._spooled_batches += 1
        self.spooled_total += decisions
        self._last_retry = time.monotonic()

    def _spool_size(self) -> int:
        try:
            return self.spool_path.stat().st_size
        except OSError:
            return 0

    def _replay(self) -> bool:
        """Insert the spool's batches the database does not have yet; True when it is empty."""
        self._last_retry = time.monotonic()
        try:
            data = self.spool_path.read_bytes()
        except FileNotFoundError:
            self._spooled_batches = 0
            return True
        except OSError as e:
            logger.error("cannot read the spool %s: %s", self.spool_path, e)
            return False
        batches: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                item = msgspec.json.decode(line)
                batches.setdefault(item["b"], []).append((item["t"], item["r"]))
            except (msgspec.DecodeError, KeyError, TypeError):
                # A torn last line from a crash in the middle of a write: its batch was never
                # acknowledged (the write did not return), so nothing answered is lost.
                logger.warning("spool %s: skipping an unreadable line", self.spool_path)
        replayed = 0
        try:
            with self.engine.connect() as conn:
                keys = [f"spool:{b}" for b in batches]
                done: set[str] = set()
                for i in range(0, len(keys), 500):
                    done.update(
                        conn.execute(
                            sa.select(store.guard_meta.c.key).where(
                                store.guard_meta.c.key.in_(keys[i : i + 500])
                            )
                        ).scalars()
                    )
            # One transaction per batch, with its marker: a batch is in the database once.
            for batch, rows in batches.items():
                if f"spool:{batch}" in done:
                    continue
                marker = {"key": f"spool:{batch}", "value": "replayed"}
                try:
                    with self.engine.begin() as conn:
                        _insert_grouped(conn, rows)
                        conn.execute(store.guard_meta.insert().values(**marker))
                except (sa.exc.IntegrityError, sa.exc.DataError):
                    self._insert_isolating(rows)
                    with self.engine.begin() as conn:
                        conn.execute(store.guard_meta.insert().values(**marker))
                replayed += sum(1 for t, _ in rows if t == "guard_decisions")
        except sa.exc.SQLAlchemyError:
            self.replayed_total += replayed
            self.written_total += replayed
            return False
        with self.spool_path.open("r+b") as f:
            f.truncate(0)
            os.fsync(f.fileno())
        self._spooled_batches = 0
        self.replayed_total += replayed
        self.written_total += replayed
        if self.on_batch is not None and replayed:
            self.on_batch()
        if not self.db_ok:
            self._alert(
                "log-recovered", f"the database answers again: {replayed} record(s) replayed"
            )
        self.db_ok = True
        return True

    def _insert_isolating(self, rows: list[tuple[str, dict[str, Any]]]) -> None:
        """Insert rows one by one; a row the database refuses as data goes to the quarantine
        file (``<spool>.quarantine``), counted and alerted, so that it cannot block the log.
        A connection error is raised to the caller (then the rows are spooled)."""
        refused: list[tuple[str, dict[str, Any]]] = []
        for table, row in rows:
            try:
                with self.engine.begin() as conn:
                    store.insert_many(conn, _TABLES[table], [row])
            except (sa.exc.IntegrityError, sa.exc.DataError) as e:
                refused.append((table, row))
                logger.error("decision log: the database refused a %s row: %s", table, e)
            else:
                if table == "guard_decisions":
                    self.written_total += 1
        if refused:
            path = self.spool_path.with_name(self.spool_path.name + ".quarantine")
            with path.open("ab") as f:
                for table, row in refused:
                    f.write(msgspec.json.encode({"t": table, "r": row}) + b"\n")
                f.flush()
                os.fsync(f.fileno())
            self.quarantined_total += len(refused)
            self._alert("log-quarantine", f"{len(refused)} row(s) refused, kept in {path}")

    def _alert(self, kind: str, message: str) -> None:
        logger.warning("decision log: %s", message)
        if self.on_alert is not None:
            self.on_alert(kind, "decision-log", message)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _insert_grouped(conn: sa.Connection, rows: list[tuple[str, dict[str, Any]]]) -> None:
    """Insert rows table by table, keeping their order within each table."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for table, row in rows:
        grouped.setdefault(table, []).append(row)
    for name in ("guard_chains", *grouped):
        if name in grouped:
            store.insert_many(conn, _TABLES[name], grouped.pop(name))


def now_us() -> int:
    """Wall-clock time in microseconds."""
    return time.time_ns() // 1000
