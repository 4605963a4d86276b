"""Per-file analysis state handed to every format handler.

A handler receives a :class:`ScanContext`, a byte buffer and a :class:`Location`. It reports
findings with :meth:`ScanContext.add`, recurses into members or decompressed streams with
:meth:`ScanContext.scan_buffer`, and never raises for hostile input: a tripped bound raises
:class:`LimitExceeded`, which the engine turns into a ``SCAN-LIMIT`` finding, keeping every
finding made before it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from msgspec import Struct, field

from modelshield.core.findings import ErrorRecord, Finding, Gap, Location, Severity
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.core.rules import rule_is_incomplete
from modelshield.scanner.detect import detect
from modelshield.scanner.memio import Buffer
from modelshield.scanner.registry import Format, handler_for
from modelshield.scanner.rules import SCAN_FORMAT_NOT_ANALYSED

if TYPE_CHECKING:
    from modelshield.scanner.callables import CallablePolicy


#: Findings of one rule kept per file; further ones are counted and summarised (a hostile file
#: can repeat one construct a million times, and a report of a million findings helps nobody).
MAX_FINDINGS_PER_RULE = 100
#: Findings kept per file, all rules together.
MAX_FINDINGS_PER_FILE = 2_000
#: Gaps (parts not analysed) kept per rule and file.
MAX_GAPS_PER_RULE = 20


#: Format names that make a top-level file's format more specific than its container.
_REFINEMENTS = frozenset(
    {"pytorch-zip", "pytorch-legacy", "torchscript", "numpy-object", "keras-v3", "keras-h5"}
)


class LimitExceeded(Exception):
    """A configured bound was reached; the analysis of this buffer stops here."""

    def __init__(self, limit: str, detail: str, location: Location) -> None:
        """Name the limit (a :class:`Limits` field), what tripped it, and where."""
        super().__init__(f"{limit}: {detail}")
        self.limit = limit
        self.detail = detail
        self.location = location


class Overflow(Struct):
    """Findings of one rule that were counted but not kept."""

    count: int = 0
    """How many were dropped."""
    worst: Finding | None = None
    """The first dropped finding of the highest severity dropped."""


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
    gaps: list[Gap] = field(default_factory=list)
    """Parts of the input that were not analysed, from findings of incomplete rules."""
    rule_totals: dict[str, int] = field(default_factory=dict)
    """Findings made per rule, kept or not."""
    overflow: dict[str, Overflow] = field(default_factory=dict)
    """Findings made past the caps, per rule."""

    @property
    def limits(self) -> Limits:
        """The limits in force."""
        return self.policy.limits

    def add(self, finding: Finding) -> None:
        """Record a finding (and the gap it reports, for a rule of unanalysed content).

        The first :data:`MAX_FINDINGS_PER_RULE` findings of a rule are kept, up to
        :data:`MAX_FINDINGS_PER_FILE` in all; later ones are counted, and the worst of them is
        kept as an example (see :meth:`finish_findings`).
        """
        rule = finding.rule_id
        total = self.rule_totals.get(rule, 0) + 1
        self.rule_totals[rule] = total
        if rule_is_incomplete(rule) and total <= MAX_GAPS_PER_RULE:
            self.gaps.append(Gap(rule, finding.location, finding.message))
        if total <= MAX_FINDINGS_PER_RULE and len(self.findings) < MAX_FINDINGS_PER_FILE:
            self.findings.append(finding)
            return
        over = self.overflow.get(rule)
        if over is None:
            over = self.overflow[rule] = Overflow()
        over.count += 1
        if over.worst is None or finding.severity > over.worst.severity:
            over.worst = finding

    def finish_findings(self) -> list[Finding]:
        """The kept findings, then for each rule that overflowed: its worst dropped finding
        (when worse than every kept one of that rule) and a summary saying how many more."""
        out = list(self.findings)
        for rule, over in self.overflow.items():
            worst = over.worst
            if worst is None:
                continue
            kept = [f.severity for f in self.findings if f.rule_id == rule]
            dropped = over.count
            if not kept or worst.severity > max(kept):
                out.append(worst)
                dropped -= 1
            if dropped:
                out.append(_summary(worst, dropped))
        return out

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
        self.depth += 1
        try:
            self.dispatch(memoryview(data), location, fmt)
        finally:
            self.depth -= 1

    def dispatch(self, data: memoryview, location: Location, fmt: Format | None = None) -> None:
        """Detect ``data``'s format (unless given) and run its handler at the current depth."""
        if fmt is None:
            fmt = detect(data)
        self.saw_format(fmt.value)
        handler = handler_for(fmt)
        if handler is not None:
            self.check_deadline(location)
            handler(self, data, location)
        elif fmt is not Format.UNKNOWN and fmt is not Format.EMPTY:
            self.add(
                SCAN_FORMAT_NOT_ANALYSED.finding(
                    location,
                    f"This content is {fmt.value}, which modelshield recognises but does not "
                    "analyse yet, so it was not checked. Accept the gap in the policy "
                    f'([[accept_incomplete]] rule = "{SCAN_FORMAT_NOT_ANALYSED.id}") only if '
                    "you trust where the file comes from.",
                    evidence={"format": fmt.value},
                )
            )


def _summary(example: Finding, dropped: int) -> Finding:
    """One finding that stands for ``dropped`` more findings of ``example``'s rule."""
    return Finding(
        rule_id=example.rule_id,
        severity=Severity.INFO,  # the worst of them is listed at its own severity
        title=f"... and {dropped} more {example.rule_id} finding{'s' if dropped != 1 else ''}",
        message=f"This file has {dropped} more findings of rule {example.rule_id} than the "
        f"{MAX_FINDINGS_PER_RULE} listed (at most {MAX_FINDINGS_PER_FILE} are listed per file); "
        "they are counted here, not listed. The worst of them is listed at its own severity.",
        location=Location(example.location.path),
        evidence={"more": str(dropped), "rule": example.rule_id},
    )
