"""Lock files: ``uv.lock``, ``poetry.lock``, ``Pipfile.lock`` and PEP 751 ``pylock.toml``.

Locked packages carry exact versions, so each is audited as pinned. Packages from a registry
(PyPI or a private index), a URL or a local archive are audited by name and version; packages
from a VCS checkout or a local directory are reported as unauditable (their code is not a
release); the project's own root (uv's ``virtual``/``editable`` sources) is skipped. Markers
are evaluated against the running interpreter, as for requirements files.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from msgspec import Struct, field
from packaging.utils import canonicalize_name

from modelshield.audit.inputs._common import (
    InputError,
    ParseOptions,
    locate,
    marker_applies,
    pinned,
    read_text,
)
from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.core.findings import ErrorRecord, Location


class _Lock(Struct):
    shown: str
    text: str
    kind: InputKind
    options: ParseOptions
    deps: list[Dependency] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def where(self, name: str) -> tuple[Location, int | None]:
        line, offset = locate(self.text, f'name = "{name}"')
        if line is None:
            line, offset = locate(self.text, f'"{name}"')
        return Location(self.shown, (), offset), line

    def add(self, name: str, version: Any, origin: str = "locked") -> None:
        loc, line = self.where(name)
        if not isinstance(version, str) or not version.strip():
            self.error(f"package {name!r} has no version", name)
            return
        self.deps.append(pinned(name, version.strip(), loc, origin, line))

    def unauditable(self, name: str, why: str) -> None:
        loc, line = self.where(name)
        self.deps.append(
            Dependency(
                name=name,
                canonical=canonicalize_name(name),
                location=loc,
                unauditable=why,
                line=line,
                origin="locked",
            )
        )

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def error(self, message: str, needle: str = "") -> None:
        loc, line = self.where(needle) if needle else (Location(self.shown), None)
        where = f"{self.shown}:{line}" if line else self.shown
        self.errors.append(ErrorRecord(loc, f"{where}: {message}", stage="audit-parse"))

    def result(self, size: int) -> ParsedInput:
        metadata = {"dependencies": str(len(self.deps))}
        metadata.update({f"skipped_{k}": str(v) for k, v in sorted(self.skipped.items())})
        return ParsedInput(
            path=self.shown,
            kind=self.kind,
            dependencies=tuple(self.deps),
            errors=tuple(self.errors),
            size=size,
            metadata=metadata,
        )


def _packages(data: Any, key: str, lock: _Lock) -> list[Mapping[str, Any]]:
    items = data.get(key, []) if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        lock.error(f"'{key}' must be an array of tables")
        return []
    out = []
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            out.append(item)
        else:
            lock.error(f"a '{key}' entry without a name: {item!r}"[:200])
    return out


def _uv(data: Any, lock: _Lock) -> None:
    for pkg in _packages(data, "package", lock):
        name, source = pkg["name"], pkg.get("source")
        source = source if isinstance(source, Mapping) else {}
        if "virtual" in source or "editable" in source:
            lock.skip("local_projects")
        elif "git" in source:
            lock.unauditable(name, f"locked to a git checkout ({source['git']})")
        elif "directory" in source:
            lock.unauditable(name, f"locked to a local directory ({source['directory']})")
        else:  # registry, url or path (an archive): the version is the release's
            lock.add(name, pkg.get("version"))


def _poetry(data: Any, lock: _Lock) -> None:
    for pkg in _packages(data, "package", lock):
        name, raw = pkg["name"], pkg.get("source")
        source: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        kind = source.get("type")
        if kind == "git":
            lock.unauditable(name, f"locked to a git checkout ({source.get('url')})")
        elif kind == "directory":
            lock.unauditable(name, f"locked to a local directory ({source.get('url')})")
        else:  # PyPI, a private index ("legacy"), a URL or a file archive
            lock.add(name, pkg.get("version"))


def _pipfile(data: Any, lock: _Lock) -> None:
    if not isinstance(data, Mapping):
        lock.error("a Pipfile.lock must be a JSON object")
        return
    for section in ("default", "develop"):
        table = data.get(section, {})
        if not isinstance(table, Mapping):
            lock.error(f"'{section}' must be an object")
            continue
        for name, entry in table.items():
            if not isinstance(entry, Mapping):
                lock.error(f"entry {name!r} must be an object", str(name))
                continue
            if not marker_applies(entry.get("markers"), lock.options.environment):
                lock.skip("by_marker")
                continue
            for key in ("git", "hg", "svn", "bzr", "path", "file"):
                if isinstance(entry.get(key), str):
                    lock.unauditable(str(name), f"installed from {key} {entry[key]}")
                    break
            else:
                version = entry.get("version")
                if isinstance(version, str) and version.startswith("=="):
                    lock.add(str(name), version[2:])
                else:
                    lock.error(f"package {name!r} has no '==' version: {version!r}", str(name))


def _pylock(data: Any, lock: _Lock) -> None:
    from packaging.pylock import Pylock, PylockValidationError

    try:
        parsed = Pylock.from_dict(data)
    except PylockValidationError as e:
        lock.error(f"not a valid pylock file: {e}")
        return
    for pkg in parsed.packages:
        name = str(pkg.name)
        if pkg.marker is not None and not marker_applies(pkg.marker, lock.options.environment):
            lock.skip("by_marker")
        elif pkg.version is not None and pkg.vcs is None and pkg.directory is None:
            lock.add(name, str(pkg.version))
        elif pkg.vcs is not None:
            lock.unauditable(name, f"locked to a {pkg.vcs.type} checkout ({pkg.vcs.url})")
        elif pkg.directory is not None:
            lock.unauditable(name, f"locked to a local directory ({pkg.directory.path})")
        else:
            lock.unauditable(name, "locked without a version")


_Reader = Callable[[Any, _Lock], None]
_READERS: dict[InputKind, tuple[str, _Reader]] = {
    InputKind.UV_LOCK: ("toml", _uv),
    InputKind.POETRY_LOCK: ("toml", _poetry),
    InputKind.PIPFILE_LOCK: ("json", _pipfile),
    InputKind.PYLOCK: ("toml", _pylock),
}


def parse_lock(path: Path, shown: str, kind: InputKind, options: ParseOptions) -> ParsedInput:
    """Read one lock file of the given kind."""
    syntax, reader = _READERS[kind]
    lock = _Lock(shown, "", kind, options)
    size = 0
    try:
        lock.text, size = read_text(path, options.limits)
        data = tomllib.loads(lock.text) if syntax == "toml" else json.loads(lock.text)
    except InputError as e:
        lock.error(str(e))
        return lock.result(size)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as e:
        lock.error(f"not valid {syntax.upper()}: {e}")
        return lock.result(size)
    reader(data, lock)
    return lock.result(size)
