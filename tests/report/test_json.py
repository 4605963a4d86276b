"""The JSON reporter: exact golden output, schema validity and determinism."""

from __future__ import annotations

import json

import jsonschema
import pytest
from msgspec.structs import replace

from modelshield.core.findings import ErrorRecord, FileResult, Location, Report, Severity
from modelshield.core.policy import Policy
from modelshield.report import json_report
from tests.report.conftest import golden_check


def validate(document: object) -> None:
    schema = json_report.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)


def test_golden(report: Report, policy: Policy) -> None:
    golden_check("report.json", json_report.render(report, policy=policy))


def test_output_validates_against_the_shipped_schema(report: Report, policy: Policy) -> None:
    validate(json.loads(json_report.render(report, policy=policy)))


def test_schema_rejects_a_document_that_drifts(report: Report, policy: Policy) -> None:
    # Guards the guard: the schema is strict, so an undocumented key cannot slip in.
    document = json_report.to_dict(report, policy=policy)
    document["results"][0]["findings"][0]["extra"] = "x"
    with pytest.raises(jsonschema.ValidationError):
        validate(document)


def test_keys_follow_the_documented_order(report: Report, policy: Policy) -> None:
    schema = json_report.schema()
    document = json_report.to_dict(report, policy=policy)
    assert list(document) == schema["required"]
    assert list(document["summary"]) == schema["properties"]["summary"]["required"]
    defs = schema["$defs"]
    first = document["results"][0]
    assert list(first) == defs["result"]["required"]
    assert list(first["findings"][0]) == defs["finding"]["required"]
    assert list(first["findings"][0]["location"]) == defs["location"]["required"]
    assert list(document["results"][2]["errors"][0]) == defs["error"]["required"]


def test_mappings_are_sorted_whatever_order_they_were_made_in(
    report: Report, policy: Policy
) -> None:
    document = json_report.to_dict(report, policy=policy)
    assert list(document["results"][1]["metadata"]) == ["byteorder", "torch_archive_version"]
    assert list(document["results"][0]["findings"][1]["evidence"]) == ["args", "callable"]


def test_rendering_twice_gives_identical_text(report: Report, policy: Policy) -> None:
    assert json_report.render(report, policy=policy) == json_report.render(report, policy=policy)


def test_a_clean_report_passes(policy: Policy) -> None:
    result = FileResult("a.pkl", "pickle", size=5, bytes_read=5, formats_seen=("pickle",))
    document = json_report.to_dict(Report("scan", "1", (result,)), policy=policy)
    assert (document["exit_code"], document["outcome"]) == (0, "pass")
    assert document["summary"]["max_severity"] is None
    assert document["results"][0]["status"] == "complete"
    validate(document)


def test_outcome_follows_the_policy_threshold(report: Report) -> None:
    # The shared report's worst finding is critical, and it also holds errors.
    assert json_report.to_dict(report, policy=Policy())["outcome"] == "fail"
    strict = json_report.to_dict(report, policy=Policy(fail_on=Severity.CRITICAL))
    assert (strict["exit_code"], strict["fail_on"]) == (1, "critical")
    only_errors = replace(report, results=report.results[3:])
    document = json_report.to_dict(only_errors, policy=Policy())
    assert (document["exit_code"], document["outcome"]) == (2, "error")


def test_hostile_names_stay_valid_json_and_utf8(policy: Policy) -> None:
    # An undecodable file name arrives as lone surrogates (surrogateescape); a member name
    # taken from an archive may hold terminal escapes. Neither may break the document.
    name = "models/\udcff\udcfe.pkl"
    loc = Location(name, ("evil\x1b[2J\nname",), 3)
    result = FileResult(name, "zip", errors=(ErrorRecord(loc, "bad member"),))
    text = json_report.render(Report("scan", "1", (result,)), policy=policy)
    text.encode("utf-8")  # would raise on a lone surrogate
    assert "\x1b" not in text
    document = json.loads(text)
    assert document["results"][0]["path"] == name
    assert document["results"][0]["errors"][0]["location"]["members"] == ["evil\x1b[2J\nname"]
    validate(document)
