"""Compare a model on disk with what a manifest or a signature expects, as findings.

Both ``modelshield manifest verify`` and the model-signing interop reduce what they trust to a
mapping of relative path -> :class:`Expected`, list the model with :func:`~.tree.list_tree`,
and call :func:`verify_tree`, which hashes only what it must and returns one
:class:`~modelshield.core.FileResult` per path (listed, found, or both).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from msgspec import Struct

from modelshield.core.findings import ErrorRecord, FileResult, Finding, Location
from modelshield.core.limits import Limits
from modelshield.integrity.hashing import (
    FileDigest,
    HashFailure,
    HashJob,
    blake3_available,
    combine_chunk_digests,
    hash_files,
)
from modelshield.integrity.rules import (
    MANIFEST_FILE_ADDED,
    MANIFEST_FILE_MODIFIED,
    MANIFEST_FILE_REMOVED,
)
from modelshield.integrity.tree import DiskEntry, Tree


class Expected(Struct, frozen=True):
    """What a trusted source says one path is."""

    path: str
    """Relative path with ``/`` separators."""
    kind: Literal["file", "symlink"]
    """A regular file or a symbolic link."""
    size: int | None = None
    """Size in bytes, when recorded."""
    chunks: tuple[str, ...] | None = None
    """Hex SHA-256 per chunk of the verification's chunk size, when recorded."""
    sha256: str | None = None
    """Hex SHA-256 of the whole file, when recorded."""
    blake3: str | None = None
    """Hex BLAKE3 of the whole file, when recorded."""
    link: str | None = None
    """A link's target."""


class _Diff(Struct, frozen=True):
    message: str
    evidence: dict[str, str]


def _content_diff(exp: Expected, got: FileDigest) -> _Diff | None:
    """The first way ``got`` differs from ``exp``, or None when every recorded digest agrees."""
    if exp.size is not None and exp.size != got.size:
        return _Diff(
            f"size is {got.size} bytes, expected {exp.size}",
            {"expected_size": str(exp.size), "actual_size": str(got.size)},
        )
    if exp.chunks is not None:
        if len(exp.chunks) != len(got.chunks):
            return _Diff(
                f"has {len(got.chunks)} chunks of {got.chunk_size} bytes, expected "
                f"{len(exp.chunks)}",
                {"expected_chunks": str(len(exp.chunks)), "actual_chunks": str(len(got.chunks))},
            )
        changed = [i for i, (a, b) in enumerate(zip(exp.chunks, got.chunks, strict=True)) if a != b]
        if changed:
            first = changed[0]
            start = first * got.chunk_size
            end = min(start + got.chunk_size, got.size)
            return _Diff(
                f"content differs in {len(changed)} of {len(got.chunks)} chunks, first in "
                f"bytes {start}-{end}",
                {
                    "changed_chunks": str(len(changed)),
                    "first_changed_range": f"{start}-{end}",
                    "expected_chunk_sha256": exp.chunks[first],
                    "actual_chunk_sha256": got.chunks[first],
                },
            )
    for name, want, have in (
        ("sha256", exp.sha256, got.sha256),
        ("blake3", exp.blake3, got.blake3),
    ):
        if want is not None and have is not None and want != have:
            return _Diff(
                f"{name.upper()} differs",
                {f"expected_{name}": want, f"actual_{name}": have},
            )
    return None


def _comparable(exp: Expected, got: FileDigest) -> bool:
    """Whether ``got`` holds at least one digest that ``exp`` records (never a vacuous pass)."""
    return (
        (exp.chunks is not None and (bool(got.chunks) or got.size == 0))
        or (exp.sha256 is not None and got.sha256 is not None)
        or (exp.blake3 is not None and got.blake3 is not None)
    )


def _job(exp: Expected, disk: DiskEntry, follow: bool) -> HashJob:
    return HashJob(
        path=disk.path,
        source=disk.source,
        plain=exp.sha256 is not None,
        blake3=exp.blake3 is not None and blake3_available(),
        chunked=exp.chunks is not None,
        follow=follow,
    )


def verify_tree(
    tree: Tree,
    expected: Mapping[str, Expected],
    *,
    chunk_size: int,
    limits: Limits,
    workers: int | None = None,
    display: Mapping[str, str] | None = None,
) -> list[FileResult]:
    """Hash what must be hashed and compare; one result per path, sorted by path.

    A file whose size already differs is reported without being read. A file found but not
    expected is hashed only when a missing file of the same size (or unknown size) could be
    the same content under a new name, so that a rename is reported as such.
    """
    display = display or {}
    jobs: dict[str, HashJob] = {}
    removed = {p: e for p, e in expected.items() if p not in tree.entries}
    for path, disk in tree.entries.items():
        follow = disk.kind == "file" and disk.link is not None
        exp = expected.get(path)
        if disk.kind != "file":
            continue
        if exp is not None:
            if exp.kind == "file" and (exp.size is None or exp.size == disk.size):
                jobs[path] = _job(exp, disk, follow)
            continue
        candidates = [
            e for e in removed.values() if e.kind == "file" and e.size in (None, disk.size)
        ]
        if candidates:
            jobs[path] = HashJob(
                path=path,
                source=disk.source,
                plain=any(c.sha256 is not None for c in candidates),
                blake3=any(c.blake3 is not None for c in candidates) and blake3_available(),
                chunked=any(c.chunks is not None for c in candidates),
                follow=follow,
            )
    hashed: dict[str, FileDigest | HashFailure] = {
        r.path: r
        for r in hash_files(
            list(jobs.values()),
            chunk_size=chunk_size,
            workers=workers,
            max_file_bytes=limits.max_file_bytes,
        )
    }
    # Rename detection: content found under a new name that matches a missing file.
    renamed_to: dict[str, str] = {}
    renamed_from: dict[str, str] = {}
    for path, got in hashed.items():
        if path in expected or not isinstance(got, FileDigest):
            continue
        for old, exp in removed.items():
            if (
                old not in renamed_to
                and exp.kind == "file"
                and _comparable(exp, got)
                and _content_diff(exp, got) is None
            ):
                renamed_to[old] = path
                renamed_from[path] = old
                break

    return [
        _result(
            path,
            Location(display.get(path, _display(tree, path))),
            expected.get(path),
            tree.entries.get(path),
            hashed.get(path),
            renamed_to.get(path),
            renamed_from.get(path),
        )
        for path in sorted(set(expected) | set(tree.entries))
    ]


