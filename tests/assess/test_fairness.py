"""Fairness per sensitive column and intersection, with intervals; checked against Fairlearn."""

from __future__ import annotations

import time

import joblib
import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    selection_rate,
    true_positive_rate,
)

from modelshield.assess import assess
from tests.assess.conftest import only

FAIR = only("fairness")


def by(report: object, name: str, group: str) -> object:
    info = report.assessment  # type: ignore[attr-defined]
    return next(m for m in info.measurements if m.name == name and m.group == group)


def test_figures_equal_fairlearns(arrests_files: dict[str, str]) -> None:
    report = assess(
        arrests_files["sound"],
        arrests_files["test"],
        "released",
        sensitive=["colour", "sex"],
        policy=FAIR,
    )
    test = pd.read_csv(arrests_files["test"])
    pred = joblib.load(arrests_files["sound"]).predict(test.drop(columns="released")) == "Yes"
    y = test["released"] == "Yes"
    for column in ("colour", "sex"):
        s = test[column]
        assert by(report, "dp_difference", column).value == pytest.approx(  # type: ignore[attr-defined]
            demographic_parity_difference(y, pred, sensitive_features=s), abs=1e-6
        )
        assert by(report, "dp_ratio", column).value == pytest.approx(  # type: ignore[attr-defined]
            demographic_parity_ratio(y, pred, sensitive_features=s), abs=1e-6
        )
        assert by(report, "eo_difference", column).value == pytest.approx(  # type: ignore[attr-defined]
            equalized_odds_difference(y, pred, sensitive_features=s), abs=1e-6
        )
        frame = MetricFrame(
            metrics={"sel": selection_rate, "tpr": true_positive_rate},
            y_true=y,
            y_pred=pred,
            sensitive_features=s,
        )
        for group, row in frame.by_group.iterrows():
            m = by(report, "selection_rate", f"{column}={group}")
            assert m.value == pytest.approx(row["sel"], abs=1e-6)  # type: ignore[attr-defined]
            assert m.low <= m.value <= m.high  # type: ignore[attr-defined]
            assert by(report, "tpr", f"{column}={group}").value == pytest.approx(  # type: ignore[attr-defined]
                row["tpr"], abs=1e-6
            )
    # The intersection is measured too.
    assert by(report, "dp_ratio", "colour & sex").n > 0  # type: ignore[attr-defined]


def test_the_sound_model_passes(arrests_files: dict[str, str]) -> None:
    report = assess(
        arrests_files["sound"],
        arrests_files["test"],
        "released",
        sensitive=["colour", "sex", "age"],
        policy=FAIR,
    )
    assert report.findings == ()


def test_the_unfair_model_is_caught_naming_the_column_and_groups(
    arrests_files: dict[str, str],
) -> None:
    report = assess(
        arrests_files["unfair"],
        arrests_files["test"],
        "released",
        sensitive=["colour", "sex"],
        policy=FAIR,
    )
    dp = [f for f in report.findings if f.rule_id == "ASSESS-DISPARATE-IMPACT"]
    assert {f.evidence["sensitive"] for f in dp} == {"colour", "colour & sex"}
    colour = next(f for f in dp if f.evidence["sensitive"] == "colour")
    assert colour.evidence["lowest_group"] == "colour=Black"
    assert colour.evidence["highest_group"] == "colour=White"
    assert "four-fifths" in colour.message
    assert any(f.rule_id == "ASSESS-EQUALIZED-ODDS" for f in report.findings)


def test_a_small_group_does_not_raise_a_false_alarm(
    tmp_path: object, arrests: tuple[pd.DataFrame, pd.DataFrame], arrests_files: dict[str, str]
) -> None:
    """Forty rows of one group: the unfair gap is there, but the interval is too wide (or the
    group too small) to call it."""
    from pathlib import Path

    test = arrests[1]
    rng = np.random.default_rng(1)
    small = test.copy()
    chosen = rng.choice(len(small), 12, replace=False)
    small["tag"] = "common"
    small.loc[chosen, "tag"] = "rare"
    path = Path(str(tmp_path)) / "t.csv"
    small.to_csv(path, index=False)
    report = assess(arrests_files["sound"], str(path), "released", sensitive=["tag"], policy=FAIR)
    assert report.findings == ()
    assert by(report, "selection_rate", "tag=rare").n == 12  # type: ignore[attr-defined]


def test_every_fairness_metric_with_intervals_is_fast(arrests_files: dict[str, str]) -> None:
    """Regression guard, not a benchmark (bench/bench_assess.py measures): 2 columns and their
    intersection, 4 rates per group and 3 gaps, 200 resamples each."""
    start = time.perf_counter()
    assess(
        arrests_files["sound"],
        arrests_files["test"],
        "released",
        sensitive=["colour", "sex"],
        policy=FAIR,
    )
    assert time.perf_counter() - start < 5
