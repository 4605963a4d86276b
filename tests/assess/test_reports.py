"""The assessment in every report format: JUnit XML (read back as CI tools read it), HTML with
plots, text."""

from __future__ import annotations

from html.parser import HTMLParser
from xml.etree import ElementTree

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from modelshield.assess import assess
from modelshield.core.findings import Report
from modelshield.core.policy import Policy
from modelshield.report import OutputFormat, render
from tests.assess.conftest import only
from tests.report.junit_schema import validate_junit

CHECKS = ("performance", "calibration", "slices", "fairness")


@pytest.fixture(scope="module")
def unfair_report(arrests_files: dict[str, str]) -> Report:
    policy = only(*CHECKS)
    return policy.apply(
        assess(
            arrests_files["unfair"],
            arrests_files["test"],
            "released",
            sensitive=["colour", "sex"],
            policy=policy,
        )
    )


def test_junit_has_a_test_case_per_check_failed_by_its_findings(unfair_report: Report) -> None:
    policy = Policy()
    out = render(unfair_report, OutputFormat.JUNIT, policy=policy)
    validate_junit(out)
    xml = JUnitXml.fromstring(out)
    suites = list(xml)
    assert len(suites) == 2  # the model file's scan, then the assessment
    cases = {case.name: case for case in suites[1]}
    assert list(cases)[: len(CHECKS)] == list(CHECKS)
    fairness = [r for r in cases["fairness"].result if isinstance(r, Failure)]
    assert {r.type for r in fairness} == {"ASSESS-DISPARATE-IMPACT", "ASSESS-EQUALIZED-ODDS"}
    assert "colour=Black" in fairness[0].text
    assert all(isinstance(r, Skipped) for r in cases["evasion"].result)
    assert not cases["performance"].result  # passed
    # Totals agree with the cases, as Jenkins and GitLab compute them.
    root = ElementTree.fromstring(out)
    failed = sum(1 for c in root.iter("testcase") if c.find("failure") is not None)
    assert root.get("failures") == str(failed) and failed >= 2
    assert root.get("tests") == str(len(list(root.iter("testcase"))))
    for case in root.iter("testcase"):
        assert set(case.attrib) == {"classname", "name", "time"}
        assert {child.tag for child in case} <= {"failure", "error", "skipped", "system-out"}


def test_junit_reports_a_check_that_stopped_as_an_error(cancer_files: dict[str, str]) -> None:
    report = assess(
        "tests.assess.models_for_tests:fails_on_large_batches",
        cancer_files["test"],
        "target",
        policy=only("performance", "robustness", robustness_rows=100),
    )
    out = render(report, OutputFormat.JUNIT, policy=Policy())
    (suite,) = list(JUnitXml.fromstring(out))
    cases = {case.name: case for case in suite}
    (error,) = cases["robustness"].result
    assert isinstance(error, Error) and "more than 200 rows" in error.message
    assert Policy().exit_code(report) == 2


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_html_has_plots_and_names_the_failure(unfair_report: Report) -> None:
    out = render(unfair_report, OutputFormat.HTML, policy=Policy())
    parser = _Collect()
    parser.feed(out)
    assert parser.tags.count("svg") >= 4  # metrics, reliability, two fairness columns...
    assert "script" not in parser.tags  # nothing runs when the page is opened
    assert "selection rate by colour" in out and "four-fifths of the highest" in out
    assert ">FAIL</span>" in out and "ASSESS-DISPARATE-IMPACT" in out
    assert "Predictions asked of the model" in out


def test_html_escapes_what_comes_from_the_data(
    tmp_path: object, arrests_files: dict[str, str]
) -> None:
    import pandas as pd

    test = pd.read_csv(arrests_files["test"])
    test["colour"] = test["colour"].replace({"Black": "<script>alert(1)</script>"})
    path = f"{tmp_path}/t.csv"
    test.to_csv(path, index=False)
    policy = only("fairness")
    report = assess(arrests_files["sound"], path, "released", sensitive=["colour"], policy=policy)
    out = render(report, OutputFormat.HTML, policy=policy)
    assert "<script>" not in out and "&lt;script&gt;" in out


def test_text_says_which_check_stopped(cancer_files: dict[str, str]) -> None:
    policy = only("performance", "robustness", robustness_rows=100)
    report = assess(
        "tests.assess.models_for_tests:fails_on_large_batches",
        cancer_files["test"],
        "target",
        policy=policy,
    )
    out = render(report, OutputFormat.TEXT, policy=policy)
    assert "assess:robustness" in out and "more than 200 rows" in out
    assert out.splitlines()[-1].startswith("ERROR: 1 part of the assessment could not run")
    assert "robustness: error" in out