def _result(
    path: str,
    loc: Location,
    exp: Expected | None,
    disk: DiskEntry | None,
    got: FileDigest | HashFailure | None,
    renamed_to: str | None,
    renamed_from: str | None,
) -> FileResult:
    """The result for one path: its finding (at most one), errors and computed digests."""
    findings: list[Finding] = []
    errors: list[ErrorRecord] = []
    metadata: dict[str, str] = {}
    if isinstance(got, HashFailure):
        errors.append(ErrorRecord(loc, got.message, stage="io"))
    elif isinstance(got, FileDigest):
        metadata.update(_digest_metadata(got))
        if exp is not None and not _comparable(exp, got):
            errors.append(
                ErrorRecord(
                    loc,
                    "not verified: none of the recorded digests could be computed here "
                    "(a BLAKE3-only record needs the blake3 package)",
                    stage="integrity",
                )
            )
    if disk is None and exp is not None:
        evidence = _expected_evidence(exp)
        message = "The manifest lists this file but it is not in the model."
        if renamed_to is not None:
            evidence["renamed_to"] = renamed_to
            message += f" The same content is now at '{renamed_to}' (renamed?)."
        findings.append(MANIFEST_FILE_REMOVED.finding(loc, message, evidence=evidence))
    elif disk is not None and exp is None:
        evidence = {"kind": disk.kind}
        if disk.kind == "file":
            evidence["size"] = str(disk.size)
        if disk.link is not None:
            evidence["link"] = disk.link
        message = f"This {_kind_name(disk.kind)} is in the model but not in the manifest."
        if renamed_from is not None:
            evidence["renamed_from"] = renamed_from
            message += f" Its content is that of missing '{renamed_from}' (renamed?)."
        findings.append(MANIFEST_FILE_ADDED.finding(loc, message, evidence=evidence))
    elif disk is not None and exp is not None:
        diff = _entry_diff(exp, disk, got)
        if diff is not None:
            findings.append(
                MANIFEST_FILE_MODIFIED.finding(
                    loc,
                    f"The file changed since it was recorded: {diff.message}.",
                    evidence=diff.evidence,
                )
            )
    return FileResult(
        path=loc.path,
        format=disk.kind if disk is not None else "missing",
        findings=tuple(findings),
        errors=tuple(errors),
        bytes_read=got.size if isinstance(got, FileDigest) else 0,
        size=disk.size if disk is not None else 0,
        metadata=metadata,
    )


def _entry_diff(
    exp: Expected, disk: DiskEntry, got: FileDigest | HashFailure | None
) -> _Diff | None:
    if disk.kind != exp.kind:
        return _Diff(
            f"it was a {_kind_name(exp.kind)} and is now a {_kind_name(disk.kind)}",
            {"expected_kind": exp.kind, "actual_kind": disk.kind},
        )
    if exp.kind == "symlink":
        if exp.link != disk.link:
            return _Diff(
                f"the link points to {disk.link!r} instead of {exp.link!r}",
                {"expected_link": exp.link or "", "actual_link": disk.link or ""},
            )
        return None
    if exp.size is not None and exp.size != disk.size:
        return _Diff(
            f"size is {disk.size} bytes, expected {exp.size}",
            {"expected_size": str(exp.size), "actual_size": str(disk.size)},
        )
    if isinstance(got, FileDigest):
        return _content_diff(exp, got)
    return None  # not hashed: the error record says why


def _expected_evidence(exp: Expected) -> dict[str, str]:
    evidence: dict[str, str] = {"kind": exp.kind}
    if exp.size is not None:
        evidence["size"] = str(exp.size)
    if exp.sha256 is not None:
        evidence["sha256"] = exp.sha256
    if exp.link is not None:
        evidence["link"] = exp.link
    return evidence


def _digest_metadata(got: FileDigest) -> dict[str, str]:
    meta: dict[str, str] = {}
    if got.sha256 is not None:
        meta["sha256"] = got.sha256
    if got.chunks:
        meta["sha256_chunked"] = combine_chunk_digests(got.chunks)
        meta["chunk_size"] = str(got.chunk_size)
    if got.blake3 is not None:
        meta["blake3"] = got.blake3
    return meta


def _kind_name(kind: str) -> str:
    return {"file": "regular file", "symlink": "symbolic link"}.get(kind, "special file")


def _display(tree: Tree, path: str) -> str:
    if not tree.is_dir:
        return tree.root
    return str(Path(tree.root, *path.split("/")))
