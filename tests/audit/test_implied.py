"""Model-implied dependencies, from scan results built by hand and from real model files."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import sklearn
import sklearn.base
from sklearn.linear_model import LogisticRegression

from modelshield.audit import audit_paths
from modelshield.audit.inputs.implied import (
    implied_dependencies,
    keras_metadata,
    onnx_producer,
    parsed_model,
)
from modelshield.audit.sources.osv_db import OfflineDatabase
from modelshield.core.findings import FileResult
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.scanner.engine import scan_file

from .conftest import WriteDb, osv_record


def test_imports_map_to_distributions_and_stdlib_is_skipped() -> None:
    result = FileResult(
        path="model.pkl",
        format="pickle",
        imports=(
            "builtins:getattr",
            "collections:OrderedDict",
            "mypkg.layers:Dense",
            "numpy.core.multiarray:_reconstruct",
            "os:system",
            "sklearn.ensemble._forest:RandomForestClassifier",
            "sklearn.tree._classes:DecisionTreeClassifier",
            "torch._utils:_rebuild_tensor_v2",
        ),
        metadata={"sklearn_version": "0.23.0", "torch_archive_version": "3"},
    )
    deps, unmapped = implied_dependencies(result)
    by_name = {d.canonical: d for d in deps}
    assert sorted(by_name) == ["numpy", "scikit-learn", "torch"]
    assert unmapped == ["mypkg"]
    sk = by_name["scikit-learn"]
    assert sk.version == "0.23.0" and sk.origin == "model-implied"
    assert sk.evidence["version_source"] == "sklearn_version"
    assert "sklearn.ensemble._forest:RandomForestClassifier" in sk.evidence["callables"]
    # The archive record is a format number, never taken for a torch release.
    assert by_name["torch"].version is None
    assert by_name["torch"].evidence["torch_archive_version"] == "3"
    assert by_name["numpy"].version is None


def test_unmapped_modules_use_the_environment_fallback() -> None:
    result = FileResult(path="m.pkl", format="pickle", imports=("mypkg.layers:Dense",))
    deps, unmapped = implied_dependencies(result, {"mypkg": ["my-package"]})
    assert [d.canonical for d in deps] == ["my-package"] and unmapped == []
    assert parsed_model(result).metadata["unmapped_modules"] == "mypkg"


def test_recorded_versions_without_imports() -> None:
    result = FileResult(
        path="model.onnx",
        format="unknown",
        metadata={"onnx_producer_name": "pytorch", "onnx_producer_version": "1.12.0"},
    )
    (dep,) = implied_dependencies(result)[0]
    assert (dep.canonical, dep.version) == ("torch", "1.12.0")
    assert dep.evidence["version_source"] == "onnx_producer_version"


def test_keras_archive_metadata(tmp_path: Path) -> None:
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.0.1", "date_saved": "x"}))
        zf.writestr("config.json", "{}")
    assert keras_metadata(path, Limits()) == {"keras_version": "3.0.1"}
    assert keras_metadata(tmp_path / "missing.keras", Limits()) == {}


def _field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_onnx_producer_fields(tmp_path: Path) -> None:
    # ModelProto: ir_version (1, varint), producer_name (2), producer_version (3), graph (7).
    data = (
        bytes([0x08, 0x08]) + _field(2, b"pytorch") + _field(3, b"2.1.0") + _field(7, b"\x00" * 20)
    )
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    assert onnx_producer(path) == {
        "onnx_producer_name": "pytorch",
        "onnx_producer_version": "2.1.0",
    }
    path.write_bytes(bytes([0x08, 0xFF]))  # a truncated varint
    assert onnx_producer(path) == {}
    path.write_bytes(struct.pack("<Q", 0xFFFFFFFFFFFFFFFF))
    assert onnx_producer(path) == {}


@pytest.fixture
def sklearn_model(tmp_path: Path) -> Path:
    x = np.random.default_rng(0).random((20, 3))
    model = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    return path


def test_real_sklearn_joblib_file(sklearn_model: Path) -> None:
    result = scan_file(str(sklearn_model), Policy())
    deps, _ = implied_dependencies(result)
    by_name = {d.canonical: d for d in deps}
    if not result.imports:
        pytest.skip("the scanner does not report pickle imports yet")
    assert "scikit-learn" in by_name and "numpy" in by_name
    assert any(
        "LogisticRegression" in c for c in by_name["scikit-learn"].evidence["callables"].split(", ")
    )
    if "sklearn_version" in result.metadata:
        assert by_name["scikit-learn"].version == sklearn.__version__


def test_model_saved_with_a_vulnerable_sklearn_is_flagged(
    tmp_path: Path, snapshot_db: OfflineDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # scikit-learn writes its own version into every estimator's pickled state; patching the
    # string it writes gives a real file that records 0.23.0 (PYSEC-2020-107).
    monkeypatch.setattr(sklearn.base, "__version__", "0.23.0")
    x = np.random.default_rng(0).random((20, 3))
    model = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    joblib.dump(model, model_dir / "model.joblib")
    report = audit_paths([model_dir], source=snapshot_db)
    (result,) = report.results
    if "sklearn_version" not in scan_file(str(model_dir / "model.joblib"), Policy()).metadata:
        pytest.skip("the scanner does not record _sklearn_version yet")
    assert result.format == "model"
    rules = {(f.rule_id, f.evidence.get("package")) for f in result.findings}
    assert ("AUDIT-MODEL-IMPLIED-DEPENDENCY", "scikit-learn") in rules
    vulnerable = [f for f in result.findings if f.rule_id == "AUDIT-VULNERABLE-DEPENDENCY"]
    assert {f.evidence["ids"].split(", ")[0] for f in vulnerable} == {
        "PYSEC-2020-107",
        "PYSEC-2020-108",
    }
    assert all(f.evidence["origin"] == "model-implied" for f in vulnerable)
    # numpy and joblib are needed too, at no recorded version and declared nowhere.
    unknown = {
        f.evidence["package"] for f in result.findings if f.rule_id == "AUDIT-UNKNOWN-VERSION"
    }
    assert {"numpy", "joblib"} <= unknown


@pytest.mark.parametrize(
    ("compressor", "suffix"),
    [("zlib", "z"), ("gzip", "gz"), ("bz2", "bz2"), ("lzma", "lzma"), ("xz", "xz")],
)
def test_compressed_joblib_files_imply_their_dependencies(
    tmp_path: Path, write_db: WriteDb, compressor: str, suffix: str
) -> None:
    """``joblib.dump(..., compress=...)`` files are found under an audited directory (by the
    scanner's extension list, through the compression suffix) and read for the dependencies
    they imply: the scanner inflates the stream and reads the pickle inside."""
    x = np.random.default_rng(0).random((20, 3))
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    name = f"model.joblib.{suffix}"
    joblib.dump(
        LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int)),
        model_dir / name,
        compress=(compressor, 3),
    )
    db = write_db(osv_record("PYSEC-1", "scikit-learn", versions=[sklearn.__version__]))
    report = audit_paths([model_dir], source=OfflineDatabase(db, cache_dir=None))
    (result,) = report.results
    assert result.path.endswith(name) and result.format == "model"
    implied = {
        f.evidence["package"]: f for f in result.findings if "recorded_version" in f.evidence
    }
    assert implied["scikit-learn"].evidence["recorded_version"] == sklearn.__version__
    vulnerable = [f for f in result.findings if f.rule_id == "AUDIT-VULNERABLE-DEPENDENCY"]
    assert [f.evidence["ids"] for f in vulnerable] == ["PYSEC-1"]


def test_a_model_scan_that_left_parts_unanalysed_leaves_the_audit_incomplete(
    sklearn_model: Path, write_db: WriteDb
) -> None:
    """Fail closed: a model whose scan stopped early may import more than it showed, so the
    audit cannot say every dependency is accounted for. The scan's gaps are the audit's, and
    accepting them takes the same [[accept_incomplete]] entries as the scan."""
    from modelshield.core.policy import ExitCode, Suppression

    db = OfflineDatabase(write_db(osv_record("PYSEC-1", "other", versions=["1.0"])), cache_dir=None)
    policy = Policy(limits=Limits(max_file_bytes=64))  # the model is larger: not read at all
    report = policy.apply(audit_paths([sklearn_model], source=db, policy=policy))
    (result,) = report.results
    assert result.status == "incomplete"
    assert [g.rule_id for g in result.gaps] == ["SCAN-FILE-TOO-LARGE"]
    assert result.gaps[0].message.startswith("model scan: ")
    assert policy.exit_code(report) is ExitCode.ERROR
    accepting = Policy(
        limits=policy.limits, accept_incomplete=(Suppression("SCAN-FILE-TOO-LARGE", ()),)
    )
    accepted = accepting.apply(audit_paths([sklearn_model], source=db, policy=accepting))
    assert accepting.exit_code(accepted) is ExitCode.OK
    assert accepted.results[0].gaps[0].accepted
