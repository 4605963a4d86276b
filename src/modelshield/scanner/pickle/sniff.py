"""Does a buffer (or the bytes after a pickle) start a pickle that a real unpickler accepts?

:func:`walk` follows the first opcodes the way CPython's unpicklers do, without interpreting
anything: it keeps the stack depth with its marks, the memo keys and the text constants that
``STACK_GLOBAL`` may use as names, decodes every argument with the checks CPython applies
(numbers, quoting, escapes, UTF-8, lengths within the data), and stops at the first opcode where
an unpickler raises. Where the C unpickler (``pickle.load``, ``torch.load``) and the pure-Python
one (joblib, dill) differ, it follows whichever goes further: a ``FRAME`` longer than the data
(only the C one refuses it), ``INST`` without a mark (the Python one imports first), numbers C
parses with ``strtol``. Type errors (calling a non-callable...) are not modelled: the walk goes
on where a loader might.

:func:`looks_like_pickle` turns a walk into the verdict the callers need: format detection (is
this buffer a pickle?), the analyzer (is what follows a ``STOP`` another pickle?), embedded
constants (is this byte string exactly one pickle?) and opaque tensor data (strict: only what
chance does not produce). This module imports nothing from the scan context, the engine or the
format handlers.
"""

from __future__ import annotations

import codecs
import re
import struct
import warnings

from msgspec import Struct

from modelshield.scanner.memio import Buffer
from modelshield.scanner.pickle.opcodes import HIGHEST_PROTOCOL, OPCODES, Arg

#: Bytes of argument lines (INT, STRING, GLOBAL...) one walk reads before it gives up deciding.
LINE_BUDGET = 16 << 20
#: Text constants longer than this are validated but not kept as possible import names.
_NAME_MAX = 1024
#: UTF-8 constants longer than this are not decoded to check them (a loader would; the walk
#: assumes they are valid rather than spend the time).
_DECODE_MAX = 1 << 20

# Walk outcomes.
STOPPED = "stop"
"""A ``STOP`` was reached: the unpickler returns a value."""
FAILED = "error"
"""An unpickler raises at ``end`` (the offset of the failing opcode)."""
OPS = "ops"
"""``max_ops`` opcodes were read without error."""
MORE = "more"
"""The window ended cleanly inside a stream that goes on (``partial`` walks only)."""
BUDGET = "budget"
"""An argument line was longer than :data:`LINE_BUDGET`: undecided."""

_SSIZE_MAX = (1 << 63) - 1

_OTHER = object()  # a value known not to be a str
_ANY = object()  # a value of unknown type (a call's result, a global, a persistent object)

_IDENT = re.compile(r"[^\W\d]\w*")
_STRTOL = re.compile(rb"[ \t\n\v\f\r]*[+-]?(?:0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_C_FLOAT = re.compile(
    rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)", re.I
)
_FIXED = {Arg.NONE: 0, Arg.U1: 1, Arg.U2: 2, Arg.I4: 4, Arg.U4: 4, Arg.U8: 8, Arg.F8: 8}
_LENGTH = {Arg.LEN1: ("<B", 1), Arg.LEN4: ("<I", 4), Arg.SLEN4: ("<i", 4), Arg.LEN8: ("<Q", 8)}

# Opcode groups (bytes).
_PUSH_ANY = frozenset(b"\x88\x89\x8aNJKMGL\x8b}])\x8fIF")  # constants that are not text
_TEXT_OPS = frozenset(b"IFLSVPgp")  # protocol-0 line arguments other than GLOBAL/INST
_CALLS = frozenset(b"Rb\x81\x92o")  # REDUCE, BUILD, NEWOBJ, NEWOBJ_EX, OBJ (INST apart)
_FROM_MARK = frozenset(b"tld\x91")  # TUPLE, LIST, DICT, FROZENSET: items above a mark -> one
_EXT = frozenset(b"\x82\x83\x84")

