"""A small reader of the protocol buffers wire format, for schema-driven walks of hostile data.

Protocol buffers carry no type information on the wire: each field is a key (field number and
wire type, as a varint) followed by a varint, a 32- or 64-bit word, or a length-prefixed byte
string (which may be a string, bytes, a packed array or a nested message: only the schema
says). :func:`fields` yields the fields of one message and checks every length against the
buffer before slicing, so a declared length of 2**63 or a varint of twenty bytes is a
:class:`ProtobufError`, never an allocation. Nested messages are slices of the same buffer
(memoryviews: nothing is copied), and callers follow only the fields their schema names, so
nesting is bounded by the schema, not by the data.
"""

from __future__ import annotations

from collections.abc import Iterator

from msgspec import Struct

VARINT = 0
FIXED64 = 1
LEN = 2
GROUP_START = 3
GROUP_END = 4
FIXED32 = 5

_MAX_VARINT_BYTES = 10
_MAX_FIELD_NUMBER = (1 << 29) - 1


class ProtobufError(ValueError):
    """The bytes are not a well-formed protocol buffers message."""

    def __init__(self, problem: str, offset: int) -> None:
        """Say what is wrong and at which byte offset of the message buffer."""
        super().__init__(f"{problem} at byte {offset}")
        self.problem = problem
        self.offset = offset


class Field(Struct, frozen=True):
    """One field of a message as it stands on the wire."""

    number: int
    """The field number."""
    wire_type: int
    """:data:`VARINT`, :data:`FIXED64`, :data:`LEN` or :data:`FIXED32`."""
    value: int
    """The integer of a varint or fixed field; for :data:`LEN`, the payload's length."""
    start: int
    """Where the payload starts (for :data:`LEN`) or where the value starts, in the buffer
    handed to :func:`fields`."""


def read_varint(data: memoryview, pos: int, end: int) -> tuple[int, int]:
    """Decode the varint at ``pos`` (at most 10 bytes, before ``end``); return it and the next
    position."""
    result = 0
    shift = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos + i >= end:
            raise ProtobufError("the data ends inside a varint", pos)
        byte = data[pos + i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & ((1 << 64) - 1), pos + i + 1
        shift += 7
    raise ProtobufError("a varint is longer than 10 bytes", pos)


def fields(data: memoryview, start: int = 0, end: int | None = None) -> Iterator[Field]:
    """Yield the fields of the message in ``data[start:end]``, checking every length.

    Groups (wire types 3 and 4, deprecated since proto2 and unused by TensorFlow) and unknown
    wire types are errors, as are field number 0 and lengths past the end of the message.
    """
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        key, after = read_varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0 or number > _MAX_FIELD_NUMBER:
            raise ProtobufError(f"field number {number} is not valid", pos)
        if wire == VARINT:
            value, nxt = read_varint(data, after, end)
            yield Field(number, wire, value, after)
        elif wire == LEN:
            length, payload = read_varint(data, after, end)
            if length > end - payload:
                raise ProtobufError(
                    f"field {number} claims {length} bytes but only {end - payload} remain", pos
                )
            nxt = payload + length
            yield Field(number, wire, length, payload)
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            if size > end - after:
                raise ProtobufError(f"the data ends inside fixed field {number}", pos)
            value = int.from_bytes(data[after : after + size], "little")
            nxt = after + size
            yield Field(number, wire, value, after)
        else:
            raise ProtobufError(f"field {number} has wire type {wire} (groups are not read)", pos)
        pos = nxt


def payload(data: memoryview, field: Field) -> memoryview:
    """The bytes of a length-delimited field (a view: nothing is copied)."""
    return data[field.start : field.start + field.value]


def text(data: memoryview, field: Field, limit: int) -> str:
    """A string field decoded as UTF-8 (invalid bytes replaced), cut to ``limit`` bytes."""
    return bytes(data[field.start : field.start + min(field.value, limit)]).decode(
        "utf-8", "replace"
    )


def leading_fields(
    data: memoryview, start: int = 0, end: int | None = None, limit: int = 4096
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
                out.append(Field(key >> 3, LEN, min(length, end - body), body))
        except ProtobufError:
            pass
    return out
