"""Fairness per sensitive column and per pair of them (intersections).

For every group: selection rate (share predicted the positive class), accuracy, true- and
false-positive rates, each with a bootstrap interval. Between groups of at least
``fairness_min_rows`` rows: demographic-parity difference and ratio (the four-fifths rule)
and the equalized-odds difference, with intervals from the same resamples. A threshold is
failed only when the whole interval is on the wrong side of it, so that small groups do not
raise false alarms. Everything is one matrix product per figure for all resamples at once."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from modelshield.assess.context import Context, fmt, fmt_ci
from modelshield.assess.interface import Skipped
from modelshield.assess.rules import DISPARATE_IMPACT, EQUALIZED_ODDS
from modelshield.assess.stats import Array, bootstrap_weights, interval, safe_div

CHECK = "fairness"
MAX_VALUES = 12
"""A numeric sensitive column with more distinct values is cut into quantile groups."""
NUMERIC_GROUPS = 4
"""Quantile groups of a numeric sensitive column (age...)."""
MAX_GROUPS = 64
"""Groups kept per column or intersection (the largest)."""


def groups_of(frame: pd.DataFrame, columns: list[str]) -> list[tuple[str, Array]]:
    """``(definition, mask)`` of every group of one column, or of an intersection."""
    parts = [_groups(frame[c], c) for c in columns]
    out = parts[0]
    for more in parts[1:]:
        out = [(f"{a} & {b}", ma & mb) for a, ma in out for b, mb in more]
    out = [(d, m) for d, m in out if m.any()]
    out.sort(key=lambda g: -int(g[1].sum()))
    return out[:MAX_GROUPS]


def _groups(series: pd.Series, column: str) -> list[tuple[str, Array]]:
    values = series.dropna().unique()
    numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(
        series.dtype
    )
    if numeric and len(values) > MAX_VALUES:
        numbers = series.to_numpy(dtype=float)
        edges = np.unique(np.nanquantile(numbers, np.linspace(0, 1, NUMERIC_GROUPS + 1)))
        out = []
        for i in range(len(edges) - 1):
            last = i == len(edges) - 2
            mask = (numbers >= edges[i]) & (
                (numbers <= edges[i + 1]) if last else (numbers < edges[i + 1])
            )
            out.append(
                (f"{column} in [{edges[i]:.4g}, {edges[i + 1]:.4g}{']' if last else ')'}", mask)
            )
        return out
    return [(f"{column}={v}", (series == v).to_numpy()) for v in sorted(values, key=str)]


def group_rates(
    masks: Array, pp: Array, yp: Array, correct: Array, weights: Array
) -> dict[str, Array]:
    """Per-group rates for each row of ``weights``: ``(b, groups)`` arrays."""
    m = masks.T.astype(float)  # (n, groups)
    count = weights @ m
    pos = weights @ (m * yp[:, None])
    neg = count - pos
    return {
        "selection_rate": safe_div(weights @ (m * pp[:, None]), count),
        "accuracy": safe_div(weights @ (m * correct[:, None]), count),
        "tpr": safe_div(weights @ (m * (pp * yp)[:, None]), pos),
        "fpr": safe_div(weights @ (m * (pp * (1 - yp))[:, None]), neg),
    }


def _spread(rates: Array, eligible: Array) -> tuple[Array, Array]:
    """Max minus min, and min over max, among eligible groups, per resample."""
    r = np.where(eligible[None, :], rates, np.nan)
    with np.errstate(all="ignore"):
        high = np.nanmax(np.where(np.isnan(r).all(axis=1, keepdims=True), 0.0, r), axis=1)
        low = np.nanmin(np.where(np.isnan(r).all(axis=1, keepdims=True), 0.0, r), axis=1)
    return high - low, safe_div(low, high)


def run(ctx: Context) -> None:
    """Group figures for each sensitive column and pair; findings where the interval says so."""
    if not ctx.sensitive:
        raise Skipped("no sensitive column named (--sensitive)")
    if not ctx.classification:
        _regression(ctx)
        return
    sets = [[c] for c in ctx.sensitive] + [list(p) for p in combinations(ctx.sensitive, 2)]
    binary = ctx.positive is not None
    pp = (ctx.base.labels == ctx.positive).astype(float) if binary else np.zeros(len(ctx.y))
    yp = (ctx.y == ctx.positive).astype(float) if binary else np.zeros(len(ctx.y))
    correct = ctx.correct().astype(float)
    for columns in sets:
        name = " & ".join(columns)
        groups = groups_of(ctx.data.frame, columns)
        if len(groups) < 2:
            continue
        masks = np.vstack([m for _, m in groups])
        sizes = masks.sum(axis=1)
        eligible = sizes >= ctx.settings.fairness_min_rows
        point = {
            k: v[0] for k, v in group_rates(masks, pp, yp, correct, np.ones((1, len(pp)))).items()
        }
        samples: dict[str, list[Array]] = {k: [] for k in point}
        spreads: dict[str, list[Array]] = {"dp_difference": [], "dp_ratio": [], "eo_difference": []}
        for w in bootstrap_weights(len(pp), ctx.settings.bootstrap, ctx.seed(CHECK + name)):
            rates = group_rates(masks, pp, yp, correct, w)
            for k, v in rates.items():
                samples[k].append(v)
            dp_diff, dp_ratio = _spread(rates["selection_rate"], eligible)
            tpr_gap, _ = _spread(rates["tpr"], eligible)
            fpr_gap, _ = _spread(rates["fpr"], eligible)
            spreads["dp_difference"].append(dp_diff)
            spreads["dp_ratio"].append(dp_ratio)
            spreads["eo_difference"].append(np.maximum(tpr_gap, fpr_gap))
        shown = ("selection_rate", "accuracy", "tpr", "fpr") if binary else ("accuracy",)
        for k in shown:
            stacked = np.vstack(samples[k])
            for g, (definition, _) in enumerate(groups):
                ctx.measure(
                    CHECK,
                    k,
                    point[k][g],
                    interval(stacked[:, g], ctx.settings.confidence),
                    group=definition,
                    n=int(sizes[g]),
                )
        if not binary or eligible.sum() < 2:
            continue
        _judge(ctx, name, groups, sizes, eligible, point, spreads)
    ctx.covered[CHECK] = f"{len(sets)} column(s) and intersection(s)"


def _judge(
    ctx: Context,
    name: str,
    groups: list[tuple[str, Array]],
    sizes: Array,
    eligible: Array,
    point: dict[str, Array],
    spreads: dict[str, list[Array]],
) -> None:
    settings = ctx.settings
    conf = settings.confidence
    dp_diff, dp_ratio = _spread(point["selection_rate"][None, :], eligible)
    tpr_gap, _ = _spread(point["tpr"][None, :], eligible)
    fpr_gap, _ = _spread(point["fpr"][None, :], eligible)
    values = {
        "dp_difference": float(dp_diff[0]),
        "dp_ratio": float(dp_ratio[0]),
        "eo_difference": float(max(tpr_gap[0], fpr_gap[0])),
    }
    cis = {k: interval(np.concatenate(v), conf) for k, v in spreads.items()}
    for k, v in values.items():
        ctx.measure(CHECK, k, v, cis[k], group=name, n=int(sizes[eligible].sum()))
    sel = np.where(eligible, point["selection_rate"], np.nan)
    lo, hi = int(np.nanargmin(sel)), int(np.nanargmax(sel))
    ratio_bad = cis["dp_ratio"][1] is not None and cis["dp_ratio"][1] < settings.min_dp_ratio
    diff_bad = cis["dp_difference"][0] is not None and (
        cis["dp_difference"][0] > settings.max_dp_difference
    )
    if ratio_bad or diff_bad:
        ctx.add(
            DISPARATE_IMPACT,
            f"{name}: selection rate {sel[lo]:.3f} for {groups[lo][0]} ({int(sizes[lo])} rows) "
            f"vs {sel[hi]:.3f} for {groups[hi][0]} ({int(sizes[hi])} rows): ratio "
            f"{fmt(values['dp_ratio'])} (95% CI {fmt_ci(cis['dp_ratio'])}, four-fifths rule "
            f"{settings.min_dp_ratio:g}), difference {fmt(values['dp_difference'])} (95% CI "
            f"{fmt_ci(cis['dp_difference'])}, limit {settings.max_dp_difference:g}).",
            CHECK,
            {
                "sensitive": name,
                "lowest_group": groups[lo][0],
                "highest_group": groups[hi][0],
                "lowest_rate": fmt(float(sel[lo]), 4),
                "highest_rate": fmt(float(sel[hi]), 4),
                "dp_ratio": fmt(values["dp_ratio"], 4),
                "dp_ratio_ci": fmt_ci(cis["dp_ratio"], 4),
                "dp_difference": fmt(values["dp_difference"], 4),
                "dp_difference_ci": fmt_ci(cis["dp_difference"], 4),
            },
        )
    eo_ci = cis["eo_difference"]
    if eo_ci[0] is not None and eo_ci[0] > settings.max_eo_difference:
        which = "tpr" if tpr_gap[0] >= fpr_gap[0] else "fpr"
        rates = np.where(eligible, point[which], np.nan)
        a, b = int(np.nanargmin(rates)), int(np.nanargmax(rates))
        ctx.add(
            EQUALIZED_ODDS,
            f"{name}: {which.upper()} {rates[a]:.3f} for {groups[a][0]} vs {rates[b]:.3f} for "
            f"{groups[b][0]}; equalized-odds difference {fmt(values['eo_difference'])} (95% CI "
            f"{fmt_ci(eo_ci)}, limit {settings.max_eo_difference:g}).",
            CHECK,
            {
                "sensitive": name,
                "rate": which,
                "lowest_group": groups[a][0],
                "highest_group": groups[b][0],
                "lowest_rate": fmt(float(rates[a]), 4),
                "highest_rate": fmt(float(rates[b]), 4),
                "eo_difference": fmt(values["eo_difference"], 4),
                "eo_difference_ci": fmt_ci(eo_ci, 4),
            },
        )


def _regression(ctx: Context) -> None:
    err = np.abs(ctx.base.labels - ctx.y)
    for column in ctx.sensitive:
        for definition, mask in groups_of(ctx.data.frame, [column]):
            ctx.measure(CHECK, "mae", float(err[mask].mean()), group=definition, n=int(mask.sum()))
    ctx.covered[CHECK] = "mean absolute error per group (regression)"