#: Opcodes an unpickler accepts as the first of a stream (each pushes a value or a mark, or is
#: PROTO/FRAME). Every other opcode raises on an empty machine: underflow, no mark, no memo,
#: an unregistered extension code, out-of-band data without buffers.
FIRST_OPCODES = frozenset(b"(FIJKLMNPSTUVXc}])GBC\x80\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x95\x96")


class Walk(Struct, frozen=True):
    """How far an unpickler gets into a buffer, and what it met on the way."""

    outcome: str
    """:data:`STOPPED`, :data:`FAILED`, :data:`OPS`, :data:`MORE` or :data:`BUDGET`."""
    end: int
    """Offset after the ``STOP``, of the opcode that fails, or where the walk stopped."""
    ops: int
    """Opcodes read without error."""
    imports: int
    """Imports reached (``GLOBAL``, ``STACK_GLOBAL``, ``INST`` naming an importable name)."""
    calls: int
    """Calls reached after the first import (``REDUCE``, ``BUILD``, ``NEWOBJ``, ``OBJ``...)."""
    reason: str = ""
    """Why the unpickler fails, for :data:`FAILED`."""


class _Fail(Exception):
    def __init__(self, offset: int, reason: str, outcome: str = FAILED) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason
        self.outcome = outcome


def looks_like_pickle(
    data: Buffer,
    start: int = 0,
    end: int | None = None,
    *,
    max_ops: int = 64,
    whole: bool = False,
    strict: bool = False,
    partial: bool = False,
) -> bool:
    """Whether ``data[start:end]`` starts a pickle an unpickler reads.

    True when the walk reaches ``STOP`` or ``max_ops`` opcodes without an error, or when an
    import and a call were reached before the first error (a pickle whose payload comes first
    and whose tail is broken still runs its payload). With ``whole``, the bytes must be exactly
    one complete pickle. ``partial`` says the data goes on past ``end`` (a window), so running
    out of bytes there is no error. ``strict`` is for opaque data (tensor storages, trailing
    bytes) where a loose check fires by chance: it needs six whole opcodes covering half the
    window, no protocol-0 text arguments and a ``PROTO`` only first, or else a complete
    pickle that imports something.
    """
    stop = len(data) if end is None else min(end, len(data))
    w = walk(data, start, stop, max_ops=max_ops, partial=partial, strict=strict)
    if whole:
        return w.outcome == STOPPED and w.end == stop
    if strict:
        covered = w.outcome == STOPPED or (w.end - start) * 2 >= stop - start
        if w.outcome in (STOPPED, OPS, MORE) and w.ops >= 6 and covered:
            return True
        w = walk(data, start, stop, max_ops=max_ops, partial=partial)
        return w.outcome == STOPPED and w.imports > 0
    return w.outcome in (STOPPED, OPS, MORE) or (w.imports > 0 and w.calls > 0)


def walk(
    data: Buffer,
    start: int = 0,
    end: int | None = None,
    *,
    max_ops: int = 64,
    persistent_load: bool = True,
    partial: bool = False,
    strict: bool = False,
) -> Walk:
    """Follow an unpickler through ``data[start:end]`` until ``STOP``, an error or ``max_ops``.

    ``persistent_load``: the loader has a persistent-id hook (PyTorch's does; ``pickle.load``
    without one raises at ``PERSID``). ``partial``: the data goes on past ``end``. ``strict``:
    protocol-0 text arguments other than names, extension codes and a ``PROTO`` after the
    first opcode count as errors (used for opaque data).
    """
    stop = len(data) if end is None else min(end, len(data))
    state = _State(data, start, stop, persistent_load, strict, partial)
    try:
        state.run(max_ops)
    except _Fail as e:
        if e.outcome == MORE and not partial:
            return state.result(FAILED, e.offset, e.reason)
        return state.result(e.outcome, e.offset, e.reason)
    return state.result(OPS, state.pos)


