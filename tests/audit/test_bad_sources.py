"""A bad advisory source is an error, never "0 advisories": issue 13, item 1.

An empty directory, a folder of unrelated JSON, a file that is not an OSV export or a ZIP of
random bytes used to be read as a database without advisories, and the audit passed (and the
BOM recorded the dependencies as checked). Each is now refused with exit 2 and a message naming
the path and what was found; ``db update`` refuses such an archive the same way; ``db status``
says what a database holds; and the audit warns when the database is older than the policy
allows.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelshield.audit import audit_paths
from modelshield.audit.interface import AuditServiceError
from modelshield.audit.records import PackageQuery
from modelshield.audit.sources.osv_db import OfflineDatabase
from modelshield.cli import main
from modelshield.core.errors import ConfigError
from modelshield.core.policy import AuditSettings, Policy

from .conftest import WriteDb, osv_record


def _empty(root: Path) -> Path:
    root.mkdir()
    return root


def _unrelated_json(root: Path) -> Path:
    root.mkdir()
    (root / "package.json").write_text(json.dumps({"name": "web", "version": "1.0.0"}))
    (root / "tsconfig.json").write_text(json.dumps({"compilerOptions": {"strict": True}}))
    (root / "list.json").write_text(json.dumps([1, 2, 3]))
    return root


def _not_an_export(root: Path) -> Path:
    root.mkdir()
    path = root / "advisories.json"
    path.write_text(json.dumps({"results": [{"id": "x"}], "next_page_token": ""}))
    return path


def _random_zip(root: Path) -> Path:
    root.mkdir()
    path = root / "all.zip"
    path.write_bytes(b"PK\x03\x04" + os.urandom(4000))
    return path


def _other_ecosystem(root: Path) -> Path:
    root.mkdir()
    doc = osv_record("GO-2024-1", "golang.org/x/net", versions=["0.1.0"])
    doc["affected"][0]["package"]["ecosystem"] = "Go"
    (root / "GO-2024-1.json").write_text(json.dumps(doc))
    return root


BAD_SOURCES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty directory": (_empty, "holds no OSV record"),
    "unrelated JSON": (_unrelated_json, "holds no valid PyPI advisory"),
    "not an OSV export": (_not_an_export, "holds no valid PyPI advisory"),
    "ZIP of random bytes": (_random_zip, "not a readable ZIP archive"),
    "another ecosystem only": (_other_ecosystem, "0 for PyPI"),
}


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_a_bad_database_is_refused_naming_the_path_and_what_was_found(
    case: str, tmp_path: Path
) -> None:
    build, found = BAD_SOURCES[case]
    db = build(tmp_path / "db")
    with pytest.raises(AuditServiceError) as caught:
        OfflineDatabase(db, cache_dir=tmp_path / "cache").advisories([PackageQuery("numpy")])
    message = caught.value.diagnostics()
    assert str(db) in message and found in message


@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_audit_and_bom_exit_2_on_a_bad_database(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = BAD_SOURCES[case][0](tmp_path / "db")
    req = tmp_path / "requirements.txt"
    req.write_text("scikit-learn==0.23.0\n")
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["audit", "--db", str(db), *cache, str(req)]) == 2
    assert str(db) in capsys.readouterr().err
    out = tmp_path / "bom.json"
    assert main(["bom", "--db", str(db), *cache, "-o", str(out), str(req)]) == 2
    assert not out.exists()  # no BOM claims the dependencies were checked


def test_a_mostly_unreadable_database_is_refused(write_db: WriteDb, tmp_path: Path) -> None:
    root = write_db(*(osv_record(f"PYSEC-{i}", f"pkg{i}", versions=["1.0"]) for i in range(8)))
    for i in range(2):
        (root / "vulns" / f"broken{i}.json").write_text("{not json")
    with pytest.raises(AuditServiceError, match=r"mostly unreadable: 20\.0%"):
        OfflineDatabase(root, cache_dir=None).advisories([PackageQuery("pkg1")])
    # The share is the policy's to set: a looser one accepts the same tree.
    tolerant = OfflineDatabase(root, cache_dir=None, max_unreadable_share=0.25)
    (adv,) = tolerant.advisories([PackageQuery("pkg1")])["pkg1"]
    assert adv.id == "PYSEC-1"


def test_db_update_refuses_a_mostly_invalid_archive_and_keeps_the_old_one(
    tmp_path: Path,
) -> None:
    from modelshield.audit.sources.osv_update import ARCHIVE_NAME, download_database

    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("PYSEC-1.json", json.dumps(osv_record("PYSEC-1", "joblib", versions=["1.0"])))
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("PYSEC-1.json", json.dumps(osv_record("PYSEC-1", "joblib", versions=["1.0"])))
        for i in range(9):
            zf.writestr(f"X-{i}.json", json.dumps({"not": "an advisory"}))
    dest = tmp_path / "osv-db"
    stored = download_database(dest, good.as_uri(), timeout=5)
    before = stored.path.read_bytes()
    with pytest.raises(AuditServiceError, match="not a usable OSV export") as caught:
        download_database(dest, bad.as_uri(), timeout=5)
    assert "90.0%" in str(caught.value)
    assert (dest / ARCHIVE_NAME).read_bytes() == before
    assert not [p for p in dest.iterdir() if p.name.startswith(".download")]


def test_db_status_says_what_the_database_holds_and_where_it_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "export.zip"
    record = osv_record("PYSEC-7", "joblib", versions=["1.0"])
    record["modified"] = "2026-01-02T03:04:05Z"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("PYSEC-7.json", json.dumps(record))
    cache = tmp_path / "cache"
    from modelshield.audit.sources.osv_update import download_database

    download_database(cache / "osv-db", archive.as_uri(), timeout=5)
    assert main(["db", "status", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "1 OSV records, 1 for PyPI" in out
    assert "newest advisory modified: 2026-01-02T03:04:05Z" in out
    assert f"downloaded from {archive.as_uri()}" in out and "sha256" in out
    assert "usable: yes" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["db", "status", "--db", str(empty), "--cache-dir", str(cache)]) == 2
    assert "usable: no: " in capsys.readouterr().out


def _audit_with_age(write_db: WriteDb, tmp_path: Path, days_old: int, limit: float) -> list[str]:
    record = osv_record("PYSEC-1", "joblib", versions=["1.0"])
    record["modified"] = (datetime.now(UTC) - timedelta(days=days_old)).isoformat()
    db = OfflineDatabase(write_db(record), cache_dir=None)
    req = tmp_path / "requirements.txt"
    req.write_text("joblib==1.0\n")
    policy = Policy(audit=AuditSettings(max_database_age_days=limit))
    return [f.rule_id for f in audit_paths([req], source=db, policy=policy).findings]


def test_a_database_older_than_the_policy_allows_is_reported(
    write_db: WriteDb, tmp_path: Path
) -> None:
    stale = _audit_with_age(write_db, tmp_path, days_old=45, limit=30)
    assert stale == ["AUDIT-VULNERABLE-DEPENDENCY", "AUDIT-DATABASE-STALE"]
    assert _audit_with_age(write_db, tmp_path, days_old=10, limit=30) == [
        "AUDIT-VULNERABLE-DEPENDENCY"
    ]
    assert "AUDIT-DATABASE-STALE" not in _audit_with_age(write_db, tmp_path, 900, limit=0)


@pytest.mark.parametrize(
    "table",
    [
        {"max_database_age_days": -1},
        {"max_database_age_days": "old"},
        {"max_unreadable_share": 2},
        {"python_version": "three"},
        {"platform": "beos"},
        {"expand_env": "HOME"},
        {"staleness": 3},
    ],
)
def test_audit_policy_keys_are_validated(table: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Policy.from_mapping({"audit": table})


def test_a_bad_database_is_refused_even_with_nothing_to_ask(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np

    np.save(tmp_path / "weights.npy", np.zeros(3, dtype=np.float32))  # implies no dependency
    db = _empty(tmp_path / "db")
    args = ["--db", str(db), "--cache-dir", str(tmp_path / "cache"), str(tmp_path / "weights.npy")]
    assert main(["audit", *args]) == 2
    assert "holds no OSV record" in capsys.readouterr().err
