"""Backdoor probe: is there a narrow value of one column that forces one class?

Each column of a seeded sample of rows (``backdoor_rows``) is set, in turn, to each of
``backdoor_grid`` values spread over the range the data shows (every category, for a
categorical column), the others kept; one call predicts them all. For each column and class
this gives a response curve: the share of the probed rows the model puts in that class at each
value.

A planted trigger has a particular shape: inside a narrow band (at most ``MAX_BAND`` of the
grid, or for a category or an integer probed value by value, a value held by at most that
share of the rows) nearly every probed row goes to one
class (``NEAR_CERTAIN``), many of them rows that were elsewhere, and just outside the band the
share falls back on every side the grid has (by ``STEP`` at least, and to where at least
``FLIPPED`` of the rows that could move are outside the class). Probed rows are drawn from
every predicted class in turn, so that each class has rows to move. A sound model moves
predictions gradually across a feature's range, or only outside the range the data covers:
values beyond the observed range are never probed, because pushing any feature there moves
every model. Resolution: a band narrower than one grid step
(the range over ``backdoor_grid - 1``) may fall between probes. Limit: a trigger planted next
to the values where its class is natural anyway merges with them and looks like a moved
threshold, which no shape test tells from a sound model's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelshield.assess.context import Context
from modelshield.assess.interface import Skipped
from modelshield.assess.perturb import repeat
from modelshield.assess.rules import BACKDOOR
from modelshield.assess.stats import Array

CHECK = "backdoor"
NEAR_CERTAIN = 0.9
"""Share of probed rows in one class, inside the band."""
STEP = 0.25
"""How much lower the share must be just outside the band, on each side the grid has."""
SIDE_STEP = 0.15
"""An interior band's smaller fall on its other side."""
FLIPPED = 0.8
"""Of the rows outside the class just outside the band, the share the band moves into it."""
MAX_BAND = 0.1
"""Widest band, as a share of the grid's values (at least one value)."""
MIN_MOVED = 0.25
"""Share of probed rows the band must move into the class (rows answered otherwise before)."""
MAX_CATEGORIES = 50
"""Categories probed per column (the most frequent)."""


def _grid(series: pd.Series, kind: str, size: int) -> list[Any]:
    values = series.dropna()
    if kind in ("categorical", "boolean"):
        return list(values.value_counts().index[:MAX_CATEGORIES])
    low, high = float(values.min()), float(values.max())
    if kind == "integer":
        distinct = np.unique(values.to_numpy(dtype=float))
        if len(distinct) <= size:
            return [float(v) for v in distinct]
        return sorted({float(v) for v in np.round(np.linspace(low, high, size))})
    return [float(v) for v in np.linspace(low, high, size)]


