"""Bounded findings and errors per input, counted and summarised past the bounds.

A hostile requirements file can repeat one line millions of times; a report of a million
findings helps nobody and costs gigabytes. As the scanner does, the audit keeps the first
findings of each rule and counts the others (:class:`~modelshield.core.caps.FindingCap`, with
the audit's bounds); errors are kept the same way. Dropped findings are never built (a finding
is made only if it will be kept, or if it is worse than every dropped one so far).
"""

from __future__ import annotations

from modelshield.core.caps import FindingCap
from modelshield.core.findings import ErrorRecord, Location

MAX_FINDINGS_PER_RULE = 1_000
"""Findings of one rule kept per input (an old TensorFlow pin alone has a few hundred)."""
MAX_FINDINGS_PER_INPUT = 5_000
"""Findings kept per input, all rules together."""
MAX_ERRORS_PER_INPUT = 100
"""Error records kept per input; further ones are counted in one more record."""


def finding_cap() -> FindingCap:
    """The cap on one audit input's findings."""
    return FindingCap(MAX_FINDINGS_PER_RULE, MAX_FINDINGS_PER_INPUT, "input")


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
