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

# Paths stay strings, made absolute without resolving links (os.path.abspath, not
# Path.resolve): they are compared with the policy's root once per file and finding.
# ruff: noqa: PTH100, PTH117, PTH118

from __future__ import annotations

import datetime
import enum
import fnmatch
import os
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

    def matches(self, finding: Finding | Gap, root: str | None = None) -> bool:
        """Whether this entry covers the finding (or the gap); ``root`` as in :meth:`covers`."""
        return self.covers(finding.rule_id, finding.location, root)

    def covers(self, rule_id: str, location: Location, root: str | None = None) -> bool:
        """Whether this entry covers ``rule_id`` at ``location`` (no paths: everywhere).

        ``root`` is the directory the globs are relative to (the policy file's): the location
        is matched as a path relative to it, whatever the working directory. Without a root
        the location is matched as written. An absolute glob is matched against the absolute
        path.
        """
        if self.rule not in ("*", rule_id):
            return False
        if not self.paths:
            return True
        return path_matches(location.path, self.paths, root)


def relative_to_root(path: str, root: str | None) -> str:
    """``path`` (as a command named it, relative to the working directory or absolute) as a
    POSIX path relative to ``root``; unchanged when ``root`` is None. A path outside the root
    starts with ``../``."""
    if root is None:
        return path[2:] if path.startswith("./") else path
    try:
        rel = os.path.relpath(os.path.abspath(path), root)
    except ValueError:  # another drive (Windows)
        return path
    return rel.replace(os.sep, "/")


def path_matches(path: str, globs: Iterable[str], root: str | None) -> bool:
    """Whether ``path`` matches any of the fnmatch ``globs`` of a policy rooted at ``root``."""
    rel: str | None = None
    for glob in globs:
        if os.path.isabs(glob):
            if fnmatch.fnmatch(os.path.abspath(path), glob):
                return True
            continue
        if rel is None:
            rel = relative_to_root(path, root)
        if fnmatch.fnmatch(rel, glob[2:] if glob.startswith("./") else glob):
            return True
    return False


PYTHON_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")
"""A target Python version: ``3.11`` or ``3.11.4``."""
PLATFORMS: tuple[str, ...] = ("linux", "macos", "windows")
"""The target platforms the audit evaluates markers for."""


class VulnerabilityIgnore(Struct, frozen=True):
    """An advisory the audit leaves out (``[[audit.ignore]]``), with why and until when."""

    id: str
    """Any id of the advisory: PYSEC-..., GHSA-..., CVE-... (aliases are matched too)."""
    reason: str
    """Why it is accepted (a risk review, an unreachable code path...), for the next reader."""
    expires: datetime.date | None = None
    """The last day the entry applies; after it, the advisory is reported again and the
    expired entry is reported (``POLICY-IGNORE-EXPIRED``). None: it never expires."""

    def active(self, today: datetime.date) -> bool:
        """Whether the entry still applies on ``today``."""
        return self.expires is None or today <= self.expires


class ManifestSettings(Struct, frozen=True):
    """The ``[manifest]`` table: the integrity manifest ``modelshield ci`` verifies."""

    path: str | None = None
    """The model directory or file to verify (relative to the policy file); None: no
    verification."""
    file: str | None = None
    """The manifest (relative to the policy file); None: where ``manifest create`` writes it."""


CI_PILLARS: tuple[str, ...] = ("scan", "audit", "manifest", "assess")
"""The pillars ``modelshield ci`` runs, in order (each when configured)."""


class CiSettings(Struct, frozen=True):
    """The ``[ci]`` table: what ``modelshield ci`` runs and which baseline it applies."""

    skip: tuple[str, ...] = ()
    """Pillars not to run: ``scan``, ``audit``, ``manifest``, ``assess``."""
    baseline: str | None = None
    """The baseline of accepted findings (relative to the policy file), used when
    ``--baseline`` is not given."""


