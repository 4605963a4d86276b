"""The gate's rules (``POLICY-*``): what the policy file itself gets wrong over time."""

from __future__ import annotations

from modelshield.core.findings import Severity
from modelshield.core.rules import Rule, register_rule

UNUSED_ENTRY = register_rule(
    Rule(
        id="POLICY-UNUSED-ENTRY",
        pillar="gate",
        severity=Severity.LOW,
        title="Policy entry matches nothing",
        what="Reports an entry of the policy that matched nothing in a `modelshield ci` run "
        "over the whole project: a `[[suppress]]` or `[[accept_incomplete]]` entry no finding "
        "or gap of its rule and paths matched, an advisory ignore (`[[audit.ignore]]`, or an "
        "advisory id in `ignore`) that no audited dependency had, or an entry naming a rule "
        "that no pillar has. The finding points at the entry's line in the policy file.",
        why="Suppressions rot silently: a file is renamed, a path glob was relative to another "
        "directory, the advisory was fixed, a rule id was mistyped. An entry that matches "
        "nothing today is either dead weight or, worse, a blanket that will hide the next "
        "finding that happens to match it without anyone reviewing it. Delete it, or correct "
        "it so that it covers what it was written for.",
        example='[[suppress]]\nrule = "PICKLE-IMPORT-UNKNOWN"\npaths = ["models/legacy/*"]   '
        "# models/legacy was renamed models/v1",
    )
)

IGNORE_EXPIRED = register_rule(
    Rule(
        id="POLICY-IGNORE-EXPIRED",
        pillar="gate",
        severity=Severity.LOW,
        title="Advisory ignore has expired",
        what="Reports an `[[audit.ignore]]` entry whose `expires` date has passed. From the "
        "day after that date the entry no longer applies: the advisory is audited again and "
        "reported at its own severity. The finding points at the entry's line and repeats "
        "its reason.",
        why="An accepted vulnerability is accepted for a time, on the facts known when it "
        "was reviewed (the code path is unreachable, a fix is coming). An expiry forces the "
        "review to happen again rather than letting the exception outlive its reasons.",
        example='[[audit.ignore]]\nid = "GHSA-aaaa-bbbb-cccc"\nreason = "parser not used"\n'
        "expires = 2025-01-31",
    )
)
