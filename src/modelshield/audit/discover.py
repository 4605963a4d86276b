"""Find the audit's inputs under the paths a user names, and parse each with its reader.

A named file is read by its name (``requirements-dev.txt``, ``uv.lock``, ``MLmodel``...); any
other ``.txt`` file named explicitly is a requirements file, and any other file named explicitly
is scanned as a model. Under a named directory, the known dependency files and model files (by
extension) are found recursively; hidden directories, virtual environments and
``site-packages`` are not entered, and links are not followed. N inputs give N results: a path
that matches nothing, or a directory with no input, is an error record.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from msgspec.structs import replace

if TYPE_CHECKING:
    from modelshield.audit.auditor import AuditOptions

from modelshield.audit.inputs._common import ParseOptions
from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.core.findings import ErrorRecord, FileResult, Location
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.scanner.discovery import Discovery, ExcludedLog, walk
from modelshield.scanner.registry import model_extension

_SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "dist-packages"})

_NAMES: tuple[tuple[str, InputKind], ...] = (
    ("pyproject.toml", InputKind.PYPROJECT),
    ("uv.lock", InputKind.UV_LOCK),
    ("poetry.lock", InputKind.POETRY_LOCK),
    ("Pipfile.lock", InputKind.PIPFILE_LOCK),
    ("pylock.toml", InputKind.PYLOCK),
    ("pylock.*.toml", InputKind.PYLOCK),
    ("environment.yml", InputKind.CONDA),
    ("environment.yaml", InputKind.CONDA),
    ("conda.yaml", InputKind.CONDA),
    ("conda.yml", InputKind.CONDA),
    ("MLmodel", InputKind.MLFLOW_MLMODEL),
    ("python_env.yaml", InputKind.MLFLOW_PYTHON_ENV),
    ("requirements*.txt", InputKind.REQUIREMENTS),
    ("*requirements.txt", InputKind.REQUIREMENTS),
    ("config.json", InputKind.TRANSFORMERS_CONFIG),
    ("metadata.json", InputKind.KERAS_METADATA),
)


# Every pattern above is a name or holds one "*" (no "?" or "[]"), so it is matched with string
# methods: compiling the fnmatch regexes cost more than auditing a small requirements file.
assert all(p.count("*") <= 1 and "?" not in p and "[" not in p for p, _ in _NAMES)


def _name_matches(name: str, pattern: str) -> bool:
    """``fnmatch.fnmatchcase`` for a pattern with at most one ``*``."""
    head, star, tail = pattern.partition("*")
    if not star:
        return name == pattern
    return len(name) >= len(head) + len(tail) and name.startswith(head) and name.endswith(tail)


def kind_of(name: str, explicit: bool) -> InputKind | None:
    """The input kind for a file name; None when the file is not an input."""
    for pattern, kind in _NAMES:
        if _name_matches(name, pattern):
            return kind
    if model_extension(name) is not None:  # model.pt, model.joblib.xz...
        return InputKind.MODEL
    suffix = Path(name).suffix.lower()
    if explicit:
        return InputKind.REQUIREMENTS if suffix == ".txt" else InputKind.MODEL
    return None


class Candidate(NamedTuple):
    """A file to read, with the kind its name gives."""

    path: Path
    """Where it is."""
    shown: str
    """How it appears in the report."""
    kind: InputKind
    """Its kind."""
    explicit: bool
    """Named by the user (not found under a directory)."""
    tree: str
    """The audited tree it belongs to: the directory named, or the named file's directory."""


_JSON_KEYS = {
    InputKind.TRANSFORMERS_CONFIG: ("transformers_version", "transformers"),
    InputKind.KERAS_METADATA: ("keras_version", "keras"),
}


