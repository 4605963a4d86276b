"""Lock files: ``uv.lock``, ``poetry.lock``, ``Pipfile.lock`` and PEP 751 ``pylock.toml``.

Locked packages carry exact versions, so each is audited as pinned. Packages from a registry
(PyPI or a private index), a URL or a local archive are audited by name and version; packages
from a VCS checkout or a local directory are reported as unauditable (their code is not a
release); the project's own root (uv's ``virtual``/``editable`` sources) is skipped. The wheel
and sdist digests a lock file records are kept (:class:`~modelshield.audit.inputs.dependency.
Artifact`), for the BOM.

Markers are treated as in every other input (:mod:`modelshield.audit.inputs.markers`): without
a target every locked package is audited. With one, a package is left out (and listed as
excluded) when the lock file shows the target does not install it: its own marker is false
(``Pipfile.lock``, ``pylock.toml``, Poetry's ``markers``, uv's ``resolution-markers``), or,
for uv and Poetry, every chain of dependencies that reaches it from the project passes a false
marker, as ``uv export`` would write it.

A file that is empty or lacks the table that makes it a lock file of its kind (``version`` in
``uv.lock``, ``[metadata]`` in ``poetry.lock``, ``_meta`` in ``Pipfile.lock``) is an error,
never an input with no dependency.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from msgspec.structs import replace
from packaging.utils import canonicalize_name

from modelshield.audit.inputs._common import (
    InputBuilder,
    InputError,
    ParseOptions,
    TextIndex,
    artifact,
    load_document,
    pinned,
    read_text,
    shown,
)
from modelshield.audit.inputs.dependency import Artifact, Dependency, InputKind, ParsedInput
from modelshield.audit.inputs.markers import MarkerEvaluator, reachable
from modelshield.core.findings import Location


class _Lock:
    """One lock file being read: its builder, its text (for lines) and its package tables."""

    def __init__(self, builder: InputBuilder, text: str, header: str) -> None:
        self.builder = builder
        self.index = TextIndex(text)
        self.evaluator = (
            MarkerEvaluator(builder.options.target) if builder.options.target is not None else None
        )
        # The i-th [[package]] table of the text is the i-th entry of the parsed array.
        self._headers = [m.start() for m in re.finditer(header, text, re.MULTILINE)]

    def where(self, name: str, position: int | None = None) -> tuple[Location, int | None]:
        """The location of package ``name`` (the ``position``-th table, when known)."""
        if position is not None and position < len(self._headers):
            self.index.seek(self._headers[position])
            line, offset = self.index.find(f'name = "{name}"')
        else:  # Pipfile.lock: "name": {...}
            line, offset = None, None
        if line is None:
            line, offset = self.index.find(f'"{name}"')
        return Location(self.builder.shown, (), offset), line

    def add(
        self,
        name: str,
        version: Any,
        position: int | None = None,
        artifacts: Iterable[Artifact] = (),
        excluded_by: str = "",
    ) -> None:
        loc, line = self.where(name, position)
        if not isinstance(version, str) or not version.strip():
            self.builder.error(
                f"package {shown(name)} has no version", line=line, offset=loc.offset
            )
            return
        dep = pinned(name, version.strip(), loc, "locked", line)
        if artifacts:
            dep = replace(dep, artifacts=tuple(artifacts))
        if excluded_by:
            self.builder.exclude(dep, excluded_by)
        else:
            self.builder.add(dep)

    def unauditable(self, name: str, why: str, position: int | None, excluded_by: str) -> None:
        loc, line = self.where(name, position)
        dep = Dependency(
            name=name,
            canonical=canonicalize_name(name),
            location=loc,
            unauditable=why,
            line=line,
            origin="locked",
        )
        if excluded_by:
            self.builder.exclude(dep, excluded_by)
        else:
            self.builder.add(dep)

    def value(self, marker: Any) -> bool | None:
        """A marker's value for the target: True without a target or marker."""
        if self.evaluator is None or not marker:
            return True
        if isinstance(marker, str):
            return self.evaluator.evaluate(marker)
        if isinstance(marker, Mapping):  # Poetry: one marker per dependency group
            values = [self.evaluator.evaluate(m) for m in marker.values() if isinstance(m, str)]
            return True if not values else _any_value(values)
        raise InputError(f"marker {shown(marker)} is not a string")


