"""``pyproject.toml``: PEP 621 ``[project]`` dependencies, PEP 735 ``[dependency-groups]`` and
Poetry's ``[tool.poetry]`` dependency tables.

Every optional group and extra is audited (any of them may be installed). Poetry constraints are
translated to PEP 440: ``^1.2.3`` -> ``>=1.2.3,<2.0.0``, ``^0.2.3`` -> ``>=0.2.3,<0.3.0``,
``~1.2.3`` -> ``>=1.2.3,<1.3.0``, ``1.2.*`` -> ``==1.2.*``, a bare ``1.2.3`` -> ``==1.2.3``,
``a || b`` -> either specifier set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from msgspec.structs import replace
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from modelshield.audit.inputs._common import (
    InputBuilder,
    InputError,
    ParseOptions,
    TextIndex,
    failed,
    load_document,
    parse_requirement,
    read_text,
    requirement_dependency,
    shown,
    url_dependency,
)
from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.core.findings import Location

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
    def __init__(self, builder: InputBuilder, text: str) -> None:
        self.builder = builder
        self.index = TextIndex(text)

    def loc(self, needle: str) -> tuple[Location, int | None]:
        line, offset = self.index.find(needle)
        return Location(self.builder.shown, (), offset), line

    def error(self, message: str, needle: str = "") -> None:
        line, offset = self.index.find(needle) if needle else (None, None)
        self.builder.error(message, line=line, offset=offset)

    def pep508(self, items: Any, group: str, extra: str | None = None) -> None:
        if not isinstance(items, list):
            self.error(f"{group or 'project.dependencies'} must be a list of requirement strings")
            return
        for item in items:
            if self.builder.full:
                return
            if isinstance(item, Mapping) and set(item) == {"include-group"}:
                continue  # PEP 735: the included group is audited on its own
            if not isinstance(item, str):
                self.error(f"{group or 'dependencies'}: {shown(item)} is not a requirement string")
                continue
            loc, line = self.loc(item)
            try:
                req = parse_requirement(item, line)
            except InputError as e:
                self.builder.error(f"{group}: {e}" if group else str(e), line=line)
                continue
            dep = requirement_dependency(req, loc, line)
            self.builder.add(_grouped(dep, group), req.marker, [extra] if extra else None)

    def poetry(self, table: Any, group: str) -> None:
        if not isinstance(table, Mapping):
            if table is not None:
                self.error(f"{group or 'tool.poetry.dependencies'} must be a table")
            return
        for name, value in table.items():
            if self.builder.full:
                return
            if canonicalize_name(str(name)) == "python":
                continue  # the interpreter constraint, not a distribution
            entries = value if isinstance(value, list) else [value]
            for entry in entries:
                try:
                    self._poetry_entry(str(name), entry, group)
                except InputError as e:
                    self.error(f"{group or 'tool.poetry.dependencies'}.{name}: {e}", str(name))

    def _poetry_entry(self, name: str, entry: Any, group: str) -> None:
        loc, line = self.loc(name)
        if isinstance(entry, str):
            entry = {"version": entry}
        if not isinstance(entry, Mapping):
            raise InputError(f"unsupported dependency value {shown(entry)}")
        markers = entry.get("markers")
        if markers is not None and not isinstance(markers, str):
            raise InputError(f"markers {shown(markers)} is not a string")
        for key in ("git", "path", "url"):
            if isinstance(entry.get(key), str):
                url = str(entry[key])
                if key == "git" and not url.startswith("git+"):
                    url = "git+" + url  # Poetry writes plain URLs under `git`
                dep = url_dependency(url, name, loc, line, "declared")
                self.builder.add(_grouped(dep, group), markers)
                return
        version = entry.get("version", "*")
        if not isinstance(version, str):
            raise InputError(f"version {shown(version)} is not a string")
        specs = poetry_constraint(version)
        pin = _single_pin(specs)
        extras = entry.get("extras") or []
        dep = Dependency(
            name=name,
            canonical=canonicalize_name(name),
            location=loc,
            version=pin,
            specifiers=() if pin is not None else specs,
            extras=tuple(str(e) for e in extras) if isinstance(extras, list) else (),
            line=line,
        )
        self.builder.add(_grouped(dep, group), markers)


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


def _table(c: _Collector, node: Any, what: str) -> Mapping[str, Any] | None:
    """``node`` when it is a table; an error (and None) when it is something else."""
    if node is None or isinstance(node, Mapping):
        return node
    c.error(f"{what} must be a table, not {type(node).__name__}")
    return None


def _items(c: _Collector, node: Any, what: str) -> Iterable[tuple[str, Any]]:
    table = _table(c, node, what)
    return table.items() if table is not None else ()


def parse_pyproject(path: Path, shown_path: str, options: ParseOptions) -> ParsedInput:
    """Read the dependency tables of a ``pyproject.toml``."""
    try:
        text, size = read_text(path, options.limits)
        data = load_document(text, "toml")
    except InputError as e:
        return failed(shown_path, InputKind.PYPROJECT, str(e))
    builder = InputBuilder(shown_path, InputKind.PYPROJECT, options)
    builder.size = size
    c = _Collector(builder, text)
    root = _table(c, data, "the document") or {}
    project = _table(c, root.get("project"), "[project]")
    if project is not None:
        if "dependencies" in project:
            c.pep508(project["dependencies"], "")
        for extra, items in _items(c, project.get("optional-dependencies"), "optional-deps"):
            c.pep508(items, f"optional:{extra}", extra)
    for group, items in _items(c, root.get("dependency-groups"), "[dependency-groups]"):
        c.pep508(items, f"group:{group}")
    tool = _table(c, root.get("tool"), "[tool]") or {}
    poetry = _table(c, tool.get("poetry"), "[tool.poetry]")
    if poetry is not None:
        c.poetry(poetry.get("dependencies"), "")
        c.poetry(poetry.get("dev-dependencies"), "dev")
        for group, table in _items(c, poetry.get("group"), "[tool.poetry.group]"):
            group_table = _table(c, table, f"[tool.poetry.group.{group}]")
            if group_table is not None:
                c.poetry(group_table.get("dependencies"), f"group:{group}")
    return builder.result()
