"""The offline database: the snapshot, the compiled index cache, ZIP exports and bad files."""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from modelshield.audit.interface import AuditServiceError
from modelshield.audit.match import affects
from modelshield.audit.records import PackageQuery
from modelshield.audit.sources.osv_db import OfflineDatabase

from .conftest import WriteDb, osv_record


def test_snapshot_compiles_every_advisory(snapshot_db: OfflineDatabase) -> None:
    assert snapshot_db.record_count() == 2661
    assert snapshot_db.problems() == []  # vulns/.id-allocator is not an advisory
    found = snapshot_db.advisories([PackageQuery("scikit-learn"), PackageQuery("tensorflow")])
    assert {a.id for a in found["scikit-learn"]} == {"PYSEC-2020-107", "PYSEC-2020-108"}
    assert len(found["tensorflow"]) == 242


def test_cached_index_is_reused_until_the_tree_changes(write_db: WriteDb, tmp_path: Path) -> None:
    root = write_db(osv_record("A-1", "pkg", versions=["1.0"]))
    cache = tmp_path / "cache"
    first = OfflineDatabase(root, cache_dir=cache)
    assert first.record_count() == 1 and first.rebuilt
    first.close()
    again = OfflineDatabase(root, cache_dir=cache)
    assert again.record_count() == 1 and not again.rebuilt
    again.close()
    added = root / "vulns" / "pkg" / "A-2.json"
    added.write_text(json.dumps(osv_record("A-2", "pkg", versions=["2.0"])))
    changed = OfflineDatabase(root, cache_dir=cache)
    assert changed.record_count() == 2 and changed.rebuilt
    changed.close()
    # An edit in place (same name, new mtime) also invalidates the index.
    later = time.time() + 5
    added.write_text(json.dumps(osv_record("A-2", "pkg", versions=["2.0", "2.1"])))
    os.utime(added, (later, later))
    edited = OfflineDatabase(root, cache_dir=cache)
    (adv,) = [a for a in edited.advisories([PackageQuery("pkg")])["pkg"] if a.id == "A-2"]
    assert edited.rebuilt and adv.affected[0].versions == ("2.0", "2.1")


def test_unquoted_yaml_versions_stay_text(tmp_path: Path) -> None:
    folder = tmp_path / "db" / "vulns" / "pkg"
    folder.mkdir(parents=True)
    (folder / "Y-1.yaml").write_text(
        "id: Y-1\nmodified: 2024-01-01T00:00:00Z\naffected:\n"
        "- package: {name: pkg, ecosystem: PyPI}\n  ranges:\n  - type: ECOSYSTEM\n"
        "    events:\n    - introduced: 3.2\n    - fixed: 3.10\n"
    )
    db = OfflineDatabase(tmp_path / "db", cache_dir=None)
    (adv,) = db.advisories([PackageQuery("pkg")])["pkg"]
    (entry,) = adv.affected
    assert [e.version for e in entry.ranges[0].events] == ["3.2", "3.10"]
    assert adv.warnings == ()
    assert affects(entry, "3.9") and not affects(entry, "3.10")
    assert adv.modified == "2024-01-01T00:00:00Z"


