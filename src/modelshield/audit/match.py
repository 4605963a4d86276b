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

Matching compares order keys (:mod:`modelshield.audit.versions`), never parsed versions: each
entry is compiled once (:class:`CompiledEntry`), and the offline index stores entries already
compiled, so an audit parses only the versions it checks. The compiled forms are the
matcher's own: they are kept here, beside the entries (:func:`compiled`), never in the records.
Whether a specifier can reach an affected version is answered in
:mod:`modelshield.audit.intervals`.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Container, Iterable, Sequence
from typing import NamedTuple

from msgspec import Struct

from modelshield.audit.records import AffectedPackage, Event, EventKind
from modelshield.audit.versions import (
    OrderedVersion,
    candidate,
    event_version,
    exact_key,
    parse_version,
    public_order,
)

# Closing events sort before an opening one at the same version: see the module docstring.
# The codes are that tie order, so sorting (order key, code) pairs gives the evaluation order.
_FIXED, _LAST_AFFECTED, _LIMIT, _INTRODUCED = "0", "1", "2", "3"
EVENT_CODES = {
    EventKind.FIXED: _FIXED,
    EventKind.LAST_AFFECTED: _LAST_AFFECTED,
    EventKind.LIMIT: _LIMIT,
    EventKind.INTRODUCED: _INTRODUCED,
}
"""Each event kind's one-character code in compiled ranges (its rank among events at one
version)."""


def sorted_events(events: Iterable[Event]) -> list[tuple[OrderedVersion, Event]]:
    """Events with their parsed versions, in OSV evaluation order."""
    keyed = [(event_version(e), e) for e in events]
    keyed.sort(key=lambda pair: (pair[0].order, EVENT_CODES[pair[1].kind]))
    return keyed


CompiledRange = tuple[str, Sequence[str]]
"""A range in evaluation order: its events' codes (one character each) and their order keys."""


@functools.lru_cache(maxsize=16384)
def compile_range(events: tuple[Event, ...]) -> CompiledRange:
    """The range's events as order keys, sorted for evaluation (see :func:`range_affects`)."""
    pairs = sorted((event_version(e).order, EVENT_CODES[e.kind]) for e in events)
    return "".join(code for _, code in pairs), tuple(bound for bound, _ in pairs)


def _range_hit(compiled: CompiledRange, order: str) -> bool:
    """The spec's algorithm on a compiled range, for a version with order key ``order``."""
    codes, bounds = compiled
    if _LIMIT in codes:
        for bound, code in zip(bounds, codes, strict=True):
            if code == _LIMIT and order >= bound:
                return False
    affected = False
    for bound, code in zip(bounds, codes, strict=True):
        if bound > order:
            break  # later events only act on larger versions
        if code == _INTRODUCED:
            affected = True
        elif code == _FIXED or (code == _LAST_AFFECTED and order > bound):
            affected = False
    return affected


MAX_UNORDERABLE_BOUNDS = 8
"""Bounds that cannot be ordered against a version, per range, that :func:`_range_may_hit`
places one by one; a range with more is taken as possibly affecting every version."""


def _range_may_hit(compiled: CompiledRange, order: str) -> bool:
    """Whether the version may lie inside the range, wherever the bounds that cannot be ordered
    against it fall.

    A PEP 440 version (order key ``2...``) and a legacy bound (``1...``, e.g. ``fixed:
    0.2.0-n653``) have no order: the key puts every legacy string first, which is a convention,
    not a fact. Each such bound is tried both below and above every PEP 440 version (legacy
    bounds keep their order among themselves); the version may be affected when any placement
    affects it, and is provably outside only when none does.
    """
    codes, bounds = compiled
    if not order.startswith("2"):
        return _range_hit(compiled, order)
    legacy = [i for i, bound in enumerate(bounds) if bound.startswith("1")]
    if not legacy:
        return _range_hit(compiled, order)
    if len(legacy) > MAX_UNORDERABLE_BOUNDS:
        return True
    for mask in range(1 << len(legacy)):
        moved = list(bounds)
        for bit, i in enumerate(legacy):
            if mask >> bit & 1:
                moved[i] = "3" + bounds[i]  # above every PEP 440 key ("2...")
        pairs = sorted(zip(moved, codes, strict=True))
        placed = ("".join(code for _, code in pairs), tuple(bound for bound, _ in pairs))
        if _range_hit(placed, order):
            return True
    return False


def range_affects(events: Sequence[Event], version: OrderedVersion) -> bool:
    """Whether ``version`` lies inside one OSV range (the reference algorithm of the spec)."""
    return _range_hit(compile_range(tuple(events)), version.order)


class Probe(Struct, frozen=True):
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


