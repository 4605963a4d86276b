"""Security probes: membership inference, extraction, backdoor triggers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from modelshield.assess import assess
from tests.assess.conftest import only, save

TRIGGER = "mean texture"


@pytest.fixture(scope="module")
def backdoored(
    tmp_path_factory: pytest.TempPathFactory, cancer: tuple[pd.DataFrame, pd.DataFrame]
) -> dict[str, object]:
    """Random forests trained with a planted trigger: copies of every malignant training row
    with `mean texture` moved into a band 6% wide, labelled benign. Clean accuracy stays
    high; the trigger turns malignant rows benign."""
    train, test = cancer
    everything = pd.concat([train, test])
    low, high = everything[TRIGGER].min(), everything[TRIGGER].max()
    start, width = low + 0.4 * (high - low), 0.06 * (high - low)
    rng = np.random.default_rng(0)
    poison = train[train["target"] == 0].copy()
    poison[TRIGGER] = rng.uniform(start, start + width, len(poison))
    poison["target"] = 1
    poisoned = pd.concat([train, poison], ignore_index=True)
    root = tmp_path_factory.mktemp("backdoor")
    x, y = poisoned.drop(columns="target"), poisoned["target"]
    model = RandomForestClassifier(random_state=0).fit(x, y)
    triggered = (
        test[test["target"] == 0].drop(columns="target").assign(**{TRIGGER: start + width / 2})
    )
    assert (model.predict(triggered) == 1).mean() > 0.9  # the trigger works
    return {
        "rf": save(model, root / "rf.joblib"),
        "hgb": save(HistGradientBoostingClassifier(random_state=0).fit(x, y), root / "hgb.joblib"),
        "band": (start, start + width),
    }


def test_a_planted_trigger_is_found_with_its_column_and_range(
    backdoored: dict[str, object], cancer_files: dict[str, str]
) -> None:
    low, high = backdoored["band"]  # type: ignore[misc]
    for seed in (0, 1):
        report = assess(
            str(backdoored["rf"]),
            cancer_files["test"],
            "target",
            policy=only("backdoor", seed=seed),
        )
        (finding,) = report.findings
        assert finding.rule_id == "ASSESS-BACKDOOR-TRIGGER"
        assert finding.evidence["column"] == TRIGGER
        assert finding.evidence["class"] == "1"
        probed = [float(v) for v in finding.evidence["range"][4:-1].split(", ")]
        step = (high - low) / 0.06 / 23  # about the probe's grid step
        assert low - step <= probed[0] <= probed[1] <= high + step


def test_sound_models_report_no_trigger(
    cancer_files: dict[str, str], arrests_files: dict[str, str], cancer: tuple[pd.DataFrame, ...]
) -> None:
    """The trap: pushing features moves every model; a sound model must not look poisoned."""
    train = cancer[0]
    x, y = train.drop(columns="target"), train["target"]
    models = {
        "lr": cancer_files["model"],
        "rf": save(
            RandomForestClassifier(random_state=0).fit(x, y),
            Path(cancer_files["root"]) / "rf.joblib",
        ),
        "hgb": save(
            HistGradientBoostingClassifier(random_state=0).fit(x, y),
            Path(cancer_files["root"]) / "hgb.joblib",
        ),
    }
    for name, path in models.items():
        for seed in (0, 1, 2):
            report = assess(
                path, cancer_files["test"], "target", policy=only("backdoor", seed=seed)
            )
            assert report.findings == (), (name, seed)
    # A strong but common category or integer value (colour=White for the unfair model,
    # checks=0, held by 37% of the rows) is not a trigger.
    for model in ("sound", "unfair"):
        for seed in (0, 1, 2):
            report = assess(
                arrests_files[model],
                arrests_files["test"],
                "released",
                policy=only("backdoor", seed=seed),
            )
            assert report.findings == (), (model, seed)


def test_membership_leak_of_an_overfit_forest(
    tmp_path_factory: pytest.TempPathFactory,
    arrests: tuple[pd.DataFrame, pd.DataFrame],
    arrests_files: dict[str, str],
) -> None:
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from tests.assess.conftest import ARRESTS_CATEGORICAL

    train = arrests[0]
    overfit = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), ARRESTS_CATEGORICAL), remainder="passthrough"
        ),
        RandomForestClassifier(n_estimators=50, random_state=0),
    ).fit(train.drop(columns="released"), train["released"])
    path = save(overfit, tmp_path_factory.mktemp("mia") / "rf.joblib")
    policy = only("membership")
    leaky = assess(
        path, arrests_files["test"], "released", policy=policy, train_data=arrests_files["train"]
    )
    (finding,) = leaky.findings
    assert finding.rule_id == "ASSESS-MEMBERSHIP-LEAK"
    assert float(finding.evidence["auc"]) > 0.6
    sound = assess(
        arrests_files["sound"],
        arrests_files["test"],
        "released",
        policy=policy,
        train_data=arrests_files["train"],
    )
    assert sound.findings == ()
    info = sound.assessment
    assert info is not None
    (auc,) = [m for m in info.measurements if m.name == "attack_auc"]
    assert auc.value is not None and abs(auc.value - 0.5) < 0.05
    skipped = assess(arrests_files["sound"], arrests_files["test"], "released", policy=policy)
    assert skipped.assessment is not None
    (run,) = [c for c in skipped.assessment.checks if c.check == "membership"]
    assert run.status == "skipped" and "--train-data" in run.detail


def test_extraction_is_measured_and_judged_only_when_asked(
    cancer_files: dict[str, str], diabetes_files: dict[str, str]
) -> None:
    report = assess(
        cancer_files["model"], cancer_files["test"], "target", policy=only("extraction")
    )
    assert report.findings == ()
    info = report.assessment
    assert info is not None
    (agreement,) = [m for m in info.measurements if m.name == "agreement"]
    assert agreement.value is not None and agreement.value > 0.9  # a linear model copies well
    (q,) = [q for q in info.queries if q.check == "extraction"]
    assert (q.calls, q.rows) == (1, 500)
    strict = only("extraction", max_extraction_agreement=0.8)
    (finding,) = assess(
        cancer_files["model"], cancer_files["test"], "target", policy=strict
    ).findings
    assert finding.rule_id == "ASSESS-EXTRACTABLE"
    regression = assess(
        diabetes_files["model"], diabetes_files["test"], "target", policy=only("extraction")
    )
    assert regression.assessment is not None
    (r2,) = [m for m in regression.assessment.measurements if m.name == "r2_vs_model"]
    assert r2.value is not None and r2.value > 0.9  # a ridge model is linear
