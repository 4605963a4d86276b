"""Where the audit keeps its caches, and how it writes them safely.

The default is ``$MODELSHIELD_CACHE_DIR``, else ``$XDG_CACHE_HOME/modelshield``, else
``~/.cache/modelshield``. Cache files are written to a temporary name and renamed into place, so
a crash or two concurrent runs never leave a half-written file behind. A cache that cannot be
written only costs speed: callers fall back to working without it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DB_SUBDIR = "osv-db"
"""Where ``modelshield db update`` stores the downloaded database, under the cache directory."""


def default_cache_dir() -> Path:
    """The user's cache directory for modelshield."""
    explicit = os.environ.get("MODELSHIELD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "modelshield"


def default_database_dir(cache_dir: Path | None = None) -> Path:
    """Where ``modelshield db update`` writes and ``audit --offline`` looks by default."""
    return (cache_dir or default_cache_dir()) / DB_SUBDIR


def atomic_write(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` through a temporary file; False when the cache is unwritable."""
    import tempfile  # only writers need it

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        Path(tmp).replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        return False
    return True
