"""What every input reader shares: opening files safely, decoding text as the consumer does,
collecting dependencies within bounds, and turning PEP 508 requirements into
:class:`~modelshield.audit.inputs.dependency.Dependency` values.

Every file is opened without blocking and only when it is a regular file: a FIFO named
``requirements.txt`` in an audited folder is an error record, never a hang. Everything an
input yields passes through an :class:`InputBuilder`, which bounds the dependencies
(``limits.max_input_entries``: past it the input is not fully analysed), the error records and
the text they quote, and applies the target's markers the same way for every format.

``packaging``'s requirement, marker and file-name parsers are imported on first use: together
they take longer to import than a pinned requirements file takes to audit, and such a file
(``name==version`` lines) needs none of them.
"""

from __future__ import annotations

import codecs
import functools
import re
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from msgspec import Struct, field
from msgspec.structs import replace

from modelshield.audit import safeio
from modelshield.audit.caps import MAX_ERRORS_PER_INPUT, ErrorCap
from modelshield.audit.inputs.dependency import (
    Artifact,
    Dependency,
    Exclusion,
    InputKind,
    ParsedInput,
)
from modelshield.audit.inputs.markers import MarkerEvaluator, Target
from modelshield.core.findings import ErrorRecord, Gap, Location
from modelshield.core.limits import Limits

if TYPE_CHECKING:
    from packaging.markers import Marker
    from packaging.requirements import Requirement

_NAME_SEPARATORS = re.compile(r"[-_.]+")
MAX_QUOTED = 60
"""Characters of an input's own text an error message quotes at most: an include can name any
file, and reports are often published."""
MAX_MESSAGE = 400
"""Characters of one error message at most (a path, a reason and a short quote)."""


def canonical_name(name: str) -> str:
    """A distribution name normalised as PEP 503 defines it (``Foo_Bar.baz`` -> ``foo-bar-baz``).

    The same result as ``packaging.utils.canonicalize_name``, without importing that module.
    """
    return _NAME_SEPARATORS.sub("-", name).lower()


_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxstring = MAX_QUOTED
_REPR.maxother = MAX_QUOTED
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4


def shown(value: Any) -> str:
    """A short ``repr`` of a value read from an input, for messages: bounded in depth and
    length whatever the value (a nested or self-referencing YAML structure included)."""
    if isinstance(value, str):
        return repr(value if len(value) <= MAX_QUOTED else value[: MAX_QUOTED - 3] + "...")
    return _REPR.repr(value)


def one_line(message: str) -> str:
    """A message on one line (parser errors often span several), bounded in length."""
    text = " ".join(message.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class InputError(ValueError):
    """An input cannot be read or parsed; becomes an error record naming the file."""

    def __init__(self, message: str, line: int | None = None) -> None:
        """Say what is wrong and, when known, on which line."""
        super().__init__(one_line(message))
        self.line = line


class ParseOptions(Struct, frozen=True):
    """Settings every reader receives."""

    limits: Limits = field(default_factory=Limits)
    """Bounds (file size, include depth, dependencies per input)."""
    target: Target | None = None
    """The environment markers are evaluated for; None: no marker is evaluated and every
    dependency is audited."""
    tree: str | None = None
    """The audited tree: requirements includes (``-r``, ``-c``) must resolve inside it. None:
    the directory of the file being read."""
    allow_includes: tuple[str, ...] = ()
    """More directories (or files) includes may come from, named by the user."""
    expand_env: frozenset[str] = frozenset()
    """Environment variables a requirements file may expand with ``${NAME}`` (none unless the
    user names them: their values would appear in reports)."""


# ---- opening files --------------------------------------------------------------------------


def open_regular(path: Path | str) -> tuple[IO[bytes], int]:
    """Open a regular file for reading, never blocking; its handle and size.

    See :mod:`modelshield.audit.safeio`. Raises InputError.
    """
    try:
        return safeio.open_regular(path)
    except safeio.NotRegularFile as e:
        raise InputError("not a regular file (a FIFO, socket or device); not read") from e
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}") from e


