"""Archive hygiene shared by every container, and containers recognised but not opened.

The rules here apply to zip, tar and 7z alike: member names that escape the extraction folder,
links, duplicate names, executables, encrypted or unreadable members, bombs and broken
structure. :func:`scan_member` is how every container hands a member to the engine. RAR is
recognised but not opened (no well-kept pure-Python reader exists); HDF5, safetensors, GGUF
and ONNX are recognised by :mod:`modelshield.scanner.detect` and analysed by their own modules.
"""

from __future__ import annotations

import io
import posixpath
import re
from collections.abc import Callable

from modelshield.core.findings import Location, Severity
from modelshield.core.rules import Rule, register_rule
from modelshield.scanner.context import Buffer, LimitExceeded, ScanContext
from modelshield.scanner.detect import Format, executable_kind
from modelshield.scanner.engine import SCAN_LIMIT, handles

_ZIP_SLIP = (
    "https://security.snyk.io/research/zip-slip-vulnerability",
    "CWE-22",
)

ARCHIVE_PATH_TRAVERSAL = register_rule(
    Rule(
        id="ARCHIVE-PATH-TRAVERSAL",
        pillar="scan",
        severity=Severity.HIGH,
        title="Archive member path escapes the extraction folder",
        what="Reports a zip, tar or 7z member whose name is absolute, starts with a drive letter "
        "or a UNC prefix, contains a NUL byte, or climbs out of the folder with `..` "
        "components (with `/` or `\\` separators).",
        why='Extracting such an archive writes outside the target folder ("zip slip"): it can '
        "overwrite a shell profile, a Python module on the import path or a model a service "
        "loads next. Model archives never need such names.",
        example="A member named `../../../home/user/.bashrc` or `C:\\Windows\\evil.dll`.",
        references=_ZIP_SLIP,
    )
)

ARCHIVE_SYMLINK = register_rule(
    Rule(
        id="ARCHIVE-SYMLINK",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Archive member is a symbolic or hard link",
        what="Reports tar symbolic and hard links and zip entries whose unix mode is a symbolic "
        "link. The finding is high when the link points outside the archive (absolute, or "
        "climbing with `..`).",
        why="A link extracted first and written through second lets an archive write or read "
        "any file the extracting user can reach; a link inside a model folder can also make a "
        "loader read a file the reviewer never saw (`/etc/passwd`, an SSH key).",
        example="A tar member `weights -> /home/user/.ssh/id_rsa`.",
        references=("CWE-59", "CVE-2007-4559"),
    )
)

ARCHIVE_DUPLICATE_NAME = register_rule(
    Rule(
        id="ARCHIVE-DUPLICATE-NAME",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Two archive members have the same name",
        what="Reports an archive holding two or more members with one name. Each copy is analysed.",
        why="Readers disagree about which copy wins (the first, the last, or the one a lookup "
        "table happened to keep): a reviewer or a scanner may look at a harmless copy while "
        "the loader reads the other.",
        example="A zip with two `archive/data.pkl` entries, the second one malicious.",
        references=("CWE-436",),
    )
)

ARCHIVE_BOMB = register_rule(
    Rule(
        id="ARCHIVE-BOMB",
        pillar="scan",
        severity=Severity.HIGH,
        title="Compressed data inflates past the configured bounds",
        what="Reports a compressed stream or archive member that inflates past "
        "`limits.max_decompressed_bytes`, or past `limits.max_compression_ratio` times its "
        "compressed size once above `limits.ratio_check_min_bytes` (16 MiB). Inflation stops "
        "there; what was inflated so far is "
        "still analysed.",
        why="Decompression bombs exhaust memory and disk of whatever opens them, and are used "
        "to make scanners give up; a payload can also hide after a gigabyte of padding.",
        example="A 1 MiB gzip stream that inflates to 1 GiB of zeros followed by a pickle.",
        references=("CWE-409",),
    )
)

