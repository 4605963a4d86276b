"""A linear pass for imports over what the symbolic machine did not reach.

When the interpreter stops at a limit (opcodes, stack, memo, streams, nesting of joblib
arrays), the rest of the stream may still hold the payload: padding in front of it is exactly
how files are built to exhaust scanners. :func:`sweep_rest` walks the remaining opcodes as a
loader reads them, without interpreting them, and reports every import it meets (``GLOBAL``,
``INST``, ``STACK_GLOBAL``) with the same callable policy and ledger rules as the interpreter;
each finding says that the linear pass found it. ``STACK_GLOBAL`` takes its names from the two
string constants pushed right before it, directly or through the memo (the pass follows the
memo for strings, starting from the interpreter's); one whose names cannot be read that way is
reported as a dynamic import. A byte constant that starts with a PROTO header is walked too,
as the embedded pickle the interpreter would have analysed.

Runs of simple opcodes (no argument, or a fixed-size one) are skipped by regular expressions at
C speed; other opcodes cost a few hundred nanoseconds each. The pass stops at the first byte
that is not an opcode (a loader fails there), at a STOP followed by trailing data, at the
deadline, or after :data:`MAX_IMPORTS` imports.

:func:`sweep_plain` searches a buffer that was not followed (beyond ``limits.max_nested_depth``)
the same way, from every place that looks like the start of a pickle: a stored pickle inside an
archive nested too deep is still read in place.
"""

from __future__ import annotations

import re
import struct
import time
from typing import Any

from msgspec import Struct

from modelshield.core.findings import Location, Severity
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.memio import Buffer
from modelshield.scanner.pickle import rules
from modelshield.scanner.pickle.ledger import Ledger
from modelshield.scanner.pickle.opcodes import OPCODES, Arg
from modelshield.scanner.pickle.sniff import looks_like_pickle
from modelshield.scanner.pickle.state import Session

#: Imports one pass reports before it stops (each costs a classification).
MAX_IMPORTS = 100_000
#: Strings remembered in the pass's memo.
_MAX_MEMO = 1_000_000
#: Longest string kept as a possible name.
_MAX_NAME = 512
#: Bytes matched by one regular-expression step (bounds the copies made to inspect a run).
_WINDOW = 1 << 20
#: Bytes walked between two releases of touched pages.
_RELEASE_EVERY = 64 << 20
#: Longest gap of memo writes allowed between a string and the opcode that uses it.
_MAX_GAP = 64

_U4 = struct.Struct("<I").unpack_from
_I4 = struct.Struct("<i").unpack_from
_U8 = struct.Struct("<Q").unpack_from

_MEMOIZE, _STACK_GLOBAL, _STOP = 0x94, 0x93, 0x2E
_MEMO_READS = frozenset(b"hjqr")  # BINGET, LONG_BINGET, BINPUT, LONG_BINPUT


def _ops(*args: Arg, but: frozenset[int] = frozenset()) -> bytes:
    """A regular-expression character class body of the opcodes with these arguments."""
    codes = sorted(c for c, info in OPCODES.items() if info.arg in args and c not in but)
    return re.escape(bytes(codes))


