"""Weakest slices: where the model is significantly worse than on the rest of the data.

Candidates are one-column slices: each value of a categorical (or boolean, or integer column
with few values) column, and each quantile bin of a numeric column. A slice is reported only
when it holds ``slice_min_rows`` rows, its score is worse than the rest's by
``slice_min_drop``, and a one-sided test (z on the bootstrap standard error of the drop) stays
significant after Benjamini-Hochberg correction over every slice tested. Without the
statistics, a scan flags noise on small slices of sound models. Classification compares
accuracy with the model's own confidence where it has one, so that a slice is not called weak
merely because its labels are mixed (the model knows it is unsure there)."""

from __future__ import annotations

from math import erfc, sqrt

import numpy as np
import pandas as pd

from modelshield.assess.context import Context, fmt
from modelshield.assess.rules import WEAK_SLICE
from modelshield.assess.stats import Array, benjamini_hochberg, bootstrap_weights, safe_div

CHECK = "slices"
MAX_VALUES = 12
"""An integer column with at most this many distinct values is sliced by value."""
MAX_FINDINGS = 5
"""Findings made at most (the worst slices); the measurements list the others."""
MAX_MEASURED = 20
"""Slices kept in the measurements, worst first."""


def candidates(
    frame: pd.DataFrame, kinds: dict[str, str], bins: int, min_rows: int
) -> list[tuple[str, Array]]:
    """``(definition, mask)`` of every slice with enough rows inside and outside it."""
    n = len(frame)
    out: list[tuple[str, Array]] = []
    for column in frame.columns:
        series = frame[column]
        kind = kinds.get(column, "categorical")
        values = series.dropna().unique()
        if kind in ("categorical", "boolean") or len(values) <= MAX_VALUES:
            for value in values[:200]:
                mask = (series == value).to_numpy()
                out.append((f"{column}={value}", mask))
            continue
        numbers = series.to_numpy(dtype=float)
        edges = np.unique(np.nanquantile(numbers, np.linspace(0, 1, bins + 1)))
        for i in range(len(edges) - 1):
            low, high = edges[i], edges[i + 1]
            last = i == len(edges) - 2
            mask = (numbers >= low) & ((numbers <= high) if last else (numbers < high))
            close = "]" if last else ")"
            out.append((f"{column} in [{low:.4g}, {high:.4g}{close}", mask))
    return [(d, m) for d, m in out if min_rows <= m.sum() <= n - min_rows]


class _Scores:
    """Per resample and slice: the slice's score, the rest's, and the drop (rest minus
    slice, in the check's units), for ``(b, n)`` resample weights; ``(b, slices)`` results.

    Classification scores accuracy minus the model's mean confidence when it gives
    probabilities: a slice where the model knows it is unsure (mixed labels near the decision
    boundary) is not weak for that alone; a slice where it is wrong while sure is. Without
    probabilities, plain accuracy. Regression scores the rise of the slice's mean absolute
    error over the rest's, as a share of the rest's."""

    def __init__(self, ctx: Context, masks: Array) -> None:
        """Precompute the per-row matrices (float32: the masks are the large part)."""
        self.classification = ctx.classification
        if ctx.classification:
            value = ctx.correct().astype(float)
            if ctx.base.proba is not None:
                # Accuracy minus the accuracy the model's own confidence promises.
                value = value - ctx.base.proba.max(axis=1)
        else:
            value = np.abs(ctx.base.labels - ctx.y)
        self.value = value.astype(np.float32)
        self.masks = masks.T  # (n, slices)
        self.weighted = self.masks * self.value[:, None]

    def __call__(self, weights: Array) -> tuple[Array, Array, Array]:
        """Scores for each row of ``weights``."""
        w = weights.astype(np.float32)
        inside = w @ self.masks
        outside = w.sum(axis=1, keepdims=True) - inside
        v_in = w @ self.weighted
        v_out = (w @ self.value)[:, None] - v_in
        s_in = safe_div(v_in, inside)
        s_out = safe_div(v_out, outside)
        if self.classification:
            return s_in, s_out, s_out - s_in
        return s_in, s_out, safe_div(s_in - s_out, s_out)


