"""The demo's model files: real models stay clean, every hostile file is caught.

``make demo`` shows this; the test keeps the demo honest. The files are built by
``scripts/build_demo_models.py`` with the real libraries (torch, scikit-learn, joblib, numpy)
and byte by byte for the hostile ones; nothing is ever loaded.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.cli.conftest import run_cli

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_demo_models.py"
BLOCKING = ("high", "critical")


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_demo_models", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, object]]]:
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    out = tmp_path_factory.mktemp("demo") / "models"
    builder = load_builder()
    assert builder.main([str(out)]) == 0
    run = run_cli("scan", "--format", "json", str(out), cwd=out.parent)
    document = json.loads(run.stdout)
    results = {Path(r["path"]).name: r for r in document["results"]}
    return out, results


def test_every_file_is_reported(demo: tuple[Path, dict[str, dict[str, object]]]) -> None:
    out, results = demo
    assert sorted(results) == sorted(p.name for p in out.iterdir())
    assert len(results) >= 13


def test_hostile_files_are_flagged_high_or_critical(
    demo: tuple[Path, dict[str, dict[str, object]]],
) -> None:
    builder = load_builder()
    _, results = demo
    for name in builder.HOSTILE:
        assert results[name]["max_severity"] in BLOCKING, (name, results[name]["findings"])


def test_real_models_pass_the_default_policy(
    demo: tuple[Path, dict[str, dict[str, object]]],
) -> None:
    builder = load_builder()
    _, results = demo
    benign = {n: r for n, r in results.items() if n not in builder.HOSTILE}
    assert len(benign) == 8
    for name, result in benign.items():
        assert result["findings"] == [], (name, result["findings"])
        assert result["errors"] == [], (name, result["errors"])
