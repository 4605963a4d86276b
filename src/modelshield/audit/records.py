"""The advisory records: OSV vulnerability data, reduced to what the audit needs.

A :class:`~modelshield.audit.interface.VulnerabilitySource` returns :class:`Advisory` values;
the matcher (:mod:`modelshield.audit.match`) decides which versions their
:class:`AffectedPackage` entries affect. These records know nothing about matching: the
compiled forms the matcher uses are kept by the matcher, beside them.

The records of the other side of the audit, what inputs declare (:class:`~modelshield.audit.
inputs.dependency.Dependency`), are in :mod:`modelshield.audit.inputs.dependency`.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from msgspec import Struct

from modelshield.core.findings import Severity

_T = TypeVar("_T")


class EventKind(enum.StrEnum):
    """The events of an OSV ``ECOSYSTEM`` range."""

    INTRODUCED = "introduced"
    FIXED = "fixed"
    LAST_AFFECTED = "last_affected"
    LIMIT = "limit"


class Event(Struct, frozen=True):
    """One event of a range, e.g. ``fixed: 2.3.1``."""

    kind: EventKind
    """What happens at this version."""
    version: str
    """The version, as a string exactly as the advisory wrote it (``"0"`` = the first release)."""


class VersionRange(Struct, frozen=True):
    """An OSV ``ECOSYSTEM`` range (``GIT`` and ``SEMVER`` ranges are not kept for PyPI)."""

    events: tuple[Event, ...]
    """Events as written; the matcher sorts them by version."""


class Deferred(Generic[_T]):
    """A field value decoded on first read (see :class:`AffectedPackage`)."""

    __slots__ = ("compute",)

    def __init__(self, compute: Callable[[], _T]) -> None:
        """Wrap the function that computes the value (called at most once)."""
        self.compute = compute


_set = object.__setattr__  # writes the slots of the immutable AffectedPackage


def _computed(entry: AffectedPackage, slot: str, value: _T | Deferred[_T]) -> _T:
    """``value``, computed and kept in ``slot`` first when it is :class:`Deferred`."""
    if isinstance(value, Deferred):
        value = value.compute()
        _set(entry, slot, value)
    return value


class AffectedPackage:
    """One ``affected[]`` entry of an advisory, for a PyPI package.

    ``ranges``, ``versions`` and ``version_keys`` may be given as :class:`Deferred` values: the
    offline index does so, because an audit matches versions with the precompiled order keys
    it stores beside the entry and rarely reads the objects themselves (a single TensorFlow
    advisory lists 300 versions).

    Immutable, like the other records, but a plain class with slots: a deferred value is
    decoded on first read and kept, so equality, hashing, ``repr`` and pickling see plain
    values. It can be weakly referenced, so that the matcher can keep a compiled form for it
    without holding it alive.
    """

    __slots__ = ("__weakref__", "_ranges", "_version_keys", "_versions", "name")
    __match_args__ = ("name", "ranges", "versions", "version_keys")

    name: str
    """PEP 503 normalised package name."""
    _ranges: tuple[VersionRange, ...] | Deferred[tuple[VersionRange, ...]]
    _versions: tuple[str, ...] | Deferred[tuple[str, ...]]
    _version_keys: frozenset[str] | Deferred[frozenset[str]]

    def __init__(
        self,
        name: str,
        ranges: tuple[VersionRange, ...] | Deferred[tuple[VersionRange, ...]] = (),
        versions: tuple[str, ...] | Deferred[tuple[str, ...]] = (),
        version_keys: frozenset[str] | Deferred[frozenset[str]] = frozenset(),
    ) -> None:
        """The fields' values, any of the last three possibly :class:`Deferred`."""
        _set(self, "name", name)
        _set(self, "_ranges", ranges)
        _set(self, "_versions", versions)
        _set(self, "_version_keys", version_keys)

    @property
    def ranges(self) -> tuple[VersionRange, ...]:
        """ECOSYSTEM ranges."""
        return _computed(self, "_ranges", self._ranges)

    @property
    def versions(self) -> tuple[str, ...]:
        """The explicit ``versions`` list, as written."""
        return _computed(self, "_versions", self._versions)

    @property
    def version_keys(self) -> frozenset[str]:
        """``versions`` normalised with :func:`modelshield.audit.versions.exact_key`, for O(1)
        lookup."""
        return _computed(self, "_version_keys", self._version_keys)

    def _fields(self) -> tuple[str, tuple[VersionRange, ...], tuple[str, ...], frozenset[str]]:
        return (self.name, self.ranges, self.versions, self.version_keys)

    def __eq__(self, other: object) -> bool:
        """Equal to an entry of the same class with equal (computed) fields."""
        if not isinstance(other, AffectedPackage) or other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        """The hash of the (computed) fields."""
        return hash(self._fields())

    def __repr__(self) -> str:
        """``AffectedPackage(name=..., ranges=..., versions=..., version_keys=...)``."""
        return (
            f"{type(self).__qualname__}(name={self.name!r}, ranges={self.ranges!r}, "
            f"versions={self.versions!r}, version_keys={self.version_keys!r})"
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"immutable type: {type(self).__name__!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"immutable type: {type(self).__name__!r}")

    def __getstate__(self) -> dict[str, object]:
        """The fields' values, deferred ones computed (pickling keeps no functions)."""
        return {
            "name": self.name,
            "ranges": self.ranges,
            "versions": self.versions,
            "version_keys": self.version_keys,
        }

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`__getstate__`'s values (when unpickled or copied)."""
        _set(self, "name", state["name"])
        _set(self, "_ranges", state["ranges"])
        _set(self, "_versions", state["versions"])
        _set(self, "_version_keys", state["version_keys"])


class CvssScore(Struct, frozen=True):
    """A CVSS base score computed from an advisory's vector (see :mod:`modelshield.audit.cvss`)."""

    vector: str
    """The vector as the advisory wrote it, e.g. ``CVSS:3.1/AV:N/AC:L/...``."""
    value: float
    """The base score, 0.0 to 10.0."""
    severity: Severity
    """The qualitative rating of the score (v2 has no CRITICAL)."""

    @property
    def version(self) -> str:
        """The CVSS version: ``3.1``, ``3.0``, ``4.0`` or ``2.0``."""
        head = self.vector.split("/", 1)[0]
        return head[len("CVSS:") :] if head.startswith("CVSS:") else "2.0"


# dict=True: ``ids`` (a cached_property) keeps its value in the instance's __dict__; equality,
# hashing, repr and pickling use the fields only.
class Advisory(Struct, frozen=True, dict=True):
    """An OSV vulnerability record, reduced to what the audit needs."""

    id: str
    """OSV id, e.g. ``PYSEC-2021-439`` or ``GHSA-xxxx-xxxx-xxxx``."""
    aliases: tuple[str, ...] = ()
    """Other ids of the same vulnerability (CVE, GHSA...)."""
    summary: str = ""
    """One line, when the record has one."""
    details: str = ""
    """The description (truncated to a few thousand characters)."""
    affected: tuple[AffectedPackage, ...] = ()
    """PyPI packages it concerns."""
    severity: Severity | None = None
    """Severity computed from a CVSS vector or the database's label; None when unknown."""
    severity_source: str = ""
    """Where ``severity`` comes from, e.g. ``CVSS:3.1/AV:N/... (base score 9.8)``, for
    people (the score itself is :attr:`cvss`)."""
    references: tuple[str, ...] = ()
    """Reference URLs, advisory first."""
    withdrawn: str | None = None
    """When the advisory was withdrawn (such advisories are skipped)."""
    modified: str = ""
    """Last modification timestamp, as written."""
    warnings: tuple[str, ...] = ()
    """Problems met while reading the record (a range skipped, a version that is not text)."""
    cvss: CvssScore | None = None
    """The CVSS score ``severity`` was computed from; None when it came from a label or is
    unknown."""

    def for_package(self, canonical: str) -> tuple[AffectedPackage, ...]:
        """The affected entries for one normalised package name."""
        affected = self.affected
        if len(affected) == 1:  # the usual case, asked for several times per audit
            return affected if affected[0].name == canonical else ()
        return tuple([a for a in affected if a.name == canonical])

    @functools.cached_property
    def ids(self) -> frozenset[str]:
        """The id and every alias."""
        return frozenset((self.id, *self.aliases))


class PackageQuery(Struct, frozen=True):
    """A question for a vulnerability source."""

    canonical: str
    """PEP 503 normalised package name."""
    version: str | None = None
    """The exact version when known; None asks for every advisory of the package."""


class DataProblem(Struct, frozen=True):
    """A piece of advisory data that could not be used (an unreadable database file)."""

    file: str
    """The file (``archive.zip!member`` inside a ZIP)."""
    message: str
    """What was wrong."""
    package: str
    """Normalised name of the package it probably concerns, or ``""`` when unknown."""
