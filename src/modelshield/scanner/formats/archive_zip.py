"""Zip archives, read the way PyTorch reads them, including PyTorch zip checkpoints.

Every member is analysed by content, whatever its name (a pickle named ``data.txt`` is found).
The directory is read with :mod:`modelshield.scanner.zipreader`, which ignores what PyTorch's
reader ignores (encryption flag bits, CRC errors, a local header whose name differs from the
central directory's) and reports each of those differences here as a finding.

A PyTorch checkpoint is a zip whose members live under one folder holding ``data.pkl``. Its
pickles are analysed with persistent ids expected, and its tensor storages (``data/<N>``) are
not read: only their first bytes are sniffed, which keeps a multi-gigabyte checkpoint fast.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from msgspec import Struct

from modelshield.core.findings import Location
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.detect import executable_kind, sniff_strong
from modelshield.scanner.formats.hygiene import (
    DuplicateNames,
    check_member_name,
    malformed,
    report_link,
    scan_member,
    unsupported,
)
from modelshield.scanner.formats.keras import (
    KERAS_ARCHIVE_FILES,
    is_keras_archive,
    scan_keras_member,
)
from modelshield.scanner.memio import Spill
from modelshield.scanner.pickle.analyzer import analyze_pickles
from modelshield.scanner.registry import Format
from modelshield.scanner.rules import (
    ARCHIVE_BOMB,
    ARCHIVE_ENCRYPTED_MEMBER,
    TORCHSCRIPT_SUSPICIOUS_CODE,
    ZIP_CRC_MISMATCH,
    ZIP_FLAG_ANOMALY,
    ZIP_HEADER_MISMATCH,
    ZIP_NAME_MISMATCH,
    ZIP_OVERLAPPING_ENTRIES,
    ZIP_POLYGLOT,
)
from modelshield.scanner.zipreader import (
    FLAG_ENCRYPTED,
    FLAG_PATCHED,
    FLAG_STRONG_ENCRYPTION,
    METHOD_AES,
    METHOD_NAMES,
    METHOD_STORED,
    SUPPORTED_METHODS,
    MemberData,
    ZipDirectory,
    ZipEntry,
    ZipError,
    member_ranges,
    read_directory,
    read_member,
)

_PEEK = 64
_LINK_TARGET_MAX = 4096
_CRC_CHECK_MAX = 64 << 20  # stored members larger than this are not read just for their CRC
_META_MAX = 64
_SUSPICIOUS_CODE = re.compile(
    r"\bos\s*\.\s*(?:system|popen|exec\w*|spawn\w*)\b|\bsubprocess\b|__import__|"
    r"\bexec\s*\(|\beval\s*\("
)
_STORAGE = re.compile(r"^data/\d+$")
_DATA_PKL = re.compile(r"[^/]+/data\.pkl", re.IGNORECASE)


class _TorchLayout(Struct, frozen=True):
    prefix: str
    """The checkpoint's top-level folder, with a trailing slash."""
    torchscript: bool = False
    """Whether it is a TorchScript archive (``constants.pkl`` or ``code/``), whose pickles
    torch.jit's own unpickler reads."""


