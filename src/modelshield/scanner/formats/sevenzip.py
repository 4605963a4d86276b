"""7z archives, through the optional ``py7zr`` package (``pip install 'modelshield[archives]'``).

The listing is checked first: member count against ``limits.max_members``, declared sizes
against what is left of the file's ``limits.max_decompressed_bytes`` and the compression ratio;
names and links against the hygiene rules. Members are then inflated through a bounded writer
into :class:`~modelshield.scanner.memio.Spill` buffers (in memory up to a small window, in an
anonymous memory-mapped temporary file beyond, never under the member's name), and each one is
analysed as soon as py7zr finishes it, then freed.
"""

from __future__ import annotations

import io
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, cast

from modelshield.core.findings import Location
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.formats.hygiene import (
    DuplicateNames,
    check_member_name,
    malformed,
    report_link,
    scan_member,
    unsafe_path,
    unsupported,
)
from modelshield.scanner.memio import MemoryviewIO, Spill
from modelshield.scanner.rules import ARCHIVE_BOMB, ARCHIVE_ENCRYPTED_MEMBER

if TYPE_CHECKING:
    from py7zr.io import WriterFactory

_MIB = 1 << 20


def scan_7z(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Analyse every member of a 7z archive by content (needs py7zr)."""
    try:
        import py7zr
        import py7zr.exceptions
    except ImportError:
        unsupported(
            ctx, location, "A 7z archive", "Install it with: pip install 'modelshield[archives]'"
        )
        return
    try:
        archive = _open(py7zr, data, max(1, ctx.inflate_budget()))
    except py7zr.exceptions.PasswordRequired:
        _encrypted(ctx, location, "its header is encrypted")
        return
    except Exception as e:  # py7zr raises many kinds (LZMAError, KeyError...) on bad input
        malformed(ctx, location, f"The 7z archive could not be opened: {type(e).__name__}: {e}")
        return
    with archive:
        targets = _check_listing(ctx, archive, data, location)
        if archive.needs_password():
            _encrypted(ctx, location, "it is password-protected")
            return
        if not targets:
            return
        factory = _ScanningFactory(ctx, location)
        try:
            _extract(ctx, archive, targets, factory, location)
            factory.flush()  # members an older py7zr never closed
        except _AnalysisFailed as e:
            raise e.error from None  # ours, not py7zr's: let the engine see it


def _open(py7zr: Any, data: memoryview, limit: int) -> Any:
    try:
        return py7zr.SevenZipFile(
            io.BufferedReader(MemoryviewIO(data)), mode="r", max_extract_size=limit
        )
    except TypeError:
        # py7zr < 1.0 has no total-size bound; the bounded writer still caps every member.
        return py7zr.SevenZipFile(io.BufferedReader(MemoryviewIO(data)), mode="r")


def _extract(
    ctx: ScanContext,
    archive: Any,
    targets: list[str],
    factory: _ScanningFactory,
    location: Location,
) -> None:
    import py7zr.exceptions

    try:
        # py7zr duck-types its writer factory; ours is not a subclass so that this module
        # imports without py7zr.
        archive.extract(targets=targets, factory=cast("WriterFactory", factory))
    except _AnalysisFailed:
        raise
    except py7zr.exceptions.PasswordRequired:
        _encrypted(ctx, location, "it is password-protected")
    except Exception as e:  # any py7zr failure on hostile input
        kind = type(e).__name__
        if kind == "DecompressionBombError":
            _bomb(ctx, location, str(e))
        elif isinstance(e, py7zr.exceptions.UnsupportedCompressionMethodError):
            unsupported(ctx, location, "A 7z archive using an unsupported method", str(e))
        else:
            malformed(ctx, location, f"The 7z archive could not be read fully: {kind}: {e}")


def _check_listing(
    ctx: ScanContext, archive: Any, data: memoryview, location: Location
) -> list[str]:
    """Hygiene checks on the listing; the names that are safe to extract in memory."""
    limits = ctx.limits
    files = list(archive.files)
    if len(files) > limits.max_members:
        raise LimitExceeded(
            "max_members", f"the archive has more than {limits.max_members} members", location
        )
    duplicates = DuplicateNames()
    targets: list[str] = []
    declared = 0
    for info in files:
        name = str(info.filename)
        loc = location.child(name)
        duplicates.check(ctx, name, loc)
        check_member_name(ctx, name, loc)
        if info.is_directory:
            continue
        if info.is_symlink:
            report_link(ctx, name, "(target stored as member data)", loc, "symbolic link")
            continue
        if unsafe_path(name) is not None:
            continue  # py7zr refuses to extract it at all; the finding above stands
        size = int(info.uncompressed or 0)
        if size > ctx.inflate_budget():
            _bomb(
                ctx,
                loc,
                f"it declares {size} bytes, above what is left of limits.max_decompressed_bytes "
                "(shared by every compressed stream and member of the file)",
            )
            continue
        declared += size
        targets.append(name)
    if declared > limits.ratio_check_min_bytes and declared > limits.max_compression_ratio * max(
        len(data), 1
    ):
        _bomb(ctx, location, f"its members declare {declared} bytes from {len(data)} compressed")
        return []
    return targets


def _encrypted(ctx: ScanContext, location: Location, how: str) -> None:
    ctx.add(
        ARCHIVE_ENCRYPTED_MEMBER.finding(
            location,
            f"This 7z archive is encrypted ({how}), so its content could not be analysed.",
            evidence={"encryption": how},
        )
    )


def _bomb(ctx: ScanContext, location: Location, why: str) -> None:
    ctx.add(
        ARCHIVE_BOMB.finding(
            location,
            f"The 7z content was not inflated: {why}. What was not inflated was not analysed.",
            evidence={"reason": why},
        )
    )


class _AnalysisFailed(Exception):
    """Carries an exception raised by our own analysis out through py7zr unchanged."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _Member:
    """A member py7zr writes into (a spill buffer); analysed when py7zr closes it."""

    def __init__(self, factory: _ScanningFactory, name: str) -> None:
        self._factory = factory
        self.name = name
        self._owner = ExitStack()  # frees the buffer once the member is analysed
        self.buffer: Spill = self._owner.enter_context(factory.ctx.spilling())
        self.overflow = False
        self.done = False

    def write(self, s: bytes | bytearray) -> int:
        room = self._factory.ctx.inflate_budget() - self.buffer.size
        if len(s) > room:
            self.overflow = True
            s = s[: max(room, 0)]
        self.buffer.write(s)
        return len(s)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        return None

    def size(self) -> int:
        return self.buffer.size

    def close(self) -> None:
        # py7zr >= 1.0 calls this when the member is complete: analyse it and free it.
        self._factory.finish(self)

    def release(self) -> None:
        self._owner.close()


class _ScanningFactory:
    """A py7zr ``WriterFactory`` whose products are bounded and analysed on completion."""

    def __init__(self, ctx: ScanContext, location: Location) -> None:
        self.ctx = ctx
        self.location = location
        self.pending: list[_Member] = []

    def create(self, filename: str) -> _Member:
        member = _Member(self, filename)
        self.pending.append(member)
        return member

    def finish(self, member: _Member) -> None:
        if member.done:
            return
        member.done = True
        ctx = self.ctx
        loc = self.location.child(member.name)
        size = member.buffer.size
        ctx.bytes_read += size
        ctx.inflated += size
        if member.overflow:
            limit = ctx.limits.max_decompressed_bytes
            _bomb(
                ctx,
                loc,
                f"it inflates beyond the file's decompression budget (limits."
                f"max_decompressed_bytes, {limit} bytes for every stream and member together)",
            )
        try:
            ctx.check_deadline(loc)
            if size:
                scan_member(ctx, member.buffer.view(), loc)
        except Exception as e:  # LimitExceeded or a bug: must not pass for a py7zr error
            raise _AnalysisFailed(e) from e
        finally:
            member.release()

    def flush(self) -> None:
        """Analyse members an older py7zr never closed."""
        for member in self.pending:
            self.finish(member)
        self.pending.clear()
