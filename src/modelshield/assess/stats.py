"""Vectorised statistics: bootstrap weights, weighted metrics, intervals and tests.

Every interval is a percentile bootstrap computed with a matrix of resample weights
(``B x n`` multinomial counts): a metric that is a ratio of weighted sums is then one matrix
product for all resamples at once, which is what keeps every fairness metric with its interval
well under a second. Draws are seeded: same data, same seed, same intervals.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]

_CHUNK_CELLS = 500_000
"""Resample weights are made in chunks of at most this many cells (4 MB of float64): the
metrics' temporaries are a few times that."""


def bootstrap_weights(
    n: int, resamples: int, seed: int, *, chunk: int | None = None
) -> Iterator[Array]:
    """Chunks of resample weights, ``(b, n)`` float arrays of multinomial counts summing to n
    per row, ``resamples`` rows in all, seeded; ``chunk`` fixes ``b`` (to resample two samples
    in step)."""
    rng = np.random.default_rng(seed)
    per_chunk = chunk or max(1, _CHUNK_CELLS // max(n, 1))
    done = 0
    while done < resamples:
        b = min(per_chunk, resamples - done)
        idx = rng.integers(0, n, size=(b, n))
        idx += (np.arange(b) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
        yield counts.astype(np.float64)
        done += b


def interval(samples: Array, confidence: float) -> tuple[float | None, float | None]:
    """Percentile interval of bootstrap samples (NaNs, from empty resampled groups, ignored)."""
    finite = samples[np.isfinite(samples)]
    if finite.size < 10:
        return None, None
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def safe_div(num: Array, den: Array) -> Array:
    """num / den, NaN where den is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out: Array = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


def weighted_auc(scores: Array, positive: Array, weights: Array) -> Array:
    """ROC AUC for each row of ``weights`` (``(b, n)``), ties counted half.

    ``scores`` and ``positive`` are ``(n,)``; the result is ``(b,)``. One sort for every
    resample: the weighted Mann-Whitney statistic from cumulative negative weights.
    """
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    pos = positive[order].astype(bool)
    w = weights[:, order]
    wneg = np.where(pos, 0.0, w)
    wpos = np.where(pos, w, 0.0)
    # Tie groups: for each position, the negative weight strictly below its score and the
    # negative weight tied with it.
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    group = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1
    cum = np.cumsum(wneg, axis=1)
    below_group = np.concatenate([np.zeros((w.shape[0], 1)), cum[:, starts[1:] - 1]], axis=1)
    ends = np.r_[starts[1:], len(s)] - 1
    tied = cum[:, ends] - below_group
    score = below_group[:, group] + 0.5 * tied[:, group]
    num = (wpos * score).sum(axis=1)
    den = wpos.sum(axis=1) * wneg.sum(axis=1)
    return safe_div(num, den)


def auc(scores: Array, positive: Array) -> float | None:
    """ROC AUC of one sample (None without both classes)."""
    value = weighted_auc(scores, positive, np.ones((1, len(scores))))[0]
    return None if not np.isfinite(value) else float(value)


def benjamini_hochberg(p: Array, alpha: float) -> Array:
    """Which hypotheses are rejected at false discovery rate ``alpha``."""
    m = len(p)
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(p)
    ranked = p[order]
    passed = ranked <= alpha * (np.arange(1, m + 1) / m)
    keep = np.zeros(m, dtype=bool)
    if passed.any():
        last = int(np.flatnonzero(passed).max())
        keep[order[: last + 1]] = True
    return keep


def wilson(k: float, n: float, confidence: float) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion ``k / n`` (None without rows)."""
    from statistics import NormalDist

    if n <= 0:
        return None, None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
