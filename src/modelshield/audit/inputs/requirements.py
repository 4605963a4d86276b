"""pip requirements files (``requirements*.txt``), as pip reads them.

Read like pip: the text is decoded as pip decodes it (a UTF-8, UTF-16 or UTF-32 byte order
mark, what PowerShell's ``pip freeze >`` writes, or a ``coding:`` comment; else UTF-8), split
into lines as ``str.splitlines`` splits them, continuation lines joined and comments removed
in pip's order. Supported: ``-r``/``--requirement`` and ``-c``/``--constraint`` includes
relative to the including file (with cycle protection and a depth bound of
``limits.max_nested_depth``), per-requirement options (``--hash`` digests are kept),
environment markers (kept as evidence; evaluated only for a target the user names), extras,
``name @ URL`` and bare URL/path lines (auditable when the file name is a wheel or sdist with a
version, otherwise reported as unauditable), and ``-e``/``--editable`` lines (unauditable: a
local or VCS checkout).

A requirements file is untrusted input, and its report is often published, so unlike pip:

- an include must stay inside the audited tree (the directory named, or the named file's
  directory), or inside a directory the user allows (``--allow-include``); ``-r /etc/passwd``
  or ``-r ../../secrets.txt`` is an error and the file is never read;
- ``${VAR}`` is expanded only for the variables the user names (``--expand-env VAR``): a value
  from the environment may be a secret, and it would appear in reports; any other ``${VAR}`` is
  an error;
- an error message quotes at most the requirement it failed to parse, shortened.

The file is read line by line: memory stays proportional to the longest line, not the number
of lines, and reading stops at ``limits.max_input_entries``. A constraint file does not add
dependencies; it pins the version of those that are required. Remote includes (``-r
https://...``) are not fetched: they are reported as errors, never skipped silently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from msgspec.structs import replace

from modelshield.audit.inputs._common import (
    InputBuilder,
    InputError,
    ParseOptions,
    TextIndex,
    artifact,
    canonical_name,
    decode,
    parse_requirement,
    read_bytes,
    requirement_dependency,
    shown,
    url_dependency,
)
from modelshield.audit.inputs.dependency import Artifact, Dependency, InputKind, ParsedInput
from modelshield.core.findings import Location

# Patterns are compiled (and cached by ``re``) on first use, and each is tried only on lines
# that hold what it needs ("#", "${", a leading "-"...): a pinned file compiles one of them.
_COMMENT = r"(^|\s+)#.*$"  # pip's COMMENT_RE
_ENV_VAR = r"\$\{([A-Z0-9_]+)\}"  # pip's ENV_VAR_RE
_LINE_OPTIONS = r"\s+(?=--?[A-Za-z])"
_URL_START = r"^([a-z][a-z0-9+.-]*://|(git|hg|svn|bzr)\+)"
# The line boundaries of str.splitlines, which pip splits requirements files with.
_LINE_BREAK = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# ``name==version`` in the form pip-compile and `pip freeze` write: a valid PEP 508 name, and a
# version in PEP 440's normal form (release, pre, post, dev, local label). ``packaging`` would
# read such a line into exactly these two strings (no extras, no marker), so it is read here
# without importing packaging's requirement parser; anything else goes through packaging.
_SIMPLE_PIN = (
    r"([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)=="
    r"([0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?"
    r"(?:\+[a-z0-9]+(?:\.[a-z0-9]+)*)?)"
)
MAX_LINE = 100_000
"""Characters of one logical line (continuations joined) read at most; a longer line is an
error (a requirement with a few hundred ``--hash`` options is a few tens of thousands)."""


def _is_url(text: str) -> bool:
    """Whether ``text`` starts with a URL scheme or a VCS prefix (``git+``)."""
    return ("://" in text or "+" in text) and re.match(_URL_START, text, re.IGNORECASE) is not None


class _State:
    """What reading a file and its includes has gathered so far (a plain class: generating a
    dataclass costs more than reading a short requirements file)."""

    __slots__ = ("builder", "constrained", "constraints", "cycles", "options", "roots", "seen")

    def __init__(self, builder: InputBuilder, roots: Sequence[str]) -> None:
        self.builder = builder
        self.options = builder.options
        self.roots = roots
        self.constraints: dict[str, Dependency] = {}
        self.constrained = 0
        self.seen: set[str] = set()
        self.cycles = 0


_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK = re.compile("\r\n|[" + _BREAKS + "]")
# What pip ignores between requirement lines: whitespace (line breaks included) and comments
# (a "#" at the start of a line or after whitespace, to the end of the line), skipped in one
# regex match however many lines it spans.
_IGNORED = re.compile("(?:\\s|#[^" + _BREAKS + "]*)*+")  # possessive: no backtracking stack


class _Position:
    """Line number and byte offset of a character index, advanced forward only."""

    __slots__ = ("codec", "index", "number", "offset", "plain", "text")

    def __init__(self, text: str, encoding: str, start: int) -> None:
        self.text, self.index, self.number, self.offset = text, 0, 1, start
        self.plain = encoding.replace("_", "-").lower() in ("utf-8", "utf8") and text.isascii()
        # Offsets in a UTF-16/32 file count that encoding's bytes (its BOM is already skipped).
        self.codec = {"utf-16": "utf-16-le", "utf-32": "utf-32-le"}.get(encoding, encoding)

    def advance(self, index: int) -> None:
        """Move to ``index`` (a line start), counting the line breaks passed."""
        text, at = self.text, self.index
        breaks = sum(text.count(c, at, index) for c in _BREAKS) - text.count("\r\n", at, index)
        self.number += breaks
        piece = text[at:index]
        self.offset += len(piece) if self.plain else len(piece.encode(self.codec, "surrogatepass"))
        self.index = index


def _line_at(text: str, index: int) -> tuple[str, int]:
    """The physical line starting at ``index``, and where the next one starts."""
    m = _BREAK.search(text, index)
    if m is None:
        return text[index:], len(text)
    return text[index : m.start()], m.end()


def logical_lines(
    text: str, encoding: str = "utf-8", start: int = 0
) -> Iterator[tuple[int, int, str]]:
    """``(first line number, byte offset, text)`` per logical line, as pip's ``join_lines``
    and ``ignore_comments`` make them from ``str.splitlines``: a line ending in a backslash
    continues on the next one (unless it is a comment), and comments (``#`` at the start or
    after whitespace) go. Blank lines, comment lines and option lines that declare nothing are
    skipped without a Python step per line, so a file of millions of them costs a few regex
    passes. Byte offsets count the file's encoding, after ``start`` bytes of byte order mark.

    Raises InputError for a logical line longer than :data:`MAX_LINE` characters.
    """
    pos = _Position(text, encoding, start)
    index, size = 0, len(text)
    while index < size:
        content = _IGNORED.match(text, index).end()  # type: ignore[union-attr]
        if content >= size:
            return
        line_start = max(index, max(text.rfind(c, index, content) for c in _BREAKS) + 1)
        pos.advance(line_start)
        number, offset = pos.number, pos.offset
        line, index = _line_at(text, line_start)
        parts, length = [], 0
        while line.endswith("\\") and re.match(_COMMENT, line) is None:
            parts.append(line.strip("\\"))
            length += len(line)
            if length > MAX_LINE:
                raise InputError(f"a line longer than {MAX_LINE} characters", number)
            if index >= size:
                line = ""
                break
            line, index = _line_at(text, index)
            if re.match(_COMMENT, line) is not None:
                line = " " + line  # pip's join_lines: the comment is matched once joined
                break
        joined = "".join((*parts, line)) if parts else line
        if len(joined) > MAX_LINE:
            raise InputError(f"a line longer than {MAX_LINE} characters", number)
        stripped = (re.sub(_COMMENT, "", joined) if "#" in joined else joined).strip()
        if stripped:
            yield number, offset, stripped


def _expand(text: str, allowed: frozenset[str]) -> str:
    """``${NAME}`` replaced by its value for the names the user allows; any other is an error
    (its value could be a secret, and reports quote requirements)."""
    if "${" not in text:
        return text

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in allowed:
            raise InputError(
                f"uses the environment variable ${{{name}}}, which is expanded only when the "
                f"user names it (--expand-env {name}): its value would appear in reports"
            )
        return os.environ.get(name) or m.group(0)  # pip leaves an unset variable as written

    return re.sub(_ENV_VAR, value, text)


def _inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _parse_file(path: Path, shown_path: str, state: _State, depth: int, constraint: bool) -> None:
    key = os.path.realpath(path)
    if key in state.seen:
        state.cycles += 1  # pip would loop; an include cycle adds nothing new
        return
    state.seen.add(key)
    data = read_bytes(path, state.options.limits.max_document_bytes)
    state.builder.size += len(data)
    text, encoding, skip = decode(data, declarations=True)
    del data  # the text is what is read from here on
    try:
        for number, offset, line in logical_lines(text, encoding, skip):
            if state.builder.full or not state.builder.entry():
                return
            loc = Location(shown_path, (), offset)
            try:
                expanded = _expand(line, state.options.expand_env)
                _parse_line(expanded, path, shown_path, loc, number, state, depth, constraint)
            except InputError as e:
                state.builder.error(str(e), line=e.line or number, offset=offset, path=shown_path)
    except InputError as e:
        state.builder.error(str(e), line=e.line, path=shown_path)


def _include(
    target: str, path: Path, shown_path: str, state: _State, depth: int, constraint: bool
) -> None:
    if _is_url(target):
        raise InputError(f"remote include {shown(target)} is not fetched; audit that file directly")
    limit = state.options.limits.max_nested_depth
    if depth + 1 > limit:
        raise InputError(f"includes nested deeper than limits.max_nested_depth ({limit})")
    child = (path.parent / target) if not Path(target).is_absolute() else Path(target)
    # Report the include relative to how the user named the including file.
    child_shown = os.path.normpath(str(Path(shown_path).parent / target))
    if not _inside(os.path.realpath(child), state.roots):
        raise InputError(
            f"include {shown(target)} is outside the audited tree ({state.roots[0]}); not "
            "read (allow its directory with --allow-include DIR)"
        )
    if not child.is_file():
        raise InputError(f"included file {shown(target)} not found")
    try:
        _parse_file(child, child_shown, state, depth + 1, constraint)
    except InputError as e:
        raise InputError(f"in included file {child_shown}: {e}") from e


_LONG_OPTIONS = (
    "--config-settings",
    "--constraint",
    "--editable",
    "--extra-index-url",
    "--find-links",
    "--global-option",
    "--hash",
    "--index-url",
    "--no-binary",
    "--no-index",
    "--only-binary",
    "--pre",
    "--prefer-binary",
    "--pypi-url",
    "--require-hashes",
    "--requirement",
    "--trusted-host",
    "--use-feature",
)
"""The long options pip accepts in requirements files (its ``req_file`` parser)."""
_SHORT_OPTIONS = {"-r": "--requirement", "-c": "--constraint", "-e": "--editable"}
_SHORT_WITH_VALUE = ("-r", "-c", "-e", "-i", "-f", "-C")
_FLAGS = ("--no-index", "--pre", "--prefer-binary", "--require-hashes")


def _options(text: str) -> list[tuple[str, str]]:
    """pip's reading of an option string: ``shlex`` words, long options by their unique prefix
    (optparse accepts ``--constr`` for ``--constraint``), short ones with their value attached
    or next, other words unused (as pip leaves them). ``(option, value)`` pairs; raises
    InputError where pip would fail."""
    import shlex

    try:
        words = shlex.split(text)
    except ValueError as e:
        raise InputError(f"cannot read the options: {e}") from e
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word.startswith("--"):
            name, eq, value = word.partition("=")
            found = [o for o in _LONG_OPTIONS if o == name] or [
                o for o in _LONG_OPTIONS if o.startswith(name)
            ]
            if len(found) != 1:
                what = "ambiguous" if found else "unknown"
                raise InputError(f"{what} option {shown(name)}")
            option = found[0]
            if option in _FLAGS:
                out.append((option, ""))
                continue
        elif word[:2] in _SHORT_WITH_VALUE:
            option, eq, value = _SHORT_OPTIONS.get(word[:2], word[:2]), "", word[2:]
            eq = "=" if value else ""
        elif word.startswith("-") and word != "-":
            raise InputError(f"unknown option {shown(word[:2])}")
        else:
            continue  # a word that is no option: pip's option parser leaves it unused too
        if not eq:
            if i >= len(words):
                raise InputError(f"option {option} needs a value")
            value, i = words[i], i + 1
        out.append((option, value))
    return out


def _editable(target: str, loc: Location, number: int) -> Dependency:
    dep = url_dependency(target, None, loc, number, "declared")
    if dep.unauditable is None:
        return replace(dep, version=None, unauditable=f"editable install of {target}")
    if not _is_url(target):
        return replace(dep, unauditable=f"editable install of the local project {target}")
    return dep


def _parse_line(
    line: str,
    path: Path,
    shown_path: str,
    loc: Location,
    number: int,
    state: _State,
    depth: int,
    constraint: bool,
) -> None:
    if line.startswith("-"):
        options = _options(line)
        values = dict(reversed(options))  # the first of each, as pip takes it
        if "--requirement" in values or "--constraint" in values:
            nested = "--requirement" not in values
            target = values["--requirement" if not nested else "--constraint"]
            _include(target, path, shown_path, state, depth, nested or constraint)
        elif "--editable" in values and not constraint:
            state.builder.add(_editable(values["--editable"], loc, number))
        return  # index, find-links, --pre, --require-hashes...: no dependency on this line
    requirement, options_text = line, ""
    if len(line.split(maxsplit=1)) > 1:  # per-requirement options follow whitespace
        split = re.search(_LINE_OPTIONS, line)
        if split is not None:
            requirement, options_text = line[: split.start()].strip(), line[split.end() :]
    hashes = [v for o, v in _options(options_text) if o == "--hash"] if options_text else []
    if (
        _is_url(requirement)
        or requirement.startswith((".", "/"))
        or (requirement.endswith((".whl", ".tar.gz", ".zip")) and "@" not in requirement)
    ):
        if not constraint:
            state.builder.add(url_dependency(requirement, None, loc, number, "declared"))
        return
    simple = re.fullmatch(_SIMPLE_PIN, requirement, re.ASCII) if "==" in requirement else None
    marker = None
    if simple is not None:
        name, version = simple.groups()
        dep = Dependency(name, canonical_name(name), loc, version=version, line=number)
    else:
        req = parse_requirement(requirement, number)
        marker = req.marker
        dep = requirement_dependency(req, loc, number)
    if hashes:
        found = [artifact("", h) for h in hashes]
        dep = replace(dep, artifacts=tuple(a for a in found if isinstance(a, Artifact)))
    if constraint:
        if dep.version is not None and state.builder.applies(marker):
            state.constraints.setdefault(dep.canonical, dep)
        return
    state.builder.add(dep, marker)


def _apply_constraints(state: _State, first: int = 0) -> None:
    """Pin the ranges declared from index ``first`` on to the versions constraints give."""
    deps = state.builder.dependencies
    for i in range(first, len(deps)):
        dep = deps[i]
        pin = state.constraints.get(dep.canonical)
        if dep.version is None and dep.unauditable is None and pin is not None:
            where = f"{pin.location.path}:{pin.line}"
            deps[i] = replace(
                dep,
                version=pin.version,
                specifiers=(),
                evidence={**dep.evidence, "constrained_by": where},
            )


def _roots(path: Path, options: ParseOptions) -> list[str]:
    """The directories includes may resolve into: the audited tree first, then those the user
    allows."""
    tree = options.tree if options.tree is not None else str(path.parent)
    return [os.path.realpath(tree), *(os.path.realpath(p) for p in options.allow_includes)]


def parse_requirements(path: Path, shown_path: str, options: ParseOptions) -> ParsedInput:
    """Read a requirements file and everything it includes."""
    builder = InputBuilder(shown_path, InputKind.REQUIREMENTS, options)
    builder.per_line = True  # every line counts, those that declare nothing included
    state = _State(builder, _roots(path, options))
    try:
        _parse_file(path, shown_path, state, 0, False)
    except InputError as e:
        builder.error(str(e))
    _apply_constraints(state)
    if state.cycles:
        builder.metadata["include_cycles"] = str(state.cycles)
    return builder.result()


def read_requirement_lines(
    builder: InputBuilder, lines: Sequence[str], base: Path, index: TextIndex | None = None
) -> None:
    """Requirement lines embedded in another file (conda's ``pip:``, MLflow's python_env),
    added to that file's ``builder``; ``index`` locates each line in the embedding file."""
    state = _State(builder, _roots(base, builder.options))
    state.seen.add(os.path.realpath(base))
    first = len(builder.dependencies)
    per_line, builder.per_line = builder.per_line, True  # every line counts, as in a file
    for line in lines:
        if builder.full or not builder.entry():
            break
        number, offset = index.find(line) if index is not None else (None, None)
        loc = Location(builder.shown, (), offset)
        try:
            expanded = _expand(line.strip(), builder.options.expand_env)
            _parse_line(expanded, base, builder.shown, loc, number or 0, state, 0, False)
        except InputError as e:
            builder.error(str(e), line=number, offset=offset)
    builder.per_line = per_line
    _apply_constraints(state, first)
