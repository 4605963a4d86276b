"""``modelshield db update``: download OSV's PyPI export for offline audits.

OSV publishes every PyPI advisory (PYSEC, GHSA and malicious-package records) as one ZIP of
JSON records. The download is streamed to a temporary file beside the destination, bounded by
``limits.max_file_bytes``, checked to be a usable OSV database (the same check an audit makes:
valid PyPI advisories, and no more than ``max_unreadable_share`` of its records unreadable),
and only then renamed into place, so an interrupted download or a mostly-invalid archive never
replaces a good database. Where it came from (the URL, when, its size and SHA-256) is written
beside it (:data:`ORIGIN_FILE`), for ``modelshield db status``. The data is licensed CC-BY 4.0
by its publishers (OSV.dev, the PyPA advisory database, GitHub).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from msgspec import Struct

from modelshield._version import __version__
from modelshield.audit.interface import AuditServiceError
from modelshield.audit.safeio import open_regular
from modelshield.core.limits import Limits

DEFAULT_EXPORT_URL = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
"""OSV's export of every PyPI advisory."""
ARCHIVE_NAME = "PyPI-all.zip"
"""The file name the download is stored under, inside the destination directory."""
ORIGIN_FILE = ".modelshield-origin.json"
"""Where ``db update`` records the download's provenance, in the database directory (hidden:
the database reader skips it)."""
_CHUNK = 1 << 20


class DownloadResult(Struct, frozen=True):
    """What ``db update`` stored."""

    path: Path
    """The stored archive."""
    size: int
    """Its size in bytes."""
    records: int
    """How many OSV records it holds."""
    sha256: str = ""
    """The archive's SHA-256, hex."""


def download_database(
    dest: Path,
    url: str = DEFAULT_EXPORT_URL,
    *,
    timeout: float = 60.0,
    limits: Limits | None = None,
    max_unreadable_share: float = 0.01,
) -> DownloadResult:
    """Download the export into ``dest``; raises AuditServiceError on any failure, including an
    archive the audit would refuse (no valid PyPI advisory, too many unreadable records)."""
    limits = limits or Limits()
    try:
        dest.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=".download.", suffix=".zip")
    except OSError as e:
        raise AuditServiceError(f"cannot write to {dest}: {e.strerror or e}") from e
    tmp = Path(tmp_name)
    try:
        size, digest = _fetch(url, fd, timeout, limits.max_file_bytes)
        records = _check_archive(tmp, url, limits, max_unreadable_share)
        target = dest / ARCHIVE_NAME
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    origin = {
        "url": url,
        "downloaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "archive": ARCHIVE_NAME,
        "size": str(size),
        "sha256": digest,
        "records": str(records),
    }
    from modelshield.audit.cache import atomic_write

    atomic_write(dest / ORIGIN_FILE, json.dumps(origin, indent=2).encode())
    return DownloadResult(target, size, records, digest)


def read_origin(path: Path) -> dict[str, str]:
    """What ``db update`` recorded about the database at ``path`` ({} when nothing, or when
    the record is about another file)."""
    folder = path if path.is_dir() else path.parent
    try:
        fh, _ = open_regular(folder / ORIGIN_FILE)
        with fh:
            doc = json.loads(fh.read(1 << 16))
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, Mapping) or (not path.is_dir() and doc.get("archive") != path.name):
        return {}
    return {str(k): str(v) for k, v in doc.items() if isinstance(v, str | int)}


def _fetch(url: str, fd: int, timeout: float, cap: int) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"User-Agent": f"modelshield/{__version__}"})
    size = 0
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
            while chunk := resp.read(_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise AuditServiceError(
                        f"{url} is larger than limits.max_file_bytes ({cap} bytes); not stored"
                    )
                out.write(chunk)
                digest.update(chunk)
    except urllib.error.HTTPError as e:
        raise AuditServiceError(f"downloading {url} failed: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise AuditServiceError(
            f"cannot download {url}: {reason}",
            "Check the network, or pass --url for a mirror of OSV's PyPI export.",
        ) from e
    return size, digest.hexdigest()


def _check_archive(path: Path, url: str, limits: Limits, max_unreadable_share: float) -> int:
    """How many OSV records the archive holds; raises AuditServiceError when an audit would
    refuse it (the same check: :meth:`OfflineDatabase.problem`)."""
    import zipfile

    from modelshield.audit.sources.osv_db import OfflineDatabase

    if not zipfile.is_zipfile(path):
        raise AuditServiceError(f"{url} did not send a ZIP archive")
    db = OfflineDatabase(
        path, cache_dir=None, limits=limits, max_unreadable_share=max_unreadable_share
    )
    try:
        problem = db.problem()
        records = db.stats().records
    finally:
        db.close()
    if problem:
        raise AuditServiceError(
            f"{url} is not a usable OSV export; the previous database is kept: "
            + problem.replace(str(path), "the download"),
            "Check the URL (--url): it must serve OSV's PyPI export (a ZIP of JSON records).",
        )
    return records
