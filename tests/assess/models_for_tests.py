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
