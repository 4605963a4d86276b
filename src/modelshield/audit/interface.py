"""The audit pipeline's data model and its two seams.

Data flows one way::

    inputs (requirements, locks, models...) --sources--> ParsedInput(Dependency...)
    Dependency names --VulnerabilitySource--> Advisory (OSV records)
    Dependency x Advisory --auditor--> Finding --> Report

A :class:`VulnerabilitySource` returns the advisories that *may* concern some packages; the
auditor decides, with :mod:`modelshield.audit.match`, which versions they affect. The offline
database returns every advisory of a package and the OSV API those its server matched: both are
checked by the same local matcher, so the two sources agree on the same data.

Errors::

    ModelshieldError
    └── ServiceError
        └── AuditServiceError      a vulnerability source failed (unreachable API, no database)
"""

from __future__ import annotations

import enum
import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from msgspec import Struct, field

from modelshield.core.errors import ServiceError
from modelshield.core.findings import ErrorRecord, Finding, Location, Severity

if TYPE_CHECKING:
    from modelshield.audit.match import CompiledEntry

_T = TypeVar("_T")


class InputKind(enum.StrEnum):
    """The kinds of input the audit reads; the value is the ``FileResult.format``."""

    REQUIREMENTS = "requirements"
    PYPROJECT = "pyproject"
    UV_LOCK = "uv-lock"
    POETRY_LOCK = "poetry-lock"
    PIPFILE_LOCK = "pipfile-lock"
    PYLOCK = "pylock"
    CONDA = "conda-environment"
    MLFLOW_MLMODEL = "mlflow-mlmodel"
    MLFLOW_PYTHON_ENV = "mlflow-python-env"
    TRANSFORMERS_CONFIG = "transformers-config"
    KERAS_METADATA = "keras-metadata"
    MODEL = "model"
    ENVIRONMENT = "environment"
    UNKNOWN = "unknown"


class Dependency(Struct, frozen=True):
    """One distribution an input needs, as precisely as the input states it.

    Exactly one of three shapes: ``version`` set (pinned, locked, installed or recorded),
    ``specifiers`` set (a range a resolver may pick from), or ``unauditable`` set (a URL, VCS or
    local path that is not a PyPI release).
    """

    name: str
    """The name as written in the input."""
    canonical: str
    """PEP 503 normalised name, the key advisories are matched on."""
    location: Location
    """The file (and byte offset of the line, when known) that declares it."""
    version: str | None = None
    """The exact version, when the input pins one (it may not be valid PEP 440)."""
    specifiers: tuple[str, ...] = ()
    """When not pinned: PEP 440 specifier sets, any of which the version may satisfy
    (``("",)`` is any version; several come from Poetry's ``||``)."""
    unauditable: str | None = None
    """Why no version can be audited (``installed from a VCS URL``...), or None."""
    extras: tuple[str, ...] = ()
    """Extras requested, for display."""
    line: int | None = None
    """1-based line in ``location.path``, when the input is line-oriented."""
    origin: str = "declared"
    """``declared`` (a manifest), ``locked``, ``installed``, or ``model-implied``."""
    evidence: Mapping[str, str] = field(default_factory=dict)
    """Why the dependency is there when it is not declared (e.g. the callables a model imports)."""

    @property
    def is_pinned(self) -> bool:
        """Whether one exact version is known."""
        return self.version is not None

    def display(self) -> str:
        """``name==version``, ``name>=1,<2`` or the bare name, for messages."""
        if self.version is not None:
            return f"{self.name}=={self.version}"
        spec = " || ".join(s for s in self.specifiers if s)
        return f"{self.name}{spec}" if spec else self.name


class ParsedInput(Struct, frozen=True):
    """What one input file (or the environment) declares, before any advisory is consulted."""

    path: str
    """The input as the user named it or as found under a named directory."""
    kind: InputKind
    """Which parser read it."""
    dependencies: tuple[Dependency, ...] = ()
    """Dependencies in file order (duplicates kept: they may sit in different included files)."""
    errors: tuple[ErrorRecord, ...] = ()
    """What could not be parsed; any error makes the run exit 2."""
    findings: tuple[Finding, ...] = ()
    """Findings the parser itself makes (model-implied dependencies, for instance)."""
    size: int = 0
    """Bytes of the input on disk."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Facts worth keeping, e.g. ``skipped_by_marker``."""


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
    """A field value computed on first read (see :class:`AffectedPackage`)."""

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
    offline index does so, because an audit matches versions with precompiled order keys and
    rarely reads the objects themselves (a single TensorFlow advisory lists 300 versions).

    Immutable, like the record classes, but a plain class with slots: a deferred value is
    computed on first read and kept, so equality, hashing, ``repr`` and pickling see plain
    values; :mod:`modelshield.audit.match` keeps the entry's compiled form beside the fields.
    """

    __slots__ = ("_compiled", "_ranges", "_version_keys", "_versions", "name")
    __match_args__ = ("name", "ranges", "versions", "version_keys")

    name: str
    """PEP 503 normalised package name."""
    _ranges: tuple[VersionRange, ...] | Deferred[tuple[VersionRange, ...]]
    _versions: tuple[str, ...] | Deferred[tuple[str, ...]]
    _version_keys: frozenset[str] | Deferred[frozenset[str]]
    _compiled: CompiledEntry | None
    """The compiled form, kept by :func:`modelshield.audit.match.compiled` (not a field)."""

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
        _set(self, "_compiled", None)

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
        """``versions`` normalised with :func:`modelshield.audit.match.exact_key`, for O(1)
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
        _set(self, "_compiled", None)


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
    """Where ``severity`` comes from, e.g. ``CVSS:3.1/AV:N/... (9.8)``."""
    references: tuple[str, ...] = ()
    """Reference URLs, advisory first."""
    withdrawn: str | None = None
    """When the advisory was withdrawn (such advisories are skipped)."""
    modified: str = ""
    """Last modification timestamp, as written."""
    warnings: tuple[str, ...] = ()
    """Problems met while reading the record (a range skipped, a version that is not text)."""

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


class AuditServiceError(ServiceError):
    """A vulnerability source failed: the audit cannot say anything, so it stops (exit 2)."""

    def __init__(self, message: str, hint: str = "") -> None:
        """Say what failed and, in ``hint``, what the user can do."""
        super().__init__(message)
        self.hint = hint

    def diagnostics(self) -> str:
        """The failure and the way out."""
        return f"{self}\n{self.hint}" if self.hint else str(self)


class VulnerabilitySource(ABC):
    """Where advisories come from: an offline OSV database or the OSV API."""

    name: str = "source"
    """Short name for reports (``osv-db``, ``osv-api``)."""

    @abstractmethod
    def advisories(self, queries: Sequence[PackageQuery]) -> Mapping[str, tuple[Advisory, ...]]:
        """Advisories that may affect the queried packages, keyed by normalised name.

        A superset is fine: the auditor matches versions itself. Raises
        :class:`AuditServiceError` when the source cannot answer at all.
        """

    def problems(self, packages: Sequence[str]) -> Sequence[DataProblem]:
        """Unusable advisory data that may concern ``packages`` (none by default)."""
        return ()

    def describe(self) -> str:
        """What the source is, for the report's metadata."""
        return self.name
