"""``pyproject.toml``: PEP 621 ``[project]`` dependencies, PEP 735 ``[dependency-groups]`` and
Poetry's ``[tool.poetry]`` dependency tables.

Every optional group and extra is audited (any of them may be installed). Poetry constraints are
translated to PEP 440: ``^1.2.3`` -> ``>=1.2.3,<2.0.0``, ``^0.2.3`` -> ``>=0.2.3,<0.3.0``,
``~1.2.3`` -> ``>=1.2.3,<1.3.0``, ``1.2.*`` -> ``==1.2.*``, a bare ``1.2.3`` -> ``==1.2.3``,
``a || b`` -> either specifier set.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from msgspec.structs import replace
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from modelshield.audit.inputs._common import (
    InputError,
    ParseOptions,
    locate,
    marker_applies,
    parse_requirement,
    read_text,
    requirement_dependency,
    url_dependency,
)
from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.core.findings import ErrorRecord, Location

_CLAUSE = re.compile(r"(\^|~=|~|===|==|!=|>=|<=|>|<|=)?\s*([^\s,^~=!<>][^\s,]*)")


def _release(text: str) -> list[int]:
    try:
        return list(Version(text).release)
    except InvalidVersion as e:
        raise InputError(f"invalid version {text!r} in a Poetry constraint") from e


def _poetry_clause(op: str, version: str) -> str:
    if version == "*":
        return ""
    if op == "^":
        parts = _release(version)
        first = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
        upper = [*parts[:first], parts[first] + 1]
        return f">={version},<{'.'.join(map(str, upper))}"
    if op == "~":
        parts = _release(version)
        upper = [parts[0], parts[1] + 1] if len(parts) >= 2 else [parts[0] + 1]
        return f">={version},<{'.'.join(map(str, upper))}"
    if op in ("", "="):
        return f"=={version}"
    return f"{op}{version}"


def poetry_constraint(text: str) -> tuple[str, ...]:
    """A Poetry version constraint as PEP 440 specifier sets (any of which may hold)."""
    out = []
    for alternative in text.split("||"):
        clauses = [
            _poetry_clause(m.group(1) or "", m.group(2)) for m in _CLAUSE.finditer(alternative)
        ]
        spec = ",".join(c for c in clauses if c)
        try:
            SpecifierSet(spec)
        except InvalidSpecifier as e:
            raise InputError(f"cannot translate Poetry constraint {text!r}: {e}") from e
        out.append(spec)
    return tuple(out) or ("",)


class _Collector:
    def __init__(self, shown: str, text: str, options: ParseOptions) -> None:
        self.shown, self.text, self.options = shown, text, options
        self.deps: list[Dependency] = []
        self.errors: list[ErrorRecord] = []
        self.skipped_by_marker = 0

    def loc(self, needle: str) -> tuple[Location, int | None]:
        line, offset = locate(self.text, needle)
        return Location(self.shown, (), offset), line

    def error(self, message: str, needle: str = "") -> None:
        loc, line = self.loc(needle) if needle else (Location(self.shown), None)
        where = f"{self.shown}:{line}" if line else self.shown
        self.errors.append(ErrorRecord(loc, f"{where}: {message}", stage="audit-parse"))

    def pep508(self, items: Any, group: str, extra: str = "") -> None:
        if not isinstance(items, list):
            self.error(f"{group} must be a list of requirement strings")
            return
        for item in items:
            if isinstance(item, Mapping) and "include-group" in item:
                continue  # PEP 735: the included group is audited on its own
            if not isinstance(item, str):
                self.error(f"{group}: {item!r} is not a requirement string")
                continue
            loc, line = self.loc(item)
            try:
                req = parse_requirement(item, line)
            except InputError as e:
                self.error(f"{group}: {e}", item)
                continue
            if not marker_applies(req.marker, self.options.environment, extra):
                self.skipped_by_marker += 1
                continue
            dep = requirement_dependency(req, loc, line)
            self.deps.append(_grouped(dep, group))

    def poetry(self, table: Any, group: str) -> None:
        if not isinstance(table, Mapping):
            if table is not None:
                self.error(f"{group} must be a table")
            return
        for name, value in table.items():
            if canonicalize_name(str(name)) == "python":
                continue  # the interpreter constraint, not a distribution
            entries = value if isinstance(value, list) else [value]
            for entry in entries:
                try:
                    dep = self._poetry_entry(str(name), entry, group)
                except InputError as e:
                    self.error(f"{group}.{name}: {e}", str(name))
                    continue
                if dep is not None:
                    self.deps.append(dep)

    def _poetry_entry(self, name: str, entry: Any, group: str) -> Dependency | None:
        loc, line = self.loc(name)
        if isinstance(entry, str):
            entry = {"version": entry}
        if not isinstance(entry, Mapping):
            raise InputError(f"unsupported dependency value {entry!r}")
        markers = entry.get("markers")
        if isinstance(markers, str) and not marker_applies(markers, self.options.environment):
            self.skipped_by_marker += 1
            return None
        for key in ("git", "path", "url"):
            if isinstance(entry.get(key), str):
                url = str(entry[key])
                if key == "git" and not url.startswith("git+"):
                    url = "git+" + url  # Poetry writes plain URLs under `git`
                return _grouped(url_dependency(url, name, loc, line, "declared"), group)
        version = entry.get("version", "*")
        if not isinstance(version, str):
            raise InputError(f"version {version!r} is not a string")
        specs = poetry_constraint(version)
        pin = _single_pin(specs)
        extras = entry.get("extras") or []
        return _grouped(
            Dependency(
                name=name,
                canonical=canonicalize_name(name),
                location=loc,
                version=pin,
                specifiers=() if pin is not None else specs,
                extras=tuple(str(e) for e in extras) if isinstance(extras, list) else (),
                line=line,
            ),
            group,
        )


def _single_pin(specs: tuple[str, ...]) -> str | None:
    if (
        len(specs) == 1
        and specs[0].startswith("==")
        and "," not in specs[0]
        and "*" not in specs[0]
    ):
        return specs[0][2:]
    return None


def _grouped(dep: Dependency, group: str) -> Dependency:
    return replace(dep, evidence={**dep.evidence, "group": group}) if group else dep


def _tables(data: Mapping[str, Any], *keys: str) -> Any:
    node: Any = data
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def _items(node: Any) -> Iterable[tuple[str, Any]]:
    return node.items() if isinstance(node, Mapping) else ()


def parse_pyproject(path: Path, shown: str, options: ParseOptions) -> ParsedInput:
    """Read the dependency tables of a ``pyproject.toml``."""
    try:
        text, size = read_text(path, options.limits)
        data = tomllib.loads(text)
    except InputError as e:
        return _failed(shown, str(e))
    except tomllib.TOMLDecodeError as e:
        return _failed(shown, f"not valid TOML: {e}")
    c = _Collector(shown, text, options)
    project = _tables(data, "project")
    if isinstance(project, Mapping):
        if "dependencies" in project:
            c.pep508(project["dependencies"], "")
        for extra, items in _items(project.get("optional-dependencies")):
            c.pep508(items, f"optional:{extra}", extra)
    for group, items in _items(_tables(data, "dependency-groups")):
        c.pep508(items, f"group:{group}")
    poetry = _tables(data, "tool", "poetry")
    if isinstance(poetry, Mapping):
        c.poetry(poetry.get("dependencies"), "")
        c.poetry(poetry.get("dev-dependencies"), "dev")
        for group, table in _items(poetry.get("group")):
            c.poetry(_tables(table, "dependencies"), f"group:{group}")
    metadata = {"dependencies": str(len(c.deps))}
    if c.skipped_by_marker:
        metadata["skipped_by_marker"] = str(c.skipped_by_marker)
    return ParsedInput(
        path=shown,
        kind=InputKind.PYPROJECT,
        dependencies=tuple(c.deps),
        errors=tuple(c.errors),
        size=size,
        metadata=metadata,
    )


def _failed(shown: str, message: str) -> ParsedInput:
    return ParsedInput(
        path=shown,
        kind=InputKind.PYPROJECT,
        errors=(ErrorRecord(Location(shown), f"{shown}: {message}", stage="audit-parse"),),
    )
