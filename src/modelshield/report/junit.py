"""JUnit XML: the test-report format every CI system shows (Jenkins, GitLab, GitHub Actions
through reporters, Azure Pipelines).

One ``<testsuite>`` per pillar (``modelshield scan``, ``modelshield audit``...: a report of
``modelshield ci`` has several) with one ``<testcase>`` per input file: failed by its findings
at or above the policy's ``fail_on``, in error when it could not be analysed fully (an error,
or a gap the policy does not accept). An assessment is a suite of its own whose test cases
are its checks: failed by their findings, in error when they stopped, skipped when they did
not apply. Findings below the threshold are listed in ``<system-out>``, so that the verdict
is the same as every other format's.

The document follows the JUnit schema CI systems read (Jenkins' ``junit-10.xsd``, the one
GitLab and Azure Pipelines accept): ``testsuites`` > ``testsuite`` > ``testcase`` with
``classname``, ``name`` and ``time``; ``failure``/``error`` with ``message`` and ``type``;
``skipped``; ``system-out``; counts as integers and times as decimals.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

from modelshield.core.findings import ErrorRecord, Finding, Report
from modelshield.core.policy import Policy

Case = tuple[str, Sequence[Finding], Sequence[ErrorRecord], str | None, float]
"""A test case: its name, findings, errors, why it was skipped (or None) and its seconds."""


def render(report: Report, *, policy: Policy) -> str:
    """The report as a JUnit XML document."""
    root = ET.Element("testsuites", name=f"modelshield {report.tool}")
    info = report.assessment
    suites: dict[str, ET.Element] = {}
    times: dict[str, float] = {}
    for result in report.results:
        assessed = (
            info is not None and result.path == info.model and result.format == (info.model_kind)
        )
        if assessed and info is not None:
            seconds = {q.check: q.seconds for q in info.queries}
            cases: list[Case] = []
            for run in info.checks:
                findings = [f for f in result.findings if f.evidence.get("check") == run.check]
                errors = [e for e in result.errors if e.stage == f"assess:{run.check}"]
                skipped = run.detail if run.status == "skipped" else None
                cases.append((run.check, findings, errors, skipped, seconds.get(run.check, 0.0)))
            other = [f for f in result.findings if f.evidence.get("check") is None]
            loose = [e for e in result.errors if not e.stage.startswith("assess:")]
            if other or loose:
                cases.insert(0, ("model", other, loose, None, 0.0))
            suite = _new_suite(root, f"assess {result.path}")
            _cases(suite, f"assess {result.path}", cases, policy)
            suite.set("time", f"{result.duration_s:.3f}")
            continue
        unfinished = [
            ErrorRecord(g.location, f"not analysed: {g.message}", g.rule_id)
            for g in result.unaccepted_gaps
        ]
        # An assessment scans its model first; otherwise the result's own pillar.
        pillar = result.pillar or ("scan" if info is not None else report.tool)
        if pillar not in suites:
            suites[pillar] = _new_suite(root, f"modelshield {pillar}")
            times[pillar] = 0.0
        case: Case = (
            result.path,
            list(result.findings),
            [*result.errors, *unfinished],
            None,
            result.duration_s,
        )
        _cases(suites[pillar], pillar, [case], policy)
        times[pillar] += result.duration_s
    for pillar, suite in suites.items():
        suite.set("time", f"{times[pillar]:.3f}")
    _totals(root, report.duration_s)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _new_suite(root: ET.Element, name: str) -> ET.Element:
    return ET.SubElement(root, "testsuite", name=_clean(name))


def _cases(suite: ET.Element, name: str, cases: Sequence[Case], policy: Policy) -> None:
    for case_name, findings, errors, skipped, case_seconds in cases:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_clean(name),
            name=_clean(case_name),
            time=f"{case_seconds:.3f}",
        )
        failing = [f for f in findings if f.severity >= policy.fail_on]
        if skipped is not None:
            ET.SubElement(case, "skipped", message=_clean(skipped))
        for f in failing:
            failure = ET.SubElement(
                case,
                "failure",
                message=_clean(f"{f.rule_id}: {f.title}"),
                type=f.rule_id,
            )
            failure.text = _clean(_describe(f))
        for e in errors:
            error = ET.SubElement(case, "error", message=_clean(e.message), type=_clean(e.stage))
            error.text = _clean(e.message)
        below = [f for f in findings if f.severity < policy.fail_on]
        if below:
            out = ET.SubElement(case, "system-out")
            out.text = _clean("\n\n".join(_describe(f) for f in below))


def _totals(root: ET.Element, seconds: float) -> None:
    grand = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in root.iter("testsuite"):
        counts = {
            "tests": len(suite.findall("testcase")),
            "failures": sum(1 for c in suite.iter("testcase") if c.find("failure") is not None),
            "errors": sum(1 for c in suite.iter("testcase") if c.find("error") is not None),
            "skipped": sum(1 for c in suite.iter("testcase") if c.find("skipped") is not None),
        }
        for key, value in counts.items():
            suite.set(key, str(value))
            grand[key] += value
    # The root of junit-10.xsd has no "skipped" attribute: the suites carry it.
    for key in ("tests", "failures", "errors"):
        root.set(key, str(grand[key]))
    root.set("time", f"{seconds:.3f}")


def _describe(f: Finding) -> str:
    lines = [f"[{f.severity.label}] {f.rule_id}: {f.title}", f.message]
    lines += [f"{k}: {f.evidence[k]}" for k in sorted(f.evidence)]
    return "\n".join(lines)


def _clean(text: str) -> str:
    """XML 1.0 cannot hold most control characters (or lone surrogates): escape them."""
    return "".join(
        ch
        if ch in "\t\n\r"
        or (" " <= ch <= "\ud7ff")
        or ("\ue000" <= ch <= "\ufffd")
        or ch >= "\U00010000"
        else f"\\x{ord(ch):02x}"
        for ch in text
    )
