"""Files not fully analysed, in every reporter: never shown as clean, accepted gaps still listed,
and the same verdict (exit code 2 for an unaccepted gap) in text, JSON and SARIF."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest

from modelshield.core.findings import FileResult, Gap, Location, Report
from modelshield.core.policy import ExitCode, Policy
from modelshield.report import Invocation, OutputFormat, json_report, render, sarif, text
from tests.report.conftest import RULES, validate_sarif

POLICY = Policy.from_mapping(
    {"accept_incomplete": [{"rule": "SCAN-FORMAT-NOT-ANALYSED", "paths": ["models/keras/*"]}]}
)


def _gap(path: str, rule: str, *members: str) -> Gap:
    return Gap(rule, Location(path, members), f"{rule}: this part was not analysed")


def _report() -> Report:
    """A clean file, a file with an unaccepted gap in a member, a file with a gap the policy
    accepts, and a file above the size limit; applied with ``POLICY``."""
    results = (
        FileResult("models/clean.pkl", "pickle", size=32, formats_seen=("pickle",)),
        FileResult(
            "models/deep.zip",
            "zip",
            size=4096,
            gaps=(_gap("models/deep.zip", "SCAN-LIMIT", "a.zip", "b.zip"),),
        ),
        FileResult(
            "models/keras/model.h5",
            "hdf5",
            size=2048,
            gaps=(_gap("models/keras/model.h5", "SCAN-FORMAT-NOT-ANALYSED"),),
        ),
        FileResult(
            "models/huge.pt",
            "unknown",
            size=10**12,
            skipped=True,
            gaps=(_gap("models/huge.pt", "SCAN-FILE-TOO-LARGE"),),
        ),
    )
    return POLICY.apply(Report(tool="scan", version="9.8.7", results=results, duration_s=0.5))


def test_the_policy_accepted_only_the_named_gap() -> None:
    report = _report()
    assert [r.status for r in report.results] == ["complete", "incomplete", "incomplete", "skipped"]
    assert [g.accepted for r in report.results for g in r.gaps] == [False, True, False]
    assert [r.path for r in report.unfinished] == ["models/deep.zip", "models/huge.pt"]
    assert POLICY.exit_code(report) is ExitCode.ERROR


def _text(report: Report) -> str:
    return text.render(report, policy=POLICY, invocation=Invocation("modelshield.toml"))


def test_text_never_lists_an_unfinished_file_as_clean() -> None:
    lines = _text(_report()).splitlines()
    assert "✗ models/deep.zip  zip, 4.0 KiB; 0 findings, not fully analysed" in lines
    assert "  PARTIAL  SCAN-LIMIT  not analysed at a.zip › b.zip" in lines
    assert "✗ models/huge.pt  unknown, 931.3 GiB; 0 findings, not analysed" in lines
    assert "  PARTIAL  SCAN-FILE-TOO-LARGE  not analysed" in lines
    accepted = "! models/keras/model.h5  hdf5, 2.0 KiB; 0 findings, not fully analysed"
    assert f"{accepted} (accepted by the policy)" in lines
    assert "  ACCEPTED SCAN-FORMAT-NOT-ANALYSED  not analysed" in lines
    assert [line for line in lines if line.startswith("✓")] == [
        "✓ models/clean.pkl  pickle, 32 B, no findings"
    ]


def test_text_summary_counts_them_and_the_verdict_is_error() -> None:
    lines = _text(_report()).splitlines()
    assert lines[-2].endswith(", 0 errors, 3 files not fully analysed")
    assert lines[-1].startswith("ERROR")
    assert "(exit code 2)" in lines[-1]


def test_json_lists_every_gap_with_its_acceptance_and_counts_the_unfinished() -> None:
    document: dict[str, Any] = json.loads(json_report.render(_report(), policy=POLICY))
    jsonschema.Draft202012Validator(json_report.schema()).validate(document)
    assert (document["exit_code"], document["outcome"]) == (2, "error")
    assert document["summary"]["not_fully_analysed"] == 2
    by_path = {r["path"]: r for r in document["results"]}
    assert [r["status"] for r in document["results"]] == [
        "complete",
        "incomplete",
        "incomplete",
        "skipped",
    ]
    assert by_path["models/deep.zip"]["gaps"] == [
        {
            "rule_id": "SCAN-LIMIT",
            "message": "SCAN-LIMIT: this part was not analysed",
            "location": {"path": "models/deep.zip", "members": ["a.zip", "b.zip"], "offset": None},
            "accepted": False,
        }
    ]
    assert by_path["models/keras/model.h5"]["gaps"][0]["accepted"] is True
    assert by_path["models/clean.pkl"]["gaps"] == []


def test_sarif_notifies_the_unaccepted_gaps_only() -> None:
    document: dict[str, Any] = json.loads(sarif.render(_report(), policy=POLICY, rules=RULES))
    validate_sarif(document)
    (invocation,) = document["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    assert invocation["exitCode"] == 2
    notified = [n["descriptor"]["id"] for n in invocation["toolExecutionNotifications"]]
    assert notified == ["SCAN-LIMIT", "SCAN-FILE-TOO-LARGE"]
    assert all(n["level"] == "error" for n in invocation["toolExecutionNotifications"])


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_accepting_every_gap_passes_in_every_format(fmt: OutputFormat) -> None:
    lenient = Policy.from_mapping({"accept_incomplete": [{"rule": "*"}]})
    report = lenient.apply(_report())
    assert lenient.exit_code(report) is ExitCode.OK
    out = render(report, fmt, policy=lenient, rules=RULES)
    if fmt is OutputFormat.TEXT:
        assert out.splitlines()[-1].startswith("PASS")
        assert "  ACCEPTED SCAN-LIMIT  not analysed at a.zip › b.zip" in out.splitlines()
    elif fmt is OutputFormat.JSON:
        document = json.loads(out)
        assert (document["exit_code"], document["summary"]["not_fully_analysed"]) == (0, 0)
        assert all(g["accepted"] for r in document["results"] for g in r["gaps"])
    elif fmt is OutputFormat.SARIF:
        (invocation,) = json.loads(out)["runs"][0]["invocations"]
        assert invocation["executionSuccessful"] is True
        assert invocation["toolExecutionNotifications"] == []
    elif fmt is OutputFormat.JUNIT:
        root = ElementTree.fromstring(out)
        assert (root.get("failures"), root.get("errors")) == ("0", "0")
    else:
        assert ">PASS</span>" in out
        assert "SCAN-LIMIT" in out  # accepted gaps stay listed
