"""What every restricted loader shares: the scan before the load, sources, results, extras."""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import tempfile
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from msgspec import Struct
from msgspec.structs import replace

from modelshield.core.errors import LoadRefused, MissingExtraError
from modelshield.core.findings import FileResult, Location, Report
from modelshield.core.policy import ExitCode, Policy
from modelshield.loaders.session import LoadSession, Refused

T = TypeVar("T")

Source = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes]
"""What a drop-in loader accepts: a path, the bytes of a file, or a binary file object (read
from its current position; both are copied to a temporary file that is scanned and loaded)."""

LOADERS = ("torch", "joblib", "pickle", "numpy")
"""The restricted loaders, by the library whose loader each one restricts."""


class LoadResult(Struct, frozen=True):
    """A model loaded through the restricted path, and how."""

    value: Any
    """The loaded object."""
    loader: str
    """Which restricted loader read it: ``torch``, ``joblib``, ``pickle`` or ``numpy``."""
    method: str
    """How, in words (e.g. torch's ``weights_only`` unpickler fed the policy's safe globals, or
    modelshield's restricted unpickler as torch's ``pickle_module``)."""
    format: str
    """The format the scan detected (``pytorch-zip``, ``pickle``, ``gzip``, ``numpy``...)."""
    report: Report | None
    """The scan's report, policy applied (None when the caller loaded without a scan)."""


def require(module: str, feature: str, extra: str) -> types.ModuleType:
    """Import an optional library, or raise :class:`MissingExtraError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(feature, extra, module.partition(".")[0]) from e


def scan_before_load(path: str, policy: Policy, label: str | None = None) -> Report:
    """Scan one file and refuse it unless the policy passes it (exit code 0).

    A finding at or above ``fail_on`` refuses it, and so does a file that was not fully
    analysed (an error, or a gap the policy does not accept), whatever ``fail_on`` is.
    """
    from modelshield.scanner.engine import scan_file

    result = scan_file(path, policy)
    if label is not None and label != path:
        result = _relabel(result, label)
    report = policy.apply(Report.of("scan", [result]))
    shown = result.path
    code = policy.exit_code(report)
    if code is ExitCode.FINDINGS:
        worst = [f for f in report.findings if f.severity >= policy.fail_on]
        raise LoadRefused(
            shown,
            f"the scan reported {len(worst)} finding(s) at or above "
            f"'{policy.fail_on.label}' (worst: {worst[0].rule_id})",
            report=report,
            findings=worst,
        )
    if code is ExitCode.ERROR:
        done = report.results[0]
        what = [e.message for e in done.errors] + [g.message for g in done.unaccepted_gaps]
        raise LoadRefused(
            shown,
            f"the scan could not analyse it fully: {what[0] if what else 'unknown reason'}",
            report=report,
            findings=[f for f in report.findings if any(g.rule_id == f.rule_id for g in done.gaps)],
        )
    return report


def _relabel(result: FileResult, label: str) -> FileResult:
    """The result of a scan of a temporary copy, with the name the caller knows."""

    def loc(location: Location) -> Location:
        return replace(location, path=label)

    return replace(
        result,
        path=label,
        findings=tuple(replace(f, location=loc(f.location)) for f in result.findings),
        errors=tuple(replace(e, location=loc(e.location)) for e in result.errors),
        gaps=tuple(replace(g, location=loc(g.location)) for g in result.gaps),
    )


@contextlib.contextmanager
def materialize(source: Source, suffix: str = "") -> Iterator[tuple[str, str]]:
    """``(path on disk, name for reports)`` for a source; bytes and file objects are copied
    to a temporary file, removed afterwards."""
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        yield path, path
        return
    fd, tmp = tempfile.mkstemp(prefix="modelshield-load-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(source, bytes | bytearray | memoryview):
                out.write(source)
                label = "<bytes>"
            else:
                shutil.copyfileobj(source, out)
                name = getattr(source, "name", None)
                label = name if isinstance(name, str) else "<stream>"
        yield tmp, label
    finally:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()


def scan_then_load(
    source: Source,
    policy: Policy | None,
    suffix: str,
    load: Callable[[str, LoadSession, Report], T],
    *,
    writable: bool = False,
) -> T:
    """What every drop-in does: materialise the source, scan it (refusing what the policy does
    not pass), then run ``load(path, session, report)`` under a new session. ``writable`` lets
    the loader open the file itself for writing (a memory map opened ``r+``)."""
    policy = policy or Policy()
    with materialize(source, suffix) as (path, label):
        report = scan_before_load(path, policy, label)
        session = LoadSession(label, policy, writable=(path,) if writable else ())
        return load(path, session, report)


def run_guarded(session: LoadSession, report: Report | None, call: Callable[[], T]) -> T:
    """Run a restricted load; any refusal made during it (even one a library caught and
    replaced by its own exception) is raised as :class:`LoadRefused`."""
    try:
        value = call()
    except Refused as e:
        session.raise_if_refused(report, e)
        raise
    except Exception as e:
        session.raise_if_refused(report, e)
        raise
    session.raise_if_refused(report)
    return value
