"""The scan engine: expand paths, read each file once, detect, dispatch, collect results.

Handlers are found in the format table (:mod:`modelshield.scanner.registry`) and run through
:meth:`ScanContext.dispatch`. Every handler runs inside the engine's guard:
a bound it trips (:class:`LimitExceeded`) becomes a ``SCAN-LIMIT`` finding, an unexpected
exception becomes an :class:`ErrorRecord` naming the handler and the file, and the scan of
the other files goes on.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Protocol, TypeAlias

from msgspec import Struct
from msgspec.structs import replace

from modelshield.core.findings import FileResult, Location, Report, Repository
from modelshield.core.policy import Policy
from modelshield.scanner.callables import CallablePolicy
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.detect import detect, extension_mismatch
from modelshield.scanner.discovery import Discovery, ExcludedLog, walk
from modelshield.scanner.registry import Format
from modelshield.scanner.rules import SCAN_TOO_LARGE


class ScanObserver(Protocol):
    """Progress callbacks; the library never prints, the CLI plugs in a progress bar."""

    def on_start(self, total: int) -> None:
        """Called once with the number of files to scan."""

    def on_file(self, result: FileResult) -> None:
        """Called after each file."""


class _NullObserver(Struct, frozen=True):
    def on_start(self, total: int) -> None:
        pass

    def on_file(self, result: FileResult) -> None:
        pass


def iter_files(
    paths: Sequence[str | os.PathLike[str]],
    discovery: Discovery | None = None,
    log: ExcludedLog | None = None,
) -> Iterator[tuple[str, str | None]]:
    """Yield ``(path, problem)`` for every file under ``paths``, sorted per directory.

    Each path named is read whatever it is; under a named directory, what ``discovery`` leaves
    out (version-control, virtual-environment and cache directories, ``exclude`` patterns,
    what git ignores: see :mod:`modelshield.scanner.discovery`) is recorded in ``log``.
    Directory links are not followed (no loops); links to files are scanned as the file they
    point to, since model caches (Hugging Face's among them) store weights behind links. A
    missing path, a directory that cannot be listed and a named directory that holds no file
    yield a problem instead of a path: nothing is skipped silently.
    """
    for raw in paths:
        p = Path(raw)
        try:
            st = p.stat()
        except OSError as e:
            yield os.fspath(p), f"cannot open: {e.strerror or e}"
            continue
        if not stat.S_ISDIR(st.st_mode):
            yield os.fspath(p), None
            continue
        yield from walk(os.fspath(p), discovery, log)


def scan_file(path: str, policy: Policy, callables: CallablePolicy | None = None) -> FileResult:
    """Scan one file and return its result; never raises for a bad file."""
    if callables is None:
        callables = CallablePolicy.default(policy.allow_callables, policy.deny_callables)
    ctx = ScanContext(path=path, policy=policy, callables=callables)
    loc = Location(path)
    size = 0
    fmt = Format.UNKNOWN
    skipped = False
    try:
        # O_NONBLOCK: opening a FIFO named in a scanned folder must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_BINARY", 0))
        with open(fd, "rb", closefd=True) as fh:  # noqa: PTH123 - an fd, not a path
            st = os.fstat(fh.fileno())
            size = st.st_size
            if not stat.S_ISREG(st.st_mode):
                size = 0
                ctx.error(loc, "not a regular file (a FIFO, socket or device); not read", "io")
            elif size > policy.limits.max_file_bytes:
                skipped = True
                ctx.add(
                    SCAN_TOO_LARGE.finding(
                        loc,
                        f"The file has {size} bytes, above the limit of "
                        f"{policy.limits.max_file_bytes}; raise limits.max_file_bytes to scan it.",
                        evidence={"size": str(size)},
                    )
                )
            elif size == 0:
                fmt = Format.EMPTY
                ctx.saw_format(fmt.value)
                mismatch = extension_mismatch(path, fmt)
                if mismatch is not None:
                    ctx.add(mismatch)
            else:
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    ctx.mapped = mm
                    view = memoryview(mm)
                    try:
                        fmt = detect(view)
                        mismatch = extension_mismatch(path, fmt)
                        if mismatch is not None:
                            ctx.add(mismatch)
                        _guarded(ctx, lambda: ctx.dispatch(view, loc, fmt), loc)
                    finally:
                        view.release()
                        ctx.mapped = None
    except OSError as e:
        ctx.error(loc, f"cannot read file: {e.strerror or e}", stage="io")
    return FileResult(
        path=path,
        format=ctx.refined_format or fmt.value,
        findings=tuple(ctx.finish_findings()),
        errors=tuple(ctx.errors),
        gaps=tuple(ctx.gaps),
        skipped=skipped,
        bytes_read=ctx.bytes_read,
        size=size,
        duration_s=time.monotonic() - ctx.started,
        formats_seen=tuple(ctx.formats_seen),
        imports=tuple(sorted(ctx.imports)),
        metadata=dict(ctx.metadata),
    )


def _guarded(ctx: ScanContext, run: Callable[[], None], loc: Location) -> None:
    try:
        run()
    except LimitExceeded as e:
        if e.unfollowed is None:
            ctx.add(e.finding())
        else:  # rare: imported here so that start-up stays light for every other file
            from modelshield.scanner.pickle.linear import limit_reached

            limit_reached(ctx, e)
    except MemoryError:
        ctx.error(loc, "ran out of memory while analysing this file", stage="scan")
    except RecursionError:
        ctx.error(loc, "structure too deeply nested to analyse", stage="scan")
    except Exception as e:  # a bug of ours: record it, keep going, tests catch it
        ctx.error(loc, f"internal error in scanner: {type(e).__name__}: {e}", stage="scan")


def scan_paths(
    paths: Sequence[str | os.PathLike[str]],
    policy: Policy | None = None,
    observer: ScanObserver | None = None,
    *,
    discovery: Discovery | None = None,
    jobs: int | None = 1,
    executor: str = "local",
) -> Report:
    """Scan files, directories (recursively) and archives; one result per file found.

    ``discovery`` says what the search of a directory leaves out (default: the policy's
    ``exclude`` and ``gitignore`` settings); the report lists what was left out. ``jobs``
    workers scan files at once (None: one per CPU, or the Ray cluster's CPUs), in a pool of
    processes (``executor="local"``) or on Ray (``"ray"``, the ``ray`` extra); the report is
    the same as a serial scan's, results in the same order. The returned report is
    *raw*: apply ``policy.apply(report)`` for ignores and overrides (the
    :func:`modelshield.scan` API does this).
    """
    policy = policy or Policy()
    observer = observer or _NullObserver()
    started = time.monotonic()
    callables = CallablePolicy.default(policy.allow_callables, policy.deny_callables)
    if discovery is None:
        discovery = Discovery.from_policy(policy)
    log = ExcludedLog()
    groups = [(raw, list(iter_files([raw], discovery, log))) for raw in paths]
    observer.on_start(sum(len(entries) for _, entries in groups))
    stream = scan_entries(
        [entry for _, entries in groups for entry in entries],
        policy,
        callables,
        jobs=jobs,
        executor=executor,
    )
    results: list[FileResult] = []
    repositories: list[Repository] = []
    try:
        for raw, entries in groups:
            mine: list[FileResult] = []
            for _ in entries:
                result = next(stream)
                mine.append(result)
                with contextlib.suppress(Exception):
                    observer.on_file(result)
            # The repository pass reads the directory's results: it runs once they are all in.
            if Path(raw).is_dir() and mine:
                mine, repository = _repository(os.fspath(raw), mine, policy, callables)
                if repository is not None:
                    repositories.append(repository)
            results += mine
    finally:
        stream.close()  # stops the workers of a parallel scan
    return Report.of(
        "scan",
        results,
        duration_s=time.monotonic() - started,
        repositories=repositories,
        excluded=log.listed,
        excluded_total=log.total,
    )


Entry: TypeAlias = tuple[str, str | None]
"""A file to scan and the problem that stops it being read (:func:`iter_files`)."""

#: A batch handed to a worker holds at most this many files...
BATCH_FILES = 32
#: ...and closes once its files reach this many bytes (a large file travels alone).
BATCH_BYTES = 8 * 1024 * 1024


def scan_entries(
    entries: Sequence[Entry],
    policy: Policy,
    callables: CallablePolicy | None = None,
    *,
    jobs: int | None = 1,
    executor: str = "local",
) -> Generator[FileResult, None, None]:
    """One result per entry, in the entries' order, scanned here or by ``jobs`` workers.

    A single entry, or one job on this machine, is scanned in this process (no worker is
    started). Otherwise entries go in batches to worker processes or Ray tasks
    (:mod:`modelshield.scanner.fleet`) that run :func:`scan_file` as this process would, so
    results are the same, limits apply per file in the same way, and results stream back in
    order. A batch whose worker died is reported as errors of its files, never dropped.
    """
    from_here = executor == "local" and jobs == 1
    if from_here or len(entries) < 2:
        if callables is None:
            callables = CallablePolicy.default(policy.allow_callables, policy.deny_callables)
        for path, problem in entries:
            yield _entry_result(path, problem, policy, callables)
        return
    from modelshield.scanner.fleet import Executor, ordered_map

    try:
        chosen = Executor(executor)
    except ValueError:
        from modelshield.core.errors import ConfigError

        raise ConfigError(
            f"unknown executor {executor!r}; choose one of: {', '.join(Executor)}"
        ) from None
    batches = ordered_map(
        scan_batch,
        policy,
        _batches(entries),
        workers=jobs,
        executor=chosen,
        lost=_lost_batch,
    )
    try:
        for batch in batches:
            yield from batch
    finally:
        batches.close()


def scan_batch(policy: Policy, batch: Sequence[Entry]) -> list[FileResult]:
    """A worker's job: the results of a batch of entries (run in a worker process)."""
    callables = CallablePolicy.default(policy.allow_callables, policy.deny_callables)
    return [_entry_result(path, problem, policy, callables) for path, problem in batch]


def _entry_result(
    path: str, problem: str | None, policy: Policy, callables: CallablePolicy
) -> FileResult:
    if problem is None:
        return scan_file(path, policy, callables)
    from modelshield.core.findings import ErrorRecord

    return FileResult(
        path=path, format="unknown", errors=(ErrorRecord(Location(path), problem, "io"),)
    )


def _lost_batch(batch: Sequence[Entry], reason: str) -> list[FileResult]:
    """Error results for a batch whose worker died: never analysed, so never clean."""
    from modelshield.core.findings import ErrorRecord

    many = f" (one of {len(batch)} files scanned by that worker)" if len(batch) > 1 else ""
    return [
        FileResult(
            path=path,
            format="unknown",
            errors=(ErrorRecord(Location(path), f"not analysed: {reason}{many}", "scan"),),
        )
        for path, _ in batch
    ]


def _batches(entries: Sequence[Entry]) -> Iterator[tuple[Entry, ...]]:
    """Consecutive entries grouped up to :data:`BATCH_FILES` files or :data:`BATCH_BYTES`; a
    file of that size or more travels alone, so that large files spread over the workers."""
    batch: list[Entry] = []
    size = 0
    for entry in entries:
        own = 0
        if entry[1] is None:
            with contextlib.suppress(OSError):
                own = Path(entry[0]).stat().st_size
        if batch and size + own > BATCH_BYTES:
            yield tuple(batch)
            batch, size = [], 0
        batch.append(entry)
        size += own
        if len(batch) >= BATCH_FILES or size >= BATCH_BYTES:
            yield tuple(batch)
            batch, size = [], 0
    if batch:
        yield tuple(batch)


def _repository(
    root: str, results: list[FileResult], policy: Policy, callables: CallablePolicy
) -> tuple[list[FileResult], Repository | None]:
    """The repository pass over a scanned directory (imported only when a directory is
    scanned). A bug in it is an error record on the directory's first result, never a lost
    scan."""
    from modelshield.scanner.repository import scan_repository

    try:
        return scan_repository(root, results, policy, callables)
    except Exception as e:  # a bug of ours: keep the file results, say what failed
        from modelshield.core.findings import ErrorRecord

        first = results[0]
        error = ErrorRecord(
            Location(root), f"internal error in the repository pass: {type(e).__name__}: {e}"
        )
        return [replace(first, errors=(*first.errors, error)), *results[1:]], None


def scan(paths: str | Path | Sequence[str | Path], policy: Policy | None = None) -> Report:
    """Public API: scan and apply the policy. ``modelshield.scan(path) -> Report``."""
    policy = policy or Policy()
    seq: Sequence[str | Path] = [paths] if isinstance(paths, str | Path) else paths
    return policy.apply(scan_paths(seq, policy))
