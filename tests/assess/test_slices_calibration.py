"""Weakest slices (with statistics) and calibration."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve

from modelshield.assess import assess
from modelshield.assess.checks.calibration import ece_samples
from tests.assess.conftest import only


def test_a_slice_the_model_gets_wrong_is_found_and_named(arrests_files: dict[str, str]) -> None:
    report = assess(
        arrests_files["weak_slice"], arrests_files["test"], "released", policy=only("slices")
    )
    slices = {f.evidence["slice"] for f in report.findings if f.rule_id == "ASSESS-WEAK-SLICE"}
    assert "employed=No" in slices
    finding = next(f for f in report.findings if f.evidence["slice"] == "employed=No")
    assert float(finding.evidence["slice_value"]) < float(finding.evidence["rest_value"])
    assert "slices tested" in finding.message


def test_sound_models_have_no_weak_slice(
    arrests_files: dict[str, str], cancer_files: dict[str, str]
) -> None:
    for model, data, target in (
        (arrests_files["sound"], arrests_files["test"], "released"),
        (cancer_files["model"], cancer_files["test"], "target"),
    ):
        report = assess(model, data, target, policy=only("slices"))
        assert report.findings == (), model


def test_without_the_statistics_noise_would_be_flagged(
    tmp_path: Path, cancer_files: dict[str, str]
) -> None:
    """The trap: on 80 rows and slices of 10, a scan without a corrected test 'finds' weak
    slices in a sound model; with it, none."""
    small = tmp_path / "small.csv"
    pd.read_csv(cancer_files["test"]).sample(80, random_state=1).to_csv(small, index=False)
    naive = only("slices", slice_alpha=1.0, slice_min_drop=0.05, slice_min_rows=10)
    report = assess(cancer_files["model"], str(small), "target", policy=naive)
    assert report.findings  # what a test-free scan reports on a sound model
    report = assess(
        cancer_files["model"], str(small), "target", policy=only("slices", slice_min_rows=10)
    )
    assert report.findings == ()


def test_ece_and_reliability_curve_match_a_direct_computation(
    cancer_files: dict[str, str],
) -> None:
    report = assess(
        cancer_files["model"], cancer_files["test"], "target", policy=only("calibration")
    )
    info = report.assessment
    assert info is not None
    test = pd.read_csv(cancer_files["test"])
    proba = joblib.load(cancer_files["model"]).predict_proba(test.drop(columns="target"))
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == test["target"].to_numpy()).astype(float)
    bins = np.minimum((conf * 10).astype(int), 9)
    direct = sum(
        (bins == b).mean() * abs(conf[bins == b].mean() - correct[bins == b].mean())
        for b in range(10)
        if (bins == b).any()
    )
    (ece,) = [m for m in info.measurements if m.name == "ece"]
    assert ece.value is not None and abs(ece.value - direct) < 1e-6
    assert abs(ece_samples(conf, correct, bins, 10, np.ones((1, len(conf))))[0] - direct) < 1e-9
    (curve,) = info.curves
    assert curve.name == "reliability" and len(curve.x) == len(curve.y) > 2
    # scikit-learn's curve on the top-class confidence agrees bin for bin.
    acc, _ = calibration_curve(correct, conf, n_bins=10, strategy="uniform")
    assert np.allclose(sorted(curve.y), sorted(acc), atol=1e-6)
    assert report.findings == ()


def test_an_overconfident_model_is_caught(tmp_path: object, cancer_files: dict[str, str]) -> None:
    """Probabilities pushed to the extremes (as an over-trained network's are): wrong
    predictions at 99% confidence."""
    report = assess(
        "tests.assess.models_for_tests:overconfident",
        cancer_files["test"],
        "target",
        policy=only("calibration"),
    )
    (finding,) = report.findings
    assert finding.rule_id == "ASSESS-MISCALIBRATED"
    assert finding.evidence["direction"] == "overconfident"


def test_regression_slices(diabetes_files: dict[str, str]) -> None:
    sound = assess(diabetes_files["model"], diabetes_files["test"], "target", policy=only("slices"))
    assert sound.findings == ()
    broken = assess(
        "tests.assess.models_for_tests:diabetes_broken",
        diabetes_files["test"],
        "target",
        policy=only("slices"),
    )
    slices = [f.evidence["slice"] for f in broken.findings]
    assert slices and slices[0].startswith("s5 in [")
    assert broken.findings[0].evidence["metric"] == "mae"
