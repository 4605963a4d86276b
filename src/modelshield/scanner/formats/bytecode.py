"""Marshalled Python code objects, read without :mod:`marshal`.

Keras serialises a ``Lambda`` layer's function as ``base64(marshal.dumps(func.__code__))``.
``marshal.loads`` is not safe on hostile bytes (it can crash the interpreter, and the code it
returns is one call away from running), so this module decodes the marshal format itself, with
every length checked against the buffer, a budget of objects and a depth bound, and keeps only
what a reviewer needs: the names the code refers to (``co_names``: globals, attributes and
imported modules), its constants, and the same for every nested code object.

Code objects have a different layout in each Python version; the layouts of Python 3.0-3.7,
3.8-3.10 and 3.11 onwards are tried in turn, and the first that reads the whole buffer wins (all
code objects of one buffer come from one interpreter). A buffer that fits none still gives the
strings found in it, so that a malformed payload is reported with what it mentions.
"""

from __future__ import annotations

import re
import struct

from msgspec import Struct

MAX_OBJECTS = 200_000
"""Objects decoded per buffer before giving up."""
MAX_DEPTH = 100
"""Containers and code objects nested deeper than this are not followed."""
_MAX_LONG_DIGITS = 4096

_BEFORE_3_11 = (
    "code",
    "consts",
    "names",
    "varnames",
    "freevars",
    "cellvars",
    "filename",
    "name",
    "I",
    "lnotab",
)
# Layouts: (name, number of leading int32 fields, object fields in order; "I" is a raw int32).
_LAYOUTS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    (
        "3.11+",
        5,
        (
            "code",
            "consts",
            "names",
            "localsplusnames",
            "localspluskinds",
            "filename",
            "name",
            "qualname",
            "I",
            "linetable",
            "exceptiontable",
        ),
    ),
    ("3.8-3.10", 6, _BEFORE_3_11),  # posonlyargcount added
    ("3.0-3.7", 5, _BEFORE_3_11),
)
_TUPLE_FIELDS = frozenset(
    {"consts", "names", "localsplusnames", "varnames", "freevars", "cellvars"}
)
_BYTES_FIELDS = frozenset({"code", "localspluskinds", "linetable", "exceptiontable", "lnotab"})
_STR_FIELDS = frozenset({"filename", "name", "qualname"})
_PRINTABLE = re.compile(rb"[\x20-\x7e]{3,}")


class MarshalError(ValueError):
    """The bytes are not a marshalled object this reader understands."""


class CodeSummary(Struct, frozen=True):
    """What marshalled code refers to."""

    names: tuple[str, ...]
    """Names used by the code and its nested code (globals, attributes, imports), in order of
    first use, without repeats."""
    constants: tuple[str, ...]
    """String and bytes constants, in order of first use, without repeats."""
    functions: tuple[str, ...]
    """Names of the code objects (``<lambda>``, nested functions)."""
    layout: str | None
    """The Python versions whose code layout fits (None when none did)."""
    problem: str | None = None
    """Why the buffer could not be decoded as a code object (None when it was)."""


class _Code(Struct):
    name: str = ""
    names: tuple[object, ...] = ()
    consts: tuple[object, ...] = ()


class _Ref:
    """A slot reserved for an object still being decoded (a tuple referring to itself)."""


