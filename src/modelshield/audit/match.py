"""Version matching: is a version inside an OSV advisory, and can a specifier reach one that is?

OSV semantics (https://ossf.github.io/osv-schema/#affectedranges-field), for ``ECOSYSTEM``
ranges of PyPI packages, which order versions by PEP 440:

- a version is affected when it falls in *any* range or is listed in ``versions``;
- a range's events are sorted by version; ``introduced`` opens an affected interval
  (``"0"`` = from the first release), ``fixed`` closes it before the version, ``last_affected``
  closes it after the version, and ``limit`` caps the whole range (exclusive);
- where two events share a version, the closing one comes first, so ``fixed: 2.0`` followed by
  ``introduced: 2.0`` leaves 2.0 affected (two adjacent ranges).

Decisions documented here because the data needs them:

- **Local labels are ignored** on the version being checked: ``2.13.0+cpu`` is matched as
  ``2.13.0`` (a local build of a release carries that release's code).
- **Versions that are not PEP 440** (``0.3m1``, ``0.1-bulbasaur``) never raise. Like osv-scalibr,
  they are *legacy* versions, ordered before every PEP 440 version and among themselves by their
  numeric and alphabetic runs; they also match the ``versions`` list exactly (case-insensitive).
  A range starting at ``"0"`` therefore covers a legacy version: an unknown version is treated
  as possibly affected, never as safe.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, Specifier, SpecifierSet
from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion, Version

from modelshield.audit.interface import AffectedPackage, Event, EventKind

_RANK_MIN = 0
_RANK_LEGACY = 1
_RANK_PEP440 = 2
_LEGACY_PART = re.compile(r"\d+|[a-z]+")


@functools.total_ordering
@dataclass(frozen=True, slots=True, eq=False)
class OrderedVersion:
    """A version string with OSV's PyPI ordering; legacy strings sort before PEP 440 ones."""

    text: str
    """The string as written."""
    rank: int
    """0 for the ``"0"`` minimum, 1 for a legacy (non PEP 440) string, 2 for PEP 440."""
    version: Version | None
    """The parsed PEP 440 version (rank 2 only)."""
    legacy: tuple[tuple[int, int, str], ...]
    """Sort key of a legacy string (rank 1 only)."""

    @property
    def is_pep440(self) -> bool:
        """Whether the string is a valid PEP 440 version."""
        return self.rank == _RANK_PEP440

    def _key(self) -> tuple[int, tuple[tuple[int, int, str], ...]]:
        return (self.rank, self.legacy)

    def __eq__(self, other: object) -> bool:
        """Equal by PEP 440 (``1.0 == 1.0.0``) or, for legacy strings, by their sort key."""
        if not isinstance(other, OrderedVersion):
            return NotImplemented
        if self.rank != other.rank:
            return False
        if self.version is not None and other.version is not None:
            return self.version == other.version
        return self._key() == other._key()

    def __lt__(self, other: OrderedVersion) -> bool:
        """OSV's PyPI order: the minimum, then legacy strings, then PEP 440 versions."""
        if self.rank != other.rank:
            return self.rank < other.rank
        if self.version is not None and other.version is not None:
            return self.version < other.version
        return self._key() < other._key()

    def __hash__(self) -> int:
        """Consistent with ``__eq__``."""
        return hash((self.rank, self.version if self.version is not None else self.legacy))

    def __str__(self) -> str:
        """The string as written."""
        return self.text


MINIMUM = OrderedVersion("0", _RANK_MIN, None, ())
"""The ``introduced: "0"`` bound: before every version."""


def _legacy_key(text: str) -> tuple[tuple[int, int, str], ...]:
    parts = _LEGACY_PART.findall(text.lower())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


@functools.lru_cache(maxsize=65536)
def parse_version(text: str) -> OrderedVersion:
    """Parse a version string; never raises (non PEP 440 strings become legacy versions)."""
    try:
        return OrderedVersion(text, _RANK_PEP440, Version(text), ())
    except InvalidVersion:
        return OrderedVersion(text, _RANK_LEGACY, None, _legacy_key(text))


def candidate(text: str) -> OrderedVersion:
    """The version being checked, with any local label dropped (``2.13.0+cpu`` -> ``2.13.0``)."""
    parsed = parse_version(text.strip())
    if parsed.version is not None and parsed.version.local is not None:
        return parse_version(parsed.version.public)
    return parsed


def event_version(event: Event) -> OrderedVersion:
    """The version of an event; ``introduced: "0"`` is the minimum."""
    if event.kind is EventKind.INTRODUCED and event.version.strip() == "0":
        return MINIMUM
    return parse_version(event.version.strip())


