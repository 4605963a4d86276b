"""`modelshield init`: a commented starter policy naming what the project holds, valid as
written, never written over an existing policy."""

from __future__ import annotations

import pickle
import tomllib
from pathlib import Path

import pytest

from modelshield.core.policy import Policy
from modelshield.gate.init import starter_policy, survey
from tests.cli.conftest import run_cli


def make(root: Path, names: dict[str, bytes]) -> None:
    for name, data in names.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


PICKLE = pickle.dumps([1, 2], protocol=4)


def test_init_names_what_the_project_holds(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "models/clf.joblib": PICKLE,
            "models/sub/enc.pkl": PICKLE,
            "weights.pt": PICKLE,
            "mlruns/0/abc/artifacts/model/MLmodel": b"flavors: {}\n",
            "requirements.txt": b"numpy==2.0\n",
            "uv.lock": b"version = 1\n",
            "data/holdout.csv": b"a,b\n1,2\n",
            ".venv/lib/x.pkl": PICKLE,
            "models/modelshield.manifest.json": b"{}",
            ".gitignore": b"",
        },
    )
    run = run_cli("init", cwd=tmp_path)
    assert run.code == 0, run.stderr
    text = (tmp_path / "modelshield.toml").read_text()
    policy = Policy.from_mapping(tomllib.loads(text))
    assert policy.models == ("mlruns/", "models/", "weights.pt")
    assert policy.manifest.path == "models"
    assert policy.manifest.file == "models/modelshield.manifest.json"
    assert "requirements.txt, uv.lock" in text
    assert '# model = "models/clf.joblib"' in text and '# data = "data/holdout.csv"' in text
    assert ".venv" not in text  # a virtual environment is not the project's
    assert "models: mlruns/, models/, weights.pt" in run.stdout
    # Settings not in use are shown commented out, with what they do.
    for example in ("# [[suppress]]", "# [[audit.ignore]]", "# expires = ", "# baseline = "):
        assert example in text


def test_an_empty_project_gets_a_policy_that_scans_everything(tmp_path: Path) -> None:
    text = starter_policy(survey(str(tmp_path)))
    policy = Policy.from_mapping(tomllib.loads(text))
    assert policy.models == () and policy.manifest.path is None
    assert "# models = [" in text


@pytest.mark.parametrize(
    ("existing", "content"),
    [
        ("modelshield.toml", "fail_on = 'high'\n"),
        ("pyproject.toml", "[tool.modelshield]\nfail_on = 'high'\n"),
    ],
)
def test_init_never_writes_over_a_policy(tmp_path: Path, existing: str, content: str) -> None:
    (tmp_path / existing).write_text(content)
    run = run_cli("init", str(tmp_path), cwd=tmp_path.parent)
    assert run.code == 2
    assert "modelshield.toml" in run.stderr or "[tool.modelshield]" in run.stderr
    assert (tmp_path / existing).read_text() == content
    if existing == "pyproject.toml":
        assert not (tmp_path / "modelshield.toml").exists()
    printed = run_cli("init", "--print", cwd=tmp_path)
    assert printed.code == 0 and printed.stdout.startswith("# modelshield policy")
