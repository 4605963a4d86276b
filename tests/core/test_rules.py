"""The rule catalogue refuses malformed and conflicting ids; `python -m modelshield.docs`
prints the generated rules document."""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from modelshield.core.errors import ModelshieldError
from modelshield.core.findings import Severity
from modelshield.core.rules import Rule, get_rule, load_all_rules, register_rule, rule_is_incomplete
from modelshield.docs import main, render_rules


@pytest.mark.parametrize("rule_id", ["scan-limit", "SCANLIMIT", "SCAN_LIMIT", "-SCAN-LIMIT", "1-A"])
def test_malformed_ids_are_refused(rule_id: str) -> None:
    with pytest.raises(ModelshieldError, match="malformed rule id"):
        register_rule(Rule(rule_id, "scan", Severity.LOW, "t", "w", "y"))


def test_an_id_registered_twice_must_say_the_same_thing() -> None:
    load_all_rules()
    existing = get_rule("SCAN-LIMIT")
    assert register_rule(existing) is existing  # importing a module twice is harmless
    with pytest.raises(ModelshieldError, match="registered twice"):
        register_rule(replace(existing, severity=Severity.INFO))
    assert get_rule("SCAN-LIMIT") == existing


def test_only_rules_of_unanalysed_content_are_incomplete() -> None:
    rules = {rule.id: rule for rule in load_all_rules()}
    assert rule_is_incomplete("SCAN-LIMIT")
    assert not rule_is_incomplete("PICKLE-CALL-DANGEROUS")
    assert not rule_is_incomplete("NO-SUCH-RULE")
    assert all(rule_is_incomplete(i) == r.incomplete for i, r in rules.items())


def test_the_docs_module_prints_the_generated_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert capsys.readouterr().out == render_rules(load_all_rules())
