"""Per-file analysis state handed to every format handler.

A handler receives a :class:`ScanContext`, a byte buffer and a :class:`Location`. It reports
findings with :meth:`ScanContext.add`, recurses into members or decompressed streams with
:meth:`ScanContext.scan_buffer`, and never raises for hostile input: a tripped bound raises
:class:`LimitExceeded`, which the engine turns into a ``SCAN-LIMIT`` finding, keeping every
finding made before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from msgspec import Struct, field

from modelshield.core.findings import ErrorRecord, Finding, Location
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy

if TYPE_CHECKING:
    from modelshield.scanner.callables import CallablePolicy
    from modelshield.scanner.detect import Format

#: Anything that supports the buffer protocol and slicing: ``bytes``, ``memoryview``, ``mmap``.
Buffer = bytes | bytearray | memoryview


#: Format names that make a top-level file's format more specific than its container.
_REFINEMENTS = frozenset({"pytorch-zip", "pytorch-legacy", "torchscript", "numpy-object"})


class LimitExceeded(Exception):
    """A configured bound was reached; the analysis of this buffer stops here."""

    def __init__(self, limit: str, detail: str, location: Location) -> None:
        """Name the limit (a :class:`Limits` field), what tripped it, and where."""
        super().__init__(f"{limit}: {detail}")
        self.limit = limit
        self.detail = detail
        self.location = location


class Handler(Protocol):
    """A format handler: analyse ``data`` found at ``location``."""

    def __call__(self, ctx: ScanContext, data: memoryview, location: Location) -> None:
        """Report findings on ``ctx``; recurse with ``ctx.scan_buffer``."""


class ScanContext(Struct):
    """Mutable accumulator for one top-level input. Not shared between files or threads."""

    path: str
    """The top-level input."""
    policy: Policy
    """The policy in force (limits and callable lists come from it)."""
    callables: CallablePolicy
    """Classifier for callables a pickle imports."""
    started: float = field(default_factory=time.monotonic)
    """When the analysis of this input started (monotonic clock)."""
    findings: list[Finding] = field(default_factory=list)
    """Findings so far."""
    errors: list[ErrorRecord] = field(default_factory=list)
    """Errors so far."""
    formats_seen: list[str] = field(default_factory=list)
    """Formats met, outermost first, deduplicated."""
    bytes_read: int = 0
    """Bytes read from disk or inflated."""
    imports: set[str] = field(default_factory=set)
    """Callables imported by any pickle, as ``module:qualname`` (safe ones included)."""
    metadata: dict[str, str] = field(default_factory=dict)
    """Facts the file records about itself (``sklearn_version``, ``torch_archive_version``...)."""
    refined_format: str | None = None
    """A more specific name for the top-level format, set by its handler (``pytorch-zip``)."""
    depth: int = 0
    """Current nesting depth (archives, streams, embedded payloads)."""
    dispatch: Callable[[ScanContext, memoryview, Location, Format | None], None] | None = None
    """Set by the engine: detect a buffer's format and run its handler."""

    @property
    def limits(self) -> Limits:
        """The limits in force."""
        return self.policy.limits

    def add(self, finding: Finding) -> None:
        """Record a finding."""
        self.findings.append(finding)

    def error(self, location: Location, message: str, stage: str = "scan") -> None:
        """Record an error that stopped part of the analysis."""
        self.errors.append(ErrorRecord(location=location, message=message, stage=stage))

    def saw_format(self, name: str) -> None:
        """Note a format met inside the input.

        A refinement (``pytorch-zip`` of a zip) met at the top level also names the file's
        format in its result.
        """
        if name not in self.formats_seen:
            self.formats_seen.append(name)
        if self.depth == 0 and name in _REFINEMENTS:
            self.refined_format = name

    def check_deadline(self, location: Location) -> None:
        """Raise LimitExceeded when the per-file time budget is spent."""
        budget = self.limits.max_seconds_per_file
        if time.monotonic() - self.started > budget:
            raise LimitExceeded(
                "max_seconds_per_file", f"analysis took longer than {budget:g} s", location
            )

    def scan_buffer(self, data: Buffer, location: Location, fmt: Format | None = None) -> None:
        """Analyse a nested buffer (archive member, inflated stream, embedded payload).

        Detects its format by content unless ``fmt`` is given, one level deeper, bounded by
        ``limits.max_nested_depth``.
        """
        if self.depth >= self.limits.max_nested_depth:
            raise LimitExceeded(
                "max_nested_depth",
                f"nesting deeper than {self.limits.max_nested_depth} levels was not followed",
                location,
            )
        if self.dispatch is None:  # pragma: no cover - set by the engine
            raise RuntimeError("ScanContext.dispatch is not set")
        self.depth += 1
        try:
            self.dispatch(self, memoryview(data), location, fmt)
        finally:
            self.depth -= 1
