"""A self-contained HTML page for people: a summary a manager reads in ten seconds (the
verdict in one sentence, findings by severity, one line per pillar), then each pillar with its
findings, their evidence and how to fix them, and for an assessment a section per check with
plots (inline SVG: metrics with their intervals, group rates against the four-fifths line,
the reliability curve, robustness and evasion curves) and the predictions each check asked
for. No script, no stylesheet or image from elsewhere: the page opens offline and is safe to
attach to a CI run."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from html import escape

from modelshield.core.findings import FileResult, Finding, Report, Severity
from modelshield.core.measurements import Assessment, Measurement
from modelshield.core.policy import ExitCode, Policy
from modelshield.core.rules import Rule, get_rule
from modelshield.report import Invocation, svg
from modelshield.report.text import PILLAR_ORDER, PILLAR_TITLES

_VERDICT = {
    ExitCode.OK: ("PASS", "#16a34a"),
    ExitCode.FINDINGS: ("FAIL", "#dc2626"),
    ExitCode.ERROR: ("ERROR", "#9333ea"),
}
_SEVERITY_COLOUR = {
    Severity.CRITICAL: "#7f1d1d",
    Severity.HIGH: "#dc2626",
    Severity.MEDIUM: "#d97706",
    Severity.LOW: "#0e7490",
    Severity.INFO: "#6b7280",
}
STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#111;
padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 4px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f3f4f6}.v{font-weight:700;color:#fff;
padding:2px 10px;border-radius:4px}.sev{font-weight:700}.critical,.high{color:#b91c1c}
.medium{color:#b45309}.low{color:#0e7490}.info{color:#6b7280}.muted{color:#6b7280}
svg{margin:6px 12px 6px 0;font-size:11px}svg .t{font-weight:700;font-size:12px}
svg .m{fill:#6b7280}svg .r{fill:#dc2626}.charts{display:flex;flex-wrap:wrap}
.summary{border:1px solid #ddd;border-radius:6px;padding:12px 16px;background:#fafafa}
.lead{font-size:17px;margin:4px 0 10px}.tiles{display:flex;gap:10px;flex-wrap:wrap}
.tile{border-radius:6px;color:#fff;padding:6px 14px;min-width:80px;text-align:center}
.tile b{display:block;font-size:24px}.tile.zero{background:#e5e7eb;color:#6b7280}
.finding{border-left:4px solid #ddd;padding:4px 10px;margin:10px 0}
.finding .where{font-family:ui-monospace,monospace;font-size:12px}
details{margin-top:4px}summary{cursor:pointer;color:#1d4ed8}
"""
"""The page's stylesheet, shared by the other HTML pages of the reporters."""
_UNIT = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc")


def render(report: Report, *, policy: Policy, invocation: Invocation | None = None) -> str:
    """The page, as text."""
    code = policy.exit_code(report)
    word, colour = _VERDICT[code]
    source = invocation.policy_source if invocation is not None else None
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>modelshield {escape(report.tool)} report: {word}</title><style>{STYLE}</style>",
        "</head><body>",
        f"<h1>modelshield {escape(report.tool)} <span class=v style=background:{colour}>"
        f"{word}</span></h1>",
        f"<p class=muted>modelshield {escape(report.version)} · policy: "
        f"{escape(source or 'built-in defaults')} · fail on {policy.fail_on.label} · exit code "
        f"{int(code)} · {report.duration_s:.2f} s</p>",
        _summary(report, policy, code),
    ]
    if report.assessment is not None:
        parts.append(_overview(report.assessment))
    parts.append(_findings(report, policy))
    if report.assessment is not None:
        parts.append(_checks(report.assessment, report, policy))
    if report.excluded:
        parts.append(_excluded(report))
    parts.append("</body></html>\n")
    return "".join(parts)


def _pillar_of(result: FileResult, report: Report) -> str:
    if result.pillar:
        return result.pillar
    if report.assessment is not None and result.path != report.assessment.model:
        return "scan"
    return report.tool


