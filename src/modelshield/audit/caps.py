"""Bounded findings and errors per input, counted and summarised past the bounds.

A hostile requirements file can repeat one line millions of times; a report of a million
findings helps nobody and costs gigabytes. As the scanner does, the audit keeps the first
findings of each rule and counts the others, listing the worst of them and a summary saying how
many more there were; errors are kept the same way. Dropped findings are never built (a finding
is made only if it will be kept, or if it is worse than every dropped one so far).
"""

from __future__ import annotations

from collections.abc import Callable

from modelshield.core.findings import ErrorRecord, Finding, Location, Severity

MAX_FINDINGS_PER_RULE = 1_000
"""Findings of one rule kept per input (an old TensorFlow pin alone has a few hundred)."""
MAX_FINDINGS_PER_INPUT = 5_000
"""Findings kept per input, all rules together."""
MAX_ERRORS_PER_INPUT = 100
"""Error records kept per input; further ones are counted in one more record."""


class _Overflow:
    __slots__ = ("count", "worst")

    def __init__(self) -> None:
        self.count = 0
        self.worst: Finding | None = None


class FindingCap:
    """Findings of one input: the first of each rule, then counts and the worst dropped one."""

    __slots__ = ("_kept", "_over", "_totals")

    def __init__(self) -> None:
        """Nothing kept yet."""
        self._kept: list[Finding] = []
        self._totals: dict[str, int] = {}
        self._over: dict[str, _Overflow] = {}

    def add(self, rule_id: str, severity: Severity, make: Callable[[], Finding]) -> bool:
        """Count a finding of ``rule_id`` at ``severity``; ``make()`` builds it only when it is
        kept (or is the worst dropped so far). Returns whether it was kept."""
        total = self._totals.get(rule_id, 0) + 1
        self._totals[rule_id] = total
        if total <= MAX_FINDINGS_PER_RULE and len(self._kept) < MAX_FINDINGS_PER_INPUT:
            self._kept.append(make())
            return True
        over = self._over.get(rule_id)
        if over is None:
            over = self._over[rule_id] = _Overflow()
        over.count += 1
        if over.worst is None or severity > over.worst.severity:
            over.worst = make()
        return False

    def keep(self, finding: Finding) -> bool:
        """:meth:`add` for a finding already built."""
        return self.add(finding.rule_id, finding.severity, lambda: finding)

    def findings(self) -> tuple[Finding, ...]:
        """The kept findings, then for each rule that overflowed: its worst dropped finding
        (when worse than every kept one of that rule) and a summary counting the others."""
        out = list(self._kept)
        for rule, over in self._over.items():
            worst = over.worst
            if worst is None:
                continue
            kept = [f.severity for f in self._kept if f.rule_id == rule]
            dropped = over.count
            if not kept or worst.severity > max(kept):
                out.append(worst)
                dropped -= 1
            if dropped:
                out.append(_summary(worst, dropped))
        return tuple(out)


def _summary(example: Finding, dropped: int) -> Finding:
    """One finding that stands for ``dropped`` more findings of ``example``'s rule."""
    return Finding(
        rule_id=example.rule_id,
        severity=Severity.INFO,  # the worst of them is listed at its own severity
        title=f"... and {dropped} more {example.rule_id} finding{'s' if dropped != 1 else ''}",
        message=f"This input has {dropped} more findings of rule {example.rule_id} than the "
        f"{MAX_FINDINGS_PER_RULE} listed (at most {MAX_FINDINGS_PER_INPUT} are listed per "
        "input); they are counted here, not listed. The worst of them is listed at its own "
        "severity.",
        location=Location(example.location.path),
        evidence={"more": str(dropped), "rule": example.rule_id},
    )


class ErrorCap:
    """Error records of one input: the first :data:`MAX_ERRORS_PER_INPUT`; a reader stops at
    the next one (the input already fails the run), and a last record says so."""

    __slots__ = ("_dropped", "_kept")

    def __init__(self) -> None:
        """No error yet."""
        self._kept: list[ErrorRecord] = []
        self._dropped = 0

    def __len__(self) -> int:
        """Errors counted so far, kept or not."""
        return len(self._kept) + self._dropped

    def add(self, error: ErrorRecord) -> None:
        """Keep the error, or count it past the bound."""
        if len(self._kept) < MAX_ERRORS_PER_INPUT:
            self._kept.append(error)
        else:
            self._dropped += 1

    def records(self, path: str) -> tuple[ErrorRecord, ...]:
        """The kept errors, and one more saying how many were not listed (for ``path``)."""
        if not self._dropped:
            return tuple(self._kept)
        stage = self._kept[-1].stage
        more = ErrorRecord(
            Location(path),
            f"{path}: more errors than the {MAX_ERRORS_PER_INPUT} listed; the rest of the input "
            "was not read",
            stage=stage,
        )
        return (*self._kept, more)
