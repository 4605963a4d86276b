"""`modelshield ci` with every pillar: the manifest and the assessment configured in the
policy run in the same report, with paths relative to the policy file; a pillar that cannot
run is an error of that pillar, and the others still report."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import joblib
import pytest
from junitparser import JUnitXml
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelshield.core.policy import Policy
from modelshield.gate.ci import configured_pillars, run_ci
from modelshield.report import OutputFormat, render
from tests.cli.conftest import run_cli
from tests.report.junit_schema import validate_junit


@pytest.fixture
def assessed(tmp_path: Path) -> Path:
    """A project with a scikit-learn model, held-out data, a manifest and a policy for both."""
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    (root / "data").mkdir()
    frame = load_breast_cancer(as_frame=True).frame
    train, test = train_test_split(frame, test_size=0.5, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(train.drop(columns="target"), train["target"])
    joblib.dump(model, root / "models" / "model.joblib")
    test.to_csv(root / "data" / "holdout.csv", index=False)
    (root / "models" / "notes.pkl").write_bytes(pickle.dumps({"version": 1}, protocol=4))
    made = run_cli("manifest", "create", "models", cwd=root)
    assert made.code == 0, made.stderr
    (root / "modelshield.toml").write_text(
        'models = ["models/"]\n'
        "[manifest]\n"
        'path = "models"\n'
        "[assess]\n"
        'model = "models/model.joblib"\n'
        'data = "data/holdout.csv"\n'
        'target = "target"\n'
        'skip = ["slices", "fairness", "consistency", "robustness", "evasion", "membership",'
        ' "extraction", "backdoor", "calibration"]\n'
        "min_metric = {accuracy = 0.99}\n"
    )
    return root


def test_the_manifest_and_the_assessment_run_in_the_same_report(
    assessed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (assessed / "models" / "notes.pkl").write_bytes(pickle.dumps({"version": 2}, protocol=4))
    policy = Policy.from_file(assessed / "modelshield.toml")
    assert configured_pillars(policy) == ("scan", "audit", "manifest", "assess")
    monkeypatch.chdir(tmp_path)
    outcome = run_ci(assessed, policy, source=None)  # no vulnerability source: no audit
    report = outcome.report
    assert outcome.pillars == ("scan", "manifest", "assess")
    by_pillar = {(r.pillar, r.path) for r in report.results}
    assert ("manifest", "models/notes.pkl") in by_pillar
    assert ("scan", "models/model.joblib") in by_pillar
    # The assessment's own scan of the model file is not repeated: the scan pillar has it.
    assert [r.path for r in report.results if r.pillar == "assess"] == ["models/model.joblib"]
    rules = {f.rule_id for f in report.findings}
    assert "MANIFEST-FILE-MODIFIED" in rules
    assert "ASSESS-METRIC-BELOW-MINIMUM" in rules or any(r.startswith("ASSESS-") for r in rules)
    assert report.assessment is not None and report.assessment.model == "models/model.joblib"
    assert report.assessment.data == "data/holdout.csv"
    junit = render(report, OutputFormat.JUNIT, policy=policy)
    validate_junit(junit)
    suites = [s.name for s in JUnitXml.fromstring(junit)]
    assert suites == ["modelshield scan", "modelshield manifest", "assess models/model.joblib"]
    page = render(report, OutputFormat.HTML, policy=policy)
    assert "Integrity manifest: 1 finding" in page and "<svg" in page


def test_a_pillar_that_cannot_run_is_its_own_error(
    assessed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (assessed / "data" / "holdout.csv").unlink()
    policy = Policy.from_file(assessed / "modelshield.toml")
    monkeypatch.chdir(tmp_path)
    report = run_ci(assessed, policy, source=None, skip=["manifest"]).report
    (failed,) = [r for r in report.results if r.pillar == "assess"]
    assert failed.status == "error"
    assert "assess could not run" in failed.errors[0].message
    assert any(r.pillar == "scan" and r.status == "complete" for r in report.results)
    assert policy.exit_code(report) == 2


def test_ci_from_the_command_line_with_an_offline_database(assessed: Path, tmp_path: Path) -> None:
    osv = tmp_path / "osv"
    osv.mkdir()
    (osv / "PYSEC-1.json").write_text(
        json.dumps(
            {
                "id": "PYSEC-1",
                "modified": "2026-01-01T00:00:00Z",
                "affected": [
                    {
                        "package": {"name": "scikit-learn", "ecosystem": "PyPI"},
                        "ranges": [
                            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.1"}]}
                        ],
                    }
                ],
            }
        )
    )
    run = run_cli(
        "ci",
        str(assessed),
        "--db",
        str(osv),
        "--skip",
        "assess",
        "--json",
        "ci.json",
        cwd=tmp_path,
        env={"MODELSHIELD_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert run.code == 0, run.stdout + run.stderr
    document = json.loads((tmp_path / "ci.json").read_text())
    assert {r["pillar"] for r in document["results"]} == {"scan", "audit", "manifest"}
    implied = [
        f
        for r in document["results"]
        for f in r["findings"]
        if f["rule_id"] == "AUDIT-MODEL-IMPLIED-DEPENDENCY"
    ]
    assert implied and implied[0]["location"]["path"] == "models/model.joblib"
