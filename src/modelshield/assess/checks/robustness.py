"""Robustness to natural perturbations, measured as prediction flip rate and metric change.

On a seeded sample of rows (``robustness_rows``):

* **noise**: Gaussian noise on every numeric column, ``noise`` times the column's standard
  deviation (integers rounded), and a curve over several noise levels;
* **category swap**: one categorical column per row set to another observed value, drawn by
  frequency;
* **missing value**: one column per row emptied;
* **out of range**: one numeric column per row pushed 10% of its range beyond the observed
  bounds.

Only noise on a classifier is judged (``max_flip_rate``, on the Wilson interval's lower
bound): a changed category or an out-of-range value changes what the row means, and moves
every model's predictions (see the traps in the documentation); those are measured and
plotted, not judged. A regression model's predictions should follow its inputs, so how far
they move (a "flip" is a move of more than a tenth of the target's standard deviation) is
measured, never judged.
All perturbations but the missing values go to the model in one call; missing values in one
more (a model that cannot take them raises, which is reported, not fatal)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelshield.assess.context import Context, fmt, fmt_ci
from modelshield.assess.interface import ModelError, Prediction
from modelshield.assess.perturb import Space
from modelshield.assess.rules import FRAGILE
from modelshield.assess.stats import Array, wilson

CHECK = "robustness"
LEVELS = (0.05, 0.1, 0.2, 0.5, 1.0)
"""Noise levels of the robustness curve, in standard deviations (the policy's level added)."""


def _score(ctx: Context, p: Prediction, y: Array) -> float:
    if ctx.classification:
        return float(np.mean(p.labels == y))
    return float(np.mean(np.abs(p.labels - y)))


def _flips(ctx: Context, base: Prediction, p: Prediction, n: int, k: int) -> Array:
    """Per copy (``k`` copies of ``n`` rows): which predictions changed."""
    if ctx.classification:
        out: Array = p.labels.reshape(k, n) != base.labels[None, :]
        return out
    # A regression prediction "flips" when it moves by more than a tenth of the target's
    # standard deviation.
    tol = 0.1 * float(np.std(ctx.y)) or 1e-12
    moved: Array = np.abs(p.labels.reshape(k, n) - base.labels[None, :]) > tol
    return moved


def run(ctx: Context) -> None:
    """Perturb, predict, measure; a finding when noise flips too many predictions."""
    settings = ctx.settings
    rng = np.random.default_rng(ctx.seed(CHECK))
    n_all = len(ctx.y)
    idx = np.sort(rng.choice(n_all, min(settings.robustness_rows, n_all), replace=False))
    rows = ctx.data.frame.iloc[idx].reset_index(drop=True)
    y = ctx.y[idx]
    base = Prediction(ctx.base.labels[idx], None if ctx.base.proba is None else ctx.base.proba[idx])
    n = len(idx)
    numeric = ctx.numeric_columns
    categorical = ctx.categorical_columns
    space = Space.of(ctx.data.frame, numeric, dict(ctx.data.kinds))
    levels = sorted({*LEVELS, settings.noise})
    variants: list[tuple[str, pd.DataFrame]] = []
    if numeric:
        x = space.matrix(rows)
        for level in levels:
            noisy = x + rng.normal(size=x.shape) * space.scale * level
            variants.append(
                (f"noise {level:g} sd", space.frame(rows, space.project(noisy, clip=False)))
            )
        variants.append(("out of range", _out_of_range(rows, space, rng)))
    if categorical:
        variants.append(("category swap", _swap(rows, ctx.data.frame, categorical, rng)))
    if not variants:
        ctx.covered[CHECK] = "no column to perturb"
        return
    stacked = pd.concat([v for _, v in variants], ignore_index=True)
    predicted = ctx.predict(stacked)
    flips = _flips(ctx, base, predicted, n, len(variants))
    base_score = _score(ctx, base, y)
    metric = "accuracy" if ctx.classification else "mae"
    curve_x, curve_y = [], []
    judged: tuple[str, float, tuple[float | None, float | None], float] | None = None
    for k, (name, _) in enumerate(variants):
        rate = float(flips[k].mean())
        ci = wilson(float(flips[k].sum()), n, settings.confidence)
        part = Prediction(predicted.labels[k * n : (k + 1) * n])
        after = _score(ctx, part, y)
        ctx.measure(CHECK, "flip_rate", rate, ci, group=name, n=n)
        ctx.measure(CHECK, f"{metric}_after", after, group=name, n=n)
        if name.startswith("noise"):
            level = float(name.split()[1])
            curve_x.append(level)
            curve_y.append(rate)
            if level == settings.noise:
                judged = (name, rate, ci, after)
    ctx.measure(CHECK, f"{metric}_before", base_score, n=n)
    _missing(ctx, rows, base, n, rng)
    if curve_x:
        ctx.curve(
            CHECK,
            "flip_rate_vs_noise",
            "noise (standard deviations)",
            "flip rate",
            curve_x,
            curve_y,
            series="gaussian noise",
        )
    ctx.covered[CHECK] = f"{len(variants) + 1} perturbations of {n} rows"
    if not ctx.classification:
        return
    if judged is None or judged[2][0] is None or judged[2][0] <= settings.max_flip_rate:
        return
    name, rate, ci, after = judged
    culprit = _culprit(ctx, rows, space, base, rng) if numeric else ""
    ctx.add(
        FRAGILE,
        f"Gaussian noise of {settings.noise:g} standard deviation on the numeric columns changes "
        f"{rate:.0%} of the predictions (95% CI {fmt_ci(ci, 2)}, limit "
        f"{settings.max_flip_rate:g}) on {n} rows; {metric} {fmt(base_score)} -> {fmt(after)}."
        + (f" The column that flips most on its own: `{culprit}`." if culprit else ""),
        CHECK,
        {
            "perturbation": name,
            "flip_rate": fmt(rate, 4),
            "ci": fmt_ci(ci, 4),
            "threshold": f"{settings.max_flip_rate:g}",
            f"{metric}_before": fmt(base_score, 4),
            f"{metric}_after": fmt(after, 4),
            "most_sensitive_column": culprit,
        },
    )


def _out_of_range(rows: pd.DataFrame, space: Space, rng: np.random.Generator) -> pd.DataFrame:
    x = space.matrix(rows)
    j = rng.integers(0, x.shape[1], len(x))
    span = np.maximum(space.high - space.low, space.scale)
    up = rng.random(len(x)) < 0.5
    value = np.where(up, space.high[j] + 0.1 * span[j], space.low[j] - 0.1 * span[j])
    x[np.arange(len(x)), j] = value
    return space.frame(rows, space.project(x, clip=False))


def _swap(
    rows: pd.DataFrame, data: pd.DataFrame, columns: list[str], rng: np.random.Generator
) -> pd.DataFrame:
    out = rows.copy()
    chosen = rng.integers(0, len(columns), len(rows))
    for c, column in enumerate(columns):
        values = data[column].dropna()
        if values.nunique() < 2:
            continue
        where = np.flatnonzero(chosen == c)
        draws = values.sample(
            n=len(where) * 4, replace=True, random_state=int(rng.integers(2**31))
        ).to_numpy()
        current = out[column].to_numpy()[where]
        pick = []
        for i, now in enumerate(current):
            options = [v for v in draws[i * 4 : (i + 1) * 4] if v != now]
            pick.append(options[0] if options else now)
        col = out[column].to_numpy(copy=True)
        col[where] = pick
        out[column] = col
    return out


def _missing(
    ctx: Context, rows: pd.DataFrame, base: Prediction, n: int, rng: np.random.Generator
) -> None:
    out = rows.copy()
    columns = list(ctx.predict.columns)
    chosen = rng.integers(0, len(columns), n)
    for c, column in enumerate(columns):
        mask = chosen == c
        if mask.any():
            if not pd.api.types.is_float_dtype(out[column].dtype):
                out[column] = out[column].astype(object)
            col = out[column].to_numpy(copy=True)
            col[mask] = np.nan
            out[column] = col
    try:
        p = ctx.predict(out)
    except ModelError as e:
        ctx.measure(CHECK, "flip_rate", None, group="missing value", n=n)
        ctx.covered["missing"] = str(e)
        return
    flips = _flips(ctx, base, p, n, 1)[0]
    ctx.measure(
        CHECK,
        "flip_rate",
        float(flips.mean()),
        wilson(float(flips.sum()), n, ctx.settings.confidence),
        group="missing value",
        n=n,
    )


def _culprit(
    ctx: Context, rows: pd.DataFrame, space: Space, base: Prediction, rng: np.random.Generator
) -> str:
    """The numeric column whose noise alone flips most predictions (one more call)."""
    x = space.matrix(rows)
    n, d = x.shape
    probes = min(n, 50)
    parts = []
    for j in range(d):
        noisy = x[:probes].copy()
        noisy[:, j] += rng.normal(size=probes) * space.scale[j] * ctx.settings.noise * 3
        parts.append(space.frame(rows.iloc[:probes], space.project(noisy, clip=False)))
    p = ctx.predict(pd.concat(parts, ignore_index=True))
    sub = Prediction(base.labels[:probes])
    flips = _flips(ctx, sub, p, probes, d).mean(axis=1)
    return space.columns[int(np.argmax(flips))]
