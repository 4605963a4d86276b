"""Text and HTML renderings of the governance report (``modelshield report --since``).

The report is a plain JSON document (its keys are listed in ``docs/governance.md``), computed
from the governance database by ``modelshield.gate.governance.changes``; these renderers
read it and never query anything. Every string from the database (paths, titles, project
names) is escaped: control characters in text, HTML entities in HTML. The HTML page is one
self-contained file (the HTML report's stylesheet, inline SVG charts, no script).
"""

from __future__ import annotations

from html import escape
from typing import Any

from modelshield.report import svg
from modelshield.report.html import STYLE

_TREND_HEAD = ("model", "check", "metric", "group", "first", "last", "change", "threshold", "runs")
_MAX_ROWS = 500
"""Rows of one table shown at most (the JSON document holds them all)."""


def _clean(text: Any) -> str:
    """A string safe for a terminal: control characters escaped."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text)
    )


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4g}"


def _where(item: dict[str, Any], projects: int) -> str:
    path = item["path"] if item["path"] != "." else "(project files)"
    return f"{item['project']}: {path}" if projects > 1 else path


def _headline(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    return (
        f"{s['new_findings']} new finding(s), {s['fixed_findings']} fixed; "
        f"{s['started_failing']} model(s) started failing, {s['started_passing']} started "
        f"passing; {s['new_models']} new model(s), {s['removed_models']} removed; "
        f"{s['failing']} failing now"
    )


def render_text(doc: dict[str, Any]) -> str:
    """The report for a terminal."""
    runs = doc["runs"]
    n = len(runs["projects"])
    lines = [
        f"modelshield report: {doc['since']} .. {doc['until']} ({_clean(doc['database'])})",
        f"runs in the window: {runs['in_window']} ("
        + ", ".join(f"{k} {v}" for k, v in runs["verdicts"].items())
        + f"), {runs['before_window']} before it; projects: "
        + (", ".join(_clean(p) for p in runs["projects"]) or "none"),
    ]
    if not runs["in_window"]:
        lines.append("no run was recorded in this window")
        return "\n".join(lines) + "\n"
    lines.append(_headline(doc))
    changed = [m for m in doc["models"] if m["change"]]
    if changed:
        lines.append("")
        lines.append("Models whose verdict changed:")
        lines.extend(
            f"  {m['change']:<16} {_clean(_where(m, n))} "
            f"({m['previous_outcome']} -> {m['outcome']})"
            for m in changed
        )
    for status, title in (("new", "New models"), ("removed", "Removed models")):
        chosen = [m for m in doc["models"] if m["status"] == status]
        if chosen:
            lines.append("")
            lines.append(f"{title}:")
            lines.extend(
                f"  {_clean(_where(m, n))} ({m['kind']}, {m['outcome'] or m['previous_outcome']})"
                for m in chosen
            )
    for key, title in (("new_findings", "New findings"), ("fixed_findings", "Fixed findings")):
        items = doc[key]
        if items:
            lines.append("")
            lines.append(f"{title}:")
            for f in items[:_MAX_ROWS]:
                count = f" x{f['count']}" if f["count"] > 1 else ""
                lines.append(
                    f"  {f['severity'].upper():<8} {f['rule_id']}  {_clean(_where(f, n))}{count}"
                )
                lines.append(f"           {_clean(f['title'])}")
            if len(items) > _MAX_ROWS:
                lines.append(f"  ... and {len(items) - _MAX_ROWS} more (see --format json)")
    if doc["metrics"]:
        lines.append("")
        lines.append("Metric trends (first -> last in the window):")
        for t in doc["metrics"][:_MAX_ROWS]:
            group = f" [{_clean(t['group'])}]" if t["group"] else ""
            limit = f", threshold {_num(t['threshold'])}" if t["threshold"] is not None else ""
            state = "" if t["passed"] is None else " passed" if t["passed"] else " FAILED"
            lines.append(
                f"  {_clean(_where(t, n))}: {t['check']}.{_clean(t['name'])}{group}: "
                f"{_num(t['first'])} -> {_num(t['last'])} {_signed(t['change'])} "
                f"({len(t['series'])} run(s){limit}){state}"
            )
    return "\n".join(lines) + "\n"


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    top = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows[:_MAX_ROWS]
    )
    more = (
        f"<p class=muted>... and {len(rows) - _MAX_ROWS} more (the JSON report lists them)</p>"
        if len(rows) > _MAX_ROWS
        else ""
    )
    return f"<table>{top}{body}</table>{more}"


def _tile(label: str, value: int, colour: str) -> str:
    cls = "tile zero" if value == 0 else "tile"
    style = "" if value == 0 else f" style=background:{colour}"
    return f"<div class='{cls}'{style}><b>{value}</b>{escape(label)}</div>"


def render_html(doc: dict[str, Any]) -> str:
    """A self-contained HTML page (no script, no external resource)."""
    runs = doc["runs"]
    s = doc["summary"]
    n = len(runs["projects"])
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>modelshield governance report</title><style>{STYLE}</style></head><body>",
        "<h1>modelshield governance report</h1>",
        f"<p class=muted>{escape(doc['since'])} .. {escape(doc['until'])} · "
        f"{escape(doc['database'])} · {runs['in_window']} run(s) in the window, "
        f"{runs['before_window']} before it · projects: "
        f"{escape(', '.join(runs['projects']) or 'none')}</p>",
        "<div class=summary>",
        f"<p class=lead>{escape(_headline(doc))}</p><div class=tiles>",
        _tile("new findings", s["new_findings"], "#dc2626"),
        _tile("fixed findings", s["fixed_findings"], "#16a34a"),
        _tile("started failing", s["started_failing"], "#dc2626"),
        _tile("started passing", s["started_passing"], "#16a34a"),
        _tile("new models", s["new_models"], "#2563eb"),
        _tile("removed models", s["removed_models"], "#6b7280"),
        _tile("failing now", s["failing"], "#7f1d1d"),
        "</div></div>",
    ]
    if runs["latest"]:
        parts.append("<h2>Latest runs</h2>")
        parts.append(
            _table(
                ("project", "time", "verdict", "commit", "modelshield"),
                [
                    (r["project"], r["time"], r["verdict"], r["git_commit"] or "", r["version"])
                    for r in runs["latest"]
                ],
            )
        )
    changed = [m for m in doc["models"] if m["change"]]
    if changed:
        parts.append("<h2>Models whose verdict changed</h2>")
        parts.append(
            _table(
                ("model", "change", "before", "now"),
                [
                    (_where(m, n), m["change"], m["previous_outcome"] or "", m["outcome"] or "")
                    for m in changed
                ],
            )
        )
    for key, title in (("new_findings", "New findings"), ("fixed_findings", "Fixed findings")):
        if doc[key]:
            parts.append(f"<h2>{title}</h2>")
            parts.append(
                _table(
                    ("severity", "rule", "model", "what", "count"),
                    [
                        (f["severity"], f["rule_id"], _where(f, n), f["title"], str(f["count"]))
                        for f in doc[key]
                    ],
                )
            )
    parts.append("<h2>Models</h2>")
    parts.append(
        _table(
            ("model", "kind", "status", "outcome", "new", "fixed", "digest", "last run"),
            [
                (
                    _where(m, n),
                    m["kind"],
                    m["status"] + (" (content changed)" if m["digest_changed"] else ""),
                    m["outcome"] or f"(was {m['previous_outcome']})",
                    str(sum(f["count"] for f in m["new_findings"])),
                    str(sum(f["count"] for f in m["fixed_findings"])),
                    (m["digest"] or "")[:12],
                    m["last_run"]["time"],
                )
                for m in doc["models"]
            ],
        )
    )
    if doc["metrics"]:
        parts.append("<h2>Metric trends</h2><div class=charts>")
        charted = [t for t in doc["metrics"] if len(t["series"]) > 1 and not t["group"]]
        for t in charted[:24]:
            points = [p for p in t["series"] if p["value"] is not None]
            if len(points) < 2:
                continue
            parts.append(
                svg.lines(
                    [(t["name"], list(range(1, len(points) + 1)), [p["value"] for p in points])],
                    title=f"{_where(t, n)}: {t['check']} {t['name']}"[:60],
                    x_label="run",
                    y_label=t["name"],
                )
            )
        parts.append("</div>")
        parts.append(
            _table(
                _TREND_HEAD,
                [
                    (
                        _where(t, n),
                        t["check"],
                        t["name"],
                        t["group"],
                        _num(t["first"]),
                        _num(t["last"]),
                        _signed(t["change"]),
                        _num(t["threshold"]),
                        str(len(t["series"])),
                    )
                    for t in doc["metrics"]
                ],
            )
        )
    parts.append("</body></html>\n")
    return "".join(parts)