def candidates(
    paths: Sequence[str | os.PathLike[str]],
    limits: Limits,
    discovery: Discovery | None = None,
    log: ExcludedLog | None = None,
) -> Iterator[Candidate | ParsedInput]:
    """Yield a Candidate per input file, or a ParsedInput holding the error for a bad path.

    Directories are searched as a scan searches them (``discovery``: the default skip list,
    ``exclude`` patterns, ``.gitignore``), hidden directories and installed packages left out
    too; what is left out is recorded in ``log``.
    """
    max_files = limits.max_members
    rules = replace(
        discovery or Discovery(),
        skip_hidden=True,
        skip_dirs=(discovery or Discovery()).skip_dirs | _SKIP_DIRS,
    )
    for raw in paths:
        shown = os.fspath(raw)
        p = Path(shown)
        try:
            mode = p.stat().st_mode
        except OSError as e:
            yield _error(shown, "no such file or directory" if not p.exists() else str(e.strerror))
            continue
        if stat.S_ISREG(mode):
            kind = kind_of(p.name, explicit=True)
            yield Candidate(p, shown, kind or InputKind.MODEL, True, str(p.parent))
            continue
        if not stat.S_ISDIR(mode):
            yield _error(shown, _NOT_REGULAR)
            continue
        count = 0
        for found, problem in walk(shown, rules, log, empty_is_a_problem=False):
            if problem is not None:
                count += 1
                yield _error(found, problem)
                continue
            full = Path(found)
            kind = kind_of(full.name, explicit=False)
            if kind is None:
                continue
            try:
                mode = full.lstat().st_mode
            except OSError:
                continue  # removed while listed
            if stat.S_ISLNK(mode):
                continue  # links are not followed
            if not stat.S_ISREG(mode):
                count += 1
                yield _error(str(full), _NOT_REGULAR)
                continue
            if kind in _JSON_KEYS:
                from modelshield.audit.inputs.implied import json_version

                if json_version(full, _JSON_KEYS[kind][0], limits) is None:
                    continue  # a config.json of something else: not an input
            count += 1
            if count > max_files:
                yield _error(
                    shown,
                    f"more than {max_files} input files (limits.max_members); "
                    "name the files to audit",
                )
                return
            yield Candidate(full, str(full), kind, False, shown)
        if count == 0:
            yield _error(
                shown,
                "no dependency file (requirements*.txt, pyproject.toml, lock files, conda or "
                "MLflow files) and no model file found",
            )


_NOT_REGULAR = "not a regular file (a FIFO, socket or device); not read"


def _error(shown: str, message: str) -> ParsedInput:
    return ParsedInput(
        path=shown,
        kind=InputKind.UNKNOWN,
        errors=(ErrorRecord(Location(shown), f"{shown}: {message}", stage="audit-parse"),),
    )


Parser = Callable[[Path, str, ParseOptions], ParsedInput]


_PARSERS: dict[InputKind, tuple[str, str]] = {
    InputKind.REQUIREMENTS: ("requirements", "parse_requirements"),
    InputKind.PYPROJECT: ("pyproject", "parse_pyproject"),
    InputKind.CONDA: ("conda", "parse_conda"),
    InputKind.MLFLOW_MLMODEL: ("mlflow", "parse_mlmodel"),
    InputKind.MLFLOW_PYTHON_ENV: ("mlflow", "parse_python_env"),
}
_LOCKS = (InputKind.UV_LOCK, InputKind.POETRY_LOCK, InputKind.PIPFILE_LOCK, InputKind.PYLOCK)


def parser_for(kind: InputKind) -> Parser | None:
    """The reader of a manifest kind (models and metadata files are handled by the caller).

    Reader modules are imported on first use, so that auditing one requirements file does not
    load the TOML, YAML and lock-file readers.
    """
    import importlib

    if kind in _LOCKS:
        from modelshield.audit.inputs.locks import parse_lock

        return lambda path, shown, options: parse_lock(path, shown, kind, options)
    entry = _PARSERS.get(kind)
    if entry is None:
        return None
    module = importlib.import_module(f"modelshield.audit.inputs.{entry[0]}")
    parser: Parser = getattr(module, entry[1])
    return parser


class _Fallback:
    """``importlib.metadata.packages_distributions()``, computed once and only when needed."""

    def __init__(self) -> None:
        self._value: dict[str, list[str]] | None = None

    def get(self) -> dict[str, list[str]]:
        if self._value is None:
            import importlib.metadata

            self._value = dict(importlib.metadata.packages_distributions())
        return self._value


