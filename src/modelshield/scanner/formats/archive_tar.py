"""Tar archives (plain; ``.tar.gz`` and friends arrive here after their compressed stream).

Headers are parsed by :mod:`tarfile` reading from the memoryview; member data is never read
through :mod:`tarfile` but sliced from the buffer after its declared size was checked against
what the file holds, so a member that claims a terabyte costs nothing. Entries are counted
against ``limits.max_members`` and their ``TarInfo`` objects are not kept, so a 100,000-entry
tar is walked in bounded memory.

A NeMo ``.nemo`` file is such a tar (often gzipped): its ``model_config.yaml`` is analysed by
content like any member (YAML: object tags, Hydra targets), its checkpoints by the pickle
analyser, and its member names and links by the same hygiene checks as every archive
(path traversal is how CVE-2025-23360 attacked NeMo's extraction).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from modelshield.core.findings import Location
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.formats.hygiene import (
    DuplicateNames,
    check_member_name,
    malformed,
    report_link,
    scan_member,
)
from modelshield.scanner.memio import MemoryviewIO

if TYPE_CHECKING:
    import tarfile

#: The model config every ``.nemo`` archive holds at its root.
_NEMO_CONFIG = "model_config.yaml"


def scan_tar(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Analyse every regular member of a tar archive by content, with hygiene checks."""
    import tarfile  # only for tar archives: it imports shutil and the compression modules

    limits = ctx.limits
    try:
        archive = tarfile.TarFile(fileobj=io.BufferedReader(MemoryviewIO(data)), mode="r")
    except Exception as e:  # tarfile raises several kinds on hostile headers
        malformed(ctx, location, f"The tar archive could not be opened: {e}")
        return
    duplicates = DuplicateNames()
    count = 0
    while True:
        ctx.check_deadline(location)
        try:
            member = archive.next()
        except Exception as e:  # only tarfile runs here: anything it raises is about the data
            malformed(ctx, location, f"The tar archive is broken after {count} members: {e}")
            break
        if member is None:
            break
        # tarfile keeps every TarInfo it reads; we need none of them.
        archive.members.clear()  # type: ignore[attr-defined]
        count += 1
        if count > limits.max_members:
            raise LimitExceeded(
                "max_members",
                f"the archive has more than {limits.max_members} members; only the first were "
                "analysed",
                location,
            )
        _scan_member(ctx, data, location, member, duplicates)
    ctx.bytes_read += min(len(data), archive.offset)


def _scan_member(
    ctx: ScanContext,
    data: memoryview,
    location: Location,
    member: tarfile.TarInfo,
    duplicates: DuplicateNames,
) -> None:
    name = member.name
    copy = duplicates.check(ctx, name, location.child(name))
    loc = location.child(name if copy == 1 else f"{name} (copy {copy})")
    check_member_name(ctx, name, loc)
    if name.rpartition("/")[2] == _NEMO_CONFIG:
        ctx.saw_format("nemo")
    if member.issym() or member.islnk():
        kind = "symbolic link" if member.issym() else "hard link"
        report_link(ctx, name, member.linkname, loc, kind)
        return
    if not member.isfile():
        return  # directories, devices, fifos: no content
    start = member.offset_data
    available = max(0, len(data) - start)
    if member.size > available:
        malformed(
            ctx,
            loc,
            f"The member {name!r} claims {member.size} bytes but only {available} remain in "
            "the file; the bytes present were analysed",
        )
    body = data[start : start + min(member.size, available)]
    if len(body):
        scan_member(ctx, body, loc)