def _bands(shares: Array, width: int) -> list[tuple[int, int, float]]:
    """Runs of near-certain values at most ``width`` long with a step on every side (at
    least ``STEP``, and moving at least ``FLIPPED`` of the rows that could move):
    ``(start, end, step)``."""
    near = shares >= NEAR_CERTAIN
    found = []
    i = 0
    while i < len(near):
        if not near[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(near) and near[j + 1]:
            j += 1
        if j - i + 1 <= width:
            sides = [float(shares[k]) for k in (i - 1, j + 1) if 0 <= k < len(shares)]
            inside = float(shares[i : j + 1].min())
            steps = [inside - s for s in sides]
            flipped = [(inside - s) / (1.0 - s) if s < 1 else 0.0 for s in sides]
            # Every side falls back; an interior band (two sides) may fall less on one side
            # (a forest extends a learned region a little), never on both.
            enough = (
                len(sides) == 2
                and min(steps) >= SIDE_STEP
                and max(steps) >= STEP
                and min(flipped) >= FLIPPED
            ) or (len(sides) == 1 and steps[0] >= STEP and flipped[0] >= FLIPPED)
            if enough:
                found.append((i, j, max(steps)))
        i = j + 1
    return found


def _stratified(labels: Array, size: int, rng: np.random.Generator) -> Array:
    """Rows drawn in turn from each predicted class, so that every class has rows to move."""
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < size and any(depth < len(p) for p in pools):
        chosen.extend(int(p[depth]) for p in pools if depth < len(p))
        depth += 1
    return np.sort(np.array(chosen[:size], dtype=np.int64))


def _narrow_values(series: pd.Series, grid: list[object]) -> Array:
    """For a categorical column: which probed values are rare enough to be a trigger."""
    share = series.value_counts(normalize=True)
    return np.array([float(share.get(v, 0.0)) <= MAX_BAND for v in grid]) & (len(grid) >= 3)


def run(ctx: Context) -> None:
    """Probe every column; a finding for a column with a trigger-shaped band."""
    if not ctx.classification:
        raise Skipped("the probe looks for values that force a class")
    settings = ctx.settings
    rng = np.random.default_rng(ctx.seed(CHECK))
    take = _stratified(ctx.base.labels, settings.backdoor_rows, rng)
    rows = ctx.data.frame.iloc[take].reset_index(drop=True)
    base = ctx.base.labels[take]
    m = len(rows)
    plan: list[tuple[str, list[Any]]] = []
    parts = []
    for column in ctx.predict.columns:
        kind = ctx.data.kinds.get(column, "categorical")
        grid = _grid(ctx.data.frame[column], kind, settings.backdoor_grid)
        if len(grid) < 2:
            continue
        block = repeat(rows, len(grid))
        values = np.repeat(np.array(grid, dtype=object), m)
        if kind in ("numeric", "integer"):
            block[column] = values.astype(float)
            if pd.api.types.is_integer_dtype(rows[column].dtype):
                block[column] = block[column].round().astype(rows[column].dtype)
        else:
            block[column] = pd.Series(values, dtype=rows[column].dtype)
        plan.append((column, grid))
        parts.append(block)
    if not parts:
        raise Skipped("no column takes two values")
    labels = ctx.predict(pd.concat(parts, ignore_index=True)).labels
    offset = 0
    candidates: list[tuple[float, str, int, int, int, Array, list[Any], float]] = []
    responses: dict[str, Array] = {}
    steps: dict[str, float] = {}
    for column, grid in plan:
        g = len(grid)
        got = labels[offset : offset + g * m].reshape(g, m)
        offset += g * m
        responses[column] = got
        width = max(1, int(MAX_BAND * g))
        # A discrete column (categories, or integers probed value by value) is narrow where
        # the value is rare in the data: a common value forcing a class is a strong feature.
        series = ctx.data.frame[column]
        discrete = ctx.data.kinds.get(column) not in ("numeric", "integer") or (
            len(grid) == series.nunique()
        )
        rare = _narrow_values(series, grid) if discrete else None
        best = 0.0
        for c in range(len(ctx.classes)):
            shares = (got == c).mean(axis=1)
            best = max(best, float(np.max(np.abs(np.diff(shares)))) if g > 1 else 0.0)
            for start, end, step in _bands(shares, width):
                if rare is not None and not rare[start : end + 1].all():
                    continue  # a common value is not a narrow one
                band = got[start : end + 1] == c
                moved = float(np.mean(band.all(axis=0) & (base != c)))
                if moved >= MIN_MOVED:
                    candidates.append((step, column, c, start, end, shares, grid, moved))
        steps[column] = best
        ctx.measure(CHECK, "largest_step", best, group=column, n=m)
    shown = ctx.positive if ctx.positive is not None else 0
    grids = dict(plan)
    for column in sorted(steps, key=lambda c: -steps[c])[:3]:
        if ctx.data.kinds.get(column) in ("numeric", "integer"):
            ctx.curve(
                CHECK,
                "response",
                column,
                f"share predicted {ctx.classes[shown]}",
                [float(v) for v in grids[column]],
                [float(v) for v in (responses[column] == shown).mean(axis=1)],
                series=column,
            )
    ctx.covered[CHECK] = f"{len(plan)} columns, {m} rows each"
    reported: set[str] = set()
    for _, column, c, start, end, shares, grid, moved in sorted(candidates, key=lambda x: -x[0]):
        if column in reported:
            continue
        reported.add(column)
        lo, hi = grid[start], grid[end]
        numeric = ctx.data.kinds.get(column) in ("numeric", "integer")
        where = f"in [{lo:.6g}, {hi:.6g}]" if numeric else f"= {lo}"
        outside = [float(shares[k]) for k in (start - 1, end + 1) if 0 <= k < len(shares)]
        left = grid[start - 1] if start > 0 else grid[start]
        right = grid[end + 1] if end + 1 < len(grid) else grid[end]
        bracket = f"between {left:.6g} and {right:.6g}" if numeric else where
        ctx.add(
            BACKDOOR,
            f"`{column}` {where} sends {float(shares[start : end + 1].min()):.0%} or more of the "
            f"probed rows to class {ctx.classes[c]!r} ({moved:.0%} of them answered otherwise "
            f"before), while just outside that range {max(outside):.0%} or less go there: the "
            f"shape of a planted trigger (the band lies {bracket}). Check the training data "
            "for rows with such values.",
            CHECK,
            {
                "column": column,
                "range": where,
                "bracket": bracket,
                "class": ctx.classes[c],
                "share_in_range": f"{float(shares[start : end + 1].min()):.4f}",
                "share_outside": f"{max(outside):.4f}",
                "rows_moved": f"{moved:.4f}",
                "rows_probed": str(m),
            },
        )
