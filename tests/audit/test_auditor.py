"""The auditor: findings, alias merging, ignores, severities, ranges, and the report's shape."""

from __future__ import annotations

from pathlib import Path

import yaml

from modelshield.audit import audit, audit_paths
from modelshield.audit.auditor import audit_inputs
from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.audit.sources.osv_db import OfflineDatabase
from modelshield.core.findings import Finding, Location, Report, Severity
from modelshield.core.policy import ExitCode, Policy

from .conftest import WriteDb, osv_record

CRITICAL_VECTOR = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]


def run(
    write_db: WriteDb, tmp_path: Path, requirements: str, *records: dict[str, object], **kw: object
) -> Report:
    db = OfflineDatabase(write_db(*records), cache_dir=None)
    req = tmp_path / "requirements.txt"
    req.write_text(requirements)
    return audit_paths([req], source=db, **kw)  # type: ignore[arg-type]


def of_rule(report: Report, rule: str) -> list[Finding]:
    return [f for f in report.findings if f.rule_id == rule]


def test_aliases_merge_into_one_finding_with_every_id(write_db: WriteDb, tmp_path: Path) -> None:
    report = run(
        write_db,
        tmp_path,
        "pillow==8.0.0\n",
        osv_record(
            "PYSEC-2021-1",
            "pillow",
            events=[{"introduced": "0"}, {"fixed": "8.1.0"}],
            aliases=["CVE-2021-1"],
        ),
        osv_record(
            "GHSA-aaaa-bbbb-cccc",
            "Pillow",
            events=[{"introduced": "0"}, {"fixed": "8.1.1"}],
            aliases=["CVE-2021-1"],
            severity=CRITICAL_VECTOR,
        ),
        osv_record("PYSEC-2021-2", "pillow", events=[{"introduced": "8.0.0"}, {"fixed": "8.2.0"}]),
        osv_record("PYSEC-2021-3", "pillow", events=[{"introduced": "9.0"}]),
    )
    (result,) = report.results
    assert result.format == "requirements" and report.tool == "audit"
    found = of_rule(report, "AUDIT-VULNERABLE-DEPENDENCY")
    assert [f.evidence["ids"] for f in found] == [
        "PYSEC-2021-1, GHSA-aaaa-bbbb-cccc, CVE-2021-1",
        "PYSEC-2021-2",
    ]
    merged = found[0]
    assert merged.severity is Severity.CRITICAL  # the worst of the group
    assert merged.evidence["fixed_versions"] == "8.1.0, 8.1.1"
    assert merged.evidence["upgrade_to"] == "8.1.1"  # 8.1.0 is still affected by the GHSA
    assert merged.title == "pillow 8.0.0 is affected by PYSEC-2021-1"
    assert merged.location == Location(str(tmp_path / "requirements.txt"), (), 0)
    assert found[1].severity is Severity.HIGH  # no CVSS: unknown is reported as HIGH
    assert "unknown is never low" in found[1].evidence["severity_source"]


def test_ignore_by_any_alias_and_withdrawn_advisories(write_db: WriteDb, tmp_path: Path) -> None:
    records = (
        osv_record("PYSEC-1", "redis", versions=["4.5.4"], aliases=["CVE-9"]),
        osv_record("PYSEC-2", "redis", versions=["4.5.4"], withdrawn="2023-06-06T10:37:00Z"),
        osv_record("PYSEC-3", "redis", versions=["4.5.4"]),
    )
    report = run(write_db, tmp_path, "redis==4.5.4\n", *records, ignore=["CVE-9"])
    assert [f.evidence["ids"] for f in report.findings] == ["PYSEC-3"]
    assert report.suppressed == 1
    everything = run(write_db, tmp_path, "redis==4.5.4\n", *records)
    assert [f.evidence["ids"] for f in everything.findings] == ["PYSEC-1, CVE-9", "PYSEC-3"]


