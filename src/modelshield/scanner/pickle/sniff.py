"""Does a buffer (or the bytes after a pickle) look like a pickle? A structural check only.

It walks the first opcodes with the bounds of :mod:`.opcodes` and never interprets anything.
It is what decides whether bytes after a ``STOP`` are another pickle or trailing data, and
whether a byte constant inside a pickle is an embedded pickle.
"""

from __future__ import annotations

import re
import struct

from modelshield.scanner.memio import Buffer
from modelshield.scanner.pickle.opcodes import HIGHEST_PROTOCOL, OPCODES, STARTERS, Arg

_GLOBAL_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_.]{0,255}")
_MAX_LINE = 4096
_STOP = 0x2E
_GLOBALS = frozenset({0x63, 0x69, 0x93})  # GLOBAL, INST, STACK_GLOBAL
_FIXED = {Arg.NONE: 0, Arg.U1: 1, Arg.U2: 2, Arg.I4: 4, Arg.U4: 4, Arg.U8: 8, Arg.F8: 8}
_LENGTH = {Arg.LEN1: ("<B", 1), Arg.LEN4: ("<I", 4), Arg.SLEN4: ("<i", 4), Arg.LEN8: ("<Q", 8)}


def looks_like_pickle(
    data: Buffer,
    start: int = 0,
    end: int | None = None,
    *,
    max_ops: int = 64,
    whole: bool = False,
) -> bool:
    """Whether ``data[start:end]`` starts like a pickle.

    True when the first opcode can start a pickle and the opcodes decode cleanly up to a STOP
    or for ``max_ops`` opcodes, or when a global was named before the first decoding error
    (a truncated pickle after its payload is still a pickle). With ``whole``, the bytes must
    be exactly one complete pickle.
    """
    end = len(data) if end is None else min(end, len(data))
    pos = start
    if pos >= end:
        return False
    first = data[pos]
    if first == 0x80:
        if pos + 1 >= end or data[pos + 1] > HIGHEST_PROTOCOL:
            return False
    elif first not in STARTERS:
        return False
    ops = 0
    saw_global = False
    while ops < max_ops:
        if pos >= end:
            return saw_global and ops >= 2 and not whole
        code = data[pos]
        info = OPCODES.get(code)
        if info is None:
            return saw_global and ops >= 2 and not whole
        after = _skip(data, pos + 1, end, info.arg)
        if after < 0:
            return saw_global and ops >= 2 and not whole
        ops += 1
        saw_global = saw_global or code in _GLOBALS
        pos = after
        if code == _STOP:
            return pos == end if whole else True
    return not whole


def _skip(data: Buffer, pos: int, end: int, arg: Arg) -> int:
    """The offset after the argument, or -1 when it does not decode within ``end``."""
    fixed = _FIXED.get(arg)
    if fixed is not None:
        return pos + fixed if pos + fixed <= end else -1
    if arg is Arg.LINE or arg is Arg.LINE2:
        for _ in range(2 if arg is Arg.LINE2 else 1):
            line_end = _find_newline(data, pos, min(end, pos + _MAX_LINE))
            if line_end < 0:
                return -1
            if arg is Arg.LINE2 and not _GLOBAL_NAME.fullmatch(bytes(data[pos:line_end])):
                return -1
            pos = line_end + 1
        return pos
    fmt, width = _LENGTH[arg]
    if pos + width > end:
        return -1
    length: int = struct.unpack_from(fmt, data, pos)[0]
    if length < 0 or pos + width + length > end:
        return -1
    return pos + width + length


def _find_newline(data: Buffer, start: int, stop: int) -> int:
    chunk = bytes(data[start:stop])
    index = chunk.find(b"\n")
    return -1 if index < 0 else start + index
