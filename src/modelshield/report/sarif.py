"""SARIF 2.1.0 output, for code-scanning dashboards (GitHub code scanning and others).

Mapping from modelshield's model:

* every rule that has a finding becomes a ``reportingDescriptor`` (help from the rule's
  *what* and *why*, ``properties.security-severity`` as a CVSS-like score);
* a finding becomes a ``result`` whose physical location is the file, with a URI relative to
  ``%SRCROOT%`` (the project: the working directory, or the directory ``modelshield ci`` ran
  on, named in ``originalUriBaseIds``) and always a ``region`` with a ``startLine``, so that
  GitHub code scanning places every alert: the line the evidence names in a text file
  (requirements, YAML, templates, Python...), else line 1, with the byte offset kept in the
  result's properties (``byteOffset``);
* a finding inside an archive member is placed on the archive file (line 1), and names the
  member in its message, its properties (``member``, ``members``, ``memberOffset``,
  ``memberLine``) and a logical location, e.g. ``model.pt/archive/data.pkl``;
* ``partialFingerprints`` carry the finding's fingerprint (:mod:`modelshield.core.fingerprint`:
  rule, relative path, members and the evidence that says what was found, never its line) and
  its occurrence number;
* an error record becomes a ``toolExecutionNotification`` and marks the invocation as not
  fully successful, because the file was not analysed in full.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from modelshield.core.evidence import column_of, line_of, typed
from modelshield.core.findings import ErrorRecord, Finding, Gap, Location, Report, Severity
from modelshield.core.fingerprint import FINGERPRINT_VERSION, with_occurrences
from modelshield.core.fingerprint import fingerprint as core_fingerprint
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

FINGERPRINT_KEY = f"modelshieldFinding/{FINGERPRINT_VERSION}"
"""Name of the partial fingerprint: ``DIGEST:N``, the finding's fingerprint and its occurrence
number, stable across runs for the same finding in the same file."""

_WORD = re.compile(r"[A-Z0-9]+")


def render(
    report: Report,
    *,
    policy: Policy,
    rules: Mapping[str, Rule] | None = None,
    root: str | None = None,
) -> str:
    """The SARIF log as indented JSON text ending with a newline."""
    return jsontext.dumps(to_dict(report, policy=policy, rules=rules, root=root)) + "\n"


def to_dict(
    report: Report,
    *,
    policy: Policy,
    rules: Mapping[str, Rule] | None = None,
    root: str | None = None,
) -> dict[str, Any]:
    """The SARIF log as plain data.

    ``rules`` describes rule ids; by default the registered catalogue is used. A rule id found
    in neither is still described, from its first finding's title. ``root`` is the project
    directory (``%SRCROOT%``) URIs are relative to; by default the working directory.
    """
    root = os.path.abspath(root) if root is not None else os.getcwd()  # noqa: PTH100, PTH109
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
        uri = artifact_uri(result.path, root)
        if uri not in artifacts:
            artifacts[uri] = len(artifact_list)
            artifact_list.append(
                {
                    "location": _artifact_location(result.path, root),
                    "length": result.size,
                    "roles": ["analysisTarget"],
                }
            )
    pillars = {id(f): r.pillar or report.tool for r in report.results for f in r.findings}

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
                    *(_notification(e, artifacts, root) for e in report.errors),
                    *(
                        _gap_notification(g, artifacts, root)
                        for r in report.results
                        for g in r.unaccepted_gaps
                    ),
                ],
            }
        ],
        "originalUriBaseIds": {
            "%SRCROOT%": {
                "uri": _directory_uri(root),
                "description": {"text": "The project the paths are relative to."},
            }
        },
        "artifacts": artifact_list,
        "results": [
            _result(f, index[f.rule_id], artifacts, root, digest, n, pillars[id(f)])
            for f, digest, n in with_occurrences(findings, root)
        ],
        "columnKind": "unicodeCodePoints",
        "properties": {
            "command": report.tool,
            "failOn": policy.fail_on.label,
            "suppressed": report.suppressed,
            "baselined": report.baselined,
        },
    }
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def _directory_uri(root: str) -> str:
    uri = Path(root).as_uri() if os.name == "nt" else "file://" + _quote(root)
    return uri if uri.endswith("/") else uri + "/"


def artifact_uri(path: str, root: str | None = None) -> str:
    """A URI reference for a report's path, relative to ``root`` (the project, by default the
    working directory) with forward slashes when the path is inside it.

    A relative path is relative to ``root`` already; an absolute one is made relative to it.
    Other paths become ``file://`` URIs. Bytes that are not allowed in a URI are
    percent-encoded (file names come from the file system and may hold anything).
    """
    # Every finding asks for its file's URI (three times): computed once per path and root.
    return _artifact_uri(path, os.getcwd() if root is None else root)  # noqa: PTH109


@functools.lru_cache(maxsize=4096)
def _artifact_uri(path: str, root: str) -> str:
    p = path
    absolute = p if Path(p).is_absolute() else os.path.join(root, p)  # noqa: PTH118
    rel = os.path.relpath(os.path.normpath(absolute), root)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        full = os.path.normpath(absolute)
        return Path(full).as_uri() if os.name == "nt" else "file://" + _quote(full)
    p = rel
    if os.sep != "/":
        p = p.replace(os.sep, "/")
    return _quote(p)


def _quote(path: str) -> str:
    # os.fsencode restores the original bytes of undecodable names (surrogateescape).
    return quote(os.fsencode(path), safe="/")


def _artifact_location(path: str, root: str) -> dict[str, Any]:
    uri = artifact_uri(path, root)
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


def _locations(
    location: Location,
    artifacts: Mapping[str, int],
    root: str,
    evidence: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One location: the file with a region GitHub can place (its ``startLine``: the line the
    evidence names in the file itself, else 1), the member as a logical location, and what
    a region cannot say (byte offsets, members' lines) in its properties."""
    physical: dict[str, Any] = {"artifactLocation": _artifact_location(location.path, root)}
    index = artifacts.get(artifact_uri(location.path, root))
    if index is not None:
        physical["artifactLocation"]["index"] = index
    line = line_of(evidence or {})
    column = column_of(evidence or {})
    region: dict[str, Any] = {"startLine": 1}
    properties: dict[str, Any] = {}
    if location.members:
        # The offset and the line are in the member's (possibly inflated) bytes.
        properties["member"] = "/".join(location.members)
        properties["members"] = list(location.members)
        if location.offset is not None:
            properties["memberOffset"] = location.offset
        if line is not None:
            properties["memberLine"] = line
    else:
        if line is not None:
            region = {"startLine": line}
            if column is not None:
                region["startColumn"] = column
        if location.offset is not None:
            properties["byteOffset"] = location.offset
    physical["region"] = region
    loc: dict[str, Any] = {"physicalLocation": physical}
    if location.members:
        logical: dict[str, Any] = {
            "name": location.members[-1],
            "fullyQualifiedName": "/".join((artifact_uri(location.path, root), *location.members)),
            "kind": "resource",
        }
        loc["logicalLocations"] = [logical]
    if properties:
        loc["properties"] = properties
    return [loc]


