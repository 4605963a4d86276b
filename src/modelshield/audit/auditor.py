"""The auditor: parsed inputs + advisories -> findings, one :class:`FileResult` per input.

For each dependency:

- pinned (``==``, locked, installed, recorded in a model): every advisory of the package that
  affects the version (:func:`~modelshield.audit.match.affects`), withdrawn ones skipped, those
  that alias each other merged -> ``AUDIT-VULNERABLE-DEPENDENCY``, severity from CVSS (unknown
  -> HIGH);
- a range: the affected versions the range admits (:func:`~modelshield.audit.intervals.
  reachable_affected`) -> one ``AUDIT-UNPINNED-MAY-RESOLVE-VULNERABLE`` per dependency;
- not a PEP 440 version, or a model-implied dependency with no version anywhere ->
  ``AUDIT-UNKNOWN-VERSION``;
- a URL/VCS/local dependency -> ``AUDIT-UNAUDITABLE-DEPENDENCY``;
- model-implied -> ``AUDIT-MODEL-IMPLIED-DEPENDENCY`` (info) and audited as above.

Advisories named by ``ignore`` (by any of their ids or aliases) are dropped before matching and
counted in ``Report.suppressed``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

from msgspec import Struct
from msgspec.structs import replace

from modelshield.audit import rules
from modelshield.audit.interface import (
    Advisory,
    Dependency,
    PackageQuery,
    ParsedInput,
    VulnerabilitySource,
)
from modelshield.audit.match import Probe, affects, first_unaffected, fixed_versions
from modelshield.core.findings import (
    ErrorRecord,
    FileResult,
    Finding,
    Location,
    Report,
    Severity,
)

_ID_RANK = {"PYSEC": 0, "GHSA": 1, "MAL": 2, "CVE": 3}
_MAX_LISTED = 10


class AuditOptions(Struct, frozen=True):
    """What the auditor keeps and drops."""

    ignore: frozenset[str] = frozenset()
    """Advisory ids (or aliases: CVE, GHSA...) to drop, e.g. after a risk review."""


def _id_key(ident: str, own: frozenset[str]) -> tuple[int, int, str]:
    return (0 if ident in own else 1, _ID_RANK.get(ident.split("-", 1)[0], 9), ident)


def group_aliases(advisories: Sequence[Advisory]) -> list[list[Advisory]]:
    """Advisories grouped when they share an id or alias (union-find), in first-seen order."""
    parent = list(range(len(advisories)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, adv in enumerate(advisories):
        for ident in adv.ids:
            j = owner.setdefault(ident, i)
            if j != i:
                parent[find(i)] = find(j)
    groups: dict[int, list[Advisory]] = {}
    for i, adv in enumerate(advisories):
        groups.setdefault(find(i), []).append(adv)
    return list(groups.values())


def _all_ids(group: Sequence[Advisory]) -> list[str]:
    own = frozenset(a.id for a in group)
    ids = {i for a in group for i in a.ids}
    return sorted(ids, key=lambda i: _id_key(i, own))


def _severity(group: Sequence[Advisory]) -> tuple[Severity, str]:
    best: tuple[Severity, str] | None = None
    for adv in group:
        if adv.severity is not None and (best is None or adv.severity > best[0]):
            best = (adv.severity, f"{adv.id}: {adv.severity_source}")
    if best is None:
        return Severity.HIGH, "none in the advisory: reported as HIGH (unknown is never low)"
    return best


def _summary(group: Sequence[Advisory]) -> str:
    for adv in group:
        if adv.summary:
            return adv.summary
    for adv in group:
        if adv.details:
            first = adv.details.strip().split("\n\n", 1)[0].replace("\n", " ")
            return first if len(first) <= 300 else first[:297] + "..."
    return "no description in the advisory"


def _where(dep: Dependency) -> str:
    return f"{dep.location.path}:{dep.line}" if dep.line else dep.location.path


class _InputAuditor:
    def __init__(
        self,
        inp: ParsedInput,
        advisories: Mapping[str, tuple[Advisory, ...]],
        declared: Mapping[str, str],
        options: AuditOptions,
    ) -> None:
        self.inp, self.advisories, self.declared, self.options = inp, advisories, declared, options
        self.findings: list[Finding] = []
        self.errors: list[ErrorRecord] = list(inp.errors)
        self.suppressed = 0
        self._warned: set[str] = set()

    def relevant(self, dep: Dependency) -> list[Advisory]:
        """The advisories of the package, less withdrawn and ignored ones (counted)."""
        out = []
        ignore = self.options.ignore
        for adv in self.advisories.get(dep.canonical, ()):
            if adv.withdrawn or not adv.for_package(dep.canonical):
                continue
            if ignore and adv.ids & ignore:
                self.suppressed += 1
                continue
            out.append(adv)
        return out

    def run(self) -> FileResult:
        """Every dependency of the input -> this input's result."""
        for dep in self.inp.dependencies:
            if dep.origin == "model-implied":
                self.implied(dep)
            if dep.unauditable is not None:
                self.findings.append(
                    rules.UNAUDITABLE.finding(
                        dep.location,
                        f"{dep.name} ({_where(dep)}) is {dep.unauditable}; no advisory can be "
                        "matched to it. Pin it to a release, or review the code at that source.",
                        title=f"{dep.name} is not a package-index release",
                        evidence={"package": dep.name, "reason": dep.unauditable},
                    )
                )
            elif dep.version is not None:
                self.pinned(dep, dep.version)
            elif dep.origin == "model-implied":
                self.unknown_implied(dep)
            else:
                self.ranged(dep)
        return FileResult(
            path=self.inp.path,
            format=self.inp.kind.value,
            findings=tuple(self.findings),
            errors=tuple(self.errors),
            size=self.inp.size,
            bytes_read=self.inp.size,
            metadata=dict(self.inp.metadata),
        )

    def data_warnings(self, dep: Dependency, advisories: Iterable[Advisory]) -> None:
        for adv in advisories:
            if adv.warnings and adv.id not in self._warned:
                self._warned.add(adv.id)
                self.findings.append(
                    rules.ADVISORY_DATA.finding(
                        dep.location,
                        f"Advisory {adv.id} for {dep.name} was partly unusable: "
                        f"{'; '.join(adv.warnings)}. Its other ranges and its versions list "
                        "were still used; check the advisory by hand.",
                        title=f"Advisory {adv.id} for {dep.name} could not be fully read",
                        evidence={"package": dep.canonical, "advisory": adv.id},
                    )
                )

    def implied(self, dep: Dependency) -> None:
        """Say that a model needs this distribution, and why we know."""
        evidence = {"package": dep.canonical, **dep.evidence}
        parts = [f"Loading {self.inp.path} needs {dep.name}"]
        if "callables" in dep.evidence:
            parts.append(f"(it imports {dep.evidence['callables']})")
        if dep.version is not None:
            evidence["recorded_version"] = dep.version
            source = dep.evidence.get("version_source", "the file")
            parts.append(f"and it records version {dep.version} ({source})")
        declared_in = self.declared.get(dep.canonical)
        message = " ".join(parts)
        if declared_in:
            evidence["declared_in"] = declared_in
            message += f"; it is declared in {declared_in}"
        self.findings.append(
            rules.MODEL_IMPLIED.finding(
                dep.location,
                message + ".",
                title=f"Model implies {dep.name}"
                + (f" {dep.version}" if dep.version is not None else ""),
                evidence=evidence,
            )
        )

    def unknown_implied(self, dep: Dependency) -> None:
        """A model dependency with no version anywhere: it cannot be audited."""
        if dep.canonical in self.declared:
            return  # the declaring file's own result audits its version
        self.findings.append(
            rules.UNKNOWN_VERSION.finding(
                dep.location,
                f"{self.inp.path} needs {dep.name}, but neither the file nor a dependency file "
                "audited with it records a version: it will run with whatever version the "
                "loading environment has. Declare and pin it beside the model.",
                title=f"Model needs {dep.name} at an unknown version",
                evidence={"package": dep.canonical, **dep.evidence},
            )
        )

    def pinned(self, dep: Dependency, version: str) -> None:
        """Match one exact version; one finding per group of aliased advisories."""
        probe = Probe.of(version)
        if not probe.parsed.is_pep440:
            self.findings.append(
                rules.UNKNOWN_VERSION.finding(
                    dep.location,
                    f"{dep.name} {version!r} ({_where(dep)}) is not a PEP 440 version. It is "
                    "matched as a legacy version: exactly against advisories' version lists, "
                    "and before every PEP 440 release in ranges (so ranges that start at the "
                    "first release cover it).",
                    title=f"{dep.name} version {version!r} is not PEP 440",
                    evidence={"package": dep.canonical, "version": version},
                )
            )
        advisories = self.relevant(dep)
        self.data_warnings(dep, advisories)
        hits = [
            adv
            for adv in advisories
            if any(affects(a, probe) for a in adv.for_package(dep.canonical))
        ]
        for group in group_aliases(hits):
            self.findings.append(self.vulnerable(dep, probe, group))

    def vulnerable(self, dep: Dependency, probe: Probe, group: Sequence[Advisory]) -> Finding:
        version = probe.text
        ids = _all_ids(group)
        severity, source = _severity(group)
        entries = [a for adv in group for a in adv.for_package(dep.canonical)]
        later = fixed_versions(entries, after=probe.parsed)
        upgrade = first_unaffected(entries, later)
        if upgrade:
            fix_text = f"Upgrade to {upgrade} or later (fixed in: {', '.join(later)})."
        elif later:
            fix_text = f"Fixed versions listed: {', '.join(later)}; check each before upgrading."
        else:
            fix_text = "No fixed version is known."
        evidence = {
            "package": dep.canonical,
            "version": version,
            "ids": ", ".join(ids),
            "fixed_versions": ", ".join(later),
            "upgrade_to": upgrade,
            "severity_source": source,
            "references": " ".join(r for adv in group for r in adv.references[:2]),
            "origin": dep.origin,
        }
        if dep.line:
            evidence["line"] = str(dep.line)
        evidence.update({k: v for k, v in dep.evidence.items() if k not in evidence})
        also = f" Also known as {', '.join(ids[1:])}." if len(ids) > 1 else ""
        summary = _summary(group).rstrip(".")
        return rules.VULNERABLE.finding(
            dep.location,
            f"{dep.name} {version} ({_where(dep)}, {dep.origin}) is affected by {ids[0]}: "
            f"{summary}. {fix_text}{also}",
            title=f"{dep.name} {version} is affected by {ids[0]}",
            severity=severity,
            evidence=evidence,
        )

    def ranged(self, dep: Dependency) -> None:
        """A range: one finding listing the advisories whose versions it admits."""
        from modelshield.audit.intervals import reachable_affected, specifier_intervals

        try:
            specifier_intervals(dep.specifiers)
        except ValueError as e:
            self.errors.append(ErrorRecord(dep.location, f"{_where(dep)}: {e}", "audit-parse"))
            return
        advisories = self.relevant(dep)
        self.data_warnings(dep, advisories)
        reached: list[tuple[list[Advisory], str]] = []
        for group in group_aliases(advisories):
            entries = [a for adv in group for a in adv.for_package(dep.canonical)]
            hit = reachable_affected(dep.specifiers, entries)
            if hit:
                reached.append((group, " or ".join(iv.describe() for iv in hit[:3])))
        if not reached:
            return
        self.findings.append(self.may_resolve(dep, reached))

    def may_resolve(self, dep: Dependency, reached: list[tuple[list[Advisory], str]]) -> Finding:
        from modelshield.audit.intervals import reachable_affected

        listed = [f"{_all_ids(g)[0]} ({rng})" for g, rng in reached]
        entries = [a for g, _ in reached for adv in g for a in adv.for_package(dep.canonical)]
        fixes = fixed_versions(entries)
        floor = fixes[-1] if fixes else ""
        hint = "Pin an exact version (or use a lock file) so that the audit is exact."
        if floor:
            tightened = tuple(f"{s},>={floor}" if s else f">={floor}" for s in dep.specifiers)
            if not reachable_affected(tightened, entries):
                hint = f"Requiring >={floor} excludes every known affected version. " + hint
        worst = max(
            (a.severity for g, _ in reached for a in g if a.severity is not None), default=None
        )
        shown = "; ".join(listed[:_MAX_LISTED])
        more = f"; and {len(listed) - _MAX_LISTED} more" if len(listed) > _MAX_LISTED else ""
        spec = " || ".join(s for s in dep.specifiers if s) or "any version"
        return rules.MAY_RESOLVE.finding(
            dep.location,
            f"{dep.display()} ({_where(dep)}) admits versions affected by {len(reached)} known "
            f"advisor{'y' if len(reached) == 1 else 'ies'}: {shown}{more}. {hint}",
            title=f"{dep.display()} could resolve to a vulnerable version",
            evidence={
                "package": dep.canonical,
                "specifier": spec,
                "advisories": "; ".join(listed),
                "ids": ", ".join(i for g, _ in reached for i in _all_ids(g)),
                "safe_floor": floor,
                "worst_advisory_severity": worst.label if worst is not None else "unknown",
                **({"line": str(dep.line)} if dep.line else {}),
            },
        )


