"""The policy's own findings: each stale or expired entry reported on its line, only when
the pillars it concerns ran, in modelshield.toml and in pyproject.toml alike."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from modelshield.core.findings import FileResult, Finding, Gap, Location, Report, Severity
from modelshield.core.policy import Policy
from modelshield.core.rules import load_all_rules
from modelshield.gate.policy_check import expired_ignores, unused_entries

TODAY = datetime.date(2026, 6, 1)
RULES = {rule.id: rule.pillar for rule in load_all_rules()}

POLICY = """\
ignore = ["ARCHIVE-DUPLICATE-NAME", "PYSEC-2020-1"]

[[suppress]]
rule = "PICKLE-IMPORT-UNKNOWN"
paths = ["models/legacy/*"]

[[suppress]]
rule = "PICKLE-IMPORT-UNKOWN"
paths = ["models/*"]

[[suppress]]
rule = "AUDIT-UNKNOWN-VERSION"
paths = ["requirements.txt"]

[[accept_incomplete]]
rule = "SCAN-LIMIT"
paths = ["models/huge/*"]

[[audit.ignore]]
id = "GHSA-used-used-used"
reason = "reviewed"

[[audit.ignore]]
id = "GHSA-gone-gone-gone"
reason = "reviewed"

[[audit.ignore]]
id = "GHSA-late-late-late"
reason = "until the upgrade"
expires = 2026-05-31
"""


def raw_report(root: Path) -> Report:
    model = str(root / "models" / "legacy" / "a.pkl")
    unknown = Finding("PICKLE-IMPORT-UNKNOWN", Severity.MEDIUM, "t", "m", Location(model))
    scan = FileResult(model, "pickle", findings=(unknown,), pillar="scan")
    huge = str(root / "models" / "huge" / "b.pkl")
    gap = FileResult(huge, "pickle", gaps=(Gap("SCAN-LIMIT", Location(huge), "x"),), pillar="scan")
    audit = FileResult(
        str(root / "requirements.txt"),
        "requirements",
        metadata={"ignored_advisories": "GHSA-used-used-used"},
        pillar="audit",
    )
    return Report.of("ci", [scan, gap, audit])


def lines_of(findings: list[Finding]) -> dict[str, str]:
    return {f.evidence["entry"]: f.evidence["line"] for f in findings}


def test_stale_entries_are_reported_on_their_lines(tmp_path: Path) -> None:
    (tmp_path / "modelshield.toml").write_text(POLICY)
    policy = Policy.from_file(tmp_path / "modelshield.toml")
    found = unused_entries(
        policy, raw_report(tmp_path), pillars={"scan", "audit"}, rule_pillars=RULES, today=TODAY
    )
    assert {f.rule_id for f in found} == {"POLICY-UNUSED-ENTRY"}
    assert lines_of(found) == {
        "suppress[1]": "7",  # a typo: no rule has that id
        "suppress[2]": "11",  # an audit rule that matched nothing
        "ignore": "1",  # an advisory id no dependency had
        "audit.ignore[1]": "23",
    }
    typo = next(f for f in found if f.evidence["entry"] == "suppress[1]")
    assert "no pillar has a rule 'PICKLE-IMPORT-UNKOWN'" in typo.message
    assert all(f.location.path == str(tmp_path / "modelshield.toml") for f in found)


def test_entries_of_pillars_that_did_not_run_are_not_judged(tmp_path: Path) -> None:
    (tmp_path / "modelshield.toml").write_text(POLICY)
    policy = Policy.from_file(tmp_path / "modelshield.toml")
    found = unused_entries(
        policy, raw_report(tmp_path), pillars={"scan"}, rule_pillars=RULES, today=TODAY
    )
    assert set(lines_of(found)) == {"suppress[1]"}  # the typo is reported whatever ran


def test_an_entry_matched_from_another_directory_is_not_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "modelshield.toml").write_text(POLICY)
    policy = Policy.from_file(tmp_path / "modelshield.toml")
    monkeypatch.chdir(tmp_path.parent)
    found = unused_entries(
        policy, raw_report(tmp_path), pillars={"scan"}, rule_pillars=RULES, today=TODAY
    )
    assert "suppress[0]" not in lines_of(found) and "accept_incomplete[0]" not in lines_of(found)


def test_expired_ignores_are_reported_on_their_lines_in_a_pyproject(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    text = POLICY.replace("[[", "[[tool.modelshield.").replace(
        'ignore = ["ARCHIVE', '[tool.modelshield]\nignore = ["ARCHIVE'
    )
    pyproject.write_text("[project]\nname = 'x'\n\n" + text)
    policy = Policy.from_file(pyproject)
    result = expired_ignores(policy, TODAY)
    assert result is not None and result.pillar == "gate"
    (finding,) = result.findings
    assert finding.rule_id == "POLICY-IGNORE-EXPIRED"
    assert finding.evidence["line"] == str(
        pyproject.read_text().splitlines().index("[[tool.modelshield.audit.ignore]]") + 1 + 8
    )
    assert finding.evidence["reason"] == "until the upgrade"
    assert expired_ignores(policy, datetime.date(2026, 5, 31)) is None  # the last day applies
