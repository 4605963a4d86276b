"""JUnit XML: the test-report format every CI system shows (Jenkins, GitLab, GitHub Actions
through reporters, Azure Pipelines).

One ``<testsuite>`` per result. For an assessment, each check of the assessment is a
``<testcase>``: failed by its findings at or above the policy's ``fail_on``, in error when it
stopped, skipped when it did not apply. For any other report (a scan, an audit), each input is
a test case of its own suite. Findings below the threshold are listed in ``<system-out>``, so
that the verdict is the same as every other format's.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree as ET

from modelshield.core.findings import ErrorRecord, Finding, Report
from modelshield.core.policy import Policy


def render(report: Report, *, policy: Policy) -> str:
    """The report as a JUnit XML document."""
    root = ET.Element("testsuites", name=f"modelshield {report.tool}")
    info = report.assessment
    for result in report.results:
        assessed = (
            info is not None and result.path == info.model and result.format == (info.model_kind)
        )
        if assessed and info is not None:
            seconds = {q.check: q.seconds for q in info.queries}
            cases = []
            for run in info.checks:
                findings = [f for f in result.findings if f.evidence.get("check") == run.check]
                errors = [e for e in result.errors if e.stage == f"assess:{run.check}"]
                skipped = run.detail if run.status == "skipped" else None
                cases.append((run.check, findings, errors, skipped, seconds.get(run.check, 0.0)))
            other = [f for f in result.findings if f.evidence.get("check") is None]
            loose = [e for e in result.errors if not e.stage.startswith("assess:")]
            if other or loose:
                cases.insert(0, ("model", other, loose, None, 0.0))
            _suite(root, f"assess {result.path}", cases, policy, result.duration_s)
        else:
            unfinished = [
                ErrorRecord(g.location, f"not analysed: {g.message}", g.rule_id)
                for g in result.unaccepted_gaps
            ]
            tool = "scan" if info is not None else report.tool  # an assessment scans its model
            cases = [
                (
                    result.path,
                    list(result.findings),
                    [*result.errors, *unfinished],
                    None,
                    result.duration_s,
                )
            ]
            _suite(root, f"{tool} {result.path}", cases, policy, result.duration_s)
    _totals(root, report.duration_s)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _suite(
    root: ET.Element,
    name: str,
    cases: Sequence[tuple[str, Sequence[Finding], Sequence[ErrorRecord], str | None, float]],
    policy: Policy,
    seconds: float,
) -> None:
    suite = ET.SubElement(root, "testsuite", name=_clean(name))
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
    suite.set("time", f"{seconds:.3f}")


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
    for key, value in grand.items():
        root.set(key, str(value))
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