def read_bytes(path: Path | str, cap: int, limit_name: str = "max_document_bytes") -> bytes:
    """The whole file, at most ``cap`` bytes (``limit_name`` is named when it is larger)."""
    fh, size = open_regular(path)
    with fh:
        if size > cap:
            raise InputError(f"larger than {cap} bytes (limits.{limit_name}); not read")
        try:
            data = fh.read(cap + 1)
        except OSError as e:
            raise InputError(f"cannot read: {e.strerror or e}") from e
    if len(data) > cap:
        raise InputError(f"larger than {cap} bytes (limits.{limit_name}); not read")
    return data


# pip's own list, in pip's order (so a UTF-32-LE mark reads as UTF-16, as pip reads it).
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF32, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
)
_CODING = re.compile(rb"^#.*coding[:=]\s*([-\w.]+)")


def decode(data: bytes, *, declarations: bool = False) -> tuple[str, str, int]:
    """``(text, encoding, bytes of the byte order mark)``, decoded as pip decodes requirements
    files: a byte order mark (UTF-8, UTF-16 or UTF-32: what PowerShell's ``pip freeze >``
    writes) names the encoding; with ``declarations``, so does a ``# -*- coding: ... -*-``
    comment on one of the first two lines; else UTF-8. Raises InputError."""
    found = next(((bom, name) for bom, name in _BOMS if data.startswith(bom)), None)
    if found is not None:
        body, skip, encoding = data[len(found[0]) :], len(found[0]), found[1]
    else:
        body, skip, encoding = data, 0, "utf-8"
        if declarations:
            for line in data.split(b"\n", 2)[:2]:
                m = _CODING.match(line)
                if m is not None:
                    encoding = m.group(1).decode("ascii")
                    break
    try:
        codecs.lookup(encoding)
        return body.decode(encoding), encoding, skip
    except LookupError as e:
        raise InputError(f"unknown text encoding {shown(encoding)}") from e
    except UnicodeDecodeError as e:
        raise InputError(f"not {encoding.upper()} text: {e.reason} at byte {e.start + skip}") from e


def read_text(path: Path, limits: Limits) -> tuple[str, int]:
    """A structured manifest's text and size; raises InputError when unreadable, too large or
    not text. The bound is ``limits.max_manifest_bytes``: a parsed document takes many times
    its size in memory."""
    data = read_bytes(path, limits.max_manifest_bytes, "max_manifest_bytes")
    text, _, _ = decode(data)
    return text, len(data)


# ---- finding text in a document -------------------------------------------------------------


class TextIndex:
    """Line numbers and byte offsets of strings in a document, found in one forward pass.

    Readers look up the entries of a parsed document (package names, requirement strings) in
    the text, in document order: each search starts where the previous one ended, so finding
    them all costs one pass over the text. A string that is not found after that point is
    searched once more from the start, while those searches have scanned less than
    :data:`SCAN_BUDGET` times the text; past that it gets no position (positions are for
    people, never needed for a verdict).
    """

    SCAN_BUDGET = 4
    """Searches from the start scan at most this many times the text's length in all."""

    def __init__(self, text: str) -> None:
        """Index ``text`` (nothing is computed before the first search)."""
        self.text = text
        self._ascii = text.isascii()
        self._cursor = 0
        self._budget = self.SCAN_BUDGET * len(text)
        self._line_at = (0, 1)  # (index, line number there)
        self._byte_at = (0, 0)  # (index, byte offset there)

    def find(self, needle: str) -> tuple[int | None, int | None]:
        """``(line, byte offset)`` of the next occurrence of ``needle``, or ``(None, None)``."""
        if not needle:
            return None, None
        index = self.text.find(needle, self._cursor)
        if index < 0 and self._cursor and self._budget > 0:
            self._budget -= self._cursor
            index = self.text.find(needle, 0, self._cursor)
        if index < 0:
            return None, None
        self._cursor = index + len(needle)
        return self.line(index), self.offset(index)

    def seek(self, index: int) -> None:
        """Search from ``index`` on (where the reader knows the next entry starts)."""
        self._cursor = max(0, min(index, len(self.text)))

    def line(self, index: int) -> int:
        """The 1-based line number at ``index``."""
        at, number = self._line_at
        if index >= at:
            number += self.text.count("\n", at, index)
        else:
            number = 1 + self.text.count("\n", 0, index)
        self._line_at = (index, number)
        return number

    def offset(self, index: int) -> int:
        """The byte offset of ``index`` in the UTF-8 encoded text."""
        if self._ascii:
            return index
        at, offset = self._byte_at
        if index >= at:
            offset += len(self.text[at:index].encode("utf-8", "surrogatepass"))
        else:
            offset = len(self.text[:index].encode("utf-8", "surrogatepass"))
        self._byte_at = (index, offset)
        return offset


