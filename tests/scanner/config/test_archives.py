"""NeMo .nemo archives and MLflow model folders: configs reached through containers and folders."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import torch
import yaml

from modelshield.core.findings import Severity
from modelshield.scanner.engine import scan_paths
from tests.scanner.formats.conftest import EVIL_PICKLE, of, rules, scan

_NEMO_CONFIG = {
    "target": "nemo.collections.asr.models.ctc_bpe_models.EncDecCTCModelBPE",
    "nemo_version": "2.0.0",
    "preprocessor": {
        "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
        "sample_rate": 16000,
    },
    "encoder": {"_target_": "nemo.collections.asr.modules.ConformerEncoder", "d_model": 176},
    "decoder": {"_target_": "nemo.collections.asr.modules.ConvASRDecoder", "num_classes": 128},
    "optim": {"name": "adamw", "lr": 0.001, "sched": {"name": "CosineAnnealing"}},
}


def _nemo(path: Path, members: dict[str, bytes], *, gzip: bool = True) -> Path:
    with tarfile.open(path, "w:gz" if gzip else "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _weights() -> bytes:
    buffer = io.BytesIO()
    torch.save({"encoder.weight": torch.zeros(2, 2)}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("gzip", [True, False])
def test_a_nemo_archive_of_published_shape_is_clean(tmp_path: Path, gzip: bool) -> None:
    config = yaml.safe_dump(_NEMO_CONFIG).encode()
    path = _nemo(
        tmp_path / "model.nemo",
        {"./model_config.yaml": config, "./model_weights.ckpt": _weights()},
        gzip=gzip,
    )
    result = scan(path)
    assert "nemo" in result.formats_seen and "yaml" in result.formats_seen
    assert result.findings == () and result.gaps == ()


def test_a_nemo_config_that_runs_code(tmp_path: Path) -> None:
    """CVE-2025-23304: a _target_ in model_config.yaml runs when NeMo restores the model."""
    config = dict(_NEMO_CONFIG)
    config["encoder"] = {"_target_": "builtins.exec", "_args_": ["__import__('os').system('id')"]}
    path = _nemo(tmp_path / "evil.nemo", {"./model_config.yaml": yaml.safe_dump(config).encode()})
    found = of(scan(path), "CONFIG-TARGET")
    assert [(f.evidence["callable"], f.severity) for f in found] == [
        ("builtins.exec", Severity.CRITICAL)
    ]
    assert found[0].location.members[-1] == "./model_config.yaml"


def test_a_nemo_checkpoint_is_analysed_as_a_pickle(tmp_path: Path) -> None:
    path = _nemo(
        tmp_path / "evil.nemo",
        {
            "./model_config.yaml": yaml.safe_dump(_NEMO_CONFIG).encode(),
            "./model_weights.ckpt": EVIL_PICKLE,
        },
    )
    found = [f for f in scan(path).findings if f.rule_id.startswith("PICKLE-")]
    assert found and max(f.severity for f in found) is Severity.CRITICAL
    assert found[0].location.members[-1] == "./model_weights.ckpt"


def test_a_nemo_member_that_escapes_the_folder(tmp_path: Path) -> None:
    """CVE-2025-23360: NeMo extracted .nemo members without checking their names."""
    config = yaml.safe_dump(_NEMO_CONFIG).encode()
    path = _nemo(tmp_path / "evil.nemo", {"./model_config.yaml": config, "../../x.py": b"1\n"})
    assert "ARCHIVE-PATH-TRAVERSAL" in rules(scan(path))


# ---- MLflow (the layout mlflow.sklearn.save_model writes) ------------------------------------

_MLMODEL = """artifact_path: model
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.pkl
    predict_fn: predict
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.pkl
    serialization_format: cloudpickle
    sklearn_version: 1.5.0
mlflow_version: 2.14.1
model_size_bytes: 839
model_uuid: 4c3c6b3f8e1f4d0c9d2c9b7c1e2a5f6d
run_id: 5e2b2f8a7d1c4c3f9f4b2a1d0e9c8b7a
utc_time_created: '2024-06-20 10:11:12.123456'
"""
_CONDA = """channels:
- conda-forge
dependencies:
- python=3.11.7
- pip<=24.0
- pip:
  - mlflow==2.14.1
  - cloudpickle==3.0.0
  - scikit-learn==1.5.0
name: mlflow-env
"""
_PYTHON_ENV = """python: 3.11.7
build_dependencies:
- pip==24.0
- setuptools==69.5.1
- wheel==0.43.0
dependencies:
- -r requirements.txt
"""


def test_an_mlflow_sklearn_model_folder_is_clean(tmp_path: Path) -> None:
    import pickle

    from sklearn.linear_model import LogisticRegression

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text(_MLMODEL)
    (folder / "conda.yaml").write_text(_CONDA)
    (folder / "python_env.yaml").write_text(_PYTHON_ENV)
    (folder / "requirements.txt").write_text("mlflow==2.14.1\nscikit-learn==1.5.0\n")
    (folder / "model.pkl").write_bytes(pickle.dumps(LogisticRegression()))
    report = scan_paths([folder])
    formats = {Path(r.path).name: r.format for r in report.results}
    assert formats["MLmodel"] == "yaml" and formats["conda.yaml"] == "yaml"
    for result in report.results:
        assert result.errors == ()
        worst = result.max_severity
        assert worst is None or worst < Severity.HIGH, (result.path, result.findings)


def test_findings_in_a_nemo_archive_name_the_nemo_cve(tmp_path: Path) -> None:
    config = {"encoder": {"_target_": "os.system"}, "tokenizer": {"dir": "tok"}}
    path = _nemo(tmp_path / "evil.nemo", {"./model_config.yaml": yaml.safe_dump(config).encode()})
    assert of(scan(path), "CONFIG-TARGET")[0].evidence["cve"] == "CVE-2025-23304"
