"""The policy: what fails a run, what is ignored, which callables are allowed or denied.

One policy file (``modelshield.toml``, or ``[tool.modelshield]`` in ``pyproject.toml``) serves
every pillar. It is read once into a frozen, validated :class:`Policy`; unknown keys are errors.

Example::

    fail_on = "medium"              # secure default: an unknown callable fails CI
    ignore = ["ARCHIVE-DUPLICATE-NAME"]  # rule ids to drop everywhere

    [[suppress]]                    # drop a rule for some paths only (fnmatch globs)
    rule = "PICKLE-IMPORT-UNKNOWN"
    paths = ["models/legacy/*"]

    [severity]                      # re-rank a rule
    "ARCHIVE-ENCRYPTED-MEMBER" = "low"

    [callables]
    # "module:qualname" names one callable; "module.*" (or "module:*") a module and its
    # submodules; a bare "module" the same. An exact allow beats the built-in dangerous list;
    # a wildcard allow never does (it cannot make os.system safe).
    allow = ["mypkg.models.*", "mypkg.layers:Dense"]
    deny = ["somelib:unsafe_loader"]

    [[accept_incomplete]]           # accept a part left unanalysed (listed in reports)
    rule = "SCAN-FILE-TOO-LARGE"    # paths is optional: everywhere when left out
    paths = ["models/archive/*"]

    [limits]
    max_nested_depth = 4

    [assess]                        # the assessment (see AssessSettings)
    min_metric = {accuracy = 0.8}

    [guard]                         # the runtime guard (see GuardSettings)
    durability = "commit"

    [audit]                         # the dependency audit (see AuditSettings)
    python_version = "3.11"         # evaluate markers for this target (default: audit all)
    platform = "linux"
    max_database_age_days = 30      # warn when the offline database is older

A file that was not analysed fully (a limit, an unrecognised or unread format: its *gaps*)
fails the run with exit code 2 whatever ``fail_on`` says, until an ``accept_incomplete``
entry, an ``ignore`` or a ``suppress`` of the rule that reports the gap accepts it.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from msgspec import Struct, field
from msgspec.structs import replace

from modelshield.core.assess_settings import AssessSettings
from modelshield.core.errors import ConfigError
from modelshield.core.findings import FileResult, Finding, Gap, Location, Report, Severity
from modelshield.core.guard_settings import GuardSettings
from modelshield.core.limits import Limits


class ExitCode(enum.IntEnum):
    """Process exit codes shared by every command."""

    OK = 0
    """Nothing at or above the failure threshold, and no errors."""
    FINDINGS = 1
    """At least one finding at or above the threshold."""
    ERROR = 2
    """A usage error, or an input that could not be analysed fully (never a silent pass)."""


class Suppression(Struct, frozen=True):
    """Drop one rule's findings for files matching any of the globs."""

    rule: str
    """Rule id, or ``*`` for every rule."""
    paths: tuple[str, ...]
    """fnmatch globs matched against the location's path."""

    def matches(self, finding: Finding | Gap) -> bool:
        """Whether this entry covers the finding (or the gap)."""
        return self.covers(finding.rule_id, finding.location)

    def covers(self, rule_id: str, location: Location) -> bool:
        """Whether this entry covers ``rule_id`` at ``location`` (no paths: everywhere)."""
        if self.rule not in ("*", rule_id):
            return False
        if not self.paths:
            return True
        return any(fnmatch.fnmatch(location.path, p) for p in self.paths)


PYTHON_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")
"""A target Python version: ``3.11`` or ``3.11.4``."""
PLATFORMS: tuple[str, ...] = ("linux", "macos", "windows")
"""The target platforms the audit evaluates markers for."""