class _State:
    """One walk: position, stack of values (text kept, anything else a marker), marks, memo."""

    def __init__(
        self, data: Buffer, start: int, end: int, persistent_load: bool, strict: bool, partial: bool
    ) -> None:
        self.data = data
        self.partial = partial
        self.start = start
        self.end = end
        self.pos = start
        self.persistent_load = persistent_load
        self.strict = strict
        self.stack: list[object] = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.ops = 0
        self.imports = 0
        self.calls = 0
        self.budget = LINE_BUDGET
        # The two unpicklers disagree on frames: the C one needs a frame's bytes to exist and
        # ignores its end; the Python one reads a short frame but fails on an opcode that
        # straddles a frame's end, or on a frame that starts before the previous one ended.
        self.c_ok = True
        self.py_ok = True
        self.frame_end = -1  # end of the Python unpickler's current frame

    def result(self, outcome: str, end: int, reason: str = "") -> Walk:
        return Walk(outcome, end, self.ops, self.imports, self.calls, reason)

    # ---- stack discipline, as _pickle.c checks it -------------------------------------
    def read(self, pos: int, count: int, at: int) -> None:
        """The Python unpickler reads ``count`` bytes at ``pos``: not across a frame's end."""
        if pos < self.frame_end < pos + count:
            self.frame_failed(at, "pickle exhausted before end of frame")

    def frame_failed(self, at: int, reason: str, *, c_unpickler: bool = False) -> None:
        if c_unpickler:
            self.c_ok = False
        else:
            self.py_ok = False
        if not (self.c_ok or self.py_ok):
            raise _Fail(at, reason)

    def fence(self) -> int:
        return self.marks[-1] if self.marks else 0

    def need(self, count: int, at: int, name: str) -> None:
        if len(self.stack) - self.fence() < count:
            raise _Fail(at, f"{name}: unpickling stack underflow")

    def marker(self, at: int, name: str) -> int:
        if not self.marks:
            raise _Fail(at, f"{name}: could not find MARK")
        return self.marks.pop()

    # ---- the walk ---------------------------------------------------------------------
    def run(self, max_ops: int) -> None:
        data = self.data
        while self.ops < max_ops:
            at = self.pos
            if at >= self.end:
                raise _Fail(at, "the data ends without STOP", MORE)
            code = data[at]
            info = OPCODES.get(code)
            if info is None:
                raise _Fail(at, f"invalid load key 0x{code:02x}")
            if self.strict and (code in _TEXT_OPS or code in _EXT or (code == 0x80 and self.ops)):
                raise _Fail(at, "opcode not expected in a pickler's output")
            self.pos = at + 1
            arg = self.argument(info.arg, at)
            self.step(code, arg, at)
            self.ops += 1
            if code == 0x2E:
                raise _Fail(self.pos, "", STOPPED)

    def argument(self, kind: Arg, at: int) -> object:
        """Read the argument (text arguments decoded); the position moves past it."""
        data = self.data
        pos = self.pos
        fixed = _FIXED.get(kind)
        if fixed is not None:
            if pos + fixed > self.end:
                raise _Fail(at, "truncated argument", MORE)
            self.read(pos, fixed, at)
            self.pos = pos + fixed
            if fixed == 0:
                return None
            if kind is Arg.U1:
                return data[pos]
            if kind is Arg.F8:
                return None
            fmt = {Arg.U2: "<H", Arg.I4: "<i", Arg.U4: "<I", Arg.U8: "<Q"}[kind]
            value: int = struct.unpack_from(fmt, data, pos)[0]
            return value
        if kind is Arg.LINE:
            return self.line(at)
        if kind is Arg.LINE2:
            return (self.line(at), self.line(at))
        fmt, width = _LENGTH[kind]
        if pos + width > self.end:
            raise _Fail(at, "truncated length", MORE)
        self.read(pos, width, at)
        length: int = struct.unpack_from(fmt, data, pos)[0]
        if length < 0:
            raise _Fail(at, "negative byte count")
        begin = pos + width
        if begin + length > self.end:
            raise _Fail(at, f"declares {length} bytes beyond the data", MORE)
        self.read(begin, length, at)
        self.pos = begin + length
        return (begin, begin + length)

    def line(self, at: int) -> bytes:
        data = self.data
        pos = self.pos
        limit = min(self.end, pos + self.budget)
        if isinstance(data, bytes):
            index = data.find(b"\n", pos, limit)
        else:
            index = -1
            chunk = pos
            while chunk < limit:
                found = bytes(data[chunk : min(limit, chunk + 65536)]).find(b"\n")
                if found >= 0:
                    index = chunk + found
                    break
                chunk += 65536
        if index < 0:
            if limit < self.end:
                raise _Fail(at, "argument line longer than the walk reads", BUDGET)
            raise _Fail(at, "argument has no terminating newline", MORE)
        self.read(pos, index + 1 - pos, at)
        self.budget -= index + 1 - pos
        self.pos = index + 1
        return bytes(data[pos:index])

    def step(self, code: int, arg: object, at: int) -> None:
        stack = self.stack
        push = stack.append
        if code in _PUSH_ANY:
            if code in b"IFL":
                _check_number(code, arg, at)
            push(_OTHER)
        elif code == 0x28:  # MARK
            self.marks.append(len(stack))
        elif code == 0x2E:  # STOP
            self.need(1, at, "STOP")
        elif code in _FROM_MARK:
            mark = self.marker(at, OPCODES[code].name)
            if code == 0x64 and (len(stack) - mark) % 2:
                raise _Fail(at, "odd number of items for DICT")
            del stack[mark:]
            push(_OTHER)
        elif code in b"\x8c\x58\x8d":  # SHORT_BINUNICODE, BINUNICODE, BINUNICODE8
            assert isinstance(arg, tuple)
            push(self.text(arg, at))
        elif code in b"TU":  # BINSTRING, SHORT_BINSTRING: str by default (ASCII), like STRING
            assert isinstance(arg, tuple)
            raw = bytes(self.data[arg[0] : min(arg[1], arg[0] + _NAME_MAX + 1)])
            push(raw.decode("ascii") if len(raw) <= _NAME_MAX and raw.isascii() else _OTHER)
        elif code in b"CB\x8e\x96":  # bytes and bytearray
            push(_OTHER)
        elif code == 0x53:  # STRING
            assert isinstance(arg, bytes)
            push(_string(arg, at))
        elif code == 0x56:  # UNICODE
            assert isinstance(arg, bytes)
            try:
                text = codecs.raw_unicode_escape_decode(arg)[0]
            except UnicodeDecodeError:
                raise _Fail(at, "UNICODE: bad raw-unicode-escape") from None
            push(text if len(text) <= _NAME_MAX else _OTHER)
        elif code in b"hjqr\x94gp":
            self.memo_op(code, arg, at)
        elif code == 0x61:  # APPEND
            self.need(2, at, "APPEND")
            stack.pop()
        elif code == 0x30:  # POP
            if self.marks and self.marks[-1] == len(stack):
                self.marks.pop()
            else:
                self.need(1, at, "POP")
                stack.pop()
        elif code == 0x31:  # POP_MARK
            del stack[self.marker(at, "POP_MARK") :]
        elif code == 0x32:  # DUP
            self.need(1, at, "DUP")
            push(stack[-1])
        elif code in b"\x85\x86\x87":  # TUPLE1-3
            count = code - 0x84
            self.need(count, at, OPCODES[code].name)
            del stack[len(stack) - count :]
            push(_OTHER)
        elif code in b"su\x90e":  # SETITEM, SETITEMS, ADDITEMS, APPENDS
            self.fill(code, at)
        elif code == 0x63:  # GLOBAL
            assert isinstance(arg, tuple)
            self.import_(arg[0], arg[1], at, "GLOBAL")
            push(_ANY)
        elif code == 0x69:  # INST
            assert isinstance(arg, tuple)
            # The pure-Python unpickler imports before it looks for the mark; the C one looks
            # for the mark first. Either way a missing mark stops here.
            if not self.marks:
                raise _Fail(at, "INST: could not find MARK")
            self.import_(arg[0], arg[1], at, "INST")
            del stack[self.marks.pop() :]
            self.calls += 1
            push(_ANY)
        elif code == 0x93:  # STACK_GLOBAL
            self.need(2, at, "STACK_GLOBAL")
            name, module = stack.pop(), stack.pop()
            if module is _OTHER or name is _OTHER:
                raise _Fail(at, "STACK_GLOBAL requires str")
            if type(module) is str and type(name) is str:
                self.import_(
                    module.encode("utf-8", "surrogatepass"),
                    name.encode("utf-8", "surrogatepass"),
                    at,
                    "",
                )
            else:
                self.imports += 1  # computed names: assume the worst
            push(_ANY)
        elif code in _CALLS:
            count = 3 if code == 0x92 else 1 if code == 0x6F else 2
            if code == 0x6F:  # OBJ: a class above a mark
                mark = self.marker(at, "OBJ")
                if len(stack) - mark < 1:
                    raise _Fail(at, "OBJ: unpickling stack underflow")
                del stack[mark:]
            else:
                self.need(count, at, OPCODES[code].name)
                del stack[len(stack) - count :]
            if self.imports:
                self.calls += 1
            push(_ANY)
        elif code in b"PQ":  # PERSID, BINPERSID
            if not self.persistent_load:
                raise _Fail(at, "persistent id without a persistent_load hook")
            if code == 0x50:
                assert isinstance(arg, bytes)
                if not arg.isascii():
                    raise _Fail(at, "PERSID: not ASCII")
            else:
                self.need(1, at, "BINPERSID")
                stack.pop()
            push(_ANY)
        elif code == 0x80:  # PROTO
            assert isinstance(arg, int)
            if arg > HIGHEST_PROTOCOL:
                raise _Fail(at, f"unsupported pickle protocol: {arg}")
        elif code == 0x95:  # FRAME: the Python unpickler reads a short frame as far as it goes
            assert isinstance(arg, int)
            if arg > _SSIZE_MAX:
                raise _Fail(at, "FRAME length exceeds the system's maximum")
            if arg > self.end - self.pos and not self.partial:
                self.frame_failed(at, "pickle data was truncated", c_unpickler=True)
            if self.pos < self.frame_end:
                self.frame_failed(at, "beginning of a new frame before end of current frame")
            self.frame_end = min(self.pos + arg, self.end)
        elif code in _EXT:
            raise _Fail(at, "unregistered extension code")
        elif code == 0x97:  # NEXT_BUFFER
            raise _Fail(at, "out-of-band data but no buffers")
        elif code == 0x98:  # READONLY_BUFFER
            self.need(1, at, "READONLY_BUFFER")
        else:  # pragma: no cover - every opcode of the table is handled above
            raise _Fail(at, f"unhandled opcode 0x{code:02x}")

    def text(self, span: tuple[int, int], at: int) -> object:
        begin, stop = span
        if stop - begin > _DECODE_MAX:
            return _OTHER
        try:
            text = str(self.data[begin:stop], "utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise _Fail(at, "text is not valid UTF-8") from None
        return text if len(text) <= _NAME_MAX else _OTHER

    def memo_op(self, code: int, arg: object, at: int) -> None:
        stack = self.stack
        if code in b"gp":  # GET, PUT: a decimal key on a line
            assert isinstance(arg, bytes)
            key = _decimal(arg, at)
        else:
            key = len(self.memo) if code == 0x94 else arg  # type: ignore[assignment]
        if code in b"ghj":  # GET, BINGET, LONG_BINGET
            if key not in self.memo:
                raise _Fail(at, f"memo value not found at index {key}")
            stack.append(self.memo[key])
            return
        if len(stack) <= self.fence():
            raise _Fail(at, f"{OPCODES[code].name}: unpickling stack underflow")
        if key < 0:
            raise _Fail(at, "negative PUT argument")
        self.memo[key] = stack[-1]

    def fill(self, code: int, at: int) -> None:
        stack = self.stack
        # SETITEM: the key and the value above the container; the others: the items above a mark
        mark = len(stack) - 2 if code == 0x73 else self.marker(at, OPCODES[code].name)
        if mark > len(stack) or mark <= self.fence():
            raise _Fail(at, f"{OPCODES[code].name}: unpickling stack underflow")
        if code in b"su" and (len(stack) - mark) % 2:
            raise _Fail(at, f"odd number of items for {OPCODES[code].name}")
        del stack[mark:]

    def import_(self, module: bytes, name: bytes, at: int, opname: str) -> None:
        """An import by name: it fails unless both parts are dotted identifiers."""
        try:
            mod, attr = module.decode("utf-8"), name.decode("utf-8")
        except UnicodeDecodeError:
            raise _Fail(at, f"{opname or 'STACK_GLOBAL'}: name is not UTF-8") from None
        if not (_dotted(mod) and _dotted(attr)):
            raise _Fail(at, f"{opname or 'STACK_GLOBAL'}: {mod[:40]!r} cannot be imported")
        self.imports += 1


def _dotted(name: str) -> bool:
    return bool(name) and all(_IDENT.fullmatch(part) for part in name.split("."))


def _check_number(code: int, arg: object, at: int) -> None:
    """INT, LONG and FLOAT arguments as either unpickler parses them."""
    assert isinstance(arg, bytes)
    parse = {0x49: int_argument, 0x4C: long_argument}.get(code, float_argument)
    if parse(arg) is None:
        raise _Fail(at, f"{OPCODES[code].name}: invalid literal")


def int_argument(arg: bytes) -> int | None:
    """An INT argument (without its newline) as the C unpickler (``strtol`` in base 0 up to
    a NUL, then ``int`` in base 0) or the Python one (``int`` in base 0) reads it; None where
    both raise. ``00`` and ``01`` are the booleans protocol 0 writes."""
    if arg in (b"00", b"01"):
        return int(arg)
    head = arg.split(b"\x00", 1)[0]
    if not head and arg:
        return 0  # strtol read nothing and stopped at a NUL
    if _STRTOL.fullmatch(head):
        text = head.strip().decode("ascii")
        sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text.lstrip("+"))
        if digits[:2] in ("0x", "0X"):
            return sign * int(digits[2:], 16)
        return sign * int(digits, 8 if digits.startswith("0") else 10)
    # C falls back to PyLong_FromString on the C string (up to a NUL); Python to int(arg, 0).
    value = _int0(head)
    return value if value is not None else _int0(arg)


