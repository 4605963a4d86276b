"""Single compressed streams: gzip, bzip2, xz, lzma-alone, zlib, lz4 frames, zstd and joblib's
old ``ZF`` files.

joblib's compressed pickles are exactly such streams around a pickle, and ``.tar.gz`` is one around
a tar. Each stream is inflated incrementally with a hard cap (what is left of the file's
``limits.max_decompressed_bytes``, which every stream and archive member of the file shares) and
a ratio check (``limits.max_compression_ratio`` once above ``limits.ratio_check_min_bytes``), so a
bomb stops early. Inflated bytes go to a :class:`~modelshield.scanner.memio.Spill`: in memory up
to a small window per file, in a memory-mapped temporary file beyond, so gigabytes of output
never sit in memory. They are then analysed by content as a member named after the codec
(``<gzip>``). Concatenated streams (several gzip members, xz streams, lz4 frames) are read on as
the standard readers do, so a payload in a second stream is not missed.
"""

from __future__ import annotations

import bz2
import importlib
import lzma
from collections.abc import Callable

from modelshield.core.findings import Location
from modelshield.scanner.context import ScanContext
from modelshield.scanner.formats.hygiene import malformed, scan_member, unsupported
from modelshield.scanner.memio import MemoryviewIO, Spill
from modelshield.scanner.registry import Format, Handler
from modelshield.scanner.rules import ARCHIVE_BOMB
from modelshield.scanner.zipreader import Decompressor, ZlibDecompressor, inflate

_ZSTD_STEP = 1 << 20


def _lz4_decompressor() -> Decompressor | None:
    try:
        import lz4.frame
    except ImportError:
        return None
    decompressor: Decompressor = lz4.frame.LZ4FrameDecompressor()
    return decompressor


# codec name, magic of a follow-on stream (None: one stream only), decompressor factory
_CODECS: dict[Format, tuple[str, bytes | None, Callable[[], Decompressor | None]]] = {
    Format.GZIP: ("gzip", b"\x1f\x8b", lambda: ZlibDecompressor(31)),
    Format.BZIP2: ("bzip2", b"BZh", bz2.BZ2Decompressor),
    Format.XZ: ("xz", b"\xfd7zXZ\x00", lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ)),
    Format.LZMA: ("lzma", None, lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE)),
    Format.ZLIB: ("zlib", None, lambda: ZlibDecompressor(15)),
    Format.LZ4: ("lz4", b"\x04\x22\x4d\x18", _lz4_decompressor),
}


def _stream_handler(fmt: Format) -> Handler:
    codec, follow_on, factory = _CODECS[fmt]

    def scan_stream(ctx: ScanContext, data: memoryview, location: Location) -> None:
        """Inflate a compressed stream (bounded) and analyse what it holds."""
        inflate_and_scan(ctx, data, location, codec, factory, follow_on)

    scan_stream.__name__ = scan_stream.__qualname__ = f"scan_{codec}"
    return scan_stream


scan_gzip = _stream_handler(Format.GZIP)
scan_bzip2 = _stream_handler(Format.BZIP2)
scan_xz = _stream_handler(Format.XZ)
scan_lzma = _stream_handler(Format.LZMA)
scan_zlib = _stream_handler(Format.ZLIB)
scan_lz4 = _stream_handler(Format.LZ4)


def scan_joblib_zfile(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """joblib < 0.10 files: ``ZF``, the inflated length in hex (19 chars), then zlib data."""
    start = 22 if bytes(data[21:22]) == b" " else 21
    ctx.saw_format("zlib")
    inflate_and_scan(ctx, data[start:], location, "zlib", lambda: ZlibDecompressor(15), None)


def inflate_and_scan(
    ctx: ScanContext,
    data: memoryview,
    location: Location,
    codec: str,
    factory: Callable[[], Decompressor | None],
    follow_on: bytes | None,
) -> None:
    """Inflate ``data`` stream after stream with bounds, report trouble, analyse the result."""
    with ctx.spilling() as out:
        limits = ctx.limits
        budget = ctx.inflate_budget()
        pos = 0
        problem: str | None = None
        bomb: str | None = None
        while True:
            ctx.check_deadline(location)
            decompressor = factory()
            if decompressor is None:
                unsupported(
                    ctx,
                    location,
                    f"A {codec} stream",
                    "Install it with: pip install 'modelshield[archives]'",
                )
                return
            result = inflate(
                data[pos:],
                decompressor,
                max_bytes=budget - out.size,
                max_ratio=limits.max_compression_ratio,
                ratio_min_bytes=limits.ratio_check_min_bytes,
                sink=out,
                progress=lambda: ctx.check_deadline(location),
            )
            pos += result.consumed
            if result.bomb is not None:
                bomb = ctx.bomb_reason(result.bomb, budget)
                break
            if result.error is not None:
                problem = f"The {codec} stream is broken: {result.error}"
                break
            # The ratio is checked over all streams together, so that a bomb cannot hide by being
            # split into many small streams.
            if (
                out.size > limits.ratio_check_min_bytes
                and out.size > limits.max_compression_ratio * max(pos, 1)
            ):
                bomb = f"it inflates more than {limits.max_compression_ratio} times"
                break
            rest = bytes(data[pos : pos + 8])
            if follow_on is None or not rest.startswith(follow_on):
                break
        _finish(ctx, location, codec, out, pos, bomb, problem)


def _finish(
    ctx: ScanContext,
    location: Location,
    codec: str,
    out: Spill,
    consumed: int,
    bomb: str | None,
    problem: str | None,
) -> None:
    """Count what was inflated, report bombs and breakage, analyse the output."""
    inflated = out.size
    ctx.inflated += inflated
    ctx.bytes_read += consumed + inflated
    if bomb is not None:
        ctx.add(
            ARCHIVE_BOMB.finding(
                location,
                f"The {codec} stream was not inflated fully: {bomb}. Inflation stopped after "
                f"{inflated} bytes; those were analysed, the rest was not.",
                evidence={"codec": codec, "inflated": str(inflated), "compressed": str(consumed)},
            )
        )
    if problem is not None:
        malformed(ctx, location, problem)
    if inflated:
        scan_member(ctx, out.view(), location.child(f"<{codec}>"))


def scan_zstd(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """zstd streams, when the optional ``zstandard`` package is installed."""
    try:
        zstandard = importlib.import_module("zstandard")
    except ImportError:
        unsupported(ctx, location, "A zstd stream", "Install it with: pip install zstandard")
        return
    limits = ctx.limits
    budget = ctx.inflate_budget()
    source = MemoryviewIO(data)
    bomb: str | None = None
    problem: str | None = None
    with ctx.spilling() as out:
        try:
            with zstandard.ZstdDecompressor().stream_reader(
                source, read_across_frames=True, closefd=False
            ) as reader:
                while True:
                    ctx.check_deadline(location)
                    piece = reader.read(min(_ZSTD_STEP, budget - out.size + 1))
                    if not piece:
                        break
                    if out.size + len(piece) > budget:
                        out.write(piece[: budget - out.size])
                        bomb = ctx.bomb_reason(f"it inflates to more than {budget} bytes", budget)
                        break
                    out.write(piece)
                    used = max(source.tell(), 1)
                    if (
                        out.size > limits.ratio_check_min_bytes
                        and out.size > limits.max_compression_ratio * used
                    ):
                        bomb = f"it inflates more than {limits.max_compression_ratio} times"
                        break
        except zstandard.ZstdError as e:
            problem = f"The zstd stream is broken: {e}"
        _finish(ctx, location, "zstd", out, source.tell(), bomb, problem)
