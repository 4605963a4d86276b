"""The pickle opcode table for protocols 0 to 5, with the shape of each opcode's argument.

The interpreter (:mod:`.vm`) decodes arguments inline for speed; this table serves the
structural sniffer (:mod:`.sniff`), messages (opcode names) and tests. It is written out here
rather than derived from :mod:`pickletools` so that every length is read under our own bounds.
"""

from __future__ import annotations

import enum

from msgspec import Struct


class Arg(enum.Enum):
    """How an opcode's argument is laid out in the stream."""

    NONE = "none"
    """No argument."""
    U1 = "u1"
    """One unsigned byte."""
    U2 = "u2"
    """Two bytes, little-endian unsigned."""
    I4 = "i4"
    """Four bytes, little-endian signed."""
    U4 = "u4"
    """Four bytes, little-endian unsigned."""
    U8 = "u8"
    """Eight bytes, little-endian unsigned."""
    F8 = "f8"
    """Eight bytes, a big-endian IEEE double."""
    LINE = "line"
    """Text up to and including a newline."""
    LINE2 = "line2"
    """Two newline-terminated lines (module, then name)."""
    LEN1 = "len1"
    """One length byte, then that many bytes."""
    LEN4 = "len4"
    """A four-byte unsigned length, then that many bytes."""
    SLEN4 = "slen4"
    """A four-byte signed length (negative is an error), then that many bytes."""
    LEN8 = "len8"
    """An eight-byte unsigned length, then that many bytes."""


class OpInfo(Struct, frozen=True):
    """One opcode."""

    code: int
    """The opcode byte."""
    name: str
    """The name CPython's ``pickletools`` gives it."""
    arg: Arg
    """Its argument layout."""
    proto: int
    """The first protocol that defines it."""


_TABLE: tuple[tuple[bytes, str, Arg, int], ...] = (
    (b"(", "MARK", Arg.NONE, 0),
    (b".", "STOP", Arg.NONE, 0),
    (b"0", "POP", Arg.NONE, 0),
    (b"1", "POP_MARK", Arg.NONE, 1),
    (b"2", "DUP", Arg.NONE, 0),
    (b"F", "FLOAT", Arg.LINE, 0),
    (b"I", "INT", Arg.LINE, 0),
    (b"J", "BININT", Arg.I4, 1),
    (b"K", "BININT1", Arg.U1, 1),
    (b"L", "LONG", Arg.LINE, 0),
    (b"M", "BININT2", Arg.U2, 1),
    (b"N", "NONE", Arg.NONE, 0),
    (b"P", "PERSID", Arg.LINE, 0),
    (b"Q", "BINPERSID", Arg.NONE, 1),
    (b"R", "REDUCE", Arg.NONE, 0),
    (b"S", "STRING", Arg.LINE, 0),
    (b"T", "BINSTRING", Arg.SLEN4, 1),
    (b"U", "SHORT_BINSTRING", Arg.LEN1, 1),
    (b"V", "UNICODE", Arg.LINE, 0),
    (b"X", "BINUNICODE", Arg.LEN4, 1),
    (b"a", "APPEND", Arg.NONE, 0),
    (b"b", "BUILD", Arg.NONE, 0),
    (b"c", "GLOBAL", Arg.LINE2, 0),
    (b"d", "DICT", Arg.NONE, 0),
    (b"}", "EMPTY_DICT", Arg.NONE, 1),
    (b"e", "APPENDS", Arg.NONE, 1),
    (b"g", "GET", Arg.LINE, 0),
    (b"h", "BINGET", Arg.U1, 1),
    (b"i", "INST", Arg.LINE2, 0),
    (b"j", "LONG_BINGET", Arg.U4, 1),
    (b"l", "LIST", Arg.NONE, 0),
    (b"]", "EMPTY_LIST", Arg.NONE, 1),
    (b"o", "OBJ", Arg.NONE, 1),
    (b"p", "PUT", Arg.LINE, 0),
    (b"q", "BINPUT", Arg.U1, 1),
    (b"r", "LONG_BINPUT", Arg.U4, 1),
    (b"s", "SETITEM", Arg.NONE, 0),
    (b"t", "TUPLE", Arg.NONE, 0),
    (b")", "EMPTY_TUPLE", Arg.NONE, 1),
    (b"u", "SETITEMS", Arg.NONE, 1),
    (b"G", "BINFLOAT", Arg.F8, 1),
    (b"\x80", "PROTO", Arg.U1, 2),
    (b"\x81", "NEWOBJ", Arg.NONE, 2),
    (b"\x82", "EXT1", Arg.U1, 2),
    (b"\x83", "EXT2", Arg.U2, 2),
    (b"\x84", "EXT4", Arg.I4, 2),
    (b"\x85", "TUPLE1", Arg.NONE, 2),
    (b"\x86", "TUPLE2", Arg.NONE, 2),
    (b"\x87", "TUPLE3", Arg.NONE, 2),
    (b"\x88", "NEWTRUE", Arg.NONE, 2),
    (b"\x89", "NEWFALSE", Arg.NONE, 2),
    (b"\x8a", "LONG1", Arg.LEN1, 2),
    (b"\x8b", "LONG4", Arg.SLEN4, 2),
    (b"B", "BINBYTES", Arg.LEN4, 3),
    (b"C", "SHORT_BINBYTES", Arg.LEN1, 3),
    (b"\x8c", "SHORT_BINUNICODE", Arg.LEN1, 4),
    (b"\x8d", "BINUNICODE8", Arg.LEN8, 4),
    (b"\x8e", "BINBYTES8", Arg.LEN8, 4),
    (b"\x8f", "EMPTY_SET", Arg.NONE, 4),
    (b"\x90", "ADDITEMS", Arg.NONE, 4),
    (b"\x91", "FROZENSET", Arg.NONE, 4),
    (b"\x92", "NEWOBJ_EX", Arg.NONE, 4),
    (b"\x93", "STACK_GLOBAL", Arg.NONE, 4),
    (b"\x94", "MEMOIZE", Arg.NONE, 4),
    (b"\x95", "FRAME", Arg.U8, 4),
    (b"\x96", "BYTEARRAY8", Arg.LEN8, 5),
    (b"\x97", "NEXT_BUFFER", Arg.NONE, 5),
    (b"\x98", "READONLY_BUFFER", Arg.NONE, 5),
)

OPCODES: dict[int, OpInfo] = {
    code[0]: OpInfo(code[0], name, arg, proto) for code, name, arg, proto in _TABLE
}
"""Every opcode of protocols 0-5, by opcode byte."""

HIGHEST_PROTOCOL = 5
"""The highest protocol this table (and CPython today) defines."""


def opname(code: int) -> str:
    """The opcode's name, or a hex rendering of an unknown byte."""
    info = OPCODES.get(code)
    return info.name if info is not None else f"unknown opcode 0x{code:02x}"
