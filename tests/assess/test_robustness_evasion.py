"""Natural perturbations, consistency, and evasion with a query budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

from modelshield.assess import assess
from modelshield.core.measurements import Measurement
from tests.assess import models_for_tests
from tests.assess.conftest import csv, only, save


@pytest.fixture(scope="module")
def fragile(tmp_path_factory: pytest.TempPathFactory, cancer: tuple[pd.DataFrame, ...]) -> str:
    """A deliberately fragile model: a fully grown tree that memorised 30% flipped labels,
    so that its regions are tiny and noise moves rows across them."""
    train = cancer[0]
    rng = np.random.default_rng(0)
    y = train["target"].to_numpy()
    noisy = np.where(rng.random(len(y)) < 0.3, 1 - y, y)
    model = DecisionTreeClassifier(random_state=0).fit(train.drop(columns="target"), noisy)
    return save(model, tmp_path_factory.mktemp("fragile") / "tree.joblib")


def figures(report: object, check: str) -> dict[tuple[str, str], Measurement]:
    info = report.assessment  # type: ignore[attr-defined]
    return {(m.name, m.group): m for m in info.measurements if m.check == check}


def test_the_fragile_model_is_caught_by_noise(fragile: str, cancer_files: dict[str, str]) -> None:
    report = assess(fragile, cancer_files["test"], "target", policy=only("robustness"))
    (finding,) = report.findings
    assert finding.rule_id == "ASSESS-PERTURBATION-FRAGILE"
    assert finding.evidence["perturbation"] == "noise 0.1 sd"
    assert float(finding.evidence["flip_rate"]) > 0.05
    assert finding.evidence["most_sensitive_column"] in pd.read_csv(cancer_files["test"]).columns


def test_sound_models_are_not_fragile(
    cancer_files: dict[str, str], arrests_files: dict[str, str]
) -> None:
    a = assess(cancer_files["model"], cancer_files["test"], "target", policy=only("robustness"))
    b = assess(arrests_files["sound"], arrests_files["test"], "released", policy=only("robustness"))
    assert a.findings == () and b.findings == ()
    got = figures(b, "robustness")
    # Every natural perturbation is measured, and the flip rate grows with the noise.
    assert {g for _, g in got} >= {"category swap", "out of range", "missing value", "noise 0.1 sd"}
    info = a.assessment
    assert info is not None
    (curve,) = [c for c in info.curves if c.name == "flip_rate_vs_noise"]
    assert curve.y[-1] >= curve.y[0]


def test_perturbed_integers_stay_integers(arrests_files: dict[str, str]) -> None:
    models_for_tests.SEEN.clear()
    assess(
        "tests.assess.models_for_tests:arrests_rule",
        arrests_files["test"],
        "released",
        policy=only("robustness"),
    )
    seen = pd.concat(models_for_tests.SEEN)
    for column in ("age", "checks", "year"):
        values = seen[column].dropna().to_numpy(dtype=float)
        assert np.all(values == np.round(values)), column


def test_a_stochastic_model_is_caught(cancer_files: dict[str, str]) -> None:
    report = assess(
        "tests.assess.models_for_tests:stochastic",
        cancer_files["test"],
        "target",
        policy=only("consistency"),
    )
    assert {f.rule_id for f in report.findings} == {"ASSESS-INCONSISTENT"}
    assert "stochastic" in {f.evidence["kind"] for f in report.findings}


def test_a_deterministic_model_is_consistent(cancer_files: dict[str, str]) -> None:
    report = assess(
        cancer_files["model"], cancer_files["test"], "target", policy=only("consistency")
    )
    assert report.findings == ()
    assert [(q.check, q.calls) for q in report.assessment.queries] == [  # type: ignore[union-attr]
        ("baseline", 1),
        ("consistency", 4),
    ]


def test_evasion_catches_the_fragile_model_within_budget(
    fragile: str, cancer_files: dict[str, str]
) -> None:
    strict = only("evasion", max_evasion_success=0.3)
    report = assess(fragile, cancer_files["test"], "target", policy=strict)
    (finding,) = report.findings
    assert finding.rule_id == "ASSESS-EVASION"
    assert int(finding.evidence["queries_per_row"]) <= 400
    info = report.assessment
    assert info is not None
    (q,) = [q for q in info.queries if q.check == "evasion"]
    assert q.rows <= 20 * 400


def test_evasion_passes_the_sound_model_and_is_deterministic(
    cancer_files: dict[str, str],
) -> None:
    policy = only("evasion", max_evasion_success=0.3)
    a = assess(cancer_files["model"], cancer_files["test"], "target", policy=policy)
    b = assess(cancer_files["model"], cancer_files["test"], "target", policy=policy)
    assert a.findings == ()
    fa, fb = figures(a, "evasion"), figures(b, "evasion")
    assert {k: m.value for k, m in fa.items()} == {k: m.value for k, m in fb.items()}
    assert fa[("success_rate", "black-box, any size")].value == 1.0
    median = fa[("median_minimal_l2", "black-box")].value
    assert median is not None and median > 0


def test_evasion_respects_integers_bounds_and_categories(arrests_files: dict[str, str]) -> None:
    test = pd.read_csv(arrests_files["test"])
    models_for_tests.SEEN.clear()
    report = assess(
        "tests.assess.models_for_tests:arrests_rule",
        arrests_files["test"],
        "released",
        policy=only("evasion"),
    )
    assert figures(report, "evasion")[("success_rate", "black-box, any size")].value == 1.0
    seen = pd.concat(models_for_tests.SEEN[1:])  # the baseline, then the attack's queries
    for column in ("age", "checks", "year"):
        values = seen[column].to_numpy(dtype=float)
        assert np.all(values == np.round(values)), column
        assert values.min() >= test[column].min() and values.max() <= test[column].max()
    for column in ("colour", "sex", "employed", "citizen"):
        assert set(seen[column]) <= set(test[column])


@pytest.mark.slow  # trains and exports a small network (about 5 s on two loaded cores)
def test_pgd_runs_where_gradients_exist(tmp_path: Path, cancer: tuple[pd.DataFrame, ...]) -> None:
    torch = pytest.importorskip("torch")
    train, test = cancer
    x = torch.tensor(train.drop(columns="target").to_numpy(), dtype=torch.float32)
    y = torch.tensor(train["target"].to_numpy())
    mean, std = x.mean(0), x.std(0)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(30, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return self.net((inputs - self.mean) / self.std)

    model = Model()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(200):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    path = tmp_path / "model.pt"
    torch.jit.script(model).save(str(path))
    report = assess(
        str(path), csv(test, tmp_path / "t.csv"), "target", policy=only("performance", "evasion")
    )
    info = report.assessment
    assert info is not None and info.model_kind == "torchscript"
    got = figures(report, "evasion")
    assert ("median_minimal_l2", "white-box (PGD)") in got
    white = got[("success_rate", "white-box (PGD), L2 <= 0.5")].value
    black = got[("success_rate", "black-box, L2 <= 0.5")].value
    # Gradients find about as many evasions as the black-box attack (half the rows here).
    assert white is not None and black is not None and white >= black - 0.2 and white > 0.3
    assert figures(report, "performance")[("accuracy", "")].value > 0.9  # type: ignore[operator]
    # The same network as a torch.export program: its archive holds parts the scan does not
    # read yet, so it is refused unless trusted (and then loaded by torch.export.load).
    exported = tmp_path / "model.pt2"
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (x[:4],), dynamic_shapes={"inputs": {0: batch}})
    torch.export.save(program, str(exported))
    refused = assess(
        str(exported), csv(test, tmp_path / "t.csv"), "target", policy=only("performance")
    )
    assert "model not loaded" in refused.results[-1].errors[0].message
    trusted = assess(
        str(exported),
        csv(test, tmp_path / "t.csv"),
        "target",
        policy=only("performance"),
        trust=True,
    )
    info = trusted.assessment
    assert info is not None and info.model_kind == "torch-export" and info.trusted
