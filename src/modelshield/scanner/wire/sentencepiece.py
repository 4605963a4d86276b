"""SentencePiece tokenizer models (``tokenizer.model``, ``spiece.model``).

A SentencePiece model is a protobuf ``ModelProto``: repeated ``pieces`` (field 1: a message of
``piece`` string, ``score`` float and ``type`` enum), then ``trainer_spec`` (2),
``normalizer_spec`` (3), ``self_test_data`` (4) and ``denormalizer_spec`` (5). The library that
reads it is C++ and deserialises nothing but these messages. The structure is walked with the
scanner's protobuf wire reader (:mod:`modelshield.scanner.wire.protobuf`), every length checked: a
buffer is recognised when its first fields are pieces, and the handler checks the whole model.
"""

from __future__ import annotations

from modelshield.scanner.memio import Buffer
from modelshield.scanner.wire.protobuf import FIXED32, LEN, VARINT, ProtobufError, fields, payload

#: Top-level fields of ModelProto (and the extension range SentencePiece reserves, 200+).
_MODEL_FIELDS = frozenset({1, 2, 3, 4, 5})
#: Pieces examined when sniffing a buffer's start.
_SNIFF_PIECES = 64


def _check_piece(data: memoryview, start: int, end: int) -> None:
    """A SentencePiece message: piece (1, UTF-8 text), score (2, float), type (3, enum)."""
    has_piece = False
    for field in fields(data, start, end):
        if field.number == 1 and field.wire_type == LEN:
            try:
                bytes(payload(data, field)).decode("utf-8")
            except UnicodeDecodeError:
                raise ProtobufError("a piece is not UTF-8 text", field.start) from None
            has_piece = True
        elif (field.number, field.wire_type) not in ((2, FIXED32), (3, VARINT)):
            raise ProtobufError(f"field {field.number} is not part of a SentencePiece", field.start)
    if not has_piece:
        raise ProtobufError("a SentencePiece without its piece text", start)


def check_model(data: Buffer, *, max_pieces: int | None = None) -> int:
    """Walk a ModelProto; return how many pieces were checked. Raises ProtobufError."""
    view = memoryview(data)
    pieces = 0
    for field in fields(view):
        number = field.number
        if field.wire_type != LEN or (number not in _MODEL_FIELDS and number < 200):
            raise ProtobufError(f"field {number} is not part of a SentencePiece model", field.start)
        if number == 1:
            _check_piece(view, field.start, field.end)
            pieces += 1
            if max_pieces is not None and pieces >= max_pieces:
                break
        elif pieces == 0:
            raise ProtobufError("the model does not start with its pieces", field.start)
    if pieces == 0:
        raise ProtobufError("the model has no pieces", 0)
    return pieces


def looks_like_sentencepiece(data: Buffer) -> bool:
    """Whether ``data`` starts with SentencePiece pieces (field 1 messages holding text)."""
    if len(data) < 4 or data[0] != 0x0A:
        return False
    try:
        check_model(data, max_pieces=_SNIFF_PIECES)
    except ProtobufError:
        return False
    return True
