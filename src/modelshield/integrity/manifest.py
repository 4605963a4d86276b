"""Integrity manifests: record every file of a model, then verify the model against the record.

``modelshield manifest create PATH`` writes a JSON document listing every file of a model
directory (or a single file) with its size and digests; ``modelshield manifest verify PATH``
lists and hashes the model again and reports what was added, removed or modified as findings
(``MANIFEST-FILE-ADDED``, ``MANIFEST-FILE-REMOVED``, ``MANIFEST-FILE-MODIFIED``), and a manifest
that is unreadable or inconsistent as ``MANIFEST-INVALID``.

The format (``format_version`` 1), also described in ``docs/manifest.md``::

    {
      "format": "modelshield.manifest",
      "format_version": 1,
      "tool": {"name": "modelshield", "version": "0.1.0"},
      "created": "2025-01-31T12:00:00Z",
      "root": {"name": "bert-base", "type": "directory"},      # or "file"
      "chunk_size": 67108864,
      "algorithms": ["sha256", "blake3"],
      "ignore": [".git", ".gitattributes", ".github", ".gitignore", "modelshield.manifest.json"],
      "digest": {"sha256": "<hex>"},
      "files": [
        {"path": "config.json", "size": 570, "chunks": ["<hex>"], "sha256": "<hex>",
         "blake3": "<hex>"},
        {"path": "model.safetensors", "size": 440473133, "chunks": ["<hex>", "..."],
         "blake3": "<hex>"},
        {"path": "latest", "link": "checkpoint-500"}
      ]
    }

* ``files`` is sorted by ``path`` (relative, ``/``-separated, no ``.``/``..`` parts). A regular
  file has ``size`` and ``chunks``: the SHA-256 of each consecutive ``chunk_size``-byte range
  (the last one shorter; none for an empty file). ``sha256`` is the plain whole-file digest:
  always present for files of at most one chunk (where it equals the only chunk digest), and
  for larger files when made with ``--plain``. ``blake3`` (whole file) is present when
  ``"blake3"`` is in ``algorithms``. A symbolic link has ``link``, its target as written; links
  are recorded, never followed.
* ``digest.sha256`` is the SHA-256 over the raw chunk digests of all files, ordered by
  (path components, start offset), with each link adding ``SHA-256("symlink:" + target)`` at its
  path. Without links it equals the subject digest of an OpenSSF model-signing "shards"
  signature made with ``shard_size = chunk_size``. It identifies the model's content in one
  value and lets verification detect a manifest edited by hand; it is *not* a signature
  (anyone can recompute it). Sign the model (``modelshield manifest sign``) for authenticity.
* ``ignore`` lists path prefixes left out of the listing when the manifest was made and when it
  is verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from msgspec import Struct
from msgspec.structs import replace

from modelshield._version import __version__
from modelshield.core.errors import ConfigError
from modelshield.core.findings import ErrorRecord, FileResult, Location, Report
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.integrity.compare import Expected, verify_tree
from modelshield.integrity.hashing import (
    BLAKE3,
    DEFAULT_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
    SHA256,
    FileDigest,
    HashJob,
    hash_files,
)
from modelshield.integrity.rules import MANIFEST_INVALID
from modelshield.integrity.tree import DEFAULT_IGNORE, Tree, list_tree, relative_inside

FORMAT = "modelshield.manifest"
"""The ``format`` value every manifest carries."""
FORMAT_VERSION = 1
"""The manifest format version this module writes and reads."""
DEFAULT_NAME = "modelshield.manifest.json"
"""File name of a directory's manifest when no output is given (inside the directory)."""

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(ValueError):
    """A manifest is unreadable, malformed or inconsistent (reported as ``MANIFEST-INVALID``)."""