# ---- collecting what an input declares ------------------------------------------------------


class InputBuilder:
    """What one input declares, collected within the limits.

    Entries past ``limits.max_input_entries`` (dependencies, or requirement lines when the
    reader counts lines with :meth:`entry`) are not read: the input gets a gap
    (``AUDIT-INPUT-LIMIT``) and :attr:`full` tells the reader to stop. Past
    :data:`~modelshield.audit.caps.MAX_ERRORS_PER_INPUT` errors the reader stops too (the
    input already fails the run). Error records are on one line. With a target, a dependency
    whose marker is false for it is kept as an :class:`Exclusion`; without one, the marker is
    kept in the dependency's evidence.
    """

    def __init__(self, shown: str, kind: InputKind, options: ParseOptions) -> None:
        """Collect for the input ``shown`` of ``kind``."""
        self.shown, self.kind, self.options = shown, kind, options
        self.dependencies: list[Dependency] = []
        self.excluded: list[Exclusion] = []
        self.errors = ErrorCap()
        self.metadata: dict[str, str] = {}
        self.size = 0
        self.per_line = False
        """Whether the reader counts entries itself (:meth:`entry`, once per line)."""
        self._entries = 0
        self._over = False
        self._skipped: dict[str, int] = {}
        target = options.target
        self._markers = MarkerEvaluator(target) if target is not None else None

    def error(
        self,
        message: str,
        *,
        line: int | None = None,
        offset: int | None = None,
        path: str | None = None,
    ) -> None:
        """Record an error in this input (or in the included file ``path``)."""
        where = path or self.shown
        prefix = f"{where}:{line}" if line else where
        self.errors.add(
            ErrorRecord(
                Location(where, (), offset), one_line(f"{prefix}: {message}"), "audit-parse"
            )
        )

    def skip(self, why: str) -> None:
        """Count an entry that is deliberately not a dependency (``skipped_<why>``)."""
        self._skipped[why] = self._skipped.get(why, 0) + 1

    @property
    def full(self) -> bool:
        """Whether the reader must stop: too many entries, or too many errors."""
        return self._over or len(self.errors) > MAX_ERRORS_PER_INPUT

    def entry(self) -> bool:
        """Count one entry (a line, a package); False once past ``limits.max_input_entries``
        (the entry is then not to be read)."""
        if self._entries >= self.options.limits.max_input_entries:
            self._over = True
            return False
        self._entries += 1
        return True

    def _room(self) -> bool:
        return not self._over if self.per_line else self.entry()

    def add(
        self, dep: Dependency, marker: Marker | str | None = None, extras: list[str] | None = None
    ) -> bool:
        """Keep a dependency declared under ``marker`` (requested with ``extras``, when known).

        Returns False once the input is full (the dependency was not kept).
        """
        if not self._room():
            return False
        text = str(marker) if marker is not None else ""
        if text and self._markers is not None and self._markers.evaluate(text, extras) is False:
            self.exclude(dep, text)
            return True
        if text:
            dep = _with_evidence(dep, marker=text)
        self.dependencies.append(dep)
        return True

    def exclude(self, dep: Dependency, marker: str) -> None:
        """Record a dependency the target's markers leave out."""
        self.excluded.append(
            Exclusion(
                dependency=dep.display(),
                canonical=dep.canonical,
                location=dep.location,
                marker=marker,
                line=dep.line,
            )
        )

    def applies(self, marker: Marker | str | None, extras: list[str] | None = None) -> bool:
        """Whether a marker may hold for the target (always, without a target)."""
        if not marker or self._markers is None:
            return True
        return self._markers.evaluate(marker, extras) is not False

    def result(self) -> ParsedInput:
        """The parsed input: dependencies, exclusions, bounded errors, the limit's gap."""
        metadata = {"dependencies": str(len(self.dependencies)), **self.metadata}
        if self.excluded:
            metadata["excluded_by_marker"] = str(len(self.excluded))
        metadata.update({f"skipped_{k}": str(v) for k, v in sorted(self._skipped.items())})
        gaps: tuple[Gap, ...] = ()
        if self._over:
            from modelshield.audit.rules import INPUT_LIMIT

            limit = self.options.limits.max_input_entries
            gaps = (
                Gap(
                    INPUT_LIMIT.id,
                    Location(self.shown),
                    f"{self.shown} holds more than {limit} entries "
                    "(limits.max_input_entries); the rest was not read or audited.",
                ),
            )
        return ParsedInput(
            path=self.shown,
            kind=self.kind,
            dependencies=tuple(self.dependencies),
            errors=self.errors.records(self.shown),
            size=self.size,
            metadata=metadata,
            excluded=tuple(self.excluded),
            gaps=gaps,
        )