def _summary(report: Report, policy: Policy, code: ExitCode) -> str:
    """The part a manager reads: the verdict as a sentence, counts, one row per pillar."""
    failing = [f for f in report.findings if f.severity >= policy.fail_on]
    unfinished = len(report.unfinished)
    if code is ExitCode.FINDINGS:
        lead = (
            f"<b>Not fit to ship:</b> {len(failing)} finding{_s(len(failing))} at or above "
            f"{policy.fail_on.label} must be fixed or reviewed."
        )
    elif code is ExitCode.ERROR:
        lead = (
            f"<b>Not fully checked:</b> {unfinished} input{_s(unfinished)} could not be "
            "analysed fully, so no clean verdict can be given."
        )
    else:
        lead = (
            f"<b>Passed:</b> every input was checked and no finding reaches {policy.fail_on.label}."
        )
    counts = report.count_by_severity()
    tiles = "".join(
        f"<div class='tile{' zero' if not n else ''}'"
        + (f" style=background:{_SEVERITY_COLOUR[sev]}" if n else "")
        + f"><b>{n}</b>{sev.label}</div>"
        for sev, n in counts.items()
    )
    rows = []
    for pillar, results in _by_pillar(report):
        found = [f for r in results for f in r.findings]
        bad = sum(1 for f in found if f.severity >= policy.fail_on)
        errors = sum(1 for r in results if not r.finished)
        verdict = "fail" if bad else ("error" if errors else "pass")
        rows.append(
            (
                PILLAR_TITLES.get(pillar, pillar),
                verdict,
                str(len(results)),
                f"{len(found)} ({bad} at or above {policy.fail_on.label})",
                str(errors),
            )
        )
    notes = []
    if report.suppressed:
        notes.append(f"{report.suppressed} suppressed by the policy")
    if report.baselined:
        notes.append(f"{report.baselined} accepted by the baseline")
    if report.excluded_total:
        notes.append(f"{report.excluded_total} paths left out of the search")
    return (
        f"<section class=summary><p class=lead>{lead}</p><div class=tiles>{tiles}</div>"
        + _table(("pillar", "verdict", "inputs", "findings", "not fully analysed"), rows)
        + (f"<p class=muted>{escape('; '.join(notes))}</p>" if notes else "")
        + "</section>"
    )


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _overview(info: Assessment) -> str:
    rows = [
        ("model", f"{info.model} ({info.model_kind})"),
        (
            "loaded",
            (info.loader or "-")
            + ("; scanned first" if info.scanned else "")
            + ("; loaded with --trust" if info.trusted else ""),
        ),
        ("data", f"{info.data}: {info.rows:,} of {info.rows_total:,} rows used"),
        ("target", f"{info.target} ({info.task or 'not run'})"),
    ]
    if info.classes:
        rows.append(
            (
                "classes",
                ", ".join(info.classes)
                + (f" (positive: {info.positive_class})" if info.positive_class else ""),
            )
        )
    if info.sensitive:
        rows.append(("sensitive", ", ".join(info.sensitive)))
    rows.append(("predictions", f"{info.total_calls} calls, {info.total_rows:,} rows"))
    rows.append(("seed", str(info.seed)))
    return "<h2>Assessment</h2>" + _table(("", ""), rows, header=False)


def _by_pillar(report: Report) -> list[tuple[str, list[FileResult]]]:
    """The report's results grouped by pillar, in the pillars' usual order."""
    by_pillar: dict[str, list[FileResult]] = defaultdict(list)
    for result in report.results:
        by_pillar[_pillar_of(result, report)].append(result)
    order = [p for p in PILLAR_ORDER if p in by_pillar]
    order += sorted(set(by_pillar) - set(PILLAR_ORDER))
    return [(pillar, by_pillar[pillar]) for pillar in order]


def _findings(report: Report, policy: Policy) -> str:
    out = []
    for pillar, results in _by_pillar(report):
        found = sorted((f for r in results for f in r.findings), key=lambda f: -f.severity)
        title = PILLAR_TITLES.get(pillar, pillar)
        out.append(f"<h2>{escape(title)}: {len(found)} finding{_s(len(found))}</h2>")
        if not found:
            out.append(f"<p>No findings in {len(results)} input{_s(len(results))}.</p>")
        repeats = Counter((f.rule_id, f.location.path, f.title) for f in found)
        shown: set[tuple[str, str, str]] = set()
        for f in found:
            key = (f.rule_id, f.location.path, f.title)
            if key in shown:
                continue
            shown.add(key)
            out.append(_finding(f, repeats[key]))
        errors = [e for r in results for e in r.errors]
        if errors:
            out.append("<h3>Errors</h3>")
            out.append(
                _table(
                    ("stage", "where", "message"),
                    [(e.stage, e.location.display(), e.message) for e in errors],
                )
            )
        gaps = [g for r in results for g in r.gaps]
        if gaps:
            out.append("<h3>Not analysed</h3>")
            out.append(
                _table(
                    ("rule", "where", "accepted", "what"),
                    [
                        (g.rule_id, g.location.display(), "yes" if g.accepted else "no", g.message)
                        for g in gaps
                    ],
                )
            )
    return "".join(out)


def _finding(f: Finding, times: int = 1) -> str:
    evidence = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(f.evidence[k])}</td></tr>" for k in sorted(f.evidence)
    )
    where = escape(f.location.display())
    line = f.evidence.get("line")
    if line and not f.location.members:
        where += f" line {escape(line)}"
    more = f" <span class=muted>×{times} in this file</span>" if times > 1 else ""
    rule = _rule(f.rule_id)
    fix = ""
    if rule is not None:
        refs = "".join(
            f"<li><a href='{escape(r)}'>{escape(r)}</a></li>"
            if r.startswith(("https://", "http://"))
            else f"<li>{escape(r)}</li>"
            for r in rule.references
        )
        fix = (
            f"<details><summary>Why it matters and how to fix it</summary><p>{escape(rule.why)}"
            f"</p><p class=muted>{escape(rule.what)}</p>"
            + (f"<ul>{refs}</ul>" if refs else "")
            + "</details>"
        )
    return (
        f"<div class=finding style='border-color:{_SEVERITY_COLOUR[f.severity]}'>"
        f"<span class='sev {f.severity.label}'>{f.severity.label.upper()}</span> "
        f"<b>{escape(f.rule_id)}</b> {escape(f.title)}{more}"
        f"<div class=where>{where}</div><p>{escape(f.message)}</p>"
        + (f"<table>{evidence}</table>" if evidence else "")
        + fix
        + "</div>"
    )