_NOARG = _ops(Arg.NONE, but=frozenset({_MEMOIZE, _STACK_GLOBAL, _STOP}))
# A run of no-argument opcodes, MEMOIZE and STOP: every byte of it is an opcode, so MEMOIZE and
# STOP can be counted in it exactly. (Single classes and possessive repeats keep the regular
# expression engine at hundreds of MB/s; an alternation inside a plain repeat is 100x slower.)
_BARE_RUN = re.compile(rb"[" + _NOARG + rb"\x94.]+")
_BARE_CHARS = frozenset(c for c, i in OPCODES.items() if i.arg is Arg.NONE) - {_STACK_GLOBAL}
# A run of no-argument opcodes (without MEMOIZE or STOP) and opcodes with a fixed-size argument
# that touch neither the memo nor strings.
_FIXED_RUN = re.compile(
    rb"(?:["
    + _NOARG
    + rb"]+|["
    + _ops(Arg.U1, but=_MEMO_READS)
    + rb"].|["
    + _ops(Arg.U2)
    + rb"].{2}|["
    + _ops(Arg.I4, Arg.U4, but=_MEMO_READS)
    + rb"].{4}|["
    + _ops(Arg.U8, Arg.F8)
    + rb"].{8})++",
    re.DOTALL,
)
#: Opcodes that may start each kind of run.
_BARE_STARTS = frozenset(c for c, i in OPCODES.items() if i.arg is Arg.NONE) - {_MEMOIZE}
_WIDTHS = {Arg.NONE: 0, Arg.U1: 1, Arg.U2: 2, Arg.I4: 4, Arg.U4: 4, Arg.U8: 8, Arg.F8: 8}
_FIXED_WIDTH = {
    c: _WIDTHS[i.arg]
    for c, i in OPCODES.items()
    if i.arg in _WIDTHS and c not in _MEMO_READS and c not in (_MEMOIZE, _STACK_GLOBAL, _STOP)
}
_FIXED_STARTS = frozenset(_FIXED_WIDTH)
# What may come between a string and the opcode that takes it: memo writes and frames.
_NEUTRAL = re.compile(rb"(?:\x94|q.|r.{4}|\x95.{8})*", re.DOTALL)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
# Where a pickle may start in a buffer that was not followed.
_START = re.compile(
    rb"\x80[\x00-\x05]|[ci][A-Za-z_][A-Za-z0-9_.]{0,255}\n[A-Za-z_][A-Za-z0-9_.]{0,255}\n"
)

_LINE_OPS = frozenset(b"IFLPSVgp")
_TEXT_LEN = {0x8C: 1, 0x58: 4, 0x8D: 8, 0x55: 1, 0x54: -4}  # negative: signed length
_DATA_LEN = {0x43: 1, 0x42: 4, 0x8E: 8, 0x96: 8, 0x8A: 1, 0x8B: -4}


class Sweep(Struct):
    """What a linear pass found."""

    imports: int = 0
    """Imports met (safe ones included)."""
    unresolved: int = 0
    """STACK_GLOBAL opcodes whose names it could not read."""
    end: int = 0
    """Where it stopped."""
    stopped: str = ""
    """Why it stopped before the end, if it did."""

    def summary(self, start: int) -> str:
        """A sentence for the limit's finding."""
        walked = self.end - start
        text = (
            f"a linear pass over the next {walked} bytes found {self.imports} import(s)"
            + (f" and {self.unresolved} unreadable STACK_GLOBAL(s)" if self.unresolved else "")
            + (" (findings for what is not on the safe list)" if self.imports else "")
        )
        return text + (f" (it stopped {self.stopped})" if self.stopped else "")


#: A value pushed by the opcode at ``start``..``end``: ``(start, end, text, span)``, where
#: ``text`` is a string's text when known, else ``span`` >= 0 says that the UTF-8 bytes
#: ``data[span:end]`` hold it (decoded only when needed), else it is no string.
_Pushed = tuple[int, int, str | None, int]


