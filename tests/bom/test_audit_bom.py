"""The BOM lists what ``modelshield audit`` finds, and, with a source, its vulnerabilities.

Built from a real scikit-learn model (joblib.dump of a LogisticRegression fitted on iris) and a
requirements file pinning versions with real advisories in the offline PyPA snapshot; every BOM
is validated against the CycloneDX 1.6 JSON schema with cyclonedx-python-lib's strict
validator.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn

from modelshield.audit import OfflineDatabase, audit
from modelshield.audit.discover import collect_inputs
from modelshield.audit.inputs._common import ParseOptions
from modelshield.bom.cyclonedx import bom_json, create_bom
from modelshield.cli import main
from modelshield.core.policy import Policy
from tests.audit.osv_server import serve

from .conftest import modelshield

strict = pytest.importorskip("cyclonedx.validation.json")


def assert_valid(text: str) -> dict[str, Any]:
    """Validate against CycloneDX 1.6 with the library's strict JSON validator; the document."""
    from cyclonedx.schema import SchemaVersion

    error = strict.JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)
    doc: dict[str, Any] = json.loads(text)
    assert (doc["bomFormat"], doc["specVersion"]) == ("CycloneDX", "1.6")
    return doc


def props(node: dict[str, Any], name: str) -> list[str]:
    return [p["value"] for p in node.get("properties", []) if p["name"] == name]


def component(doc: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in doc.get("components", []) if c["name"] == name]
    return found


def vulnerability(doc: dict[str, Any], ident: str) -> dict[str, Any]:
    (found,) = [v for v in doc.get("vulnerabilities", []) if v["id"] == ident]
    return found


