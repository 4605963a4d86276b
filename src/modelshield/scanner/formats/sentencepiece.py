"""The SentencePiece handler: checks the whole model's structure (see
:mod:`modelshield.scanner.wire.sentencepiece`)."""

from __future__ import annotations

from modelshield.core.findings import Location
from modelshield.scanner.context import ScanContext
from modelshield.scanner.formats.hygiene import malformed
from modelshield.scanner.wire.protobuf import ProtobufError
from modelshield.scanner.wire.sentencepiece import check_model


def scan_sentencepiece(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Check the whole model's structure; a broken one is reported as not fully analysed."""
    try:
        pieces = check_model(data)
    except ProtobufError as e:
        malformed(ctx, location.at(e.offset), f"The SentencePiece model is broken: {e}")
        return
    ctx.bytes_read += len(data)
    ctx.metadata["sentencepiece_pieces"] = str(pieces)
