"""Archive hygiene shared by every container: names, links, duplicates, executables, members.

Zip, tar and 7z (and compressed streams) report the same problems the same way: member names
that escape the extraction folder, links, duplicate names, executables, encrypted or unreadable
members, bombs and broken structure (the rules are in :mod:`modelshield.scanner.rules`).
:func:`scan_member` is how every container hands a member's bytes back to the engine.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable

from modelshield.core.findings import Location, Severity
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.detect import executable_kind
from modelshield.scanner.memio import Buffer
from modelshield.scanner.pickle.linear import limit_reached
from modelshield.scanner.registry import Format
from modelshield.scanner.rules import (
    ARCHIVE_DUPLICATE_NAME,
    ARCHIVE_EXECUTABLE_MEMBER,
    ARCHIVE_MALFORMED,
    ARCHIVE_PATH_TRAVERSAL,
    ARCHIVE_SYMLINK,
    ARCHIVE_UNSUPPORTED,
)

_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_path(name: str) -> str | None:
    """Why extracting a member with this name would escape the target folder, or None."""
    if "\x00" in name:
        return "it contains a NUL byte"
    unified = name.replace("\\", "/")
    if unified.startswith("//"):
        return "it is a UNC network path"
    if unified.startswith("/"):
        return "it is an absolute path"
    if _DRIVE.match(unified):
        return "it starts with a drive letter"
    if ".." in unified.split("/"):
        return "it climbs out of the folder with '..'"
    return None


def link_escapes(name: str, target: str) -> bool:
    """Whether a link named ``name`` pointing at ``target`` resolves outside the archive root."""
    unified = target.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified):
        return True
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), unified))
    return joined == ".." or joined.startswith("../")


def check_member_name(ctx: ScanContext, name: str, location: Location) -> None:
    """Report a member name that escapes the extraction folder."""
    reason = unsafe_path(name)
    if reason is not None:
        ctx.add(
            ARCHIVE_PATH_TRAVERSAL.finding(
                location,
                f"The member name {name!r} is unsafe: {reason}. Extracting the archive with a "
                "tool that does not sanitise names writes outside the target folder.",
                evidence={"member": name, "reason": reason},
            )
        )


def report_link(ctx: ScanContext, name: str, target: str, location: Location, kind: str) -> None:
    """Report a symbolic or hard link member (high when it points outside the archive)."""
    escapes = link_escapes(name, target)
    where = "outside the archive" if escapes else "inside the archive"
    ctx.add(
        ARCHIVE_SYMLINK.finding(
            location,
            f"The member {name!r} is a {kind} to {target!r}, which resolves {where}. Links in "
            "model archives let an extraction read or overwrite files the archive does not hold.",
            severity=Severity.HIGH if escapes else None,
            evidence={"member": name, "target": target, "kind": kind},
        )
    )


class DuplicateNames:
    """Reports the second and later members that reuse a name."""

    def __init__(self) -> None:
        """Start with no names seen."""
        self._seen: dict[str, int] = {}

    def check(self, ctx: ScanContext, name: str, location: Location) -> int:
        """Note ``name``; report it when already seen. Returns how many times it was seen."""
        count = self._seen.get(name, 0) + 1
        self._seen[name] = count
        if count == 2:
            ctx.add(
                ARCHIVE_DUPLICATE_NAME.finding(
                    location,
                    f"More than one member is named {name!r}; loaders disagree about which "
                    "one they read. Every copy is analysed.",
                    evidence={"member": name},
                )
            )
        return count


def scan_member(
    ctx: ScanContext,
    data: Buffer,
    location: Location,
    fmt: Format | None = None,
    *,
    run: Callable[[], None] | None = None,
) -> None:
    """Analyse one member's bytes (or call ``run``), keeping the archive loop alive.

    Reports executables, then recurses one level deeper. A limit tripped inside the member
    (nesting, pickle size...) becomes a ``SCAN-LIMIT`` finding here so that the other members
    are still analysed; only the per-file time budget stops the whole file.
    """
    head = bytes(memoryview(data)[:1024])
    kind = executable_kind(head)
    if kind is not None:
        ctx.add(
            ARCHIVE_EXECUTABLE_MEMBER.finding(
                location,
                f"This member is a {kind}. Model archives need no programs; find out why it is "
                "there before anything extracts or runs it.",
                evidence={"kind": kind},
            )
        )
    try:
        if run is not None:
            run()
        else:
            ctx.scan_buffer(data, location, fmt)
    except LimitExceeded as e:
        if e.limit == "max_seconds_per_file":
            raise
        limit_reached(ctx, e)


def unsupported(ctx: ScanContext, location: Location, what: str, hint: str) -> None:
    """Report a container that was recognised but could not be opened."""
    ctx.add(
        ARCHIVE_UNSUPPORTED.finding(
            location,
            f"{what} was recognised but not opened, so its content was not analysed. {hint}",
            evidence={"container": what},
        )
    )


def malformed(ctx: ScanContext, location: Location, problem: str) -> None:
    """Report a structural problem of an archive or stream."""
    ctx.add(
        ARCHIVE_MALFORMED.finding(
            location,
            f"{problem}. Readers recover from this in different ways; everything readable was "
            "analysed.",
            evidence={"problem": problem},
        )
    )
