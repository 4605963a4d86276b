"""Allowlist-first classification of the callables a pickle imports. Placeholder."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from modelshield.core.findings import Severity


class Tier(enum.Enum):
    """Where a callable stands."""

    SAFE = "safe"
    DANGEROUS = "dangerous"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verdict:
    """The classification of one callable."""

    module: str
    """Normalised module."""
    name: str
    """Normalised qualified name inside the module."""
    tier: Tier
    """Safe, dangerous or unknown."""
    severity: Severity | None
    """Severity for a finding (None for safe)."""
    category: str
    """What it can do: ``code-execution``, ``process``, ``network``, ``filesystem``..."""
    reason: str
    """Why it is listed (from the data files)."""


class CallablePolicy:
    """Classifies (module, name) pairs. Placeholder: everything is unknown."""

    @classmethod
    def default(
        cls, allow: tuple[str, ...] = (), deny: tuple[str, ...] = ()
    ) -> CallablePolicy:
        """The built-in lists extended by a user's policy."""
        return cls()

    def classify(self, module: str, name: str) -> Verdict:
        """Classify a callable."""
        return Verdict(module, name, Tier.UNKNOWN, Severity.MEDIUM, "unknown", "not listed")
