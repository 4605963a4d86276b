"""SARIF 2.1.0 output, for code-scanning dashboards (GitHub code scanning and others).

Mapping from modelshield's model:

* every rule that has a finding becomes a ``reportingDescriptor`` (help from the rule's
  *what* and *why*, ``properties.security-severity`` as a CVSS-like score);
* a finding becomes a ``result`` whose physical location is the scanned file (a byte region
  only when the offset is in the file itself) and whose logical location names the archive
  member, e.g. ``model.pt/archive/data.pkl``;
* an error record becomes a ``toolExecutionNotification`` and marks the invocation as not
  fully successful, because the file was not analysed in full.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from modelshield.core.findings import ErrorRecord, Finding, Gap, Location, Report, Severity
from modelshield.core.policy import Policy
from modelshield.core.rules import Rule, get_rule
from modelshield.report import jsontext

SARIF_VERSION = "2.1.0"
"""The SARIF version written."""

SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
"""The official OASIS schema the output conforms to."""

SECURITY_SEVERITY: Mapping[Severity, str] = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
"""CVSS-like scores that dashboards use to rank security results (GitHub's bands: >= 9.0
critical, >= 7.0 high, >= 4.0 medium, > 0 low)."""

LEVEL: Mapping[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
"""SARIF ``level`` for each severity."""

FINGERPRINT_KEY = "modelshieldFinding/v1"
"""Name of the partial fingerprint: stable across runs for the same finding in the same file."""

_WORD = re.compile(r"[A-Z0-9]+")


def render(report: Report, *, policy: Policy, rules: Mapping[str, Rule] | None = None) -> str:
    """The SARIF log as indented JSON text ending with a newline."""
    return jsontext.dumps(to_dict(report, policy=policy, rules=rules)) + "\n"


def to_dict(
    report: Report, *, policy: Policy, rules: Mapping[str, Rule] | None = None
) -> dict[str, Any]:
    """The SARIF log as plain data.

    ``rules`` describes rule ids; by default the registered catalogue is used. A rule id found
    in neither is still described, from its first finding's title.
    """
    findings = report.findings
    rule_ids = sorted({f.rule_id for f in findings})
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    first: dict[str, Finding] = {}
    for f in findings:
        first.setdefault(f.rule_id, f)
    descriptors = [_descriptor(rid, _lookup(rid, rules), first[rid]) for rid in rule_ids]

    artifacts: dict[str, int] = {}
    artifact_list: list[dict[str, Any]] = []
    for result in report.results:
        uri = artifact_uri(result.path)
        if uri not in artifacts:
            artifacts[uri] = len(artifact_list)
            artifact_list.append(
                {
                    "location": _artifact_location(result.path),
                    "length": result.size,
                    "roles": ["analysisTarget"],
                }
            )

    exit_code = policy.exit_code(report)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "modelshield",
                "version": report.version,
                "semanticVersion": report.version,
                "rules": descriptors,
            }
        },
        "invocations": [
            {
                "executionSuccessful": not report.unfinished,
                "exitCode": int(exit_code),
                "exitCodeDescription": exit_code.name,
                "toolExecutionNotifications": [
                    *(_notification(e, artifacts) for e in report.errors),
                    *(
                        _gap_notification(g, artifacts)
                        for r in report.results
                        for g in r.unaccepted_gaps
                    ),
                ],
            }
        ],
        "artifacts": artifact_list,
        "results": [_result(f, index[f.rule_id], artifacts) for f in findings],
        "columnKind": "unicodeCodePoints",
        "properties": {
            "command": report.tool,
            "failOn": policy.fail_on.label,
            "suppressed": report.suppressed,
        },
    }
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def artifact_uri(path: str) -> str:
    """A URI reference for a scanned path: relative with forward slashes when possible.

    Absolute paths under the current directory are made relative to it; other absolute paths
    become ``file://`` URIs. Bytes that are not allowed in a URI are percent-encoded (file
    names come from the file system and may hold anything).
    """
    # Every finding asks for its file's URI (three times): computed once per path and
    # working directory.
    return _artifact_uri(path, os.getcwd())  # noqa: PTH109 (a str, cheaply)


@functools.lru_cache(maxsize=4096)
def _artifact_uri(path: str, cwd: str) -> str:
    p = path
    if Path(p).is_absolute():
        rel = os.path.relpath(p, cwd)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            return Path(p).as_uri() if os.name == "nt" else "file://" + _quote(p)
        p = rel
    if os.sep != "/":
        p = p.replace(os.sep, "/")
    while p.startswith("./"):
        p = p[2:]
    return _quote(p)


def _quote(path: str) -> str:
    # os.fsencode restores the original bytes of undecodable names (surrogateescape).
    return quote(os.fsencode(path), safe="/")


def _artifact_location(path: str) -> dict[str, Any]:
    uri = artifact_uri(path)
    if uri.startswith("file:"):
        return {"uri": uri}
    return {"uri": uri, "uriBaseId": "%SRCROOT%"}


def _lookup(rule_id: str, rules: Mapping[str, Rule] | None) -> Rule | None:
    if rules is not None:
        return rules.get(rule_id)
    try:
        return get_rule(rule_id)
    except KeyError:
        return None


def _descriptor(rule_id: str, rule: Rule | None, example: Finding) -> dict[str, Any]:
    severity = example.severity if rule is None else rule.severity
    descriptor: dict[str, Any] = {
        "id": rule_id,
        "name": "".join(w.capitalize() for w in _WORD.findall(rule_id)),
        "shortDescription": {"text": example.title if rule is None else rule.title},
    }
    if rule is not None:
        descriptor["fullDescription"] = {"text": rule.what}
        descriptor["help"] = {"text": _help_text(rule), "markdown": _help_markdown(rule)}
    descriptor["defaultConfiguration"] = {"level": LEVEL[severity]}
    tags = ["security"] if rule is None else ["security", rule.pillar]
    descriptor["properties"] = {
        "security-severity": SECURITY_SEVERITY[severity],
        "severity": severity.label,
        "tags": tags,
    }
    return descriptor


def _help_text(rule: Rule) -> str:
    parts = [f"What it does: {rule.what}", f"Why is this bad? {rule.why}"]
    if rule.example:
        parts.append(f"Example: {rule.example}")
    if rule.references:
        parts.append("References: " + ", ".join(rule.references))
    return "\n\n".join(parts)


def _help_markdown(rule: Rule) -> str:
    parts = [f"**What it does**\n\n{rule.what}", f"**Why is this bad?**\n\n{rule.why}"]
    if rule.example:
        parts.append(f"**Example**\n\n```text\n{rule.example}\n```")
    if rule.references:
        parts.append("**References**\n\n" + "\n".join(f"- {r}" for r in rule.references))
    return "\n\n".join(parts)


def _locations(location: Location, artifacts: Mapping[str, int]) -> list[dict[str, Any]]:
    physical: dict[str, Any] = {"artifactLocation": _artifact_location(location.path)}
    index = artifacts.get(artifact_uri(location.path))
    if index is not None:
        physical["artifactLocation"]["index"] = index
    # A byte region is only meaningful in the file itself; inside a member the offset is
    # relative to the member's (possibly inflated) bytes and goes with the logical location.
    if not location.members and location.offset is not None:
        physical["region"] = {"byteOffset": location.offset}
    loc: dict[str, Any] = {"physicalLocation": physical}
    if location.members:
        logical: dict[str, Any] = {
            "name": location.members[-1],
            "fullyQualifiedName": "/".join((artifact_uri(location.path), *location.members)),
            "kind": "resource",
        }
        loc["logicalLocations"] = [logical]
        if location.offset is not None:
            loc["properties"] = {"memberOffset": location.offset}
    return [loc]


def _result(finding: Finding, rule_index: int, artifacts: Mapping[str, int]) -> dict[str, Any]:
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": LEVEL[finding.severity],
        "message": {"text": f"{finding.title}: {finding.message}"},
        "locations": _locations(finding.location, artifacts),
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(finding)},
        "properties": {
            "severity": finding.severity.label,
            "security-severity": SECURITY_SEVERITY[finding.severity],
            "evidence": {k: finding.evidence[k] for k in sorted(finding.evidence)},
        },
    }


def fingerprint(finding: Finding) -> str:
    """A stable digest of what identifies a finding: rule, file, members and evidence.

    The offset and the message are left out so that a finding keeps its identity when a
    file is re-saved with the same content in another order or the wording improves.
    """
    parts = [finding.rule_id, artifact_uri(finding.location.path), *finding.location.members]
    parts += [f"{k}={finding.evidence[k]}" for k in sorted(finding.evidence)]
    data = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def _gap_notification(gap: Gap, artifacts: Mapping[str, int]) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {"text": f"Not analysed ({gap.rule_id}): {gap.message}"},
        "locations": _locations(gap.location, artifacts),
        "descriptor": {"id": gap.rule_id},
    }


def _notification(error: ErrorRecord, artifacts: Mapping[str, int]) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {"text": error.message},
        "locations": _locations(error.location, artifacts),
        "descriptor": {"id": error.stage},
    }
