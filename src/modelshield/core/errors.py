"""modelshield's exception hierarchy.

One base exception whose :meth:`ModelshieldError.diagnostics` tells the user what to do; the CLI
catches only this base. Hostile *input* never raises: it becomes a
:class:`~modelshield.core.Finding` or an :class:`~modelshield.core.ErrorRecord`. These exceptions
are for the user's own mistakes (a bad policy file, a missing extra, an unreachable service).

    ModelshieldError
    ├── ConfigError          bad policy / settings file or option value
    ├── MissingExtraError    an optional dependency is not installed
    ├── ServiceError         a stage's external source failed (databases, HTTP services)
    └── LoadRefused          a restricted load refused a model file (the report says why)

``LoadRefused`` is the one exception raised *because of* an input: the restricted loaders
(:mod:`modelshield.loaders`) are asked to return a live object, and a file the policy does not
admit has no object to return. It carries the findings that refused it and the scan's report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelshield.core.findings import Finding, Report


class ModelshieldError(Exception):
    """Base of every error modelshield raises on purpose."""

    def diagnostics(self) -> str:
        """A message for a person: what went wrong and what to do next."""
        return str(self)


class ConfigError(ModelshieldError):
    """A policy file, settings value or command-line option is invalid."""

    def diagnostics(self) -> str:
        """Explain the bad setting."""
        return f"configuration error: {self}"


class MissingExtraError(ModelshieldError):
    """An optional dependency is needed for this feature and is not installed."""

    def __init__(self, feature: str, extra: str, package: str) -> None:
        """Name the feature, the extra that provides it and the missing package."""
        super().__init__(f"{feature} needs the '{package}' package")
        self.feature = feature
        self.extra = extra
        self.package = package

    def diagnostics(self) -> str:
        """Give the exact install command."""
        return (
            f"{self.feature} needs the '{self.package}' package, which is not installed.\n"
            f"Install it with: pip install 'modelshield[{self.extra}]'"
        )


class ServiceError(ModelshieldError):
    """An external data source (database directory, HTTP API) failed."""


class LoadRefused(ModelshieldError):
    """A restricted load refused a file: its scan failed the policy, or the unpickler met
    something the policy does not admit. Nothing the policy does not admit has run."""

    def __init__(
        self,
        path: str,
        reason: str,
        *,
        report: Report | None = None,
        findings: Sequence[Finding] = (),
        stage: str = "scan",
    ) -> None:
        """Name the file, say why in one sentence, and attach the evidence."""
        super().__init__(f"{path}: {reason}")
        self.path = path
        """The file that was refused."""
        self.reason = reason
        """Why, in one sentence."""
        self.report = report
        """The scan's report (policy applied); None when no scan ran (the file was refused
        before it, or the caller loaded without scanning)."""
        self.findings = tuple(findings)
        """The findings that refused the file: the scan's at or above ``fail_on``, or the one the
        restricted unpickler made (with the rule id and message the scanner gives)."""
        self.stage = stage
        """``scan`` (the static scan refused it), ``load`` (the restricted unpickler refused
        something the scan passed: a scanner miss) or ``format`` (no restricted loader reads
        this format)."""

    def diagnostics(self) -> str:
        """The reason and each finding's rule, title and message."""
        lines = [f"refused to load {self.path}: {self.reason}"]
        for f in self.findings:
            lines.append(f"  [{f.severity.label}] {f.rule_id}: {f.title}")
            lines.append(f"      {f.message}")
        if self.stage == "load":
            lines.append(
                "The static scan passed this file and the restricted load refused it: please "
                "report it to modelshield as a scanner miss."
            )
        return "\n".join(lines)
