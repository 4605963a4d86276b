"""The ML bill of materials: real models, validated against the CycloneDX 1.6 JSON schema."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from modelshield.bom.cyclonedx import (
    BomDependency,
    BomVulnerability,
    bom_json,
    build_bom,
    create_bom,
    frameworks_of,
    validate_bom_json,
)
from modelshield.cli import main
from modelshield.core.errors import MissingExtraError
from modelshield.core.findings import FileResult, Finding, Location, Severity
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.scanner.engine import scan_file


def _validator_missing() -> str | None:
    from cyclonedx.exception import MissingOptionalDependencyException

    try:
        validate_bom_json("{}")
    except MissingOptionalDependencyException as e:
        return str(e)
    return None


_MISSING = _validator_missing()
pytestmark = pytest.mark.skipif(
    _MISSING is not None,
    reason="schema validation needs pip install 'cyclonedx-python-lib[json-validation]': "
    f"{_MISSING}",
)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "tiny-model"
    root.mkdir()
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(4, 2).state_dict(), root / "model.pt")
    np.save(root / "embeddings.npy", np.arange(64, dtype=np.float32))
    (root / "config.json").write_text(json.dumps({"hidden_size": 4}))
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def properties(component: dict[str, Any], name: str) -> list[str]:
    return [p["value"] for p in component.get("properties", []) if p["name"] == name]


def test_directory_bom_is_valid_and_complete(model_dir: Path) -> None:
    outcome = create_bom(model_dir)
    text = bom_json(outcome.bom)
    assert validate_bom_json(text) is None
    doc = json.loads(text)
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.6")

    model = doc["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert model["name"] == "tiny-model"
    files = {c["name"]: c for c in model["components"]}
    assert set(files) == {"model.pt", "embeddings.npy", "config.json"}
    for name, component in files.items():
        assert component["type"] == "file"
        assert component["hashes"] == [{"alg": "SHA-256", "content": sha256(model_dir / name)}]
        assert properties(component, "modelshield:format")
        assert properties(component, "modelshield:size") == [str((model_dir / name).stat().st_size)]
    assert "pytorch" in properties(model, "modelshield:framework")

    # The checkpoint's pickle imports torch, and nothing records torch's version (the archive
    # version is a format number): the component has no version.
    (torch_lib,) = doc["components"]
    assert (torch_lib["name"], torch_lib["purl"]) == ("torch", "pkg:pypi/torch")
    assert "version" not in torch_lib
    assert properties(torch_lib, "modelshield:origin") == ["model-implied"]
    (edges,) = [d for d in doc["dependencies"] if d["ref"] == model["bom-ref"]]
    assert edges["dependsOn"] == ["pkg:pypi/torch"]
    assert "vulnerabilities" not in doc
    assert properties(doc["metadata"], "modelshield:vulnerabilities") == ["not-checked"]
    assert outcome.errors == ()


def test_single_file_bom_carries_the_files_real_sha256(model_dir: Path) -> None:
    model = model_dir / "model.pt"
    outcome = create_bom(model)
    text = bom_json(outcome.bom)
    assert validate_bom_json(text) is None
    component = json.loads(text)["metadata"]["component"]
    assert component["type"] == "machine-learning-model"
    assert component["name"] == "model.pt"
    assert component["hashes"] == [{"alg": "SHA-256", "content": sha256(model)}]
    assert "components" not in component


def test_scan_findings_become_properties(model_dir: Path) -> None:
    # A real finding from the real scan engine: the file is above the policy's size limit.
    model = model_dir / "model.pt"
    result = scan_file(str(model), Policy(limits=Limits(max_file_bytes=10)))
    assert [f.rule_id for f in result.findings] == ["SCAN-FILE-TOO-LARGE"]
    bom = build_bom(
        "model.pt", [("model.pt", result)], {"model.pt": sha256(model)}, single_file=True
    )
    text = bom_json(bom)
    assert validate_bom_json(text) is None
    component = json.loads(text)["metadata"]["component"]
    (finding,) = properties(component, "modelshield:finding")
    assert finding.startswith("SCAN-FILE-TOO-LARGE medium:")
    assert properties(component, "modelshield:max_severity") == ["medium"]


def test_findings_without_a_listed_package_are_model_properties() -> None:
    other = Finding(
        "AUDIT-ADVISORY-DATA",
        Severity.LOW,
        "Advisory data could not be fully read",
        "Check it.",
        Location("requirements.txt"),
    )
    bom = build_bom("m", [], {}, single_file=False, findings=[other])
    doc = json.loads(bom_json(bom))
    assert validate_bom_json(bom_json(bom)) is None
    assert "vulnerabilities" not in doc
    assert properties(doc["metadata"]["component"], "modelshield:finding") == [
        "AUDIT-ADVISORY-DATA low: Advisory data could not be fully read @ requirements.txt"
    ]


def test_framework_comes_from_format_and_imports() -> None:
    result = FileResult(
        path="model.pkl",
        format="pickle",
        formats_seen=("pickle",),
        imports=(
            "collections:OrderedDict",
            "sklearn.linear_model._base:LinearRegression",
            "numpy.core.multiarray:_reconstruct",
        ),
        metadata={"sklearn_version": "1.5.2"},
    )
    assert frameworks_of(result) == ["scikit-learn", "numpy"]
    legacy = FileResult(path="m.pt", format="pytorch-legacy")
    assert frameworks_of(legacy) == ["pytorch"]
    bom = build_bom(
        "model.pkl",
        [("model.pkl", result)],
        {"model.pkl": "ab" * 32},
        single_file=True,
        dependencies=[BomDependency("scikit-learn", "1.5.2", origin="model-implied")],
    )
    text = bom_json(bom)
    assert validate_bom_json(text) is None
    doc = json.loads(text)
    component = doc["metadata"]["component"]
    assert sorted(properties(component, "modelshield:framework")) == ["numpy", "scikit-learn"]
    assert properties(component, "modelshield:metadata:sklearn_version") == ["1.5.2"]
    assert len(properties(component, "modelshield:import")) == 3
    assert [c["purl"] for c in doc["components"]] == ["pkg:pypi/scikit-learn@1.5.2"]


def test_a_vulnerability_of_an_unlisted_package_adds_the_package() -> None:
    vuln = BomVulnerability(
        "PYSEC-2024-1", package="joblib", version="1.2.0", severity=Severity.HIGH, summary="bad"
    )
    bom = build_bom("m", [], {}, single_file=False, vulnerabilities=[vuln])
    doc = json.loads(bom_json(bom))
    assert validate_bom_json(bom_json(bom)) is None
    assert [c["purl"] for c in doc["components"]] == ["pkg:pypi/joblib@1.2.0"]
    assert doc["vulnerabilities"][0]["affects"] == [
        {"ref": "pkg:pypi/joblib@1.2.0", "versions": [{"version": "1.2.0", "status": "affected"}]}
    ]


def test_the_validator_rejects_a_broken_bom(model_dir: Path) -> None:
    doc = json.loads(bom_json(create_bom(model_dir / "config.json").bom))
    doc["metadata"]["component"]["type"] = "not-a-component-type"
    assert validate_bom_json(json.dumps(doc)) is not None


def test_the_cli_writes_a_valid_bom(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "bom.json"
    assert main(["bom", str(model_dir), "-o", str(out)]) == 0
    assert validate_bom_json(out.read_text()) is None
    assert json.loads(out.read_text())["metadata"]["component"]["type"] == "machine-learning-model"


def test_the_cli_exits_2_when_the_model_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bom", str(tmp_path / "missing.pt")]) == 2
    out, err = capsys.readouterr()
    assert validate_bom_json(out) is None
    assert "missing.pt" in err


def test_without_cyclonedx_a_missing_extra_error_names_the_extra(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "cyclonedx.model.bom", None)
    with pytest.raises(MissingExtraError) as info:
        create_bom(model_dir)
    assert (info.value.extra, info.value.package) == ("bom", "cyclonedx-python-lib")
