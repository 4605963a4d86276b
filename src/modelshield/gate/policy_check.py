"""The policy's own findings: entries that match nothing, and advisory ignores past their
expiry date. Each points at the entry's line in the policy file.

Whether an entry matches nothing is only known after a run over the whole project with every
pillar the entry concerns, which is what ``modelshield ci`` does: a ``scan`` of one file says
nothing about a suppression written for another. An entry is judged only when the pillar of
its rule ran (every pillar for ``*``); an entry naming a rule no pillar has is reported
whatever ran. Rule ids listed in the top-level ``ignore`` switch a rule off everywhere and are
a standing decision, not stale when the rule is quiet; advisory ids in it are judged like
``[[audit.ignore]]`` entries.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from modelshield.core.findings import FileResult, Finding, Gap, Location, Report
from modelshield.core.policy import Policy, Suppression, VulnerabilityIgnore
from modelshield.core.tomlpos import key_line, parse_path, quoted_line
from modelshield.gate.rules import IGNORE_EXPIRED, UNUSED_ENTRY

POLICY_FORMAT = "modelshield-policy"
"""The ``format`` of the policy file's result."""

IGNORED_ADVISORIES = "ignored_advisories"
"""The metadata key of an audit result naming the advisory ignores that matched in it."""


def policy_result(policy: Policy, findings: Iterable[Finding]) -> FileResult | None:
    """The policy file's result holding ``findings`` (None when there are none)."""
    found = tuple(findings)
    if not found or policy.file is None:
        return None
    try:
        size = Path(policy.file).stat().st_size
    except OSError:
        size = 0
    return FileResult(policy.file, POLICY_FORMAT, findings=found, size=size, pillar="gate")


def expired_ignores(policy: Policy, today: datetime.date) -> FileResult | None:
    """A result for the policy file with a finding per ``[[audit.ignore]]`` entry that has
    expired on ``today`` (None when none has)."""
    text = _policy_text(policy)
    findings = []
    for index, entry in enumerate(policy.audit.ignore):
        if entry.active(today):
            continue
        line = _entry_line(policy, text, "audit.ignore", index, entry.id)
        findings.append(
            IGNORE_EXPIRED.finding(
                _where(policy),
                f"The policy ignored {entry.id} until {entry.expires} ({entry.reason!r}); the "
                "entry has expired, so the advisory is audited and reported again. Review it: "
                "remove the entry once the dependency is upgraded, or set a new expiry date "
                "with the reason it still holds.",
                title=f"The ignore of {entry.id} expired on {entry.expires}",
                evidence={
                    "advisory": entry.id,
                    "expires": str(entry.expires),
                    "reason": entry.reason,
                    "entry": f"audit.ignore[{index}]",
                    "line": str(line),
                },
            )
        )
    return policy_result(policy, findings)


def unused_entries(
    policy: Policy,
    raw: Report,
    *,
    pillars: Collection[str],
    rule_pillars: Mapping[str, str],
    today: datetime.date,
) -> list[Finding]:
    """Findings for the policy's entries that matched nothing in ``raw`` (the merged report
    before the policy was applied) among the ``pillars`` that ran; ``rule_pillars`` maps
    every known rule id to its pillar."""
    text = _policy_text(policy)
    found: list[Finding] = []
    gaps: list[Finding | Gap] = [g for r in raw.results for g in r.gaps]
    both: list[Finding | Gap] = [*raw.findings, *gaps]

    def judged(rule: str) -> bool:
        if rule == "*":
            return True
        pillar = rule_pillars.get(rule)
        return pillar is None or pillar in pillars

    for key, entries, candidates in (
        ("suppress", policy.suppress, both),
        ("accept_incomplete", policy.accept_incomplete, gaps),
    ):
        for index, entry in enumerate(entries):
            if not judged(entry.rule):
                continue
            unknown = entry.rule != "*" and entry.rule not in rule_pillars
            if not unknown and any(entry.matches(c, policy.root) for c in candidates):
                continue
            line = _entry_line(policy, text, key, index, entry.rule)
            found.append(_unused(policy, key, index, entry, line, unknown))
    if "audit" in pillars:
        used = {
            ident
            for r in raw.results
            for ident in r.metadata.get(IGNORED_ADVISORIES, "").split(", ")
            if ident
        }
        advisory_ids = [i for i in sorted(policy.ignore) if i not in rule_pillars]
        for ident in advisory_ids:
            if ident not in used:
                line = _entry_line(policy, text, "ignore", None, ident)
                found.append(_unused_advisory(policy, "ignore", ident, line, None))
        for index, ignore in enumerate(policy.audit.ignore):
            if ignore.active(today) and ignore.id not in used:
                line = _entry_line(policy, text, "audit.ignore", index, ignore.id)
                found.append(
                    _unused_advisory(policy, f"audit.ignore[{index}]", ignore.id, line, ignore)
                )
    return found


def _unused(
    policy: Policy, key: str, index: int, entry: Suppression, line: int, unknown: bool
) -> Finding:
    paths = ", ".join(entry.paths) or "everywhere"
    if unknown:
        why = f"no pillar has a rule {entry.rule!r} (a typo, or a rule that was renamed)"
    elif key == "suppress":
        why = f"no finding or gap of {entry.rule} matched {paths} in this run"
    else:
        why = f"no part left unanalysed ({entry.rule}) matched {paths} in this run"
    base = "the policy file's directory" if policy.file else "the working directory"
    return UNUSED_ENTRY.finding(
        _where(policy),
        f"{key}[{index}] matches nothing: {why}. Paths are relative to {base}. Remove the "
        "entry, or correct it so that it covers what it was written for.",
        title=f"{key}[{index}] ({entry.rule}) matches nothing",
        evidence={
            "entry": f"{key}[{index}]",
            "rule": entry.rule,
            "paths": paths,
            "line": str(line),
        },
    )


def _unused_advisory(
    policy: Policy, entry: str, ident: str, line: int, ignore: VulnerabilityIgnore | None
) -> Finding:
    reason = f" ({ignore.reason!r})" if ignore is not None else ""
    return UNUSED_ENTRY.finding(
        _where(policy),
        f"The policy ignores advisory {ident}{reason}, but no audited dependency is affected "
        "by it in this run: the dependency was upgraded or removed. Remove the entry.",
        title=f"The ignore of {ident} matches nothing",
        evidence={"entry": entry, "advisory": ident, "line": str(line)},
    )


def _where(policy: Policy) -> Location:
    return Location(policy.file or "modelshield.toml")


def _policy_text(policy: Policy) -> str:
    if policy.file is None:
        return ""
    try:
        return Path(policy.file).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _entry_line(policy: Policy, text: str, key: str, index: int | None, needle: str) -> int:
    """The line of the ``index``-th ``[[key]]`` table (``[[tool.modelshield.key]]`` in a
    pyproject), else the first line quoting ``needle``, else 1."""
    pyproject = policy.file is not None and Path(policy.file).name == "pyproject.toml"
    if index is not None:
        path = parse_path(f"{key}[{index}]")
        line = key_line(text, path, pyproject=pyproject, exact=True)
        if line is not None:
            return line
    return quoted_line(text, needle) or 1
