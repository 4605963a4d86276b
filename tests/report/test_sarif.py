"""The SARIF reporter: exact golden output, the official 2.1.0 schema, and the mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from msgspec.structs import replace

from modelshield.core.findings import FileResult, Finding, Location, Report, Severity
from modelshield.core.policy import Policy
from modelshield.report import jsontext, sarif
from tests.report.conftest import RULES, golden_check, validate_sarif


def validate(document: object) -> None:
    validate_sarif(document)


def render(report: Report, policy: Policy) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(sarif.render(report, policy=policy, rules=RULES))
    return document


def test_golden(report: Report, policy: Policy) -> None:
    document = render(report, policy)
    # The project directory is the machine's: the golden file holds a stand-in.
    assert document["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == (
        Path.cwd().as_uri() + "/"
    )
    document["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] = "file:///project/"
    golden_check("report.sarif", jsontext.dumps(document) + "\n")


def test_output_validates_against_the_official_schema(report: Report, policy: Policy) -> None:
    validate(render(report, policy))


def test_the_schema_check_can_fail(report: Report, policy: Policy) -> None:
    document = render(report, policy)
    document["runs"][0]["results"][0]["level"] = "critical"  # not a SARIF level
    with pytest.raises(jsonschema.ValidationError):
        validate(document)


@pytest.mark.parametrize("severity", list(Severity))
def test_every_severity_maps_to_a_level_and_a_score(severity: Severity) -> None:
    finding = Finding("EXAMPLE-CALL-UNKNOWN", severity, "t", "m", Location("a.pkl"))
    report = Report("scan", "1", (FileResult("a.pkl", "pickle", findings=(finding,)),))
    document = render(report, Policy())
    result = document["runs"][0]["results"][0]
    expected_level = {
        Severity.CRITICAL: "error",
        Severity.HIGH: "error",
        Severity.MEDIUM: "warning",
        Severity.LOW: "note",
        Severity.INFO: "note",
    }[severity]
    expected_score = {
        Severity.CRITICAL: "9.5",
        Severity.HIGH: "8.0",
        Severity.MEDIUM: "5.5",
        Severity.LOW: "3.0",
        Severity.INFO: "0.0",
    }[severity]
    assert result["level"] == expected_level
    assert result["properties"]["security-severity"] == expected_score
    validate(document)


def test_rules_carry_help_severity_and_default_level(report: Report, policy: Policy) -> None:
    rules = render(report, policy)["runs"][0]["tool"]["driver"]["rules"]
    by_id = {r["id"]: r for r in rules}
    assert list(by_id) == sorted(by_id)
    dangerous = by_id["EXAMPLE-CALL-DANGEROUS"]
    assert dangerous["name"] == "ExampleCallDangerous"
    assert dangerous["fullDescription"]["text"] == RULES["EXAMPLE-CALL-DANGEROUS"].what
    assert "Why is this bad? Loading the file runs" in dangerous["help"]["text"]
    assert dangerous["properties"]["security-severity"] == "9.5"
    assert dangerous["defaultConfiguration"]["level"] == "error"
    # A rule id the catalogue does not know is still described, from its finding.
    unknown = by_id["EXAMPLE-NOT-CATALOGUED"]
    assert unknown["shortDescription"]["text"] == "Trailing bytes after STOP"
    assert unknown["defaultConfiguration"]["level"] == "note"


def test_results_point_at_their_rule(report: Report, policy: Policy) -> None:
    run = render(report, policy)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert len(run["results"]) == len(report.findings)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_member_findings_are_placed_on_the_archive_and_name_the_member(
    report: Report, policy: Policy
) -> None:
    run = render(report, policy)["runs"][0]
    member = next(r for r in run["results"] if r["ruleId"] == "EXAMPLE-MEMBER-PAYLOAD")
    loc = member["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "models/checkpoint.pt"
    assert loc["physicalLocation"]["region"] == {"startLine": 1}
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == (
        "models/checkpoint.pt/archive/data.pkl"
    )
    assert loc["properties"] == {
        "member": "archive/data.pkl",
        "members": ["archive/data.pkl"],
        "memberOffset": 17,
    }
    assert member["message"]["text"].endswith("(in archive member archive/data.pkl)")
    direct = next(r for r in run["results"] if r["ruleId"] == "EXAMPLE-CALL-DANGEROUS")
    # A binary file: line 1, the byte offset kept beside it.
    assert direct["locations"][0]["physicalLocation"]["region"] == {"startLine": 1}
    assert direct["locations"][0]["properties"] == {"byteOffset": 42}
    assert "logicalLocations" not in direct["locations"][0]


def test_text_findings_are_placed_on_their_line() -> None:
    """Requirements, YAML, templates and Python findings carry the line (and column) in
    their evidence; GitHub code scanning places the alert there."""
    req = Finding(
        "EXAMPLE-CALL-UNKNOWN",
        Severity.HIGH,
        "jinja2 2.4.1 is affected by PYSEC-2014-8",
        "m",
        Location("requirements.txt"),
        evidence={"line": "3", "package": "jinja2"},
    )
    yml = Finding(
        "EXAMPLE-CALL-UNKNOWN",
        Severity.HIGH,
        "t",
        "m",
        Location("conf/model.yaml"),
        evidence={"line": "7", "column": "12"},
    )
    nested = Finding(
        "EXAMPLE-CALL-UNKNOWN",
        Severity.HIGH,
        "t",
        "m",
        Location("model.nemo", ("model_config.yaml",)),
        evidence={"line": "9"},
    )
    results = (
        FileResult("requirements.txt", "requirements", findings=(req,)),
        FileResult("conf/model.yaml", "yaml", findings=(yml,)),
        FileResult("model.nemo", "tar", findings=(nested,)),
    )
    run = render(Report("audit", "1", results), Policy())["runs"][0]
    regions = [r["locations"][0]["physicalLocation"]["region"] for r in run["results"]]
    assert regions == [{"startLine": 3}, {"startLine": 7, "startColumn": 12}, {"startLine": 1}]
    assert run["results"][2]["locations"][0]["properties"]["memberLine"] == 9
    assert run["results"][0]["properties"]["evidence"] == {"line": 3, "package": "jinja2"}
    validate({"version": "2.1.0", "runs": [run]})


def test_every_result_is_placed_as_github_code_scanning_expects(
    report: Report, policy: Policy
) -> None:
    """Each result: a physical location whose URI is relative to %SRCROOT%, and a region
    with a startLine (GitHub drops or misplaces alerts without them)."""
    run = render(report, policy)["runs"][0]
    assert run["results"]
    assert set(run["originalUriBaseIds"]) == {"%SRCROOT%"}
    for result in run["results"]:
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        artifact = physical["artifactLocation"]
        assert artifact["uriBaseId"] == "%SRCROOT%"
        assert not artifact["uri"].startswith(("/", "file:", ".."))
        assert isinstance(physical["region"]["startLine"], int)
        assert physical["region"]["startLine"] >= 1


def test_errors_become_notifications_and_an_unsuccessful_run(
    report: Report, policy: Policy
) -> None:
    invocation = render(report, policy)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert [n["message"]["text"] for n in notes] == [
        "unknown opcode 0xff",
        "cannot open: No such file",
    ]
    assert notes[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "missing.bin"
    )
    clean = replace(report, results=report.results[4:])
    invocation = render(clean, policy)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is True
    assert invocation["exitCode"] == 0


def test_fingerprints_are_stable_and_tell_findings_apart(report: Report, policy: Policy) -> None:
    first = render(report, policy)["runs"][0]["results"]
    again = render(report, policy)["runs"][0]["results"]
    prints = [r["partialFingerprints"][sarif.FINGERPRINT_KEY] for r in first]
    assert prints == [r["partialFingerprints"][sarif.FINGERPRINT_KEY] for r in again]
    assert len(set(prints)) == len(prints)
    assert all(p.endswith(":1") for p in prints)
    moved = replace(report.findings[0], location=report.findings[0].location.at(999))
    assert sarif.fingerprint(moved) == sarif.fingerprint(report.findings[0])
    twice = replace(
        report,
        results=(replace(report.results[0], findings=(report.findings[0], moved)),),
    )
    occurrences = [
        r["partialFingerprints"][sarif.FINGERPRINT_KEY]
        for r in render(twice, policy)["runs"][0]["results"]
    ]
    assert occurrences == [prints[0], prints[0][:-1] + "2"]


def test_default_rule_lookup_uses_the_catalogue() -> None:
    from modelshield.scanner.rules import SCAN_LIMIT

    finding = SCAN_LIMIT.finding(Location("a.pkl"), "stopped")
    report = Report("scan", "1", (FileResult("a.pkl", "pickle", findings=(finding,)),))
    document = json.loads(sarif.render(report, policy=Policy()))
    rule = document["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule["id"] == "SCAN-LIMIT"
    assert rule["fullDescription"]["text"] == SCAN_LIMIT.what
    validate(document)


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("models/a.pkl", "models/a.pkl"),
        ("./models/a.pkl", "models/a.pkl"),
        ("models/with space#1.pkl", "models/with%20space%231.pkl"),
        ("models/caf\u00e9.pkl", "models/caf%C3%A9.pkl"),
        ("models/\udcff.pkl", "models/%FF.pkl"),
    ],
)
def test_artifact_uris_are_relative_and_encoded(path: str, uri: str) -> None:
    assert sarif.artifact_uri(path) == uri


def test_absolute_paths_become_relative_under_the_working_directory() -> None:
    inside = Path.cwd() / "sub" / "m.pkl"
    assert sarif.artifact_uri(str(inside)) == "sub/m.pkl"
    outside = Path(Path.cwd().anchor) / "elsewhere-modelshield" / "m.pkl"
    assert sarif.artifact_uri(str(outside)) == "file:///elsewhere-modelshield/m.pkl"


def test_uris_are_relative_to_the_project_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    # Paths of a report relative to a project are relative to it, whatever the directory.
    assert sarif.artifact_uri("models/a.pkl", str(project)) == "models/a.pkl"
    assert sarif.artifact_uri(str(project / "models" / "a.pkl"), str(project)) == "models/a.pkl"
    assert sarif.artifact_uri("../other/a.pkl", str(project)) == (tmp_path / "other/a.pkl").as_uri()
    finding = Finding("EXAMPLE-CALL-UNKNOWN", Severity.HIGH, "t", "m", Location("m.pkl"))
    report = Report("scan", "1", (FileResult("m.pkl", "pickle", findings=(finding,)),))
    run = json.loads(sarif.render(report, policy=Policy(), root=str(project)))["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.as_uri() + "/"
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "m.pkl",
        "uriBaseId": "%SRCROOT%",
        "index": 0,
    }
