"""Text and HTML renderings of the guard's governance summary (``guard report``).

The summary is a plain JSON document (``modelshield/guard/schema/summary.schema.json``);
these renderers read it and never query anything. Every string from the log (client ids,
reasons, feature names, alert messages) is escaped: control characters in text, HTML
entities in HTML.
"""

from __future__ import annotations

import html
from typing import Any

_DECISIONS = ("allow", "flag", "block", "reject", "error")
_COLOURS = {
    "allow": "#4c9f70",
    "flag": "#e0a030",
    "block": "#c8453c",
    "reject": "#7a6fb0",
    "error": "#555555",
}


def _clean(text: Any) -> str:
    """A string safe for a terminal: control characters escaped."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text)
    )


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    return str(value)


def render_text(summary: dict[str, Any]) -> str:
    """The summary for a terminal."""
    lines = [
        f"modelshield guard report: {summary['since']} .. {summary['until']}",
        f"total requests: {summary['total_requests']}",
        "decisions: " + ", ".join(f"{k} {summary['decisions'].get(k, 0)}" for k in _DECISIONS),
    ]
    lat = summary["latency_ms"]
    lines.append(
        f"latency (ms): p50 {_num(lat['p50'])}  p90 {_num(lat['p90'])}  p99 {_num(lat['p99'])}"
        f"  max {_num(lat['max'])}"
    )
    if summary["reasons"]:
        lines.append("reasons:")
        for r in summary["reasons"][:20]:
            per = ", ".join(f"{k} {v}" for k, v in sorted(r["decisions"].items()))
            lines.append(f"  {_clean(r['reason'])}: {r['count']} ({per})")
    if summary["drift"]:
        lines.append("drift (PSI / KS / chi2 p):")
        for d in summary["drift"]:
            mark = "  DRIFTED" if d["drifted"] else ""
            lines.append(
                f"  {_clean(d['feature'])}: {_num(d['psi'])} / {_num(d['ks'])} / "
                f"{_num(d['chi2_p'])}  ({d['count']} values){mark}"
            )
    if summary["top_clients"]:
        lines.append("top clients:")
        lines.extend(
            f"  {_clean(c['client'])}: {c['requests']} requests, {c['flagged']} flagged, "
            f"{c['blocked']} blocked"
            for c in summary["top_clients"]
        )
    perf = summary["performance"]
    if perf["labelled"]:
        lines.append(
            f"performance: {perf['labelled']} labelled, accuracy {_num(perf['accuracy'])}, "
            f"MAE {_num(perf['mae'])}"
        )
    if summary["alerts"]:
        lines.append("alerts:")
        lines.extend(
            f"  {a['time']} {_clean(a['kind'])} {_clean(a['subject'])}: {_clean(a['message'])}"
            for a in summary["alerts"][:20]
        )
    return "\n".join(lines) + "\n"


def _bars(timeline: list[dict[str, Any]]) -> str:
    """A stacked bar chart of decisions over time, as inline SVG."""
    if not timeline:
        return "<p>No requests in this range.</p>"
    width, height = 720, 160
    top = max(sum(t.get(k, 0) for k in _DECISIONS) for t in timeline) or 1
    step = width / len(timeline)
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    for i, t in enumerate(timeline):
        y = float(height)
        for k in _DECISIONS:
            n = t.get(k, 0)
            if not n:
                continue
            h = height * n / top
            y -= h
            parts.append(
                f'<rect x="{i * step:.1f}" y="{y:.1f}" width="{max(step - 1, 1):.1f}" '
                f'height="{h:.1f}" fill="{_COLOURS[k]}"><title>{html.escape(t["start"])} '
                f"{k}: {n}</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


def render_html(summary: dict[str, Any]) -> str:
    """A self-contained HTML page (no script, no external resource)."""
    e = html.escape

    def table(headers: list[str], rows: list[list[Any]]) -> str:
        head = "".join(f"<th>{e(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    lat = summary["latency_ms"]
    sections = [
        f"<h1>modelshield guard report</h1><p>{e(summary['since'])} .. {e(summary['until'])}"
        f" &middot; {summary['total_requests']} requests</p>",
        "<h2>Decisions</h2>"
        + table(list(_DECISIONS), [[summary["decisions"].get(k, 0) for k in _DECISIONS]]),
        "<h2>Traffic</h2>" + _bars(summary["timeline"]),
        "<h2>Latency (ms)</h2>"
        + table(
            ["p50", "p90", "p99", "max"], [[_num(lat[k]) for k in ("p50", "p90", "p99", "max")]]
        ),
        "<h2>Reasons</h2>"
        + table(["reason", "count"], [[r["reason"], r["count"]] for r in summary["reasons"]]),
        "<h2>Drift</h2>"
        + table(
            ["feature", "values", "PSI", "KS", "chi2 p", "drifted"],
            [
                [
                    d["feature"],
                    d["count"],
                    _num(d["psi"]),
                    _num(d["ks"]),
                    _num(d["chi2_p"]),
                    "yes" if d["drifted"] else "no",
                ]
                for d in summary["drift"]
            ],
        ),
        "<h2>Top clients</h2>"
        + table(
            ["client", "requests", "flagged", "blocked"],
            [
                [c["client"], c["requests"], c["flagged"], c["blocked"]]
                for c in summary["top_clients"]
            ],
        ),
        "<h2>Blocked and flagged</h2>"
        + table(
            ["time", "client", "decision", "status", "reasons"],
            [
                [r["time"], r["client"], r["decision"], r["status"], ", ".join(r["reasons"])]
                for r in summary["recent"]
            ],
        ),
        "<h2>Alerts</h2>"
        + table(
            ["time", "kind", "subject", "message"],
            [[a["time"], a["kind"], a["subject"], a["message"]] for a in summary["alerts"]],
        ),
    ]
    style = (
        "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
        "margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>modelshield guard report</title><style>{style}</style></head><body>"
        + "".join(sections)
        + "</body></html>\n"
    )
