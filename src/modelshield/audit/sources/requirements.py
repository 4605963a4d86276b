"""pip requirements files (``requirements*.txt``), as pip reads them.

Supported: ``-r``/``--requirement`` and ``-c``/``--constraint`` includes relative to the including
file (with cycle protection and a depth bound of ``limits.max_nested_depth``), line continuations,
comments, ``${VAR}`` expansion, per-requirement options (``--hash``...), environment markers
(evaluated against the running interpreter: a requirement whose marker is false is not
installed, so it is not audited), extras, ``name @ URL`` and bare URL/path lines (auditable when
the file name is a wheel or sdist with a version, otherwise reported as unauditable), and
``-e``/``--editable`` lines (unauditable: a local or VCS checkout).

A constraint file does not add dependencies; it pins the version of those that are required.
Remote includes (``-r https://...``) are not fetched: they are reported as errors, never skipped
silently.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from modelshield.audit.interface import Dependency, InputKind, ParsedInput
from modelshield.audit.sources._common import (
    InputError,
    ParseOptions,
    locate,
    marker_applies,
    parse_requirement,
    read_text,
    requirement_dependency,
    url_dependency,
)
from modelshield.core.findings import ErrorRecord, Location

_COMMENT = re.compile(r"(^|\s+)#.*$")
_ENV_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")
_LINE_OPTIONS = re.compile(r"\s+(?=--?[A-Za-z])")
_INCLUDE = re.compile(r"^(-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+|(?<=-r)|(?<=-c))(\S.*)$")
_EDITABLE = re.compile(r"^(-e|--editable)(?:\s*=\s*|\s+)(\S.*)$")
_URL_START = re.compile(r"^([a-z][a-z0-9+.-]*://|(git|hg|svn|bzr)\+)", re.IGNORECASE)


@dataclass
class _State:
    options: ParseOptions
    deps: list[Dependency] = field(default_factory=list)
    constraints: dict[str, Dependency] = field(default_factory=dict)
    errors: list[ErrorRecord] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    skipped_by_marker: int = 0
    cycles: int = 0
    size: int = 0


def logical_lines(text: str) -> list[tuple[int, int, str]]:
    """``(first line number, byte offset, text)`` per logical line, continuations joined."""
    out: list[tuple[int, int, str]] = []
    buf: list[str] = []
    start_line, start_off, offset = 0, 0, 0
    for number, raw in enumerate(text.splitlines(keepends=True), start=1):
        line = raw.rstrip("\r\n")
        if not buf:
            start_line, start_off = number, offset
        offset += len(raw.encode("utf-8"))
        # A comment needs whitespace (or the line start) before '#': '#egg=' in URLs is kept.
        stripped = _COMMENT.sub("", line).rstrip()
        if stripped.endswith("\\"):
            buf.append(stripped[:-1])
            continue
        buf.append(stripped)
        joined = "".join(buf).strip()
        buf = []
        if joined:
            out.append((start_line, start_off, joined))
    if buf and "".join(buf).strip():
        out.append((start_line, start_off, "".join(buf).strip()))
    return out


def _expand(text: str) -> str:
    return _ENV_VAR.sub(lambda m: os.environ.get(m.group(1), m.group(0)), text)


def _parse_file(path: Path, shown: str, state: _State, depth: int, constraint: bool) -> None:
    key = str(path.resolve())
    if key in state.seen:
        state.cycles += 1  # pip would loop; an include cycle adds nothing new
        return
    state.seen.add(key)
    text, size = read_text(path, state.options.limits)
    state.size += size
    for number, offset, line in logical_lines(text):
        loc = Location(shown, (), offset)
        try:
            _parse_line(_expand(line), path, shown, loc, number, state, depth, constraint)
        except InputError as e:
            state.errors.append(
                ErrorRecord(loc, f"{shown}:{e.line or number}: {e}", stage="audit-parse")
            )


def _parse_line(
    line: str,
    path: Path,
    shown: str,
    loc: Location,
    number: int,
    state: _State,
    depth: int,
    constraint: bool,
) -> None:
    include = _INCLUDE.match(line)
    if include:
        target = include.group(2).strip()
        if _URL_START.match(target):
            raise InputError(f"remote include {target!r} is not fetched; audit that file directly")
        if depth + 1 > state.options.limits.max_nested_depth:
            raise InputError(
                f"includes nested deeper than limits.max_nested_depth "
                f"({state.options.limits.max_nested_depth})"
            )
        child = (path.parent / target) if not Path(target).is_absolute() else Path(target)
        # Report the include relative to how the user named the including file.
        child_shown = os.path.normpath(str(Path(shown).parent / target))
        if not child.is_file():
            raise InputError(f"included file {target!r} not found")
        is_constraint = include.group(1) in ("-c", "--constraint") or constraint
        try:
            _parse_file(child, child_shown, state, depth + 1, is_constraint)
        except InputError as e:
            raise InputError(f"in included file {child_shown}: {e}") from e
        return
    editable = _EDITABLE.match(line)
    if editable:
        target = editable.group(2).strip()
        dep = url_dependency(target, None, loc, number, "declared")
        if dep.unauditable is None:
            dep = replace(dep, version=None, unauditable=f"editable install of {target}")
        elif not _URL_START.match(target):
            dep = replace(dep, unauditable=f"editable install of the local project {target}")
        if not constraint:
            state.deps.append(dep)
        return
    if line.startswith("-"):
        return  # index, find-links, --pre, --require-hashes...: no dependency on this line
    requirement = _LINE_OPTIONS.split(line, maxsplit=1)[0].strip()
    if (
        _URL_START.match(requirement)
        or requirement.startswith((".", "/"))
        or (requirement.endswith((".whl", ".tar.gz", ".zip")) and "@" not in requirement)
    ):
        if not constraint:
            state.deps.append(url_dependency(requirement, None, loc, number, "declared"))
        return
    req = parse_requirement(requirement, number)
    if not marker_applies(req.marker, state.options.environment):
        state.skipped_by_marker += 1
        return
    dep = requirement_dependency(req, loc, number)
    if constraint:
        if dep.version is not None:
            state.constraints.setdefault(dep.canonical, dep)
        return
    state.deps.append(dep)


def _apply_constraints(state: _State) -> list[Dependency]:
    out = []
    for dep in state.deps:
        pin = state.constraints.get(dep.canonical)
        if dep.version is None and dep.unauditable is None and pin is not None:
            where = f"{pin.location.path}:{pin.line}"
            dep = replace(
                dep,
                version=pin.version,
                specifiers=(),
                evidence={**dep.evidence, "constrained_by": where},
            )
        out.append(dep)
    return out


def parse_requirements(path: Path, shown: str, options: ParseOptions) -> ParsedInput:
    """Read a requirements file and everything it includes."""
    state = _State(options)
    try:
        _parse_file(path, shown, state, 0, False)
    except InputError as e:
        state.errors.append(ErrorRecord(Location(shown), f"{shown}: {e}", stage="audit-parse"))
    metadata = {"dependencies": str(len(state.deps))}
    if state.skipped_by_marker:
        metadata["skipped_by_marker"] = str(state.skipped_by_marker)
    if state.cycles:
        metadata["include_cycles"] = str(state.cycles)
    return ParsedInput(
        path=shown,
        kind=InputKind.REQUIREMENTS,
        dependencies=tuple(_apply_constraints(state)),
        errors=tuple(state.errors),
        size=state.size,
        metadata=metadata,
    )


def parse_requirement_lines(
    lines: list[str], base: Path, shown: str, options: ParseOptions, text: str = ""
) -> tuple[list[Dependency], list[ErrorRecord]]:
    """Requirement lines embedded in another file (conda's ``pip:``, MLflow's python_env).

    ``text`` is the embedding file's content, to report each line where it is in that file.
    """
    state = _State(options)
    state.seen.add(str(base.resolve()))
    searched_from = 0
    for line in lines:
        number, offset = locate(text[searched_from:], line) if text else (None, None)
        if number is not None and offset is not None:
            number += text.count("\n", 0, searched_from)
            offset += len(text[:searched_from].encode("utf-8"))
            searched_from = text.index(line, searched_from) + len(line)
        loc = Location(shown, (), offset)
        try:
            _parse_line(_expand(line.strip()), base, shown, loc, number or 0, state, 0, False)
        except InputError as e:
            where = f"{shown}:{number}" if number else shown
            state.errors.append(ErrorRecord(loc, f"{where}: {e}", stage="audit-parse"))
    return _apply_constraints(state), state.errors
