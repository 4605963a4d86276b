"""``modelshield db update``: download OSV's PyPI export for offline audits.

OSV publishes every PyPI advisory (PYSEC, GHSA and malicious-package records) as one ZIP of
JSON records. The download is streamed to a temporary file beside the destination, bounded by
``limits.max_file_bytes``, checked to be a ZIP of JSON records, and only then renamed into place,
so an interrupted download never replaces a good database. The data is licensed CC-BY 4.0 by
its publishers (OSV.dev, the PyPA advisory database, GitHub).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from msgspec import Struct

from modelshield._version import __version__
from modelshield.audit.interface import AuditServiceError
from modelshield.core.limits import Limits

DEFAULT_EXPORT_URL = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
"""OSV's export of every PyPI advisory."""
ARCHIVE_NAME = "PyPI-all.zip"
"""The file name the download is stored under, inside the destination directory."""
_CHUNK = 1 << 20


class DownloadResult(Struct, frozen=True):
    """What ``db update`` stored."""

    path: Path
    """The stored archive."""
    size: int
    """Its size in bytes."""
    records: int
    """How many JSON records it holds."""


def download_database(
    dest: Path,
    url: str = DEFAULT_EXPORT_URL,
    *,
    timeout: float = 60.0,
    limits: Limits | None = None,
) -> DownloadResult:
    """Download the export into ``dest``; raises AuditServiceError on any failure."""
    limits = limits or Limits()
    try:
        dest.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=".download.", suffix=".zip")
    except OSError as e:
        raise AuditServiceError(f"cannot write to {dest}: {e.strerror or e}") from e
    tmp = Path(tmp_name)
    try:
        size = _fetch(url, fd, timeout, limits.max_file_bytes)
        records = _check_archive(tmp, url, limits)
        target = dest / ARCHIVE_NAME
        tmp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return DownloadResult(target, size, records)


def _fetch(url: str, fd: int, timeout: float, cap: int) -> int:
    request = urllib.request.Request(url, headers={"User-Agent": f"modelshield/{__version__}"})
    size = 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
            while chunk := resp.read(_CHUNK):
                size += len(chunk)
                if size > cap:
                    raise AuditServiceError(
                        f"{url} is larger than limits.max_file_bytes ({cap} bytes); not stored"
                    )
                out.write(chunk)
    except urllib.error.HTTPError as e:
        raise AuditServiceError(f"downloading {url} failed: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise AuditServiceError(
            f"cannot download {url}: {reason}",
            "Check the network, or pass --url for a mirror of OSV's PyPI export.",
        ) from e
    return size


def _check_archive(path: Path, url: str, limits: Limits) -> int:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise AuditServiceError(f"{url} did not send a ZIP archive: {e}") from e
    if len(names) > limits.max_members:
        raise AuditServiceError(
            f"{url} holds {len(names)} files, above limits.max_members ({limits.max_members})"
        )
    records = sum(1 for n in names if n.endswith(".json"))
    if records == 0:
        raise AuditServiceError(f"{url} holds no OSV JSON records")
    return records
