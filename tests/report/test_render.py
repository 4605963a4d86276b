"""The format dispatcher: every OutputFormat choice renders through the matching reporter."""

from __future__ import annotations

import json

import pytest

from modelshield.core.findings import Report
from modelshield.core.policy import Policy
from modelshield.report import (
    Invocation,
    OutputFormat,
    html,
    json_report,
    junit,
    render,
    sarif,
    text,
)
from tests.report.conftest import RULES


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_every_format_choice_renders_with_its_reporter(
    fmt: OutputFormat, report: Report, policy: Policy
) -> None:
    out = render(report, fmt, policy=policy, rules=RULES)
    if fmt is OutputFormat.TEXT:
        assert out == text.render(report, policy=policy, invocation=Invocation())
    elif fmt is OutputFormat.JSON:
        assert json.loads(out)["schema_version"] == json_report.SCHEMA_VERSION
        assert out == json_report.render(report, policy=policy)
    elif fmt is OutputFormat.SARIF:
        assert json.loads(out)["version"] == "2.1.0"
        assert out == sarif.render(report, policy=policy, rules=RULES)
    elif fmt is OutputFormat.JUNIT:
        assert out == junit.render(report, policy=policy)
    else:
        assert out == html.render(report, policy=policy, invocation=Invocation())


def test_format_values_are_the_command_line_words() -> None:
    assert [f.value for f in OutputFormat] == ["text", "json", "sarif", "junit", "html"]
    assert OutputFormat("sarif") is OutputFormat.SARIF
