"""The OSV API client against a real HTTP server on the loopback interface."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelshield.audit import audit_paths
from modelshield.audit.interface import AuditServiceError
from modelshield.audit.records import PackageQuery
from modelshield.audit.sources.osv_api import OsvApi
from modelshield.audit.sources.osv_db import OfflineDatabase
from modelshield.core.findings import Report
from modelshield.core.policy import AuditSettings, Policy

from .osv_server import OsvServer, serve

PINNED = "scikit-learn==0.23.0\njoblib==1.1.0\nonnx==1.12.0\nnumpy==1.16.0\nrequests==2.31.0\n"


@pytest.fixture
def server(snapshot_vulns: Path) -> Iterator[OsvServer]:
    with serve(snapshot_vulns) as srv:
        yield srv


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def findings_key(report: Report) -> list[tuple[str, str, str]]:
    return sorted(
        (f.rule_id, f.evidence.get("package", ""), f.evidence.get("ids", ""))
        for f in report.findings
    )


def test_api_and_offline_database_agree(
    server: OsvServer, snapshot_db: OfflineDatabase, tmp_path: Path
) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(PINNED + "mlflow>=2.0\n")
    api = OsvApi(server.url, cache_dir=tmp_path / "cache", timeout=5)
    # The snapshot is old by design: its age is not what is compared.
    policy = Policy(audit=AuditSettings(max_database_age_days=0))
    online = audit_paths([req], source=api, policy=policy)
    offline = audit_paths([req], source=snapshot_db, policy=policy)
    assert findings_key(online) == findings_key(offline)
    ids = {f.evidence["ids"].split(", ")[0] for f in online.findings}
    assert {"PYSEC-2020-107", "PYSEC-2022-288", "PYSEC-2023-38"} <= ids
    assert server.count("querybatch") == 1
    assert online.results[0].metadata["vulnerability_source"] == f"OSV API {server.url}"


def test_records_are_cached_on_disk(server: OsvServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = OsvApi(server.url, cache_dir=cache, timeout=5, ttl=0)
    found = first.advisories([PackageQuery("scikit-learn", "0.23.0")])
    assert {a.id for a in found["scikit-learn"]} == {"PYSEC-2020-107", "PYSEC-2020-108"}
    fetched = server.count("vulns")
    assert fetched == 2
    second = OsvApi(server.url, cache_dir=cache, timeout=5, ttl=0)
    again = second.advisories([PackageQuery("scikit-learn", "0.23.0")])
    assert again == found
    assert server.count("vulns") == fetched  # unchanged `modified`: served from the cache
    assert server.count("querybatch") == 2  # ttl=0: the batch itself is never cached
    batch_cached = OsvApi(server.url, cache_dir=cache, timeout=5, ttl=3600)
    batch_cached.advisories([PackageQuery("joblib")])
    batch_cached.advisories([PackageQuery("joblib")])
    assert server.count("querybatch") == 3


def test_unpinned_queries_ask_for_every_advisory(server: OsvServer, tmp_path: Path) -> None:
    api = OsvApi(server.url, cache_dir=None, timeout=5)
    found = api.advisories([PackageQuery("numpy")])
    assert len(found["numpy"]) == 8


def test_unreachable_service_is_a_clear_error(tmp_path: Path) -> None:
    api = OsvApi(f"http://127.0.0.1:{closed_port()}", cache_dir=None, timeout=2, retries=1)
    with pytest.raises(AuditServiceError) as info:
        api.advisories([PackageQuery("numpy", "1.0")])
    message = info.value.diagnostics()
    assert "cannot reach the OSV API" in message and "after 2 attempt(s)" in message
    assert "modelshield db update" in message
    assert api.requests_made == 2


@pytest.mark.parametrize(("status", "attempts"), [(500, 3), (429, 3), (400, 1)])
def test_server_errors_are_retried_only_when_transient(
    server: OsvServer, status: int, attempts: int
) -> None:
    server.fail_with = status
    api = OsvApi(server.url, cache_dir=None, timeout=5, retries=2)
    with pytest.raises(AuditServiceError, match=f"HTTP {status}"):
        api.advisories([PackageQuery("numpy", "1.0")])
    assert server.count("querybatch") == attempts


def test_invalid_json_is_a_clear_error(server: OsvServer) -> None:
    server.garbage = True
    with pytest.raises(AuditServiceError, match="invalid JSON"):
        OsvApi(server.url, cache_dir=None, timeout=5).advisories([PackageQuery("numpy")])
