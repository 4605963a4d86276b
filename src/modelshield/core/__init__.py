"""The shared core of every pillar: findings, rules, policy, limits and errors.

Data flows one way: inputs -> detectors -> :class:`Finding` -> :class:`Policy` -> :class:`Report`
-> reporters. Every pillar (scan, audit, assess, guard) ends in the same :class:`Finding`, so the
policy, the exit codes and the reporters are written once.
"""

from modelshield.core.errors import ConfigError, ModelshieldError
from modelshield.core.findings import (
    ErrorRecord,
    FileResult,
    Finding,
    Location,
    Report,
    Severity,
)
from modelshield.core.limits import Limits
from modelshield.core.policy import ExitCode, Policy
from modelshield.core.rules import Rule, all_rules, get_rule, register_rule

__all__ = [
    "ConfigError",
    "ErrorRecord",
    "ExitCode",
    "FileResult",
    "Finding",
    "Limits",
    "Location",
    "ModelshieldError",
    "Policy",
    "Report",
    "Rule",
    "Severity",
    "all_rules",
    "get_rule",
    "register_rule",
]
