"""docs/rules.md is generated from the rule catalogue and must be current."""

from __future__ import annotations

from pathlib import Path

from modelshield.core.findings import Severity
from modelshield.core.rules import Rule, load_all_rules
from modelshield.docs import reference_link, render_rule, render_rules

RULES_MD = Path(__file__).resolve().parents[1] / "docs" / "rules.md"

SAMPLE = Rule(
    id="EXAMPLE-SAMPLE-RULE",
    pillar="scan",
    severity=Severity.HIGH,
    title="A sample | with a pipe",
    what="Reports samples.",
    why="Samples are bad.",
    example="cos\nsystem\n",
    references=("CWE-502", "CVE-2025-1716", "GHSA-655q-fx9r-782v", "https://example.org/x", "ZDI"),
    since="0.2.0",
)


def test_rules_md_is_current() -> None:
    expected = render_rules(load_all_rules())
    assert RULES_MD.read_text(encoding="utf-8") == expected, (
        "docs/rules.md is stale: run `make docs` (python -m modelshield.docs > docs/rules.md)"
    )


def test_every_registered_rule_is_documented() -> None:
    text = RULES_MD.read_text(encoding="utf-8")
    for rule in load_all_rules():
        assert f"\n## {rule.id}\n" in text
        assert f"[{rule.id}](#{rule.id.lower()})" in text


def test_a_rule_section_has_every_part() -> None:
    section = render_rule(SAMPLE)
    for heading in ("### What it does", "### Why is this bad?", "### Example", "### References"):
        assert heading in section
    assert "Severity: `high` · Pillar: `scan` · Since: 0.2.0" in section
    assert "```text\ncos\nsystem\n```" in section


def test_sections_are_sorted_and_the_index_escapes_pipes() -> None:
    other = Rule("AAA-FIRST-RULE", "scan", Severity.LOW, "First", "w", "y")
    text = render_rules([SAMPLE, other])
    assert text.index("## AAA-FIRST-RULE") < text.index("## EXAMPLE-SAMPLE-RULE")
    assert "| A sample \\| with a pipe |" in text
    assert "### Example" not in render_rule(other)
    assert "### References" not in render_rule(other)


def test_references_become_links() -> None:
    assert [reference_link(r) for r in SAMPLE.references] == [
        "[CWE-502](https://cwe.mitre.org/data/definitions/502.html)",
        "[CVE-2025-1716](https://www.cve.org/CVERecord?id=CVE-2025-1716)",
        "[GHSA-655q-fx9r-782v](https://github.com/advisories/GHSA-655q-fx9r-782v)",
        "<https://example.org/x>",
        "ZDI",
    ]
