"""The offline vulnerability source: a directory or ZIP of OSV records, compiled into an index.

Accepted layouts, mixed freely under one path:

- the PyPA advisory database (``vulns/<package>/<ID>.yaml``);
- OSV's ecosystem exports (``PyPI/all.zip`` of ``<ID>.json``, as ``modelshield db update``
  downloads), zipped or unzipped;
- any tree of ``.json``/``.yaml``/``.yml`` files holding one record (or a list of records) each.

YAML is read with a loader that keeps every scalar as text (``CBaseLoader``, else ``BaseLoader``):
``safe_load`` would turn an unquoted ``3.10`` into the float 3.1.

Parsing 2,600 YAML files takes about two seconds, so the tree is compiled once into an SQLite
index keyed by normalised package name, stored in the cache directory with the listing of the
tree it was compiled from (every file's path, size and modification time). The next run checks
the tree again (:mod:`modelshield.audit.sources.dbtree`): every folder's time (so no file was added,
removed or renamed anywhere), then the size and time of the files that hold the advisories of
the packages it audits (so none of them was edited in place), and files that concern no
package; while nothing changed it reads only the rows of those packages, already compiled for
matching (:func:`~modelshield.audit.advisory.to_json`). What this check cannot see is a file
about another package, edited in place (its folder keeps its time) so that it now names an
audited package; asking for every problem (:meth:`~OfflineDatabase.problems` without
packages) checks every file. Files that cannot be read become *problems*,
reported when they concern an audited package (or name no package: they may concern any).

A database must be one: a path that yields no valid PyPI advisory (an empty directory, a folder
of unrelated JSON, a file that is not an OSV export, a ZIP of random bytes), or whose share of
unreadable records passes ``max_unreadable_share``, is refused with an
:class:`~modelshield.audit.interface.AuditServiceError` naming the path and what was found
(exit 2), never read as "no advisory". :meth:`OfflineDatabase.status` says what a database
holds (``modelshield db status``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import msgspec
from msgspec import Struct

from modelshield.audit import safeio
from modelshield.audit.advisory import (
    AdvisoryFormatError,
    StoredDecoder,
    parse_advisory,
    to_json,
)
from modelshield.audit.interface import AuditServiceError, VulnerabilitySource
from modelshield.audit.records import Advisory, DataProblem, PackageQuery
from modelshield.audit.sources import dbtree
from modelshield.audit.versions import ORDER_FORMAT
from modelshield.core.limits import Limits

INDEX_SCHEMA = f"11.{ORDER_FORMAT}"
"""Bumped whenever the index layout or the advisory reader changes, forcing a rebuild."""

_SUFFIXES = (".json", ".yaml", ".yml")  # in ZIP archives
_T = TypeVar("_T")
_UNREADABLE = (sqlite3.Error, ValueError, TypeError, KeyError, NotImplementedError)
"""What reading a damaged index can raise (msgspec's DecodeError is a ValueError)."""


def _package_rows(
    conn: sqlite3.Connection, column: str, names: Sequence[str]
) -> list[tuple[str, str]]:
    """``(name, column)`` of the packages table for these names (``column`` is one of ours,
    never input), in chunks: SQLite bounds the number of parameters of one statement."""
    rows: list[tuple[str, str]] = []
    for start in range(0, len(names), 500):
        chunk = names[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows += conn.execute(
            f"SELECT name, {column} FROM packages WHERE name IN ({marks})",
            chunk,
        ).fetchall()
    return rows


class _Record(NamedTuple):
    advisory: Advisory
    source: str


class DatabaseStats(Struct, frozen=True):
    """What compiling a database found (stored in its index)."""

    documents: int = 0
    """Records (or unreadable files and members) met."""
    records: int = 0
    """OSV records read, one per id (all ecosystems)."""
    pypi_records: int = 0
    """Records that name at least one PyPI package."""
    unreadable: int = 0
    """Files, members or records that could not be read."""
    newest_modified: str = ""
    """The newest ``modified`` timestamp of any record, as written."""
    examples: tuple[str, ...] = ()
    """A few of the unreadable ones, with why, for messages."""


class DatabaseStatus(Struct, frozen=True):
    """What :meth:`OfflineDatabase.status` reports (``modelshield db status``)."""

    path: str
    """The database path."""
    kind: str
    """``directory`` or ``archive``."""
    stats: DatabaseStats
    """What its files hold."""
    index: str
    """Where its compiled index is (``in memory`` when the cache is not writable)."""
    origin: Mapping[str, str]
    """Where it came from, as ``modelshield db update`` recorded it ({} when unknown)."""
    problem: str
    """Why an audit would refuse it, or ``""`` when it is usable."""


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
    from packaging.utils import canonicalize_name  # only when compiling

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
        max_unreadable_share: float = 0.01,
    ) -> None:
        """Open ``path``; the index is built (or reused) on first use. ``max_unreadable_share``
        of its records may be unreadable before the database is refused."""
        self.path = Path(path)
        self.cache_dir = cache_dir
        self.limits = limits or Limits()
        self.max_unreadable_share = max_unreadable_share
        self._checked = False
        self._conn: sqlite3.Connection | None = None
        self.index_path: Path | None = None
        """Where the index lives (None when it had to stay in memory)."""
        self.rebuilt = False
        """Whether this run compiled the index (False: a cached index was reused)."""
        self._records: int | None = None
        self._verified: set[str] | None = set()
        """Packages whose files were checked this run; None: the whole tree was."""
        self._stale = False
        """Whether a file changed under the open index (the quick check is then skipped)."""
        self._damaged = False
        """Whether the cached index could not be read (it is then compiled again)."""

    # ---- reading the tree -----------------------------------------------------------------
    def _tree(self) -> dbtree.Tree:
        """The database's candidate files (see :mod:`modelshield.audit.sources.dbtree`)."""
        if self.path.is_file():
            try:
                st = self.path.stat()
                entry = (self.path.name, st.st_size, st.st_mtime_ns, str(self.path))
            except OSError:
                entry = (self.path.name, -1, -1, str(self.path))
            return dbtree.Tree([entry], None)
        if not self.path.is_dir():
            what = "does not exist" if not self.path.exists() else "is not a file or directory"
            raise AuditServiceError(
                f"vulnerability database {self.path} {what}",
                "Download one with `modelshield db update`, or pass --db DIR with OSV files.",
            )
        return dbtree.walk(str(self.path))

    def _entries(self) -> list[tuple[str, int, int, str]]:
        """``(path relative to the database, size, mtime_ns, full path)`` of every candidate."""
        return self._tree().files

    @staticmethod
    def _listing_of(files: list[tuple[str, int, int, str]]) -> str:
        listing = [(rel, size, mtime) for rel, size, mtime, _ in files]
        return json.dumps([INDEX_SCHEMA, listing], separators=(",", ":"))

    def listing(self) -> str:
        """Every database file's path, size and mtime, with the index schema, as text.

        The index stores the listing it was compiled from and is reused only while it is
        equal (compared whole: no digest to compute, no collision to rule out).
        """
        return self._listing_of(self._entries())

    def signature(self) -> str:
        """A digest of :meth:`listing` (it changes whenever a database file does)."""
        import hashlib

        return hashlib.sha256(self.listing().encode()).hexdigest()

    def _iter_documents(
        self, files: list[tuple[str, int, int, str]]
    ) -> Iterator[tuple[str, str, bytes | None, str]]:
        """Yield ``(display name, package hint, data or None, problem)`` for every file."""
        cap = self.limits.max_document_bytes
        for rel, size, _, full in files:
            if rel.endswith(".zip"):
                yield from self._iter_zip(Path(full), rel)
                continue
            hint = _package_hint(rel)
            if size > cap:
                yield rel, hint, None, f"{size} bytes, above the read limit"
                continue
            try:
                fh, _ = safeio.open_regular(full)
                with fh:
                    data = fh.read(cap + 1)
            except safeio.NotRegularFile:
                yield rel, hint, None, "not a regular file (a FIFO, socket or device); not read"
                continue
            except OSError as e:
                yield rel, hint, None, f"cannot read: {e.strerror or e}"
                continue
            if len(data) > cap:
                yield rel, hint, None, "grew above the read limit while read"
                continue
            yield rel, hint, data, ""

    def _iter_zip(self, f: Path, rel: str) -> Iterator[tuple[str, str, bytes | None, str]]:
        import zipfile

        cap = self.limits.max_document_bytes
        total = 0
        try:
            raw, _ = safeio.open_regular(f)
            with raw, zipfile.ZipFile(raw) as zf:
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
        except (OSError, zipfile.BadZipFile, EOFError, RuntimeError, ValueError) as e:
            yield rel, "", None, f"not a readable ZIP archive: {e}"

    def _read_all(
        self, files: list[tuple[str, int, int, str]]
    ) -> tuple[dict[str, _Record], list[DataProblem], dict[str, set[str]], int]:
        """The newest record of each id, the problems, which packages each file concerns
        (records superseded by a newer copy and problems' package hints included), and how many
        records were read (copies included)."""
        records: dict[str, _Record] = {}
        problems: list[DataProblem] = []
        concerns: dict[str, set[str]] = {}
        read = 0
        for name, hint, data, problem in self._iter_documents(files):
            packages = concerns.setdefault(name.split("!", 1)[0], set())  # a ZIP: the archive
            if data is None:
                problems.append(DataProblem(name, problem, hint))
                packages.add(hint)
                continue
            try:
                doc = _load_document(data, name)
            except (ValueError, UnicodeDecodeError, RecursionError) as e:
                problems.append(
                    DataProblem(name, f"not valid {name.rsplit('.', 1)[-1]}: {e}", hint)
                )
                packages.add(hint)
                continue
            docs = doc if isinstance(doc, list) else [doc]
            for item in docs:
                try:
                    adv = parse_advisory(item)
                except AdvisoryFormatError as e:
                    problems.append(DataProblem(name, str(e), hint))
                    packages.add(hint)
                    continue
                read += 1
                packages.update(a.name for a in adv.affected)
                old = records.get(adv.id)
                if old is None or adv.modified > old.advisory.modified:
                    records[adv.id] = _Record(adv, name)
        return records, problems, concerns, read

    # ---- the index ------------------------------------------------------------------------
    def _index_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        # A name per database path. Two checksums, not a cryptographic digest: loading OpenSSL
        # for hashlib costs more than the rest of the lookup, and a collision would only make
        # two databases rebuild each other's index (the stored listing is always compared).
        where = str(self.path.resolve()).encode("utf-8", "surrogateescape")
        key = f"{zlib.crc32(where):08x}{zlib.adler32(where):08x}"
        return self.cache_dir / "osv-index" / f"{key}.sqlite"

    def _drop_old_index(self, index: Path) -> None:
        """Remove the index that earlier releases kept for this database (under another name)."""
        import hashlib  # compiling anyway: this costs nothing noticeable here

        where = str(self.path.resolve()).encode("utf-8", "surrogateescape")
        old = index.with_name(f"{hashlib.sha256(where).hexdigest()[:24]}.sqlite")
        with contextlib.suppress(OSError):
            old.unlink()

    def _open_cached(self, path: Path, listing: str | None) -> sqlite3.Connection | None:
        """The index at ``path`` if it is current: its listing equals ``listing``, or, when
        ``listing`` is None, the quick check finds nothing changed (no walk at all)."""
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        except sqlite3.Error:
            return None  # no index yet (read-only mode never creates the file)
        key = "listing" if listing is not None else "folders"
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            row = None
        if listing is not None:
            current = row is not None and row[0] == listing
            self._verified = None  # every file was compared
        else:
            current = row is not None and self._folders_unchanged(row[0])
            self._verified = set()  # each package's files are checked when it is read
        if not current:
            conn.close()
            return None
        return conn

    def _folders_unchanged(self, stored: str) -> bool:
        """The quick check: every folder's time, and the files that concern no package."""
        try:
            schema, folders, unattributed = json.loads(stored)
        except (ValueError, TypeError):
            return False
        root = str(self.path)
        return (
            schema == INDEX_SCHEMA
            and dbtree.folders_unchanged(root, folders)
            and dbtree.files_unchanged(root, unattributed)
        )

    def _files_unchanged(self, conn: sqlite3.Connection, names: Sequence[str] | None) -> bool:
        """Whether the files holding these packages' advisories (all: None) are unchanged.

        Called before their rows are used, after the quick check of :meth:`open`; a package
        checked once is not checked again.
        """
        if self._verified is None:
            return True
        wanted = None if names is None else [n for n in names if n not in self._verified]
        if wanted == []:
            return True
        files: dict[str, list[Any]] = {}
        if wanted is None:
            rows = conn.execute("SELECT name, files FROM packages").fetchall()
        else:
            rows = _package_rows(conn, "files", wanted)
        try:
            for _, text in rows:
                for entry in json.loads(text):
                    files[entry[0]] = entry
        except (ValueError, TypeError, IndexError):
            return False
        if not dbtree.files_unchanged(str(self.path), list(files.values())):
            return False
        if wanted is None:
            self._verified = None
        else:
            self._verified.update(wanted)
        return True

    def _current(self, names: Sequence[str] | None) -> sqlite3.Connection:
        """The open index, once the files behind ``names`` (all: None) are known unchanged
        (an edited file makes it compile the index again), and the database usable."""
        conn = self.open()
        if not self._files_unchanged(conn, names):
            self.close()
            self._stale = True
            conn = self.open()
        if not self._checked:
            problem = self.problem()
            if problem:
                raise AuditServiceError(
                    problem,
                    "Point --db at an OSV database: the PyPA advisory database (its vulns/ "
                    "folder), an OSV export (PyPI/all.zip), or run `modelshield db update`. "
                    "`modelshield db status` shows what a database holds.",
                )
            self._checked = True
        return conn

    def check(self) -> None:
        """Refuse a database that is not one (see :meth:`problem`)."""
        self._readable(lambda: self._current(()))

    def stats(self) -> DatabaseStats:
        """What the database's files hold, as counted when its index was compiled."""
        row = self.open().execute("SELECT value FROM meta WHERE key = 'stats'").fetchone()
        try:
            return msgspec.json.decode(row[0], type=DatabaseStats) if row else DatabaseStats()
        except msgspec.DecodeError:
            return DatabaseStats()

    def problem(self) -> str:
        """Why an audit refuses this database, or ``""`` when it is usable: it yields no valid
        PyPI advisory, or too large a share of its records cannot be read."""
        stats = self.stats()
        found = (
            f"{stats.documents} record(s) or file(s) found, {stats.records} readable OSV "
            f"record(s), {stats.pypi_records} for PyPI, {stats.unreadable} unreadable"
        )
        if stats.unreadable:
            found += f" (e.g. {'; '.join(stats.examples)})"
        if stats.documents == 0:
            return (
                f"vulnerability database {self.path} holds no OSV record: no .json, .yaml or "
                ".zip file was found"
            )
        if stats.pypi_records == 0:
            return f"vulnerability database {self.path} holds no valid PyPI advisory: {found}"
        share = stats.unreadable / stats.documents
        if share > self.max_unreadable_share:
            return (
                f"vulnerability database {self.path} is mostly unreadable: {share:.1%} of its "
                f"records could not be read, above the {self.max_unreadable_share:.1%} allowed "
                f"([audit] max_unreadable_share): {found}"
            )
        return ""

    def status(self) -> DatabaseStatus:
        """What the database holds, where it came from, and whether an audit would use it."""
        from modelshield.audit.sources.osv_update import read_origin

        self.open()
        return DatabaseStatus(
            path=str(self.path),
            kind="directory" if self.path.is_dir() else "archive",
            stats=self.stats(),
            index=str(self.index_path) if self.index_path is not None else "in memory",
            origin=read_origin(self.path),
            problem=self.problem(),
        )

    def newest_modified(self) -> str | None:
        """The newest ``modified`` timestamp of the database's records."""
        return self.stats().newest_modified or None

    def _build(self, target: sqlite3.Connection, tree: dbtree.Tree) -> None:
        listing = self._listing_of(tree.files)
        records, problems, concerns, read = self._read_all(tree.files)  # the listing's files
        by_package: dict[str, list[str]] = {}
        for ident in sorted(records):
            adv = records[ident].advisory
            doc = json.dumps(to_json(adv), separators=(",", ":"))
            for name in sorted({a.name for a in adv.affected}):
                by_package.setdefault(name, []).append(doc)
        # Which files each package's advisories (and problems) come from, for the quick check.
        file_stats = {rel: [rel, size, mtime] for rel, size, mtime, _ in tree.files}
        sources: dict[str, list[list[Any]]] = {}
        unattributed: list[list[Any]] = []
        for rel in sorted(file_stats):
            concerned = concerns.get(rel, set())
            names = concerned - {""}  # "": a problem that names no package
            if not names or "" in concerned:
                unattributed.append(file_stats[rel])
            for name in names:
                sources.setdefault(name, []).append(file_stats[rel])
        cur = target.cursor()
        # Large pages keep a package's advisories (up to a few hundred KB) in few pages.
        cur.execute("PRAGMA page_size = 65536")
        cur.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
            "CREATE TABLE packages (name TEXT PRIMARY KEY, advisories TEXT NOT NULL,"
            " files TEXT NOT NULL);"
            "CREATE TABLE problems (package TEXT, file TEXT, message TEXT);"
        )
        # One row per package: its advisories as one JSON array, in id order, so that an audit
        # reads one row and decodes one document per package it audits; and the files they
        # come from, with size and time.
        compact = (",", ":")
        cur.executemany(
            "INSERT INTO packages VALUES (?, ?, ?)",
            (
                (
                    name,
                    f"[{','.join(by_package.get(name, []))}]",
                    json.dumps(sources.get(name, []), separators=compact),
                )
                for name in sorted(by_package.keys() | sources.keys())
            ),
        )
        cur.executemany(
            "INSERT INTO problems VALUES (?, ?, ?)",
            ((p.package, p.file, p.message) for p in problems),
        )
        stats = DatabaseStats(
            documents=read + len(problems),
            records=len(records),
            pypi_records=sum(1 for r in records.values() if r.advisory.affected),
            unreadable=len(problems),
            newest_modified=max((r.advisory.modified for r in records.values()), default=""),
            examples=tuple(f"{p.file}: {p.message}"[:200] for p in problems[:3]),
        )
        meta = [
            ("listing", listing),
            ("records", str(len(records))),
            ("path", str(self.path)),
            ("stats", msgspec.json.encode(stats).decode()),
        ]
        if tree.folders is not None:
            times = [[rel, mtime] for rel, mtime, _ in tree.folders]
            folders = json.dumps([INDEX_SCHEMA, times, unattributed], separators=compact)
            meta.append(("folders", folders))
        cur.executemany("INSERT INTO meta VALUES (?, ?)", meta)
        target.commit()

    def open(self) -> sqlite3.Connection:
        """The index, reused when the tree is unchanged, else compiled now."""
        if self._conn is not None:
            return self._conn
        index = self._index_file()
        if index is not None and not (self._stale or self._damaged) and self.path.is_dir():
            conn = self._open_cached(index, None)  # the quick check: no directory listing
            if conn is not None:
                self._conn, self.index_path = conn, index
                return conn
        tree = self._tree()
        if index is not None and not self._damaged:
            conn = self._open_cached(index, self._listing_of(tree.files))
            if conn is not None:
                self._conn, self.index_path = conn, index
                return conn
        self.rebuilt = True
        if index is not None:
            built = self._build_to_file(index, tree)
            if built is not None:
                self._conn, self.index_path = built, index
                return built
        conn = sqlite3.connect(":memory:")
        self._build(conn, tree)
        self._conn, self._verified = conn, None
        return conn

    def _build_to_file(self, index: Path, tree: dbtree.Tree) -> sqlite3.Connection | None:
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
                self._build(conn, tree)
            finally:
                conn.close()
            Path(tmp).replace(index)
        except (OSError, sqlite3.Error):
            with contextlib.suppress(OSError):
                Path(tmp).unlink()
            return None
        self._drop_old_index(index)
        return self._open_cached(index, self._listing_of(tree.files))

    # ---- the source interface -------------------------------------------------------------
    def _readable(self, read: Callable[[], _T]) -> _T:
        """``read()`` from the index; an index that cannot be read (a damaged cache file, a
        row that does not decode) is compiled again from the tree, once."""
        try:
            return read()
        except _UNREADABLE as e:
            if self.rebuilt:  # compiled in this run: not a damaged cache
                raise self._unreadable(e) from e
        self.close()
        self._damaged = True
        try:
            return read()
        except _UNREADABLE as e:
            raise self._unreadable(e) from e

    def _unreadable(self, e: Exception) -> AuditServiceError:
        return AuditServiceError(
            f"the compiled index of {self.path} ({self.index_path or 'in memory'}) cannot be "
            f"read: {e}",
            "Remove that file; the next audit compiles the index again.",
        )

    def advisories(self, queries: Sequence[PackageQuery]) -> Mapping[str, tuple[Advisory, ...]]:
        """Every advisory of each queried package (versions are matched by the auditor)."""
        names = sorted({q.canonical for q in queries})
        return self._readable(lambda: self._advisories(names))

    def _advisories(self, names: list[str]) -> dict[str, tuple[Advisory, ...]]:
        conn = self._current(names)
        out: dict[str, tuple[Advisory, ...]] = dict.fromkeys(names, ())
        parsed: dict[str, Advisory] = {}  # an advisory of two audited packages is kept once
        decoder = StoredDecoder()
        for name, docs in _package_rows(conn, "advisories", names):
            out[name] = tuple(parsed.setdefault(a.id, a) for a in decoder.decode(docs))
        return out

    def problems(self, packages: Sequence[str] | None = None) -> list[DataProblem]:
        """Unreadable files (for the given packages only, when ``packages`` is given)."""
        return self._readable(lambda: self._problems(packages))

    def _problems(self, packages: Sequence[str] | None) -> list[DataProblem]:
        conn = self._current(packages)
        rows = conn.execute("SELECT package, file, message FROM problems ORDER BY file").fetchall()
        wanted = None if packages is None else set(packages)
        return [
            DataProblem(file, message, package)
            for package, file, message in rows
            if wanted is None or package in wanted or not package  # "": may concern any
        ]

    def record_count(self) -> int:
        """How many advisories the index holds."""
        if self._records is None:
            # For display: the quick check of open() is enough (a file edited in place that
            # gained or lost records shows in the count once the index is compiled again).
            row = self.open().execute("SELECT value FROM meta WHERE key = 'records'").fetchone()
            self._records = int(row[0]) if row else 0
        return self._records

    def describe(self) -> str:
        """The database path and its size."""
        return f"OSV database {self.path} ({self.record_count()} advisories)"

    def close(self) -> None:
        """Close the index."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._records = None

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
