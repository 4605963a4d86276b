"""A self-contained HTML page: the verdict, the findings, and for an assessment a section per
check with plots (inline SVG: metrics with their intervals, group rates against the
four-fifths line, the reliability curve, robustness and evasion curves) and the predictions
each check asked for. No script, no external resource: the page opens offline and is safe to
attach to a CI run."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from html import escape

from modelshield.core.findings import Finding, Report
from modelshield.core.measurements import Assessment, Measurement
from modelshield.core.policy import ExitCode, Policy
from modelshield.report import Invocation, svg

_VERDICT = {
    ExitCode.OK: ("PASS", "#16a34a"),
    ExitCode.FINDINGS: ("FAIL", "#dc2626"),
    ExitCode.ERROR: ("ERROR", "#9333ea"),
}
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#111;
padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f3f4f6}.v{font-weight:700;color:#fff;
padding:2px 10px;border-radius:4px}.sev{font-weight:700}.critical,.high{color:#b91c1c}
.medium{color:#b45309}.low{color:#0e7490}.info{color:#6b7280}.muted{color:#6b7280}
svg{margin:6px 12px 6px 0;font-size:11px}svg .t{font-weight:700;font-size:12px}
svg .m{fill:#6b7280}svg .r{fill:#dc2626}.charts{display:flex;flex-wrap:wrap}
"""
_UNIT = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc")


def render(report: Report, *, policy: Policy, invocation: Invocation | None = None) -> str:
    """The page, as text."""
    code = policy.exit_code(report)
    word, colour = _VERDICT[code]
    source = invocation.policy_source if invocation is not None else None
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>modelshield {escape(report.tool)} report</title><style>{_CSS}</style>",
        "</head><body>",
        f"<h1>modelshield {escape(report.tool)} <span class=v style=background:{colour}>"
        f"{word}</span></h1>",
        f"<p class=muted>modelshield {escape(report.version)} · policy: "
        f"{escape(source or 'built-in defaults')} · fail on {policy.fail_on.label} · exit code "
        f"{int(code)} · {report.duration_s:.2f} s</p>",
    ]
    if report.assessment is not None:
        parts.append(_overview(report.assessment))
    parts.append(_findings(report))
    if report.assessment is not None:
        parts.append(_checks(report.assessment, report, policy))
    parts.append("</body></html>\n")
    return "".join(parts)


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


def _findings(report: Report) -> str:
    found = sorted(report.findings, key=lambda f: -f.severity)
    out = [f"<h2>Findings ({len(found)})</h2>"]
    if not found:
        out.append("<p>No findings.</p>")
    out.extend(_finding(f) for f in found)
    errors = report.errors
    if errors:
        out.append("<h2>Errors</h2>")
        out.append(
            _table(
                ("stage", "where", "message"),
                [(e.stage, e.location.display(), e.message) for e in errors],
            )
        )
    gaps = [g for r in report.results for g in r.gaps]
    if gaps:
        out.append("<h2>Not analysed</h2>")
        out.append(
            _table(
                ("rule", "accepted", "what"),
                [(g.rule_id, "yes" if g.accepted else "no", g.message) for g in gaps],
            )
        )
    return "".join(out)


def _finding(f: Finding) -> str:
    evidence = " · ".join(
        f"{escape(k)}: <b>{escape(f.evidence[k])}</b>" for k in sorted(f.evidence)
    )
    return (
        f"<p><span class='sev {f.severity.label}'>{f.severity.label.upper()}</span> "
        f"<b>{escape(f.rule_id)}</b> {escape(f.title)}<br>{escape(f.message)}"
        f"<br><span class=muted>{escape(f.location.display())}"
        + (f"<br>{evidence}" if evidence else "")
        + "</span></p>"
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
