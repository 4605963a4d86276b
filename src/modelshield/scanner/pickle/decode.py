"""Argument decoding helpers, and the opcodes modern picklers seldom write.

Split from :mod:`.vm` so that the hot loop stays readable; everything here checks lengths
against the buffer before slicing and reports what a real loader would fail on as a
:class:`~.state.StreamError`.
"""

from __future__ import annotations

import codecs
import struct
from typing import TYPE_CHECKING, Any

from modelshield.scanner.memio import Buffer
from modelshield.scanner.pickle import rules
from modelshield.scanner.pickle.opcodes import opname
from modelshield.scanner.pickle.sniff import float_argument, int_argument, long_argument
from modelshield.scanner.pickle.state import Stream, StreamError
from modelshield.scanner.pickle.values import Blob, Unknown

if TYPE_CHECKING:
    from modelshield.scanner.pickle.vm import Interpreter

#: Work charged to ``ctx.opcodes`` on top of the opcode for a set or frozenset (an empty set
#: takes 216 bytes, several opcodes' worth of memory).
SET_COST = 5

_U2 = struct.Struct("<H").unpack_from
_I4 = struct.Struct("<i").unpack_from
#: Byte constants up to this size are materialised; larger ones stay in the buffer.
INLINE_MAX = 4096
#: LONG4 values longer than this many bytes are not converted to an int.
_MAX_LONG_BYTES = 4096
#: Distinct extension codes reported per stream.
_MAX_EXT_CODES = 64


def rare_opcode(
    vm: Interpreter,
    st: Stream,
    op: int,
    pos: int,
    opos: int,
    stack: list[Any],
    fence: int,
    memo: Any,
) -> int:
    """The opcodes modern picklers seldom write; returns the new position."""
    data = vm.session.data
    size = len(data)
    embedded = vm.session.embedded
    push = stack.append
    if op == 0x70 or op == 0x67:  # PUT, GET
        arg, pos = line(data, pos, size, opos)
        idx = integer(arg, opos, opname(op))
        if op == 0x67:
            push(memo[idx] if idx in memo else vm.missing(st, opos, idx))
        elif idx < 0:
            st.semantic(opos, "PUT with a negative memo key")
        elif len(stack) > fence:
            memo[idx] = stack[-1]
        else:
            st.semantic(opos, "PUT with nothing on the stack")
    elif op == 0x49 or op == 0x4C or op == 0x46:  # INT, LONG, FLOAT: as either unpickler reads
        arg, pos = line(data, pos, size, opos)
        if op == 0x49:
            number: float | None = (
                True if arg == b"01" else False if arg == b"00" else int_argument(arg)
            )
        else:
            number = long_argument(arg) if op == 0x4C else float_argument(arg)
        if number is None:
            kind = "a number" if op == 0x46 else "an integer"
            raise StreamError(opos, f"{opname(op)} argument {arg[:40]!r} is not {kind}")
        push(number)
    elif op == 0x53:  # STRING
        arg, pos = line(data, pos, size, opos)
        if len(arg) < 2 or arg[0] != arg[-1] or arg[:1] not in (b"'", b'"'):
            raise StreamError(opos, "STRING argument is not quoted")
        try:
            raw = codecs.escape_decode(arg[1:-1])[0]
        except ValueError:
            raise StreamError(opos, "STRING argument has a bad escape") from None
        push(ascii_or_bytes(raw))
        if embedded is not None:
            embedded.check_bytes(raw, opos)
            embedded.check_text(raw.decode("latin-1"), opos)
    elif op == 0x56:  # UNICODE
        arg, pos = line(data, pos, size, opos)
        try:
            text = str(arg, "raw-unicode-escape")
        except UnicodeDecodeError:
            raise StreamError(opos, "UNICODE argument has a bad escape") from None
        push(text)
        if embedded is not None:
            embedded.check_text(text, opos)
    elif op == 0x54 or op == 0x55:  # BINSTRING, SHORT_BINSTRING
        if op == 0x54:
            (n,) = _I4(data, pos)
            pos += 4
            if n < 0:
                raise StreamError(opos, f"BINSTRING declares a negative length ({n})")
        else:
            n = data[pos]
            pos += 1
        end = pos + n
        if end > size:
            raise StreamError(opos, beyond(opname(op), n, size - pos))
        if n <= INLINE_MAX:
            raw = bytes(data[pos:end])
            push(ascii_or_bytes(raw))
            if embedded is not None and n >= 16:
                embedded.check_text(raw.decode("latin-1"), opos)
        else:
            push(Blob(pos, end, "bytes"))
            if embedded is not None:
                embedded.check_text_span(pos, end, opos)
        if embedded is not None and n >= 4:
            embedded.check_span(pos, end, opos)
        pos = end
    elif op == 0x8A or op == 0x8B:  # LONG1, LONG4
        if op == 0x8A:
            n = data[pos]
            pos += 1
        else:
            (n,) = _I4(data, pos)
            pos += 4
            if n < 0:
                raise StreamError(opos, f"LONG4 declares a negative length ({n})")
        end = pos + n
        if end > size:
            raise StreamError(opos, beyond(opname(op), n, size - pos))
        if n <= _MAX_LONG_BYTES:
            push(int.from_bytes(data[pos:end], "little", signed=True))
        else:
            push(Blob(pos, end, "int"))
        pos = end
    elif op == 0x50:  # PERSID
        arg, pos = line(data, pos, size, opos)
        if not arg.isascii():
            raise StreamError(opos, "PERSID argument is not ASCII")
        push(vm.persistent(st, arg.decode("ascii"), opos))
    elif op == 0x82 or op == 0x83 or op == 0x84:  # EXT1, EXT2, EXT4
        if op == 0x82:
            code = data[pos]
            pos += 1
        elif op == 0x83:
            code = _U2(data, pos)[0]
            pos += 2
        else:
            code = _I4(data, pos)[0]
            pos += 4
        _extension(vm, st, code, op, opos)
        push(Unknown(f"object registered under extension code {code}"))
    elif op == 0x8F:  # EMPTY_SET
        push(set())
        vm.session.ctx.opcodes += SET_COST
    elif op == 0x97:  # NEXT_BUFFER
        push(Unknown("out-of-band buffer"))
    elif op == 0x98:  # READONLY_BUFFER
        if len(stack) <= fence:
            st.semantic(opos, "READONLY_BUFFER with nothing on the stack")
    else:
        raise StreamError(opos, f"unknown opcode 0x{op:02x} at offset {opos}")
    return pos


