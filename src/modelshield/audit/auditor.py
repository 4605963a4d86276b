"""The auditor: parsed inputs + advisories -> findings, one :class:`FileResult` per input.

For each dependency:

- pinned (``==``, locked, installed, recorded in a model): every advisory of the package that
  affects the version (:func:`~modelshield.audit.match.affects`), withdrawn ones skipped, those
  that alias each other merged -> ``AUDIT-VULNERABLE-DEPENDENCY``, severity from CVSS (unknown
  -> HIGH); an advisory whose range has a bound that cannot be ordered against the version
  (not PEP 440) and does not provably exclude it (:func:`~modelshield.audit.match.may_affect`)
  -> ``AUDIT-VULNERABLE-UNORDERABLE-RANGE``, at the advisory's severity;
- a range: the affected versions the range admits (:func:`~modelshield.audit.intervals.
  reachable_affected`) -> one ``AUDIT-UNPINNED-MAY-RESOLVE-VULNERABLE`` per dependency;
- not a PEP 440 version, or a model-implied dependency with no version anywhere ->
  ``AUDIT-UNKNOWN-VERSION``;
- a URL/VCS/local dependency -> ``AUDIT-UNAUDITABLE-DEPENDENCY``;
- model-implied -> ``AUDIT-MODEL-IMPLIED-DEPENDENCY`` (info) and audited as above;
- left out for the target's markers -> ``AUDIT-DEPENDENCY-EXCLUDED`` (info).

Advisories named by ``ignore`` (by any of their ids or aliases) are dropped before matching and
counted in ``Report.suppressed``. Findings and errors are bounded per input
(:mod:`modelshield.audit.caps`). Besides the report, :func:`run_audit` returns each
vulnerability typed (:class:`VulnerabilityMatch`: ids, fixed versions, the CVSS score), for
consumers such as the BOM that must not parse the report's text back.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from msgspec import Struct
from msgspec.structs import replace

from modelshield.audit import rules
from modelshield.audit.caps import ErrorCap, finding_cap
from modelshield.audit.inputs.dependency import Dependency, ParsedInput
from modelshield.audit.interface import VulnerabilitySource
from modelshield.audit.match import Probe, affects, first_unaffected, fixed_versions, may_affect
from modelshield.audit.records import Advisory, CvssScore, DataProblem, PackageQuery
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
    """What the auditor keeps, drops and checks."""

    ignore: frozenset[str] = frozenset()
    """Advisory ids (or aliases: CVE, GHSA...) to drop, e.g. after a risk review."""
    max_database_age_days: float | None = None
    """Report ``AUDIT-DATABASE-STALE`` when the source's newest advisory is older than this;
    None: no check (the policy's ``[audit] max_database_age_days`` sets it for the CLI)."""
    target: str = ""
    """The environment markers were evaluated for, for messages (``python 3.11, linux``);
    ``""`` when no target was named and every dependency was audited."""
    now: datetime | None = None
    """The current time for the staleness check (None: the clock)."""


class VulnerabilityMatch(Struct, frozen=True):
    """A version and the advisories (aliases merged) that affect it, as typed data."""

    finding: Finding
    """How the report states it (the policy may drop or re-rank it)."""
    package: str
    """Normalised name of the affected distribution."""
    version: str
    """The version in use, as declared."""
    ids: tuple[str, ...]
    """The advisory's id first, then every other id of the merged advisories."""
    fixed: tuple[str, ...] = ()
    """Fixed versions later than ``version``, in PEP 440 order."""
    upgrade_to: str = ""
    """The smallest of them that leaves every merged advisory, or ``""``."""
    references: tuple[str, ...] = ()
    """Reference URLs, advisories first."""
    severity_source: str = ""
    """Where the severity comes from, for people."""
    cvss: CvssScore | None = None
    """The CVSS score the severity was computed from; None when it came from a label or is
    unknown."""
    certain: bool = True
    """False when the version is only possibly affected (a range bound cannot be ordered)."""


class AuditResult(Struct, frozen=True):
    """What :func:`run_audit` produced."""

    report: Report
    """The raw report (the policy is not applied)."""
    matches: tuple[VulnerabilityMatch, ...] = ()
    """Every vulnerability finding of the report, typed, in report order."""


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


def _severity(group: Sequence[Advisory]) -> tuple[Severity, str, CvssScore | None]:
    best: Advisory | None = None
    for adv in group:
        if adv.severity is not None and (best is None or adv.severity > (best.severity or 0)):
            best = adv
    if best is None or best.severity is None:
        unknown = "none in the advisory: reported as HIGH (unknown is never low)"
        return Severity.HIGH, unknown, None
    return best.severity, f"{best.id}: {best.severity_source}", best.cvss


def _summary(group: Sequence[Advisory]) -> str:
    for adv in group:
        if adv.summary:
            return adv.summary
    for adv in group:
        if adv.details:
            first = adv.details.strip().split("\n\n", 1)[0].replace("\n", " ")
            return first if len(first) <= 300 else first[:297] + "..."
    return "no description in the advisory"


def _line(dep: Dependency) -> dict[str, str]:
    """The dependency's line as evidence (code-scanning dashboards place findings there)."""
    return {"line": str(dep.line)} if dep.line else {}


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
        self.cap = finding_cap()
        self.errors = ErrorCap()
        for error in inp.errors:
            self.errors.add(error)
        self.suppressed = 0
        self.ignored: set[str] = set()
        """The ignored ids (as the options name them) that matched an advisory."""
        self._warned: set[str] = set()
        self._matches: dict[int, VulnerabilityMatch] = {}
        # A pinned version is matched once per input, however often it is declared.
        self._hits: dict[tuple[str, str], tuple[list[list[Advisory]], list[list[Advisory]]]] = {}

    def add(self, finding: Finding) -> None:
        self.cap.add(finding)

    def relevant(self, dep: Dependency) -> list[Advisory]:
        """The advisories of the package, less withdrawn and ignored ones (counted)."""
        out = []
        ignore = self.options.ignore
        for adv in self.advisories.get(dep.canonical, ()):
            if adv.withdrawn or not adv.for_package(dep.canonical):
                continue
            if ignore and adv.ids & ignore:
                self.suppressed += 1
                self.ignored |= adv.ids & ignore
                continue
            out.append(adv)
        return out

    def run(self) -> FileResult:
        """Every dependency of the input -> this input's result."""
        for finding in self.inp.findings:
            self.add(finding)
        for dep in self.inp.dependencies:
            if dep.origin == "model-implied":
                self.implied(dep)
            if dep.unauditable is not None:
                self.add(
                    rules.UNAUDITABLE.finding(
                        dep.location,
                        f"{dep.name} ({_where(dep)}) is {dep.unauditable}; no advisory can be "
                        "matched to it. Pin it to a release, or review the code at that source.",
                        title=f"{dep.name} is not a package-index release",
                        evidence={"package": dep.name, "reason": dep.unauditable, **_line(dep)},
                    )
                )
            elif dep.version is not None:
                self.pinned(dep, dep.version)
            elif dep.origin == "model-implied":
                self.unknown_implied(dep)
            else:
                self.ranged(dep)
        for excluded in self.inp.excluded:
            where = f"{excluded.location.path}:{excluded.line}" if excluded.line else ""
            self.add(
                rules.EXCLUDED.finding(
                    excluded.location,
                    f"{excluded.dependency}{f' ({where})' if where else ''} was not audited: "
                    f"its marker `{excluded.marker}` is false for the target "
                    f"({self.options.target or 'named by the user'}). Audit without "
                    "--python-version/--platform to include it.",
                    title=f"{excluded.dependency} left out for the target",
                    evidence={
                        "package": excluded.canonical,
                        "marker": excluded.marker,
                        "target": self.options.target,
                        **({"line": str(excluded.line)} if excluded.line else {}),
                    },
                )
            )
        metadata = dict(self.inp.metadata)
        if self.options.target:
            metadata["target"] = self.options.target
        if self.ignored:
            metadata["ignored_advisories"] = ", ".join(sorted(self.ignored))
        return FileResult(
            path=self.inp.path,
            format=self.inp.kind.value,
            findings=tuple(self.cap.findings()),
            errors=self.errors.records(self.inp.path),
            size=self.inp.size,
            bytes_read=self.inp.size,
            metadata=metadata,
            gaps=self.inp.gaps,
        )

    def matches(self, findings: Iterable[Finding]) -> list[VulnerabilityMatch]:
        """The typed form of each vulnerability finding among ``findings``."""
        out = []
        for f in findings:
            match = self._matches.get(id(f))
            if match is not None and match.finding is f:
                out.append(match)
        return out

    def data_warnings(self, dep: Dependency, advisories: Iterable[Advisory]) -> None:
        for adv in advisories:
            if adv.warnings and adv.id not in self._warned:
                self._warned.add(adv.id)
                self.add(
                    rules.ADVISORY_DATA.finding(
                        dep.location,
                        f"Advisory {adv.id} for {dep.name} was partly unusable: "
                        f"{'; '.join(adv.warnings)}. Its other ranges and its versions list "
                        "were still used; check the advisory by hand.",
                        title=f"Advisory {adv.id} for {dep.name} could not be fully read",
                        evidence={"package": dep.canonical, "advisory": adv.id, **_line(dep)},
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
        self.add(
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
        self.add(
            rules.UNKNOWN_VERSION.finding(
                dep.location,
                f"{self.inp.path} needs {dep.name}, but neither the file nor a dependency file "
                "audited with it records a version: it will run with whatever version the "
                "loading environment has. Declare and pin it beside the model.",
                title=f"Model needs {dep.name} at an unknown version",
                evidence={"package": dep.canonical, **dep.evidence},
            )
        )

    def hits(
        self, dep: Dependency, probe: Probe
    ) -> tuple[list[list[Advisory]], list[list[Advisory]]]:
        """The alias groups that affect the version, and those that may affect it (a range
        bound cannot be ordered against it), computed once per version and input."""
        key = (dep.canonical, probe.text)
        found = self._hits.get(key)
        if found is not None:
            return found
        advisories = self.relevant(dep)
        self.data_warnings(dep, advisories)
        sure, maybe = [], []
        for adv in advisories:
            entries = adv.for_package(dep.canonical)
            if any(affects(a, probe) for a in entries):
                sure.append(adv)
            elif any(may_affect(a, probe) for a in entries):
                maybe.append(adv)
        found = self._hits[key] = (group_aliases(sure), group_aliases(maybe))
        return found

    def pinned(self, dep: Dependency, version: str) -> None:
        """Match one exact version; one finding per group of aliased advisories."""
        probe = Probe.of(version)
        if not probe.parsed.is_pep440:
            self.add(
                rules.UNKNOWN_VERSION.finding(
                    dep.location,
                    f"{dep.name} {version!r} ({_where(dep)}) is not a PEP 440 version. It is "
                    "matched as a legacy version: exactly against advisories' version lists, "
                    "and before every PEP 440 release in ranges (so ranges that start at the "
                    "first release cover it).",
                    title=f"{dep.name} version {version!r} is not PEP 440",
                    evidence={"package": dep.canonical, "version": version, **_line(dep)},
                )
            )
        sure, maybe = self.hits(dep, probe)
        for group in sure:
            self.vulnerable(dep, probe, group, certain=True)
        for group in maybe:
            self.vulnerable(dep, probe, group, certain=False)

    def vulnerable(
        self, dep: Dependency, probe: Probe, group: Sequence[Advisory], *, certain: bool
    ) -> None:
        """Count one vulnerability; its finding is built only when it is kept."""
        severity, source, cvss = _severity(group)
        rule = rules.VULNERABLE if certain else rules.POSSIBLY_VULNERABLE

        def make() -> Finding:
            return self.vulnerability(dep, probe, group, severity, source, cvss, certain)

        self.cap.add_lazy(rule.id, severity, make)

    def vulnerability(
        self,
        dep: Dependency,
        probe: Probe,
        group: Sequence[Advisory],
        severity: Severity,
        source: str,
        cvss: CvssScore | None,
        certain: bool,
    ) -> Finding:
        version = probe.text
        ids = _all_ids(group)
        entries = [a for adv in group for a in adv.for_package(dep.canonical)]
        later = fixed_versions(entries, after=probe.parsed)
        upgrade = first_unaffected(entries, later)
        if upgrade:
            fix_text = f"Upgrade to {upgrade} or later (fixed in: {', '.join(later)})."
        elif later:
            fix_text = f"Fixed versions listed: {', '.join(later)}; check each before upgrading."
        else:
            fix_text = "No fixed version is known."
        references = tuple(r for adv in group for r in adv.references[:2])
        evidence = {
            "package": dep.canonical,
            "version": version,
            "ids": ", ".join(ids),
            "fixed_versions": ", ".join(later),
            "upgrade_to": upgrade,
            "severity_source": source,
            "references": " ".join(references),
            "origin": dep.origin,
        }
        if dep.line:
            evidence["line"] = str(dep.line)
        evidence.update({k: v for k, v in dep.evidence.items() if k not in evidence})
        also = f" Also known as {', '.join(ids[1:])}." if len(ids) > 1 else ""
        summary = _summary(group).rstrip(".")
        if certain:
            finding = rules.VULNERABLE.finding(
                dep.location,
                f"{dep.name} {version} ({_where(dep)}, {dep.origin}) is affected by {ids[0]}: "
                f"{summary}. {fix_text}{also}",
                title=f"{dep.name} {version} is affected by {ids[0]}",
                severity=severity,
                evidence=evidence,
            )
        else:
            evidence["possibly"] = "a range bound is not a PEP 440 version"
            finding = rules.POSSIBLY_VULNERABLE.finding(
                dep.location,
                f"{dep.name} {version} ({_where(dep)}, {dep.origin}) may be affected by "
                f"{ids[0]}: {summary}. A bound of the advisory's range is not a PEP 440 "
                "version, so the version cannot be ordered against it, and it is not outside "
                f"the range wherever that bound falls. {fix_text}{also}",
                title=f"{dep.name} {version} may be affected by {ids[0]}",
                severity=severity,
                evidence=evidence,
            )
        self._matches[id(finding)] = VulnerabilityMatch(
            finding=finding,
            package=dep.canonical,
            version=version,
            ids=tuple(ids),
            fixed=tuple(later),
            upgrade_to=upgrade,
            references=references,
            severity_source=source,
            cvss=cvss,
            certain=certain,
        )
        return finding

    def ranged(self, dep: Dependency) -> None:
        """A range: one finding listing the advisories whose versions it admits."""
        from modelshield.audit.intervals import reachable_affected, specifier_intervals

        try:
            specifier_intervals(dep.specifiers)
        except ValueError as e:
            self.errors.add(ErrorRecord(dep.location, f"{_where(dep)}: {e}", "audit-parse"))
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
        self.add(self.may_resolve(dep, reached))

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


def _problem_findings(
    inp: ParsedInput, problems: Sequence[DataProblem], names: set[str]
) -> list[Finding]:
    """Unreadable advisory data that may concern the input's packages: each file naming one of
    them, and one finding for the files that name no package (they may concern any)."""
    out = [
        rules.ADVISORY_DATA.finding(
            Location(inp.path),
            f"Advisory file {p.file} (for {p.package}) could not be read: {p.message}. "
            "Advisories it holds were not matched.",
            evidence={"package": p.package, "file": p.file},
        )
        for p in problems
        if p.package and p.package in names
    ]
    unnamed = [p for p in problems if not p.package]
    if unnamed and names:
        shown = ", ".join(p.file for p in unnamed[:5])
        more = f" and {len(unnamed) - 5} more" if len(unnamed) > 5 else ""
        out.append(
            rules.ADVISORY_DATA.finding(
                Location(inp.path),
                f"{len(unnamed)} advisory file(s) of the database could not be read and name "
                f"no package ({shown}{more}); any of them may concern a dependency of this "
                "input, and none was matched.",
                title="Unreadable advisory files may concern this input",
                evidence={"files": str(len(unnamed))},
            )
        )
    return out


def _stale(source: VulnerabilitySource, options: AuditOptions, where: str) -> Finding | None:
    """``AUDIT-DATABASE-STALE`` when the source's newest advisory is older than allowed."""
    limit = options.max_database_age_days
    newest = source.newest_modified() if limit is not None else None
    if limit is None or not newest:
        return None
    try:
        stamp = datetime.fromisoformat(newest)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    now = options.now or datetime.now(UTC)
    age = (now - stamp).total_seconds() / 86400
    if age <= limit:
        return None
    return rules.DATABASE_STALE.finding(
        Location(where),
        f"The newest advisory of {source.describe()} was modified {newest} ({age:.0f} days "
        f"ago), more than the policy's [audit] max_database_age_days ({limit:g}): advisories "
        "published since are missing. Run `modelshield db update` (or update the --db "
        "directory).",
        title=f"The advisory database is {age:.0f} days old",
        evidence={"newest_modified": newest, "age_days": f"{age:.0f}", "limit": f"{limit:g}"},
    )


def run_audit(
    inputs: Sequence[ParsedInput],
    source: VulnerabilitySource,
    options: AuditOptions | None = None,
    started: float | None = None,
) -> AuditResult:
    """Audit parsed inputs against a source: the raw report, and every vulnerability typed.

    Raises :class:`~modelshield.audit.interface.AuditServiceError` when the source cannot
    answer.
    """
    options = options or AuditOptions()
    started = time.monotonic() if started is None else started
    source.check()
    queries = queries_for(inputs)
    advisories = source.advisories(queries) if queries else {}
    problems = source.problems(sorted({q.canonical for q in queries})) if queries else ()
    declared = _declared(inputs)
    results: list[FileResult] = []
    matches: list[VulnerabilityMatch] = []
    suppressed = 0
    stale_reported = False
    for inp in inputs:
        auditor = _InputAuditor(inp, advisories, declared, options)
        result = auditor.run()
        names = {d.canonical for d in inp.dependencies}
        extra = _problem_findings(inp, problems, names)
        if not stale_reported and queries and any(d.unauditable is None for d in inp.dependencies):
            stale_reported = True
            stale = _stale(source, options, inp.path)
            if stale is not None:
                extra.append(stale)
        metadata = {**result.metadata, "vulnerability_source": source.describe()}
        results.append(replace(result, findings=result.findings + tuple(extra), metadata=metadata))
        matches += auditor.matches(result.findings)
        suppressed += auditor.suppressed
    report = Report.of("audit", results, duration_s=time.monotonic() - started)
    return AuditResult(replace(report, suppressed=suppressed), tuple(matches))


def audit_inputs(
    inputs: Sequence[ParsedInput],
    source: VulnerabilitySource,
    options: AuditOptions | None = None,
    started: float | None = None,
) -> Report:
    """Audit parsed inputs against a source; raises AuditServiceError when it cannot answer."""
    return run_audit(inputs, source, options, started).report
