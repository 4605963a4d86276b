"""Plain pickles under the policy: drop-ins for ``pickle``'s ``load`` and ``loads``.

The file (or the bytes) is scanned whole, every pickle in it included, then its first pickle is
read by the restricted unpickler, as ``pickle``'s ``load`` reads one pickle and leaves the file
after it.
"""

from __future__ import annotations

import contextlib
import os
from typing import IO, Any

from modelshield.core.findings import Report
from modelshield.core.policy import Policy
from modelshield.loaders.base import run_guarded, scan_then_load
from modelshield.loaders.session import LoadSession
from modelshield.loaders.unpickler import unpickle

METHOD = "modelshield's restricted unpickler"
"""How a plain pickle was read."""


def pickle_load(
    file: IO[bytes] | str | os.PathLike[str],
    *,
    policy: Policy | None = None,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    errors: str = "strict",
) -> Any:
    """Drop-in for ``pickle``'s ``load``: scan, refuse unless the policy passes, then read one
    pickle under the policy. A binary file object is read to its end for the scan and left just
    after the pickle when it is seekable; a path is opened. Raises
    :class:`~modelshield.core.errors.LoadRefused`."""
    start = None
    if not isinstance(file, str | os.PathLike):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            start = file.tell() if file.seekable() else None

    def load(path: str, session: LoadSession, report: Report) -> tuple[Any, int]:
        options: dict[str, Any] = {
            "fix_imports": fix_imports,
            "encoding": encoding,
            "errors": errors,
        }
        return load_pickle(path, session, report=report, **options)

    value, used = scan_then_load(file, policy, ".pkl", load)
    if start is not None and not isinstance(file, str | os.PathLike):
        file.seek(start + used)
    return value


def pickle_loads(
    data: bytes | bytearray | memoryview,
    *,
    policy: Policy | None = None,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    errors: str = "strict",
) -> Any:
    """Drop-in for ``pickle``'s ``loads``: scan the bytes, refuse them unless the policy passes
    them, then read the pickle under the policy. Raises
    :class:`~modelshield.core.errors.LoadRefused`."""

    def load(path: str, session: LoadSession, report: Report) -> Any:
        options: dict[str, Any] = {
            "fix_imports": fix_imports,
            "encoding": encoding,
            "errors": errors,
        }
        return load_pickle(path, session, report=report, **options)[0]

    return scan_then_load(bytes(data), policy, ".pkl", load)


def load_pickle(
    path: str,
    session: LoadSession,
    *,
    report: Any = None,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    errors: str = "strict",
) -> tuple[Any, int]:
    """Read the first pickle of a file the caller scanned (or chose not to) under ``session``'s
    policy; returns it and the number of bytes it took."""

    def run() -> tuple[Any, int]:
        with open(path, "rb") as fh:  # noqa: PTH123
            # The scan ran first; the restricted unpickler checks what it unpickles.
            value = unpickle(session, fh, fix_imports=fix_imports, encoding=encoding, errors=errors)
            return value, fh.tell()

    return run_guarded(session, report, run)


__all__ = ["METHOD", "load_pickle", "pickle_load", "pickle_loads"]
