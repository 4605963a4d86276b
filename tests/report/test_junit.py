"""The JUnit reporter: valid under the schema CI systems read, one suite per pillar with a
test case per file, read back by junitparser as CI tools read it."""

from __future__ import annotations

import pytest
from junitparser import Error, Failure, JUnitXml
from msgspec.structs import replace

from modelshield.core.findings import FileResult, Finding, Gap, Location, Report, Severity
from modelshield.core.policy import Policy
from modelshield.report import junit
from tests.report.junit_schema import validate_junit


def test_the_shared_report_is_valid_junit(report: Report, policy: Policy) -> None:
    out = junit.render(report, policy=policy)
    validate_junit(out)
    (suite,) = list(JUnitXml.fromstring(out))
    assert suite.name == "modelshield scan"
    cases = {case.name: case for case in suite}
    assert list(cases) == [r.path for r in report.results]
    assert {type(r) for r in cases["models/evil.pkl"].result} == {Failure}
    assert {type(r) for r in cases["missing.bin"].result} == {Error}
    assert not cases["models/clean.pkl"].result
    # The low finding of broken.pkl is below fail_on: listed, not failed.
    broken = cases["models/broken.pkl"]
    assert [type(r) for r in broken.result] == [Error]
    assert "EXAMPLE-NOT-CATALOGUED" in (broken.system_out or "")


def test_a_merged_report_has_a_suite_per_pillar_and_a_case_per_file() -> None:
    finding = Finding("AUDIT-X-Y", Severity.HIGH, "t", "m", Location("requirements.txt"))
    gap = Gap("SCAN-LIMIT", Location("big.pkl"), "stopped")
    results = (
        FileResult("models/a.pkl", "pickle", pillar="scan"),
        FileResult("big.pkl", "pickle", gaps=(gap,), pillar="scan"),
        FileResult("requirements.txt", "requirements", findings=(finding,), pillar="audit"),
        FileResult("models/a.pkl", "pickle", pillar="audit"),
    )
    out = junit.render(Report("ci", "1", results), policy=Policy())
    validate_junit(out)
    suites = {s.name: [c.name for c in s] for s in JUnitXml.fromstring(out)}
    assert suites == {
        "modelshield scan": ["models/a.pkl", "big.pkl"],
        "modelshield audit": ["requirements.txt", "models/a.pkl"],
    }
    xml = JUnitXml.fromstring(out)
    assert (xml.tests, xml.failures, xml.errors) == (4, 1, 1)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda x: x.replace("<testsuites ", '<testsuites skipped="0" '), "not in the schema"),
        (
            lambda x: x.replace(
                '<testcase classname="scan" name="a.pkl"', '<testcase classname="scan"'
            ),
            "required",
        ),
        (lambda x: x.replace("</testsuite>", "<bogus/></testsuite>"), "not allowed"),
        (lambda x: x.replace('time="0.000"', 'time="soon"', 1), "time"),
    ],
)
def test_the_schema_check_can_fail(mutate: object, message: str) -> None:
    report = Report("scan", "1", (FileResult("a.pkl", "pickle"),))
    out = junit.render(report, policy=Policy())
    validate_junit(out)
    with pytest.raises(AssertionError, match=message):
        validate_junit(mutate(out))  # type: ignore[operator]


def test_hostile_names_stay_well_formed(policy: Policy) -> None:
    name = "x\x1b[2J\udcff.pkl"
    finding = Finding("EXAMPLE-A-B", Severity.HIGH, "t\x00", "m\x07", Location(name))
    report = Report("scan", "1", (replace(FileResult(name, "pickle"), findings=(finding,)),))
    validate_junit(junit.render(report, policy=policy))
