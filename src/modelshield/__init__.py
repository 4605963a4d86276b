"""modelshield: security for the ML model lifecycle.

The public API::

    import modelshield
    report = modelshield.scan("model.pt")        # -> modelshield.Report
    report.max_severity, report.findings
    model = modelshield.load("model.pt")         # scan, then load under the same policy

Everything is imported lazily so that ``modelshield --help`` and a one-file scan start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelshield._version import __version__

if TYPE_CHECKING:
    from modelshield.core import (
        ErrorRecord,
        ExitCode,
        FileResult,
        Finding,
        Limits,
        Location,
        Policy,
        Report,
        Severity,
    )
    from modelshield.loaders import LoadRefused, load
    from modelshield.scanner.engine import scan

__all__ = [
    "ErrorRecord",
    "ExitCode",
    "FileResult",
    "Finding",
    "Limits",
    "LoadRefused",
    "Location",
    "Policy",
    "Report",
    "Severity",
    "__version__",
    "load",
    "scan",
]

_CORE = {
    "ErrorRecord",
    "ExitCode",
    "FileResult",
    "Finding",
    "Limits",
    "Location",
    "Policy",
    "Report",
    "Severity",
}


def __getattr__(name: str) -> Any:
    if name in _CORE:
        from modelshield import core

        return getattr(core, name)
    if name == "scan":
        from modelshield.scanner.engine import scan

        return scan
    if name in ("load", "LoadRefused"):
        from modelshield import loaders

        return getattr(loaders, name)
    raise AttributeError(f"module 'modelshield' has no attribute {name!r}")
