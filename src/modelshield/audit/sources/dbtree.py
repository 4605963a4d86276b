"""The files of an offline OSV database directory, and a quick check that none has changed.

A compiled index is valid while the database holds the files it was compiled from: the same
paths, sizes and modification times. Listing them takes one ``scandir`` per folder and one
``stat`` per file, and with 2,600 files in 660 folders (the PyPA database) that listing is the
largest cost of an audit that reuses the index. The quick check skips the ``scandir`` calls:
a folder whose modification time is unchanged holds the same names (creating, removing or
renaming an entry updates it), so it is enough to ``stat`` each folder
(:func:`folders_unchanged`) and each file whose content matters (:func:`files_unchanged`; the
index checks the files of the packages an audit reads, see
:mod:`modelshield.audit.sources.osv_db`).

File systems store times with a granularity (up to two seconds), so a folder changed right
after it was listed could keep its time. Such a *racy* folder (modified less than
:data:`RACY_NS` before the listing began) makes the quick check unavailable for that index: the
full listing is compared instead, as it is when a folder could not be read.
"""

from __future__ import annotations

import os
import stat
import time
from typing import Any, NamedTuple

SUFFIXES = (".json", ".yaml", ".yml", ".zip")
"""The files a database directory may hold records in."""

RACY_NS = 2_000_000_000
"""A folder modified this recently (in nanoseconds) before the listing cannot be trusted."""

Folder = tuple[str, int, list[tuple[str, int, int]]]
"""``(path relative to the database, mtime_ns, [(file name, size, mtime_ns), ...])``."""


class Tree(NamedTuple):
    """What one walk of a database directory found."""

    files: list[tuple[str, int, int, str]]
    """``(relative path, size, mtime_ns, full path)`` of every candidate file, sorted; size
    and mtime are -1 when the file could not be ``stat``-ed."""
    folders: list[Folder] | None
    """Every folder with its files, for :func:`unchanged`; None when a folder could not be
    read or was racy."""


def walk(root: str) -> Tree:
    """List the candidate files under ``root``, skipping hidden entries and links to folders."""
    started = time.time_ns()
    found: list[tuple[str, int, int, str]] = []
    folders: list[Folder] | None = []
    stack = [(root, "")]
    while stack:
        folder, rel = stack.pop()
        try:
            # The folder's time is read before its entries: a change while they are read
            # leaves a different time behind.
            mtime = os.stat(folder).st_mtime_ns  # noqa: PTH116 (str paths: see unchanged)
            it = os.scandir(folder)
        except OSError:
            folders = None
            continue
        listed: list[tuple[str, int, int]] = []
        with it:
            for entry in it:
                name = entry.name
                if name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, f"{rel}{name}/"))
                elif name.endswith(SUFFIXES):
                    try:
                        st = entry.stat()
                        size, when = st.st_size, st.st_mtime_ns
                    except OSError:
                        size = when = -1
                    found.append((rel + name, size, when, entry.path))
                    listed.append((name, size, when))
        if folders is not None:
            if mtime >= started - RACY_NS:
                folders = None
            else:
                folders.append((rel, mtime, listed))
    found.sort()
    return Tree(found, folders)


def folders_unchanged(root: str, folders: Any) -> bool:
    """Whether every folder ``[rel, mtime_ns]`` recorded under ``root`` keeps its time.

    Equal times mean the same names in each folder: no file was added, removed or renamed
    anywhere (files edited in place are checked by :func:`files_unchanged`). Anything malformed
    is reported as a change.
    """
    base = root if root.endswith("/") else root + "/"  # relative paths use "/" everywhere
    # Plain strings and os.stat: building Path objects would cost as much as the stat calls.
    try:
        for rel, mtime in folders:
            try:
                st = os.stat(base + rel)  # noqa: PTH116 (relative folders end with "/")
            except OSError:
                return False
            if st.st_mtime_ns != mtime or not stat.S_ISDIR(st.st_mode):
                return False
    except (TypeError, ValueError):
        return False
    return True


def files_unchanged(root: str, files: Any) -> bool:
    """Whether every file ``[rel, size, mtime_ns]`` recorded under ``root`` is as recorded.

    A file recorded with size and time -1 (it could not be ``stat``-ed) must still fail to be.
    Anything malformed is reported as a change.
    """
    base = root if root.endswith("/") else root + "/"
    try:
        for rel, size, when in files:
            try:
                st = os.stat(base + rel)  # noqa: PTH116
            except OSError:
                if size != -1 or when != -1:
                    return False
                continue
            if st.st_mtime_ns != when or st.st_size != size:
                return False
    except (TypeError, ValueError):
        return False
    return True