def test_unpinned_requirements_may_resolve(write_db: WriteDb, tmp_path: Path) -> None:
    records = (
        osv_record(
            "PYSEC-A",
            "mlflow",
            events=[{"introduced": "0"}, {"fixed": "2.9.0"}],
            severity=CRITICAL_VECTOR,
        ),
        osv_record("PYSEC-B", "mlflow", events=[{"introduced": "2.0"}, {"fixed": "2.3.1"}]),
        osv_record("PYSEC-C", "mlflow", events=[{"introduced": "0"}, {"fixed": "1.0"}]),
    )
    report = run(write_db, tmp_path, "mlflow>=2.0\nother>=1\n", *records)
    (finding,) = report.findings
    assert finding.rule_id == "AUDIT-UNPINNED-MAY-RESOLVE-VULNERABLE"
    assert finding.severity is Severity.MEDIUM
    assert finding.evidence["advisories"] == "PYSEC-A (>=2.0,<2.9.0); PYSEC-B (>=2.0,<2.3.1)"
    assert finding.evidence["safe_floor"] == "2.9.0"
    assert finding.evidence["worst_advisory_severity"] == "critical"
    assert "Requiring >=2.9.0 excludes every known affected version" in finding.message
    assert finding.title == "mlflow>=2.0 could resolve to a vulnerable version"
    safe = run(write_db, tmp_path, "mlflow>=2.9\n", *records)
    assert safe.findings == ()


def test_non_pep440_pins_are_reported_and_still_matched(write_db: WriteDb, tmp_path: Path) -> None:
    report = run(
        write_db,
        tmp_path,
        "paramiko===0.1-bulbasaur\n",
        osv_record(
            "PYSEC-2022-166",
            "paramiko",
            versions=["0.1-bulbasaur"],
            events=[{"introduced": "2.10.0"}, {"fixed": "2.10.1"}],
        ),
    )
    assert [f.rule_id for f in report.findings] == [
        "AUDIT-UNKNOWN-VERSION",
        "AUDIT-VULNERABLE-DEPENDENCY",
    ]
    assert report.findings[0].severity is Severity.LOW


def test_partly_unusable_advisories_are_reported(write_db: WriteDb, tmp_path: Path) -> None:
    bad = osv_record("PYSEC-2026-89", "pyjwt", events=[{"introduced": "0"}, {}, {"fixed": "2.4.0"}])
    report = run(write_db, tmp_path, "pyjwt==2.3.0\n", bad)
    rules = [f.rule_id for f in report.findings]
    assert rules == ["AUDIT-ADVISORY-DATA", "AUDIT-VULNERABLE-DEPENDENCY"]
    assert "empty event" in report.findings[0].message


def test_unreadable_database_files_for_audited_packages(tmp_path: Path) -> None:
    folder = tmp_path / "db" / "vulns" / "mlflow"
    folder.mkdir(parents=True)
    (folder / "PYSEC-X.yaml").write_text("id: [broken\n")
    req = tmp_path / "requirements.txt"
    req.write_text("mlflow==2.0.0\nnumpy==1.0\n")
    (folder / "PYSEC-Y.yaml").write_text(yaml.safe_dump(osv_record("PYSEC-Y", "mlflow")))
    db = OfflineDatabase(tmp_path / "db", cache_dir=None, max_unreadable_share=1.0)
    report = audit_paths([req], source=db)
    (finding,) = report.findings
    assert finding.rule_id == "AUDIT-ADVISORY-DATA" and "PYSEC-X.yaml" in finding.message


def test_unauditable_dependencies_are_info(write_db: WriteDb, tmp_path: Path) -> None:
    report = run(
        write_db,
        tmp_path,
        "git+https://github.com/org/lib.git#egg=lib\n",
        osv_record("P-1", "lib", versions=["1.0"]),
    )
    (finding,) = report.findings
    assert (finding.rule_id, finding.severity) == ("AUDIT-UNAUDITABLE-DEPENDENCY", Severity.INFO)