def scan_zip(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Analyse every member of a zip archive by content, with archive hygiene checks."""
    limits = ctx.limits
    try:
        directory = read_directory(data, max_members=limits.max_members)
    except ZipError as e:
        malformed(ctx, location, f"No zip entries could be read: {e}")
        return
    end = directory.end
    ctx.bytes_read += (end.cd_size + 22) if end is not None else 0
    if directory.problems:
        malformed(
            ctx, location, "The zip structure is inconsistent: " + "; ".join(directory.problems)
        )
    _check_prefix(ctx, data, location, directory)
    _check_overlaps(ctx, location, directory)
    torch = _torch_layout(directory.entries)
    if torch is not None:
        ctx.saw_format("pytorch-zip")
    keras = is_keras_archive(e.name for e in directory.entries)
    duplicates = DuplicateNames()
    for entry in directory.entries:
        ctx.check_deadline(location)
        _scan_entry(ctx, data, location, entry, torch, duplicates, keras=keras)
    if directory.truncated:
        raise LimitExceeded(
            "max_members",
            f"the archive has more than {limits.max_members} members; only the first were analysed",
            location,
        )


def _scan_entry(
    ctx: ScanContext,
    data: memoryview,
    location: Location,
    entry: ZipEntry,
    torch: _TorchLayout | None,
    duplicates: DuplicateNames,
    *,
    keras: bool = False,
) -> None:
    names = (entry.name,) if entry.local_name is None else (entry.name, entry.local_name)
    shown = (
        entry.name
        if entry.local_name is None
        else f"{entry.name} (local header: {entry.local_name})"
    )
    copy = duplicates.check(ctx, entry.name, location.child(entry.name))
    if copy > 1:
        shown = f"{shown} (copy {copy})"
    loc = location.child(shown)
    ctx.bytes_read += 30 + len(entry.raw_name)
    for name in names:
        check_member_name(ctx, name, loc)
    if entry.local_name is not None:
        ctx.add(
            ZIP_NAME_MISMATCH.finding(
                loc,
                f"The central directory names this member {entry.name!r} but its local header "
                f"says {entry.local_name!r}. It was analysed under both names.",
                evidence={"central_name": entry.name, "local_name": entry.local_name},
            )
        )
    if entry.local_mismatch:
        fields = ", ".join(entry.local_mismatch)
        ctx.add(
            ZIP_HEADER_MISMATCH.finding(
                loc,
                f"The local header and the central directory disagree on: {fields}. The "
                "central directory's values were used, as PyTorch's reader does.",
                evidence={"fields": fields},
            )
        )
    if entry.data_offset is None:
        malformed(
            ctx, loc, f"The member {entry.name!r} has no local header where the directory says"
        )
        return
    if entry.is_dir:
        return
    if entry.method == METHOD_AES:
        _encrypted(ctx, loc, "AES encryption (method 99)")
        return
    if entry.method not in SUPPORTED_METHODS:
        method = METHOD_NAMES.get(entry.method, f"method {entry.method}")
        unsupported(
            ctx,
            loc,
            f"A zip member compressed with {method}",
            "Re-save the archive with stored or deflated members to have it analysed.",
        )
        return
    if entry.is_symlink:
        target = read_member(
            data, entry, max_bytes=_LINK_TARGET_MAX, max_ratio=1, limit=_LINK_TARGET_MAX
        )
        report_link(
            ctx, entry.name, bytes(target.data).decode("utf-8", "replace"), loc, "symbolic link"
        )
        return  # its data is the link target, already reported
    role = _role(names, torch)
    if role == "storage":
        _peek_storage(ctx, data, entry, loc)
        return
    with _reading(ctx, data, entry, loc) as member:
        if member is None:
            return
        torchscript = torch is not None and torch.torchscript
        if role == "pickle" or (role == "debug_pickle" and torchscript):
            scan_member(
                ctx,
                member.data,
                loc,
                run=lambda: _torch_pickle(ctx, member, loc, torchscript=torchscript),
            )
            return
        if role == "code":
            _check_code(ctx, member.data, loc)
        elif keras and entry.name in KERAS_ARCHIVE_FILES:
            # A Keras 3 .keras file: its config names every object the loader builds.
            scan_keras_member(ctx, entry.name, bytes(member.data), loc)
        elif role in ("torch_archive_version", "torch_byteorder"):
            text = bytes(memoryview(member.data)[:_META_MAX]).decode("ascii", "replace").strip()
            ctx.metadata[role] = text
        scan_member(ctx, member.data, loc)


@contextmanager
def _reading(
    ctx: ScanContext, data: memoryview, entry: ZipEntry, loc: Location
) -> Iterator[MemberData | None]:
    """:func:`_read` a member; what was inflated is freed when the block ends."""
    with ctx.spilling() as spill:
        yield _read(ctx, data, entry, loc, spill)


def _read(
    ctx: ScanContext, data: memoryview, entry: ZipEntry, loc: Location, spill: Spill
) -> MemberData | None:
    """Read a member like PyTorch does, reporting encryption, flags, CRC and bombs.

    Inflated data goes to ``spill`` and counts against the file's decompression budget.
    """
    limits = ctx.limits
    flagged = entry.flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTION | FLAG_PATCHED)
    budget = ctx.inflate_budget()
    member = read_member(
        data,
        entry,
        max_bytes=budget,
        max_ratio=limits.max_compression_ratio,
        ratio_min_bytes=limits.ratio_check_min_bytes,
        # Stored data is analysed in place; a huge stored blob is not read only for its CRC.
        check_crc=bool(flagged)
        or entry.method != METHOD_STORED
        or entry.compressed_size <= _CRC_CHECK_MAX,
        sink=spill,
        progress=lambda: ctx.check_deadline(loc),
    )
    ctx.inflated += member.produced
    ctx.bytes_read += member.consumed + member.produced
    crc_ok = member.crc_ok
    if flagged:
        zipcrypto_header = (
            entry.method == METHOD_STORED and entry.compressed_size == entry.size + 12
        )
        # A reader that ignores the flag reads stored bytes as they are: if they start like
        # something (ciphertext never does), the "encryption" is a disguise.
        head = bytes(memoryview(member.data)[:_PEEK])
        clear = sniff_strong(head) is not None or executable_kind(head) is not None
        if (member.error is not None or crc_ok is False or zipcrypto_header) and not clear:
            _encrypted(ctx, loc, "the data does not decode without a password")
            return None
        ctx.add(
            ZIP_FLAG_ANOMALY.finding(
                loc,
                f"General-purpose flags 0x{entry.flags:04x} claim encryption or patched data, "
                "but the member reads in the clear. Python's zipfile refuses it while "
                "torch.load reads it; it was analysed.",
                evidence={"flags": f"0x{entry.flags:04x}"},
            )
        )
    elif crc_ok is False:
        ctx.add(
            ZIP_CRC_MISMATCH.finding(
                loc,
                f"The member's CRC-32 is recorded as 0x{entry.crc:08x} but its data does not "
                "match. Strict readers refuse it while torch.load ignores CRCs; it was analysed.",
                evidence={"recorded_crc": f"0x{entry.crc:08x}"},
            )
        )
    if member.bomb is not None:
        ctx.add(
            ARCHIVE_BOMB.finding(
                loc,
                f"The member was not inflated fully: {ctx.bomb_reason(member.bomb, budget)}. "
                "The first "
                f"{len(member.data)} bytes were analysed, the rest was not.",
                evidence={
                    "compressed": str(entry.compressed_size),
                    "inflated": str(len(member.data)),
                },
            )
        )
    elif member.error is not None or member.notes:
        malformed(
            ctx,
            loc,
            f"The member could not be read fully: {member.error or '; '.join(member.notes)}",
        )
    return member


def _encrypted(ctx: ScanContext, loc: Location, how: str) -> None:
    ctx.add(
        ARCHIVE_ENCRYPTED_MEMBER.finding(
            loc,
            f"This member is encrypted ({how}), so its content could not be analysed. Scan the "
            "decrypted files, or do not load what you cannot inspect.",
            evidence={"encryption": how},
        )
    )


def _role(names: tuple[str, ...], torch: _TorchLayout | None) -> str:
    """What a member is inside a PyTorch checkpoint; ``member`` for anything else.

    PyTorch's reader (miniz) looks records up by name without regard to case, so
    ``archive/DATA.PKL`` is the checkpoint's pickle and ``ARCHIVE/Data/0`` a storage.
    """
    if torch is None:
        return "member"
    prefix = torch.prefix.lower()
    inner = [n[len(prefix) :].lower() for n in names if n.lower().startswith(prefix)]
    if not inner:
        return "member"
    # A member counts as a pickle if either of its names says so (both are analysed), and as
    # a storage only if all of them do.
    if any("/" not in n and n.endswith(".pkl") for n in inner):
        return "pickle"
    if any(n.startswith("code/") and n.endswith(".debug_pkl") for n in inner):
        return "debug_pickle"
    if len(inner) == len(names) and all(_STORAGE.match(n) for n in inner):
        return "storage"
    if any(n.startswith("code/") and n.endswith(".py") for n in inner):
        return "code"
    if any(n in ("version", ".data/version") for n in inner):
        return "torch_archive_version"
    if any(n == "byteorder" for n in inner):
        return "torch_byteorder"
    return "member"


def _torch_layout(entries: tuple[ZipEntry, ...]) -> _TorchLayout | None:
    """The checkpoint folder when some member is ``<folder>/data.pkl``, in any case.

    PyTorch takes the folder of the first entry and looks ``data.pkl`` up in it without regard
    to case; prefer that folder, else the first folder that holds a ``data.pkl``.
    """
    folders = [
        name.split("/", 1)[0]
        for e in entries
        for name in (e.name, e.local_name)
        if name is not None and _DATA_PKL.fullmatch(name)
    ]
    if not folders:
        return None
    first = entries[0].name.split("/", 1)[0]
    prefix = (first if first.lower() in {f.lower() for f in folders} else folders[0]) + "/"
    # torch.load reads the archive as TorchScript when a record is exactly "constants.pkl".
    torchscript = any(
        name == prefix + "constants.pkl" or name.startswith(prefix + "code/")
        for e in entries
        for name in (e.name, e.local_name)
        if name is not None
    )
    return _TorchLayout(prefix, torchscript)


def _peek_storage(ctx: ScanContext, data: memoryview, entry: ZipEntry, loc: Location) -> None:
    """Sniff a tensor storage's first bytes; analyse it only if it starts like something else."""
    peek = read_member(
        data, entry, max_bytes=_PEEK, max_ratio=ctx.limits.max_compression_ratio, limit=_PEEK
    )
    head = bytes(peek.data)
    ctx.bytes_read += len(head)
    if sniff_strong(head) is None and executable_kind(head) is None:
        return
    with _reading(ctx, data, entry, loc) as member:
        if member is not None:
            scan_member(ctx, member.data, loc)


def _torch_pickle(
    ctx: ScanContext, member: MemberData, loc: Location, *, torchscript: bool = False
) -> None:
    """Analyse a checkpoint pickle with persistent ids expected (they reference storages).

    In a TorchScript archive (``torchscript``) torch.jit's own unpickler reads the pickles.
    """
    if ctx.depth >= ctx.limits.max_nested_depth:
        raise LimitExceeded(
            "max_nested_depth",
            f"nesting deeper than {ctx.limits.max_nested_depth} levels was not followed",
            loc,
            unfollowed=member.data,
        )
    ctx.saw_format(Format.PICKLE.value)
    ctx.depth += 1
    try:
        analyze_pickles(
            ctx,
            memoryview(member.data),
            loc,
            persistent_ids_expected=True,
            torchscript=torchscript,
        )
    finally:
        ctx.depth -= 1


def _check_code(ctx: ScanContext, code: bytes | bytearray | memoryview, loc: Location) -> None:
    """Flag TorchScript source that reaches for the OS or evaluates code."""
    ctx.saw_format("torchscript")
    text = bytes(code).decode("utf-8", "replace")
    matches = list(_SUSPICIOUS_CODE.finditer(text))
    if matches:
        hits = sorted({re.sub(r"\s+", "", m.group(0)) for m in matches})
        line = text.count("\n", 0, matches[0].start()) + 1
        ctx.add(
            TORCHSCRIPT_SUSPICIOUS_CODE.finding(
                loc,
                f"TorchScript code uses {', '.join(hits)} (first on line {line}). Compiled "
                "models do not need process or code-evaluation calls.",
                evidence={"calls": ", ".join(hits), "line": str(line)},
            )
        )


def _check_prefix(
    ctx: ScanContext, data: memoryview, location: Location, directory: ZipDirectory
) -> None:
    """Report and analyse data placed before the first entry (a polyglot)."""
    starts = [e.header_offset for e in directory.entries if e.data_offset is not None]
    first = min(starts, default=0)
    if first <= 0:
        return
    ctx.add(
        ZIP_POLYGLOT.finding(
            location,
            f"{first} bytes come before the first zip entry. Loaders that read the file from "
            "its start see that data instead of the archive; it was analysed by content.",
            evidence={"prefix_bytes": str(first)},
        )
    )
    scan_member(ctx, data[:first], location.child("<prefix>"))


def _check_overlaps(ctx: ScanContext, location: Location, directory: ZipDirectory) -> None:
    ranges = member_ranges(directory.entries)
    overlaps = 0
    example: tuple[int, int] | None = None
    furthest_end, furthest_index = -1, -1
    for start, end, index in ranges:
        if start < furthest_end:
            overlaps += 1
            example = example or (furthest_index, index)
        if end > furthest_end:
            furthest_end, furthest_index = end, index
    if overlaps and example is not None:
        a, b = (directory.entries[i].name for i in example)
        ctx.add(
            ZIP_OVERLAPPING_ENTRIES.finding(
                location,
                f"{overlaps} entries overlap the data of another entry (first: {a!r} and "
                f"{b!r}). This is how non-recursive zip bombs and shadowed members are built.",
                evidence={"overlaps": str(overlaps), "first": a, "second": b},
            )
        )
