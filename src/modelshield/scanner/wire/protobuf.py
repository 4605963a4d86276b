"""A bounded reader of the protocol buffers wire format, for schema-driven walks of hostile data
(ONNX models, TensorFlow SavedModels and GraphDefs, SentencePiece models).

Protocol buffers carry no type information on the wire: each field is a key (field number and
wire type, as a varint) followed by a varint, a 32- or 64-bit word, or a length-prefixed byte
string (which may be a string, bytes, a packed array or a nested message: only the schema
says). :func:`fields` yields the fields of one message level and checks every length against
the end of the enclosing message before anything is sliced, so a declared length of 2**63 or a
varint of twenty bytes is a :class:`ProtobufError`, never an allocation. A length-delimited
field comes back as the span of its bytes in the same buffer (nothing is copied); the caller
decodes it as a nested message, a string or packed numbers as its schema says, so nesting is
bounded by the schema (or by the caller), not by the data. Groups (wire types 3 and 4,
deprecated since proto2 and written by neither ONNX nor TensorFlow) are skipped with a counted
depth, as protobuf's own parsers skip unknown fields.
"""

from __future__ import annotations

from collections.abc import Iterator

from msgspec import Struct

from modelshield.scanner.memio import Buffer

VARINT = 0
FIXED64 = 1
LEN = 2
START_GROUP = 3
END_GROUP = 4
FIXED32 = 5

#: A varint never needs more bytes than this (64 bits, 7 per byte).
MAX_VARINT_BYTES = 10
#: Groups nested deeper than this are not skipped (protobuf's own recursion limit is 100).
MAX_GROUP_DEPTH = 100
#: The largest field number protobuf allows (2**29 - 1).
MAX_FIELD_NUMBER = (1 << 29) - 1


class ProtobufError(ValueError):
    """The bytes are not a well-formed protocol buffers message."""

    def __init__(self, problem: str, offset: int) -> None:
        """Say what is wrong and at which byte offset of the buffer."""
        super().__init__(f"{problem} at offset {offset}")
        self.problem = problem
        """What is wrong, without the offset."""
        self.offset = offset
        """Where in the buffer the broken field (or varint) starts."""


class Field(Struct, frozen=True):
    """One field of a message as it stands on the wire."""

    number: int
    """The field number."""
    wire_type: int
    """:data:`VARINT`, :data:`FIXED64`, :data:`LEN` or :data:`FIXED32` (groups are skipped)."""
    value: int
    """The integer of a varint or fixed field; for :data:`LEN`, the payload's length."""
    start: int
    """Where the payload (for :data:`LEN`) or the value starts, in the buffer handed to
    :func:`fields`."""
    end: int
    """Where the payload or the value ends (for a varint, ``start``: its bytes are not kept)."""
    offset: int
    """Where the field's key starts: the position to name in a finding about the field."""

    @property
    def length(self) -> int:
        """Bytes of a length-delimited field (``end - start``)."""
        return self.end - self.start