class AuditSettings(Struct, frozen=True):
    """The ``[audit]`` table: how the dependency audit reads inputs and trusts its database."""

    python_version: str | None = None
    """Evaluate environment markers for this Python (``3.11`` or ``3.11.4``); with neither this
    nor ``platform``, no marker is evaluated and every dependency is audited."""
    platform: str | None = None
    """Evaluate environment markers for this platform: ``linux``, ``macos`` or ``windows``."""
    allow_includes: tuple[str, ...] = ()
    """Directories outside the audited tree that requirements files may include (``-r``)."""
    expand_env: tuple[str, ...] = ()
    """Environment variables requirements files may expand with ``${NAME}``."""
    max_database_age_days: float = 30.0
    """Warn (``AUDIT-DATABASE-STALE``) when the offline database's newest advisory is older;
    0 never warns."""
    max_unreadable_share: float = 0.01
    """The share of an offline database's files that may be unreadable before the database is
    refused (exit 2); below it, each one is reported with the packages it concerns."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str) -> AuditSettings:
        """Validate an ``[audit]`` table; unknown keys and bad values raise ConfigError."""
        unknown = sorted(set(data) - set(cls.__struct_fields__))
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) in [audit]: {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        version = data.get("python_version")
        if version is not None:
            version = _expect(version, str, source, "audit.python_version")
            if not PYTHON_VERSION.match(version):
                raise ConfigError(f"{source}: audit.python_version must look like 3.11 or 3.11.4")
            kwargs["python_version"] = version
        platform = data.get("platform")
        if platform is not None:
            platform = _expect(platform, str, source, "audit.platform").lower()
            if platform not in PLATFORMS:
                raise ConfigError(f"{source}: audit.platform must be one of {', '.join(PLATFORMS)}")
            kwargs["platform"] = platform
        for key in ("allow_includes", "expand_env"):
            if key in data:
                kwargs[key] = tuple(_str_list(data[key], source, f"audit.{key}"))
        for key, top in (("max_database_age_days", None), ("max_unreadable_share", 1.0)):
            if key in data:
                value = data[key]
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ConfigError(f"{source}: audit.{key} must be a number >= 0")
                if top is not None and value > top:
                    raise ConfigError(f"{source}: audit.{key} must be at most {top:g}")
                kwargs[key] = float(value)
        return cls(**kwargs)


class Policy(Struct, frozen=True):
    """Frozen, validated settings shared by every pillar."""

    fail_on: Severity = Severity.MEDIUM
    """Findings at or above this severity fail the run (exit 1)."""
    ignore: frozenset[str] = frozenset()
    """Rule ids whose findings are dropped everywhere."""
    suppress: tuple[Suppression, ...] = ()
    """Rule ids dropped for some paths only."""
    severity_overrides: Mapping[str, Severity] = field(default_factory=dict)
    """Per-rule severity replacements."""
    allow_callables: tuple[str, ...] = ()
    """Extra callables treated as safe (``module``, ``module.*`` or ``module:qualname``)."""
    deny_callables: tuple[str, ...] = ()
    """Extra callables treated as dangerous (same forms)."""
    limits: Limits = field(default_factory=Limits)
    """Resource limits for every analysis."""
    accept_incomplete: tuple[Suppression, ...] = ()
    """Gaps (parts not analysed) accepted for a rule, everywhere or for some paths."""
    audit: AuditSettings = field(default_factory=AuditSettings)
    """Settings of the dependency audit (the ``[audit]`` table)."""
    assess: AssessSettings = field(default_factory=AssessSettings)
    """Checks, thresholds and budgets of the assessment (the ``[assess]`` table)."""
    guard: GuardSettings = field(default_factory=GuardSettings)
    """Screening, logging and monitoring of the runtime guard (the ``[guard]`` table)."""

    # ---- loading -------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<policy>") -> Policy:
        """Validate a parsed policy table; unknown keys and bad values raise ConfigError."""
        allowed = {
            "fail_on",
            "ignore",
            "suppress",
            "severity",
            "callables",
            "limits",
            "accept_incomplete",
            "audit",
            "assess",
            "guard",
        }
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        if "fail_on" in data:
            kwargs["fail_on"] = Severity.parse(_expect(data["fail_on"], str, source, "fail_on"))
        if "ignore" in data:
            kwargs["ignore"] = frozenset(_str_list(data["ignore"], source, "ignore"))
        if "suppress" in data:
            items = _expect(data["suppress"], list, source, "suppress")
            sups = []
            for i, item in enumerate(items):
                table = _expect(item, dict, source, f"suppress[{i}]")
                extra = sorted(set(table) - {"rule", "paths"})
                if extra or "rule" not in table or "paths" not in table:
                    raise ConfigError(f"{source}: suppress[{i}] needs exactly 'rule' and 'paths'")
                sups.append(
                    Suppression(
                        rule=_expect(table["rule"], str, source, f"suppress[{i}].rule"),
                        paths=tuple(_str_list(table["paths"], source, f"suppress[{i}].paths")),
                    )
                )
            kwargs["suppress"] = tuple(sups)
        if "accept_incomplete" in data:
            items = _expect(data["accept_incomplete"], list, source, "accept_incomplete")
            accepted = []
            for i, item in enumerate(items):
                key = f"accept_incomplete[{i}]"
                table = _expect(item, dict, source, key)
                extra = sorted(set(table) - {"rule", "paths"})
                if extra or "rule" not in table:
                    raise ConfigError(f"{source}: {key} needs 'rule' and may have 'paths'")
                accepted.append(
                    Suppression(
                        rule=_expect(table["rule"], str, source, f"{key}.rule"),
                        paths=tuple(_str_list(table.get("paths", []), source, f"{key}.paths")),
                    )
                )
            kwargs["accept_incomplete"] = tuple(accepted)
        if "severity" in data:
            table = _expect(data["severity"], dict, source, "severity")
            kwargs["severity_overrides"] = {
                str(k): Severity.parse(_expect(v, str, source, f"severity.{k}"))
                for k, v in table.items()
            }
        if "callables" in data:
            table = _expect(data["callables"], dict, source, "callables")
            extra = sorted(set(table) - {"allow", "deny"})
            if extra:
                raise ConfigError(f"{source}: unknown key(s) in [callables]: {', '.join(extra)}")
            kwargs["allow_callables"] = tuple(
                _str_list(table.get("allow", []), source, "callables.allow")
            )
            kwargs["deny_callables"] = tuple(
                _str_list(table.get("deny", []), source, "callables.deny")
            )
        if "limits" in data:
            kwargs["limits"] = Limits.from_mapping(
                dict(_expect(data["limits"], dict, source, "limits"))
            )
        if "audit" in data:
            table = _expect(data["audit"], dict, source, "audit")
            kwargs["audit"] = AuditSettings.from_mapping(table, source)
        if "assess" in data:
            table = _expect(data["assess"], dict, source, "assess")
            kwargs["assess"] = AssessSettings.from_mapping(table, source)
        if "guard" in data:
            table = _expect(data["guard"], dict, source, "guard")
            kwargs["guard"] = GuardSettings.from_mapping(table, source)
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> Policy:
        """Read ``modelshield.toml`` or the ``[tool.modelshield]`` table of ``pyproject.toml``."""
        import tomllib  # only when a policy file is read: start-up time of every command

        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"cannot read policy file {p}: {e.strerror or e}") from e
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"policy file {p} is not valid TOML: {e}") from e
        if p.name == "pyproject.toml":
            data = data.get("tool", {}).get("modelshield", {})
        return cls.from_mapping(data, source=str(p))

    # ---- applying ------------------------------------------------------------------------
    def with_fail_on(self, severity: Severity) -> Policy:
        """The same policy with another failure threshold."""
        return replace(self, fail_on=severity)

    def keep(self, finding: Finding) -> Finding | None:
        """The finding as the policy reports it, or None when the policy drops it."""
        if finding.rule_id in self.ignore or any(s.matches(finding) for s in self.suppress):
            return None
        override = self.severity_overrides.get(finding.rule_id)
        return finding if override is None else finding.with_severity(override)

    def accepts(self, gap: Gap) -> bool:
        """Whether the policy accepts a part left unanalysed: an ``accept_incomplete`` entry
        covers it, or the rule that reports it is ignored or suppressed there."""
        if gap.rule_id in self.ignore:
            return True
        return any(a.matches(gap) for a in self.accept_incomplete) or any(
            s.matches(gap) for s in self.suppress
        )

    def apply(self, report: Report) -> Report:
        """A report with ignored findings dropped, severities overridden, gaps accepted."""
        suppressed = 0
        results: list[FileResult] = []
        for result in report.results:
            kept: list[Finding] = []
            for f in result.findings:
                g = self.keep(f)
                if g is None:
                    suppressed += 1
                else:
                    kept.append(g)
            gaps = tuple(
                replace(gap, accepted=True) if not gap.accepted and self.accepts(gap) else gap
                for gap in result.gaps
            )
            results.append(replace(result, findings=tuple(kept), gaps=gaps))
        return replace(report, results=tuple(results), suppressed=report.suppressed + suppressed)

    def exit_code(self, report: Report) -> ExitCode:
        """1 when a finding reaches ``fail_on``; else 2 when an input was not analysed fully
        (an error, or a gap the policy does not accept), whatever ``fail_on`` is; else 0."""
        if any(f.severity >= self.fail_on for f in report.findings):
            return ExitCode.FINDINGS
        if report.unfinished:
            return ExitCode.ERROR
        return ExitCode.OK


def _expect(value: Any, kind: type, source: str, key: str) -> Any:
    if not isinstance(value, kind):
        raise ConfigError(f"{source}: '{key}' must be a {kind.__name__}, got {value!r}")
    return value


def _str_list(value: Any, source: str, key: str) -> Iterable[str]:
    items = _expect(value, list, source, key)
    for item in items:
        _expect(item, str, source, key)
    return [str(x) for x in items]
