"""The offline vulnerability source: a directory or ZIP of OSV records, compiled into an index.

Accepted layouts, mixed freely under one path:

- the PyPA advisory database (``vulns/<package>/<ID>.yaml``);
- OSV's ecosystem exports (``PyPI/all.zip`` of ``<ID>.json``, as ``modelshield db update``
  downloads), zipped or unzipped;
- any tree of ``.json``/``.yaml``/``.yml`` files holding one record (or a list of records) each.

YAML is read with a loader that keeps every scalar as text (``CBaseLoader``, else ``BaseLoader``):
``safe_load`` would turn an unquoted ``3.10`` into the float 3.1.

Parsing 2,600 YAML files takes about two seconds, so the tree is compiled once into an SQLite
index keyed by normalised package name, stored in the cache directory and keyed by a signature
of the tree (every file's path, size and modification time): the next run reads only the rows
of the packages it audits. Files that cannot be read become *problems*, reported when they
concern an audited package; they never abort the audit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from modelshield.audit.advisory import AdvisoryFormatError, from_json, parse_advisory, to_json
from modelshield.audit.interface import (
    Advisory,
    AuditServiceError,
    DataProblem,
    PackageQuery,
    VulnerabilitySource,
)
from modelshield.core.limits import Limits

INDEX_SCHEMA = "4"
"""Bumped whenever the index layout or the advisory reader changes, forcing a rebuild."""

_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True)
class _Record:
    advisory: Advisory
    source: str


class DocumentError(ValueError):
    """An advisory file is not valid JSON or YAML."""


def _load_document(data: bytes, name: str) -> Any:
    if name.endswith(".json"):
        return json.loads(data)
    import yaml  # only needed to compile an index from YAML files

    try:
        # BaseLoader builds only str/list/dict: no object construction, every scalar stays text.
        return yaml.load(data, Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
    except yaml.YAMLError as e:
        raise DocumentError(str(e)) from e


def _package_hint(relpath: str) -> str:
    parts = relpath.replace("\\", "/").split("/")
    return canonicalize_name(parts[-2]) if len(parts) >= 2 else ""


class OfflineDatabase(VulnerabilitySource):
    """Advisories from a local OSV tree or ZIP, through a cached SQLite index."""

    name = "osv-db"

    def __init__(
        self,
        path: str | os.PathLike[str],
        cache_dir: Path | None = None,
        limits: Limits | None = None,
    ) -> None:
        """Open ``path``; the index is built (or reused) on first use."""
        self.path = Path(path)
        self.cache_dir = cache_dir
        self.limits = limits or Limits()
        self._conn: sqlite3.Connection | None = None
        self.index_path: Path | None = None
        """Where the index lives (None when it had to stay in memory)."""
        self.rebuilt = False
        """Whether this run compiled the index (False: a cached index was reused)."""

    # ---- reading the tree -----------------------------------------------------------------
    def _entries(self) -> list[tuple[str, int, int, str]]:
        """``(path relative to the database, size, mtime_ns, full path)`` of every candidate.

        This runs on every audit (it is the index's cache key), so the loop stays lean: one
        ``scandir`` per folder, one ``stat`` per file, one sort at the end.
        """
        if self.path.is_file():
            try:
                st = self.path.stat()
                return [(self.path.name, st.st_size, st.st_mtime_ns, str(self.path))]
            except OSError:
                return [(self.path.name, -1, -1, str(self.path))]
        if not self.path.is_dir():
            raise AuditServiceError(
                f"vulnerability database {self.path} does not exist",
                "Download one with `modelshield db update`, or pass --db DIR with OSV files.",
            )
        found: list[tuple[str, int, int, str]] = []
        suffixes = (*_SUFFIXES, ".zip")
        stack = [(str(self.path), "")]
        while stack:
            folder, rel = stack.pop()
            try:
                it = os.scandir(folder)
            except OSError:
                continue
            with it:
                for entry in it:
                    name = entry.name
                    if name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, f"{rel}{name}/"))
                    elif name.endswith(suffixes):
                        try:
                            st = entry.stat()
                            found.append((rel + name, st.st_size, st.st_mtime_ns, entry.path))
                        except OSError:
                            found.append((rel + name, -1, -1, entry.path))
        found.sort()
        return found

    def signature(self) -> str:
        """A digest of every database file's path, size and mtime (plus the index schema)."""
        listing = [(rel, size, mtime) for rel, size, mtime, _ in self._entries()]
        return hashlib.sha256(repr((INDEX_SCHEMA, listing)).encode()).hexdigest()

    def _iter_documents(self) -> Iterator[tuple[str, str, bytes | None, str]]:
        """Yield ``(display name, package hint, data or None, problem)`` for every file."""
        cap = self.limits.max_document_bytes
        for rel, size, _, full in self._entries():
            if rel.endswith(".zip"):
                yield from self._iter_zip(Path(full), rel)
                continue
            hint = _package_hint(rel)
            if size > cap:
                yield rel, hint, None, f"{size} bytes, above the read limit"
                continue
            try:
                yield rel, hint, Path(full).read_bytes(), ""
            except OSError as e:
                yield rel, hint, None, f"cannot read: {e.strerror or e}"

    def _iter_zip(self, f: Path, rel: str) -> Iterator[tuple[str, str, bytes | None, str]]:
        import zipfile

        cap = self.limits.max_document_bytes
        total = 0
        try:
            with zipfile.ZipFile(f) as zf:
                infos = zf.infolist()
                if len(infos) > self.limits.max_members:
                    raise AuditServiceError(
                        f"database archive {f} has {len(infos)} members, above "
                        f"limits.max_members ({self.limits.max_members})"
                    )
                for info in infos:
                    if info.is_dir() or not info.filename.endswith(_SUFFIXES):
                        continue
                    name = f"{rel}!{info.filename}"
                    if info.file_size > cap:
                        yield name, "", None, f"{info.file_size} bytes, above the read limit"
                        continue
                    total += info.file_size
                    if total > self.limits.max_decompressed_bytes:
                        raise AuditServiceError(
                            f"database archive {f} inflates beyond limits.max_decompressed_bytes"
                        )
                    with zf.open(info) as fh:
                        data = fh.read(cap + 1)
                    if len(data) > cap:
                        yield name, "", None, "member inflates beyond the read limit"
                        continue
                    yield name, _package_hint(info.filename), data, ""
        except (OSError, zipfile.BadZipFile, EOFError, RuntimeError) as e:
            yield rel, "", None, f"not a readable ZIP archive: {e}"

    def _read_all(self) -> tuple[dict[str, _Record], list[DataProblem]]:
        records: dict[str, _Record] = {}
        problems: list[DataProblem] = []
        for name, hint, data, problem in self._iter_documents():
            if data is None:
                problems.append(DataProblem(name, problem, hint))
                continue
            try:
                doc = _load_document(data, name)
            except (ValueError, UnicodeDecodeError, RecursionError) as e:
                problems.append(
                    DataProblem(name, f"not valid {name.rsplit('.', 1)[-1]}: {e}", hint)
                )
                continue
            docs = doc if isinstance(doc, list) else [doc]
            for item in docs:
                try:
                    adv = parse_advisory(item)
                except AdvisoryFormatError as e:
                    problems.append(DataProblem(name, str(e), hint))
                    continue
                old = records.get(adv.id)
                if old is None or adv.modified > old.advisory.modified:
                    records[adv.id] = _Record(adv, name)
        return records, problems

    # ---- the index ------------------------------------------------------------------------
    def _index_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        key = hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:24]
        return self.cache_dir / "osv-index" / f"{key}.sqlite"

    def _open_cached(self, path: Path, signature: str) -> sqlite3.Connection | None:
        if not path.is_file():
            return None
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            row = conn.execute("SELECT value FROM meta WHERE key = 'signature'").fetchone()
        except sqlite3.Error:
            return None
        if row is None or row[0] != signature:
            conn.close()
            return None
        return conn

    def _build(self, target: sqlite3.Connection, signature: str) -> None:
        records, problems = self._read_all()
        cur = target.cursor()
        cur.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
            "CREATE TABLE advisories (id TEXT PRIMARY KEY, doc TEXT NOT NULL);"
            "CREATE TABLE affects (name TEXT NOT NULL, id TEXT NOT NULL);"
            "CREATE TABLE problems (package TEXT, file TEXT, message TEXT);"
        )
        cur.executemany(
            "INSERT INTO advisories VALUES (?, ?)",
            (
                (i, json.dumps(to_json(r.advisory), separators=(",", ":")))
                for i, r in records.items()
            ),
        )
        cur.executemany(
            "INSERT INTO affects VALUES (?, ?)",
            (
                (name, i)
                for i, r in records.items()
                for name in sorted({a.name for a in r.advisory.affected})
            ),
        )
        cur.executemany(
            "INSERT INTO problems VALUES (?, ?, ?)",
            ((p.package, p.file, p.message) for p in problems),
        )
        cur.executescript("CREATE INDEX affects_name ON affects (name);")
        cur.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("signature", signature), ("records", str(len(records))), ("path", str(self.path))],
        )
        target.commit()

    def open(self) -> sqlite3.Connection:
        """The index, reused when the tree is unchanged, else compiled now."""
        if self._conn is not None:
            return self._conn
        signature = self.signature()
        index = self._index_file()
        if index is not None:
            conn = self._open_cached(index, signature)
            if conn is not None:
                self._conn, self.index_path = conn, index
                return conn
        self.rebuilt = True
        if index is not None:
            built = self._build_to_file(index, signature)
            if built is not None:
                self._conn, self.index_path = built, index
                return built
        conn = sqlite3.connect(":memory:")
        self._build(conn, signature)
        self._conn = conn
        return conn

    def _build_to_file(self, index: Path, signature: str) -> sqlite3.Connection | None:
        import tempfile

        try:
            index.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=index.parent, prefix=".index.", suffix=".tmp")
            os.close(fd)
        except OSError:
            return None
        try:
            conn = sqlite3.connect(tmp)
            try:
                self._build(conn, signature)
            finally:
                conn.close()
            Path(tmp).replace(index)
        except (OSError, sqlite3.Error):
            with contextlib.suppress(OSError):
                Path(tmp).unlink()
            return None
        return self._open_cached(index, signature)

    # ---- the source interface -------------------------------------------------------------
    def advisories(self, queries: Sequence[PackageQuery]) -> Mapping[str, tuple[Advisory, ...]]:
        """Every advisory of each queried package (versions are matched by the auditor)."""
        conn = self.open()
        names = sorted({q.canonical for q in queries})
        out: dict[str, list[Advisory]] = {n: [] for n in names}
        parsed: dict[str, Advisory] = {}
        for start in range(0, len(names), 500):
            chunk = names[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                "SELECT f.name, a.id, a.doc FROM affects f JOIN advisories a ON a.id = f.id "
                f"WHERE f.name IN ({marks}) ORDER BY a.id",
                chunk,
            ).fetchall()
            for name, ident, doc in rows:
                adv = parsed.get(ident)
                if adv is None:
                    adv = parsed[ident] = from_json(json.loads(doc))
                out[name].append(adv)
        return {n: tuple(v) for n, v in out.items()}

    def problems(self, packages: Sequence[str] | None = None) -> list[DataProblem]:
        """Unreadable files (for the given packages only, when ``packages`` is given)."""
        conn = self.open()
        rows = conn.execute("SELECT package, file, message FROM problems ORDER BY file").fetchall()
        wanted = None if packages is None else set(packages)
        return [
            DataProblem(file, message, package)
            for package, file, message in rows
            if wanted is None or package in wanted
        ]

    def record_count(self) -> int:
        """How many advisories the index holds."""
        row = self.open().execute("SELECT value FROM meta WHERE key = 'records'").fetchone()
        return int(row[0]) if row else 0

    def describe(self) -> str:
        """The database path and its size."""
        return f"OSV database {self.path} ({self.record_count()} advisories)"

    def close(self) -> None:
        """Close the index."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> OfflineDatabase:
        """Use as a context manager that closes the index."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the index."""
        self.close()

    def __del__(self) -> None:
        # A database dropped without close() must not leak its SQLite handle (Python 3.13
        # reports that as a ResourceWarning, which strict test runs treat as an error).
        with contextlib.suppress(Exception):
            self.close()