def exact_key(text: str) -> str:
    """A string that is equal for two versions exactly when they are the same release.

    PEP 440 versions compare without their local label and trailing ``.0`` (``1.0`` equals
    ``1.0.0`` and ``1.0+cpu``); legacy strings compare case-insensitively.
    """
    parsed = candidate(text)
    if parsed.version is not None:
        return canonicalize_version(parsed.version, strip_trailing_zero=True)
    return "legacy:" + text.strip().lower()


# Closing events sort before an opening one at the same version: see the module docstring.
_TIE_ORDER = {
    EventKind.FIXED: 0,
    EventKind.LAST_AFFECTED: 1,
    EventKind.LIMIT: 2,
    EventKind.INTRODUCED: 3,
}


def sorted_events(events: Iterable[Event]) -> list[tuple[OrderedVersion, Event]]:
    """Events with their parsed versions, in OSV evaluation order."""
    keyed = [(event_version(e), e) for e in events]
    keyed.sort(key=lambda pair: (_SortKey(pair[0]), _TIE_ORDER[pair[1].kind]))
    return keyed


@functools.lru_cache(maxsize=16384)
def _ordered(events: tuple[Event, ...]) -> tuple[tuple[OrderedVersion, Event], ...]:
    # A range is checked against many versions in one audit: sort it once.
    return tuple(sorted_events(events))


@functools.total_ordering
@dataclass(frozen=True, slots=True)
class _SortKey:
    """Adapter so that ``list.sort`` can order OrderedVersion inside a tuple."""

    version: OrderedVersion

    def __lt__(self, other: _SortKey) -> bool:
        return self.version < other.version

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SortKey) and self.version == other.version

    def __hash__(self) -> int:
        return hash(self.version)


def range_affects(events: Sequence[Event], version: OrderedVersion) -> bool:
    """Whether ``version`` lies inside one OSV range (the reference algorithm of the spec)."""
    ordered = _ordered(tuple(events))
    for bound, event in ordered:
        if event.kind is EventKind.LIMIT and version >= bound:
            return False
    affected = False
    for bound, event in ordered:
        if bound > version:
            break  # later events only act on larger versions
        if event.kind is EventKind.INTRODUCED:
            affected = True
        elif event.kind is EventKind.FIXED or (
            event.kind is EventKind.LAST_AFFECTED and version > bound
        ):
            affected = False
    return affected


@dataclass(frozen=True, slots=True)
class Probe:
    """A version being checked, parsed once for every advisory it is checked against."""

    text: str
    """The version as written."""
    parsed: OrderedVersion
    """Its order (local label dropped)."""
    key: str
    """Its :func:`exact_key`, for ``versions`` lists."""

    @classmethod
    def of(cls, text: str) -> Probe:
        """Parse ``text`` once (and only once per process: fixes are probed repeatedly)."""
        return _probe(text)


@functools.lru_cache(maxsize=16384)
def _probe(text: str) -> Probe:
    return Probe(text, candidate(text), exact_key(text))


def affects(affected: AffectedPackage, version: str | Probe) -> bool:
    """Whether the advisory entry affects ``version``: listed in ``versions`` or in a range."""
    probe = version if isinstance(version, Probe) else Probe.of(version)
    if probe.key in affected.version_keys:
        return True
    return any(range_affects(r.events, probe.parsed) for r in affected.ranges)


def fixed_versions(affected: Iterable[AffectedPackage]) -> list[str]:
    """Every ``fixed`` version of the entries, in PEP 440 order, without duplicates."""
    seen: dict[OrderedVersion, OrderedVersion] = {}
    for entry in affected:
        for rng in entry.ranges:
            for event in rng.events:
                if event.kind is EventKind.FIXED:
                    parsed = parse_version(event.version)
                    seen.setdefault(parsed, parsed)  # 1.0 and 1.0.0 are one version
    return [v.text for v in sorted(seen.values())]


# ---- intervals: can a specifier reach an affected version? --------------------------------


@dataclass(frozen=True, slots=True)
class Bound:
    """One end of an interval of versions."""

    version: OrderedVersion
    """Where the interval ends."""
    inclusive: bool
    """Whether ``version`` itself is inside."""


@dataclass(frozen=True, slots=True)
class Interval:
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


def _low_order(b: Bound | None) -> tuple[int, _SortKey | None, int]:
    if b is None:
        return (0, None, 0)
    return (1, _SortKey(b.version), 0 if b.inclusive else 1)


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
    try:
        v = Version(text)
    except InvalidVersion:
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
