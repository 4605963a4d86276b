"""Listing a model's files for manifests and signatures, without following links out of it.

A model is a directory (every file under it, recursively) or a single file. Entries are keyed
by their path relative to the model root with ``/`` separators. Symbolic links are listed as
links (never followed unless asked), and anything that is neither a regular file nor a link
(a FIFO, a socket, a device) is listed as ``other`` so that it can be reported: opening a FIFO
would block forever.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from msgspec import Struct, field

from modelshield.core.limits import Limits

Kind = Literal["file", "symlink", "other"]
"""What a path is: a regular file, a symbolic link, or anything else."""

DEFAULT_IGNORE: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")
"""Paths left out of a directory's manifest by default (the same as model-signing's)."""


class DiskEntry(Struct, frozen=True):
    """One path found under a model root."""

    path: str
    """Relative path with ``/`` separators (for a single-file model: its file name)."""
    source: str
    """The path to open."""
    kind: Kind
    """Regular file, symbolic link or other."""
    size: int = 0
    """Size in bytes (regular files only; a followed link gives its target's size)."""
    link: str | None = None
    """A symbolic link's target, as written in the link."""


class Tree(Struct, frozen=True):
    """The result of listing a model."""

    root: str
    """The model path as given."""
    is_dir: bool
    """Whether the model is a directory (else a single file)."""
    entries: dict[str, DiskEntry] = field(default_factory=dict)
    """Entries by relative path."""
    problems: tuple[tuple[str, str], ...] = ()
    """``(path, message)`` for every directory that could not be listed or limit reached."""


def is_ignored(path: str, ignore: Iterable[str]) -> bool:
    """Whether a relative path is an ignored path or lies under one (path prefix, not glob)."""
    for ig in ignore:
        ig = ig.strip("/")
        if ig and (path == ig or path.startswith(ig + "/")):
            return True
    return False


def relative_inside(root: str, path: str) -> str | None:
    """``path`` relative to directory ``root`` with ``/`` separators, or None if outside."""
    try:
        rel = os.path.relpath(Path(path).absolute(), Path(root).absolute())
    except ValueError:  # another drive on Windows
        return None
    if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return None
    return rel.replace(os.sep, "/")


def _entry(rel: str, full: str, st: os.stat_result, follow_links: bool) -> DiskEntry:
    if stat.S_ISLNK(st.st_mode):
        target = str(Path(full).readlink())
        if follow_links:
            try:
                tst = Path(full).stat()
            except OSError:
                return DiskEntry(rel, full, "symlink", link=target)
            if stat.S_ISREG(tst.st_mode):
                return DiskEntry(rel, full, "file", tst.st_size, link=target)
        return DiskEntry(rel, full, "symlink", link=target)
    if stat.S_ISREG(st.st_mode):
        return DiskEntry(rel, full, "file", st.st_size)
    return DiskEntry(rel, full, "other")


def list_tree(
    root: str,
    ignore: Sequence[str],
    limits: Limits,
    *,
    follow_links: bool = False,
) -> Tree:
    """List every entry under ``root`` (or ``root`` itself when it is a file).

    At most ``limits.max_members`` entries are listed; past that a problem is recorded, so that
    an incomplete listing is never taken for a complete one. ``follow_links`` lists a link to a
    regular file as that file (model-signing's ``allow_symlinks``); links are never descended.
    """
    st = os.lstat(root)  # OSError for a missing root goes to the caller
    if not stat.S_ISDIR(st.st_mode):
        name = Path(root).name or Path(root).absolute().name
        return Tree(root, False, {name: _entry(name, root, st, follow_links)})
    entries: dict[str, DiskEntry] = {}
    problems: list[tuple[str, str]] = []
    stack = [("", root)]
    while stack:
        prefix, directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                items = sorted(it, key=lambda e: e.name)
        except OSError as e:
            problems.append((directory, f"cannot list directory: {e.strerror or e}"))
            continue
        subdirs = []
        for item in items:
            rel = prefix + item.name
            if is_ignored(rel, ignore):
                continue
            try:
                est = item.stat(follow_symlinks=False)
            except OSError as e:
                problems.append((item.path, f"cannot stat: {e.strerror or e}"))
                continue
            if stat.S_ISDIR(est.st_mode):
                subdirs.append((rel + "/", item.path))
                continue
            if len(entries) >= limits.max_members:
                problems.append(
                    (
                        root,
                        f"more than {limits.max_members} files; the rest were not listed "
                        "(raise limits.max_members)",
                    )
                )
                return Tree(root, True, entries, tuple(problems))
            try:
                entries[rel] = _entry(rel, item.path, est, follow_links)
            except OSError as e:
                problems.append((item.path, f"cannot read link: {e.strerror or e}"))
        stack.extend(reversed(subdirs))
    return Tree(root, True, entries, tuple(problems))
