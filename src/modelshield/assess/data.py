"""The data: a CSV or Parquet file read into features, a target and column kinds.

Column kinds decide how checks treat a column: ``numeric`` and ``integer`` columns are binned
for slices, perturbed with noise and attacked (integers stay integers); ``categorical`` and
``boolean`` columns are sliced by value and swapped between observed values. Kinds are inferred
from the column's type and may be overridden (``--column-type age=categorical``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from msgspec import Struct

from modelshield.assess.interface import DataError

KINDS = ("numeric", "integer", "categorical", "boolean")
"""Column kinds."""


class Dataset(Struct, frozen=True):
    """Rows to assess on: what the model reads, the target, and every column's kind."""

    path: str
    """The file as the user named it."""
    frame: pd.DataFrame
    """Every column but the target (sensitive ones included)."""
    target: np.ndarray[Any, Any]
    """The target column's values."""
    target_name: str
    """The target column."""
    kinds: Mapping[str, str]
    """Kind of each column of ``frame``."""
    rows_total: int
    """Rows in the file, before rows without a target were dropped and before sampling."""

    @property
    def rows(self) -> int:
        """Rows used."""
        return len(self.frame)


def read_table(path: str) -> pd.DataFrame:
    """A CSV or Parquet file as a data frame (by the file's first bytes, then its suffix)."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        raise DataError(f"cannot read the data file {path}: {e.strerror or e}") from e
    if head == b"PAR1" or p.suffix.lower() in (".parquet", ".pq"):
        try:
            import pyarrow  # noqa: F401 - pandas reads Parquet through it
        except ImportError as e:
            from modelshield.core.errors import MissingExtraError

            raise MissingExtraError("reading Parquet data", "parquet", "pyarrow") from e
        try:
            return pd.read_parquet(p)
        except Exception as e:
            raise DataError(f"{path} is not a readable Parquet file: {e}") from e
    try:
        return pd.read_csv(p, low_memory=False)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise DataError(f"{path} is not a readable CSV file: {e}") from e


def infer_kind(series: pd.Series) -> str:
    """A column's kind from its type: booleans, integers, other numbers, the rest categorical."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_numeric_dtype(dtype):
        values = series.dropna()
        if len(values) and bool(np.all(np.equal(np.mod(values.to_numpy(float), 1), 0))):
            # Integers read as floats because of missing values.
            return "integer"
        return "numeric"
    return "categorical"


def load_dataset(
    path: str,
    target: str,
    *,
    sensitive: Sequence[str] = (),
    kinds: Mapping[str, str] | None = None,
    drop: Sequence[str] = (),
    max_rows: int = 100_000,
    seed: int = 0,
    frame: pd.DataFrame | None = None,
) -> Dataset:
    """Read ``path`` (or take ``frame``), split off ``target`` and settle each column's kind.

    Rows without a target are dropped; above ``max_rows`` a seeded sample is kept. Every
    problem names the file and the column.
    """
    table = read_table(path) if frame is None else frame
    columns = [str(c) for c in table.columns]
    table.columns = pd.Index(columns)
    if target not in columns:
        raise DataError(f"{path}: no target column {target!r}; the columns are {_names(columns)}")
    for name in (*sensitive, *drop, *(kinds or {})):
        if name not in columns:
            raise DataError(f"{path}: no column {name!r}; the columns are {_names(columns)}")
    if target in sensitive:
        raise DataError(f"{path}: {target!r} is the target; it cannot be a sensitive column")
    rows_total = len(table)
    table = table[table[target].notna()]
    if len(table) == 0:
        raise DataError(f"{path}: no row has a value in the target column {target!r}")
    if len(table) > max_rows:
        table = table.sample(n=max_rows, random_state=seed)
    table = table.reset_index(drop=True)
    features = table.drop(columns=[target, *drop])
    settled: dict[str, str] = {}
    for name in features.columns:
        wanted = (kinds or {}).get(name)
        kind = infer_kind(features[name]) if wanted is None else wanted
        if wanted is not None:
            features[name] = _coerce(features[name], kind, path, name)
        settled[name] = kind
    return Dataset(
        path=path,
        frame=features,
        target=table[target].to_numpy(),
        target_name=target,
        kinds=settled,
        rows_total=rows_total,
    )


def _coerce(series: pd.Series, kind: str, path: str, name: str) -> pd.Series:
    if kind not in KINDS:
        raise DataError(f"{path}: unknown kind {kind!r} for column {name!r}; use {_names(KINDS)}")
    if kind in ("numeric", "integer"):
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & series.notna()
        if bad.any():
            example = series[bad].iloc[0]
            raise DataError(
                f"{path}: column {name!r} is declared {kind} but holds {int(bad.sum())} "
                f"value(s) that are not numbers, e.g. {example!r}"
            )
        return converted
    return series


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in list(names)[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")
