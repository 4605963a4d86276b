"""Sound models on data that packages ship, shared by bench_assess.py and the false-alarm sweep.

Each entry trains a model the way a careful practitioner would (scaled inputs, default
regularisation, a held-out half), so that a finding on it is a false alarm."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ARRESTS_CATEGORICAL = ["colour", "sex", "employed", "citizen"]
ARRESTS_NUMERIC = ["year", "age", "checks"]


def _arrests() -> pd.DataFrame:
    from sklego.datasets import load_arrests

    frame: pd.DataFrame = load_arrests(as_frame=True)
    return frame


def _arrests_model(estimator: Any) -> Any:
    return make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ARRESTS_CATEGORICAL),
            (StandardScaler(), ARRESTS_NUMERIC),
        ),
        estimator,
    )


def _scaled_lr() -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))


#: (name, data loader, target, sensitive columns, model factory)
SOUND: list[tuple[str, Callable[[], pd.DataFrame], str, list[str], Callable[[], Any]]] = [
    ("cancer-lr", lambda: load_breast_cancer(as_frame=True).frame, "target", [], _scaled_lr),
    (
        "cancer-rf",
        lambda: load_breast_cancer(as_frame=True).frame,
        "target",
        [],
        lambda: RandomForestClassifier(random_state=0),
    ),
    (
        "cancer-hgb",
        lambda: load_breast_cancer(as_frame=True).frame,
        "target",
        [],
        lambda: HistGradientBoostingClassifier(random_state=0),
    ),
    ("wine-lr", lambda: load_wine(as_frame=True).frame, "target", [], _scaled_lr),
    (
        "diabetes-ridge",
        lambda: load_diabetes(as_frame=True).frame,
        "target",
        [],
        lambda: Ridge(alpha=1.0),
    ),
    (
        "diabetes-hgb",
        lambda: load_diabetes(as_frame=True).frame,
        "target",
        [],
        lambda: HistGradientBoostingRegressor(max_iter=100, random_state=0),
    ),
    (
        "arrests-lr",
        _arrests,
        "released",
        ["colour", "sex"],
        lambda: _arrests_model(LogisticRegression(max_iter=1000)),
    ),
    (
        "arrests-hgb",
        _arrests,
        "released",
        ["colour", "sex"],
        lambda: _arrests_model(HistGradientBoostingClassifier(max_iter=50, random_state=0)),
    ),
]


def build(root: Path, seed: int = 0) -> Iterator[tuple[str, str, str, str, str, list[str]]]:
    """Train each sound model on one half (split by ``seed``) and save model and halves;
    yields ``(name, model, test, train, target, sensitive)`` paths."""
    root.mkdir(parents=True, exist_ok=True)
    for name, load, target, sensitive, factory in SOUND:
        frame = load()
        train, test = train_test_split(frame, test_size=0.5, random_state=seed)
        model = factory().fit(train.drop(columns=target), train[target])
        model_path = root / f"{name}-{seed}.joblib"
        joblib.dump(model, model_path)
        test_path, train_path = root / f"{name}-{seed}-test.csv", root / f"{name}-{seed}-train.csv"
        test.to_csv(test_path, index=False)
        train.to_csv(train_path, index=False)
        yield name, str(model_path), str(test_path), str(train_path), target, sensitive