class _Walker:
    """The state of one linear pass over one buffer."""

    def __init__(self, session: Session, ledger: Ledger, *, strict: bool) -> None:
        self.session = session
        self.ctx = session.ctx
        self.data = session.data
        self.ledger = ledger
        self.strict = strict  # only names that look like Python names (plain buffers)
        self.sweep = Sweep()
        self.first_unresolved: int | None = None
        self.memo: dict[int, str] = {}
        self.memo_len: int | None = 0
        self.recent: list[_Pushed] = []
        self.nested = False  # walking a byte constant that is a pickle

    # ---- the walk ---------------------------------------------------------------------
    def walk(self, pos: int, end: int) -> int:
        """Walk opcodes from ``pos``; return where the walk stopped."""
        data = self.data
        sweep = self.sweep
        ctx = self.ctx
        released = pos
        steps = 0
        while pos < end:
            steps += 1
            if not steps & 0x3FF or pos - released > _RELEASE_EVERY:
                if _out_of_time(ctx):
                    sweep.stopped = f"at the time limit, at offset {pos}"
                    return pos
                if pos - released > _RELEASE_EVERY:
                    ctx.release_pages()
                    released = pos
            if sweep.imports >= MAX_IMPORTS:
                sweep.stopped = f"after {MAX_IMPORTS} imports, at offset {pos}"
                return pos
            op = data[pos]
            if op in _BARE_STARTS:  # (not MEMOIZE: one right after a string is followed below)
                if op != _STOP and (pos + 1 >= end or data[pos + 1] not in _BARE_CHARS):
                    pos += 1  # a lone opcode: no run to match
                    continue
                m = _BARE_RUN.match(data, pos, min(end, pos + _WINDOW))
                if m is not None:
                    after = m.end()
                    run = bytes(data[pos:after])
                    self._bare(run)
                    pos = after
                    if run[-1] == _STOP and (pos >= end or data[pos] not in OPCODES):
                        if pos < end:
                            sweep.stopped = f"at trailing data after a STOP, at offset {pos}"
                        return pos
                    continue
            if op in _FIXED_STARTS:
                after = pos + 1 + _FIXED_WIDTH[op]
                if after < end and data[after] not in _FIXED_STARTS:
                    pos = after  # a lone opcode: no run to match
                    continue
                m = _FIXED_RUN.match(data, pos, min(end, pos + _WINDOW))
                if m is not None:
                    pos = m.end()
                    continue
            at = pos
            pos += 1
            if op == 0x93:  # STACK_GLOBAL
                self._stack_global(at)
            elif op == 0x63 or op == 0x69:  # GLOBAL, INST
                module, pos = self._line(pos, end)
                if module is None:
                    return at
                name, pos = self._line(pos, end)
                if name is None:
                    return at
                self._import(module, name, "GLOBAL" if op == 0x63 else "INST", at)
            elif op == 0x94:  # MEMOIZE
                if self.memo_len is not None:
                    self._put(self.memo_len, at)
                    self.memo_len += 1
            elif op == 0x71 or op == 0x72:  # BINPUT, LONG_BINPUT
                width = 1 if op == 0x71 else 4
                if pos + width > end:
                    return at
                self._put(data[pos] if width == 1 else _U4(data, pos)[0], at)
                pos += width
            elif op == 0x68 or op == 0x6A:  # BINGET, LONG_BINGET
                width = 1 if op == 0x68 else 4
                if pos + width > end:
                    return at
                key = data[pos] if width == 1 else _U4(data, pos)[0]
                pos += width
                self._push((at, pos, self.memo.get(key), -1))
            elif op in _LINE_OPS:
                arg, pos = self._line(pos, end)
                if arg is None:
                    return at
                self._line_op(op, arg, at, pos)
            elif op in _TEXT_LEN or op in _DATA_LEN:
                width = _TEXT_LEN.get(op) or _DATA_LEN[op]
                signed = width < 0
                width = abs(width)
                if pos + width > end:
                    return at
                if width == 1:
                    n = data[pos]
                elif width == 8:
                    (n,) = _U8(data, pos)
                else:
                    (n,) = _I4(data, pos) if signed else _U4(data, pos)
                pos += width
                if n < 0 or pos + n > end:
                    return at
                span = -1
                if op in _TEXT_LEN:
                    if n <= _MAX_NAME:
                        span = pos
                elif n >= 4 and not self.nested and data[pos] == 0x80 and 2 <= data[pos + 1] <= 5:
                    self._embedded(pos, pos + n)
                pos += n
                self._push((at, pos, None, span))
            else:  # an unknown opcode, or an argument cut short: a loader fails here
                if op not in OPCODES:
                    sweep.stopped = f"at an invalid opcode at offset {at}"
                return at
        return end

    # ---- opcodes ----------------------------------------------------------------------
    def _embedded(self, start: int, end: int) -> None:
        """A byte constant that starts like a pickle: walk it too (one level deep), as the
        interpreter would have analysed it as an embedded pickle."""
        saved = self.memo, self.memo_len, self.recent, self.sweep.stopped
        self.memo, self.memo_len, self.recent = {}, 0, []
        self.nested = True
        try:
            self.walk(start, end)
        finally:
            self.nested = False
            self.memo, self.memo_len, self.recent, self.sweep.stopped = saved

    def _bare(self, run: bytes) -> None:
        """A run of no-argument opcodes: count memo slots, forget the memo at each STOP."""
        stop = run.rfind(b".")
        if stop >= 0:
            self.memo = {}
            self.memo_len = run.count(b"\x94", stop)
        elif self.memo_len is not None:
            self.memo_len += run.count(b"\x94")

    def _push(self, item: _Pushed) -> None:
        recent = self.recent
        recent.append(item)
        if len(recent) > 2:
            del recent[0]

    def _text(self, item: _Pushed) -> str | None:
        """The text of a pushed value, or None when it is no string."""
        text, span = item[2], item[3]
        if text is None and span >= 0:
            return _text(bytes(self.data[span : item[1]]))
        return text

    def _put(self, key: int, at: int) -> None:
        """A memo write of the top of the stack: remember it when it is a string."""
        recent = self.recent
        memo = self.memo
        text = self._text(recent[-1]) if recent and self._neutral(recent[-1][1], at) else None
        if text is None:
            memo.pop(key, None)
        elif len(memo) < _MAX_MEMO or key in memo:
            memo[key] = text

    def _neutral(self, start: int, end: int) -> bool:
        return end - start <= _MAX_GAP and (
            start == end or _NEUTRAL.fullmatch(self.data, start, end) is not None
        )

    def _stack_global(self, at: int) -> None:
        recent = self.recent
        if len(recent) == 2:
            module, name = recent
            if self._neutral(module[1], name[0]) and self._neutral(name[1], at):
                module_text, name_text = self._text(module), self._text(name)
                if module_text is not None and name_text is not None:
                    self._import(module_text, name_text, "STACK_GLOBAL", at)
                    self.recent = []
                    return
        self.recent = []
        if not self.strict:
            self.sweep.unresolved += 1
            if self.first_unresolved is None:
                self.first_unresolved = at

    def _import(self, module: str, name: str, opcode: str, at: int) -> None:
        if self.strict and not (_NAME.fullmatch(module) and _NAME.fullmatch(name)):
            return
        self.sweep.imports += 1
        self.ledger.imported(module, name, opcode, at)
        self.recent = []

    def _line_op(self, op: int, arg: bytes, at: int, end: int) -> None:
        text: str | None = None
        if op == 0x53:  # STRING
            if len(arg) >= 2 and arg[:1] in (b"'", b'"') and arg[-1:] == arg[:1]:
                text = _text(arg[1:-1]) if b"\\" not in arg else None
        elif op == 0x56:  # UNICODE
            text = _text(arg) if b"\\" not in arg else None
        elif op == 0x67 or op == 0x70:  # GET, PUT
            try:
                key = int(arg)
            except ValueError:
                return
            if op == 0x70:
                self._put(key, at)
                return
            text = self.memo.get(key)
        self._push((at, end, text, -1))

    def _line(self, pos: int, end: int) -> tuple[Any, int]:
        """The text up to the next newline (as a str when it is UTF-8) and the offset after."""
        data = self.data
        if type(data) is bytes:
            index = data.find(b"\n", pos, end)
        else:
            index = -1
            chunk = pos
            while chunk < end:
                found = bytes(data[chunk : min(end, chunk + 65536)]).find(b"\n")
                if found >= 0:
                    index = chunk + found
                    break
                chunk += 65536
        if index < 0:
            return None, pos
        raw = bytes(data[pos:index])
        try:
            return raw.decode("utf-8"), index + 1
        except UnicodeDecodeError:
            return None, pos

    def finish(self, what: str) -> None:
        """Report what the pass found."""
        self.ledger.flush()
        count = self.sweep.unresolved
        if count and self.first_unresolved is not None:
            self.session.emit(
                rules.DYNAMIC_IMPORT,
                self.first_unresolved,
                f"A linear pass {what} met {count} STACK_GLOBAL opcode(s) whose names it could "
                "not read from the string constants pushed before them. What they import is "
                "unknown; a computed import is how payloads hide from scanners.",
                {"opcode": "STACK_GLOBAL", "count": str(count), "found_by": _FOUND_BY + what},
                severity=Severity.HIGH,
            )


