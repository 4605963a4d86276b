"""The JSON report: a stable, versioned document for scripts and CI.

The layout is described by ``schema/report.schema.json`` (shipped with the package) and
documented in ``docs/json-output.md``. Keys always come in the same order and mappings
(evidence, metadata) are sorted, so two runs over the same files differ only in durations.

Compatibility: ``schema_version`` is ``MAJOR.MINOR``. Adding a key bumps the minor version;
removing or changing the meaning of one bumps the major version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from modelshield.core.evidence import typed
from modelshield.core.findings import (
    ErrorRecord,
    Excluded,
    FileResult,
    Finding,
    Gap,
    Location,
    Report,
    Repository,
    Role,
    Severity,
)
from modelshield.core.fingerprint import with_occurrences
from modelshield.core.measurements import Assessment
from modelshield.core.policy import ExitCode, Policy
from modelshield.report import jsontext

SCHEMA_VERSION = "2.0"
"""Version of the document layout (not of modelshield)."""

TOOL_NAME = "modelshield"
"""The ``tool`` value of every document."""

_ROLES: tuple[Role, ...] = ("executable", "code", "inert", "not-analysed")

_OUTCOME = {ExitCode.OK: "pass", ExitCode.FINDINGS: "fail", ExitCode.ERROR: "error"}


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that every document this module writes validates against."""
    from importlib import resources  # only schema readers need it; rendering does not

    text = (
        resources.files("modelshield.report")
        .joinpath("schema/report.schema.json")
        .read_text(encoding="utf-8")
    )
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def to_dict(report: Report, *, policy: Policy, root: str | None = None) -> dict[str, Any]:
    """The report as plain JSON-compatible data, keys in their documented order.

    ``root`` is the project directory fingerprints make paths relative to (None: the working
    directory, as in SARIF).
    """
    exit_code = policy.exit_code(report)
    base = root if root is not None else os.getcwd()  # noqa: PTH109 (a str)
    prints = {id(f): f"{d}:{n}" for f, d, n in with_occurrences(report.findings, base)}
    counts = report.count_by_severity()
    worst = report.max_severity
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": TOOL_NAME,
        "version": report.version,
        "command": report.tool,
        "fail_on": policy.fail_on.label,
        "exit_code": int(exit_code),
        "outcome": _OUTCOME[exit_code],
        "summary": {
            "files": len(report.results),
            "findings": sum(counts.values()),
            "by_severity": {s.label: counts[s] for s in sorted(Severity, reverse=True)},
            "max_severity": None if worst is None else worst.label,
            "errors": len(report.errors),
            "not_fully_analysed": len(report.unfinished),
            "suppressed": report.suppressed,
            "baselined": report.baselined,
            "excluded": report.excluded_total,
            "duration_s": _seconds(report.duration_s),
        },
        "results": [_result(r, report.tool, prints) for r in report.results],
        "repositories": [_repository(r) for r in report.repositories],
        "excluded": [_excluded(e) for e in report.excluded],
    }
    if report.assessment is not None:
        document["assessment"] = _assessment(report.assessment)
    return document


def render(report: Report, *, policy: Policy, root: str | None = None) -> str:
    """The JSON document as text (two-space indent, ending with a newline).

    Non-ASCII characters are written as ``\\u`` escapes: file names and strings taken from
    hostile files may hold lone surrogates or control characters, and escaping keeps the
    output valid UTF-8 JSON whatever they contain.
    """
    return jsontext.dumps(to_dict(report, policy=policy, root=root)) + "\n"


def _assessment(info: Assessment) -> dict[str, Any]:
    return {
        "model": info.model,
        "model_kind": info.model_kind,
        "loader": info.loader,
        "scanned": info.scanned,
        "trusted": info.trusted,
        "data": info.data,
        "rows": info.rows,
        "rows_total": info.rows_total,
        "target": info.target,
        "task": info.task,
        "classes": list(info.classes),
        "positive_class": info.positive_class,
        "sensitive": list(info.sensitive),
        "columns": [{"name": k, "kind": v} for k, v in info.columns.items()],
        "seed": info.seed,
        "queries": {
            "calls": info.total_calls,
            "rows": info.total_rows,
            "by_check": [
                {"check": q.check, "calls": q.calls, "rows": q.rows, "seconds": _seconds(q.seconds)}
                for q in info.queries
            ],
        },
        "checks": [{"check": c.check, "status": c.status, "detail": c.detail} for c in info.checks],
        "measurements": [
            {
                "check": m.check,
                "name": m.name,
                "group": m.group,
                "value": m.value,
                "low": m.low,
                "high": m.high,
                "n": m.n,
            }
            for m in info.measurements
        ],
        "curves": [
            {
                "check": c.check,
                "name": c.name,
                "series": c.series,
                "x_label": c.x_label,
                "y_label": c.y_label,
                "x": list(c.x),
                "y": list(c.y),
            }
            for c in info.curves
        ],
    }


def _result(result: FileResult, tool: str, prints: Mapping[int, str]) -> dict[str, Any]:
    worst = result.max_severity
    return {
        "path": result.path,
        "pillar": result.pillar or tool,
        "format": result.format,
        "formats_seen": list(result.formats_seen),
        "status": result.status,
        "max_severity": None if worst is None else worst.label,
        "size": result.size,
        "bytes_read": result.bytes_read,
        "duration_s": _seconds(result.duration_s),
        "imports": list(result.imports),
        "metadata": _sorted_map(result.metadata),
        "findings": [_finding(f, prints[id(f)]) for f in result.findings],
        "errors": [_error(e) for e in result.errors],
        "gaps": [_gap(g) for g in result.gaps],
    }


def _repository(repository: Repository) -> dict[str, Any]:
    return {
        "path": repository.path,
        "layouts": list(repository.layouts),
        "roles": {role: len(repository.with_role(role)) for role in _ROLES},
        "files": [{"path": f.path, "role": f.role, "reason": f.reason} for f in repository.files],
    }


def _finding(finding: Finding, fingerprint: str) -> dict[str, Any]:
    return {
        "rule_id": finding.rule_id,
        "severity": finding.severity.label,
        "title": finding.title,
        "message": finding.message,
        "location": _location(finding.location),
        "evidence": typed(finding.evidence),
        "fingerprint": fingerprint,
    }


def _excluded(excluded: Excluded) -> dict[str, Any]:
    return {"path": excluded.path, "reason": excluded.reason, "pattern": excluded.pattern}


def _error(error: ErrorRecord) -> dict[str, Any]:
    return {
        "stage": error.stage,
        "message": error.message,
        "location": _location(error.location),
    }


def _gap(gap: Gap) -> dict[str, Any]:
    return {
        "rule_id": gap.rule_id,
        "message": gap.message,
        "location": _location(gap.location),
        "accepted": gap.accepted,
    }


def _location(location: Location) -> dict[str, Any]:
    return {
        "path": location.path,
        "members": list(location.members),
        "offset": location.offset,
    }


def _sorted_map(mapping: Mapping[str, str]) -> dict[str, str]:
    return {str(k): str(mapping[k]) for k in sorted(mapping)}


def _seconds(value: float) -> float:
    # Microseconds are plenty, and rounding keeps documents free of float noise.
    return round(value, 6)
