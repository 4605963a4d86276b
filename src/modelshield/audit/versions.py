"""Versions as OSV orders them for PyPI, and order keys that let the offline index skip parsing.

PEP 440 versions are parsed with :mod:`packaging`. Strings that are not PEP 440 (``0.3m1``,
``0.1-bulbasaur``) never raise: like osv-scalibr, they are *legacy* versions, ordered before
every PEP 440 version and among themselves by their numeric and alphabetic runs.

Every parsed version carries an **order key**: a short ASCII string whose plain string order and
equality are the version's OSV order and equality (``1.0`` and ``1.0.0`` have the same key). The
offline index stores the key of every range bound, so an audit compares strings instead of
parsing thousands of advisory versions on each run. The encoding mirrors PEP 440's comparison
(the same fields as ``packaging``'s own sort key):

- a rank: ``0`` for the ``introduced: "0"`` minimum, ``1`` legacy, ``2`` PEP 440;
- integers as a length letter then the digits (``A7``, ``B10``: longer numbers sort later);
- the release (trailing zeros dropped), closed by ``.``, which sorts before any number;
- pre-release, post-release and dev-release ranks and numbers; a local label last, after ``+``.

A key is only ever compared with keys made by the same code: :data:`ORDER_FORMAT` is part of the
index schema, so changing the encoding rebuilds the index.
"""

from __future__ import annotations

import functools
import re

from msgspec import Struct
from packaging.version import InvalidVersion, Version

from modelshield.audit.records import Event, EventKind

ORDER_FORMAT = "1"
"""Version of the order-key encoding (stored in the offline index's schema)."""

_RANK_MIN = 0
_RANK_LEGACY = 1
_RANK_PEP440 = 2
_LEGACY_PART = r"\d+|[a-z]+"  # compiled by re on first use: most versions are PEP 440
_PRE_RANK = {"a": "1", "b": "2", "rc": "3"}  # after dev-only "0", before a release's "4"


class OrderedVersion(Struct, frozen=True, eq=False):
    """A version string with OSV's PyPI ordering; legacy strings sort before PEP 440 ones."""

    text: str
    """The string as written."""
    rank: int
    """0 for the ``"0"`` minimum, 1 for a legacy (non PEP 440) string, 2 for PEP 440."""
    version: Version | None
    """The parsed PEP 440 version (rank 2 only)."""
    legacy: tuple[tuple[int, int, str], ...]
    """Sort key of a legacy string (rank 1 only)."""
    order: str
    """The order key: compares (and is equal) exactly as the version does."""

    @property
    def is_pep440(self) -> bool:
        """Whether the string is a valid PEP 440 version."""
        return self.rank == _RANK_PEP440

    def __eq__(self, other: object) -> bool:
        """Equal by PEP 440 (``1.0 == 1.0.0``) or, for legacy strings, by their sort key."""
        if not isinstance(other, OrderedVersion):
            return NotImplemented
        return self.order == other.order

    def __lt__(self, other: OrderedVersion) -> bool:
        """OSV's PyPI order: the minimum, then legacy strings, then PEP 440 versions."""
        return self.order < other.order

    def __le__(self, other: OrderedVersion) -> bool:
        """See :meth:`__lt__`."""
        return self.order <= other.order

    def __gt__(self, other: OrderedVersion) -> bool:
        """See :meth:`__lt__`."""
        return self.order > other.order

    def __ge__(self, other: OrderedVersion) -> bool:
        """See :meth:`__lt__`."""
        return self.order >= other.order

    def __hash__(self) -> int:
        """Consistent with ``__eq__``."""
        return hash(self.order)

    def __str__(self) -> str:
        """The string as written."""
        return self.text


MINIMUM = OrderedVersion("0", _RANK_MIN, None, (), "0")
"""The ``introduced: "0"`` bound: before every version."""


def _int(n: int) -> str:
    """A non-negative integer as text that sorts numerically: a length letter, then digits."""
    digits = str(n)
    size = len(digits)
    if size <= 26:
        return chr(ord("A") + size - 1) + digits
    if size <= 52:
        return chr(ord("a") + size - 27) + digits
    return "~" + _int(size) + digits  # "~" sorts after every letter: longer numbers last


def _pep440_order(v: Version) -> str:
    release = v.release
    end = len(release)
    while end and release[end - 1] == 0:
        end -= 1  # 1.0.0 == 1
    pre, post, dev = v.pre, v.post, v.dev
    if pre is None and post is None and dev is not None:
        pre_rank, pre_n = "0", 0  # 1.0.dev1 sorts before 1.0a1
    elif pre is None:
        pre_rank, pre_n = "4", 0
    else:
        pre_rank, pre_n = _PRE_RANK[pre[0]], pre[1]
    parts = [
        "2",
        _int(v.epoch),
        *(_int(x) for x in release[:end]),
        ".",  # closes the release: sorts before any further number
        pre_rank,
        _int(pre_n),
        "0" if post is None else "1" + _int(post),
        "1" if dev is None else "0" + _int(dev),
    ]
    if v.local is not None:
        # Strings sort before numbers within a local label, and a label sorts after none.
        parts.append("+")
        parts.extend(
            "1" + _int(int(seg)) if seg.isdigit() else "0" + seg + "." for seg in v.local.split(".")
        )
    return "".join(parts)


def _legacy_key(text: str) -> tuple[tuple[int, int, str], ...]:
    parts = re.findall(_LEGACY_PART, text.lower())
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def _legacy_order(key: tuple[tuple[int, int, str], ...]) -> str:
    return "1" + "".join("0" + _int(n) if kind == 0 else "1" + s + "." for kind, n, s in key)


@functools.lru_cache(maxsize=65536)
def parse_version(text: str) -> OrderedVersion:
    """Parse a version string; never raises (non PEP 440 strings become legacy versions)."""
    try:
        v = Version(text)
    except InvalidVersion:
        key = _legacy_key(text)
        return OrderedVersion(text, _RANK_LEGACY, None, key, _legacy_order(key))
    return OrderedVersion(text, _RANK_PEP440, v, (), _pep440_order(v))


def public_order(order: str) -> str:
    """The order key without its local label: ``candidate(t).order`` given ``parse_version(t)
    .order`` (a local label is the last part of a key, after ``+``)."""
    return order.partition("+")[0] if order.startswith("2") else order


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


@functools.lru_cache(maxsize=65536)  # the same versions are listed by many advisories
def exact_key(text: str) -> str:
    """A string that is equal for two versions exactly when they are the same release.

    PEP 440 versions compare without their local label and trailing ``.0`` (``1.0`` equals
    ``1.0.0`` and ``1.0+cpu``): the key is the normalised version with trailing zeros stripped
    (what ``packaging.utils.canonicalize_version`` returns). Legacy strings compare
    case-insensitively.
    """
    parsed = candidate(text)
    v = parsed.version
    if v is None:
        return "legacy:" + text.strip().lower()
    release = v.release
    end = len(release)
    while end > 1 and release[end - 1] == 0:
        end -= 1  # one component always stays: 0.0 -> 0
    key = ".".join(map(str, release[:end]))
    if v.epoch:
        key = f"{v.epoch}!{key}"
    if v.pre is not None:
        key += f"{v.pre[0]}{v.pre[1]}"
    if v.post is not None:
        key += f".post{v.post}"
    if v.dev is not None:
        key += f".dev{v.dev}"
    return key
