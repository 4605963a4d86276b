"""Performance: the usual metrics, each with a bootstrap interval, against the policy's floors
and ceilings."""

from __future__ import annotations

import numpy as np

from modelshield.assess.context import Context, fmt, fmt_ci
from modelshield.assess.rules import CHECK_INCOMPLETE, METRIC_THRESHOLD
from modelshield.assess.stats import Array, bootstrap_weights, interval, safe_div, weighted_auc
from modelshield.core.assess_settings import LOWER_IS_BETTER

CHECK = "performance"


def classification_samples(
    y: Array, pred: Array, proba: Array | None, weights: Array, positive: int | None
) -> dict[str, Array]:
    """Every classification metric for each row of ``weights`` (``(b, n)``)."""
    k = int(max(y.max(initial=0), pred.max(initial=0))) + 1
    total = weights.sum(axis=1)
    out: dict[str, Array] = {}
    correct = (pred == y).astype(float)
    out["accuracy"] = safe_div(weights @ correct, total)
    recalls = []
    for c in range(k):
        is_c = (y == c).astype(float)
        if is_c.any():
            recalls.append(safe_div(weights @ (is_c * correct), weights @ is_c))
    out["balanced_accuracy"] = np.nanmean(np.vstack(recalls), axis=0)
    if positive is not None:
        yp = (y == positive).astype(float)
        pp = (pred == positive).astype(float)
        tp = weights @ (yp * pp)
        precision = safe_div(tp, weights @ pp)
        recall = safe_div(tp, weights @ yp)
        out["precision"] = precision
        out["recall"] = recall
        out["f1"] = safe_div(2 * tp, weights @ (yp + pp))
        if proba is not None:
            out["roc_auc"] = weighted_auc(proba[:, positive], yp, weights)
    if proba is not None:
        valid = y >= 0
        p_true = np.where(valid, proba[np.arange(len(y)), np.maximum(y, 0)], 0.0)
        out["log_loss"] = safe_div(weights @ -np.log(np.clip(p_true, 1e-15, 1.0)), total)
        onehot = np.zeros_like(proba)
        onehot[np.arange(len(y))[valid], y[valid]] = 1.0
        out["brier"] = safe_div(weights @ ((proba - onehot) ** 2).sum(axis=1), total)
    return out


def regression_samples(y: Array, pred: Array, weights: Array) -> dict[str, Array]:
    """Every regression metric for each row of ``weights``."""
    total = weights.sum(axis=1)
    err = pred - y
    mse = safe_div(weights @ (err**2), total)
    mean_y = safe_div(weights @ y, total)
    sst = weights @ (y**2) - total * mean_y**2
    return {
        "mae": safe_div(weights @ np.abs(err), total),
        "rmse": np.sqrt(mse),
        "r2": 1.0 - safe_div(weights @ (err**2), sst),
    }


def metrics_with_ci(
    ctx: Context, y: Array, pred: Array, proba: Array | None, seed: int
) -> dict[str, tuple[float | None, tuple[float | None, float | None]]]:
    """Each metric's estimate and interval on the given rows."""
    settings = ctx.settings

    def samples(w: Array) -> dict[str, Array]:
        if ctx.classification:
            return classification_samples(y, pred, proba, w, ctx.positive)
        return regression_samples(y, pred, w)

    point = {k: v[0] for k, v in samples(np.ones((1, len(y)))).items()}
    chunks: dict[str, list[Array]] = {k: [] for k in point}
    for w in bootstrap_weights(len(y), settings.bootstrap, seed):
        for key, value in samples(w).items():
            chunks[key].append(value)
    result: dict[str, tuple[float | None, tuple[float | None, float | None]]] = {}
    for key, value in point.items():
        est = float(value) if np.isfinite(value) else None
        result[key] = (est, interval(np.concatenate(chunks[key]), settings.confidence))
    return result


def run(ctx: Context) -> None:
    """Measure every metric; a finding per floor or ceiling of the policy that is missed."""
    settings = ctx.settings
    found = metrics_with_ci(ctx, ctx.y, ctx.base.labels, ctx.base.proba, ctx.seed(CHECK))
    n = len(ctx.y)
    for name, (value, ci) in found.items():
        ctx.measure(CHECK, name, value, ci, n=n)
    bounds: list[tuple[str, float, bool]] = [
        *((k, v, False) for k, v in settings.min_metric.items()),
        *((k, v, True) for k, v in settings.max_metric.items()),
    ]
    for name, bound, is_max in bounds:
        if name not in found:
            ctx.gap(
                CHECK_INCOMPLETE,
                CHECK,
                f"the policy sets a threshold on {name}, which is not measured for this "
                f"model ({_why_missing(ctx, name)})",
            )
            continue
        value, ci = found[name]
        if value is None:
            continue
        missed = value > bound if is_max else value < bound
        if not missed:
            continue
        side = "above the ceiling" if is_max else "below the floor"
        better = "lower" if name in LOWER_IS_BETTER else "higher"
        ctx.add(
            METRIC_THRESHOLD,
            f"{name} is {fmt(value)} (95% CI {fmt_ci(ci)}) on {n} rows, {side} of "
            f"{bound:g} set by the policy ({better} is better).",
            CHECK,
            {
                "metric": name,
                "value": fmt(value, 4),
                "ci": fmt_ci(ci, 4),
                "threshold": f"{bound:g}",
                "rows": str(n),
            },
        )


def _why_missing(ctx: Context, name: str) -> str:
    if not ctx.classification:
        return "a regression model"
    if ctx.base.proba is None and name in ("roc_auc", "log_loss", "brier"):
        return "it returns labels only, no probabilities"
    return "it needs a positive class: pass --positive-class"
