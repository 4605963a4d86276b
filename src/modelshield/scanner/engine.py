"""The scan engine: expand paths, read each file once, detect, dispatch, collect results.

Format handlers register with :func:`handles`. Every handler runs inside the engine's guard:
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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from msgspec import Struct

from modelshield.core.findings import FileResult, Location, Report, Severity
from modelshield.core.policy import Policy
from modelshield.core.rules import Rule, register_rule
from modelshield.scanner.callables import CallablePolicy
from modelshield.scanner.context import Handler, LimitExceeded, ScanContext
from modelshield.scanner.detect import Format, detect, extension_mismatch

SCAN_LIMIT = register_rule(
    Rule(
        id="SCAN-LIMIT",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Analysis stopped at a configured limit",
        what="Reports that a size, depth, count or time limit stopped the analysis of part of a "
        "file. Findings made before the limit are kept.",
        why="What was not analysed may hold a payload: hostile files are built to exhaust "
        "scanners so that they give up and call the file clean. A tripped limit is never a "
        "clean verdict.",
        example="A pickle that claims a 2**62-byte string, or an archive nested 20 levels deep.",
        references=("CWE-400", "CWE-409"),
    )
)

SCAN_TOO_LARGE = register_rule(
    Rule(
        id="SCAN-FILE-TOO-LARGE",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="File larger than the size limit was not scanned",
        what="Reports a file above `limits.max_file_bytes`.",
        why="An unscanned file cannot be called safe.",
    )
)

_HANDLERS: dict[Format, Handler] = {}


def handles(*formats: Format) -> Callable[[Handler], Handler]:
    """Register a function as the handler of one or more formats."""

    def register(fn: Handler) -> Handler:
        for fmt in formats:
            _HANDLERS[fmt] = fn
        return fn

    return register


def _load_handlers() -> None:
    """Import the format modules, which register their handlers."""
    from modelshield.scanner import formats  # noqa: F401


def dispatch(ctx: ScanContext, data: memoryview, location: Location, fmt: Format | None) -> None:
    """Detect ``data``'s format (unless given) and run its handler, if any."""
    if fmt is None:
        fmt = detect(data)
    ctx.saw_format(fmt.value)
    handler = _HANDLERS.get(fmt)
    if handler is not None:
        ctx.check_deadline(location)
        handler(ctx, data, location)


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


def iter_files(paths: Sequence[str | os.PathLike[str]]) -> Iterator[tuple[str, str | None]]:
    """Yield ``(path, problem)`` for every file under ``paths``, sorted per directory.

    Directory links are not followed (no loops); links to files are scanned as the file they
    point to, since model caches (Hugging Face's among them) store weights behind links. A
    missing path yields a problem instead of a path.
    """
    for raw in paths:
        p = Path(raw)
        try:
            st = p.stat()
        except OSError as e:
            yield os.fspath(p), f"cannot open: {e.strerror or e}"
            continue
        if stat.S_ISDIR(st.st_mode):
            for root, dirs, files in os.walk(p, followlinks=False):
                dirs.sort()
                for name in sorted(files):
                    yield os.fspath(Path(root) / name), None
        else:
            yield os.fspath(p), None


def scan_file(path: str, policy: Policy, callables: CallablePolicy | None = None) -> FileResult:
    """Scan one file and return its result; never raises for a bad file."""
    _load_handlers()
    if callables is None:
        callables = CallablePolicy.default(policy.allow_callables, policy.deny_callables)
    ctx = ScanContext(path=path, policy=policy, callables=callables, dispatch=dispatch)
    loc = Location(path)
    size = 0
    fmt = Format.UNKNOWN
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
                    view = memoryview(mm)
                    try:
                        fmt = detect(view)
                        mismatch = extension_mismatch(path, fmt)
                        if mismatch is not None:
                            ctx.add(mismatch)
                        _guarded(ctx, lambda: dispatch(ctx, view, loc, fmt), loc)
                    finally:
                        view.release()
    except OSError as e:
        ctx.error(loc, f"cannot read file: {e.strerror or e}", stage="io")
    return FileResult(
        path=path,
        format=ctx.refined_format or fmt.value,
        findings=tuple(ctx.findings),
        errors=tuple(ctx.errors),
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
        ctx.add(
            SCAN_LIMIT.finding(
                e.location,
                f"Analysis stopped: {e.detail}. The rest of this part was not analysed; raise "
                f"limits.{e.limit} if the file is trusted to be this large.",
                evidence={"limit": e.limit},
            )
        )
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
) -> Report:
    """Scan files, directories (recursively) and archives; one result per file found.

    The returned report is *raw*: apply ``policy.apply(report)`` for ignores and overrides
    (the :func:`modelshield.scan` API does this).
    """
    policy = policy or Policy()
    observer = observer or _NullObserver()
    started = time.monotonic()
    callables = CallablePolicy.default(policy.allow_callables, policy.deny_callables)
    entries = list(iter_files(paths))
    observer.on_start(len(entries))
    results: list[FileResult] = []
    for path, problem in entries:
        if problem is not None:
            loc = Location(path)
            from modelshield.core.findings import ErrorRecord

            result = FileResult(
                path=path, format="unknown", errors=(ErrorRecord(loc, problem, "io"),)
            )
        else:
            result = scan_file(path, policy, callables)
        results.append(result)
        with contextlib.suppress(Exception):
            observer.on_file(result)
    return Report.of("scan", results, duration_s=time.monotonic() - started)


def scan(paths: str | Path | Sequence[str | Path], policy: Policy | None = None) -> Report:
    """Public API: scan and apply the policy. ``modelshield.scan(path) -> Report``."""
    policy = policy or Policy()
    seq: Sequence[str | Path] = [paths] if isinstance(paths, str | Path) else paths
    return policy.apply(scan_paths(seq, policy))
