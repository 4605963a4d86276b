"""SentencePiece tokenizer models (``tokenizer.model``, ``spiece.model``).

A SentencePiece model is a protobuf ``ModelProto``: repeated ``pieces`` (field 1: a message of
``piece`` string, ``score`` float and ``type`` enum), then ``trainer_spec`` (2),
``normalizer_spec`` (3), ``self_test_data`` (4) and ``denormalizer_spec`` (5). The library that
reads it is C++ and deserialises nothing but these messages. The structure is walked from the
protobuf wire format, every length checked against the buffer before it is used: a buffer is
recognised when its first fields are pieces, and the handler checks the whole model.
"""

from __future__ import annotations

from modelshield.scanner.memio import Buffer

#: Top-level fields of ModelProto (and the extension range SentencePiece reserves, 200+).
_MODEL_FIELDS = frozenset({1, 2, 3, 4, 5})
#: Pieces examined when sniffing a buffer's start.
_SNIFF_PIECES = 64
_LENGTH_DELIMITED = 2


class WireError(ValueError):
    """Not the protobuf wire format SentencePiece writes, at ``offset``."""

    def __init__(self, offset: int, message: str) -> None:
        """Say where and what."""
        super().__init__(f"{message} at offset {offset}")
        self.offset = offset


def _varint(data: Buffer, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise WireError(pos, "a varint runs past its message")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: Buffer, pos: int, end: int) -> tuple[int, int, int, int]:
    """One field at ``pos``: (number, wire type, start of its value, end of its value)."""
    key, pos = _varint(data, pos, end)
    number, wire = key >> 3, key & 7
    if wire == 0:
        _, after = _varint(data, pos, end)
    elif wire == 1:
        after = pos + 8
    elif wire == 5:
        after = pos + 4
    elif wire == _LENGTH_DELIMITED:
        length, pos = _varint(data, pos, end)
        after = pos + length
    else:
        raise WireError(pos, f"wire type {wire} is not used by SentencePiece")
    if after > end or number == 0:
        raise WireError(pos, "a field runs past its message")
    return number, wire, pos, after


def _check_piece(data: Buffer, start: int, end: int) -> None:
    """A SentencePiece message: piece (1, UTF-8 text), score (2, float), type (3, enum)."""
    pos = start
    has_piece = False
    while pos < end:
        number, wire, value, pos = _fields(data, pos, end)
        if number == 1 and wire == _LENGTH_DELIMITED:
            try:
                bytes(data[value:pos]).decode("utf-8")
            except UnicodeDecodeError:
                raise WireError(value, "a piece is not UTF-8 text") from None
            has_piece = True
        elif (number, wire) not in ((2, 5), (3, 0)):
            raise WireError(value, f"field {number} is not part of a SentencePiece")
    if not has_piece:
        raise WireError(start, "a SentencePiece without its piece text")


def check_model(data: Buffer, *, max_pieces: int | None = None) -> int:
    """Walk a ModelProto; return how many pieces were checked. Raises WireError."""
    pos, end, pieces = 0, len(data), 0
    while pos < end:
        number, wire, value, pos = _fields(data, pos, end)
        if wire != _LENGTH_DELIMITED or (number not in _MODEL_FIELDS and number < 200):
            raise WireError(value, f"field {number} is not part of a SentencePiece model")
        if number == 1:
            _check_piece(data, value, pos)
            pieces += 1
            if max_pieces is not None and pieces >= max_pieces:
                break
        elif pieces == 0:
            raise WireError(value, "the model does not start with its pieces")
    if pieces == 0:
        raise WireError(0, "the model has no pieces")
    return pieces


def looks_like_sentencepiece(data: Buffer) -> bool:
    """Whether ``data`` starts with SentencePiece pieces (field 1 messages holding text)."""
    if len(data) < 4 or data[0] != 0x0A:
        return False
    try:
        check_model(data, max_pieces=_SNIFF_PIECES)
    except WireError:
        return False
    return True