class GovernanceSettings(Struct, frozen=True):
    """The ``[governance]`` table: where ``modelshield ci`` records each run over time."""

    db: str | None = None
    """The governance database: a SQLite file (relative to the policy file) or a URL
    (``sqlite:///...``, ``postgresql://...``); set, every ``ci`` run records its results
    there; None: only ``ci --record`` records."""
    project: str | None = None
    """The project's name in the database (default: the project directory's name)."""


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
    ignore: tuple[VulnerabilityIgnore, ...] = ()
    """Advisories left out, each with a reason and an optional expiry date."""
    db: str | None = None
    """An offline OSV database (a directory or an export ``.zip``, relative to the policy
    file) for ``modelshield ci``; None: the command line chooses (the OSV API by default)."""

    def active_ignores(self, today: datetime.date) -> tuple[str, ...]:
        """The ids of the ``ignore`` entries that still apply on ``today``."""
        return tuple(i.id for i in self.ignore if i.active(today))

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
        if "ignore" in data:
            kwargs["ignore"] = tuple(_ignores(data["ignore"], source))
        if "db" in data:
            kwargs["db"] = _expect(data["db"], str, source, "audit.db")
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
    models: tuple[str, ...] = ()
    """The model files and directories of the project (relative to the policy file), which
    ``modelshield ci`` scans; empty: the whole project."""
    exclude: tuple[str, ...] = ()
    """Paths left out when directories are searched, in ``.gitignore`` syntax, relative to the
    policy file (a file or directory named explicitly is never left out)."""
    gitignore: bool = True
    """Inside a git work tree, leave out what ``.gitignore`` files ignore (never a file git
    tracks)."""
    manifest: ManifestSettings = field(default_factory=ManifestSettings)
    """The integrity manifest ``modelshield ci`` verifies (the ``[manifest]`` table)."""
    ci: CiSettings = field(default_factory=CiSettings)
    """What ``modelshield ci`` runs (the ``[ci]`` table)."""
    governance: GovernanceSettings = field(default_factory=GovernanceSettings)
    """Where ``modelshield ci`` records its runs (the ``[governance]`` table)."""
    root: str | None = None
    """The absolute directory the policy's paths are relative to (the policy file's); None:
    the working directory (a policy built in code, or the built-in defaults)."""
    file: str | None = None
    """The policy file that was read (absolute), or None."""

    # ---- loading -------------------------------------------------------------------------
    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        source: str = "<policy>",
        *,
        root: str | os.PathLike[str] | None = None,
        file: str | os.PathLike[str] | None = None,
    ) -> Policy:
        """Validate a parsed policy table; unknown keys and bad values raise ConfigError.

        ``root`` is the directory the policy's paths are relative to (the policy file's) and
        ``file`` the file it was read from; both are made absolute.
        """
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
            "models",
            "exclude",
            "gitignore",
            "manifest",
            "ci",
            "governance",
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
        for key in ("models", "exclude"):
            if key in data:
                kwargs[key] = tuple(_str_list(data[key], source, key))
        if "gitignore" in data:
            kwargs["gitignore"] = _expect(data["gitignore"], bool, source, "gitignore")
        if "manifest" in data:
            table = _expect(data["manifest"], dict, source, "manifest")
            kwargs["manifest"] = _manifest_settings(table, source)
        if "ci" in data:
            kwargs["ci"] = _ci_settings(_expect(data["ci"], dict, source, "ci"), source)
        if "governance" in data:
            table = _expect(data["governance"], dict, source, "governance")
            kwargs["governance"] = _governance_settings(table, source)
        if root is not None:
            kwargs["root"] = os.path.abspath(root)
        if file is not None:
            kwargs["file"] = os.path.abspath(file)
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | Path) -> Policy:
        """Read ``modelshield.toml`` or the ``[tool.modelshield]`` table of ``pyproject.toml``."""
        import tomllib  # only when a policy file is read: start-up time of every command

        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
            data = tomllib.loads(text)
        except OSError as e:
            raise ConfigError(f"cannot read policy file {p}: {e.strerror or e}") from e
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"policy file {p} is not valid TOML: {e}") from e
        pyproject = p.name == "pyproject.toml"
        if pyproject:
            data = data.get("tool", {}).get("modelshield", {})
        try:
            return cls.from_mapping(data, source=str(p), root=p.parent, file=p)
        except ConfigError as e:
            raise with_line(e, str(p), text, pyproject=pyproject) from None

    # ---- applying ------------------------------------------------------------------------
    def with_fail_on(self, severity: Severity) -> Policy:
        """The same policy with another failure threshold."""
        return replace(self, fail_on=severity)

    def resolve(self, path: str) -> str:
        """A path written in the policy, as a path usable from the working directory."""
        if self.root is None or os.path.isabs(path):
            return path
        return os.path.join(self.root, path)

    def keep(self, finding: Finding) -> Finding | None:
        """The finding as the policy reports it, or None when the policy drops it."""
        if finding.rule_id in self.ignore or any(
            s.matches(finding, self.root) for s in self.suppress
        ):
            return None
        override = self.severity_overrides.get(finding.rule_id)
        return finding if override is None else finding.with_severity(override)

    def accepts(self, gap: Gap) -> bool:
        """Whether the policy accepts a part left unanalysed: an ``accept_incomplete`` entry
        covers it, or the rule that reports it is ignored or suppressed there."""
        if gap.rule_id in self.ignore:
            return True
        return any(a.matches(gap, self.root) for a in self.accept_incomplete) or any(
            s.matches(gap, self.root) for s in self.suppress
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


def with_line(
    error: ConfigError, source: str, text: str, *, pyproject: bool = False, name: str | None = None
) -> ConfigError:
    """``error`` (raised for ``source``, a policy read from ``text``) with the line it is about:
    ``NAME:LINE: message`` (``name``: the file as shown; default ``source``)."""
    from modelshield.core.tomlpos import error_line

    message = str(error)
    prefix = f"{source}: "
    rest = message[len(prefix) :] if message.startswith(prefix) else message
    line = error_line(text, rest, pyproject=pyproject)
    if line is None:
        return error if message.startswith(prefix) else ConfigError(prefix + rest)
    return ConfigError(f"{name or source}:{line}: {rest}")


def _expect(value: Any, kind: type, source: str, key: str) -> Any:
    if not isinstance(value, kind):
        raise ConfigError(f"{source}: '{key}' must be a {kind.__name__}, got {value!r}")
    return value


def _str_list(value: Any, source: str, key: str) -> Iterable[str]:
    items = _expect(value, list, source, key)
    for item in items:
        _expect(item, str, source, key)
    return [str(x) for x in items]


def _manifest_settings(table: Mapping[str, Any], source: str) -> ManifestSettings:
    extra = sorted(set(table) - {"path", "file"})
    if extra:
        raise ConfigError(f"{source}: unknown key(s) in [manifest]: {', '.join(extra)}")
    return ManifestSettings(
        **{k: _expect(v, str, source, f"manifest.{k}") for k, v in table.items()}
    )


def _ci_settings(table: Mapping[str, Any], source: str) -> CiSettings:
    extra = sorted(set(table) - {"skip", "baseline"})
    if extra:
        raise ConfigError(f"{source}: unknown key(s) in [ci]: {', '.join(extra)}")
    skip = tuple(_str_list(table.get("skip", []), source, "ci.skip"))
    bad = sorted(set(skip) - set(CI_PILLARS))
    if bad:
        raise ConfigError(
            f"{source}: ci.skip: unknown pillar(s) {', '.join(bad)}; use {', '.join(CI_PILLARS)}"
        )
    baseline = table.get("baseline")
    if baseline is not None:
        baseline = _expect(baseline, str, source, "ci.baseline")
    return CiSettings(skip=skip, baseline=baseline)


def _governance_settings(table: Mapping[str, Any], source: str) -> GovernanceSettings:
    extra = sorted(set(table) - set(GovernanceSettings.__struct_fields__))
    if extra:
        raise ConfigError(f"{source}: unknown key(s) in [governance]: {', '.join(extra)}")
    values: dict[str, str] = {}
    for key in GovernanceSettings.__struct_fields__:
        if key in table:
            value = _expect(table[key], str, source, f"governance.{key}")
            if not value.strip():
                raise ConfigError(f"{source}: governance.{key} is empty")
            values[key] = value
    return GovernanceSettings(**values)


def _ignores(value: Any, source: str) -> Iterable[VulnerabilityIgnore]:
    items = _expect(value, list, source, "audit.ignore")
    for i, item in enumerate(items):
        key = f"audit.ignore[{i}]"
        table = _expect(item, dict, source, key)
        extra = sorted(set(table) - {"id", "reason", "expires"})
        if extra or "id" not in table or "reason" not in table:
            raise ConfigError(
                f"{source}: {key} needs 'id' and 'reason' and may have 'expires' "
                "(an advisory left out must say why)"
            )
        reason = _expect(table["reason"], str, source, f"{key}.reason")
        if not reason.strip():
            raise ConfigError(f"{source}: {key}.reason is empty: say why the advisory is accepted")
        yield VulnerabilityIgnore(
            id=_expect(table["id"], str, source, f"{key}.id").strip(),
            reason=reason,
            expires=_date(table.get("expires"), source, f"{key}.expires"),
        )


def _date(value: Any, source: str, key: str) -> datetime.date | None:
    if value is None:
        return None
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{source}: '{key}' must be a date such as 2026-06-30, got {value!r}")
