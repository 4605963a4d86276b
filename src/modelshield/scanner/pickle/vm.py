"""The symbolic pickle machine: a streaming decoder and interpreter over raw opcodes.

It mirrors CPython's C unpickler (``_pickle.c``): one stack with a mark stack of fences, a
memo, the same underflow rules, and frames read linearly; places where the pure-Python
unpickler behaves differently are reported (``PICKLE-FRAME-MISMATCH``). Nothing is ever
imported or called: imports become :class:`~.values.Global` references classified by the
callable policy, calls become :class:`~.values.Call` records (see :mod:`.calls`).

Every length is checked against the buffer before anything is sliced, so a declared 2**62-byte
string costs nothing; opcodes (all streams of a file together), streams, stack, mark stack,
memo, stream size and wall time are bounded by :class:`~modelshield.core.limits.Limits`,
checked every few thousand bytes of stream so that the loop pays one comparison per opcode.
When a bound stops the machine, a linear pass (:mod:`.linear`) still reports the imports of
the rest of the stream. No value an attacker shapes is ever hashed or compared recursively:
a tuple used as a dictionary key or set item is checked to be small first (CPython hashes
nested tuples recursively in C, and a 2,000,000-deep one crashes the process).
"""

from __future__ import annotations

import struct
from itertools import count as _count
from typing import Any

from msgspec import Struct

from modelshield.core.limits import Limits
from modelshield.scanner.context import LimitExceeded
from modelshield.scanner.pickle import calls, linear, rules
from modelshield.scanner.pickle.decode import (
    INLINE_MAX,
    SET_COST,
    beyond,
    global_name,
    line,
    rare_opcode,
    utf8,
)
from modelshield.scanner.pickle.joblib import array_end
from modelshield.scanner.pickle.opcodes import HIGHEST_PROTOCOL, opname
from modelshield.scanner.pickle.state import Session, Stream, StreamError
from modelshield.scanner.pickle.values import Blob, Call, Global, Persistent, Unknown

_U2 = struct.Struct("<H").unpack_from
_I4 = struct.Struct("<i").unpack_from
_U4 = struct.Struct("<I").unpack_from
_U8 = struct.Struct("<Q").unpack_from
_F8 = struct.Struct(">d").unpack_from

#: Bytes between two checks of the limits (and of the deadline).
_CHECK_BYTES = 4096
#: "No frame is open".
_NO_FRAME = 1 << 62
#: Elements (nested tuples included) of a tuple that is hashed as a key or set item.
_MAX_KEY_NODES = 256
#: Work charged on top of the opcode for a call modelled in :mod:`.calls`.
CALL_COST = 4


class Outcome(Struct, frozen=True):
    """How one pickle stream ended."""

    start: int
    """Offset of its first opcode."""
    end: int
    """Offset after its STOP, or where the analysis had to stop."""
    complete: bool
    """Whether it reached STOP."""
    result: Any
    """The value STOP returned (a constant, or a symbolic value)."""
    persistent_ids: tuple[Any, ...]
    """Persistent ids it handed to the loader, in order."""


