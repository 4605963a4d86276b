"""Intervals of versions: can a version specifier reach a version that an advisory affects?

An advisory entry's ranges and ``versions`` list become a union of intervals
(:func:`affected_intervals`), a dependency's specifier sets another (:func:`specifier_intervals`,
pre-releases included), and their intersection is what a resolver could pick that is affected
(:func:`reachable_affected`). Versions are ordered as :mod:`modelshield.audit.versions` orders
them, with OSV's semantics as :mod:`modelshield.audit.match` describes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from msgspec import Struct

from modelshield.audit.match import sorted_events
from modelshield.audit.records import AffectedPackage, Event, EventKind
from modelshield.audit.versions import OrderedVersion, candidate, parse_version

if TYPE_CHECKING:
    from packaging.specifiers import Specifier

_RANK_MIN = 0


class Bound(Struct, frozen=True):
    """One end of an interval of versions."""

    version: OrderedVersion
    """Where the interval ends."""
    inclusive: bool
    """Whether ``version`` itself is inside."""


class Interval(Struct, frozen=True):
    """A set of versions between two bounds; a missing bound is unbounded."""

    low: Bound | None
    """Lower end, or None for "from the first release"."""
    high: Bound | None
    """Upper end, or None for "every later release"."""

    def is_empty(self) -> bool:
        """Whether no version lies inside."""
        if self.low is None or self.high is None:
            return False
        if self.low.version == self.high.version:
            return not (self.low.inclusive and self.high.inclusive)
        return self.low.version > self.high.version

    def contains(self, version: OrderedVersion) -> bool:
        """Whether ``version`` lies inside."""
        if self.low is not None and (
            version < self.low.version or (version == self.low.version and not self.low.inclusive)
        ):
            return False
        return not (
            self.high is not None
            and (
                version > self.high.version
                or (version == self.high.version and not self.high.inclusive)
            )
        )

    def describe(self) -> str:
        """PEP 440-like text: ``>=1.0,<1.4.2``, ``==2.0`` or ``any version``."""
        if self.low is not None and self.high is not None and self.low.version == self.high.version:
            return f"=={self.low.version}"
        parts = []
        if self.low is not None and self.low.version.rank != _RANK_MIN:
            parts.append((">=" if self.low.inclusive else ">") + self.low.version.text)
        if self.high is not None:
            parts.append(("<=" if self.high.inclusive else "<") + self.high.version.text)
        return ",".join(parts) if parts else "any version"


EVERYTHING = Interval(None, None)
"""Every version."""


def _max_low(a: Bound | None, b: Bound | None) -> Bound | None:
    if a is None:
        return b
    if b is None or a.version > b.version:
        return a
    if a.version == b.version:
        return a if not a.inclusive else b
    return b


def _min_high(a: Bound | None, b: Bound | None) -> Bound | None:
    if a is None:
        return b
    if b is None or a.version < b.version:
        return a
    if a.version == b.version:
        return a if not a.inclusive else b
    return b


def intersect(left: Sequence[Interval], right: Sequence[Interval]) -> list[Interval]:
    """The intersection of two unions of intervals, as a merged union."""
    out = []
    for a in left:
        for b in right:
            iv = Interval(_max_low(a.low, b.low), _min_high(a.high, b.high))
            if not iv.is_empty():
                out.append(iv)
    return merge(out)


def _low_order(b: Bound | None) -> tuple[int, str, int]:
    if b is None:
        return (0, "", 0)
    return (1, b.version.order, 0 if b.inclusive else 1)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort intervals and join those that overlap or touch."""
    items = sorted((iv for iv in intervals if not iv.is_empty()), key=lambda iv: _low_order(iv.low))
    out: list[Interval] = []
    for iv in items:
        if out and _touches(out[-1].high, iv.low):
            last = out[-1]
            high = None if last.high is None or iv.high is None else _max_high(last.high, iv.high)
            out[-1] = Interval(last.low, high)
        else:
            out.append(iv)
    return out


def _max_high(a: Bound, b: Bound) -> Bound:
    if a.version == b.version:
        return a if a.inclusive else b
    return a if a.version > b.version else b


def _touches(high: Bound | None, low: Bound | None) -> bool:
    if high is None or low is None:
        return True
    if low.version == high.version:
        return low.inclusive or high.inclusive
    return low.version < high.version