def _result(
    finding: Finding,
    rule_index: int,
    artifacts: Mapping[str, int],
    root: str,
    digest: str,
    occurrence: int,
    pillar: str,
) -> dict[str, Any]:
    text = f"{finding.title}: {finding.message}"
    if finding.location.members:
        text += f" (in archive member {' › '.join(finding.location.members)})"
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": LEVEL[finding.severity],
        "message": {"text": text},
        "locations": _locations(finding.location, artifacts, root, finding.evidence),
        "partialFingerprints": {FINGERPRINT_KEY: f"{digest}:{occurrence}"},
        "properties": {
            "severity": finding.severity.label,
            "security-severity": SECURITY_SEVERITY[finding.severity],
            "pillar": pillar,
            "evidence": typed(finding.evidence),
        },
    }


def fingerprint(finding: Finding, root: str | None = None) -> str:
    """The finding's fingerprint (:func:`modelshield.core.fingerprint.fingerprint`)."""
    return core_fingerprint(finding, root)


def _gap_notification(gap: Gap, artifacts: Mapping[str, int], root: str) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {"text": f"Not analysed ({gap.rule_id}): {gap.message}"},
        "locations": _locations(gap.location, artifacts, root),
        "descriptor": {"id": gap.rule_id},
    }


def _notification(error: ErrorRecord, artifacts: Mapping[str, int], root: str) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {"text": error.message},
        "locations": _locations(error.location, artifacts, root),
        "descriptor": {"id": error.stage},
    }
