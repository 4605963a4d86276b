"""Callables named as ``package.module:function`` by the tests."""

from __future__ import annotations

from typing import Any

import numpy as np


def threshold(rows: Any) -> Any:
    """Class 1 (benign) when mean radius is below 14 (a rule, not a trained model)."""
    return (rows["mean radius"].to_numpy() < 14).astype(int)


def broken(rows: Any) -> Any:
    """A model that fails on every call."""
    raise RuntimeError("the feature store is down")


def short(rows: Any) -> Any:
    """A model that answers for fewer rows than it was given."""
    return np.zeros(len(rows) - 1)


def _rule(rows: Any) -> Any:
    return (rows["mean texture"].to_numpy() < 19).astype(int)


def overconfident(rows: Any) -> Any:
    """A rule that is right about 73% of the time and says it is sure every time."""
    return _rule(rows)


overconfident.classes = (0, 1)  # type: ignore[attr-defined]
overconfident.predict_proba = lambda rows: np.where(  # type: ignore[attr-defined]
    _rule(rows)[:, None] == np.array([[0, 1]]), 0.995, 0.005
)


def fails_on_large_batches(rows: Any) -> Any:
    """Answers the held-out rows, then fails when a check sends a larger batch."""
    if len(rows) > 300:
        raise ValueError(f"the endpoint takes no more than 200 rows, got {len(rows)}")
    return (rows["mean radius"].to_numpy() < 14).astype(int)


class Stochastic:
    """A classifier that flips a coin for rows near its threshold (dropout left on)."""

    classes = (0, 1)

    def __init__(self) -> None:
        self.rng = np.random.default_rng()

    def __call__(self, rows: Any) -> Any:
        radius = rows["mean radius"].to_numpy()
        noisy = radius + self.rng.normal(0, 1.0, len(radius))
        return (noisy < 14).astype(int)


stochastic = Stochastic()

SEEN: list[Any] = []
"""Every batch the constrained model was asked about (tests read it)."""


def arrests_rule(rows: Any) -> Any:
    """Released when young with few checks; records each batch it sees."""
    SEEN.append(rows.copy())
    score = rows["age"].to_numpy() + 4 * rows["checks"].to_numpy()
    return np.where(score < 34, "Yes", "No")


def diabetes_broken(rows: Any) -> Any:
    """The mean disease progression, except rows with a high `s5`, where it answers 0."""
    return np.where(rows["s5"].to_numpy() > 0.04, 0.0, 152.0)
