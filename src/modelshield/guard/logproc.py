"""The decision log writer in a child process: the service's side (:class:`ProcessLog`) and
the child's (:func:`main`, ``python -m modelshield.guard.logproc``).

Why a process: the writer's work per record (building the row, four JSON encodings, two
SHA-256 digests, the driver's parameter binding) holds the interpreter lock, and a writer
thread taking that lock from the event loop cost the served guard about as much as its
screening checks. Here the request path encodes each record once (MessagePack, a few
microseconds, with the request's body, which the child hashes, or, above
:data:`WRITER_HASHES_UP_TO` bytes, its digest) and queues the bytes; a sender thread writes
them to the child's standard input every few milliseconds; the child runs the same
:class:`~modelshield.guard.log.DecisionLog` (chain, batching, spool, replay, quarantine) and
reports its counters, alerts and chain head on its standard output after every batch.

What can be lost is what :mod:`modelshield.guard.log` says, with one change for the better:
a record handed to the child survives the service's ``kill -9`` (the child reads to the end
of the pipe, writes everything and exits), so a crash of the service loses at most the
records of the last ``flush_interval_ms`` (not yet sent), as before. If the child itself dies, the
service starts another (a new chain) and sends it again every record not yet acknowledged;
a record committed in the instant between the dead child's commit and its acknowledgement
is then written twice (one copy in each chain), never lost.

Frames, both ways: a 4-byte little-endian length, then a MessagePack array whose first item
says what it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import IO, Any

import msgspec

from modelshield.core.errors import ServiceError
from modelshield.core.guard_settings import GuardSettings
from modelshield.guard import store
from modelshield.guard.log import DecisionLog, Pending

logger = logging.getLogger("modelshield.guard")

SEND_INTERVAL_MAX_S = 0.05
"""The sender thread hands queued records to the writer process every
``flush_interval_ms``, at most this (batched durability; with ``commit`` a record is sent at
once). Each wake of a thread takes the interpreter lock from the event loop, and that costs
the service far more than the wake's own work (measured: sending every 5 ms instead of every
50 ms cost the served guard 40 µs of CPU per request), so the sender wakes rarely."""
START_TIMEOUT_S = 120.0
"""How long the writer process may take to migrate the database and say it is ready."""

WRITER_HASHES_UP_TO = 4096
"""Bodies of up to this many bytes go to the writer process as they are, which hashes them
for the record's ``request_hash``; larger ones are hashed by the service."""

# Service -> writer.
_CONFIG, _RECORD, _ROW, _NAMES, _FLUSH, _CLOSE = range(6)
# Writer -> service.
_READY, _STATUS, _ALERT, _FLUSHED, _ERROR = range(5)

_encode = msgspec.msgpack.encode
_decode = msgspec.msgpack.decode


def _frame(item: Any) -> bytes:
    data = _encode(item)
    return len(data).to_bytes(4, "little") + data


