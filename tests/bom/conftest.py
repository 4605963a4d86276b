"""Fixtures for the BOM tests: a real scikit-learn model beside a requirements file, and the
offline advisory snapshot compiled once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REQUIREMENTS = "joblib==1.1.0\nwerkzeug==3.0.0\nnumpy>=1.0\n"
"""joblib 1.1.0 is affected by PYSEC-2022-288 (CVE-2022-21797, fixed in 1.2.0, no CVSS in the
record); werkzeug 3.0.0 by PYSEC-2023-221 (CVSS:3.1 ... A:H); numpy is a range."""


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads or writes the user's cache; an OSV API used by mistake is a closed port."""
    monkeypatch.setenv("MODELSHIELD_CACHE_DIR", str(tmp_path_factory.mktemp("user-cache")))
    monkeypatch.setenv("MODELSHIELD_OSV_URL", "http://127.0.0.1:9")


@pytest.fixture(scope="session")
def bom_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache directory per session, so that the advisory snapshot is compiled once."""
    return tmp_path_factory.mktemp("bom-cache")


@pytest.fixture(scope="session")
def advisory_db(advisories_dir: Path) -> Path:
    """The PyPA advisory snapshot, as ``--db`` takes it."""
    return advisories_dir / "pypa"


@pytest.fixture(scope="session")
def sklearn_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``iris-model/``: a LogisticRegression fitted on iris, saved with joblib.dump, and a
    requirements.txt (:data:`REQUIREMENTS`)."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("models") / "iris-model"
    root.mkdir()
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), root / "model.joblib")
    (root / "requirements.txt").write_text(REQUIREMENTS)
    return root


def modelshield(
    *args: str | Path, cache: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m modelshield ARGS`` as a user would, with its own cache directory."""
    environ = {
        **os.environ,
        "MODELSHIELD_CACHE_DIR": str(cache),
        "NO_COLOR": "1",
        # Where an OSV API used by mistake would be: a closed port, never the internet.
        "MODELSHIELD_OSV_URL": "http://127.0.0.1:9",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "modelshield", *map(str, args)],
        capture_output=True,
        text=True,
        env=environ,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