def affected_intervals(affected: AffectedPackage) -> list[Interval]:
    """The versions an advisory entry affects, as a union of intervals."""
    out: list[Interval] = []
    for rng in affected.ranges:
        out.extend(_range_intervals(rng.events))
    for text in affected.versions:
        point = candidate(text)
        out.append(Interval(Bound(point, True), Bound(point, True)))
    return merge(out)


def _range_intervals(events: Sequence[Event]) -> list[Interval]:
    ordered = sorted_events(events)
    limits = [v for v, e in ordered if e.kind is EventKind.LIMIT]
    out: list[Interval] = []
    low: Bound | None = None
    is_open = False
    for bound, event in ordered:
        if event.kind is EventKind.INTRODUCED and not is_open:
            low = None if bound.rank == _RANK_MIN else Bound(bound, True)
            is_open = True
        elif event.kind is EventKind.FIXED and is_open:
            out.append(Interval(low, Bound(bound, False)))
            is_open = False
        elif event.kind is EventKind.LAST_AFFECTED and is_open:
            out.append(Interval(low, Bound(bound, True)))
            is_open = False
    if is_open:
        out.append(Interval(low, None))
    if limits:
        cap = [Interval(None, Bound(min(limits), False))]
        out = intersect(out, cap)
    return out


def _prefix_bounds(text: str) -> tuple[Bound, Bound] | None:
    """``1.2`` (from ``==1.2.*``) -> [1.2.dev0, 1.3.dev0); None when not a plain release."""
    v = parse_version(text).version
    if v is None:
        return None
    if v.pre is not None or v.post is not None or v.dev is not None or v.local is not None:
        return None
    epoch = f"{v.epoch}!" if v.epoch else ""
    release = list(v.release)
    upper = [*release[:-1], release[-1] + 1]
    low = parse_version(f"{epoch}{'.'.join(map(str, release))}.dev0")
    high = parse_version(f"{epoch}{'.'.join(map(str, upper))}.dev0")
    return Bound(low, True), Bound(high, False)


def _clause_intervals(spec: Specifier) -> list[Interval]:
    op, text = spec.operator, spec.version
    if op == "===":
        point = candidate(text)
        return [Interval(Bound(point, True), Bound(point, True))]
    if text.endswith(".*"):
        bounds = _prefix_bounds(text[:-2])
        if bounds is None:
            return [EVERYTHING]  # an odd prefix: assume it admits anything (never hides a risk)
        low, high = bounds
        if op == "==":
            return [Interval(low, high)]
        return [
            Interval(None, Bound(low.version, False)),
            Interval(Bound(high.version, True), None),
        ]
    v = candidate(text)
    if op == "==":
        return [Interval(Bound(v, True), Bound(v, True))]
    if op == "!=":
        return [Interval(None, Bound(v, False)), Interval(Bound(v, False), None)]
    if op == ">=":
        return [Interval(Bound(v, True), None)]
    if op == ">":
        return [Interval(Bound(v, False), None)]
    if op == "<=":
        return [Interval(None, Bound(v, True))]
    if op == "<":
        return [Interval(None, Bound(v, False))]
    if op == "~=" and v.version is not None:
        release = v.version.release
        prefix = _prefix_bounds(".".join(map(str, release[:-1])))
        return [Interval(Bound(v, True), prefix[1] if prefix is not None else None)]
    return [EVERYTHING]


def specifier_intervals(specifiers: Sequence[str]) -> list[Interval]:
    """The versions any of the specifier sets admits (pre-releases included), as intervals.

    Raises :class:`ValueError` for a specifier that packaging rejects.
    """
    # Only ranges need specifier sets: pinned audits never import them.
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    union: list[Interval] = []
    for text in specifiers:
        try:
            spec_set = SpecifierSet(text)
        except InvalidSpecifier as e:
            raise ValueError(f"invalid version specifier {text!r}") from e
        current = [EVERYTHING]
        for clause in spec_set:
            current = intersect(current, _clause_intervals(clause))
        union.extend(current)
    return merge(union)


def reachable_affected(
    specifiers: Sequence[str], affected: Iterable[AffectedPackage]
) -> list[Interval]:
    """The affected versions a resolver could pick under ``specifiers`` (empty when none)."""
    admitted = specifier_intervals(specifiers)
    hit: list[Interval] = []
    for entry in affected:
        hit.extend(intersect(admitted, affected_intervals(entry)))
    return merge(hit)
