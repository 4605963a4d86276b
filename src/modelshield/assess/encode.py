"""A numeric design matrix from mixed columns, and a small softmax (or least-squares) model
fitted with numpy: the surrogate of the extraction probe. No torch, no scikit-learn."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelshield.assess.stats import Array

MAX_CATEGORIES = 20
"""Categories one-hot encoded per column (the most frequent); the rest share a column."""


class Encoder:
    """Standardised numbers (missing values at the mean) and one-hot categories."""

    def __init__(self, frame: pd.DataFrame, kinds: dict[str, str]) -> None:
        """Learn the encoding from ``frame``."""
        self.numeric = [c for c in frame.columns if kinds.get(c) in ("numeric", "integer")]
        self.categorical = [c for c in frame.columns if c not in self.numeric]
        x = frame[self.numeric].to_numpy(dtype=float) if self.numeric else np.zeros((len(frame), 0))
        with np.errstate(all="ignore"):
            self.mean = np.nan_to_num(np.nanmean(x, axis=0)) if len(x) else np.zeros(x.shape[1])
            std = np.nanstd(x, axis=0) if len(x) else np.ones(x.shape[1])
        self.std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        self.levels = {
            c: list(frame[c].astype(str).value_counts().index[:MAX_CATEGORIES])
            for c in self.categorical
        }

    def __call__(self, frame: pd.DataFrame) -> Array:
        """The design matrix of ``frame`` (with an intercept column)."""
        parts: list[Any] = [np.ones((len(frame), 1))]
        if self.numeric:
            x = frame[self.numeric].to_numpy(dtype=float)
            x = np.where(np.isfinite(x), x, self.mean)
            parts.append((x - self.mean) / self.std)
        for c in self.categorical:
            values = frame[c].astype(str).to_numpy()
            levels = self.levels[c]
            onehot = (values[:, None] == np.array(levels, dtype=object)[None, :]).astype(float)
            parts.append(np.column_stack([onehot, 1.0 - onehot.sum(axis=1)]))
        return np.column_stack(parts)


def fit_softmax(
    x: Array, y: Array, classes: int, *, l2: float = 1e-3, iterations: int = 300
) -> Array:
    """Weights of a multinomial logistic regression (full-batch gradient descent with Adam)."""
    w = np.zeros((x.shape[1], classes))
    onehot = np.zeros((len(y), classes))
    onehot[np.arange(len(y)), y] = 1.0
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t in range(1, iterations + 1):
        logits = x @ w
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        grad = x.T @ (p - onehot) / len(y) + l2 * w
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w -= 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return w


def fit_linear(x: Array, y: Array, *, l2: float = 1e-3) -> Array:
    """Ridge regression weights."""
    a = x.T @ x + l2 * np.eye(x.shape[1])
    out: Array = np.linalg.solve(a, x.T @ y)
    return out
