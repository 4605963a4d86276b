"""Reporters: turn a :class:`~modelshield.core.Report` into text, JSON, SARIF, JUnit XML or
HTML.

Reporters are the last stage of the pipeline and only read the report: they never scan,
filter or decide. The policy is passed in so that every format states the same verdict
(the failure threshold and the exit code it leads to).

Example::

    from modelshield import Policy, scan
    from modelshield.report import OutputFormat, render

    policy = Policy()
    print(render(scan("model.pt", policy), OutputFormat.SARIF, policy=policy))

Each format lives in its own module and is imported only when used, so that producing JSON
never imports the terminal library.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, assert_never

from msgspec import Struct

if TYPE_CHECKING:
    from modelshield.core.findings import Report
    from modelshield.core.policy import Policy
    from modelshield.core.rules import Rule

__all__ = ["Invocation", "OutputFormat", "render"]


class OutputFormat(enum.StrEnum):
    """The report formats the command line offers (``--format``)."""

    TEXT = "text"
    """A human-readable report grouped by file, coloured on a terminal."""
    JSON = "json"
    """The documented, versioned JSON document (``docs/json-output.md``)."""
    SARIF = "sarif"
    """SARIF 2.1.0, for code-scanning dashboards."""
    JUNIT = "junit"
    """JUnit XML, the test report every CI system shows."""
    HTML = "html"
    """A self-contained HTML page; an assessment's has plots (inline SVG)."""


class Invocation(Struct, frozen=True):
    """Facts about the run that are not in the report itself."""

    policy_source: str | None = None
    """The policy file that was read, or None for the built-in defaults."""
    source_root: str | None = None
    """The project directory paths are relative to (SARIF's ``%SRCROOT%``, fingerprints);
    None: the working directory."""
    verbose: bool = False
    """Text: each finding with its explanation and evidence, repeated findings one by one."""


def render(
    report: Report,
    fmt: OutputFormat,
    *,
    policy: Policy,
    invocation: Invocation | None = None,
    color: bool = False,
    quiet: bool = False,
    rules: Mapping[str, Rule] | None = None,
) -> str:
    """Render ``report`` (already filtered by ``policy``) in the chosen format.

    ``color`` and ``quiet`` (list only files with findings or errors) affect the
    text format only. ``rules`` is the catalogue the SARIF
    format describes rules from; by default it is the registered catalogue.
    """
    invocation = invocation or Invocation()
    if fmt is OutputFormat.TEXT:
        from modelshield.report.text import render as render_text

        return render_text(
            report,
            policy=policy,
            invocation=invocation,
            color=color,
            quiet=quiet,
            verbose=invocation.verbose,
        )
    if fmt is OutputFormat.JSON:
        from modelshield.report.json_report import render as render_json

        return render_json(report, policy=policy, root=invocation.source_root)
    if fmt is OutputFormat.SARIF:
        from modelshield.report.sarif import render as render_sarif

        return render_sarif(report, policy=policy, rules=rules, root=invocation.source_root)
    if fmt is OutputFormat.JUNIT:
        from modelshield.report.junit import render as render_junit

        return render_junit(report, policy=policy)
    if fmt is OutputFormat.HTML:
        from modelshield.report.html import render as render_html

        return render_html(report, policy=policy, invocation=invocation)
    assert_never(fmt)
