"""Perturbations of rows that keep each column's kind: integers stay integers, categories stay
observed values, numbers stay within the observed bounds unless asked otherwise. Shared by the
robustness check, the evasion attacks and the backdoor probe."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from msgspec import Struct

from modelshield.assess.stats import Array


class Space(Struct, frozen=True):
    """The numeric columns of a frame as a matrix, with their scale and bounds."""

    columns: tuple[str, ...]
    """Numeric columns the model reads, in order."""
    integer: Array
    """Which of them hold integers (``bool`` array)."""
    scale: Array
    """Each column's standard deviation (1 where it is 0 or undefined)."""
    low: Array
    """Observed minimum of each column."""
    high: Array
    """Observed maximum of each column."""

    @classmethod
    def of(cls, frame: pd.DataFrame, columns: list[str], kinds: dict[str, str]) -> Space:
        """The space of ``columns`` as ``frame`` holds them."""
        x = frame[columns].to_numpy(dtype=float) if columns else np.zeros((len(frame), 0))
        with np.errstate(all="ignore"):
            scale = np.nanstd(x, axis=0) if len(x) else np.ones(len(columns))
            low = np.nanmin(x, axis=0) if len(x) else np.zeros(len(columns))
            high = np.nanmax(x, axis=0) if len(x) else np.zeros(len(columns))
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        return cls(
            tuple(columns),
            np.array([kinds.get(c) == "integer" for c in columns], dtype=bool),
            scale,
            np.nan_to_num(low),
            np.nan_to_num(high),
        )

    def matrix(self, frame: pd.DataFrame) -> Array:
        """The numeric columns of ``frame`` as floats."""
        out: Array = frame[list(self.columns)].to_numpy(dtype=float)
        return out

    def project(self, x: Array, *, clip: bool = True) -> Array:
        """Values a column can hold: rounded where integer, within the observed bounds."""
        out = np.where(self.integer, np.round(x), x)
        return np.clip(out, self.low, self.high) if clip else out

    def frame(self, base: pd.DataFrame, x: Array) -> pd.DataFrame:
        """``base`` (one row per row of ``x``) with the numeric columns replaced by ``x``."""
        out = base.copy()
        for j, column in enumerate(self.columns):
            values: Any = x[:, j]
            if self.integer[j] and pd.api.types.is_integer_dtype(base[column].dtype):
                values = np.round(values).astype(base[column].dtype)
            out[column] = values
        return out


def repeat(frame: pd.DataFrame, times: int) -> pd.DataFrame:
    """``frame`` stacked ``times`` times (a fresh index)."""
    return pd.concat([frame] * times, ignore_index=True)