def _with_evidence(dep: Dependency, **facts: str) -> Dependency:
    return replace(dep, evidence={**dep.evidence, **facts})


def failed(shown: str, kind: InputKind, message: str) -> ParsedInput:
    """An input that could not be read at all: one error record naming it."""
    return ParsedInput(
        path=shown,
        kind=kind,
        errors=(ErrorRecord(Location(shown), one_line(f"{shown}: {message}"), "audit-parse"),),
    )


# ---- requirements ---------------------------------------------------------------------------


def version_from_filename(url_or_path: str) -> tuple[str, str] | None:
    """``(name, version)`` from a wheel or sdist file name at the end of a URL or path."""
    import urllib.parse

    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    path = urllib.parse.urlsplit(url_or_path).path if "://" in url_or_path else url_or_path
    filename = urllib.parse.unquote(path.rstrip("/").rsplit("/", 1)[-1])
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return str(name), str(version)
        if filename.endswith((".tar.gz", ".zip")):
            sname, sversion = parse_sdist_filename(filename)
            return str(sname), str(sversion)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


_VCS = r"^(git|hg|svn|bzr)\+"


def url_dependency(
    url: str, name: str | None, location: Location, line: int | None, origin: str
) -> Dependency:
    """A dependency installed from a URL or path: auditable when the file name has a version."""
    vcs = re.match(_VCS, url, re.IGNORECASE) is not None
    parsed = version_from_filename(url) if not vcs else None
    if parsed is not None:
        file_name, version = parsed
        shown_name = name or file_name
        return Dependency(
            name=shown_name,
            canonical=canonical_name(shown_name),
            location=location,
            version=version,
            line=line,
            origin=origin,
            evidence={"url": url},
        )
    egg = re.search(r"[#&]egg=([A-Za-z0-9._-]+)", url)
    shown_name = name or (egg.group(1) if egg else url)
    kind = "a version-control URL" if vcs else "a URL or local path"
    return Dependency(
        name=shown_name,
        canonical=canonical_name(shown_name) if (name or egg) else shown_name,
        location=location,
        unauditable=f"installed from {kind} ({url}), not a PyPI release",
        line=line,
        origin=origin,
        evidence={"url": url},
    )


def requirement_dependency(
    req: Requirement, location: Location, line: int | None, origin: str = "declared"
) -> Dependency:
    """A PEP 508 requirement as a dependency: pinned for ``==X``/``===X``, else a range."""
    if req.url:
        return url_dependency(req.url, req.name, location, line, origin)
    clauses = list(req.specifier)
    version = None
    if len(clauses) == 1 and (
        clauses[0].operator == "==="
        or (clauses[0].operator == "==" and "*" not in clauses[0].version)
    ):
        version = clauses[0].version
    return Dependency(
        name=req.name,
        canonical=canonical_name(req.name),
        location=location,
        version=version,
        specifiers=() if version is not None else (str(req.specifier),),
        extras=tuple(sorted(req.extras)),
        line=line,
        origin=origin,
    )


