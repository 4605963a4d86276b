"""Bounded findings per input, counted and summarised past the bounds (every pillar).

A hostile input can repeat one construct millions of times (a pickle naming a callable a
million times, a requirements file repeating one line); a report of a million findings helps
nobody and costs gigabytes. A :class:`FindingCap` keeps the first findings of each rule, up to
a total, and counts the others: for each rule that overflowed it lists the worst dropped finding
(when it is worse than every kept one of that rule) and a summary saying how many more there
were, so that the verdict never changes. Callers that make many findings ask :meth:`wants`
first and skip building what would be dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from modelshield.core.findings import Finding, Location, Severity


class _Overflow:
    __slots__ = ("count", "worst")

    def __init__(self) -> None:
        self.count = 0
        self.worst: Finding | None = None


class FindingCap:
    """The findings of one input: the first of each rule, then counts and the worst dropped."""

    __slots__ = ("_over", "kept", "per_input", "per_rule", "totals", "unit")

    def __init__(self, per_rule: int, per_input: int, unit: str = "input") -> None:
        """Keep at most ``per_rule`` findings of a rule and ``per_input`` in all; ``unit`` names
        the input in summaries (``file``, ``input``)."""
        self.per_rule = per_rule
        """Findings of one rule kept."""
        self.per_input = per_input
        """Findings kept, all rules together."""
        self.unit = unit
        """What one input is called in summaries."""
        self.kept: list[Finding] = []
        """The findings kept, in the order they were made."""
        self.totals: dict[str, int] = {}
        """Findings made per rule, kept or not."""
        self._over: dict[str, _Overflow] = {}

    def _room(self, total: int) -> bool:
        return total <= self.per_rule and len(self.kept) < self.per_input

    def add(self, finding: Finding) -> bool:
        """Count a finding; keep it, or count it as dropped (remembering the worst). Returns
        whether it was kept."""
        return self.add_lazy(finding.rule_id, finding.severity, lambda: finding)

    def add_lazy(self, rule_id: str, severity: Severity, make: Callable[[], Finding]) -> bool:
        """:meth:`add` for a finding built by ``make()`` only when it is kept (or is the worst
        dropped so far)."""
        total = self.totals.get(rule_id, 0) + 1
        self.totals[rule_id] = total
        if self._room(total):
            self.kept.append(make())
            return True
        over = self._over.get(rule_id)
        if over is None:
            over = self._over[rule_id] = _Overflow()
        over.count += 1
        if over.worst is None or severity > over.worst.severity:
            over.worst = make()
        return False

    def wants(self, rule_id: str, severity: Severity) -> bool:
        """Whether :meth:`add` would keep a finding of ``rule_id`` at ``severity`` (or list it
        as the worst dropped). When not, the finding is counted as if added."""
        total = self.totals.get(rule_id, 0)
        if self._room(total + 1):
            return True
        over = self._over.get(rule_id)
        if over is None or over.worst is None or severity > over.worst.severity:
            return True
        self.totals[rule_id] = total + 1
        over.count += 1
        return False

    def findings(self) -> list[Finding]:
        """The kept findings, then for each rule that overflowed: its worst dropped finding
        (when worse than every kept one of that rule) and a summary counting the others."""
        out = list(self.kept)
        for rule, over in self._over.items():
            worst = over.worst
            if worst is None:
                continue
            kept = [f.severity for f in self.kept if f.rule_id == rule]
            dropped = over.count
            if not kept or worst.severity > max(kept):
                out.append(worst)
                dropped -= 1
            if dropped:
                out.append(self._summary(worst, dropped))
        return out

    def _summary(self, example: Finding, dropped: int) -> Finding:
        """One finding that stands for ``dropped`` more findings of ``example``'s rule."""
        unit = self.unit
        return Finding(
            rule_id=example.rule_id,
            severity=Severity.INFO,  # the worst of them is listed at its own severity
            title=f"... and {dropped} more {example.rule_id} finding{'s' if dropped != 1 else ''}",
            message=f"This {unit} has {dropped} more findings of rule {example.rule_id} than the "
            f"{self.per_rule} listed (at most {self.per_input} are listed per {unit}); they are "
            "counted here, not listed. The worst of them is listed at its own severity.",
            location=Location(example.location.path),
            evidence={"more": str(dropped), "rule": example.rule_id},
        )