_FOUND_BY = "linear pass "


def _out_of_time(ctx: ScanContext) -> bool:
    return time.monotonic() - ctx.started > ctx.limits.max_seconds_per_file


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _ledger(session: Session, what: str) -> Ledger:
    return Ledger(
        session.ctx,
        session.location,
        session.classify,
        found_by=(
            _FOUND_BY + what,
            f"A linear pass {what} found this import (the symbolic analysis had stopped, so "
            "whether and how it is called was not analysed).",
        ),
    )


def sweep_rest(
    session: Session,
    pos: int,
    limit: LimitExceeded,
    *,
    memo: dict[int, Any] | None = None,
    stack: list[Any] | None = None,
) -> None:
    """Search the rest of ``session.data`` from ``pos`` for imports after ``limit`` stopped the
    interpreter; add what was found to the limit's message. ``memo`` and ``stack`` are the
    interpreter's at that point (strings in them name what a later STACK_GLOBAL imports)."""
    if any(s is session for s in limit.swept):
        return
    limit.swept.append(session)
    what = f"after limits.{limit.limit}"
    walker = _Walker(session, _ledger(session, what), strict=False)
    if memo is not None:
        walker.memo_len = len(memo)
        strings = ((k, v) for k, v in memo.items() if type(v) is str and len(v) <= _MAX_NAME)
        walker.memo = dict(s for s, _ in zip(strings, range(_MAX_MEMO), strict=False))
    for value in (stack or [])[-2:]:
        walker.recent.append((pos, pos, value if type(value) is str else None, -1))
    walker.sweep.end = walker.walk(pos, len(session.data))
    walker.finish(what)
    limit.detail += "; " + walker.sweep.summary(pos)
    limit.evidence["linear_pass"] = (
        f"{walker.sweep.imports} imports, {walker.sweep.unresolved} unread STACK_GLOBAL, "
        f"bytes {pos}-{walker.sweep.end}"
    )