def _declared(inputs: Sequence[ParsedInput]) -> dict[str, str]:
    out: dict[str, str] = {}
    for inp in inputs:
        for dep in inp.dependencies:
            if dep.origin != "model-implied":
                out.setdefault(dep.canonical, inp.path)
    return out


def queries_for(inputs: Sequence[ParsedInput]) -> list[PackageQuery]:
    """What to ask the vulnerability source: one query per distinct (package, version)."""
    seen: dict[tuple[str, str | None], PackageQuery] = {}
    for inp in inputs:
        for dep in inp.dependencies:
            if dep.unauditable is not None:
                continue
            if dep.version is None and dep.origin == "model-implied":
                continue
            key = (dep.canonical, dep.version)
            seen.setdefault(key, PackageQuery(dep.canonical, dep.version))
    return list(seen.values())


def audit_inputs(
    inputs: Sequence[ParsedInput],
    source: VulnerabilitySource,
    options: AuditOptions | None = None,
    started: float | None = None,
) -> Report:
    """Audit parsed inputs against a source; raises AuditServiceError when it cannot answer."""
    options = options or AuditOptions()
    started = time.monotonic() if started is None else started
    queries = queries_for(inputs)
    advisories = source.advisories(queries) if queries else {}
    problems = source.problems(sorted({q.canonical for q in queries})) if queries else ()
    declared = _declared(inputs)
    results: list[FileResult] = []
    suppressed = 0
    for inp in inputs:
        auditor = _InputAuditor(inp, advisories, declared, options)
        result = auditor.run()
        names = {d.canonical for d in inp.dependencies}
        extra = [
            rules.ADVISORY_DATA.finding(
                Location(inp.path),
                f"Advisory file {p.file} (for {p.package}) could not be read: {p.message}. "
                "Advisories it holds were not matched.",
                evidence={"package": p.package, "file": p.file},
            )
            for p in problems
            if p.package in names
        ]
        metadata = {**result.metadata, "vulnerability_source": source.describe()}
        results.append(replace(result, findings=result.findings + tuple(extra), metadata=metadata))
        suppressed += auditor.suppressed
    report = Report.of("audit", results, duration_s=time.monotonic() - started)
    return replace(report, suppressed=suppressed)