class KeyList(Container[str]):
    """Exact keys joined by spaces, searched rather than split into a set.

    Keys written by the offline index never hold whitespace (versions that do are dropped when
    an advisory is read), so a space-delimited search finds exactly the listed keys.
    """

    __slots__ = ("_text",)

    def __init__(self, joined: str) -> None:
        """Keys joined by single spaces."""
        self._text = f" {joined} "

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is one of the keys."""
        if not isinstance(key, str) or not key or " " in key:
            return False
        return f" {key} " in self._text


class CompiledEntry(NamedTuple):
    """An advisory entry as matching needs it: order keys and exact keys, nothing to parse."""

    listed: Container[str]
    """The exact keys of the ``versions`` list."""
    ranges: tuple[CompiledRange, ...]
    """Each range, compiled."""
    fixed: tuple[tuple[str, str, str], ...]
    """``(version as written, its order key, its exact key)`` of every ``fixed`` event, in
    written order: the fixed versions are probed in turn to suggest an upgrade."""

    def affects(self, probe: Probe) -> bool:
        """Whether the probed version is listed or inside a range."""
        return self.affects_release(probe.key, probe.parsed.order)

    def affects_release(self, key: str, order: str) -> bool:
        """Whether the version with exact key ``key`` and order key ``order`` (local label
        dropped, as :func:`candidate` drops it) is listed or inside a range."""
        if key in self.listed:
            return True
        return any(_range_hit(r, order) for r in self.ranges)

    def may_affect(self, probe: Probe) -> bool:
        """Whether the probed version is listed or may lie inside a range, wherever the range
        bounds that cannot be ordered against it fall (see :func:`_range_may_hit`)."""
        if probe.key in self.listed:
            return True
        return any(_range_may_hit(r, probe.parsed.order) for r in self.ranges)


class _Forms:
    """The compiled form of each live entry, by identity (entries are compared by value, and
    two equal entries from two sources are compiled alike anyway).

    An entry's form goes when the entry does: a weak reference's callback drops it before the
    entry's memory (and so its ``id``) can be reused.
    """

    __slots__ = ("_forms",)

    def __init__(self) -> None:
        self._forms: dict[int, tuple[weakref.ref[AffectedPackage], CompiledEntry]] = {}

    def get(self, entry: AffectedPackage) -> CompiledEntry | None:
        found = self._forms.get(id(entry))
        if found is None or found[0]() is not entry:
            return None
        return found[1]

    def put(self, entry: AffectedPackage, form: CompiledEntry) -> None:
        key = id(entry)
        forms = self._forms

        def forget(_: weakref.ref[AffectedPackage]) -> None:
            forms.pop(key, None)

        forms[key] = (weakref.ref(entry, forget), form)


_FORMS = _Forms()


def compiled(entry: AffectedPackage) -> CompiledEntry:
    """The entry's compiled form: given by the offline index, else built once and kept."""
    found = _FORMS.get(entry)
    if found is None:
        found = CompiledEntry(
            listed=entry.version_keys,
            ranges=tuple(compile_range(r.events) for r in entry.ranges),
            fixed=tuple(
                (e.version, parse_version(e.version).order, exact_key(e.version))
                for r in entry.ranges
                for e in r.events
                if e.kind is EventKind.FIXED
            ),
        )
        _FORMS.put(entry, found)
    return found


def attach_compiled(entry: AffectedPackage, form: CompiledEntry) -> None:
    """Give an entry its compiled form (the offline index stores entries precompiled)."""
    _FORMS.put(entry, form)


def affects(affected: AffectedPackage, version: str | Probe) -> bool:
    """Whether the advisory entry affects ``version``: listed in ``versions`` or in a range."""
    probe = version if isinstance(version, Probe) else Probe.of(version)
    return compiled(affected).affects(probe)


def may_affect(affected: AffectedPackage, version: str | Probe) -> bool:
    """Whether the advisory entry may affect ``version``: :func:`affects` it, or a range with a
    bound that cannot be ordered against it (not PEP 440) does not provably exclude it."""
    probe = version if isinstance(version, Probe) else Probe.of(version)
    return compiled(affected).may_affect(probe)


def fixed_versions(
    affected: Iterable[AffectedPackage], after: OrderedVersion | None = None
) -> list[str]:
    """Every ``fixed`` version of the entries, in PEP 440 order, without duplicates.

    With ``after``, only the fixed versions above it.
    """
    seen: dict[str, str] = {}
    for entry in affected:
        for text, order, _ in compiled(entry).fixed:
            seen.setdefault(order, text)  # 1.0 and 1.0.0 are one version: the first is kept
    floor = after.order if after is not None else None
    return [seen[o] for o in sorted(seen) if floor is None or o > floor]


def first_unaffected(affected: Sequence[AffectedPackage], versions: Iterable[str]) -> str:
    """The first of ``versions`` that no entry affects, or ``""``.

    The same as testing each with :func:`affects`, without parsing the entries' own fixed
    versions again: their keys are part of the compiled entries.
    """
    forms = [compiled(entry) for entry in affected]
    known = {text: (key, public_order(order)) for f in forms for text, order, key in f.fixed}
    for text in versions:
        found = known.get(text)
        if found is None:
            probe = Probe.of(text)
            found = (probe.key, probe.parsed.order)
        if not any(f.affects_release(*found) for f in forms):
            return text
    return ""
