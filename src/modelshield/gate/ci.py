"""``modelshield ci``: every configured pillar once, one merged report, one verdict.

1. **scan** the model paths of the policy (``models``; the whole project when it names none),
   searching directories as the policy says (``exclude``, ``gitignore``);
2. **audit** the project's dependency files and what its model files imply (model files the
   scan read are not read again);
3. **verify** the integrity manifest named in ``[manifest]``, when there is one;
4. **assess** the model named in ``[assess]`` (``model``, ``data``, ``target``), when there is
   one;

then add the policy's own findings (entries that match nothing, expired advisory ignores),
apply the policy, make every path relative to the project, and apply the baseline of
accepted findings. A pillar that cannot run (the vulnerability source is down, the data file
is missing) is an error result of that pillar, so that the others still report and the run
exits 2. Every path in the policy is relative to the policy file, and every path in the
report relative to the project, whatever the working directory.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from msgspec import Struct
from msgspec.structs import replace

from modelshield.core.errors import ModelshieldError
from modelshield.core.findings import (
    ErrorRecord,
    Excluded,
    FileResult,
    Finding,
    Gap,
    Location,
    Report,
    Repository,
    RepositoryFile,
)
from modelshield.core.policy import CI_PILLARS, Policy
from modelshield.gate.baseline import Applied, Baseline, BaselineEntry, apply_baseline
from modelshield.gate.policy_check import expired_ignores, policy_result, unused_entries

if TYPE_CHECKING:
    from modelshield.audit.interface import VulnerabilitySource
    from modelshield.scanner.discovery import Discovery
    from modelshield.scanner.engine import ScanObserver


class CiRun(Struct, frozen=True):
    """What ``run_ci`` produced."""

    report: Report
    """The merged report: the policy applied, paths relative to the project, the baseline
    applied."""
    pillars: tuple[str, ...]
    """The pillars that ran, in order."""
    absent: tuple[BaselineEntry, ...] = ()
    """Baseline entries no finding matched any more."""
    unbaselined: Report | None = None
    """The report before the baseline was applied (what ``--update-baseline`` records)."""


def configured_pillars(policy: Policy, skip: Iterable[str] = ()) -> tuple[str, ...]:
    """The pillars the policy configures, less those skipped: the scan and the audit always,
    the manifest with ``[manifest] path``, the assessment with ``[assess]`` ``model``,
    ``data`` and ``target``."""
    skipped = set(skip) | set(policy.ci.skip)
    chosen = []
    for pillar in CI_PILLARS:
        if pillar in skipped:
            continue
        if pillar == "manifest" and not policy.manifest.path:
            continue
        if pillar == "assess" and not (
            policy.assess.model and policy.assess.data and policy.assess.target
        ):
            continue
        chosen.append(pillar)
    return tuple(chosen)


def run_ci(
    project: str | os.PathLike[str],
    policy: Policy,
    *,
    source: VulnerabilitySource | None,
    discovery: Discovery | None = None,
    skip: Iterable[str] = (),
    ignore: Iterable[str] = (),
    baseline: Baseline | None = None,
    today: datetime.date | None = None,
    observer: ScanObserver | None = None,
) -> CiRun:
    """Run every configured pillar on ``project`` under ``policy`` (see the module).

    ``source`` is the audit's vulnerability source (None: the audit is not run); ``ignore``
    holds advisory ids to leave out besides the policy's; ``today`` decides which advisory
    ignores have expired (default: the local date).
    """
    from modelshield.core.rules import load_all_rules
    from modelshield.scanner.discovery import Discovery

    started = time.monotonic()
    root = os.path.abspath(project)  # noqa: PTH100 (a str)
    today = today or datetime.date.today()
    discovery = discovery or Discovery.from_policy(policy)
    pillars = tuple(p for p in configured_pillars(policy, skip) if p != "audit" or source)
    results: list[FileResult] = []
    repositories: list[Repository] = []
    excluded: dict[str, Excluded] = {}
    excluded_total = 0
    scanned: tuple[FileResult, ...] = ()
    assessment = None
    suppressed = 0

    def take(report: Report, pillar: str) -> None:
        nonlocal excluded_total, suppressed
        results.extend(replace(r, pillar=pillar) for r in report.results)
        repositories.extend(report.repositories)
        suppressed += report.suppressed
        fresh = [e for e in report.excluded if e.path not in excluded]
        excluded.update((e.path, e) for e in fresh)
        excluded_total = max(excluded_total, report.excluded_total, len(excluded))

    for pillar in pillars:
        runner = _RUNNERS[pillar]
        try:
            report = runner(
                root, policy, discovery, source, tuple(ignore), today, scanned, observer
            )
        except ModelshieldError as e:
            report = Report.of(pillar, [_failed(pillar, root, e)])
        if pillar == "scan":
            scanned = report.results
        if pillar == "assess" and report.assessment is not None:
            assessment = report.assessment
            report = _without_rescans(report, scanned)
        take(report, pillar)

    raw = Report.of("ci", results, repositories=repositories)
    rule_pillars = {rule.id: rule.pillar for rule in load_all_rules()}
    stale = unused_entries(
        policy, raw, pillars=set(pillars), rule_pillars=rule_pillars, today=today
    )
    expired = expired_ignores(policy, today)
    own = [*stale, *(expired.findings if expired is not None else ())]
    gate = policy_result(policy, own)
    if gate is not None:
        results.insert(0, gate)
    merged = Report(
        tool="ci",
        version=raw.version,
        results=tuple(results),
        repositories=tuple(repositories),
        assessment=assessment,
        excluded=tuple(excluded.values())[:1000],
        excluded_total=excluded_total,
        suppressed=suppressed,
    )
    applied = relocate(policy.apply(merged), root)
    applied = replace(applied, duration_s=time.monotonic() - started)
    if baseline is None:
        return CiRun(applied, pillars, unbaselined=applied)
    outcome: Applied = apply_baseline(applied, baseline, root)
    return CiRun(outcome.report, pillars, outcome.absent, unbaselined=applied)


Runner = Callable[
    [
        str,
        Policy,
        "Discovery",
        "VulnerabilitySource | None",
        tuple[str, ...],
        datetime.date,
        Sequence[FileResult],
        "ScanObserver | None",
    ],
    Report,
]


def _scan(
    root: str,
    policy: Policy,
    discovery: Discovery,
    source: VulnerabilitySource | None,
    ignore: tuple[str, ...],
    today: datetime.date,
    scanned: Sequence[FileResult],
    observer: ScanObserver | None,
) -> Report:
    from modelshield.scanner.engine import scan_paths

    paths = [_in_project(policy, root, p) for p in policy.models] or [root]
    return scan_paths(paths, policy, observer, discovery=discovery)


def _audit(
    root: str,
    policy: Policy,
    discovery: Discovery,
    source: VulnerabilitySource | None,
    ignore: tuple[str, ...],
    today: datetime.date,
    scanned: Sequence[FileResult],
    observer: ScanObserver | None,
) -> Report:
    from modelshield.audit import audit_paths
    from modelshield.audit.rules import AUDIT_RULE_IDS

    if source is None:  # pragma: no cover - the audit runs only with a source
        raise ModelshieldError("the audit needs a vulnerability source")
    advisory_ids = [
        *ignore,
        *sorted(policy.ignore - AUDIT_RULE_IDS),
        *policy.audit.active_ignores(today),
    ]
    return audit_paths(
        [root],
        source=source,
        policy=policy,
        ignore=advisory_ids,
        discovery=discovery,
        scanned=scanned,
    )


def _manifest(
    root: str,
    policy: Policy,
    discovery: Discovery,
    source: VulnerabilitySource | None,
    ignore: tuple[str, ...],
    today: datetime.date,
    scanned: Sequence[FileResult],
    observer: ScanObserver | None,
) -> Report:
    from modelshield.integrity.manifest import verify_manifest

    model = _in_project(policy, root, policy.manifest.path or ".")
    file = policy.manifest.file
    return verify_manifest(model, _in_project(policy, root, file) if file else None, policy=policy)


def _assess(
    root: str,
    policy: Policy,
    discovery: Discovery,
    source: VulnerabilitySource | None,
    ignore: tuple[str, ...],
    today: datetime.date,
    scanned: Sequence[FileResult],
    observer: ScanObserver | None,
) -> Report:
    from modelshield.assess import assess

    settings = policy.assess
    model = settings.model
    if not _names_code(model):
        model = _in_project(policy, root, model)
    return assess(
        model,
        _in_project(policy, root, settings.data),
        settings.target,
        sensitive=settings.sensitive,
        policy=policy,
        train_data=_in_project(policy, root, settings.train_data) if settings.train_data else None,
    )


_RUNNERS: dict[str, Runner] = {
    "scan": _scan,
    "audit": _audit,
    "manifest": _manifest,
    "assess": _assess,
}


def _names_code(model: str) -> bool:
    """A model given as ``package.module:function`` or a URL, not a file."""
    if "://" in model:
        return True
    head, sep, tail = model.partition(":")
    return bool(sep) and "/" not in model and "\\" not in model and bool(head) and bool(tail)


def _in_project(policy: Policy, root: str, path: str) -> str:
    """A path of the policy (relative to the policy file; to the project when the policy was
    not read from a file)."""
    if os.path.isabs(path):  # noqa: PTH117
        return path
    base = policy.root if policy.root is not None else root
    return os.path.normpath(os.path.join(base, path))  # noqa: PTH118


def _failed(pillar: str, root: str, error: ModelshieldError) -> FileResult:
    message = f"{pillar} could not run: {error.diagnostics()}"
    return FileResult(
        root, "unknown", errors=(ErrorRecord(Location(root), message, pillar),), pillar=pillar
    )


def _without_rescans(report: Report, scanned: Sequence[FileResult]) -> Report:
    """The assessment less its own scan of a model file the scan pillar already reported."""
    seen = {os.path.normpath(os.path.abspath(r.path)) for r in scanned}  # noqa: PTH100
    info = report.assessment
    kept = [
        r
        for r in report.results
        if not (
            info is not None
            and r.path == info.model
            and r.format != info.model_kind
            and os.path.normpath(os.path.abspath(r.path)) in seen  # noqa: PTH100
        )
    ]
    return replace(report, results=tuple(kept))


# ---- paths relative to the project -----------------------------------------------------------


def relocate(report: Report, root: str) -> Report:
    """``report`` with every path under ``root`` written relative to it (others unchanged)."""

    def rel(path: str) -> str:
        if not os.path.isabs(path):  # noqa: PTH117
            path = os.path.abspath(path)  # noqa: PTH100
        inside = os.path.relpath(path, root)
        if inside == os.pardir or inside.startswith(os.pardir + os.sep):
            return path
        return inside

    prefix = root.rstrip(os.sep) + os.sep

    def text(value: str) -> str:
        """Messages name files as the pillar was given them: absolute, under the project."""
        return value.replace(prefix, "") if prefix in value else value

    def loc(location: Location) -> Location:
        return replace(location, path=rel(location.path))

    def finding(f: Finding) -> Finding:
        return replace(
            f,
            location=loc(f.location),
            title=text(f.title),
            message=text(f.message),
            evidence={k: text(v) for k, v in f.evidence.items()},
        )

    def gap(g: Gap) -> Gap:
        return replace(g, location=loc(g.location), message=text(g.message))

    results = tuple(
        replace(
            r,
            path=rel(r.path),
            findings=tuple(finding(f) for f in r.findings),
            errors=tuple(
                replace(e, location=loc(e.location), message=text(e.message)) for e in r.errors
            ),
            gaps=tuple(gap(g) for g in r.gaps),
        )
        for r in report.results
    )
    repositories = tuple(
        replace(
            repo,
            path=rel(repo.path),
            files=tuple(RepositoryFile(rel(f.path), f.role, f.reason) for f in repo.files),
        )
        for repo in report.repositories
    )
    excluded = tuple(replace(e, path=rel(e.path)) for e in report.excluded)
    assessment = report.assessment
    if assessment is not None:
        data = rel(assessment.data) if assessment.data else assessment.data
        model = assessment.model if _names_code(assessment.model) else rel(assessment.model)
        assessment = replace(assessment, model=model, data=data)
    return replace(
        report,
        results=results,
        repositories=repositories,
        excluded=excluded,
        assessment=assessment,
    )
