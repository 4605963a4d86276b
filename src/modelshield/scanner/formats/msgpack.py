"""The MessagePack handler: walks the whole document (see :mod:`modelshield.scanner.wire.msgpack`
for what is recognised and why it is inert)."""

from __future__ import annotations

from modelshield.core.findings import Location
from modelshield.scanner.context import ScanContext
from modelshield.scanner.formats.hygiene import malformed
from modelshield.scanner.wire.msgpack import FLAX_EXT_TYPES, MsgpackError, walk


def scan_msgpack(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Walk the whole document; report structure errors, trailing bytes and unknown ext types."""
    try:
        found = walk(data)
    except MsgpackError as e:
        malformed(ctx, location.at(e.offset), f"The MessagePack document is broken: {e}")
        return
    ctx.bytes_read += found.end
    if found.end < len(data):
        malformed(
            ctx,
            location.at(found.end),
            f"{len(data) - found.end} bytes follow the MessagePack document",
        )
        ctx.scan_buffer(data[found.end :], location.child("<trailing data>"))
    other = sorted(t for t in found.ext_types if t not in FLAX_EXT_TYPES)
    if other:
        ctx.metadata["msgpack_ext_types"] = ",".join(str(t) for t in other[:16])