class Interpreter:
    """Runs the pickle streams of one buffer (one :class:`Session`)."""

    def __init__(self, session: Session) -> None:
        """Interpret streams of ``session.data``."""
        self.session = session
        self.limits = session.ctx.limits

    def run(self, start: int, *, persistent_ids_expected: bool = False) -> Outcome:
        """Interpret one pickle starting at ``start``; findings go to the scan context.

        Raises :class:`LimitExceeded` when a bound stops it, after a linear pass over the rest
        of the buffer has reported its imports.
        """
        session = self.session
        ctx = session.ctx
        ctx.streams += 1
        if ctx.streams > self.limits.max_pickle_streams:
            e = LimitExceeded(
                "max_pickle_streams",
                f"the file holds more than {self.limits.max_pickle_streams} pickle streams",
                session.location.at(start),
            )
            linear.sweep_rest(session, start, e)
            raise e
        if ctx.opcodes > self.limits.max_opcodes:  # short streams never reach ``_check``
            e = LimitExceeded("max_opcodes", _budget_spent(self.limits), session.location.at(start))
            linear.sweep_rest(session, start, e)
            raise e
        st = Stream(session, start, persistent_ids_expected)
        try:
            return self._loop(st, start)
        finally:
            st.flush()

    # ---- the loop ---------------------------------------------------------------------
    def _loop(self, st: Stream, start: int) -> Outcome:
        session = self.session
        data = session.data
        size = len(data)
        embedded = session.embedded
        stack: list[Any] = []
        push = stack.append
        pop = stack.pop
        marks: list[int] = []  # fences saved by MARK; ``fence`` is the innermost one
        memo: dict[int, Any] = {}
        fence = 0
        pos = start
        opos = start
        frame_end = _NO_FRAME
        # The loop stops to look at the end of the data, the end of a frame, and every
        # _CHECK_BYTES bytes (every opcode takes at least one byte, so at most that many
        # opcodes run between two checks of the limits). One comparison per opcode.
        limit = min(size, pos + _CHECK_BYTES)
        # Work is counted in opcodes, plus ``extra`` for the opcodes that cost more (they
        # allocate a container or a string, or model a call): see ``limits.max_opcodes``.
        ops = extra = 0
        try:
            for ops in _count(1):
                if pos >= limit:
                    if pos >= frame_end:
                        if pos > frame_end:
                            self._frame(
                                opos,
                                f"{opname(data[opos])} at offset {opos} runs past the end of "
                                f"its frame (offset {frame_end})",
                            )
                        frame_end = _NO_FRAME
                    if pos > size:  # an argument that was never read ran past the end
                        raise StreamError(
                            opos, f"the stream is truncated inside {opname(data[opos])}"
                        )
                    if pos == size:
                        raise StreamError(pos, f"stream ends at offset {pos} without STOP")
                    self._check(st, ops + extra, pos, len(stack), len(marks), len(memo))
                    limit = min(size, frame_end, pos + _CHECK_BYTES)
                opos = pos
                op = data[pos]
                pos += 1

                if op == 0x71:  # BINPUT
                    if len(stack) > fence:
                        memo[data[pos]] = stack[-1]
                    else:
                        st.semantic(opos, "BINPUT with nothing on the stack")
                    pos += 1
                elif op == 0x94:  # MEMOIZE
                    if len(stack) > fence:
                        memo[len(memo)] = stack[-1]
                    else:
                        st.semantic(opos, "MEMOIZE with nothing on the stack")
                elif op == 0x68:  # BINGET
                    try:
                        push(memo[data[pos]])
                    except KeyError:
                        push(self.missing(st, opos, data[pos]))
                    pos += 1
                elif op == 0x8C:  # SHORT_BINUNICODE
                    n = data[pos]
                    pos += 1
                    end = pos + n
                    if end > size:
                        raise StreamError(opos, beyond("SHORT_BINUNICODE", n, size - pos))
                    text = utf8(data, pos, end, opos)
                    pos = end
                    push(text)
                    extra += 1
                    if n >= 16 and embedded is not None:
                        embedded.check_text(text, opos)
                elif op == 0x4B:  # BININT1
                    push(data[pos])
                    pos += 1
                elif op == 0x28:  # MARK
                    marks.append(fence)
                    fence = len(stack)
                elif op == 0x47:  # BINFLOAT
                    push(_F8(data, pos)[0])
                    pos += 8
                elif op == 0x58 or op == 0x8D:  # BINUNICODE, BINUNICODE8
                    if op == 0x58:
                        (n,) = _U4(data, pos)
                        pos += 4
                    else:
                        (n,) = _U8(data, pos)
                        pos += 8
                    end = pos + n
                    if end > size:
                        raise StreamError(opos, beyond(opname(op), n, size - pos))
                    if n <= INLINE_MAX:
                        text = utf8(data, pos, end, opos)
                        push(text)
                        extra += 1
                        if n >= 16 and embedded is not None:
                            embedded.check_text(text, opos)
                    else:
                        push(Blob(pos, end, "str"))
                        if embedded is not None:
                            embedded.check_text_span(pos, end, opos)
                    pos = end
                elif op == 0x85:  # TUPLE1
                    if len(stack) > fence:
                        stack[-1] = (stack[-1],)
                        extra += 1
                    else:
                        st.semantic(opos, "TUPLE1 with nothing on the stack")
                        push(())
                elif op == 0x86:  # TUPLE2
                    if len(stack) >= fence + 2:
                        b = pop()
                        stack[-1] = (stack[-1], b)
                        extra += 1
                    else:
                        st.semantic(opos, "TUPLE2 with fewer than two values on the stack")
                        del stack[fence:]
                        push(())
                elif op == 0x52 or op == 0x81:  # REDUCE, NEWOBJ
                    if len(stack) >= fence + 2:
                        args = pop()
                        func = stack[-1]
                        called_by = "REDUCE" if op == 0x52 else "NEWOBJ"
                        if type(func) is Global and func.safe and type(args) is tuple:
                            stack[-1] = Call(func, args, None, opos, called_by)
                        else:
                            stack[-1] = calls.call(st, func, args, None, called_by, opos)
                            extra += CALL_COST
                    else:
                        st.semantic(opos, f"{opname(op)} with fewer than two values on the stack")
                        del stack[fence:]
                        push(Unknown("result of a failed call"))
                elif op == 0x75 or op == 0x65 or op == 0x90:  # SETITEMS, APPENDS, ADDITEMS
                    if marks:
                        items = stack[fence:]
                        del stack[fence:]
                        fence = marks.pop()
                    else:
                        st.semantic(opos, f"{opname(op)} without a MARK")
                        items = []
                    if len(stack) > fence:
                        self._extend(st, stack[-1], items, op, opos)
                    else:
                        st.semantic(opos, f"{opname(op)} with no object below the MARK")
                elif op == 0x74 or op == 0x6C:  # TUPLE, LIST
                    if marks:
                        items = stack[fence:]
                        del stack[fence:]
                        fence = marks.pop()
                    else:
                        st.semantic(opos, f"{opname(op)} without a MARK")
                        items = []
                    push(tuple(items) if op == 0x74 else items)
                elif op == 0x4E:  # NONE
                    push(None)
                elif op == 0x89:  # NEWFALSE
                    push(False)
                elif op == 0x88:  # NEWTRUE
                    push(True)
                elif op == 0x7D:  # EMPTY_DICT
                    push({})
                    extra += 1
                elif op == 0x5D:  # EMPTY_LIST
                    push([])
                    extra += 1
                elif op == 0x29:  # EMPTY_TUPLE
                    push(())
                elif op == 0x87:  # TUPLE3
                    if len(stack) >= fence + 3:
                        c = pop()
                        b = pop()
                        stack[-1] = (stack[-1], b, c)
                        extra += 1
                    else:
                        st.semantic(opos, "TUPLE3 with fewer than three values on the stack")
                        del stack[fence:]
                        push(())
                elif op == 0x4A:  # BININT
                    push(_I4(data, pos)[0])
                    pos += 4
                elif op == 0x4D:  # BININT2
                    push(_U2(data, pos)[0])
                    pos += 2
                elif op == 0x62:  # BUILD
                    if len(stack) >= fence + 2:
                        state = pop()
                        wrapper = calls.build(st, stack[-1], state, opos)
                        if wrapper is not None:
                            if frame_end != _NO_FRAME:
                                if pos != frame_end:
                                    self._frame(
                                        opos,
                                        "joblib reads array data from the file while a frame is "
                                        f"still open (frame ends at offset {frame_end})",
                                    )
                                frame_end = _NO_FRAME
                            pos = self._joblib(st, wrapper, pos, opos)
                            limit = min(size, pos + _CHECK_BYTES)
                            stack[-1] = Unknown("numpy array read by joblib")
                    else:
                        st.semantic(opos, "BUILD with fewer than two values on the stack")
                        del stack[fence:]
                elif op == 0x93:  # STACK_GLOBAL
                    if len(stack) >= fence + 2:
                        name_v = self._text_operand(pop())
                        module_v = self._text_operand(stack[-1])
                        if type(module_v) is str and type(name_v) is str:
                            stack[-1] = calls.import_global(
                                st, module_v, name_v, "STACK_GLOBAL", opos
                            )
                        else:
                            stack[-1] = calls.dynamic_import(st, module_v, name_v, opos)
                    else:
                        st.semantic(opos, "STACK_GLOBAL with fewer than two values on the stack")
                        del stack[fence:]
                        push(Unknown("failed import"))
                elif op == 0x73:  # SETITEM
                    if len(stack) >= fence + 3:
                        value = pop()
                        key = pop()
                        target = stack[-1]
                        if type(target) is dict and type(key) is not tuple:
                            try:
                                target[key] = value
                            except TypeError:
                                st.semantic(opos, "dictionary key is not hashable (TypeError)")
                        else:
                            self._extend(st, target, [key, value], op, opos)
                    else:
                        st.semantic(opos, "SETITEM with fewer than three values on the stack")
                        del stack[fence:]
                elif op == 0x61:  # APPEND
                    if len(stack) >= fence + 2:
                        value = pop()
                        self._extend(st, stack[-1], [value], op, opos)
                    else:
                        st.semantic(opos, "APPEND with fewer than two values on the stack")
                        del stack[fence:]
                elif op == 0x72:  # LONG_BINPUT
                    (idx,) = _U4(data, pos)
                    pos += 4
                    if len(stack) > fence:
                        memo[idx] = stack[-1]
                    else:
                        st.semantic(opos, "LONG_BINPUT with nothing on the stack")
                elif op == 0x6A:  # LONG_BINGET
                    (idx,) = _U4(data, pos)
                    pos += 4
                    try:
                        push(memo[idx])
                    except KeyError:
                        push(self.missing(st, opos, idx))
                elif op == 0x51:  # BINPERSID
                    if len(stack) > fence:
                        stack[-1] = self.persistent(st, stack[-1], opos)
                    else:
                        st.semantic(opos, "BINPERSID with nothing on the stack")
                        push(Unknown("persistent object"))
                elif op == 0x63 or op == 0x69:  # GLOBAL, INST
                    module, pos = line(data, pos, size, opos)
                    name, pos = line(data, pos, size, opos)
                    ref = calls.import_global(
                        st, global_name(module, opos), global_name(name, opos), opname(op), opos
                    )
                    if op == 0x63:
                        push(ref)
                    else:
                        if marks:
                            items = stack[fence:]
                            del stack[fence:]
                            fence = marks.pop()
                        else:
                            st.semantic(opos, "INST without a MARK")
                            items = []
                        push(calls.call(st, ref, tuple(items), None, "INST", opos))
                        extra += CALL_COST
                elif op == 0x43 or op == 0x42 or op == 0x8E or op == 0x96:
                    # SHORT_BINBYTES, BINBYTES, BINBYTES8, BYTEARRAY8
                    if op == 0x43:
                        n = data[pos]
                        pos += 1
                    elif op == 0x42:
                        (n,) = _U4(data, pos)
                        pos += 4
                    else:
                        (n,) = _U8(data, pos)
                        pos += 8
                    end = pos + n
                    if end > size:
                        raise StreamError(opos, beyond(opname(op), n, size - pos))
                    if n <= INLINE_MAX:
                        raw = bytes(data[pos:end])
                        push(bytearray(raw) if op == 0x96 else raw)
                    else:
                        push(Blob(pos, end, "bytearray" if op == 0x96 else "bytes"))
                    if n >= 4 and embedded is not None:
                        embedded.check_span(pos, end, opos)
                    pos = end
                elif op == 0x30:  # POP
                    if len(stack) > fence:
                        pop()
                    elif marks:
                        fence = marks.pop()  # CPython pops the mark itself
                    else:
                        st.semantic(opos, "POP with nothing on the stack")
                elif op == 0x95:  # FRAME
                    (n,) = _U8(data, pos)
                    pos += 8
                    if frame_end != _NO_FRAME and opos < frame_end:
                        self._frame(
                            opos,
                            f"FRAME at offset {opos} starts before the previous frame ended "
                            f"(offset {frame_end})",
                        )
                    if n > size - pos:
                        self._frame(
                            opos,
                            f"FRAME at offset {opos} declares {n} bytes but only {size - pos} "
                            "remain",
                        )
                    frame_end = pos + n
                    limit = min(limit, frame_end)
                elif op == 0x2E:  # STOP
                    if len(stack) > fence:
                        result = pop()
                    else:
                        st.semantic(opos, "STOP with nothing on the stack")
                        result = Unknown("nothing")
                    if pos < frame_end <= size:
                        # The pure-Python unpickler drops the rest of the frame; the C one
                        # leaves it for the next load: the two disagree on what follows.
                        self._frame(
                            opos,
                            f"STOP at offset {opos} ends the pickle {frame_end - pos} bytes "
                            "before the end of its frame",
                        )
                    return Outcome(start, pos, True, result, tuple(st.persistent_ids))
                elif op == 0x80:  # PROTO
                    self._proto(st, data[pos], opos)
                    pos += 1
                elif op == 0x32:  # DUP
                    if len(stack) > fence:
                        push(stack[-1])
                    else:
                        st.semantic(opos, "DUP with nothing on the stack")
                elif op == 0x31:  # POP_MARK
                    if marks:
                        del stack[fence:]
                        fence = marks.pop()
                    else:
                        st.semantic(opos, "POP_MARK without a MARK")
                elif op == 0x64 or op == 0x91 or op == 0x6F:  # DICT, FROZENSET, OBJ
                    if marks:
                        items = stack[fence:]
                        del stack[fence:]
                        fence = marks.pop()
                    else:
                        st.semantic(opos, f"{opname(op)} without a MARK")
                        items = []
                    push(self._from_mark(st, op, items, opos))
                elif op == 0x92:  # NEWOBJ_EX
                    if len(stack) >= fence + 3:
                        kwargs = pop()
                        args = pop()
                        stack[-1] = calls.call(st, stack[-1], args, kwargs, "NEWOBJ_EX", opos)
                        extra += CALL_COST
                    else:
                        st.semantic(opos, "NEWOBJ_EX with fewer than three values on the stack")
                        del stack[fence:]
                        push(Unknown("result of a failed call"))
                else:
                    pos = rare_opcode(self, st, op, pos, opos, stack, fence, memo)
            raise RuntimeError("unreachable: count() never ends")  # pragma: no cover
        except StreamError as e:
            if not e.reported:
                session.emit(
                    rules.MALFORMED,
                    e.offset,
                    f"{e.message}. A real loader fails here, after running every opcode before "
                    "it; whatever precedes this point was analysed.",
                    {"offset": str(e.offset), "opcode": opname(data[opos]) if opos < size else ""},
                )
            return Outcome(start, e.offset, False, None, tuple(st.persistent_ids))
        except (IndexError, struct.error):
            session.emit(
                rules.MALFORMED,
                opos,
                f"The stream is truncated inside {opname(data[opos])} at offset {opos}: its "
                "argument runs past the end of the data. A real loader fails here, after running "
                "every opcode before it.",
                {"offset": str(opos), "opcode": opname(data[opos])},
            )
            return Outcome(start, size, False, None, tuple(st.persistent_ids))
        except LimitExceeded as e:
            if e.limit != "max_seconds_per_file":
                linear.sweep_rest(session, pos, e, memo=memo, stack=stack)
            raise
        finally:
            session.ctx.opcodes += ops + extra - st.counted

    # ---- helpers for the loop ---------------------------------------------------------
    def _check(self, st: Stream, ops: int, pos: int, depth: int, marks: int, memo: int) -> None:
        """Enforce the limits; called every few thousand bytes of stream (``ops`` is the
        stream's work so far, costly opcodes counting more than one)."""
        limits = self.limits
        ctx = self.session.ctx
        ctx.opcodes += ops - st.counted
        st.counted = ops
        loc = self.session.location.at(pos)
        if ctx.opcodes > limits.max_opcodes:
            raise LimitExceeded("max_opcodes", _budget_spent(limits), loc)
        tripped = ""
        if depth > limits.max_stack_depth or marks > limits.max_stack_depth:
            tripped = "max_stack_depth"
            detail = f"more than {limits.max_stack_depth} stacked values or marks"
        elif memo > limits.max_memo_entries:
            tripped = "max_memo_entries"
            detail = f"more than {limits.max_memo_entries} memo entries"
        elif pos - st.start > limits.max_pickle_bytes:
            tripped = "max_pickle_bytes"
            detail = f"a pickle stream longer than {limits.max_pickle_bytes} bytes"
        if tripped:
            raise LimitExceeded(tripped, f"the pickle needs {detail}", loc)
        self.session.ctx.check_deadline(loc)

    def missing(self, st: Stream, opos: int, key: int) -> Unknown:
        st.semantic(opos, f"memo key {key} is read but was never stored (KeyError)")
        return Unknown("missing memo entry")

    def persistent(self, st: Stream, pid: Any, opos: int) -> Persistent:
        st.persistent_id(pid, opos)
        return Persistent(pid, opos)

    def _text_operand(self, value: Any) -> Any:
        """A large text constant used as a name is decoded (names are never large)."""
        if type(value) is Blob and value.kind == "str":
            data = self.session.data
            return str(data[value.start : value.end], "utf-8", "surrogatepass")
        return value

    def _frame(self, offset: int, message: str) -> None:
        self.session.emit(
            rules.FRAME_MISMATCH,
            offset,
            f"{message}. CPython's C unpickler reads across frame boundaries while the "
            "pure-Python one stops or reads elsewhere, so what runs depends on the loader.",
            {"offset": str(offset)},
        )

    def _proto(self, st: Stream, protocol: int, opos: int) -> None:
        st.protos += 1
        problem = ""
        if protocol > HIGHEST_PROTOCOL:
            problem = f"PROTO {protocol} names a protocol above {HIGHEST_PROTOCOL}"
        elif st.protos > 1:
            problem = f"PROTO appears again at offset {opos}"
        elif opos != st.start:
            problem = f"PROTO at offset {opos} is not the stream's first opcode"
        if problem and st.protos_reported == 0:
            st.protos_reported += 1
            self.session.emit(
                rules.PROTO_ANOMALY,
                opos,
                f"{problem}. Picklers write one PROTO, first; this stream was edited by hand.",
                {"protocol": str(protocol), "offset": str(opos)},
            )

    def _extend(self, st: Stream, target: Any, items: list[Any], op: int, opos: int) -> None:
        """APPEND(S), SETITEM(S), ADDITEMS: fill a container, or model the method call."""
        t = type(target)
        if op == 0x75 or op == 0x73:  # SETITEMS, SETITEM
            if t is dict:
                if len(items) % 2:
                    st.semantic(opos, "SETITEMS with an odd number of items")
                try:
                    target.update(zip(_keys(items[::2]), items[1::2], strict=False))
                except TypeError:
                    st.semantic(opos, "dictionary key is not hashable (TypeError)")
                return
        elif op == 0x90:  # ADDITEMS
            if t is set:
                try:
                    target.update(_keys(items))
                except TypeError:
                    st.semantic(opos, "set item is not hashable (TypeError)")
                return
        elif t is list:  # APPENDS, APPEND
            target.extend(items)
            return
        calls.write_into(st, target, items, opname(op), opos)

    def _from_mark(self, st: Stream, op: int, items: list[Any], opos: int) -> Any:
        """DICT, FROZENSET and OBJ: build from the items above a MARK."""
        if op == 0x6F:  # OBJ
            if not items:
                st.semantic(opos, "OBJ without a class above its MARK")
                return Unknown("result of a failed call")
            self.session.ctx.opcodes += CALL_COST
            return calls.call(st, items[0], tuple(items[1:]), None, "OBJ", opos)
        try:
            if op == 0x64:  # DICT
                if len(items) % 2:
                    st.semantic(opos, "DICT with an odd number of items")
                return dict(zip(_keys(items[::2]), items[1::2], strict=False))
            self.session.ctx.opcodes += SET_COST
            return frozenset(_keys(items))
        except TypeError:
            st.semantic(opos, f"{opname(op)} item is not hashable (TypeError)")
            return {} if op == 0x64 else frozenset()

    def _joblib(self, st: Stream, wrapper: Call, pos: int, opos: int) -> int:
        """Skip (or interpret) the array data joblib reads after a NumpyArrayWrapper."""
        session = self.session
        end, nested = array_end(wrapper, session.data, pos, opos)
        if not nested:
            return end
        limits = self.limits
        if session.joblib_depth >= limits.max_nested_depth:
            raise LimitExceeded(
                "max_nested_depth",
                f"joblib object arrays nested deeper than {limits.max_nested_depth} levels",
                session.location.at(opos),
            )
        session.joblib_depth += 1
        try:
            inner = self.run(pos, persistent_ids_expected=st.persistent_ids_expected)
        finally:
            session.joblib_depth -= 1
        if not inner.complete:
            raise StreamError(inner.end, "joblib object array pickle is broken", reported=True)
        return inner.end


def _budget_spent(limits: Limits) -> str:
    return (
        f"the pickle interpreter's work budget for one file is spent (limits.max_opcodes, "
        f"{limits.max_opcodes} opcodes for all its pickle streams together)"
    )


def _keys(values: list[Any]) -> list[Any]:
    """``values`` made safe to hash: a tuple with more than :data:`_MAX_KEY_NODES` elements
    (nested ones included) becomes an opaque placeholder.

    CPython hashes and compares tuples recursively in C, without a depth check: a deeply nested
    tuple used as a key overflows the C stack, and a huge one used again and again costs its
    size each time. Keys real pickles use are small; one too large to model is not analysed.
    """
    if tuple not in set(map(type, values)):
        return values
    return [
        v if type(v) is not tuple or _small(v) else Unknown("a tuple key too large to model")
        for v in values
    ]


def _small(value: tuple[Any, ...]) -> bool:
    """Whether a tuple has at most :data:`_MAX_KEY_NODES` elements, nested tuples included."""
    todo = [value]
    nodes = 0
    while todo:
        item = todo.pop()
        nodes += len(item) + 1
        if nodes > _MAX_KEY_NODES:
            return False
        todo.extend(x for x in item if type(x) is tuple)
    return True
