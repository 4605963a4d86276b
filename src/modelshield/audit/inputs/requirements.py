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
from pathlib import Path

from msgspec.structs import replace

from modelshield.audit.inputs._common import (
    InputError,
    ParseOptions,
    canonical_name,
    locate,
    marker_applies,
    parse_requirement,
    read_text,
    requirement_dependency,
    url_dependency,
)
from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.core.findings import ErrorRecord, Location

# Patterns are compiled (and cached by ``re``) on first use, and each is tried only on lines
# that hold what it needs ("#", "${", a leading "-"...): a pinned file compiles one of them.
_COMMENT = r"(^|\s+)#.*$"
_ENV_VAR = r"\$\{([A-Z0-9_]+)\}"
_LINE_OPTIONS = r"\s+(?=--?[A-Za-z])"
_INCLUDE = r"^(-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+|(?<=-r)|(?<=-c))(\S.*)$"
_EDITABLE = r"^(-e|--editable)(?:\s*=\s*|\s+)(\S.*)$"
_URL_START = r"^([a-z][a-z0-9+.-]*://|(git|hg|svn|bzr)\+)"
# ``name==version`` in the form pip-compile and `pip freeze` write: a valid PEP 508 name, and a
# version in PEP 440's normal form (release, pre, post, dev, local label). ``packaging`` would
# read such a line into exactly these two strings (no extras, no marker), so it is read here
# without importing packaging's requirement parser; anything else goes through packaging.
_SIMPLE_PIN = (
    r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)=="
    r"([0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?"
    r"(?:\+[a-z0-9]+(?:\.[a-z0-9]+)*)?)"
)


def _is_url(text: str) -> bool:
    """Whether ``text`` starts with a URL scheme or a VCS prefix (``git+``)."""
    return ("://" in text or "+" in text) and re.match(_URL_START, text, re.IGNORECASE) is not None


class _State:
    """What reading a file and its includes has gathered so far (a plain class: generating a
    dataclass costs more than reading a short requirements file)."""

    __slots__ = ("constraints", "cycles", "deps", "errors", "options", "seen", "size", "skipped")

    def __init__(self, options: ParseOptions) -> None:
        self.options = options
        self.deps: list[Dependency] = []
        self.constraints: dict[str, Dependency] = {}
        self.errors: list[ErrorRecord] = []
        self.seen: set[str] = set()
        self.skipped = 0  # requirements whose marker is false here
        self.cycles = 0
        self.size = 0


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
        stripped = (re.sub(_COMMENT, "", line) if "#" in line else line).rstrip()
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
    if "${" not in text:
        return text
    return re.sub(_ENV_VAR, lambda m: os.environ.get(m.group(1), m.group(0)), text)


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
    include = re.match(_INCLUDE, line) if line.startswith("-") else None
    if include:
        target = include.group(2).strip()
        if _is_url(target):
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
    editable = re.match(_EDITABLE, line) if line.startswith("-") else None
    if editable:
        target = editable.group(2).strip()
        dep = url_dependency(target, None, loc, number, "declared")
        if dep.unauditable is None:
            dep = replace(dep, version=None, unauditable=f"editable install of {target}")
        elif not _is_url(target):
            dep = replace(dep, unauditable=f"editable install of the local project {target}")
        if not constraint:
            state.deps.append(dep)
        return
    if line.startswith("-"):
        return  # index, find-links, --pre, --require-hashes...: no dependency on this line
    requirement = line
    if len(line.split(maxsplit=1)) > 1:  # per-requirement options follow whitespace
        requirement = re.split(_LINE_OPTIONS, line, maxsplit=1)[0].strip()
    if (
        _is_url(requirement)
        or requirement.startswith((".", "/"))
        or (requirement.endswith((".whl", ".tar.gz", ".zip")) and "@" not in requirement)
    ):
        if not constraint:
            state.deps.append(url_dependency(requirement, None, loc, number, "declared"))
        return
    simple = re.fullmatch(_SIMPLE_PIN, requirement, re.ASCII) if "==" in requirement else None
    if simple is not None:
        name, version = simple.groups()
        dep = Dependency(name, canonical_name(name), loc, version=version, line=number)
    else:
        req = parse_requirement(requirement, number)
        if not marker_applies(req.marker, state.options.environment):
            state.skipped += 1
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
    if state.skipped:
        metadata["skipped_by_marker"] = str(state.skipped)
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