class ManifestEntry(Struct, frozen=True):
    """One file or symbolic link of a model."""

    path: str
    """Relative path with ``/`` separators."""
    size: int = 0
    """Size in bytes (0 for a link)."""
    chunks: tuple[str, ...] = ()
    """Hex SHA-256 per chunk (regular files)."""
    sha256: str | None = None
    """Hex SHA-256 of the whole file, when recorded."""
    blake3: str | None = None
    """Hex BLAKE3 of the whole file, when recorded."""
    link: str | None = None
    """A symbolic link's target; None for a regular file."""

    def expected(self) -> Expected:
        """What verification expects at this path."""
        if self.link is not None:
            return Expected(self.path, "symlink", link=self.link)
        return Expected(self.path, "file", self.size, self.chunks, self.sha256, self.blake3)

    def to_json(self) -> dict[str, Any]:
        """The entry as written in the manifest."""
        if self.link is not None:
            return {"path": self.path, "link": self.link}
        out: dict[str, Any] = {"path": self.path, "size": self.size, "chunks": list(self.chunks)}
        if self.sha256 is not None:
            out["sha256"] = self.sha256
        if self.blake3 is not None:
            out["blake3"] = self.blake3
        return out


class Manifest(Struct, frozen=True):
    """A parsed, validated manifest."""

    root_name: str
    """The model directory's (or file's) name when the manifest was made; informative."""
    root_type: Literal["directory", "file"]
    """Whether the manifest describes a directory or a single file."""
    chunk_size: int
    """Chunk size of every entry's chunk digests."""
    algorithms: tuple[str, ...]
    """Digest algorithms recorded: ``sha256`` always, ``blake3`` optionally."""
    ignore: tuple[str, ...]
    """Path prefixes left out of the listing."""
    entries: tuple[ManifestEntry, ...]
    """Files and links, sorted by path."""
    tool_version: str = __version__
    """modelshield version that made it."""
    created: str = ""
    """UTC creation time (ISO 8601)."""

    @property
    def digest(self) -> str:
        """Hex SHA-256 over every chunk digest (see the module documentation)."""
        resources: list[tuple[tuple[str, ...], int, bytes]] = []
        for e in self.entries:
            parts = tuple(e.path.split("/"))
            if e.link is not None:
                target = e.link.encode("utf-8", "surrogateescape")
                resources.append((parts, -1, hashlib.sha256(b"symlink:" + target).digest()))
                continue
            for i, chunk in enumerate(e.chunks):
                resources.append((parts, i * self.chunk_size, bytes.fromhex(chunk)))
        h = hashlib.sha256()
        for _, _, raw in sorted(resources):
            h.update(raw)
        return h.hexdigest()

    def to_json(self) -> str:
        """The manifest document (UTF-8 JSON text, two-space indented, newline-terminated)."""
        doc = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tool": {"name": "modelshield", "version": self.tool_version},
            "created": self.created,
            "root": {"name": self.root_name, "type": self.root_type},
            "chunk_size": self.chunk_size,
            "algorithms": list(self.algorithms),
            "ignore": list(self.ignore),
            "digest": {SHA256: self.digest},
            "files": [e.to_json() for e in self.entries],
        }
        text = json.dumps(doc, indent=2, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            # A file name that is not valid UTF-8 (kept as lone surrogates) can only be written
            # escaped; json reads the escapes back to the same name.
            text = json.dumps(doc, indent=2, ensure_ascii=True)
        return text + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, limits: Limits | None = None) -> Manifest:
        """Parse and validate a manifest; raise :class:`ManifestError` saying what is wrong."""
        return _parse(text, limits or Limits())

    @classmethod
    def read(cls, path: str | os.PathLike[str], limits: Limits | None = None) -> Manifest:
        """Read a manifest file (bounded in size); raise :class:`ManifestError` on any problem."""
        limits = limits or Limits()
        cap = manifest_byte_limit(limits)
        try:
            with Path(path).open("rb") as fh:
                data = fh.read(cap + 1)
        except OSError as e:
            raise ManifestError(f"cannot read the manifest: {e.strerror or e}") from e
        if len(data) > cap:
            raise ManifestError(f"the manifest is larger than {cap} bytes")
        return _parse(data, limits)


def manifest_byte_limit(limits: Limits) -> int:
    """The largest manifest or signature document read.

    A manifest lists one 64-character digest per chunk; ``limits.max_document_bytes`` (64 MiB by
    default) holds about 800,000 of them, enough for 50 TB at the default chunk size.
    """
    return limits.max_document_bytes


