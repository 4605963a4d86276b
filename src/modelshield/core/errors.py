"""modelshield's exception hierarchy.

One base exception whose :meth:`ModelshieldError.diagnostics` tells the user what to do; the CLI
catches only this base. Hostile *input* never raises: it becomes a
:class:`~modelshield.core.Finding` or an :class:`~modelshield.core.ErrorRecord`. These exceptions
are for the user's own mistakes (a bad policy file, a missing extra, an unreachable service).

    ModelshieldError
    ├── ConfigError          bad policy / settings file or option value
    ├── MissingExtraError    an optional dependency is not installed
    └── ServiceError         a stage's external source failed (databases, HTTP services)
"""

from __future__ import annotations


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
