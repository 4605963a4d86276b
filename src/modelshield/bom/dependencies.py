"""A model's software dependencies and their known vulnerabilities, from the dependency audit.

The BOM lists what ``modelshield audit PATH`` finds, read by the audit's own discovery and
readers (:func:`modelshield.audit.discover.collect_inputs`): requirements files, pyproject,
lock files, conda and MLflow files in the model directory, and the dependencies the model files
imply (the modules their pickles import, the versions they record, e.g. scikit-learn's
``_sklearn_version``). When a vulnerability source is given, the same inputs are audited
(:func:`modelshield.audit.auditor.audit_inputs`) and its ``AUDIT-VULNERABLE-*`` findings become
:class:`BomVulnerability` values.

One component per distribution and exact version: every place that states the dependency is
kept as :class:`DependencyEvidence`. A declaration without an exact version (a range, a bare
name, a model import with no recorded version) is evidence for the package's exact versions
when some input gives one (``numpy>=1.0`` in requirements.txt and ``numpy==1.26.4`` in a lock
file are one component), and a component without a version otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from msgspec import Struct
from msgspec.structs import replace

from modelshield.audit.inputs.dependency import Artifact
from modelshield.audit.records import CvssScore
from modelshield.core.findings import ErrorRecord, FileResult, Finding, Gap, Report, Severity
from modelshield.core.policy import Policy

if TYPE_CHECKING:
    from modelshield.audit.auditor import VulnerabilityMatch
    from modelshield.audit.inputs.dependency import Dependency, ParsedInput
    from modelshield.audit.interface import VulnerabilitySource

VULNERABLE_PREFIX = "AUDIT-VULNERABLE-"
"""Audit rules whose findings are vulnerabilities of a listed version (the others are
properties of the component or the model): ``AUDIT-VULNERABLE-DEPENDENCY`` and
``AUDIT-VULNERABLE-UNORDERABLE-RANGE``."""

# The audit reports every model-implied dependency as an INFO finding; the BOM already says the
# same thing in the component's evidence, so repeating it as a property would only add noise.
_REDUNDANT_RULES = frozenset({"AUDIT-MODEL-IMPLIED-DEPENDENCY"})


class DependencyEvidence(Struct, frozen=True):
    """One place that states a dependency: a line of a manifest, or a model file."""

    path: str
    """The input, relative to the model (``requirements.txt``, ``model.joblib``)."""
    line: int | None
    """1-based line in ``path``, for line-oriented inputs."""
    origin: str
    """``declared``, ``locked``, ``installed`` or ``model-implied``."""
    declared: str
    """What the input states: ``joblib==1.1.0``, ``numpy>=1.0``, or the bare name."""
    details: tuple[tuple[str, str], ...] = ()
    """Sorted ``(key, value)`` pairs: why a model implies it (``callables``,
    ``version_source``), or why it is unauditable (``unauditable``)."""

    def detail(self, key: str) -> str | None:
        """One of ``details``, or None."""
        return dict(self.details).get(key)

    def describe(self) -> str:
        """``requirements.txt:1 declared joblib==1.1.0 (...)``, for a BOM property."""
        where = f"{self.path}:{self.line}" if self.line else self.path
        extra = "; ".join(f"{k}: {v}" for k, v in self.details)
        return f"{where} {self.origin} {self.declared}" + (f" ({extra})" if extra else "")


class BomDependency(Struct, frozen=True):
    """A software dependency to list in a BOM (a ``library`` component)."""

    name: str
    """Distribution name (PyPI; the audit's normalised name when discovered)."""
    version: str | None = None
    """Exact version, when some input gives one."""
    origin: str = "declared"
    """Why it is listed: ``declared``, ``locked``, ``installed`` or ``model-implied`` (the first
    evidence's origin; every origin is in ``evidence``)."""
    evidence: tuple[DependencyEvidence, ...] = ()
    """Every place that states it."""
    specifiers: tuple[str, ...] = ()
    """Version ranges declared for it (``>=1.0``), when the inputs give ranges."""
    unauditable: str | None = None
    """Why no advisory can be matched (a VCS or URL dependency), or None."""
    artifacts: tuple[Artifact, ...] = ()
    """The release files and digests the inputs record for this version (lock files' wheel
    and sdist hashes, ``--hash`` options)."""

    @property
    def recorded_version_source(self) -> str | None:
        """The model metadata key that records this version (``sklearn_version``), if any."""
        for ev in self.evidence:
            key = ev.detail("version_source")
            if ev.origin == "model-implied" and key is not None:
                return f"{key} in {ev.path}"
        return None


class BomVulnerability(Struct, frozen=True):
    """A known vulnerability of a dependency (an OSV advisory, merged with its aliases)."""

    id: str
    """Advisory id, e.g. ``PYSEC-2022-288`` or ``GHSA-xxxx-xxxx-xxxx``."""
    package: str
    """The affected distribution's name."""
    version: str | None = None
    """The affected version in use, when known."""
    severity: Severity | None = None
    """Severity, when known."""
    summary: str = ""
    """One line describing it."""
    aliases: tuple[str, ...] = ()
    """Other ids of the same vulnerability (CVE, GHSA...)."""
    fixed: tuple[str, ...] = ()
    """Versions that fix it (later than ``version``)."""
    references: tuple[str, ...] = ()
    """URLs."""
    upgrade_to: str = ""
    """The smallest fixed version that leaves every merged advisory, when one is known."""
    severity_source: str = ""
    """Where the severity comes from: ``ID: CVSS:3.1/... (base score 9.8)``, a database label,
    or why it was defaulted."""
    detail: str = ""
    """The audit's full explanation."""
    declared_in: tuple[str, ...] = ()
    """Where the affected version is stated (``requirements.txt:1``)."""
    cvss: CvssScore | None = None
    """The CVSS score the severity comes from, typed from the advisory (None: a database label,
    or unknown)."""
    certain: bool = True
    """False when the version is only possibly affected (the advisory's range has a bound that
    cannot be ordered against it)."""

    @classmethod
    def from_match(
        cls, match: VulnerabilityMatch, finding: Finding, root: str | None = None
    ) -> BomVulnerability:
        """The vulnerability the audit matched, typed (``finding`` is the match's finding as
        the policy reports it: its severity may be overridden)."""
        where = relative(finding.location.path, root) if root is not None else None
        line = finding.evidence.get("line")
        if where is not None and line:
            where = f"{where}:{line}"
        return cls(
            id=match.ids[0],
            package=match.package,
            version=match.version,
            severity=finding.severity,
            summary=finding.title,
            aliases=match.ids[1:],
            fixed=match.fixed,
            references=match.references,
            upgrade_to=match.upgrade_to,
            severity_source=match.severity_source,
            detail=finding.message,
            declared_in=(where,) if where else (),
            cvss=match.cvss,
            certain=match.certain,
        )

    @classmethod
    def from_finding(cls, finding: Finding, root: str | None = None) -> BomVulnerability | None:
        """The vulnerability an ``AUDIT-VULNERABLE-*`` finding reports; None for other findings.

        Reads the audit's evidence: ``ids`` (the advisory first, then its aliases),
        ``package``, ``version``, ``fixed_versions``, ``upgrade_to``, ``severity_source`` and
        ``references``. ``root`` makes the finding's path relative to the model. A finding
        carries no typed score: a BOM built from the audit's matches
        (:func:`audit_dependencies`, :meth:`from_match`) has one.
        """
        ev = finding.evidence
        ids = _split(ev.get("ids", ""), ",")
        if not finding.rule_id.startswith(VULNERABLE_PREFIX) or not ids:
            return None
        where = relative(finding.location.path, root) if root is not None else None
        if where is not None and ev.get("line"):
            where = f"{where}:{ev['line']}"
        return cls(
            id=ids[0],
            package=ev.get("package", "").strip() or "unknown",
            version=ev.get("version") or None,
            severity=finding.severity,
            summary=finding.title,
            aliases=ids[1:],
            fixed=_split(ev.get("fixed_versions", ""), ","),
            references=_split(ev.get("references", ""), " "),
            upgrade_to=ev.get("upgrade_to", ""),
            severity_source=ev.get("severity_source", ""),
            detail=finding.message,
            declared_in=(where,) if where else (),
            certain=finding.rule_id != "AUDIT-VULNERABLE-UNORDERABLE-RANGE",
        )


def _split(text: str, sep: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(sep) if p.strip())


def relative(path: str, root: str) -> str:
    """``path`` relative to the model ``root`` (a directory, or a file: its folder), POSIX.

    A path outside the model (a requirements file included from elsewhere) is kept as is.
    """
    base = Path(root) if Path(root).is_dir() else Path(root).parent
    try:
        return Path(path).resolve().relative_to(base.resolve()).as_posix()
    except (ValueError, OSError):
        return path


class DependencyReport(Struct, frozen=True):
    """What the dependency audit says about one model, ready for a BOM."""

    inputs: tuple[tuple[str, str], ...]
    """Each input read, relative to the model, with its kind: ``("requirements.txt",
    "requirements")``."""
    dependencies: tuple[BomDependency, ...]
    """The dependencies, one per distribution and exact version."""
    vulnerabilities: tuple[BomVulnerability, ...] = ()
    """Known vulnerabilities of those versions (empty when not checked)."""
    findings: tuple[Finding, ...] = ()
    """The audit's other findings (ranges admitting vulnerable versions, unknown versions...),
    the policy applied."""
    errors: tuple[ErrorRecord, ...] = ()
    """Dependency files that could not be read."""
    source: str | None = None
    """The vulnerability source consulted (its description), or None: not checked."""
    suppressed: int = 0
    """Advisories and findings the policy or ``ignore`` dropped."""
    excluded: tuple[str, ...] = ()
    """Dependencies left out for the target's markers: ``name==1.0 (requirements.txt:3):
    marker``."""
    gaps: tuple[Gap, ...] = ()
    """Parts of dependency inputs that were not read (a limit), which the policy does not
    accept: the dependencies listed may be incomplete."""


def discover_inputs(
    model: str,
    policy: Policy,
    *,
    scanned_format: str | None = None,
    scanned: Sequence[FileResult] = (),
) -> list[ParsedInput]:
    """The audit's inputs for a model (file or directory), parsed as ``modelshield audit`` does.

    A directory without any input gives [] rather than the audit's "nothing found" error (a
    model of safetensors files has no dependency file to read), and so does a single file that
    is neither a dependency file by its name nor a known format by its content
    (``scanned_format`` ``unknown``/``empty``): the audit would only say that it is not a model.
    Model files among ``scanned`` (the BOM's own scan) are not scanned again.
    """
    from modelshield.audit.discover import collect_inputs, kind_of, parse_options
    from modelshield.audit.inputs.dependency import InputKind

    single = not Path(model).is_dir()
    if (
        single
        and scanned_format in ("unknown", "empty")
        and kind_of(Path(model).name, explicit=False) in (None, InputKind.MODEL)
    ):
        return []
    inputs = collect_inputs([model], parse_options(policy), policy, scanned=scanned)
    if (
        not single
        and len(inputs) == 1
        and inputs[0].kind is InputKind.UNKNOWN
        and not inputs[0].dependencies
    ):
        return []  # candidates() found no input file under the directory
    return inputs


def _evidence(dep: Dependency, root: str) -> DependencyEvidence:
    details = dict(dep.evidence)
    if dep.unauditable is not None:
        details["unauditable"] = dep.unauditable
    return DependencyEvidence(
        path=relative(dep.location.path, root),
        line=dep.line,
        origin=dep.origin,
        declared=dep.display(),
        details=tuple(sorted(details.items())),
    )


def bom_dependencies(inputs: Sequence[ParsedInput], root: str) -> list[BomDependency]:
    """One :class:`BomDependency` per distribution and exact version, with all its evidence.

    Unversioned declarations of a package join its versioned components when there are some;
    URL/VCS dependencies stay a component of their own (they are not the index release).
    """
    exact: dict[str, dict[str, list[Dependency]]] = {}
    loose: dict[str, list[Dependency]] = {}
    for inp in inputs:
        for dep in inp.dependencies:
            if dep.version is not None and dep.unauditable is None:
                exact.setdefault(dep.canonical, {}).setdefault(dep.version, []).append(dep)
            else:
                loose.setdefault(dep.canonical, []).append(dep)
    out: list[BomDependency] = []
    for name in sorted(set(exact) | set(loose)):
        ranged = [d for d in loose.get(name, []) if d.unauditable is None]
        urls = [d for d in loose.get(name, []) if d.unauditable is not None]
        groups: list[tuple[str | None, list[Dependency]]] = [
            (version, deps + ranged) for version, deps in exact.get(name, {}).items()
        ]
        unversioned = urls if name in exact else urls + ranged
        if unversioned:
            groups.append((None, unversioned))
        out.extend(_dependency(name, version, deps, root) for version, deps in groups)
    return out


def _dependency(
    name: str, version: str | None, deps: Sequence[Dependency], root: str
) -> BomDependency:
    specifiers = tuple(dict.fromkeys(s for d in deps for s in d.specifiers if s))
    reasons = [d.unauditable for d in deps if d.unauditable is not None]
    evidence = tuple(dict.fromkeys(_evidence(d, root) for d in deps))
    artifacts = tuple(dict.fromkeys(a for d in deps for a in d.artifacts)) if version else ()
    return BomDependency(
        name=name,
        version=version,
        origin=deps[0].origin,
        evidence=evidence,
        specifiers=specifiers,
        unauditable=reasons[0] if reasons else None,
        artifacts=artifacts,
    )


def _merge(vulns: Iterable[BomVulnerability]) -> tuple[BomVulnerability, ...]:
    """One entry per advisory and affected version, with every place the version is stated."""
    merged: dict[tuple[str, str, str | None], BomVulnerability] = {}
    for v in vulns:
        key = (v.id, v.package, v.version)
        seen = merged.get(key)
        if seen is None:
            merged[key] = v
        else:
            where = tuple(dict.fromkeys((*seen.declared_in, *v.declared_in)))
            merged[key] = replace(seen, declared_in=where)
    return tuple(merged.values())


def audit_dependencies(
    model: str | os.PathLike[str],
    *,
    policy: Policy | None = None,
    source: VulnerabilitySource | None = None,
    ignore: Iterable[str] = (),
    scanned_format: str | None = None,
    scanned: Sequence[FileResult] = (),
) -> DependencyReport:
    """Discover a model's dependencies and, with a ``source``, audit them.

    ``ignore`` names advisories to drop (by any id or alias). Without a source nothing is
    matched and nothing is sent anywhere. ``scanned`` are scan results of the model's files
    (raw, before any policy), reused instead of scanning them again. Raises
    :class:`~modelshield.audit.interface.AuditServiceError` when the source cannot answer.
    """
    policy = policy or Policy()
    root = os.fspath(model)
    inputs = discover_inputs(root, policy, scanned_format=scanned_format, scanned=scanned)
    listed = tuple((relative(i.path, root), i.kind.value) for i in inputs)
    deps = tuple(bom_dependencies(inputs, root))
    excluded = tuple(
        f"{e.dependency} ({relative(e.location.path, root)}"
        f"{f':{e.line}' if e.line else ''}): {e.marker}"
        for i in inputs
        for e in i.excluded
    )
    # The model files' own scan gaps are the BOM scan's to report; keep the inputs' own.
    gaps = tuple(
        g for i in inputs if i.kind.value != "model" for g in i.gaps if not policy.accepts(g)
    )
    if source is None:
        errors = tuple(e for i in inputs for e in i.errors if e.stage == "audit-parse")
        return DependencyReport(listed, deps, errors=errors, excluded=excluded, gaps=gaps)
    from modelshield.audit.auditor import run_audit
    from modelshield.audit.discover import audit_options

    result = run_audit(inputs, source, audit_options(policy, ignore))
    report: Report = policy.apply(result.report)
    vulns: list[BomVulnerability] = []
    for match in result.matches:
        kept = policy.keep(match.finding)
        if kept is not None:
            vulns.append(BomVulnerability.from_match(match, kept, root))
    others: list[Finding] = []
    for f in report.findings:
        if f.rule_id.startswith(VULNERABLE_PREFIX):
            continue  # listed above, typed
        if f.rule_id not in _REDUNDANT_RULES:
            where = replace(f.location, path=relative(f.location.path, root))
            others.append(replace(f, location=where))
    # The model files' own scan errors are the BOM scan's to report; keep the audit's.
    errors = tuple(e for e in report.errors if e.stage == "audit-parse")
    return DependencyReport(
        inputs=listed,
        dependencies=deps,
        vulnerabilities=_merge(vulns),
        findings=tuple(others),
        errors=errors,
        source=source.describe(),
        suppressed=report.suppressed,
        excluded=excluded,
        gaps=gaps,
    )


__all__ = [
    "VULNERABLE_PREFIX",
    "BomDependency",
    "BomVulnerability",
    "DependencyEvidence",
    "DependencyReport",
    "audit_dependencies",
    "bom_dependencies",
    "discover_inputs",
    "relative",
]
