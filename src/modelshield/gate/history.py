"""What a ``modelshield ci`` run records in the governance database, per run and per model.

:func:`run_record` turns a finished run (:class:`~modelshield.gate.ci.CiRun`) into a
:class:`RunRecord`: when and where it ran (time, project, git commit, modelshield version,
the policy's digest, the verdict and exit code) and one :class:`ModelRecord` per model:

* a **model** is each file the scan reports in a model format (not documentation, pictures,
  data tables, programs or Python source: :data:`NOT_MODELS`), or a directory the scan
  recognised as a model repository (a Hugging Face, MLflow... layout: its files are one
  model), identified by its path relative to the project; results of the other pillars
  belong to the model whose path holds theirs, the rest (dependency files, the policy, the
  READMEs and scripts beside the models) to the project entry ``.``;
* its **digest**: SHA-256 of the file (files above the scan's ``max_file_bytes`` are not
  hashed: no digest), or for a directory the SHA-256 of its files' paths and digests;
* its **outcome** per pillar and overall (``pass``, ``fail``, ``incomplete``, ``error``, as
  the gate judged it: after the policy and the baseline), its finding counts by severity;
* the **fingerprints** of its findings (:mod:`modelshield.core.fingerprint`, as baselines use
  them), before the baseline, with how many the baseline accepted, so that new and fixed
  findings can be told between runs;
* the **assessment's metrics** when the assess pillar ran: name, group, value, the threshold
  the policy sets for it (if any) and whether its check passed.

Building the record reads no database: :mod:`modelshield.gate.governance` stores it.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import msgspec
from msgspec import Struct
from msgspec.structs import replace

from modelshield._version import __version__
from modelshield.core.findings import FileResult, Report, Severity
from modelshield.core.fingerprint import fingerprint
from modelshield.core.measurements import Assessment, Measurement
from modelshield.core.policy import ExitCode, Policy
from modelshield.scanner.registry import Format

OUTCOMES: tuple[str, ...] = ("pass", "incomplete", "error", "fail")
"""A pillar's or a model's outcome, from best to worst."""
VERDICTS = {ExitCode.OK: "pass", ExitCode.FINDINGS: "fail", ExitCode.ERROR: "error"}
"""The run's verdict by the gate's exit code."""
PROJECT_ENTRY = "."
"""The entry that holds what belongs to no model (dependency files, the policy file)."""
SEVERITIES: tuple[str, ...] = tuple(s.label for s in sorted(Severity, reverse=True))
"""Severity labels, worst first (``critical`` ... ``info``)."""


class FindingRecord(Struct, frozen=True):
    """The findings of one model with one fingerprint."""

    fingerprint: str
    """The fingerprint (as baselines match findings)."""
    count: int
    """Findings of the model with that fingerprint."""
    baselined: int
    """How many of them the baseline accepted."""
    rule_id: str
    """The rule."""
    severity: str
    """Severity label, as the policy ranks it."""
    title: str
    """What was found (the first finding's title)."""


class MetricRecord(Struct, frozen=True):
    """One figure of the assessment."""

    check: str
    """The check that measured it."""
    name: str
    """The figure (``accuracy``, ``ece``, ``dp_ratio``...)."""
    group: str
    """The rows it concerns (a group, a slice, a perturbation); empty: all rows."""
    value: float | None
    """The value (None: not computable)."""
    threshold: float | None
    """The policy's threshold for this figure, if it sets one."""
    passed: bool | None
    """Whether the check passed (no finding at or above ``fail_on``); None: it did not run."""


class ModelRecord(Struct, frozen=True):
    """One model in one run."""

    path: str
    """Relative to the project (POSIX); ``.`` for the project entry."""
    kind: str
    """``file``, ``directory`` or ``project``."""
    digest: str | None
    """SHA-256 of the content (see the module); None: not hashed."""
    outcome: str
    """The worst of its pillars' outcomes."""
    pillars: Mapping[str, str]
    """Outcome per pillar that reported on it."""
    counts: Mapping[str, int]
    """Findings by severity label, as the gate counted them (after the baseline)."""
    findings: tuple[FindingRecord, ...] = ()
    """Its findings by fingerprint, before the baseline."""
    metrics: tuple[MetricRecord, ...] = ()
    """The assessment's figures, when it assessed this model."""


class RunRecord(Struct, frozen=True):
    """One ``modelshield ci`` run."""

    run_id: str
    """A fresh UUID."""
    ts_us: int
    """When it finished, in microseconds since the epoch."""
    project: str
    """The project's name (``[governance] project``, else its directory's name)."""
    git_commit: str | None
    """The commit checked out, when the project is in a git work tree."""
    version: str
    """The modelshield version."""
    policy_digest: str
    """SHA-256 of the policy's settings (not of the file's layout or comments)."""
    verdict: str
    """``pass``, ``fail`` or ``error``: the gate's verdict."""
    exit_code: int
    """The process's exit code (0 with ``--exit-zero`` and findings)."""
    pillars: tuple[str, ...]
    """The pillars that ran."""
    duration_s: float
    """How long the run took."""
    models: tuple[ModelRecord, ...]
    """One entry per model, and the project entry when something belongs to no model."""


def run_record(
    report: Report,
    unbaselined: Report,
    policy: Policy,
    *,
    root: str,
    pillars: Sequence[str],
    exit_code: int,
    project: str | None = None,
    now: float | None = None,
) -> RunRecord:
    """The record of a finished run: ``report`` as the gate judged it (policy and baseline
    applied, paths relative to ``root``), ``unbaselined`` the same before the baseline."""
    groups = _group(unbaselined, report, root)
    final_counts = Counter(
        (model, fingerprint(f, root))
        for model, (_kind, _before, after) in groups.items()
        for r in after
        for f in r.findings
    )
    models = []
    for path, (kind, results, final) in sorted(groups.items()):
        found: dict[str, list[tuple[str, str, str]]] = {}
        for r in results:
            for f in r.findings:
                found.setdefault(fingerprint(f, root), []).append(
                    (f.rule_id, f.severity.label, f.title)
                )
        records = tuple(
            FindingRecord(
                fingerprint=digest,
                count=len(items),
                baselined=max(0, len(items) - final_counts.get((path, digest), 0)),
                rule_id=items[0][0],
                severity=items[0][1],
                title=items[0][2],
            )
            for digest, items in sorted(found.items())
        )
        by_pillar: dict[str, list[FileResult]] = {}
        for r in final:
            by_pillar.setdefault(r.pillar or report.tool, []).append(r)
        outcomes = {p: outcome(rs, policy) for p, rs in sorted(by_pillar.items())}
        counts = Counter(f.severity.label for r in final for f in r.findings)
        models.append(
            ModelRecord(
                path=path,
                kind=kind,
                digest=_digest(root, path, kind, results, policy),
                outcome=worst(outcomes.values()),
                pillars=outcomes,
                counts={s: counts.get(s, 0) for s in SEVERITIES},
                findings=records,
            )
        )
    models = _with_metrics(models, report, policy)
    code = policy.exit_code(report)
    return RunRecord(
        run_id=str(uuid.uuid4()),
        ts_us=int((time.time() if now is None else now) * 1_000_000),
        project=project or os.path.basename(os.path.normpath(root)) or root,  # noqa: PTH119
        git_commit=git_commit(root),
        version=__version__,
        policy_digest=policy_digest(policy),
        verdict=VERDICTS[code],
        exit_code=int(exit_code),
        pillars=tuple(pillars),
        duration_s=report.duration_s,
        models=tuple(models),
    )


def outcome(results: Iterable[FileResult], policy: Policy) -> str:
    """A pillar's outcome over its results, as the gate's exit code ranks them: ``fail``
    (a finding at or above ``fail_on``), else ``error``, else ``incomplete`` (a part not
    analysed and not accepted), else ``pass``."""
    results = list(results)
    if any(f.severity >= policy.fail_on for r in results for f in r.findings):
        return "fail"
    if any(r.errors for r in results):
        return "error"
    if any(r.unaccepted_gaps for r in results):
        return "incomplete"
    return "pass"


def worst(outcomes: Iterable[str]) -> str:
    """The worst of several outcomes (``pass`` for none)."""
    return max(outcomes, key=OUTCOMES.index, default="pass")


def policy_digest(policy: Policy) -> str:
    """SHA-256 of the policy's settings, independent of where the file is."""
    settings = replace(policy, root=None, file=None)
    return hashlib.sha256(msgspec.json.encode(settings, order="deterministic")).hexdigest()


def git_commit(root: str) -> str | None:
    """The commit checked out in the git work tree holding ``root``, read from ``.git``
    (``HEAD``, the branch's ref file or ``packed-refs``) without running git; None when
    there is none or it is not that simple (then nothing is guessed)."""
    folder = os.path.abspath(root)  # noqa: PTH100
    while True:
        dot_git = os.path.join(folder, ".git")  # noqa: PTH118
        if os.path.exists(dot_git):  # noqa: PTH110
            return _head(dot_git)
        parent = os.path.dirname(folder)  # noqa: PTH120
        if parent == folder:
            return None
        folder = parent


def _head(dot_git: str) -> str | None:
    git_dir = dot_git
    if os.path.isfile(dot_git):  # noqa: PTH113 (a worktree or submodule: "gitdir: PATH")
        text = _small(dot_git)
        if text is None or not text.startswith("gitdir:"):
            return None
        git_dir = os.path.join(os.path.dirname(dot_git), text[7:].strip())  # noqa: PTH118, PTH120
    head = _small(os.path.join(git_dir, "HEAD"))  # noqa: PTH118
    if head is None:
        return None
    if not head.startswith("ref:"):
        return head if _is_sha(head) else None
    ref = head[4:].strip()
    if not ref.startswith("refs/") or ".." in ref:
        return None
    common = git_dir
    shared = _small(os.path.join(git_dir, "commondir"))  # noqa: PTH118 (a linked worktree)
    if shared is not None:
        common = os.path.join(git_dir, shared)  # noqa: PTH118
    for base in dict.fromkeys((git_dir, common)):
        value = _small(os.path.join(base, *ref.split("/")))  # noqa: PTH118
        if value is not None:
            return value if _is_sha(value) else None
    packed = _small(os.path.join(common, "packed-refs"), limit=4 * 1024 * 1024)  # noqa: PTH118
    for line in (packed or "").splitlines():
        sha, _, name = line.partition(" ")
        if name.strip() == ref and _is_sha(sha):
            return sha
    return None  # a branch with no commit yet


def _small(path: str, limit: int = 4096) -> str | None:
    try:
        with open(path, "rb") as fh:  # noqa: PTH123
            data = fh.read(limit + 1)
    except OSError:
        return None
    if len(data) > limit:
        return None
    return data.decode("utf-8", "replace").strip()


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


# ---- models -----------------------------------------------------------------------------------

Group = tuple[str, list[FileResult], list[FileResult]]
"""A model's kind, its results before the baseline, and after it."""


def _posix(path: str) -> str:
    path = path.replace(os.sep, "/")
    while path.startswith("./"):
        path = path[2:]
    return path or PROJECT_ENTRY


NOT_MODELS = frozenset(
    f.value
    for f in (
        Format.TEXT,
        Format.IMAGE,
        Format.PDF,
        Format.DATA,
        Format.EXECUTABLE,
        Format.EMPTY,
        Format.PYTHON,
        Format.PTH,
    )
)
"""Formats of the scan's files that are not models on their own (see the module)."""


def _group(unbaselined: Report, report: Report, root: str) -> dict[str, Group]:
    """Results by model (see the module); the two reports hold the same results in order."""
    directories = sorted(
        {_posix(repo.path) for repo in unbaselined.repositories if repo.layouts},
        key=len,
        reverse=True,
    )
    models: dict[str, str] = {}
    for r in unbaselined.results:
        if r.pillar != "scan":
            continue
        path = _posix(r.path)
        home = next((d for d in directories if _inside(path, d)), None)
        if home is not None:
            models[home] = "directory"
        elif r.format not in NOT_MODELS:
            models[path] = "file"
    ordered = sorted(models, key=len, reverse=True)
    groups: dict[str, Group] = {}
    for before, after in zip(unbaselined.results, report.results, strict=True):
        path = _posix(before.path)
        home = next((m for m in ordered if _inside(path, m)), None)
        key = home or PROJECT_ENTRY
        kind = models.get(key, "project")
        group = groups.setdefault(key, (kind, [], []))
        group[1].append(before)
        group[2].append(after)
    return groups


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _digest(
    root: str, path: str, kind: str, results: Sequence[FileResult], policy: Policy
) -> str | None:
    if kind == "project":
        return None
    if kind == "file":
        return _file_digest(_absolute(root, path), policy.limits.max_file_bytes)
    lines = []
    for r in results:
        if r.pillar != "scan":
            continue
        digest = _file_digest(_absolute(root, r.path), policy.limits.max_file_bytes)
        lines.append(f"{_posix(r.path)}\x00{digest or '-'}\n")
    return hashlib.sha256("".join(sorted(lines)).encode("utf-8", "surrogatepass")).hexdigest()


def _absolute(root: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(root, path)  # noqa: PTH117, PTH118


def _file_digest(path: str, limit: int) -> str | None:
    from modelshield.integrity.hashing import sha256_file

    try:
        if os.path.getsize(path) > limit:  # noqa: PTH202 (the scan did not read it either)
            return None
        return sha256_file(path)
    except Exception:  # a file gone, unreadable or not regular: no digest, never a crash
        return None


# ---- the assessment ---------------------------------------------------------------------------


def _with_metrics(models: list[ModelRecord], report: Report, policy: Policy) -> list[ModelRecord]:
    info = report.assessment
    if info is None:
        return models
    path = _posix(info.model)
    failing = {
        f.evidence.get("check")
        for r in report.results
        if r.pillar == "assess"
        for f in r.findings
        if f.severity >= policy.fail_on
    }
    metrics = tuple(_metric(m, info, policy, failing) for m in info.measurements)
    home = next(
        (i for i, m in enumerate(models) if _inside(path, m.path) and m.kind != "project"), None
    )
    if home is None:
        assessed = "fail" if failing else "pass"
        models.append(
            ModelRecord(
                path=path,
                kind="file",
                digest=None,
                outcome=assessed,
                pillars={"assess": assessed},
                counts=dict.fromkeys(SEVERITIES, 0),
                metrics=metrics,
            )
        )
        return sorted(models, key=lambda m: m.path)
    models[home] = replace(models[home], metrics=models[home].metrics + metrics)
    return models


def _metric(
    m: Measurement, info: Assessment, policy: Policy, failing: set[str | None]
) -> MetricRecord:
    ran = {c.check: c.status for c in info.checks}
    passed = None if ran.get(m.check, "ran") != "ran" else m.check not in failing
    return MetricRecord(
        check=m.check,
        name=m.name,
        group=m.group,
        value=m.value,
        threshold=threshold(m, policy),
        passed=passed,
    )


_THRESHOLDS = {
    ("calibration", "ece"): "max_ece",
    ("robustness", "flip_rate"): "max_flip_rate",
    ("membership", "attack_auc"): "max_membership_auc",
    ("extraction", "agreement"): "max_extraction_agreement",
    ("evasion", "success_rate"): "max_evasion_success",
    ("fairness", "dp_ratio"): "min_dp_ratio",
    ("fairness", "dp_difference"): "max_dp_difference",
    ("fairness", "eo_difference"): "max_eo_difference",
}


def threshold(m: Measurement, policy: Policy) -> float | None:
    """The policy's threshold for a figure: ``[assess] min_metric``/``max_metric`` for the
    performance metrics, the check's own setting for the figures a check judges."""
    settings = policy.assess
    if m.check == "performance" and not m.group:
        value = settings.min_metric.get(m.name, settings.max_metric.get(m.name))
        return None if value is None else float(value)
    key = _THRESHOLDS.get((m.check, m.name))
    return None if key is None else float(getattr(settings, key))
