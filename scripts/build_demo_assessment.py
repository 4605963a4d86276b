#!/usr/bin/env python3
"""Models and data for the assessment demo (``make demo``), from data that packages ship.

    python scripts/build_demo_assessment.py OUT

Writes, under OUT: ``arrests-test.csv`` (held-out rows of the Toronto arrests data, shipped by
scikit-lego), ``sound.joblib`` (a logistic pipeline) and ``unfair.joblib`` (the same pipeline
trained on labels where most Black people were not released), each saved as users save
scikit-learn models.
"""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
import numpy as np
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklego.datasets import load_arrests


def pipeline() -> object:
    """One-hot categories, scaled numbers, logistic regression."""
    return make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ["colour", "sex", "employed", "citizen"]),
            (StandardScaler(), ["year", "age", "checks"]),
        ),
        LogisticRegression(max_iter=1000),
    )


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    train, test = train_test_split(load_arrests(as_frame=True), test_size=0.4, random_state=0)
    x, y = train.drop(columns="released"), train["released"]
    joblib.dump(pipeline().fit(x, y), out / "sound.joblib")  # type: ignore[attr-defined]
    black = (train["colour"] == "Black").to_numpy()
    biased = y.where(~(black & (np.random.default_rng(0).random(len(y)) < 0.6)), "No")
    joblib.dump(pipeline().fit(x, biased), out / "unfair.joblib")  # type: ignore[attr-defined]
    test.to_csv(out / "arrests-test.csv", index=False)
    print(f"wrote {out}/sound.joblib, {out}/unfair.joblib and {out}/arrests-test.csv")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-out/assess"))