# ---- parsing ------------------------------------------------------------------------------


def _parse(text: str | bytes, limits: Limits) -> Manifest:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError
        raise ManifestError(f"not valid JSON: {e}") from None
    obj = _obj(doc, "the manifest")
    if obj.get("format") != FORMAT:
        raise ManifestError(f"'format' is {obj.get('format')!r}, expected {FORMAT!r}")
    version = obj.get("format_version")
    if version != FORMAT_VERSION:
        raise ManifestError(
            f"'format_version' is {version!r}; this modelshield reads version {FORMAT_VERSION}"
        )
    tool = _obj(obj.get("tool"), "'tool'")
    root = _obj(obj.get("root"), "'root'")
    root_type = root.get("type")
    if root_type not in ("directory", "file"):
        raise ManifestError("'root.type' must be 'directory' or 'file'")
    chunk_size = _int(obj.get("chunk_size"), "'chunk_size'")
    if chunk_size < MIN_CHUNK_SIZE:
        raise ManifestError(f"'chunk_size' must be at least {MIN_CHUNK_SIZE}")
    algorithms = tuple(_str_list(obj.get("algorithms"), "'algorithms'"))
    if SHA256 not in algorithms or not set(algorithms) <= {SHA256, BLAKE3}:
        raise ManifestError("'algorithms' must contain 'sha256' and at most also 'blake3'")
    ignore = tuple(_str_list(obj.get("ignore"), "'ignore'"))
    files = obj.get("files")
    if not isinstance(files, list):
        raise ManifestError("'files' must be a list")
    if len(files) > limits.max_members:
        raise ManifestError(
            f"lists {len(files)} files, more than limits.max_members ({limits.max_members})"
        )
    entries = [_entry(item, i, chunk_size, BLAKE3 in algorithms) for i, item in enumerate(files)]
    paths = [e.path for e in entries]
    if len(set(paths)) != len(paths):
        raise ManifestError("a path is listed twice")
    if root_type == "file" and (len(entries) != 1 or entries[0].link is not None):
        raise ManifestError("a single-file manifest must list exactly one regular file")
    manifest = Manifest(
        root_name=_str(root.get("name"), "'root.name'"),
        root_type=root_type,
        chunk_size=chunk_size,
        algorithms=algorithms,
        ignore=ignore,
        entries=tuple(sorted(entries, key=lambda e: e.path)),
        tool_version=_str(tool.get("version"), "'tool.version'"),
        created=_str(obj.get("created"), "'created'"),
    )
    recorded = _obj(obj.get("digest"), "'digest'").get(SHA256)
    if recorded != manifest.digest:
        raise ManifestError(
            "'digest.sha256' does not match the listed files: the manifest was altered or "
            f"corrupted (recorded {recorded!r}, computed {manifest.digest})"
        )
    return manifest


def _entry(item: Any, index: int, chunk_size: int, has_blake3: bool) -> ManifestEntry:
    where = f"files[{index}]"
    obj = _obj(item, where)
    path = _str(obj.get("path"), f"{where}.path")
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ManifestError(f"{where}.path {path!r} is not a normalised relative path")
    if "\\" in path or "\x00" in path:
        raise ManifestError(f"{where}.path {path!r} contains a backslash or NUL")
    if "link" in obj:
        extra = set(obj) - {"path", "link"}
        if extra:
            raise ManifestError(f"{where}: a link entry has unexpected keys {sorted(extra)}")
        return ManifestEntry(path, link=_str(obj["link"], f"{where}.link"))
    size = _int(obj.get("size"), f"{where}.size")
    chunks = tuple(_hex_list(obj.get("chunks"), f"{where}.chunks"))
    if len(chunks) != -(-size // chunk_size):
        raise ManifestError(
            f"{where} ({path}): {len(chunks)} chunk digests for {size} bytes in chunks of "
            f"{chunk_size}"
        )
    sha256 = _opt_hex(obj.get("sha256"), f"{where}.sha256")
    if sha256 is not None and len(chunks) == 1 and sha256 != chunks[0]:
        raise ManifestError(f"{where} ({path}): 'sha256' differs from its only chunk digest")
    if size == 0 and sha256 not in (None, hashlib.sha256(b"").hexdigest()):
        raise ManifestError(f"{where} ({path}): an empty file with a non-empty digest")
    b3 = _opt_hex(obj.get("blake3"), f"{where}.blake3")
    if has_blake3 and b3 is None:
        raise ManifestError(f"{where} ({path}): 'blake3' is missing")
    extra = set(obj) - {"path", "size", "chunks", "sha256", "blake3"}
    if extra:
        raise ManifestError(f"{where}: unexpected keys {sorted(extra)}")
    return ManifestEntry(path, size, chunks, sha256, b3)


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(f"{where} must be a JSON object")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"{where} must be a string")
    return value


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ManifestError(f"{where} must be a non-negative integer")
    return value


