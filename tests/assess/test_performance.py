"""Performance metrics and their bootstrap intervals, against scikit-learn's own metrics."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from modelshield.assess import assess
from modelshield.assess.stats import auc, bootstrap_weights, weighted_auc
from modelshield.core.measurements import Measurement
from modelshield.core.policy import Policy
from tests.assess.conftest import only


def figures(report: object, check: str) -> dict[str, Measurement]:
    info = report.assessment  # type: ignore[attr-defined]
    return {m.name: m for m in info.measurements if m.check == check and not m.group}


def test_classification_metrics_equal_scikit_learns(cancer_files: dict[str, str]) -> None:
    report = assess(
        cancer_files["model"], cancer_files["test"], "target", policy=only("performance")
    )
    got = figures(report, "performance")
    test = pd.read_csv(cancer_files["test"])
    model = joblib.load(cancer_files["model"])
    x, y = test.drop(columns="target"), test["target"]
    proba = model.predict_proba(x)
    pred = model.predict(x)
    expected = {
        "accuracy": metrics.accuracy_score(y, pred),
        "balanced_accuracy": metrics.balanced_accuracy_score(y, pred),
        "precision": metrics.precision_score(y, pred),
        "recall": metrics.recall_score(y, pred),
        "f1": metrics.f1_score(y, pred),
        "roc_auc": metrics.roc_auc_score(y, proba[:, 1]),
        "log_loss": metrics.log_loss(y, proba),
        "brier": metrics.brier_score_loss(y, proba[:, 1]) * 2,  # both columns, as multiclass
    }
    for name, value in expected.items():
        m = got[name]
        assert m.value == pytest.approx(value, abs=1e-6), name
        assert m.low is not None and m.high is not None
        assert m.low <= value <= m.high, name
        assert m.n == len(test)


def test_regression_metrics_equal_scikit_learns(diabetes_files: dict[str, str]) -> None:
    report = assess(
        diabetes_files["model"], diabetes_files["test"], "target", policy=only("performance")
    )
    assert report.assessment is not None and report.assessment.task == "regression"
    got = figures(report, "performance")
    test = pd.read_csv(diabetes_files["test"])
    pred = joblib.load(diabetes_files["model"]).predict(test.drop(columns="target"))
    y = test["target"]
    assert got["mae"].value == pytest.approx(metrics.mean_absolute_error(y, pred), abs=1e-6)
    assert got["rmse"].value == pytest.approx(metrics.root_mean_squared_error(y, pred), abs=1e-6)
    assert got["r2"].value == pytest.approx(metrics.r2_score(y, pred), abs=1e-6)


def test_weighted_auc_equals_scikit_learn_with_ties_and_weights() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, 300).astype(float)  # many ties
    positive = (rng.random(300) < 0.4).astype(float)
    weights = rng.integers(0, 4, (3, 300)).astype(float)
    got = weighted_auc(scores, positive, weights)
    for row, value in zip(weights, got, strict=True):
        assert value == pytest.approx(metrics.roc_auc_score(positive, scores, sample_weight=row))
    assert auc(scores, np.zeros(300)) is None


def test_bootstrap_weights_are_resamples_and_seeded() -> None:
    chunks = list(bootstrap_weights(50_000, 100, seed=1))
    assert len(chunks) > 1  # made in bounded chunks
    stacked = np.vstack(chunks)
    assert stacked.shape == (100, 50_000)
    assert (stacked.sum(axis=1) == 50_000).all()
    again = np.vstack(list(bootstrap_weights(50_000, 100, seed=1)))
    assert (stacked == again).all()


def test_a_missed_floor_is_a_finding_naming_the_metric(cancer_files: dict[str, str]) -> None:
    policy = only("performance", min_metric={"accuracy": 0.999}, max_metric={"log_loss": 0.5})
    report = policy.apply(
        assess(cancer_files["model"], cancer_files["test"], "target", policy=policy)
    )
    (finding,) = report.findings
    assert finding.rule_id == "ASSESS-METRIC-THRESHOLD"
    assert finding.evidence["metric"] == "accuracy"
    assert finding.evidence["threshold"] == "0.999"
    assert "accuracy is 0.9" in finding.message
    assert policy.exit_code(report) == 1


def test_a_threshold_on_an_unmeasured_metric_fails_closed(diabetes_files: dict[str, str]) -> None:
    policy = only("performance", min_metric={"accuracy": 0.5})
    report = policy.apply(
        assess(diabetes_files["model"], diabetes_files["test"], "target", policy=policy)
    )
    assert [f.rule_id for f in report.findings] == ["ASSESS-CHECK-INCOMPLETE"]
    assert report.results[-1].status == "incomplete"
    assert Policy().exit_code(report) == 1  # the finding is medium: it fails the default run


def test_a_regressor_on_a_target_of_few_integers_is_a_regression(
    tmp_path: object, diabetes_files: dict[str, str]
) -> None:
    """A scikit-learn model without classes is a regressor, whatever the target looks like."""
    from pathlib import Path

    from sklearn.linear_model import Ridge

    from tests.assess.conftest import csv, save

    test = pd.read_csv(diabetes_files["test"])
    test["target"] = (test["target"] // 100).astype(int)  # 0 to 3
    root = Path(str(tmp_path))
    model = Ridge().fit(test.drop(columns="target"), test["target"])
    report = assess(
        save(model, root / "r.joblib"),
        csv(test, root / "t.csv"),
        "target",
        policy=only("performance"),
    )
    assert report.assessment is not None and report.assessment.task == "regression"