def _model_input(
    c: Candidate,
    options: ParseOptions,
    policy: Policy,
    fb: _Fallback,
    scanned: Mapping[str, FileResult],
) -> ParsedInput | None:
    from modelshield.audit.inputs import implied

    result = scanned.get(os.path.normpath(c.path))
    if result is None:
        from modelshield.scanner.engine import scan_file

        result = scan_file(str(c.path), policy)
    extra: dict[str, str] = {}
    suffix = c.path.suffix.lower()
    if suffix == ".keras" and "keras_version" not in result.metadata:
        extra = implied.keras_metadata(c.path, options.limits)
    elif suffix == ".onnx" and "onnx_producer_name" not in result.metadata:
        extra = implied.onnx_producer(c.path)
    if extra:
        result = replace(result, metadata={**result.metadata, **extra})
    parsed = implied.parsed_model(result)
    if "unmapped_modules" in parsed.metadata:
        parsed = implied.parsed_model(result, fb.get())
    errors = tuple(replace(e, message=f"model scan: {e.message}") for e in result.errors)
    read = not (result.gaps or result.skipped)  # a file not read says nothing of its kind
    if c.explicit and read and result.format in ("unknown", "empty") and not parsed.dependencies:
        errors += (
            ErrorRecord(
                Location(c.shown),
                f"{c.shown}: not a recognised dependency file, and not a model file that "
                "implies dependencies",
                stage="audit-parse",
            ),
        )
    return replace(parsed, path=c.shown, errors=parsed.errors + errors)


def _metadata_input(c: Candidate, options: ParseOptions) -> ParsedInput | None:
    from modelshield.audit.inputs import implied

    key, dist = _JSON_KEYS[c.kind]
    version = implied.json_version(c.path, key, options.limits)
    if version is None:
        return _error(c.shown, f"no '{key}' string in this JSON file") if c.explicit else None
    dep = Dependency(
        name=dist,
        canonical=dist,
        location=Location(c.shown),
        version=version,
        origin="model-implied",
        evidence={"version_source": key},
    )
    return ParsedInput(
        path=c.shown, kind=c.kind, dependencies=(dep,), metadata={"dependencies": "1"}
    )


def parse_options(policy: Policy) -> ParseOptions:
    """How the policy says inputs are read: its limits and its ``[audit]`` settings."""
    from modelshield.audit.inputs.markers import Target

    settings = policy.audit
    return ParseOptions(
        limits=policy.limits,
        target=Target.named(settings, None, None),
        allow_includes=settings.allow_includes,
        expand_env=frozenset(settings.expand_env),
    )


def audit_options(policy: Policy, ignore: Iterable[str] = ()) -> AuditOptions:
    """What the auditor checks under the policy: ``ignore`` and the database's age."""
    from modelshield.audit.auditor import AuditOptions
    from modelshield.audit.inputs.markers import Target

    target = Target.named(policy.audit, None, None)
    age = policy.audit.max_database_age_days
    return AuditOptions(
        ignore=frozenset(ignore),
        max_database_age_days=age if age > 0 else None,
        target=target.describe() if target is not None else "",
    )


def collect_inputs(
    paths: Sequence[str | os.PathLike[str]],
    options: ParseOptions,
    policy: Policy,
    *,
    include_environment: bool = False,
    scanned: Iterable[FileResult] = (),
    discovery: Discovery | None = None,
    log: ExcludedLog | None = None,
) -> list[ParsedInput]:
    """Parse every input under ``paths`` (and the environment when asked), in order.

    ``scanned`` are scan results the caller already has (the BOM scans the model itself):
    a model file among them is not scanned again. ``discovery`` says what the search of a
    directory leaves out (default: the policy's ``exclude`` and ``gitignore``), recorded in
    ``log``.
    """
    out: list[ParsedInput] = []
    fb = _Fallback()
    known = {os.path.normpath(r.path): r for r in scanned}
    if discovery is None:
        discovery = Discovery.from_policy(policy)
    for item in candidates(paths, options.limits, discovery, log):
        if isinstance(item, ParsedInput):
            out.append(item)
            continue
        parsed: ParsedInput | None
        if item.kind is InputKind.MODEL:
            parsed = _model_input(item, options, policy, fb, known)
        elif item.kind in (InputKind.TRANSFORMERS_CONFIG, InputKind.KERAS_METADATA):
            parsed = _metadata_input(item, options)
        else:
            parser = parser_for(item.kind)
            own = options if options.tree is not None else replace(options, tree=item.tree)
            parsed = parser(item.path, item.shown, own) if parser is not None else None
        if parsed is not None:
            out.append(parsed)
    if include_environment:
        from modelshield.audit.inputs.environment import parse_environment

        out.append(parse_environment(options=options))
    return out