def _extension(vm: Interpreter, st: Stream, code: int, op: int, opos: int) -> None:
    if code <= 0:
        st.semantic(opos, f"{opname(op)} names extension code {code}, which must be positive")
    if code in st.ext_codes or len(st.ext_codes) >= _MAX_EXT_CODES:
        return
    st.ext_codes.add(code)
    vm.session.emit(
        rules.EXTENSION_CODE,
        opos,
        f"{opname(op)} loads the object registered under copyreg extension code {code}. The "
        "default registry is empty, so this only works in a program that registered the "
        "code, and the file cannot say what it names.",
        {"code": str(code), "opcode": opname(op)},
    )


def beyond(name: str, declared: int, remaining: int) -> str:
    """The message for a length that runs past the data."""
    return f"{name} declares {declared} bytes but only {remaining} remain in the data"


def utf8(data: Buffer, start: int, end: int, opos: int) -> str:
    """Decode UTF-8 text as CPython does (surrogates pass), or fail the stream."""
    try:
        return str(data[start:end], "utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise StreamError(opos, f"text at offset {start} is not valid UTF-8") from None


def line(data: Buffer, pos: int, size: int, opos: int) -> tuple[bytes, int]:
    """The bytes up to the next newline (excluded) and the offset after it."""
    if type(data) is bytes:
        index = data.find(b"\n", pos)
    else:
        index = -1
        chunk = pos
        while chunk < size:
            found = bytes(data[chunk : chunk + 65536]).find(b"\n")
            if found >= 0:
                index = chunk + found
                break
            chunk += 65536
    if index < 0:
        raise StreamError(opos, f"{opname(data[opos])} argument has no terminating newline")
    return bytes(data[pos:index]), index + 1


def global_name(raw: bytes, opos: int) -> str:
    """A GLOBAL/INST line as text, or fail the stream."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise StreamError(opos, f"global name {raw[:40]!r} is not valid UTF-8") from None


def integer(line: bytes, opos: int, what: str) -> int:
    """A protocol-0 integer argument, or fail the stream."""
    try:
        return int(line)
    except ValueError:
        raise StreamError(opos, f"{what} argument {line[:40]!r} is not an integer") from None


def ascii_or_bytes(raw: bytes) -> str | bytes:
    """Python 3 loads protocol-0/1 strings as ASCII text (bytes with encoding='bytes')."""
    return raw.decode("ascii") if raw.isascii() else raw