def run(ctx: Context) -> None:
    """Test every slice; a finding for each significant, large enough drop."""
    settings = ctx.settings
    found = candidates(
        ctx.data.frame, dict(ctx.data.kinds), settings.slice_bins, settings.slice_min_rows
    )
    if not found:
        ctx.covered[CHECK] = "no slice has enough rows"
        return
    masks = np.vstack([m for _, m in found]).astype(np.float32)  # (slices, n)
    n = masks.shape[1]
    inside = masks.sum(axis=1)
    scores = _Scores(ctx, masks)
    s_in, s_out, drop = (v[0] for v in scores(np.ones((1, n))))
    resampled = np.vstack(
        [scores(w)[2] for w in bootstrap_weights(n, settings.bootstrap, ctx.seed(CHECK), chunk=25)]
    )
    with np.errstate(all="ignore"):
        se = np.nanstd(resampled, axis=0)
    z = np.where(se > 0, drop / np.where(se > 0, se, 1.0), 0.0)
    p = np.array([0.5 * erfc(float(v) / sqrt(2)) for v in z])
    rejected = benjamini_hochberg(p, settings.slice_alpha)
    adjusted = _bh_adjusted(p)
    metric = "accuracy" if ctx.classification else "mae"
    plain = _plain(ctx, masks)
    order = np.argsort(-drop)
    for i in order[:MAX_MEASURED]:
        ctx.measure(CHECK, metric, float(plain[0][i]), group=found[i][0], n=int(inside[i]))
    ctx.covered[CHECK] = f"{len(found)} slices over {ctx.data.frame.shape[1]} columns tested"
    least = settings.slice_min_drop if ctx.classification else settings.slice_min_error_rise
    flagged = [int(i) for i in order if rejected[i] and drop[i] >= least]
    for i in flagged[:MAX_FINDINGS]:
        definition = found[i][0]
        if ctx.classification:
            change = f"accuracy {fmt(float(plain[0][i]))} vs {fmt(float(plain[1][i]))} on the rest"
            if ctx.base.proba is not None:
                change += (
                    f", while its confidence promises {fmt(float(plain[0][i] - s_in[i]))} vs "
                    f"{fmt(float(plain[1][i] - s_out[i]))}"
                )
        else:
            change = (
                f"mean absolute error {fmt(float(s_in[i]))} vs {fmt(float(s_out[i]))} on "
                f"the rest ({drop[i]:+.0%})"
            )
        ctx.add(
            WEAK_SLICE,
            f"On the slice `{definition}` ({int(inside[i])} rows) the model is worse: {change}. "
            f"Significant after correction for {len(found)} slices tested (adjusted p = "
            f"{adjusted[i]:.2g}).",
            CHECK,
            {
                "slice": definition,
                "rows": str(int(inside[i])),
                "metric": metric,
                "slice_value": fmt(float(plain[0][i]), 4),
                "rest_value": fmt(float(plain[1][i]), 4),
                "drop": fmt(float(drop[i]), 4),
                "adjusted_p": f"{adjusted[i]:.3g}",
                "slices_tested": str(len(found)),
            },
        )


def _plain(ctx: Context, masks: Array) -> tuple[Array, Array]:
    """The slice's and the rest's plain metric (accuracy, or mean absolute error)."""
    score = ctx.correct().astype(float) if ctx.classification else np.abs(ctx.base.labels - ctx.y)
    inside = masks.sum(axis=1)
    s_in = masks @ score / inside
    s_out = (score.sum() - masks @ score) / (masks.shape[1] - inside)
    return s_in, s_out


def _bh_adjusted(p: Array) -> Array:
    """Benjamini-Hochberg adjusted p-values."""
    m = len(p)
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    return out
