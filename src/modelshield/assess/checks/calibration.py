"""Calibration: does the model's confidence match how often it is right?

Expected calibration error over equal-width bins of the top-class confidence, with a
bootstrap interval; the reliability curve (confidence against accuracy per bin) for the HTML
report. A finding when even the interval's lower bound is above ``max_ece``; the evidence says
whether the model is over- or underconfident and names the worst bin."""

from __future__ import annotations

import numpy as np

from modelshield.assess.context import Context, fmt, fmt_ci
from modelshield.assess.interface import Skipped
from modelshield.assess.rules import MISCALIBRATED
from modelshield.assess.stats import Array, bootstrap_weights, interval

CHECK = "calibration"


def ece_samples(conf: Array, correct: Array, bins: Array, k: int, weights: Array) -> Array:
    """ECE for each row of ``weights``: ``sum_b |sum w (correct - conf)| / sum w`` per bin."""
    onehot = np.zeros((len(conf), k))
    onehot[np.arange(len(conf)), bins] = 1.0
    gap = weights @ (onehot * (correct - conf)[:, None])
    out: Array = np.abs(gap).sum(axis=1) / weights.sum(axis=1)
    return out


def run(ctx: Context) -> None:
    """Measure ECE and the reliability curve; a finding above ``max_ece``."""
    if not ctx.classification:
        raise Skipped("a regression model has no class probabilities")
    proba = ctx.base.proba
    if proba is None:
        raise Skipped("the model returns labels only, no probabilities")
    settings = ctx.settings
    k = settings.calibration_bins
    conf = proba.max(axis=1)
    correct = ctx.correct().astype(float)
    bins = np.minimum((conf * k).astype(int), k - 1)
    n = len(conf)
    ece = float(ece_samples(conf, correct, bins, k, np.ones((1, n)))[0])
    samples = np.concatenate(
        [
            ece_samples(conf, correct, bins, k, w)
            for w in bootstrap_weights(n, settings.bootstrap, ctx.seed(CHECK))
        ]
    )
    ci = interval(samples, settings.confidence)
    ctx.measure(CHECK, "ece", ece, ci, n=n)
    overconfidence = float(conf.mean() - correct.mean())
    ctx.measure(CHECK, "mean_confidence_minus_accuracy", overconfidence, n=n)
    xs, ys, worst = [], [], (0.0, -1)
    for b in range(k):
        mask = bins == b
        if not mask.any():
            continue
        c, a = float(conf[mask].mean()), float(correct[mask].mean())
        xs.append(c)
        ys.append(a)
        ctx.measure(
            CHECK,
            "bin_accuracy",
            a,
            group=f"confidence in [{b / k:.1f}, {(b + 1) / k:.1f})",
            n=int(mask.sum()),
        )
        weight = mask.mean() * abs(c - a)
        if weight > worst[0]:
            worst = (weight, b)
    ctx.curve(CHECK, "reliability", "mean confidence", "accuracy", xs, ys)
    ctx.covered[CHECK] = f"{k} bins over {n} rows"
    if ci[0] is None or ci[0] <= settings.max_ece:
        return
    direction = "overconfident" if overconfidence > 0 else "underconfident"
    b = worst[1]
    mask = bins == b
    ctx.add(
        MISCALIBRATED,
        f"Expected calibration error {fmt(ece)} (95% CI {fmt_ci(ci)}) is above "
        f"{settings.max_ece:g}: the model is {direction} (mean confidence "
        f"{fmt(float(conf.mean()))}, accuracy {fmt(float(correct.mean()))}). Worst bin: "
        f"confidence {b / k:.1f}-{(b + 1) / k:.1f}, where it is right "
        f"{float(correct[mask].mean()):.0%} of the time on {int(mask.sum())} rows.",
        CHECK,
        {
            "ece": fmt(ece, 4),
            "ci": fmt_ci(ci, 4),
            "threshold": f"{settings.max_ece:g}",
            "direction": direction,
            "worst_bin": f"[{b / k:.1f}, {(b + 1) / k:.1f})",
        },
    )
