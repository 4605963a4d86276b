"""Small inline SVG charts for the HTML report: horizontal bars with interval whiskers, and
line charts. No plotting library: a report must render where only modelshield is installed."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563")
"""Series colours (distinguishable, and readable on white)."""


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def bars(
    labels: Sequence[str],
    values: Sequence[float | None],
    lows: Sequence[float | None],
    highs: Sequence[float | None],
    *,
    title: str,
    reference: float | None = None,
    reference_label: str = "",
    top: float = 1.0,
) -> str:
    """Horizontal bars from 0 to ``top``, one per label, with interval whiskers."""
    label_w, plot_w, row_h = 230, 360, 22
    height = 40 + row_h * len(labels) + 24
    width = label_w + plot_w + 70
    scale = plot_w / top if top > 0 else 1.0
    out = [_open(width, height, title)]
    out.append(f'<text x="8" y="18" class="t">{escape(title)}</text>')
    y0 = 34
    for i, (label, value, low, high) in enumerate(zip(labels, values, lows, highs, strict=True)):
        y = y0 + i * row_h
        out.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(label[:40])}</text>'
        )
        if value is None:
            out.append(f'<text x="{label_w + 4}" y="{y + 14}" class="m">n/a</text>')
            continue
        w = max(0.0, min(value, top)) * scale
        out.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
            f'fill="{PALETTE[0]}" opacity="0.75"><title>{escape(label)}: {_fmt(value)}</title>'
            "</rect>"
        )
        if low is not None and high is not None:
            x1, x2 = label_w + low * scale, label_w + min(high, top) * scale
            yc = y + row_h / 2
            out.append(
                f'<path d="M{x1:.1f},{yc}H{x2:.1f}M{x1:.1f},{yc - 5}v10M{x2:.1f},{yc - 5}v10" '
                'stroke="#111" fill="none"/>'
            )
        out.append(f'<text x="{label_w + plot_w + 8}" y="{y + 14}">{_fmt(value)}</text>')
    bottom = y0 + row_h * len(labels)
    if reference is not None:
        x = label_w + reference * scale
        out.append(
            f'<path d="M{x:.1f},{y0 - 4}V{bottom + 2}" stroke="{PALETTE[1]}" '
            'stroke-dasharray="4 3"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" class="r">'
            f"{escape(reference_label)}</text>"
        )
    out.append(_axis_line(label_w, bottom, plot_w))
    out.append("</svg>")
    return "".join(out)


def lines(
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    diagonal: bool = False,
    y_range: tuple[float, float] | None = None,
) -> str:
    """A line chart of one or more series (name, xs, ys), with a legend."""
    width, height = 520, 300
    left, right, top_m, bottom_m = 56, 150, 30, 44
    pw, ph = width - left - right, height - top_m - bottom_m
    xs = [x for _, sx, _ in series for x in sx] or [0.0, 1.0]
    ys = [y for _, _, sy in series for y in sy] or [0.0, 1.0]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range if y_range is not None else (min(0.0, min(ys)), max(ys))
    if diagonal:
        x0, x1, y0, y1 = 0.0, 1.0, 0.0, 1.0
    x1 = x1 if x1 > x0 else x0 + 1.0
    y1 = y1 if y1 > y0 else y0 + 1.0

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top_m + ph - (y - y0) / (y1 - y0) * ph

    out = [_open(width, height, title), f'<text x="8" y="18" class="t">{escape(title)}</text>']
    out.append(
        f'<rect x="{left}" y="{top_m}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>'
    )
    for frac in (0.0, 0.5, 1.0):
        yv = y0 + frac * (y1 - y0)
        xv = x0 + frac * (x1 - x0)
        out.append(f'<text x="{left - 4}" y="{py(yv) + 4:.1f}" text-anchor="end">{_fmt(yv)}</text>')
        out.append(
            f'<text x="{px(xv):.1f}" y="{top_m + ph + 14}" text-anchor="middle">{_fmt(xv)}</text>'
        )
    out.append(
        f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle" class="m">'
        f"{escape(x_label)}</text>"
    )
    out.append(
        f'<text x="12" y="{top_m + ph / 2}" transform="rotate(-90 12 {top_m + ph / 2})" '
        f'text-anchor="middle" class="m">{escape(y_label)}</text>'
    )
    if diagonal:
        out.append(
            f'<path d="M{px(0)},{py(0)}L{px(1)},{py(1)}" stroke="#999" stroke-dasharray="4 3"/>'
        )
    for i, (name, sx, sy) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(sx, sy, strict=True))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in zip(sx, sy, strict=True):
            out.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(name)}: ({_fmt(x)}, {_fmt(y)})</title></circle>"
            )
        ly = top_m + 12 + i * 16
        out.append(
            f'<rect x="{left + pw + 10}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
        )
        out.append(f'<text x="{left + pw + 24}" y="{ly + 1}">{escape(name[:20])}</text>')
    out.append("</svg>")
    return "".join(out)


def _open(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
    )


def _axis_line(x: int, y: float, w: int) -> str:
    return (
        f'<path d="M{x},{y + 2}H{x + w}" stroke="#999"/>'
        f'<text x="{x}" y="{y + 16}" class="m">0</text>'
    )