def _any_value(values: list[bool | None]) -> bool | None:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _packages(data: Mapping[str, Any], key: str, lock: _Lock) -> list[Mapping[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list):
        lock.builder.error(f"'{key}' must be an array of tables")
        return []
    out = []
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            out.append(item)
        else:
            lock.builder.error(f"a '{key}' entry without a name: {shown(item)}")
    return out


def _text(value: Any) -> str:
    """A string field, or ``""`` when it is missing or not a string."""
    return value if isinstance(value, str) else ""


def _list(value: Any) -> list[Any]:
    """An array field, or ``[]`` when it is missing or not an array."""
    return value if isinstance(value, list) else []


def _node(name: str, version: Any) -> str:
    return f"{canonicalize_name(name)}=={version}" if isinstance(version, str) else name


def _excluded_by(
    lock: _Lock,
    pkgs: list[Mapping[str, Any]],
    edges: list[tuple[str, str, str]],
    roots: Iterable[str],
    own: Callable[[Mapping[str, Any]], Any],
) -> list[str]:
    """For each package: ``""`` when the target may install it, else why it does not (its
    own false marker, or the false markers of every dependency edge that reaches it)."""
    if lock.evaluator is None:
        return [""] * len(pkgs)
    nodes = [_node(p["name"], p.get("version")) for p in pkgs]
    by_name: dict[str, list[str]] = {}
    for p, node in zip(pkgs, nodes, strict=True):
        by_name.setdefault(canonicalize_name(p["name"]), []).append(node)
    valued: list[tuple[str, str, bool | None]] = []
    into: dict[str, list[str]] = {}
    for parent, child, marker in edges:
        value = lock.value(marker) if marker else True
        for target in by_name.get(child, []) if "==" not in child else [child]:
            valued.append((parent, target, value))
            if marker and value is False:
                into.setdefault(target, []).append(marker)
    state = reachable(nodes, roots, valued)
    out = []
    for p, node in zip(pkgs, nodes, strict=True):
        marker = own(p)
        if marker and lock.value(marker) is False:
            out.append(
                marker if isinstance(marker, str) else " or ".join(map(str, marker.values()))
            )
        elif state.get(node) is False:
            out.append(" or ".join(sorted(set(into.get(node, ["(not reached)"])))[:3]))
        else:
            out.append("")
    return out


def _uv_edges(pkgs: list[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    edges = []
    for p in pkgs:
        parent = _node(p["name"], p.get("version"))
        lists: list[Any] = [p.get("dependencies")]
        for key in ("optional-dependencies", "dev-dependencies"):
            table = p.get(key)
            if isinstance(table, Mapping):
                lists.extend(table.values())
        for deps in lists:
            for d in deps if isinstance(deps, list) else []:
                if isinstance(d, Mapping) and isinstance(d.get("name"), str):
                    child = _node(d["name"], d.get("version"))
                    marker = d.get("marker")
                    edges.append((parent, child, marker if isinstance(marker, str) else ""))
    return edges


def _uv_artifacts(pkg: Mapping[str, Any]) -> list[Artifact]:
    files = [*_list(pkg.get("wheels"))]
    if isinstance(pkg.get("sdist"), Mapping):
        files.append(pkg["sdist"])
    out = []
    for f in files:
        if isinstance(f, Mapping):
            url = _text(f.get("url"))
            name = url.rsplit("/", 1)[-1] if url else _text(f.get("filename"))
            a = artifact(name, f.get("hash"), url)
            if a is not None:
                out.append(a)
    return out


def _uv_resolution(pkg: Mapping[str, Any]) -> Any:
    markers = pkg.get("resolution-markers")
    if isinstance(markers, list) and markers and all(isinstance(m, str) for m in markers):
        return " or ".join(f"({m})" for m in markers)
    return None


def _uv(data: Mapping[str, Any], lock: _Lock) -> None:
    if "version" not in data:
        raise InputError("not a uv lock file: it has no 'version' (an empty or foreign file?)")
    pkgs = _packages(data, "package", lock)
    roots = []
    for p in pkgs:
        source = p.get("source")
        if isinstance(source, Mapping) and ("virtual" in source or "editable" in source):
            roots.append(_node(p["name"], p.get("version")))
    excluded = _excluded_by(lock, pkgs, _uv_edges(pkgs), roots, _uv_resolution)
    for i, (pkg, why) in enumerate(zip(pkgs, excluded, strict=True)):
        if lock.builder.full:
            return
        name, source = pkg["name"], pkg.get("source")
        source = source if isinstance(source, Mapping) else {}
        if "virtual" in source or "editable" in source:
            lock.builder.skip("local_projects")
        elif "git" in source:
            lock.unauditable(name, f"locked to a git checkout ({source['git']})", i, why)
        elif "directory" in source:
            lock.unauditable(name, f"locked to a local directory ({source['directory']})", i, why)
        else:  # registry, url or path (an archive): the version is the release's
            lock.add(name, pkg.get("version"), i, _uv_artifacts(pkg), why)


def _poetry_edges(pkgs: list[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    edges: list[tuple[str, str, str]] = []
    for p in pkgs:
        parent = _node(p["name"], p.get("version"))
        table = p.get("dependencies")
        for name, spec in table.items() if isinstance(table, Mapping) else ():
            for entry in spec if isinstance(spec, list) else [spec]:
                marker = entry.get("markers") if isinstance(entry, Mapping) else None
                edges.append(
                    (
                        parent,
                        canonicalize_name(str(name)),
                        marker if isinstance(marker, str) else "",
                    )
                )
    return edges


def _poetry_artifacts(pkg: Mapping[str, Any], legacy: Mapping[str, Any]) -> list[Artifact]:
    files = pkg.get("files")
    if not isinstance(files, list):
        files = _list(legacy.get(pkg["name"]))
    out = []
    for f in files:
        if isinstance(f, Mapping):
            a = artifact(_text(f.get("file")), f.get("hash"))
            if a is not None:
                out.append(a)
    return out


def _poetry(data: Mapping[str, Any], lock: _Lock) -> None:
    metadata = data.get("metadata")
    if not isinstance(metadata, Mapping):
        raise InputError("not a Poetry lock file: it has no [metadata] table (an empty file?)")
    files = metadata.get("files")
    legacy: Mapping[str, Any] = files if isinstance(files, Mapping) else {}
    pkgs = _packages(data, "package", lock)
    edges = _poetry_edges(pkgs)
    required = {child for _, child, _ in edges}
    roots = [
        _node(p["name"], p.get("version"))
        for p in pkgs
        if canonicalize_name(p["name"]) not in required
    ]
    excluded = _excluded_by(lock, pkgs, edges, roots, lambda p: p.get("markers"))
    for i, (pkg, why) in enumerate(zip(pkgs, excluded, strict=True)):
        if lock.builder.full:
            return
        name, raw = pkg["name"], pkg.get("source")
        source: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        kind = source.get("type")
        if kind == "git":
            lock.unauditable(name, f"locked to a git checkout ({source.get('url')})", i, why)
        elif kind == "directory":
            lock.unauditable(name, f"locked to a local directory ({source.get('url')})", i, why)
        else:  # PyPI, a private index ("legacy"), a URL or a file archive
            lock.add(name, pkg.get("version"), i, _poetry_artifacts(pkg, legacy), why)


def _pipfile(data: Mapping[str, Any], lock: _Lock) -> None:
    if not isinstance(data.get("_meta"), Mapping):
        raise InputError("not a Pipfile.lock: it has no '_meta' object (an empty file?)")
    for section in ("default", "develop"):
        table = data.get(section, {})
        if not isinstance(table, Mapping):
            lock.builder.error(f"'{section}' must be an object")
            continue
        for name, entry in table.items():
            if lock.builder.full:
                return
            if not isinstance(entry, Mapping):
                lock.builder.error(f"entry {shown(name)} must be an object")
                continue
            marker = entry.get("markers")
            why = marker if isinstance(marker, str) and lock.value(marker) is False else ""
            for key in ("git", "hg", "svn", "bzr", "path", "file"):
                if isinstance(entry.get(key), str):
                    lock.unauditable(str(name), f"installed from {key} {entry[key]}", None, why)
                    break
            else:
                version = entry.get("version")
                hashes = [artifact("", h) for h in _list(entry.get("hashes"))]
                found = [a for a in hashes if a is not None]
                if isinstance(version, str) and version.startswith("=="):
                    lock.add(str(name), version[2:], None, found, why)
                else:
                    loc, line = lock.where(str(name))
                    lock.builder.error(
                        f"package {shown(name)} has no '==' version: {shown(version)}",
                        line=line,
                        offset=loc.offset,
                    )


def _pylock(data: Mapping[str, Any], lock: _Lock) -> None:
    from packaging.pylock import Pylock, PylockValidationError

    try:
        parsed = Pylock.from_dict(data)
    except (PylockValidationError, ValueError, TypeError) as e:
        raise InputError(f"not a valid pylock file: {e}") from e
    for i, pkg in enumerate(parsed.packages):
        if lock.builder.full:
            return
        name = str(pkg.name)
        marker = str(pkg.marker) if pkg.marker is not None else ""
        why = marker if marker and lock.value(marker) is False else ""
        if pkg.version is not None and pkg.vcs is None and pkg.directory is None:
            files: list[Any] = [*(pkg.wheels or ()), *([pkg.sdist] if pkg.sdist else [])]
            found = [
                Artifact(str(f.name or ""), alg.lower(), digest.lower(), str(f.url or ""))
                for f in files
                for alg, digest in sorted(f.hashes.items())
            ]
            lock.add(name, str(pkg.version), i, found, why)
        elif pkg.vcs is not None:
            lock.unauditable(name, f"locked to a {pkg.vcs.type} checkout ({pkg.vcs.url})", i, why)
        elif pkg.directory is not None:
            lock.unauditable(name, f"locked to a local directory ({pkg.directory.path})", i, why)
        else:
            lock.unauditable(name, "locked without a version", i, why)


_Reader = Callable[[Mapping[str, Any], _Lock], None]
_READERS: dict[InputKind, tuple[str, _Reader, str]] = {
    InputKind.UV_LOCK: ("toml", _uv, r"^\[\[package\]\]"),
    InputKind.POETRY_LOCK: ("toml", _poetry, r"^\[\[package\]\]"),
    InputKind.PIPFILE_LOCK: ("json", _pipfile, r"^$.^"),  # no tables to count
    InputKind.PYLOCK: ("toml", _pylock, r"^\[\[packages\]\]"),
}


def parse_lock(path: Path, shown_path: str, kind: InputKind, options: ParseOptions) -> ParsedInput:
    """Read one lock file of the given kind."""
    syntax, reader, header = _READERS[kind]
    builder = InputBuilder(shown_path, kind, options)
    try:
        text, builder.size = read_text(path, options.limits)
        data = load_document(text, syntax)
        if not isinstance(data, Mapping):  # only JSON can be something else
            raise InputError(f"a {path.name} must be a JSON object")
        reader(data, _Lock(builder, text, header))
    except InputError as e:
        builder.error(str(e))
    return builder.result()
