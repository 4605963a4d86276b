"""The audit package's public surface: every exported name resolves and is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

import modelshield.audit
from modelshield.audit import audit_paths
from modelshield.audit.rules import AUDIT_RULE_IDS
from modelshield.audit.sources.osv_db import OfflineDatabase
from modelshield.core.rules import all_rules


@pytest.mark.parametrize("name", sorted(modelshield.audit.__all__))
def test_exported_names_are_documented(name: str) -> None:
    member = getattr(modelshield.audit, name)
    assert member.__doc__, name
    assert member.__module__.startswith("modelshield.audit"), name


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError):
        _ = modelshield.audit.not_a_member  # type: ignore[attr-defined]


def test_every_audit_rule_is_in_the_catalogue() -> None:
    # Integrity rules (MANIFEST-*, SIGNATURE-*) share the audit pillar; these are the AUDIT-* ones.
    audit_rules = {r.id for r in all_rules() if r.id.startswith("AUDIT-")}
    assert audit_rules == AUDIT_RULE_IDS


def test_the_running_environment_can_be_audited(snapshot_db: OfflineDatabase) -> None:
    report = audit_paths([], source=snapshot_db, include_environment=True)
    (result,) = report.results
    assert result.format == "environment" and result.errors == ()
    assert int(result.metadata["dependencies"]) > 10
    assert Path(result.path.split(":", 1)[1]).is_dir()
