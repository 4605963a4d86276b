"""The rule catalogue: one stable id per kind of finding, documented like a linter's rules.

Each detector module declares its rules at import time with :func:`register_rule` and builds its
findings with :meth:`Rule.finding`. ``docs/rules.md`` is generated from this catalogue
(``python -m modelshield.docs``), and a test checks that it is current.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from msgspec import Struct

from modelshield.core.findings import Finding, Location, Severity

_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")


class Rule(Struct, frozen=True):
    """A kind of finding: its id, default severity and documentation."""

    id: str
    """Stable id: upper-case words joined by dashes, area first (``PICKLE-``, ``ZIP-``...)."""
    pillar: str
    """``scan``, ``audit``, ``assess``, ``guard`` or ``gate``."""
    severity: Severity
    """Default severity; a finding may carry another when the rule documents why."""
    title: str
    """One line naming what the rule finds."""
    what: str
    """What it does."""
    why: str
    """Why is this bad?"""
    example: str = ""
    """A short example of what triggers it."""
    references: tuple[str, ...] = ()
    """CWE, CVE, GHSA or article references."""
    since: str = "0.1.0"
    """Version the rule became stable in."""
    incomplete: bool = False
    """A finding of this rule means part of the input was not analysed (a tripped limit, an
    unrecognised or unread format): the input's status is then ``incomplete`` and the run
    cannot pass until the policy accepts it."""

    def finding(
        self,
        location: Location,
        message: str,
        *,
        title: str | None = None,
        severity: Severity | None = None,
        evidence: Mapping[str, str] | None = None,
    ) -> Finding:
        """A finding of this rule; title and severity default to the rule's."""
        return Finding(
            rule_id=self.id,
            severity=self.severity if severity is None else severity,
            title=self.title if title is None else title,
            message=message,
            location=location,
            evidence=dict(evidence or {}),
        )


_CATALOGUE: dict[str, Rule] = {}


def register_rule(rule: Rule) -> Rule:
    """Add a rule to the catalogue and return it; ids must be unique and well-formed."""
    from modelshield.core.errors import ModelshieldError

    if not _ID.match(rule.id):
        raise ModelshieldError(f"malformed rule id {rule.id!r}")
    existing = _CATALOGUE.get(rule.id)
    if existing is not None and existing != rule:
        raise ModelshieldError(f"rule id {rule.id!r} registered twice with different contents")
    _CATALOGUE[rule.id] = rule
    return rule


def rule_is_incomplete(rule_id: str) -> bool:
    """Whether findings of this rule report a part of an input that was not analysed."""
    rule = _CATALOGUE.get(rule_id)
    return rule is not None and rule.incomplete


def get_rule(rule_id: str) -> Rule:
    """Look a rule up by id (after the modules that declare it were imported)."""
    return _CATALOGUE[rule_id]


def all_rules() -> tuple[Rule, ...]:
    """Every registered rule, sorted by id. Import the pillars first (see ``load_all_rules``)."""
    return tuple(_CATALOGUE[k] for k in sorted(_CATALOGUE))


def load_all_rules() -> tuple[Rule, ...]:
    """Import every rules module (``<pillar>/rules.py``, where every rule is registered) so
    that the catalogue is complete, and return it. Only those modules are imported: they need
    the core alone, so the catalogue loads without any pillar's optional libraries (the
    assessment's numpy and pandas)."""
    import importlib
    import pkgutil

    import modelshield

    for info in pkgutil.walk_packages(modelshield.__path__, prefix="modelshield."):
        if info.name.rsplit(".", 1)[-1] == "rules":
            importlib.import_module(info.name)
    return all_rules()