def _read_frame(stream: IO[bytes]) -> Any:
    """The next frame, or None at the end of the stream (a torn last frame included)."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    size = int.from_bytes(head, "little")
    data = stream.read(size)
    if len(data) < size:
        return None
    return _decode(data)


def _read_exactly(fd: int, size: int) -> bytes:
    """``size`` bytes from a blocking file descriptor (fewer at its end)."""
    parts: list[bytes] = []
    left = size
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _read_frame_fd(fd: int) -> Any:
    """:func:`_read_frame` from a file descriptor, reading no byte past the frame."""
    head = _read_exactly(fd, 4)
    if len(head) < 4:
        return None
    size = int.from_bytes(head, "little")
    data = _read_exactly(fd, size)
    return _decode(data) if len(data) == size else None


class ProcessLog:
    """The decision log with its writer in a child process: the interface of
    :class:`~modelshield.guard.log.DecisionLog` (see the module docstring)."""

    def __init__(self, url: str, settings: GuardSettings, replica: str, spool: str | None = None):
        """Connect for reading (the child writes; nothing runs before :meth:`start`)."""
        self.url = url
        self.settings = settings
        self.replica = replica[:200]
        self.engine = store.connect(url)
        self.chain = str(uuid.uuid4())
        self.spool_path = Path(spool or settings.spool)
        self.written_total = 0
        self.spooled_total = 0
        self.replayed_total = 0
        self.dropped_total = 0
        self.backpressure_total = 0
        self.quarantined_total = 0
        self.db_ok = True
        self.on_alert: Any = None
        self._seq = 0
        self._prev = store.genesis(self.chain)
        self._out: deque[tuple[int, bytes]] = deque()
        self._inflight: deque[tuple[int, bytes]] = deque()
        """Frames sent to the current child and not yet acknowledged (records and rows, in
        order): sent again to a new child if this one dies."""
        self._waiters: deque[tuple[int, Any]] = deque()
        self._child_totals: dict[str, int] = {}
        self._submitted = 0
        self._acked = 0
        self._base = 0
        """Records acknowledged by children before the current one."""
        self._child_done = 0
        self._flushes = 0
        self._flushed = 0
        self._names: Any = None
        self._names_frame: tuple[int, bytes] | None = None
        self._totals_base = dict.fromkeys(_TOTALS, 0)
        """Counters of writer processes before the current one."""
        self._wake = threading.Event()
        self._cond = threading.Condition()
        self._send_lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sender: threading.Thread | None = None
        self._receiver: threading.Thread | None = None
        self._stop = False
        self._closing = False
        self._registered = False
        self.restarts = 0
        """Writer processes started again after one died."""
        # The service's event loop, when the log is attached to one (see :meth:`start`).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._timer: asyncio.TimerHandle | None = None
        self._unsent = bytearray()
        self._rbuf = bytearray()
        self._writing = False
        self._eof = threading.Event()

    # ---- life cycle --------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the writer process (it migrates the schema and replays a spool left over)
        and wait until it is ready. Starting a log that runs is a no-op.

        With ``loop`` (the service's event loop; this may be called from another thread),
        records are sent and the writer's reports read by that loop's own callbacks (a timer,
        a reader on the pipe). Without one, by a sender and a receiver thread. The loop is
        the service's choice: a thread that wakes while the event loop runs Python waits for
        the interpreter lock, and while it waits every release of the lock by the event loop
        (each numpy call makes one) wakes it again: measured, an idle sender thread waking
        every 50 ms cost the served guard 30-40 µs of CPU per request."""
        if self._proc is not None:
            return
        self._stop = self._closing = False
        if sys.platform == "win32":
            loop = None  # no readers on pipes in Windows' event loops: the threads pump
        self._loop = loop
        self._eof.clear()
        self._spawn()
        if loop is None:
            self._sender = threading.Thread(
                target=self._send_loop, name="guard-log-sender", daemon=True
            )
            self._sender.start()
        else:
            loop.call_soon_threadsafe(self._attach)

    def _spawn(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelshield.guard.logproc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,  # a Ctrl-C or a group's SIGTERM reaches the service only
        )
        assert proc.stdin is not None and proc.stdout is not None
        config = {
            "url": self.url,
            "settings": msgspec.to_builtins(self.settings),
            "replica": self.replica,
            "spool": str(self.spool_path),
            "chain": self.chain,
            # A log started again (the ASGI lifespan run twice) goes on with its chain.
            "seq": self._seq,
            "prev": self._prev,
            "registered": self._registered,
        }
        try:
            proc.stdin.write(_frame([_CONFIG, config]))
            proc.stdin.flush()
        except OSError:
            pass
        deadline = time.monotonic() + START_TIMEOUT_S
        first = _read_frame_fd(proc.stdout.fileno())
        if first is None or first[0] != _READY:
            detail = first[1] if first is not None and first[0] == _ERROR else "it exited"
            with contextlib.suppress(OSError):
                proc.kill()
            proc.wait(max(1.0, deadline - time.monotonic()))
            proc.stdin.close()
            proc.stdout.close()
            raise ServiceError(f"cannot start the decision log writer: {detail}")
        self._proc = proc
        self._registered = True
        self._apply_status(first[1])
        if self._names_frame is not None:  # a new writer: the feature names come first
            self._write(self._names_frame[1])
        if self._loop is None:
            self._receiver = threading.Thread(
                target=self._receive_loop, args=(proc,), name="guard-log-receiver", daemon=True
            )
            self._receiver.start()

    # ---- pumping from the service's event loop ------------------------------------------
    def _attach(self) -> None:
        """On the loop's thread: read the writer's reports, send what waits."""
        loop, proc = self._loop, self._proc
        assert loop is not None and proc is not None
        assert proc.stdin is not None and proc.stdout is not None
        self._loop_thread = threading.get_ident()
        self._rbuf.clear()
        os.set_blocking(proc.stdout.fileno(), False)
        os.set_blocking(proc.stdin.fileno(), False)
        loop.add_reader(proc.stdout.fileno(), self._on_readable, proc)
        self._pump()

    def _schedule(self, now: bool = False) -> None:
        """Have the loop send the queued frames within the interval (at once: ``now``)."""
        loop = self._loop
        assert loop is not None
        if threading.get_ident() != self._loop_thread:
            with contextlib.suppress(RuntimeError):  # the loop has closed: close() sends
                loop.call_soon_threadsafe(self._schedule, now)
            return
        if now:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_soon(self._pump)  # type: ignore[assignment]
        elif self._timer is None:
            interval = min(self.settings.flush_interval_ms / 1000.0, SEND_INTERVAL_MAX_S)
            self._timer = loop.call_later(interval, self._pump)

    def _pump(self) -> None:
        """On the loop's thread: move the queued frames to the pipe, as far as it takes them
        without blocking (the rest when it drains)."""
        self._timer = None
        out = self._out
        if out:
            parts: list[tuple[int, bytes]] = []
            while out:
                parts.append(out.popleft())
            with self._send_lock:
                self._inflight.extend(parts)
            for _, frame in parts:
                self._unsent += frame
        self._drain()

    def _drain(self) -> None:
        proc, loop = self._proc, self._loop
        if proc is None or proc.stdin is None or loop is None or not self._unsent:
            return
        fd = proc.stdin.fileno()
        try:
            n = os.write(fd, self._unsent)
        except BlockingIOError:
            n = 0
        except OSError:  # the writer died: its reader sees the end and starts another
            self._unsent.clear()
            return
        del self._unsent[:n]
        if self._unsent and not self._writing:
            self._writing = True
            loop.add_writer(fd, self._drain)
        elif not self._unsent and self._writing:
            self._writing = False
            loop.remove_writer(fd)

    def _on_readable(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None and self._loop is not None
        fd = proc.stdout.fileno()
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._rbuf += data
            self._handle_buffered()
            return
        self._loop.remove_reader(fd)
        if self._writing and proc.stdin is not None:
            self._writing = False
            with contextlib.suppress(Exception):
                self._loop.remove_writer(proc.stdin.fileno())
        self._eof.set()
        if self._closing:
            return
        self._loop.run_in_executor(None, self._writer_died, proc)

    def close(self, timeout: float = 60.0) -> None:
        """Send everything, let the writer write it out, and wait for it to exit."""
        if self._proc is None:
            return
        self._closing = True
        self._stop = True
        self._wake.set()
        if self._sender is not None:
            self._sender.join(timeout)
            self._sender = None
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        if self._loop is None:
            with contextlib.suppress(OSError, ValueError):
                with self._send_lock:
                    proc.stdin.write(_frame([_CLOSE]))
                    proc.stdin.flush()
                proc.stdin.close()
        else:
            self._close_on_loop(proc, timeout)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.error("the decision log writer did not finish in %.0f s; killed", timeout)
            proc.kill()
            proc.wait()
        if self._receiver is not None:
            self._receiver.join(timeout)
            self._receiver = None
        if self._loop is not None and not self._eof.wait(5.0):
            self._read_rest(proc)  # the loop no longer runs: read its last reports here
        proc.stdout.close()
        self._proc = None
        self._loop = None
        seq, head = self.head()
        logger.info("decision log closed: chain %s head %d %s", self.chain, seq, head)
        self.engine.dispose()

    def _close_on_loop(self, proc: subprocess.Popen[bytes], timeout: float) -> None:
        """Send what waits and the close command from the loop's thread (or from this one
        when the loop has stopped), blocking until the pipe took them."""
        done = threading.Event()
        loop = self._loop
        assert loop is not None and proc.stdin is not None

        def finish() -> None:
            try:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                self._pump()
                self._unsent += _frame([_CLOSE])
                assert proc.stdin is not None
                fd = proc.stdin.fileno()
                if self._writing:
                    self._writing = False
                    with contextlib.suppress(Exception):
                        loop.remove_writer(fd)
                with contextlib.suppress(OSError):
                    os.set_blocking(fd, True)
                    view = memoryview(self._unsent)
                    while view:
                        view = view[os.write(fd, view) :]
                self._unsent = bytearray()
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            finally:
                done.set()

        if threading.get_ident() == self._loop_thread or loop.is_closed():
            finish()
            return
        try:
            loop.call_soon_threadsafe(finish)
        except RuntimeError:
            finish()
            return
        if not done.wait(timeout):
            finish()

    def _read_rest(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None and self._loop is not None
        fd = proc.stdout.fileno()
        with contextlib.suppress(Exception):
            self._loop.remove_reader(fd)
        os.set_blocking(fd, True)
        buf = self._rbuf
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except OSError:
                break
            if not data:
                break
            buf += data
        self._handle_buffered()

    def _handle_buffered(self) -> None:
        """Handle every whole frame read so far (a partial last one waits for its rest)."""
        buf = self._rbuf
        while len(buf) >= 4:
            size = int.from_bytes(buf[:4], "little")
            if len(buf) < 4 + size:
                break
            item = _decode(bytes(buf[4 : 4 + size]))
            del buf[: 4 + size]
            self._handle(item)

    def head(self) -> tuple[int, str]:
        """The current chain's last record number and hash, as the writer last reported."""
        return self._seq, self._prev

    @property
    def pending(self) -> int:
        """Records submitted and not yet committed or spooled."""
        return self._submitted - self._acked

    # ---- the request path --------------------------------------------------------------
    def describe(self, names: Any, redact: Any) -> None:
        """The feature names (and the redacted ones) of the rows :meth:`record` receives."""
        if names is not self._names:
            self._names = names
            self._names_frame = (_NAMES, _frame([_NAMES, list(names), sorted(redact)]))
            self._out.append(self._names_frame)

    def submit(self, record: Pending) -> bool:
        """Encode and queue a record; False (refuse the request) when too many wait."""
        features = record.features
        rows, as_rows = features, False  # None, or already dicts
        if features is not None and getattr(features, "names", None) is not None:
            self.describe(features.names, features.redact)
            rows, as_rows = features.rows, True
        return self.record(
            record.ts_us, record.request_id, record.client, record.status, record.decision,
            record.reasons, record.scores, record.prediction, rows, record.latency_us,
            record.body, record.waiter, as_rows=as_rows,
        )  # fmt: skip

    def record(
        self,
        ts_us: int,
        request_id: str,
        client: str,
        status: int,
        decision: str,
        reasons: list[str],
        scores: dict[str, Any],
        prediction: Any,
        rows: Any,
        latency_us: int,
        body: bytes | str,
        waiter: Any = None,
        *,
        as_rows: bool | None = None,
    ) -> bool:
        """:meth:`submit` without the intermediate record object (the request path's form):
        ``rows`` in the order of the names given to :meth:`describe` (``as_rows`` False:
        already dicts). False (refuse the request) when too many wait."""
        if self._submitted - self._acked >= self.settings.max_pending:
            self.backpressure_total += 1
            return False
        if as_rows is None:
            as_rows = rows is not None
        # A small body goes to the writer as it is, hashed there (off the request path); a
        # larger one's digest is made here (its copy would cost more than its hash).
        digest = (
            body
            if isinstance(body, str) or len(body) <= WRITER_HASHES_UP_TO
            else hashlib.sha256(body).hexdigest()
        )
        out = self._out
        out.append(
            (
                _RECORD,
                _frame(
                    [
                        _RECORD, ts_us, request_id, client, status, decision, reasons,
                        scores, prediction, rows, as_rows, latency_us, digest,
                    ]
                ),
            )
        )  # fmt: skip
        self._submitted += 1
        if waiter is not None:
            self._waiters.append((self._submitted, waiter))
            self._send_soon(True)
        elif len(out) >= self.settings.batch_size:
            self._send_soon(True)
        elif self._loop is not None and self._timer is None:
            self._schedule()
        return True

    def _send_soon(self, now: bool) -> None:
        if self._loop is None:
            self._wake.set()
        else:
            self._schedule(now)

    def add_row(self, table: str, row: dict[str, Any]) -> None:
        """Queue a row of another table (counts, alerts, feedback)."""
        self._out.append((_ROW, _frame([_ROW, table, row])))
        if self._loop is not None and self._timer is None:
            self._schedule()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every record and row queued so far is committed or spooled."""
        if self._proc is None:  # not started, or closed (and then written out)
            return not self._out
        with self._cond:
            self._flushes += 1
            token = self._flushes
        self._out.append((_FLUSH, _frame([_FLUSH, token])))
        if self._loop is not None and threading.get_ident() == self._loop_thread:
            raise RuntimeError("flush() waits for the event loop: call it from another thread")
        self._send_soon(True)
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._flushed < token:
                left = deadline - time.monotonic()
                if left <= 0 or self._proc is None:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # ---- the sender and the receiver ----------------------------------------------------
    def _send_loop(self) -> None:
        commit = self.settings.durability == "commit"
        interval = min(self.settings.flush_interval_ms / 1000.0, SEND_INTERVAL_MAX_S)
        while True:
            self._wake.wait(None if commit and not self._stop else interval)
            self._wake.clear()
            stopping = self._stop
            self._send_queued()
            if stopping and not self._out:
                return

    def _send_queued(self) -> None:
        out = self._out
        if not out:
            return
        parts: list[tuple[int, bytes]] = []
        while out:
            parts.append(out.popleft())
        with self._send_lock:
            self._inflight.extend(parts)
            self._write(b"".join(p[1] for p in parts))

    def _write(self, data: bytes) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.write(data)
            proc.stdin.flush()
        except (OSError, ValueError):
            pass  # the child died: the receiver restarts it and sends the in-flight frames

    def _receive_loop(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        while True:
            item = _read_frame(proc.stdout)
            if item is None:
                break
            self._handle(item)
        self._eof.set()
        if self._closing:
            return
        self._writer_died(proc)

    def _handle(self, item: Any) -> None:
        kind = item[0]
        if kind == _STATUS:
            self._apply_status(item[1])
        elif kind == _ALERT:
            if self.on_alert is not None:
                try:
                    self.on_alert(item[1], item[2], item[3])
                except Exception:
                    logger.exception("decision log alert failed")
        elif kind == _FLUSHED:
            self._apply_status(item[2])
            with self._cond:
                self._flushed = max(self._flushed, item[1])
                self._cond.notify_all()

    def _writer_died(self, proc: subprocess.Popen[bytes]) -> None:
        """Start another writer and send it every frame not acknowledged (any thread but
        the loop's: starting takes a while)."""
        proc.wait()
        with contextlib.suppress(OSError):
            if proc.stdout is not None:
                proc.stdout.close()
            if proc.stdin is not None:
                proc.stdin.close()
        logger.error(
            "the decision log writer exited (status %s); starting another and sending it the "
            "%d record(s) not yet acknowledged",
            proc.returncode,
            self.pending,
        )
        if self.on_alert is not None:
            with contextlib.suppress(Exception):
                self.on_alert(
                    "log-writer-restart",
                    "decision-log",
                    f"the decision log writer exited with status {proc.returncode}; restarted",
                )
        self._restart()

    def _restart(self) -> None:
        with self._send_lock:
            self._base = self._acked
            self._child_done = 0
            for key in _TOTALS:
                self._totals_base[key] += self._child_totals.get(key, 0)
            self._child_totals = {}
            self.chain = str(uuid.uuid4())
            self._registered = False
            self._seq = 0
            self._prev = store.genesis(self.chain)
            self._proc = None
            while True:
                try:
                    self._spawn()
                    break
                except ServiceError as e:
                    logger.error("%s; trying again in 1 s", e)
                    time.sleep(1.0)
            self.restarts += 1
            frames = b"".join(f for _, f in self._inflight)
            if self._loop is None:
                self._write(frames)
                return
            self._unsent = bytearray(frames)
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._attach)

    def _apply_status(self, status: dict[str, Any]) -> None:
        done = status["done"]
        self._child_totals = {key: status[key] for key in _TOTALS}
        base = self._totals_base
        self.written_total = base["written"] + status["written"]
        self.spooled_total = base["spooled"] + status["spooled"]
        self.replayed_total = base["replayed"] + status["replayed"]
        self.dropped_total = base["dropped"] + status["dropped"]
        self.quarantined_total = base["quarantined"] + status["quarantined"]
        self.db_ok = status["db_ok"]
        self._seq, self._prev = status["seq"], status["prev"]
        newly = done - self._child_done
        if newly > 0:
            self._child_done = done
            with self._send_lock:
                # Acknowledged records (and the rows sent before them) leave the in-flight list.
                records = newly
                inflight = self._inflight
                while inflight and records:
                    if inflight.popleft()[0] == _RECORD:
                        records -= 1
        self._acked = self._base + done
        waiters = self._waiters
        while waiters and waiters[0][0] <= self._acked:
            _, (loop, fut) = waiters.popleft()
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(_resolve, fut)


_TOTALS = ("written", "spooled", "replayed", "dropped", "quarantined")


def _resolve(fut: Any) -> None:
    if not fut.done():
        fut.set_result(None)


# ---- the child -------------------------------------------------------------------------------
def main() -> int:
    """The writer process: read the configuration, then records, rows and commands, until
    the end of standard input; write everything; exit."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # The service decides when the writer stops (it closes the pipe, or dies): a signal sent
    # to a whole process group must not stop the writer before the service's last records.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    inp = sys.stdin.buffer
    out = sys.stdout.buffer
    lock = threading.Lock()

    def send(item: Any) -> None:
        with lock:
            try:
                out.write(_frame(item))
                out.flush()
            except (OSError, ValueError):
                pass  # the service has gone: keep writing the records it sent

    config = _read_frame(inp)
    if config is None or config[0] != _CONFIG:
        return 2
    c = config[1]
    settings = msgspec.convert(c["settings"], GuardSettings)
    try:
        log = DecisionLog(c["url"], settings, c["replica"], c["spool"])
        log.chain = c["chain"]
        log._seq, log._prev = c["seq"], c["prev"]
        log._registered = c["registered"]
        log.on_alert = lambda kind, subject, message: send([_ALERT, kind, subject, message])
        log.on_batch = lambda: send([_STATUS, _status(log)])
        log.start()
    except Exception as e:
        send([_ERROR, f"{type(e).__name__}: {e}"])
        return 1
    send([_READY, _status(log)])
    from modelshield.guard.engine import FeatureRows

    names: list[str] = []
    redact: frozenset[str] = frozenset()
    while True:
        item = _read_frame(inp)
        if item is None:
            break
        kind = item[0]
        if kind == _RECORD:
            (
                _,
                ts,
                rid,
                client,
                status,
                decision,
                reasons,
                scores,
                prediction,
                rows,
                as_rows,
                latency,
                body,
            ) = item
            features = FeatureRows(names, redact, rows) if as_rows and rows is not None else rows
            log.accept(
                Pending(
                    ts,
                    rid,
                    client,
                    status,
                    decision,
                    reasons,
                    scores,
                    prediction,
                    features,
                    latency,
                    body,  # the body (hashed when the row is made) or its digest
                )
            )
        elif kind == _ROW:
            log.add_row(item[1], item[2])
        elif kind == _NAMES:
            names, redact = item[1], frozenset(item[2])
        elif kind == _FLUSH:
            log.flush()
            send([_FLUSHED, item[1], _status(log)])
        elif kind == _CLOSE:
            break
    log.close()
    send([_STATUS, _status(log)])
    return 0


def _status(log: DecisionLog) -> dict[str, Any]:
    seq, prev = log.head()
    return {
        "done": log._done,
        "written": log.written_total,
        "spooled": log.spooled_total,
        "replayed": log.replayed_total,
        "dropped": log.dropped_total,
        "quarantined": log.quarantined_total,
        "db_ok": log.db_ok,
        "seq": seq,
        "prev": prev,
    }


if __name__ == "__main__":
    sys.exit(main())
