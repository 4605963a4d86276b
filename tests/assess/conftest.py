"""Real data shipped inside installed packages, and real models trained on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelshield.core.policy import Policy


def split(frame: pd.DataFrame, target: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Half for training, half held out."""
    train, test = train_test_split(frame, test_size=0.5, random_state=seed, stratify=None)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def save(model: Any, path: Path) -> str:
    """A model file written by joblib, as users save scikit-learn models."""
    joblib.dump(model, path)
    return str(path)


def csv(frame: pd.DataFrame, path: Path) -> str:
    """A data file."""
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="session")
def cancer() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Breast cancer (scikit-learn's bundled copy), split in halves."""
    return split(load_breast_cancer(as_frame=True).frame, "target")


@pytest.fixture(scope="session")
def cancer_files(
    tmp_path_factory: pytest.TempPathFactory, cancer: tuple[pd.DataFrame, pd.DataFrame]
) -> dict[str, str]:
    """A sound logistic pipeline on breast cancer, saved with joblib, and the data as CSV."""
    train, test = cancer
    root = tmp_path_factory.mktemp("cancer")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(train.drop(columns="target"), train["target"])
    return {
        "model": save(model, root / "lr.joblib"),
        "test": csv(test, root / "test.csv"),
        "train": csv(train, root / "train.csv"),
        "root": str(root),
    }


@pytest.fixture(scope="session")
def diabetes_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A ridge regression on scikit-learn's diabetes data."""
    train, test = split(load_diabetes(as_frame=True).frame, "target")
    root = tmp_path_factory.mktemp("diabetes")
    model = Ridge(alpha=0.1).fit(train.drop(columns="target"), train["target"])
    return {"model": save(model, root / "ridge.joblib"), "test": csv(test, root / "test.csv")}


ARRESTS_CATEGORICAL = ["colour", "sex", "employed", "citizen"]
ARRESTS_NUMERIC = ["year", "age", "checks"]


def arrests_pipeline() -> Any:
    """One-hot categories, scaled numbers, logistic regression: how such data is modelled."""
    from sklearn.compose import make_column_transformer
    from sklearn.preprocessing import OneHotEncoder

    return make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ARRESTS_CATEGORICAL),
            (StandardScaler(), ARRESTS_NUMERIC),
        ),
        LogisticRegression(max_iter=1000),
    )


@pytest.fixture(scope="session")
def arrests() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Toronto arrests (shipped by scikit-lego), with race and sex, split 60/40."""
    from sklego.datasets import load_arrests

    frame = load_arrests(as_frame=True)
    train, test = train_test_split(frame, test_size=0.4, random_state=0)
    return train.reset_index(drop=True), test.reset_index(drop=True)


@pytest.fixture(scope="session")
def arrests_files(
    tmp_path_factory: pytest.TempPathFactory, arrests: tuple[pd.DataFrame, pd.DataFrame]
) -> dict[str, str]:
    """A sound model, an unfair one (trained on labels where Black people were mostly not
    released), and one that is bad on a slice (trained with the unemployed's labels flipped)."""
    import numpy as np

    train, test = arrests
    root = tmp_path_factory.mktemp("arrests")
    x, y = train.drop(columns="released"), train["released"]
    sound = arrests_pipeline().fit(x, y)
    black = (train["colour"] == "Black").to_numpy()
    rng = np.random.default_rng(0)
    biased = y.where(~(black & (rng.random(len(y)) < 0.6)), "No")
    unfair = arrests_pipeline().fit(x, biased)
    unemployed = (train["employed"] == "No").to_numpy()
    flipped = y.where(~unemployed, y.map({"Yes": "No", "No": "Yes"}))
    weak = arrests_pipeline().fit(x, flipped)
    return {
        "sound": save(sound, root / "sound.joblib"),
        "unfair": save(unfair, root / "unfair.joblib"),
        "weak_slice": save(weak, root / "weak.joblib"),
        "test": csv(test, root / "test.csv"),
        "train": csv(train, root / "train.csv"),
    }


def only(*checks: str, **settings: Any) -> Policy:
    """A policy running only the named checks, with these [assess] settings."""
    from modelshield.core.assess_settings import CHECKS

    skip = [c for c in CHECKS if c not in checks]
    return Policy.from_mapping({"assess": {"skip": skip, **settings}})