def sweep_plain(ctx: ScanContext, data: Buffer, location: Location, limit: LimitExceeded) -> None:
    """Search a buffer that ``limit`` kept from being analysed for pickles in plain sight and
    report their imports; add what was found to the limit's message.

    Every place that starts like a pickle (a PROTO header, or a GLOBAL with two name lines) is
    walked as one, up to ``limits.max_embedded_scan_bytes`` of the buffer. Only imports whose
    names look like Python names count: anything else is data that happens to look like an
    opcode.
    """
    size = min(len(data), ctx.limits.max_embedded_scan_bytes)
    session = Session(ctx, data, location)
    what = f"over content beyond limits.{limit.limit}"
    walker = _Walker(session, _ledger(session, what), strict=True)
    # A buffer that is itself a pickle (the member not followed) is walked from its start,
    # whatever its first opcode; elsewhere, from each place that starts like one.
    pos = walker.walk(0, size) if looks_like_pickle(data, 0, size) else 0
    steps = 0
    while pos < size:
        m = _START.search(data, pos, size)
        if m is None:
            break
        steps += 1
        if not steps & 0xFF and _out_of_time(ctx):
            walker.sweep.stopped = f"at the time limit, at offset {m.start()}"
            break
        walker.memo, walker.memo_len, walker.recent = {}, 0, []
        end = walker.walk(m.start(), size)
        pos = max(end, m.start() + 1)
        if walker.sweep.imports >= MAX_IMPORTS:
            break
    walker.sweep.end = pos
    walker.finish(what)
    if walker.sweep.imports:
        limit.detail += (
            f"; {walker.sweep.imports} import(s) were found in pickle-looking parts of the "
            "content that was not followed (findings for what is not on the safe list)"
        )
        limit.evidence["linear_pass"] = f"{walker.sweep.imports} imports in unfollowed content"


def limit_reached(ctx: ScanContext, e: LimitExceeded) -> None:
    """Report a tripped limit; a buffer the nesting limit kept from being analysed is first
    searched for pickles in plain sight (a stored pickle in an archive nested too deep)."""
    if e.unfollowed is not None:
        unfollowed, e.unfollowed = e.unfollowed, None
        sweep_plain(ctx, unfollowed, e.location, e)
    ctx.add(e.finding())
