"""Fixtures for the dependency-audit tests: the compiled advisory snapshot and small OSV trees."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelshield.audit.sources.osv_db import OfflineDatabase


@pytest.fixture(scope="session")
def snapshot_vulns(advisories_dir: Path) -> Path:
    """The PyPA snapshot's ``vulns`` folder."""
    return advisories_dir / "pypa" / "vulns"


@pytest.fixture(scope="session")
def snapshot_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache directory per test session: the snapshot is compiled once."""
    return tmp_path_factory.mktemp("modelshield-cache")


@pytest.fixture(scope="session")
def snapshot_db(advisories_dir: Path, snapshot_cache: Path) -> Iterator[OfflineDatabase]:
    """The whole PyPA snapshot as an offline database (compiled once per session)."""
    db = OfflineDatabase(advisories_dir / "pypa", cache_dir=snapshot_cache)
    db.open()
    yield db
    db.close()


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test reads or writes the user's cache, or reaches a real OSV API."""
    monkeypatch.setenv("MODELSHIELD_CACHE_DIR", str(tmp_path_factory.mktemp("user-cache")))
    monkeypatch.setenv("MODELSHIELD_OSV_URL", "http://127.0.0.1:9")


RECENT = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
"""A modification time that no staleness check flags: records written by the tests are
current unless a test says otherwise."""


def osv_record(
    ident: str,
    package: str,
    *,
    events: list[dict[str, Any]] | None = None,
    versions: list[str] | None = None,
    aliases: list[str] | None = None,
    severity: list[dict[str, str]] | None = None,
    withdrawn: str | None = None,
    summary: str = "",
) -> dict[str, Any]:
    """A minimal OSV record for one PyPI package."""
    affected: dict[str, Any] = {"package": {"name": package, "ecosystem": "PyPI"}}
    if events is not None:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": events}]
    if versions is not None:
        affected["versions"] = versions
    doc: dict[str, Any] = {
        "id": ident,
        "modified": RECENT,
        "affected": [affected],
        "aliases": aliases or [],
        "summary": summary or f"{ident} in {package}",
    }
    if severity is not None:
        doc["severity"] = severity
    if withdrawn is not None:
        doc["withdrawn"] = withdrawn
    return doc


WriteDb = Callable[..., Path]


@pytest.fixture
def write_db(tmp_path: Path) -> WriteDb:
    """Write OSV records as JSON files in a fresh PyPA-layout tree and return its root."""

    def write(*records: dict[str, Any], root: str = "db") -> Path:
        base = tmp_path / root
        for doc in records:
            package = doc["affected"][0]["package"]["name"] if doc.get("affected") else "x"
            folder = base / "vulns" / package
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{doc['id']}.json").write_text(json.dumps(doc))
        base.mkdir(parents=True, exist_ok=True)
        return base

    return write
