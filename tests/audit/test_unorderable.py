"""An advisory range that cannot be ordered against a version: issue 13, item 5.

binderhub's PYSEC-2021-371 is fixed in ``0.2.0-n653``, which is not a PEP 440 version: whether a
release comes before or after it is unknown. Such a version used to get only a low
"advisory data" finding, and the gate passed. It is now reported as possibly affected, at the
advisory's severity, unless it lies outside the range wherever the unorderable bound falls.
"""

from __future__ import annotations

from pathlib import Path

from modelshield.audit import audit_paths
from modelshield.audit.match import affects, may_affect
from modelshield.audit.records import AffectedPackage, Event, EventKind, VersionRange
from modelshield.audit.sources.osv_db import OfflineDatabase
from modelshield.core.findings import Severity
from modelshield.core.policy import AuditSettings, ExitCode, Policy

from .conftest import WriteDb, osv_record

CRITICAL = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]


def entry(*events: tuple[EventKind, str]) -> AffectedPackage:
    return AffectedPackage("pkg", (VersionRange(tuple(Event(k, v) for k, v in events)),))


def test_binderhub_before_its_unorderable_fix_fails_the_gate(
    snapshot_db: OfflineDatabase, tmp_path: Path
) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("binderhub==0.1.0\n")
    policy = Policy(audit=AuditSettings(max_database_age_days=0))
    report = policy.apply(audit_paths([req], source=snapshot_db, policy=policy))
    rules = {f.rule_id: f for f in report.findings}
    possible = rules["AUDIT-VULNERABLE-UNORDERABLE-RANGE"]
    assert possible.evidence["ids"].startswith("PYSEC-2021-371")
    assert possible.severity is Severity.HIGH  # no CVSS in the record: unknown is never low
    assert "AUDIT-ADVISORY-DATA" in rules  # the data problem is still said
    assert policy.exit_code(report) is ExitCode.FINDINGS


def test_possibly_affected_unless_provably_outside() -> None:
    start_unorderable = entry((EventKind.INTRODUCED, "0"), (EventKind.FIXED, "0.2.0-n653"))
    assert not affects(start_unorderable, "0.1.0")  # the order the matcher keeps...
    assert may_affect(start_unorderable, "0.1.0")  # ...is a convention, not a fact
    assert may_affect(start_unorderable, "5.0")
    late_start = entry((EventKind.INTRODUCED, "1.0"), (EventKind.FIXED, "2.0-n1"))
    assert not may_affect(late_start, "0.5")  # below the start wherever the fix falls
    assert may_affect(late_start, "1.5")
    both = entry((EventKind.INTRODUCED, "0.9-x1"), (EventKind.LAST_AFFECTED, "1.0"))
    assert not may_affect(both, "1.1")  # after the last affected release, whatever the start
    assert may_affect(both, "0.1")
    plain = entry((EventKind.INTRODUCED, "1.0"), (EventKind.FIXED, "2.0"))
    assert not may_affect(plain, "2.5") and may_affect(plain, "1.5") == affects(plain, "1.5")


def test_the_advisory_severity_is_kept(write_db: WriteDb, tmp_path: Path) -> None:
    record = osv_record(
        "GHSA-x", "pkg", events=[{"introduced": "0"}, {"fixed": "2.0-rc.final"}], severity=CRITICAL
    )
    db = OfflineDatabase(write_db(record), cache_dir=None)
    req = tmp_path / "requirements.txt"
    req.write_text("pkg==1.0\nother==1.0\n")
    found = [f for f in audit_paths([req], source=db).findings if "ids" in f.evidence]
    assert [(f.rule_id, f.severity) for f in found] == [
        ("AUDIT-VULNERABLE-UNORDERABLE-RANGE", Severity.CRITICAL)
    ]