@pytest.fixture(scope="module")
def cli_bom(
    sklearn_model: Path,
    advisory_db: Path,
    bom_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """``modelshield bom iris-model --db SNAPSHOT -o bom.json``, validated."""
    out = tmp_path_factory.mktemp("out") / "bom.json"
    proc = modelshield("bom", sklearn_model, "--db", advisory_db, "-o", out, cache=bom_cache)
    assert proc.returncode == 0, proc.stderr
    return assert_valid(out.read_text())


def test_the_model_is_an_ml_component_with_its_files_hashes(
    cli_bom: dict[str, Any], sklearn_model: Path
) -> None:
    model = cli_bom["metadata"]["component"]
    assert (model["type"], model["name"]) == ("machine-learning-model", "iris-model")
    files = {c["name"]: c for c in model["components"]}
    digest = hashlib.sha256((sklearn_model / "model.joblib").read_bytes()).hexdigest()
    assert files["model.joblib"]["hashes"] == [{"alg": "SHA-256", "content": digest}]
    assert props(files["model.joblib"], "modelshield:format") == ["pickle"]
    assert "scikit-learn" in props(model, "modelshield:framework")
    assert props(model, "modelshield:dependency_input") == [
        "model.joblib (model)",
        "requirements.txt (requirements)",
    ]


def test_scikit_learn_is_listed_at_the_version_the_pickle_recorded(
    cli_bom: dict[str, Any],
) -> None:
    version = sklearn.__version__  # what joblib.dump recorded as _sklearn_version
    lib = component(cli_bom, "scikit-learn")
    assert (lib["type"], lib["version"]) == ("library", version)
    assert lib["purl"] == lib["bom-ref"] == f"pkg:pypi/scikit-learn@{version}"
    assert props(lib, "modelshield:origin") == ["model-implied"]
    (evidence,) = props(lib, "modelshield:evidence")
    assert evidence.startswith(f"model.joblib model-implied scikit-learn=={version}")
    assert "version_source: sklearn_version" in evidence
    assert "sklearn.linear_model._logistic:LogisticRegression" in evidence
    assert [o["location"] for o in lib["evidence"]["occurrences"]] == ["model.joblib"]
    model = cli_bom["metadata"]["component"]
    assert props(model, "modelshield:recorded_version") == [
        f"scikit-learn=={version} (sklearn_version in model.joblib)"
    ]
    (edges,) = [d for d in cli_bom["dependencies"] if d["ref"] == "model"]
    assert lib["bom-ref"] in edges["dependsOn"]


def test_the_pinned_requirement_is_listed_with_where_it_was_declared(
    cli_bom: dict[str, Any],
) -> None:
    joblib = component(cli_bom, "joblib")
    assert joblib["version"] == "1.1.0"
    assert joblib["purl"] == "pkg:pypi/joblib@1.1.0"
    # One component: the pin, and the model's own import of joblib (which records no version).
    occurrences = joblib["evidence"]["occurrences"]
    assert {(o["location"], o.get("line")) for o in occurrences} == {
        ("requirements.txt", 1),
        ("model.joblib", None),
    }
    assert sorted(props(joblib, "modelshield:origin")) == ["declared", "model-implied"]
    assert "requirements.txt:1 declared joblib==1.1.0" in props(joblib, "modelshield:evidence")
    # A range has no version: the component says so, with the audit's finding about it.
    numpy = component(cli_bom, "numpy")
    assert "version" not in numpy
    assert numpy["purl"] == "pkg:pypi/numpy"
    assert props(numpy, "modelshield:specifier") == [">=1.0"]
    (finding,) = props(numpy, "modelshield:finding")
    assert finding.startswith("AUDIT-UNPINNED-MAY-RESOLVE-VULNERABLE medium:")
    assert "@ requirements.txt" in finding


def test_the_advisory_is_a_vulnerability_of_the_pinned_component(
    cli_bom: dict[str, Any],
) -> None:
    vuln = vulnerability(cli_bom, "PYSEC-2022-288")
    assert vuln["source"]["name"] == "OSV"
    assert [r["id"] for r in vuln["references"]] == ["CVE-2022-21797"]
    assert vuln["affects"] == [
        {"ref": "pkg:pypi/joblib@1.1.0", "versions": [{"version": "1.1.0", "status": "affected"}]}
    ]
    # The record has no CVSS: the audit reports HIGH and the rating says why.
    (rating,) = vuln["ratings"]
    assert (rating["severity"], rating["method"]) == ("high", "other")
    assert "none in the advisory" in rating["justification"]
    assert "1.2.0" in vuln["recommendation"]
    assert props(vuln, "modelshield:declared_in") == ["requirements.txt:1"]
    assert props(cli_bom["metadata"], "modelshield:vulnerabilities") == ["checked"]
    (source,) = props(cli_bom["metadata"], "modelshield:vulnerability_source")
    assert source.startswith("OSV database")


def test_a_cvss_severity_becomes_a_scored_rating(cli_bom: dict[str, Any]) -> None:
    vuln = vulnerability(cli_bom, "PYSEC-2023-221")
    assert vuln["affects"][0]["ref"] == "pkg:pypi/werkzeug@3.0.0"
    assert {r["id"] for r in vuln["references"]} >= {"CVE-2023-46136"}
    (rating,) = vuln["ratings"]
    assert rating["method"] == "CVSSv31"
    assert rating["vector"] == "AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"
    assert (rating["score"], rating["severity"]) == (7.5, "high")


def test_the_bom_lists_what_the_audit_finds(
    cli_bom: dict[str, Any], sklearn_model: Path, advisory_db: Path, bom_cache: Path
) -> None:
    policy = Policy()
    inputs = collect_inputs([sklearn_model], ParseOptions(limits=policy.limits), policy)
    audited = {(d.canonical, d.version) for i in inputs for d in i.dependencies if d.version}
    listed = {(c["name"], c.get("version")) for c in cli_bom["components"]}
    assert audited <= listed
    names = {d.canonical for i in inputs for d in i.dependencies}
    assert names == {c["name"] for c in cli_bom["components"]}
    report = audit([sklearn_model], source=OfflineDatabase(advisory_db, cache_dir=bom_cache))
    vulnerable = {
        f.evidence["ids"].split(",")[0]
        for f in report.findings
        if f.rule_id == "AUDIT-VULNERABLE-DEPENDENCY"
    }
    assert vulnerable == {v["id"] for v in cli_bom["vulnerabilities"]}
    assert {"PYSEC-2022-288", "PYSEC-2023-221"} <= vulnerable


def test_without_a_source_nothing_is_checked_and_no_request_is_sent(
    sklearn_model: Path, advisories_dir: Path, tmp_path: Path
) -> None:
    with serve(advisories_dir / "pypa" / "vulns") as srv:
        # The variable says where the API is; only --osv-api or --osv-url asks to use it.
        env = {"MODELSHIELD_OSV_URL": srv.url}
        plain = modelshield("bom", sklearn_model, cache=tmp_path / "cache", env=env)
        assert srv.hits == {}
        online = modelshield("bom", sklearn_model, "--osv-api", cache=tmp_path / "c2", env=env)
        assert srv.count("querybatch") >= 1  # the same server sees the run that asked
    assert plain.returncode == 0, plain.stderr
    doc = assert_valid(plain.stdout)
    assert "vulnerabilities" not in doc
    assert props(doc["metadata"], "modelshield:vulnerabilities") == ["not-checked"]
    assert not props(doc["metadata"], "modelshield:vulnerability_source")
    assert component(doc, "joblib")["version"] == "1.1.0"
    assert component(doc, "scikit-learn")["version"] == sklearn.__version__
    assert online.returncode == 0, online.stderr
    checked = assert_valid(online.stdout)
    assert vulnerability(checked, "PYSEC-2022-288")["affects"][0]["ref"] == "pkg:pypi/joblib@1.1.0"
    assert props(checked["metadata"], "modelshield:vulnerability_source") == [f"OSV API {srv.url}"]


def test_ignore_drops_an_advisory_by_any_alias(
    sklearn_model: Path,
    advisory_db: Path,
    bom_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["bom", str(sklearn_model), "--db", str(advisory_db), "--cache-dir", str(bom_cache)]
    assert main([*args, "--ignore", "CVE-2022-21797"]) == 0
    doc = assert_valid(capsys.readouterr().out)
    assert {v["id"] for v in doc["vulnerabilities"]} >= {"PYSEC-2023-221"}
    assert "PYSEC-2022-288" not in {v["id"] for v in doc["vulnerabilities"]}
    # A rule id drops that rule's findings instead.
    assert main([*args, "--ignore", "AUDIT-UNPINNED-MAY-RESOLVE-VULNERABLE"]) == 0
    doc = assert_valid(capsys.readouterr().out)
    assert not props(component(doc, "numpy"), "modelshield:finding")
    assert "PYSEC-2022-288" in {v["id"] for v in doc["vulnerabilities"]}


def test_library_single_file_bom_lists_the_model_implied_dependencies(
    sklearn_model: Path, advisory_db: Path, bom_cache: Path
) -> None:
    model = sklearn_model / "model.joblib"
    outcome = create_bom(model, source=OfflineDatabase(advisory_db, cache_dir=bom_cache))
    doc = assert_valid(bom_json(outcome.bom))
    assert doc["metadata"]["component"]["name"] == "model.joblib"
    versions = {c["name"]: c.get("version") for c in doc["components"]}
    # Only the model file is read: the requirements file beside it is not part of this BOM.
    assert versions == {"joblib": None, "numpy": None, "scikit-learn": sklearn.__version__}
    assert outcome.dependencies.inputs == (("model.joblib", "model"),)
    assert outcome.errors == ()


def test_exact_versions_absorb_ranges_and_urls_stay_apart(tmp_path: Path) -> None:
    root = tmp_path / "m"
    root.mkdir()
    np.save(root / "weights.npy", np.zeros(4, dtype=np.float32))
    (root / "requirements.txt").write_text(
        "numpy>=1.0\ntorch @ git+https://github.com/pytorch/pytorch\n"
    )
    (root / "requirements-lock.txt").write_text("numpy==1.26.4\n")
    outcome = create_bom(root)
    doc = assert_valid(bom_json(outcome.bom))
    assert sorted((c["name"], c.get("version")) for c in doc["components"]) == [
        ("numpy", "1.26.4"),
        ("torch", None),
    ]
    numpy = component(doc, "numpy")
    assert props(numpy, "modelshield:specifier") == [">=1.0"]
    assert {(o["location"], o["line"]) for o in numpy["evidence"]["occurrences"]} == {
        ("requirements-lock.txt", 1),
        ("requirements.txt", 1),
    }
    (reason,) = props(component(doc, "torch"), "modelshield:unauditable")
    assert "git" in reason.lower() or "url" in reason.lower()
    assert outcome.dependencies.source is None
    assert props(doc["metadata"], "modelshield:vulnerabilities") == ["not-checked"]


def test_a_broken_dependency_file_is_an_error_and_the_bom_is_still_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "m"
    root.mkdir()
    np.save(root / "weights.npy", np.zeros(4, dtype=np.float32))
    (root / "requirements.txt").write_text("numpy=>1.0\n")
    assert main(["bom", str(root)]) == 2
    out, err = capsys.readouterr()
    assert_valid(out)
    assert "requirements.txt" in err


def test_a_model_without_dependency_inputs_is_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "m"
    root.mkdir()
    np.save(root / "weights.npy", np.zeros(4, dtype=np.float32))
    (root / "notes.json").write_text('{"hidden_size": 4}')
    assert main(["bom", str(root)]) == 0
    doc = assert_valid(capsys.readouterr().out)
    assert not doc.get("components")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--db", "x", "--osv-api"], "--db and --osv-api select two sources"),
        (["--db", "x", "--osv-url", "http://127.0.0.1:9"], "--db and --osv-url select two"),
        (["--offline", "--osv-url", "http://127.0.0.1:9"], "contradict"),
        (["--offline"], "needs a vulnerability database"),
        (["--osv-api", "--timeout", "0"], "--timeout must be positive"),
    ],
)
def test_bad_source_options_are_errors_and_write_no_bom(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "requirements.txt").write_text("joblib==1.1.0\n")
    assert main(["bom", str(tmp_path), "--cache-dir", str(tmp_path / "empty"), *args]) == 2
    out, err = capsys.readouterr()
    assert message in err
    assert out == ""


