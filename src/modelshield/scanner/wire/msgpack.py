"""MessagePack documents: Flax checkpoints (``flax_model.msgpack``) and other msgpack data.

MessagePack is plain data: maps, arrays, strings, numbers and "ext" blobs whose meaning the
reading program decides. Flax restores its checkpoints with ext types 1 (an ndarray: shape,
dtype name and raw bytes), 2 (a complex number) and 3 (a NumPy scalar), none of which
deserialises code. A buffer is recognised as MessagePack only when its first object is a map
(a checkpoint's top-level dict) and its structure decodes; the handler then walks the whole
document, bounded by the buffer (every length is checked before it is skipped, nothing is
copied) and by the nesting depth, and records in the result's metadata the ext types Flax does
not write (the program that reads them decides what they mean).
"""

from __future__ import annotations

import struct

from modelshield.scanner.memio import Buffer

#: Nesting that no checkpoint reaches; deeper documents are reported as malformed.
MAX_DEPTH = 512
#: Ext types Flax's msgpack_restore understands.
FLAX_EXT_TYPES = frozenset({1, 2, 3})
#: Objects examined when sniffing a buffer's start.
_SNIFF_OBJECTS = 4096

_FIXED = {0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_FIXED |= {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
_SIZED = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}  # bin, str: length width
_EXT_SIZED = {0xC7: 1, 0xC8: 2, 0xC9: 4}
_FIXEXT = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
_WIDTH = {1: ">B", 2: ">H", 4: ">I"}


class MsgpackError(ValueError):
    """The buffer is not well-formed MessagePack at ``offset``."""

    def __init__(self, offset: int, message: str) -> None:
        """Say where and what."""
        super().__init__(f"{message} at offset {offset}")
        self.offset = offset


class Walk:
    """What a walk over a MessagePack document found."""

    __slots__ = ("end", "ext_types", "objects")

    def __init__(self) -> None:
        """Nothing found yet."""
        self.end = 0
        """Offset after the last object decoded."""
        self.objects = 0
        """Objects decoded."""
        self.ext_types: dict[int, int] = {}
        """Ext type -> how many ext objects of that type."""


def walk(data: Buffer, *, max_objects: int | None = None) -> Walk:
    """Decode the structure of one MessagePack object at the start of ``data`` (skipping, never
    copying, payloads); stop early after ``max_objects`` objects. Raises MsgpackError."""
    size = len(data)
    result = Walk()
    pending = [1]  # objects still to read at each open level
    pos = 0
    while pending:
        if pending[-1] == 0:
            pending.pop()
            continue
        if max_objects is not None and result.objects >= max_objects:
            break
        pending[-1] -= 1
        if pos >= size:
            raise MsgpackError(pos, "the document ends inside a container")
        code = data[pos]
        start = pos
        pos += 1
        result.objects += 1
        children = 0
        if code <= 0x7F or code >= 0xE0:
            continue
        if code <= 0x8F:
            children = 2 * (code & 0x0F)
        elif code <= 0x9F:
            children = code & 0x0F
        elif code <= 0xBF:
            pos += code & 0x1F
        elif code in _FIXED:
            pos += _FIXED[code]
        elif code in _SIZED:
            pos = _skip_sized(data, pos, _SIZED[code], 0)
        elif code in _EXT_SIZED:
            width = _EXT_SIZED[code]
            ext = _read_int(data, pos + width, 1, ">b")
            result.ext_types[ext] = result.ext_types.get(ext, 0) + 1
            pos = _skip_sized(data, pos, width, 1)
        elif code in _FIXEXT:
            ext = _read_int(data, pos, 1, ">b")
            result.ext_types[ext] = result.ext_types.get(ext, 0) + 1
            pos += 1 + _FIXEXT[code]
        elif code in (0xDC, 0xDD):
            children = _read_int(data, pos, 2 if code == 0xDC else 4, None)
            pos += 2 if code == 0xDC else 4
        elif code in (0xDE, 0xDF):
            children = 2 * _read_int(data, pos, 2 if code == 0xDE else 4, None)
            pos += 2 if code == 0xDE else 4
        else:
            raise MsgpackError(start, f"0x{code:02x} is not a MessagePack type")
        if pos > size:
            raise MsgpackError(start, "a value runs past the end of the data")
        if children:
            if children > size - pos:  # every object takes at least one byte
                raise MsgpackError(start, f"a container claims {children} objects")
            if len(pending) > MAX_DEPTH:
                raise MsgpackError(start, f"nesting deeper than {MAX_DEPTH} levels")
            pending.append(children)
    result.end = pos
    return result


def _read_int(data: Buffer, pos: int, width: int, fmt: str | None) -> int:
    if pos + width > len(data):
        raise MsgpackError(pos, "a length runs past the end of the data")
    value: int = struct.unpack_from(fmt or _WIDTH[width], data, pos)[0]
    return value


def _skip_sized(data: Buffer, pos: int, width: int, extra: int) -> int:
    length = _read_int(data, pos, width, None)
    return pos + width + extra + length


def looks_like_msgpack(data: Buffer) -> bool:
    """Whether ``data`` starts with a MessagePack map whose first key is a string and whose
    first objects decode (a checkpoint's top-level dict)."""
    if not data:
        return False
    first = data[0]
    if not (0x81 <= first <= 0x8F or first in (0xDE, 0xDF)):
        return False
    key_at = 1 if first <= 0x8F else (3 if first == 0xDE else 5)
    if key_at >= len(data) or not (0xA0 <= data[key_at] <= 0xBF or data[key_at] in _SIZED):
        return False
    try:
        found = walk(data, max_objects=_SNIFF_OBJECTS)
    except MsgpackError:
        return False
    return found.end == len(data) or found.objects >= _SNIFF_OBJECTS