def test_model_implied_dependency_declared_elsewhere(write_db: WriteDb) -> None:
    db = OfflineDatabase(
        write_db(osv_record("P-1", "scikit-learn", versions=["0.23.0"])), cache_dir=None
    )
    model = ParsedInput(
        path="model.pkl",
        kind=InputKind.MODEL,
        dependencies=(
            Dependency(
                "scikit-learn",
                "scikit-learn",
                Location("model.pkl"),
                specifiers=("",),
                origin="model-implied",
                evidence={"callables": "sklearn.svm:SVC"},
            ),
            Dependency(
                "xgboost",
                "xgboost",
                Location("model.pkl"),
                specifiers=("",),
                origin="model-implied",
            ),
        ),
    )
    declared = ParsedInput(
        path="requirements.txt",
        kind=InputKind.REQUIREMENTS,
        dependencies=(
            Dependency(
                "scikit-learn",
                "scikit-learn",
                Location("requirements.txt"),
                version="0.23.0",
                line=1,
            ),
        ),
    )
    report = audit_inputs([model, declared], db)
    model_rules = [(f.rule_id, f.evidence.get("package")) for f in report.results[0].findings]
    assert model_rules == [
        ("AUDIT-MODEL-IMPLIED-DEPENDENCY", "scikit-learn"),
        ("AUDIT-MODEL-IMPLIED-DEPENDENCY", "xgboost"),
        ("AUDIT-UNKNOWN-VERSION", "xgboost"),
    ]
    assert report.results[0].findings[0].evidence["declared_in"] == "requirements.txt"
    assert [f.rule_id for f in report.results[1].findings] == ["AUDIT-VULNERABLE-DEPENDENCY"]


def test_public_api_applies_the_policy(write_db: WriteDb, tmp_path: Path) -> None:
    db = OfflineDatabase(write_db(osv_record("P-1", "numpy", versions=["1.0"])), cache_dir=None)
    req = tmp_path / "requirements.txt"
    req.write_text("numpy==1.0\n")
    policy = Policy(severity_overrides={"AUDIT-VULNERABLE-DEPENDENCY": Severity.LOW})
    report = audit(req, source=db, policy=policy)
    assert [f.severity for f in report.findings] == [Severity.LOW]
    assert policy.exit_code(report) is ExitCode.OK
    assert Policy().exit_code(audit(req, source=db)) is ExitCode.FINDINGS


def test_every_input_gives_a_result_and_errors_exit_2(write_db: WriteDb, tmp_path: Path) -> None:
    db = OfflineDatabase(write_db(osv_record("P-1", "numpy", versions=["1.0"])), cache_dir=None)
    good = tmp_path / "requirements.txt"
    good.write_text("numpy==2.0\n")
    bad = tmp_path / "uv.lock"
    bad.write_text("[[package]\n")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    report = audit_paths([good, bad, tmp_path / "missing.txt", empty_dir], source=db)
    assert [r.format for r in report.results] == ["requirements", "uv-lock", "unknown", "unknown"]
    assert [len(r.errors) for r in report.results] == [0, 1, 1, 1]
    assert Policy().exit_code(report) is ExitCode.ERROR


def test_directory_discovery(write_db: WriteDb, tmp_path: Path) -> None:
    db = OfflineDatabase(
        write_db(osv_record("P-1", "transformers", versions=["4.30.0"])), cache_dir=None
    )
    project = tmp_path / "project"
    (project / "model").mkdir(parents=True)
    (project / ".venv" / "lib").mkdir(parents=True)
    (project / ".venv" / "lib" / "requirements.txt").write_text("numpy==1.0\n")
    (project / "venv").mkdir()
    (project / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    (project / "venv" / "requirements.txt").write_text("numpy==1.0\n")
    (project / "requirements-dev.txt").write_text("pytest==7.0\n")
    (project / "model" / "config.json").write_text('{"transformers_version": "4.30.0"}')
    (project / "notes.txt").write_text("not a requirements file\n")
    (project / "data.json").write_text("{}")
    report = audit_paths([project], source=db)
    assert [(Path(r.path).relative_to(project).as_posix(), r.format) for r in report.results] == [
        ("requirements-dev.txt", "requirements"),
        ("model/config.json", "transformers-config"),
    ]
    assert [f.rule_id for f in report.results[1].findings] == [
        "AUDIT-MODEL-IMPLIED-DEPENDENCY",
        "AUDIT-VULNERABLE-DEPENDENCY",
    ]


def test_a_directory_of_unrelated_json_is_not_silently_clean(
    write_db: WriteDb, tmp_path: Path
) -> None:
    db = OfflineDatabase(write_db(osv_record("P-1", "numpy", versions=["1.0"])), cache_dir=None)
    folder = tmp_path / "webapp"
    folder.mkdir()
    (folder / "config.json").write_text('{"port": 8080}')
    (result,) = audit_paths([folder], source=db).results
    assert result.format == "unknown"
    assert "no dependency file" in result.errors[0].message