def read_varint(data: Buffer, pos: int, end: int) -> tuple[int, int]:
    """Decode the varint at ``pos`` (at most 10 bytes, before ``end``); return it and the next
    position."""
    result = 0
    shift = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= end:
            raise ProtobufError("the data ends inside a varint (past the end of its message)", pos)
        byte = data[pos + i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos + i + 1
        shift += 7
    raise ProtobufError(f"a varint is longer than {MAX_VARINT_BYTES} bytes", pos)


def signed64(value: int) -> int:
    """A varint read as protobuf's ``int64`` (two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def fields(data: Buffer, start: int = 0, end: int | None = None) -> Iterator[Field]:
    """Yield the fields of the message in ``data[start:end]``, in order, checking every length.

    Groups are skipped up to their matching end (at most :data:`MAX_GROUP_DEPTH` deep). Field
    number 0, unknown wire types, an end of group without its start and lengths past the end of
    the message raise :class:`ProtobufError`; the fields before it were yielded.
    """
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        offset = pos
        key, pos = read_varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0 or number > MAX_FIELD_NUMBER:
            raise ProtobufError(f"field number {number} is not valid", offset)
        if wire == VARINT:
            value, nxt = read_varint(data, pos, end)
            yield Field(number, wire, value, pos, pos, offset)
        elif wire == LEN:
            length, pos = read_varint(data, pos, end)
            if length > end - pos:
                raise ProtobufError(
                    f"field {number} claims {length} bytes but only {end - pos} remain", offset
                )
            nxt = pos + length
            yield Field(number, wire, length, pos, nxt, offset)
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            if size > end - pos:
                raise ProtobufError(
                    f"the data ends inside fixed field {number} (truncated)", offset
                )
            nxt = pos + size
            value = int.from_bytes(bytes(data[pos:nxt]), "little")
            yield Field(number, wire, value, pos, nxt, offset)
        elif wire == START_GROUP:
            nxt = _skip_group(data, pos, end, number, offset)
        else:
            raise ProtobufError(f"field {number} has invalid wire type {wire}", offset)
        pos = nxt


def _skip_group(data: Buffer, pos: int, end: int, number: int, offset: int) -> int:
    """Skip a (deprecated) group up to its matching end marker; return the position after it."""
    open_groups = [number]
    while open_groups:
        if len(open_groups) > MAX_GROUP_DEPTH:
            raise ProtobufError(f"groups nested deeper than {MAX_GROUP_DEPTH}", offset)
        if pos >= end:
            raise ProtobufError(f"group {number} is not closed", offset)
        key, pos = read_varint(data, pos, end)
        inner, wire = key >> 3, key & 7
        if inner == 0:
            raise ProtobufError("invalid field number 0 inside the group", offset)
        if wire == VARINT:
            _, pos = read_varint(data, pos, end)
        elif wire == LEN:
            length, pos = read_varint(data, pos, end)
            if length > end - pos:
                raise ProtobufError("a field inside the group is truncated", offset)
            pos += length
        elif wire in (FIXED64, FIXED32):
            pos += 8 if wire == FIXED64 else 4
            if pos > end:
                raise ProtobufError("a field inside the group is truncated", offset)
        elif wire == START_GROUP:
            open_groups.append(inner)
        elif wire == END_GROUP:
            if open_groups.pop() != inner:
                raise ProtobufError("mismatched end of group", offset)
        else:
            raise ProtobufError(f"invalid wire type {wire} inside the group", offset)
    return pos


def payload(data: memoryview, field: Field) -> memoryview:
    """The bytes of a length-delimited field (a view: nothing is copied)."""
    return data[field.start : field.end]


def text(data: Buffer, field: Field, limit: int) -> str:
    """A string field decoded as UTF-8 (invalid bytes replaced), cut to ``limit`` bytes."""
    return bytes(data[field.start : min(field.end, field.start + limit)]).decode("utf-8", "replace")


def packed_varints(data: Buffer, start: int, end: int, limit: int) -> list[int]:
    """Up to ``limit`` varints packed in ``data[start:end]`` (a packed repeated field)."""
    values: list[int] = []
    pos = start
    while pos < end and len(values) < limit:
        value, pos = read_varint(data, pos, end)
        values.append(value)
    return values


def leading_fields(
    data: Buffer, start: int = 0, end: int | None = None, limit: int = 4096
) -> list[Field]:
    """The fields of ``data[start:end]`` read before the first error (at most ``limit``).

    A length-delimited field that claims more bytes than remain is kept, cut to what remains,
    as the last field: format sniffing must recognise a truncated file as what it was meant
    to be, so that it is reported as broken rather than passed as unknown data.
    """
    end = len(data) if end is None else end
    out: list[Field] = []
    try:
        for field in fields(data, start, end):
            out.append(field)
            if len(out) >= limit:
                break
    except ProtobufError as e:
        pos = e.offset
        try:
            key, after = read_varint(data, pos, end)
            if key & 7 == LEN and key >> 3:
                length, body = read_varint(data, after, end)
                cut = min(length, end - body)
                out.append(Field(key >> 3, LEN, cut, body, body + cut, pos))
        except ProtobufError:
            pass
    return out
