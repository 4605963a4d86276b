"""A bounded reader of the protobuf wire format, for formats stored as protobuf (ONNX).

It decodes one message level at a time from a buffer, never copying it: a length-delimited field
comes back as the ``(start, end)`` span of its bytes, which the caller decodes as a nested message,
a string or packed numbers as its schema says. Every varint is at most 10 bytes and every
declared length is checked against the end of the enclosing message before anything is sliced,
so a hostile length costs nothing. Nesting is the caller's to bound (it decides what to descend
into); groups (wire types 3 and 4, which ONNX never writes) are skipped with a counted depth, as
protobuf's own parser skips unknown fields.
"""

from __future__ import annotations

from collections.abc import Iterator

from modelshield.scanner.memio import Buffer

VARINT = 0
FIXED64 = 1
LENGTH = 2
START_GROUP = 3
END_GROUP = 4
FIXED32 = 5

#: A varint never needs more bytes than this (64 bits, 7 per byte).
MAX_VARINT_BYTES = 10
#: Groups nested deeper than this are not skipped (protobuf's own recursion limit is 100).
MAX_GROUP_DEPTH = 100


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message; the message says where and why."""


def read_varint(data: Buffer, pos: int, end: int) -> tuple[int, int]:
    """Decode a varint at ``pos``; return its value and the position after it."""
    result = 0
    shift = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= end:
            raise WireError(f"varint at offset {pos} runs past the end of its message")
        byte = data[pos + i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos + i + 1
        shift += 7
    raise WireError(f"varint at offset {pos} is longer than {MAX_VARINT_BYTES} bytes")


def signed64(value: int) -> int:
    """A varint read as protobuf's ``int64`` (two's complement)."""
    return value - (1 << 64) if value >= 1 << 63 else value


class Field:
    """One field of a message: its number, wire type, and value or span."""

    __slots__ = ("end", "number", "offset", "start", "value", "wire_type")

    def __init__(
        self, number: int, wire_type: int, offset: int, value: int, start: int, end: int
    ) -> None:
        """``value`` holds numbers; ``start``/``end`` the bytes of a length-delimited field."""
        self.number = number
        self.wire_type = wire_type
        self.offset = offset
        self.value = value
        self.start = start
        self.end = end

    @property
    def length(self) -> int:
        """Bytes of a length-delimited field."""
        return self.end - self.start


def fields(data: Buffer, start: int, end: int) -> Iterator[Field]:
    """The fields of the message stored in ``data[start:end]``, in order.

    Raises :class:`WireError` at the first malformed field; the fields before it were yielded.
    """
    pos = start
    while pos < end:
        offset = pos
        key, pos = read_varint(data, pos, end)
        number, wire_type = key >> 3, key & 7
        if number == 0 or number > 0x1FFFFFFF:
            raise WireError(f"invalid field number {number} at offset {offset}")
        if wire_type == VARINT:
            value, pos = read_varint(data, pos, end)
            yield Field(number, wire_type, offset, value, pos, pos)
        elif wire_type == LENGTH:
            length, pos = read_varint(data, pos, end)
            if length > end - pos:
                raise WireError(
                    f"field {number} at offset {offset} declares {length} bytes but its message "
                    f"has {end - pos} left"
                )
            yield Field(number, wire_type, offset, 0, pos, pos + length)
            pos += length
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if size > end - pos:
                raise WireError(f"fixed-size field {number} at offset {offset} is truncated")
            value = int.from_bytes(bytes(data[pos : pos + size]), "little")
            yield Field(number, wire_type, offset, value, pos, pos + size)
            pos += size
        elif wire_type == START_GROUP:
            pos = _skip_group(data, pos, end, number, offset)
        else:
            raise WireError(f"invalid wire type {wire_type} at offset {offset}")


def _skip_group(data: Buffer, pos: int, end: int, number: int, offset: int) -> int:
    """Skip a (deprecated) group up to its matching end marker; return the position after it."""
    open_groups = [number]
    while open_groups:
        if len(open_groups) > MAX_GROUP_DEPTH:
            raise WireError(f"groups nested deeper than {MAX_GROUP_DEPTH} at offset {offset}")
        if pos >= end:
            raise WireError(f"group {number} at offset {offset} is not closed")
        key, pos = read_varint(data, pos, end)
        inner, wire_type = key >> 3, key & 7
        if inner == 0:
            raise WireError(f"invalid field number 0 inside the group at offset {offset}")
        if wire_type == VARINT:
            _, pos = read_varint(data, pos, end)
        elif wire_type == LENGTH:
            length, pos = read_varint(data, pos, end)
            if length > end - pos:
                raise WireError(f"a field inside the group at offset {offset} is truncated")
            pos += length
        elif wire_type in (FIXED64, FIXED32):
            pos += 8 if wire_type == FIXED64 else 4
            if pos > end:
                raise WireError(f"a field inside the group at offset {offset} is truncated")
        elif wire_type == START_GROUP:
            open_groups.append(inner)
        elif wire_type == END_GROUP:
            if open_groups.pop() != inner:
                raise WireError(f"mismatched end of group at offset {offset}")
        else:
            raise WireError(f"invalid wire type {wire_type} inside the group at offset {offset}")
    return pos


def packed_varints(data: Buffer, start: int, end: int, limit: int) -> list[int]:
    """Up to ``limit`` varints packed in ``data[start:end]`` (a packed repeated field)."""
    values: list[int] = []
    pos = start
    while pos < end and len(values) < limit:
        value, pos = read_varint(data, pos, end)
        values.append(value)
    return values
