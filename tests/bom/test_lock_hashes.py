"""A BOM built from lock files carries the digests they record (issue 13, item 5), and
CVSS scores reach the BOM typed, never parsed back from text (issue 13, layout)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelshield.audit.records import CvssScore
from modelshield.bom.cyclonedx import bom_json, build_bom, create_bom
from modelshield.bom.dependencies import BomDependency, BomVulnerability
from modelshield.core.findings import FileResult, Severity

strict = pytest.importorskip("cyclonedx.validation.json")

WHEEL = "numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
WHEEL_SHA = "666dbfb6ec68962c033a450943ded891bed2d54e6755e35e5835d63f4f6931d5"
SDIST_SHA = "2a02aba9ed12e4ac4eb3ea9421c420301a0c6460d9830d74a9df87efa4912010"
JOBLIB_SHA = "2382c5816b2636fbd20a09e0f4e9dad4736765fdfb7dca582943b9c1366b3f0e"


def validated(text: str) -> dict[str, Any]:
    from cyclonedx.schema import SchemaVersion

    error = strict.JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)
    doc: dict[str, Any] = json.loads(text)
    return doc


def component(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in doc["components"] if c["name"] == name]
    return found


def model_dir(tmp_path: Path, name: str, text: str) -> Path:
    root = tmp_path / "model"
    root.mkdir()
    np.save(root / "weights.npy", np.zeros(2, dtype=np.float32))
    (root / name).write_text(text)
    return root


def test_uv_lock_wheel_and_sdist_digests_are_distribution_references(tmp_path: Path) -> None:
    root = model_dir(
        tmp_path,
        "uv.lock",
        'version = 1\n\n[[package]]\nname = "numpy"\nversion = "1.26.4"\n'
        'source = { registry = "https://pypi.org/simple" }\n'
        f'sdist = {{ url = "https://files.pythonhosted.org/numpy-1.26.4.tar.gz", '
        f'hash = "sha256:{SDIST_SHA}", size = 15786129 }}\n'
        f'wheels = [\n    {{ url = "https://files.pythonhosted.org/{WHEEL}", '
        f'hash = "sha256:{WHEEL_SHA}", size = 18182900 }},\n]\n',
    )
    doc = validated(bom_json(create_bom(root).bom))
    numpy = component(doc, "numpy")
    refs = {r["url"].rsplit("/", 1)[-1]: r for r in numpy["externalReferences"]}
    assert {r["type"] for r in refs.values()} == {"distribution"}
    assert refs[WHEEL]["hashes"] == [{"alg": "SHA-256", "content": WHEEL_SHA}]
    assert refs["numpy-1.26.4.tar.gz"]["hashes"] == [{"alg": "SHA-256", "content": SDIST_SHA}]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "poetry.lock",
            '[[package]]\nname = "joblib"\nversion = "1.2.0"\nfiles = [\n'
            f'    {{file = "joblib-1.2.0-py3-none-any.whl", hash = "sha256:{JOBLIB_SHA}"}},\n]\n\n'
            '[metadata]\nlock-version = "2.0"\n',
            f"joblib-1.2.0-py3-none-any.whl sha256:{JOBLIB_SHA}",
        ),
        (
            "Pipfile.lock",
            json.dumps(
                {
                    "_meta": {"hash": {"sha256": "x"}},
                    "default": {
                        "joblib": {"version": "==1.2.0", "hashes": [f"sha256:{JOBLIB_SHA}"]}
                    },
                }
            ),
            f"- sha256:{JOBLIB_SHA}",
        ),
        (
            "requirements.txt",
            f"joblib==1.2.0 \\\n    --hash=sha256:{JOBLIB_SHA}\n",
            f"- sha256:{JOBLIB_SHA}",
        ),
    ],
)
def test_recorded_digests_are_component_properties(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    doc = validated(bom_json(create_bom(model_dir(tmp_path, name, text)).bom))
    joblib = component(doc, "joblib")
    digests = [p["value"] for p in joblib["properties"] if p["name"] == "modelshield:artifact_hash"]
    assert digests == [expected]


def test_a_cvss_rating_comes_from_the_typed_score() -> None:
    """The score travels as a CvssScore: no text to parse, whatever the description says."""
    score = CvssScore("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, Severity.HIGH)
    vuln = BomVulnerability(
        id="PYSEC-1",
        package="werkzeug",
        version="3.0.0",
        severity=Severity.HIGH,
        severity_source="reviewed by the security team (see the ticket)",
        cvss=score,
    )
    bom = build_bom(
        "m",
        [("m.npy", FileResult(path="m.npy", format="numpy"))],
        {},
        single_file=True,
        dependencies=[BomDependency("werkzeug", "3.0.0")],
        vulnerabilities=[vuln],
    )
    (entry,) = validated(bom_json(bom))["vulnerabilities"]
    (rating,) = entry["ratings"]
    assert (rating["score"], rating["method"], rating["severity"]) == (7.5, "CVSSv31", "high")


def test_a_dependency_file_read_only_in_part_fails_the_bom(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelshield.cli import main

    root = model_dir(tmp_path, "requirements.txt", "".join(f"p{i}==1.0\n" for i in range(50)))
    (tmp_path / "modelshield.toml").write_text("[limits]\nmax_input_entries = 10\n")
    policy = str(tmp_path / "modelshield.toml")
    assert main(["bom", "--policy", policy, "-o", str(tmp_path / "bom.json"), str(root)]) == 2
    assert "limits.max_input_entries" in capsys.readouterr().err
    doc = validated((tmp_path / "bom.json").read_text())  # written, with what was read
    assert len(doc["components"]) == 10
