"""The assessment's part of the terminal report: what ran on what, each check's figures with
their intervals, and the predictions every check asked for."""

from __future__ import annotations

from collections import defaultdict

from modelshield.core.measurements import Assessment, Measurement

MAX_GROUP_LINES = 8
"""Figures about groups and slices listed per check; the JSON and HTML reports list all."""


def lines(info: Assessment) -> list[tuple[str, str]]:
    """``(text, style)`` lines, in the order they are shown."""
    from modelshield.report.text import safe

    out: list[tuple[str, str]] = []
    how = [info.model_kind]
    if info.loader:
        how.append(safe(info.loader))
    if info.scanned:
        how.append("scanned before loading" + (", loaded with --trust" if info.trusted else ""))
    out.append((f"Model: {safe(info.model)} ({'; '.join(how)})", "bold"))
    used = f"{info.rows:,} of {info.rows_total:,} rows"
    out.append((f"Data: {safe(info.data)}: {used}, target {safe(info.target)!r}", ""))
    if info.task:
        task = info.task
        if info.classes:
            shown = ", ".join(safe(c) for c in info.classes[:10])
            task += f"; classes {shown}"
        if info.positive_class:
            task += f"; positive class {safe(info.positive_class)}"
        if info.sensitive:
            task += f"; sensitive {', '.join(safe(s) for s in info.sensitive)}"
        out.append((f"Task: {task}; seed {info.seed}", "dim"))
    by_check: dict[str, list[Measurement]] = defaultdict(list)
    for m in info.measurements:
        by_check[m.check].append(m)
    for run in info.checks:
        detail = f" ({safe(run.detail)})" if run.detail else ""
        if run.status != "ran":
            out.append((f"  {run.check}: {run.status}{detail}", "dim"))
            continue
        found = by_check.get(run.check, [])
        overall = [m for m in found if not m.group]
        grouped = [m for m in found if m.group]
        figures = " · ".join(figure(m) for m in overall)
        out.append(
            (f"  {run.check}{detail}: {figures}" if figures else f"  {run.check}{detail}", "")
        )
        out.extend(
            (f"      {safe(m.group)}: {figure(m)} (n={m.n})", "dim")
            for m in grouped[:MAX_GROUP_LINES]
        )
        if len(grouped) > MAX_GROUP_LINES:
            out.append(
                (
                    f"      ... {len(grouped) - MAX_GROUP_LINES} more (--format json or "
                    "html lists them)",
                    "dim",
                )
            )
    if info.queries:
        parts = ", ".join(f"{q.check} {q.calls}/{q.rows:,}" for q in info.queries if q.calls)
        out.append(
            (
                f"Queries: {info.total_calls} calls, {info.total_rows:,} rows predicted "
                f"(calls/rows: {parts})",
                "",
            )
        )
    return out


def figure(m: Measurement) -> str:
    """``name value [low-high]``."""
    if m.value is None:
        return f"{m.name} n/a"
    text = f"{m.name} {m.value:.3g}"
    if m.low is not None and m.high is not None:
        text += f" [{m.low:.3g}-{m.high:.3g}]"
    return text