class _Reader:
    def __init__(self, data: bytes, layout: tuple[str, int, tuple[str, ...]] | None) -> None:
        self.data = data
        self.pos = 0
        self.refs: list[object] = []
        self.objects = 0
        self.layout = layout
        self.codes: list[_Code] = []

    def _take(self, n: int) -> bytes:
        if n < 0 or n > len(self.data) - self.pos:
            raise MarshalError(f"a length of {n} runs past the end of the data")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def _int32(self) -> int:
        (value,) = struct.unpack("<i", self._take(4))
        return int(value)

    def _size(self) -> int:
        n = self._int32()
        if n < 0:
            raise MarshalError(f"negative size {n}")
        return n

    def read(self, depth: int = 0) -> object:
        self.objects += 1
        if self.objects > MAX_OBJECTS:
            raise MarshalError(f"more than {MAX_OBJECTS} objects")
        if depth > MAX_DEPTH:
            raise MarshalError(f"objects nested deeper than {MAX_DEPTH}")
        (byte,) = self._take(1)
        flag, code = byte & 0x80, chr(byte & 0x7F)
        index = None
        if flag:
            index = len(self.refs)
            self.refs.append(_Ref())
        value = self._read_typed(code, depth)
        if index is not None:
            self.refs[index] = value
        return value

    def _read_typed(self, code: str, depth: int) -> object:
        simple = {"N": None, "F": False, "T": True, "S": "StopIteration", ".": "Ellipsis"}
        if code in simple:
            return simple[code]
        if code == "0":
            raise MarshalError("a NULL object outside a dict")
        if code == "i":
            return self._int32()
        if code == "l":
            n = abs(self._int32())
            if n > _MAX_LONG_DIGITS:
                raise MarshalError(f"an integer of {n} digits")
            digits = self._take(2 * n)
            return int.from_bytes(digits, "little") if n else 0
        if code == "g":
            (value,) = struct.unpack("<d", self._take(8))
            return float(value)
        if code == "y":
            self._take(16)
            return "<complex>"
        if code in "fx":
            for _ in range(1 if code == "f" else 2):
                (n,) = self._take(1)
                self._take(n)
            return "<number>"
        if code == "s":
            return self._take(self._size())
        if code in "tuaA":
            return self._take(self._size()).decode("utf-8", "replace")
        if code in "zZ":
            (n,) = self._take(1)
            return self._take(n).decode("latin-1")
        if code == ")":  # small tuple
            (n,) = self._take(1)
            return tuple(self.read(depth + 1) for _ in range(n))
        if code in "([<>":
            n = self._size()
            if n > len(self.data) - self.pos:
                raise MarshalError(f"a container of {n} items in fewer bytes")
            return tuple(self.read(depth + 1) for _ in range(n))
        if code == "{":
            items: list[object] = []
            while True:
                if self.pos < len(self.data) and self.data[self.pos] == ord("0"):
                    self.pos += 1
                    return tuple(items)
                items.append(self.read(depth + 1))
                items.append(self.read(depth + 1))
        if code == ":":  # slice (marshal version 5)
            return tuple(self.read(depth + 1) for _ in range(3))
        if code == "r":
            index = self._size()
            if index >= len(self.refs):
                raise MarshalError(f"reference {index} to an object not read yet")
            return self.refs[index]
        if code == "c":
            return self._code(depth)
        raise MarshalError(f"unknown type code {code!r}")

    def _code(self, depth: int) -> _Code:
        if self.layout is None:
            raise MarshalError("a code object with no known layout")
        _, ints, order = self.layout
        self._take(4 * ints)
        found = _Code()
        for field in order:
            if field == "I":
                self._int32()
                continue
            value = self.read(depth + 1)
            if field in _TUPLE_FIELDS and not isinstance(value, tuple):
                raise MarshalError(f"{field} is not a tuple")
            if field in _BYTES_FIELDS and not isinstance(value, bytes):
                raise MarshalError(f"{field} is not bytes")
            if field in _STR_FIELDS and not isinstance(value, str):
                raise MarshalError(f"{field} is not a string")
            if field == "names":
                found.names = value  # type: ignore[assignment]
            elif field == "consts":
                found.consts = value  # type: ignore[assignment]
            elif field == "name":
                found.name = str(value)
        self.codes.append(found)
        return found


def summarize(data: bytes) -> CodeSummary:
    """Decode a marshalled code object and list what it refers to (never raises)."""
    problem = "the data is empty"
    for layout in _LAYOUTS:
        reader = _Reader(data, layout)
        try:
            top = reader.read()
        except (MarshalError, RecursionError) as e:
            problem = str(e)
            continue
        if not isinstance(top, _Code):
            problem = "the data is not a code object"
            break
        if reader.pos != len(data):
            problem = f"{len(data) - reader.pos} bytes follow the code object"
            continue
        return _summary(reader.codes, layout[0])
    strings = tuple(dict.fromkeys(m.decode("ascii") for m in _PRINTABLE.findall(data[:65536])))
    return CodeSummary(
        names=(), constants=strings[:200], functions=(), layout=None, problem=problem
    )


def _summary(codes: list[_Code], layout: str) -> CodeSummary:
    names: dict[str, None] = {}
    constants: dict[str, None] = {}
    functions: dict[str, None] = {}
    for code in codes:
        functions[code.name] = None
        for name in code.names:
            if isinstance(name, str):
                names[name] = None
        stack: list[object] = list(code.consts)
        while stack:
            value = stack.pop()
            if isinstance(value, tuple):
                stack.extend(value)
            elif isinstance(value, str):
                constants[value] = None
            elif isinstance(value, bytes):
                constants[value.decode("utf-8", "replace")] = None
    return CodeSummary(
        names=tuple(names), constants=tuple(constants), functions=tuple(functions), layout=layout
    )
