"""The data file: kinds inferred and overridden, and every problem named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelshield.assess.data import infer_kind, load_dataset, read_table
from modelshield.assess.interface import DataError


def test_kinds_are_inferred_from_the_values() -> None:
    assert infer_kind(pd.Series([True, False])) == "boolean"
    assert infer_kind(pd.Series([1, 2, 3])) == "integer"
    assert infer_kind(pd.Series([1.0, np.nan, 3.0])) == "integer"  # integers with gaps
    assert infer_kind(pd.Series([1.5, 2.0])) == "numeric"
    assert infer_kind(pd.Series(["a", "b"])) == "categorical"


def test_overrides_rows_and_sampling(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": range(10), "b": list("xyxyxyxyxy"), "y": [1, 0] * 4 + [None, None]}).to_csv(
        path, index=False
    )
    data = load_dataset(str(path), "y", kinds={"a": "categorical"}, max_rows=5, seed=1)
    assert data.kinds == {"a": "categorical", "b": "categorical"}
    assert (data.rows, data.rows_total) == (5, 10)  # rows without a target dropped, then sampled


@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        ({"y": [None, None]}, {}, "no row has a value in the target column"),
        ({"a": [1], "y": [1]}, {"sensitive": ["y"]}, "cannot be a sensitive column"),
        ({"a": [1], "y": [1]}, {"sensitive": ["race"]}, "no column 'race'"),
        ({"a": [1], "y": [1]}, {"kinds": {"a": "text"}}, "unknown kind 'text'"),
    ],
)
def test_problems_are_named(
    tmp_path: Path, frame: dict[str, list[object]], kwargs: dict[str, object], message: str
) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame(frame).to_csv(path, index=False)
    with pytest.raises(DataError, match=message):
        load_dataset(str(path), "y", **kwargs)  # type: ignore[arg-type]


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read the data file"):
        read_table(str(tmp_path / "missing.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b'a,b\n"1,2\n')
    with pytest.raises(DataError, match="not a readable CSV file"):
        read_table(str(bad))
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(b"PAR1 not really")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        from modelshield.core.errors import MissingExtraError

        with pytest.raises(MissingExtraError, match="pyarrow"):
            read_table(str(fake))
    else:
        with pytest.raises(DataError, match="not a readable Parquet file"):
            read_table(str(fake))