def _rule(rule_id: str) -> Rule | None:
    try:
        return get_rule(rule_id)
    except KeyError:
        return None


def _excluded(report: Report) -> str:
    rows = [(e.path, e.reason, e.pattern) for e in report.excluded]
    more = report.excluded_total - len(rows)
    return (
        f"<h2>Left out of the search ({report.excluded_total})</h2>"
        + _table(("path", "why", "what matched"), rows)
        + (f"<p class=muted>... and {more} more</p>" if more > 0 else "")
    )


def _checks(info: Assessment, report: Report, policy: Policy) -> str:
    by_check: dict[str, list[Measurement]] = defaultdict(list)
    for m in info.measurements:
        by_check[m.check].append(m)
    failing = {f.evidence.get("check") for f in report.findings if f.severity >= policy.fail_on}
    out = ["<h2>Checks</h2>"]
    status_rows = []
    for run in info.checks:
        status: str = run.status
        if status == "ran":
            status = "failed" if run.check in failing else "passed"
        status_rows.append((run.check, status, run.detail))
    out.append(_table(("check", "status", "detail"), status_rows))
    for run in info.checks:
        found = by_check.get(run.check, [])
        curves = [c for c in info.curves if c.check == run.check]
        if run.status != "ran" or not (found or curves):
            continue
        out.append(f"<h2>{escape(run.check.capitalize())}</h2><div class=charts>")
        out.extend(_charts(run.check, found, info, policy))
        names: dict[str, list[tuple[str, list[float], list[float]]]] = defaultdict(list)
        labels: dict[str, tuple[str, str]] = {}
        for c in curves:
            names[c.name].append((c.series or c.name, list(c.x), list(c.y)))
            labels[c.name] = (c.x_label, c.y_label)
        for name, series in names.items():
            x_label, y_label = labels[name]
            out.append(
                svg.lines(
                    series[:7],
                    title=name.replace("_", " "),
                    x_label=x_label,
                    y_label=y_label,
                    diagonal=name == "reliability",
                )
            )
        out.append("</div>")
        out.append(
            _table(
                ("figure", "rows", "value", "interval", "n"),
                [(m.name, m.group or "all", _num(m.value), _ci(m), str(m.n)) for m in found],
            )
        )
    out.append("<h2>Predictions asked of the model</h2>")
    out.append(
        _table(
            ("check", "calls", "rows", "seconds"),
            [(q.check, str(q.calls), f"{q.rows:,}", f"{q.seconds:.2f}") for q in info.queries],
        )
    )
    return "".join(out)


def _charts(check: str, found: list[Measurement], info: Assessment, policy: Policy) -> list[str]:
    charts = []
    overall = [m for m in found if not m.group and m.name in _UNIT]
    if overall:
        charts.append(
            svg.bars(
                [m.name for m in overall],
                [m.value for m in overall],
                [m.low for m in overall],
                [m.high for m in overall],
                title=f"{check}: metrics with intervals",
            )
        )
    if check == "fairness":
        rates = [m for m in found if m.name == "selection_rate"]
        columns: dict[str, list[Measurement]] = defaultdict(list)
        for m in rates:
            key = " & ".join(part.split("=")[0].split(" in ")[0] for part in m.group.split(" & "))
            columns[key].append(m)
        for column, ms in columns.items():
            eligible = [
                m.value
                for m in ms
                if m.value is not None and m.n >= policy.assess.fairness_min_rows
            ]
            ref = max(eligible) * policy.assess.min_dp_ratio if eligible else None
            charts.append(
                svg.bars(
                    [m.group for m in ms],
                    [m.value for m in ms],
                    [m.low for m in ms],
                    [m.high for m in ms],
                    title=f"selection rate by {column}",
                    reference=ref,
                    reference_label="four-fifths of the highest",
                )
            )
    if check == "slices":
        worst = [m for m in found if m.group][:12]
        if worst and info.task == "classification":
            charts.append(
                svg.bars(
                    [m.group for m in worst],
                    [m.value for m in worst],
                    [None] * len(worst),
                    [None] * len(worst),
                    title="weakest slices: accuracy",
                )
            )
    return charts


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]], header: bool = True) -> str:
    top = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{top}{body}</table>"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _ci(m: Measurement) -> str:
    return "" if m.low is None or m.high is None else f"{m.low:.4g} - {m.high:.4g}"
