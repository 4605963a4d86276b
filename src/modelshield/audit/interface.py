"""The audit's seam for advisory data: :class:`VulnerabilitySource` and its error.

Data flows one way::

    inputs (requirements, locks, models...) --modelshield.audit.inputs--> Dependency...
    Dependency names --VulnerabilitySource--> Advisory (OSV records)
    Dependency x Advisory --auditor--> Finding --> Report

A source returns the advisories that *may* concern some packages; the auditor decides, with
:mod:`modelshield.audit.match`, which versions they affect. The offline database
(:mod:`modelshield.audit.sources.osv_db`) returns every advisory of a package and the OSV API
(:mod:`modelshield.audit.sources.osv_api`) those its server matched: both are checked by the
same local matcher, so the two sources agree on the same data. The records they return are in
:mod:`modelshield.audit.records`.

Errors::

    ModelshieldError
    └── ServiceError
        └── AuditServiceError      a vulnerability source failed (unreachable API, no database,
                                   a database that holds no usable advisory)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence

from modelshield.audit.records import Advisory, DataProblem, PackageQuery
from modelshield.core.errors import ServiceError


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

    def check(self) -> None:
        """Raise :class:`AuditServiceError` when the source cannot be used at all (a database
        that holds no advisory); called before any query, so that even an audit with nothing
        to ask never reads a bad source as a clean one. Nothing to check by default."""
        return

    def problems(self, packages: Sequence[str]) -> Sequence[DataProblem]:
        """Unusable advisory data that may concern ``packages`` (none by default).

        A problem whose package is ``""`` could not be attributed to any package: it may
        concern any of them.
        """
        return ()

    def newest_modified(self) -> str | None:
        """When the newest advisory of a snapshot was last modified (an OSV timestamp such as
        ``2024-10-10T17:35:00Z``), so that the audit can warn about a stale database; None for
        a live source, or when no advisory says."""
        return None

    def describe(self) -> str:
        """What the source is, for the report's metadata."""
        return self.name