def test_osv_export_zip_and_broken_members(tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(
            "GHSA-aaaa.json", json.dumps(osv_record("GHSA-aaaa", "keras", versions=["3.0.0"]))
        )
        for i in range(150):  # one broken member in 151: under the 1% an audit tolerates
            zf.writestr(f"PYSEC-{i}.json", json.dumps(osv_record(f"PYSEC-{i}", f"pkg{i}")))
        zf.writestr("GHSA-bbbb.json", "{not json")
        zf.writestr("README.txt", "not an advisory")
    db = OfflineDatabase(archive, cache_dir=tmp_path / "cache")
    assert [a.id for a in db.advisories([PackageQuery("keras")])["keras"]] == ["GHSA-aaaa"]
    (problem,) = db.problems()
    assert problem.file == "all.zip!GHSA-bbbb.json" and "not valid json" in problem.message
    assert problem.package == ""  # names no package: it may concern any audited one


def test_bad_files_are_problems_named_after_their_package(tmp_path: Path) -> None:
    folder = tmp_path / "db" / "vulns" / "Mlflow"
    folder.mkdir(parents=True)
    (folder / "PYSEC-1.yaml").write_text("id: [unclosed\n")
    (folder / "PYSEC-2.yaml").write_text("affected: []\n")
    (folder / "PYSEC-3.yaml").write_text(yaml.safe_dump(osv_record("PYSEC-3", "mlflow")))
    db = OfflineDatabase(tmp_path / "db", cache_dir=None, max_unreadable_share=1.0)
    problems = db.problems(["mlflow"])
    assert sorted(p.file for p in problems) == [
        "vulns/Mlflow/PYSEC-1.yaml",
        "vulns/Mlflow/PYSEC-2.yaml",
    ]
    assert db.problems(["numpy"]) == []


def test_duplicate_ids_keep_the_latest_record(write_db: WriteDb) -> None:
    old = osv_record("D-1", "pkg", versions=["1.0"])
    old["modified"] = "2024-01-01T00:00:00Z"
    new = osv_record("D-1", "pkg", versions=["1.0", "1.1"])
    new["modified"] = "2025-01-01T00:00:00Z"
    write_db(old, root="db")
    root = write_db(new, root="db/mirror")
    db = OfflineDatabase(root.parent, cache_dir=None)
    (adv,) = db.advisories([PackageQuery("pkg")])["pkg"]
    assert adv.affected[0].versions == ("1.0", "1.1")


def test_missing_database_is_a_service_error(tmp_path: Path) -> None:
    with pytest.raises(AuditServiceError, match="does not exist"):
        OfflineDatabase(tmp_path / "nowhere", cache_dir=None).open()


def test_unwritable_cache_falls_back_to_memory(write_db: WriteDb, tmp_path: Path) -> None:
    root = write_db(osv_record("A-1", "pkg", versions=["1.0"]))
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("")
    db = OfflineDatabase(root, cache_dir=blocker)
    assert db.record_count() == 1 and db.index_path is None


def test_download_keeps_the_old_database_on_failure(tmp_path: Path, snapshot_vulns: Path) -> None:
    from modelshield.audit.sources.osv_update import ARCHIVE_NAME, ORIGIN_FILE, download_database

    from .osv_server import serve
    from .test_osv_api import closed_port

    dest = tmp_path / "osv-db"
    with serve(snapshot_vulns, export_packages=["joblib"]) as srv:
        stored = download_database(dest, f"{srv.url}/export/all.zip", timeout=5)
        assert (stored.records, stored.path) == (1, dest / ARCHIVE_NAME)
        before = stored.path.read_bytes()
        srv.export_packages = []  # an archive without records is refused
        with pytest.raises(AuditServiceError, match="not a usable OSV export"):
            download_database(dest, f"{srv.url}/export/all.zip", timeout=5)
        with pytest.raises(AuditServiceError, match="did not send a ZIP"):
            download_database(dest, f"{srv.url}/v1/vulns/PYSEC-2022-288", timeout=5)
    with pytest.raises(AuditServiceError, match="cannot download"):
        download_database(dest, f"http://127.0.0.1:{closed_port()}/all.zip", timeout=2)
    assert stored.path.read_bytes() == before
    # No temporary file left; the origin of the stored archive is recorded beside it.
    assert sorted(p.name for p in dest.iterdir()) == [ORIGIN_FILE, ARCHIVE_NAME]
    db = OfflineDatabase(dest, cache_dir=None)
    assert [a.id for a in db.advisories([PackageQuery("joblib")])["joblib"]] == ["PYSEC-2022-288"]


@pytest.mark.parametrize("damage", ["row", "file"])
def test_a_damaged_index_is_compiled_again(write_db: WriteDb, tmp_path: Path, damage: str) -> None:
    """A cache file that cannot be read back (a truncated write, a disk error) is never a
    traceback and never a silent gap: the index is compiled again from the tree."""
    import sqlite3

    root = write_db(osv_record("A-1", "pkg", versions=["1.0"]))
    cache = tmp_path / "cache"
    first = OfflineDatabase(root, cache_dir=cache)
    first.advisories([PackageQuery("pkg")])
    index = first.index_path
    first.close()
    assert index is not None and index.is_file()
    if damage == "row":
        with sqlite3.connect(index) as conn:
            conn.execute("UPDATE packages SET advisories = '[{\"id\": 3' WHERE name = 'pkg'")
        conn.close()
    else:
        index.write_bytes(b"not a database" * 100)
    db = OfflineDatabase(root, cache_dir=cache)
    (adv,) = db.advisories([PackageQuery("pkg")])["pkg"]
    assert adv.id == "A-1" and db.rebuilt
    db.close()
    again = OfflineDatabase(root, cache_dir=cache)  # the repaired index is reused
    assert [a.id for a in again.advisories([PackageQuery("pkg")])["pkg"]] == ["A-1"]
    assert not again.rebuilt
    again.close()