def _str_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"{where} must be a list of strings")
    return value


def _hex_list(value: Any, where: str) -> list[str]:
    items = _str_list(value, where)
    for v in items:
        if not _HEX64.match(v):
            raise ManifestError(f"{where} holds {v[:80]!r}, not a 64-digit lower-case hex digest")
    return items


def _opt_hex(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HEX64.match(value):
        raise ManifestError(f"{where} must be a 64-digit lower-case hex digest")
    return value


# ---- create -------------------------------------------------------------------------------


class CreateOutcome(Struct, frozen=True):
    """What :func:`create_manifest` made."""

    manifest: Manifest
    """The manifest (complete only when ``errors`` is empty)."""
    errors: tuple[ErrorRecord, ...]
    """Files that could not be listed or hashed; a manifest with errors should not be used."""
    bytes_hashed: int
    """Total bytes read."""
    duration_s: float
    """Wall-clock seconds."""


def default_manifest_path(model: str | os.PathLike[str]) -> str:
    """Where a model's manifest goes by default: inside a directory, or beside a file."""
    p = Path(model)
    if p.is_dir():
        return str(p / DEFAULT_NAME)
    return str(p.with_name(p.name + ".manifest.json"))


def create_manifest(
    model: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    plain: bool = False,
    blake3: bool = False,
    ignore: Sequence[str] = DEFAULT_IGNORE,
    policy: Policy | None = None,
    workers: int | None = None,
) -> CreateOutcome:
    """Hash every file of ``model`` (a directory or a file) into a :class:`Manifest`.

    ``output`` (where the manifest will be written) is left out of the listing when it lies
    inside the model directory. ``blake3=True`` also records whole-file BLAKE3 digests (off by
    default: on a 2-core machine the second digest costs more than the parallel SHA-256 gains).
    Nothing is written; call :meth:`Manifest.to_json`.
    """
    started = time.monotonic()
    limits = (policy or Policy()).limits
    if chunk_size < MIN_CHUNK_SIZE:
        raise ConfigError(f"chunk size must be at least {MIN_CHUNK_SIZE} bytes")
    use_blake3 = blake3
    root = os.fspath(model)
    ignore_list = [i.strip("/") for i in ignore if i.strip("/")]
    if output is not None and Path(root).is_dir():
        inside = relative_inside(root, os.fspath(output))
        if inside is not None and inside not in ignore_list:
            ignore_list.append(inside)
    try:
        tree = list_tree(root, ignore_list, limits)
    except OSError as e:
        raise ConfigError(f"cannot read {root}: {e.strerror or e}") from e
    errors = [ErrorRecord(Location(p), m, stage="io") for p, m in tree.problems]
    jobs: list[HashJob] = []
    links: list[ManifestEntry] = []
    for rel, disk in sorted(tree.entries.items()):
        loc = Location(_display(tree, rel))
        if disk.kind == "symlink":
            links.append(ManifestEntry(rel, link=disk.link))
        elif disk.kind == "other":
            errors.append(ErrorRecord(loc, "not a regular file or link: not recorded", "io"))
        else:
            jobs.append(HashJob(rel, disk.source, plain=plain, blake3=use_blake3))
    entries = list(links)
    hashed = 0
    for r in hash_files(
        jobs, chunk_size=chunk_size, workers=workers, max_file_bytes=limits.max_file_bytes
    ):
        if isinstance(r, FileDigest):
            entries.append(ManifestEntry(r.path, r.size, r.chunks, r.sha256, r.blake3))
            hashed += r.size
        else:
            errors.append(ErrorRecord(Location(_display(tree, r.path)), r.message, "io"))
    manifest = Manifest(
        root_name=Path(root).name or Path(root).absolute().name,
        root_type="directory" if tree.is_dir else "file",
        chunk_size=chunk_size,
        algorithms=(SHA256, BLAKE3) if use_blake3 else (SHA256,),
        ignore=tuple(ignore_list) if tree.is_dir else (),
        entries=tuple(sorted(entries, key=lambda e: e.path)),
        created=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    return CreateOutcome(manifest, tuple(errors), hashed, time.monotonic() - started)


# ---- verify -------------------------------------------------------------------------------


def verify_manifest(
    model: str | os.PathLike[str],
    manifest_path: str | os.PathLike[str] | None = None,
    *,
    policy: Policy | None = None,
    workers: int | None = None,
) -> Report:
    """Verify ``model`` against its manifest; a raw ``Report.of("manifest", ...)``.

    One result per file listed or found. An invalid manifest gives a single result for the
    manifest with a ``MANIFEST-INVALID`` finding and nothing else is checked. Apply
    ``policy.apply(report)`` for ignores and overrides, as for a scan.
    """
    started = time.monotonic()
    limits = (policy or Policy()).limits
    root = os.fspath(model)
    mpath = os.fspath(manifest_path) if manifest_path is not None else default_manifest_path(root)
    try:
        manifest = Manifest.read(mpath, limits)
    except ManifestError as e:
        return _invalid_report(mpath, str(e), started)
    try:
        is_dir = Path(root).is_dir()
        if is_dir != (manifest.root_type == "directory"):
            raise ManifestError(
                f"the manifest describes a {manifest.root_type} but {root} is "
                f"{'a directory' if is_dir else 'not a directory'}"
            )
        ignore = list(manifest.ignore)
        inside = relative_inside(root, mpath) if is_dir else None
        if inside is not None:
            ignore.append(inside)
        tree = list_tree(root, ignore, limits)
    except ManifestError as e:
        return _invalid_report(mpath, str(e), started)
    except OSError as e:
        err = ErrorRecord(Location(root), f"cannot read: {e.strerror or e}", stage="io")
        return Report.of("manifest", [FileResult(root, "missing", errors=(err,))])
    expected = {e.path: e.expected() for e in manifest.entries}
    if not tree.is_dir:
        # A single file is compared with the single entry whatever it is called now.
        (disk,) = tree.entries.values()
        tree = Tree(
            tree.root,
            False,
            {manifest.entries[0].path: replace(disk, path=manifest.entries[0].path)},
        )
    results = verify_tree(
        tree, expected, chunk_size=manifest.chunk_size, limits=limits, workers=workers
    )
    if tree.problems:
        errs = tuple(ErrorRecord(Location(p), m, stage="io") for p, m in tree.problems)
        results.insert(0, FileResult(root, "directory", errors=errs))
    return Report.of("manifest", results, duration_s=time.monotonic() - started)


def _invalid_report(mpath: str, message: str, started: float) -> Report:
    finding = MANIFEST_INVALID.finding(
        Location(mpath),
        f"The manifest cannot be trusted, so nothing was verified: {message}.",
        evidence={"problem": message},
    )
    result = FileResult(mpath, "modelshield-manifest", findings=(finding,))
    return Report.of("manifest", [result], duration_s=time.monotonic() - started)


def _display(tree: Tree, rel: str) -> str:
    return str(Path(tree.root, *rel.split("/"))) if tree.is_dir else tree.root


def manifest_summary(manifest: Manifest) -> Mapping[str, str]:
    """A few facts about a manifest for a person (file count, bytes, digest)."""
    files = [e for e in manifest.entries if e.link is None]
    return {
        "files": str(len(files)),
        "links": str(len(manifest.entries) - len(files)),
        "bytes": str(sum(e.size for e in files)),
        "digest": manifest.digest,
    }