def test_the_same_advisory_through_two_files_is_listed_once(
    tmp_path: Path, advisory_db: Path, bom_cache: Path
) -> None:
    root = tmp_path / "m"
    root.mkdir()
    (root / "requirements.txt").write_text("joblib==1.1.0\n")
    (root / "requirements-dev.txt").write_text("pytest\njoblib==1.1.0\n")
    outcome = create_bom(root, source=OfflineDatabase(advisory_db, cache_dir=bom_cache))
    doc = assert_valid(bom_json(outcome.bom))
    vuln = vulnerability(doc, "PYSEC-2022-288")
    assert sorted(props(vuln, "modelshield:declared_in")) == [
        "requirements-dev.txt:2",
        "requirements.txt:1",
    ]
    assert [c["purl"] for c in doc["components"] if c["name"] == "joblib"] == [
        "pkg:pypi/joblib@1.1.0"
    ]


def test_each_model_file_is_scanned_once(
    sklearn_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The BOM's own scan feeds the dependency discovery: no file is read twice."""
    from modelshield.scanner import engine

    real = engine.scan_file
    scanned: list[str] = []

    def counting(path: str, *args: Any, **kwargs: Any) -> Any:
        scanned.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(engine, "scan_file", counting)
    outcome = create_bom(sklearn_model)
    assert sorted(scanned) == sorted(set(scanned))
    assert str(sklearn_model / "model.joblib") in scanned
    # ...and what the discovery took from that scan is in the BOM, as before.
    assert "scikit-learn" in {d.name for d in outcome.dependencies.dependencies}
