"""Generate ``docs/rules.md`` from the rule catalogue.

Usage::

    python -m modelshield.docs > docs/rules.md

Every rule is rendered the way linters document theirs (What it does / Why is this bad? /
Example / References), with its id, default severity, pillar and the version it became
stable in. A test fails when the committed file differs from what this module generates.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from modelshield.core.rules import Rule, load_all_rules

HEADER = """\
# Rules

Every finding modelshield reports carries one of these rule ids. Use them in a policy file
(`ignore`, `[[suppress]]`, `[severity]`) or with `modelshield scan --ignore RULE`.

The severity shown is the default; a finding may carry another one when the rule says why, and
a policy may override it. This file is generated from the rule catalogue by
`python -m modelshield.docs`; do not edit it by hand (`make docs` regenerates it).
"""

_CWE = re.compile(r"^CWE-(\d+)$")
_CVE = re.compile(r"^CVE-\d{4}-\d+$")
_GHSA = re.compile(r"^GHSA(-[0-9a-z]{4}){3}$")


def anchor(rule_id: str) -> str:
    """The heading anchor GitHub and most Markdown renderers give a rule's section."""
    return rule_id.lower()


def reference_link(reference: str) -> str:
    """A reference as Markdown: CWE, CVE and GHSA ids become links, URLs autolinks."""
    if match := _CWE.match(reference):
        return f"[{reference}](https://cwe.mitre.org/data/definitions/{match.group(1)}.html)"
    if _CVE.match(reference):
        return f"[{reference}](https://www.cve.org/CVERecord?id={reference})"
    if _GHSA.match(reference):
        return f"[{reference}](https://github.com/advisories/{reference})"
    if reference.startswith(("https://", "http://")):
        return f"<{reference}>"
    return reference


def render_rule(rule: Rule) -> str:
    """One rule's section."""
    lines = [
        f"## {rule.id}",
        "",
        f"**{rule.title}**",
        "",
        f"Severity: `{rule.severity.label}` · Pillar: `{rule.pillar}` · Since: {rule.since}",
        "",
        "### What it does",
        "",
        rule.what.strip(),
        "",
        "### Why is this bad?",
        "",
        rule.why.strip(),
        "",
    ]
    if rule.example.strip():
        lines += ["### Example", "", "```text", rule.example.strip("\n"), "```", ""]
    if rule.references:
        lines += ["### References", ""]
        lines += [f"- {reference_link(r)}" for r in rule.references]
        lines.append("")
    return "\n".join(lines)


def render_rules(rules: Sequence[Rule]) -> str:
    """The whole document: an index table, then one section per rule, sorted by id."""
    ordered = sorted(rules, key=lambda r: r.id)
    parts = [HEADER]
    parts.append("| Rule | Severity | Pillar | Title |\n|---|---|---|---|")
    parts[-1] += "".join(
        f"\n| [{r.id}](#{anchor(r.id)}) | {r.severity.label} | {r.pillar} | {_cell(r.title)} |"
        for r in ordered
    )
    parts[-1] += "\n"
    parts += [render_rule(r) for r in ordered]
    return "\n".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main(argv: Sequence[str] | None = None) -> int:
    """Write the generated document to stdout."""
    del argv  # no options yet; kept for a uniform entry point
    sys.stdout.write(render_rules(load_all_rules()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
