"""The index's quick check: reused without listing the tree, rebuilt whenever a file changed."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from modelshield.audit.records import PackageQuery
from modelshield.audit.sources import dbtree
from modelshield.audit.sources.osv_db import OfflineDatabase

from .conftest import WriteDb, osv_record


def _backdate(root: Path, seconds: float = 100) -> None:
    """Make every file and folder older than the racy window."""
    when = time.time() - seconds
    for path in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):
        os.utime(path, (when, when))
    os.utime(root, (when, when))


def _ids(root: Path, cache: Path) -> tuple[bool, list[str]]:
    # A stray broken file among one advisory: tolerated here, to test what the index sees.
    db = OfflineDatabase(root, cache_dir=cache, max_unreadable_share=1.0)
    try:
        found = db.advisories([PackageQuery("pkg")])["pkg"]
        return db.rebuilt, sorted(a.id for a in found)
    finally:
        db.close()


@pytest.fixture
def no_walk(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every full listing of a tree."""
    walks: list[str] = []
    real = dbtree.walk

    def walk(root: str) -> dbtree.Tree:
        walks.append(root)
        return real(root)

    monkeypatch.setattr(dbtree, "walk", walk)
    return walks


def test_unchanged_tree_is_not_listed_again(
    write_db: WriteDb, tmp_path: Path, no_walk: list[str]
) -> None:
    root = write_db(osv_record("A-1", "pkg", versions=["1.0"]))
    _backdate(root)
    cache = tmp_path / "cache"
    assert _ids(root, cache) == (True, ["A-1"])
    no_walk.clear()
    assert _ids(root, cache) == (False, ["A-1"])
    assert no_walk == []  # the quick check alone


def test_quick_check_sees_edits_additions_and_new_folders(
    write_db: WriteDb, tmp_path: Path
) -> None:
    root = write_db(osv_record("A-1", "pkg", versions=["1.0"]))
    cache = tmp_path / "cache"
    _backdate(root)
    _ids(root, cache)
    # An edit in place changes no folder, only the file.
    edited = next(root.rglob("A-1.json"))
    edited.write_text(json.dumps(osv_record("A-1", "pkg", versions=["1.0", "2.0"])))
    later = time.time() - 50
    os.utime(edited, (later, later))
    db = OfflineDatabase(root, cache_dir=cache)
    (adv,) = db.advisories([PackageQuery("pkg")])["pkg"]
    assert db.rebuilt and adv.affected[0].versions == ("1.0", "2.0")
    db.close()
    _backdate(root)
    _ids(root, cache)
    (root / "vulns" / "other").mkdir()
    (root / "vulns" / "other" / "B-1.json").write_text(
        json.dumps(osv_record("B-1", "pkg", versions=["3.0"]))
    )
    assert _ids(root, cache) == (True, ["A-1", "B-1"])


def test_hidden_files_and_racy_folders_fall_back_to_the_full_listing(
    write_db: WriteDb, tmp_path: Path, no_walk: list[str]
) -> None:
    root = write_db(osv_record("A-1", "pkg", versions=["1.0"]))  # just written: racy
    cache = tmp_path / "cache"
    assert _ids(root, cache) == (True, ["A-1"])
    no_walk.clear()
    assert _ids(root, cache) == (False, ["A-1"]) and len(no_walk) == 1
    _backdate(root)
    _ids(root, cache)
    (root / "vulns" / ".notes").write_text("not an advisory")
    no_walk.clear()
    assert _ids(root, cache) == (False, ["A-1"]) and len(no_walk) == 1


def _edit_in_place(path: Path, doc: dict[str, object]) -> None:
    """Rewrite a file without touching its folder's time (as editors that write in place do)."""
    path.write_text(json.dumps(doc))
    later = time.time() - 50
    os.utime(path, (later, later))


def test_an_audit_checks_the_files_of_the_packages_it_reads(
    write_db: WriteDb, tmp_path: Path, no_walk: list[str]
) -> None:
    root = write_db(
        osv_record("A-1", "pkg", versions=["1.0"]), osv_record("B-1", "other", versions=["1.0"])
    )
    cache = tmp_path / "cache"
    _backdate(root)
    _ids(root, cache)
    # Another package's file edited in place: an audit of "pkg" does not depend on it and
    # reuses the index without listing the tree...
    _edit_in_place(root / "vulns" / "other" / "B-1.json", osv_record("B-1", "other"))
    no_walk.clear()
    assert _ids(root, cache) == (False, ["A-1"]) and no_walk == []
    # ...while a database-wide answer checks every file, and compiles the index again.
    db = OfflineDatabase(root, cache_dir=cache)
    assert db.problems() == [] and db.rebuilt
    db.close()
    # The audited package's own file edited in place is always seen.
    _backdate(root)
    _ids(root, cache)
    _edit_in_place(root / "vulns" / "pkg" / "A-1.json", osv_record("A-1", "pkg"))
    db = OfflineDatabase(root, cache_dir=cache)
    (adv,) = db.advisories([PackageQuery("pkg")])["pkg"]
    assert db.rebuilt and adv.affected[0].versions == ()
    db.close()


def test_a_file_of_no_package_is_checked_by_every_run(
    write_db: WriteDb, tmp_path: Path, no_walk: list[str]
) -> None:
    root = write_db(osv_record("A-1", "pkg", versions=["1.0"]))
    broken = root / "stray.json"
    broken.write_text("{not json")
    cache = tmp_path / "cache"
    _backdate(root)
    _ids(root, cache)
    # Fixed in place: it now holds an advisory of the audited package.
    _edit_in_place(broken, osv_record("C-1", "pkg", versions=["2.0"]))
    assert _ids(root, cache) == (True, ["A-1", "C-1"])