def parse_requirement(text: str, line: int | None = None) -> Requirement:
    """Parse a PEP 508 string; raises InputError with the line on failure (quoting at most
    :data:`MAX_QUOTED` characters of it)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(text)
    except InvalidRequirement as e:
        reason = str(e).split("\n", 1)[0]
        raise InputError(f"invalid requirement {shown(text)}: {reason}", line) from e


def pinned(
    name: str, version: str, location: Location, origin: str, line: int | None = None
) -> Dependency:
    """A dependency at one exact version (locked, installed, recorded)."""
    return Dependency(
        name=name,
        canonical=canonical_name(name),
        location=location,
        version=version,
        line=line,
        origin=origin,
    )


_HASH = re.compile(r"^([A-Za-z0-9_-]+)[:=]([0-9A-Fa-f]{16,})$")


def artifact(name: str, hash_text: Any, url: str = "") -> Artifact | None:
    """An :class:`Artifact` from ``sha256:hex`` (or ``sha256=hex``); None when malformed."""
    if not isinstance(hash_text, str):
        return None
    m = _HASH.match(hash_text.strip())
    if m is None:
        return None
    return Artifact(name=name, algorithm=m[1].lower(), digest=m[2].lower(), url=url)


# ---- structured documents -------------------------------------------------------------------


@functools.cache
def _yaml_loader() -> type:
    """A YAML loader that builds only str/list/dict and applies merge keys (``<<``).

    Every scalar stays text (``3.10`` is not the float 3.1), and no tag constructs an object.
    Merge keys are applied as PyYAML's ``safe_load`` (MLflow) and ruamel (conda) apply them,
    on the constructed mappings: a chain of merges costs the keys it merges, never the
    exponential node lists that flattening nodes costs.
    """
    import yaml

    base: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)

    class TextLoader(base):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            if not isinstance(node, yaml.MappingNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "expected a mapping", node.start_mark
                )
            mapping: dict[Any, Any] = {}
            merged: list[Any] = []
            for key_node, value_node in node.value:
                if (
                    isinstance(key_node, yaml.ScalarNode)
                    and key_node.value == "<<"
                    and not key_node.style  # plain ("<<" quoted is an ordinary key)
                ):
                    merged.append(value_node)
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    hash(key)
                except TypeError as e:
                    raise yaml.constructor.ConstructorError(
                        None, None, "a mapping key is not a scalar", key_node.start_mark
                    ) from e
                mapping[key] = self.construct_object(value_node, deep=deep)
            for value_node in merged:
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in sources:
                    if not isinstance(source, yaml.MappingNode):
                        raise yaml.constructor.ConstructorError(
                            None, None, "a merge key (<<) needs mappings", source.start_mark
                        )
                    for key, value in self.construct_object(source, deep=True).items():
                        mapping.setdefault(key, value)
            return mapping

    return TextLoader


def load_yaml_text(text: str) -> object:
    """YAML with every scalar kept as text (``3.10`` stays ``"3.10"``); raises InputError."""
    import yaml

    try:
        # The loader builds only str/list/dict: no tag constructs an object.
        return yaml.load(text, Loader=_yaml_loader())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InputError(f"not valid YAML: {e.problem or e.context or 'malformed'}{where}") from e
    except (yaml.YAMLError, RecursionError) as e:
        raise InputError(f"not valid YAML: {type(e).__name__}") from e


def load_document(text: str, syntax: str) -> object:
    """A TOML, JSON or YAML document; raises InputError with a one-line reason."""
    if syntax == "yaml":
        return load_yaml_text(text)
    try:
        if syntax == "toml":
            import tomllib

            return tomllib.loads(text)
        import json

        return json.loads(text)
    except RecursionError as e:
        raise InputError(f"not valid {syntax.upper()}: nested too deeply") from e
    except ValueError as e:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise InputError(f"not valid {syntax.upper()}: {e}") from e


def expect_mapping(value: Any, what: str) -> Mapping[str, Any]:
    """``value`` when it is a mapping; raises InputError naming ``what`` otherwise."""
    if not isinstance(value, Mapping):
        raise InputError(f"{what} must be a table/mapping, not {type(value).__name__}")
    return value