ARCHIVE_UNSUPPORTED = register_rule(
    Rule(
        id="ARCHIVE-UNSUPPORTED",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Container recognised but not opened",
        what="Reports a container or compressed stream whose format was recognised but that "
        "could not be opened: RAR, zstd or 7z without their optional packages, or a zip "
        "member with a compression method this scanner does not implement. The message names "
        "what to install.",
        why="What was not opened was not analysed, so it cannot be called safe; loaders with "
        "more codecs installed may read it just fine.",
        example="A `.7z` checkpoint scanned where `py7zr` is not installed.",
        references=("CWE-693",),
    )
)

ARCHIVE_EXECUTABLE_MEMBER = register_rule(
    Rule(
        id="ARCHIVE-EXECUTABLE-MEMBER",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Native executable or script inside a model archive",
        what="Reports an archive member (tensor storages included) that starts like an ELF, PE "
        "or Mach-O executable or a script with an interpreter line (`#!`).",
        why="Model weights need no programs. An executable shipped beside them is either a "
        "mistake or a dropper waiting for a loader, a setup script or a user to run it.",
        example="`model/extra/run` holding an ELF binary inside a PyTorch checkpoint.",
        references=("CWE-506",),
    )
)

ARCHIVE_ENCRYPTED_MEMBER = register_rule(
    Rule(
        id="ARCHIVE-ENCRYPTED-MEMBER",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Encrypted archive member could not be analysed",
        what="Reports a member that is really encrypted (ZipCrypto, AES or a password-protected "
        "7z): its data does not decode without the password.",
        why="An encrypted member cannot be scanned, so the archive cannot be called safe. Not "
        "high: PyTorch and NumPy cannot load encrypted members either, so it is an unscanned "
        "blob rather than an attack.",
        example="A zip created with `zip -e`.",
        references=("CWE-693",),
    )
)

ARCHIVE_MALFORMED = register_rule(
    Rule(
        id="ARCHIVE-MALFORMED",
        pillar="scan",
        severity=Severity.MEDIUM,
        title="Archive or compressed stream is structurally broken",
        what="Reports archives whose structure is inconsistent (a missing or truncated "
        "directory, members that claim more bytes than the file holds, corrupt compressed "
        "data). Everything readable is still analysed.",
        why="Readers recover from broken archives in different ways, so a scanner and a loader "
        "may see different contents; and what could not be parsed was not analysed.",
        example="A tar member that claims 1 TiB in a 10 KiB file.",
        references=("CWE-20", "CWE-436"),
    )
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
        ctx.add(
            SCAN_LIMIT.finding(
                e.location,
                f"Analysis stopped: {e.detail}. The rest of this part was not analysed; raise "
                f"limits.{e.limit} if the file is trusted to be this large.",
                evidence={"limit": e.limit},
            )
        )


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


class MemoryviewIO(io.RawIOBase):
    """A read-only, seekable file over a memoryview, for libraries that want a file object.

    Reads copy only what is asked for, so a library walking headers never copies the whole
    (memory-mapped) buffer.
    """

    def __init__(self, data: memoryview) -> None:
        """Wrap ``data``; the position starts at 0."""
        super().__init__()
        self._data = data
        self._pos = 0

    def readable(self) -> bool:
        """Always readable."""
        return True

    def seekable(self) -> bool:
        """Always seekable."""
        return True

    def tell(self) -> int:
        """The current position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move like a regular file (past the end is allowed; reads there return nothing)."""
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = len(self._data) + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: Buffer) -> int:  # type: ignore[override]
        """Copy the next bytes into ``buffer``."""
        target = memoryview(buffer).cast("B")
        chunk = self._data[self._pos : self._pos + len(target)]
        target[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def read(self, size: int = -1) -> bytes:
        """Read ``size`` bytes (all that remain when negative)."""
        end = len(self._data) if size is None or size < 0 else self._pos + size
        chunk = bytes(self._data[self._pos : end])
        self._pos += len(chunk)
        return chunk


@handles(Format.RAR)
def scan_rar(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """RAR archives are recognised but not opened (no well-kept pure-Python reader exists)."""
    unsupported(
        ctx,
        location,
        "A RAR archive",
        "Repack the model as zip or tar, or extract it with a trusted tool and scan the "
        "extracted files.",
    )
