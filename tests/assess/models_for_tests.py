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