def long_argument(arg: bytes) -> int | None:
    """A LONG argument (a trailing ``L`` dropped) read with ``int`` in base 0, by C up to a
    NUL; None where both unpicklers raise."""
    text = arg[:-1] if arg.endswith(b"L") else arg
    value = _int0(text)
    return value if value is not None else _int0(text.split(b"\x00", 1)[0])


def float_argument(arg: bytes) -> float | None:
    """A FLOAT argument as ``float`` (Python) or ``PyOS_string_to_double`` up to a NUL (C)
    reads it; None where both raise."""
    try:
        return float(arg)
    except ValueError:
        pass
    match = _C_FLOAT.match(arg)
    if match is None or arg[match.end() : match.end() + 1] not in (b"", b"\x00"):
        return None
    try:
        return float(match.group())
    except (ValueError, OverflowError):  # pragma: no cover - the pattern is a float
        return None


def _int0(text: bytes) -> int | None:
    if not text:
        return None
    try:
        return int(text, 0)
    except ValueError:
        return None


def _decimal(arg: bytes, at: int) -> int:
    """A GET/PUT memo key: a base-10 integer."""
    try:
        return int(arg)
    except ValueError:
        raise _Fail(at, "memo key is not an integer") from None


def _string(arg: bytes, at: int) -> object:
    """A protocol-0 STRING: quoted, with valid escapes."""
    if len(arg) < 2 or arg[0] != arg[-1] or arg[:1] not in (b"'", b'"'):
        raise _Fail(at, "the STRING opcode argument must be quoted")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = codecs.escape_decode(arg[1:-1])[0]
    except ValueError:
        raise _Fail(at, "STRING: bad escape") from None
    if len(raw) <= _NAME_MAX and raw.isascii():
        return raw.decode("ascii")  # Python 3 loads it as str (with the default encoding)
    return _OTHER
