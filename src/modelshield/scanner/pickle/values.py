"""Symbolic values on the interpreter's stack and in its memo.

Constants are plain Python objects (``str``, ``bytes``, ``int``, ``float``, ``bool``, ``None``
and tuples, lists, dicts, sets of values): they are what the stream literally spells, and
keeping them as such makes the common opcodes cheap. Everything a real load would compute is
symbolic: a :class:`Global` reference, a :class:`Call` result, a :class:`Persistent` object
from the loader's ``persistent_load``, an :class:`Unknown`, or a :class:`Mutated` attribute that
an earlier ``BUILD`` wrote onto a module. Large byte and text constants stay in the buffer as a
:class:`Blob` (offsets only), so that a 1 GB tensor in a pickle is never copied.

Values are shared, never copied: a memo ``GET`` pushes the same object again, so the
interpreter's memory stays proportional to the number of opcodes it ran.
"""

from __future__ import annotations

import itertools
from typing import Any


class Global:
    """A reference to ``module.name`` as a real load would import it."""

    __slots__ = ("module", "name", "offset", "opcode", "safe")

    def __init__(self, module: str, name: str, offset: int, opcode: str, safe: bool) -> None:
        """``opcode`` names how it was obtained (``GLOBAL``, ``STACK_GLOBAL``, a gadget...)."""
        self.module = module
        """The module as written in the stream (``__builtin__``, ``posix``...)."""
        self.name = name
        """The qualified name inside the module; empty for the module object itself."""
        self.offset = offset
        """Byte offset of the opcode that produced it."""
        self.opcode = opcode
        """How it was obtained."""
        self.safe = safe
        """Whether the callable policy classified it as safe (calls take a fast path)."""

    @property
    def dotted(self) -> str:
        """``module.name`` (or ``module`` for a module object)."""
        return f"{self.module}.{self.name}" if self.name else self.module

    def attribute(self, attr: str, offset: int, via: str) -> Global:
        """The reference to an attribute of this object (never classified as safe here)."""
        name = f"{self.name}.{attr}" if self.name else attr
        return Global(self.module, name, offset, via, False)


class Call:
    """The result of calling ``func`` with ``args`` (``REDUCE``, ``NEWOBJ``, ``INST``...)."""

    __slots__ = ("args", "func", "kwargs", "offset", "opcode", "state")

    def __init__(self, func: Any, args: Any, kwargs: Any, offset: int, opcode: str) -> None:
        """Record a call; ``state`` is filled by a later ``BUILD`` on the result."""
        self.func = func
        """The callable value."""
        self.args = args
        """The positional arguments (normally a tuple)."""
        self.kwargs = kwargs
        """Keyword arguments (``NEWOBJ_EX``), else None."""
        self.offset = offset
        """Byte offset of the calling opcode."""
        self.opcode = opcode
        """The calling opcode's name."""
        self.state: Any = None
        """The state a ``BUILD`` passed to the object, if any."""


class Persistent:
    """An object the loader's ``persistent_load`` returns for a persistent id."""

    __slots__ = ("offset", "pid")

    def __init__(self, pid: Any, offset: int) -> None:
        """Keep the id (PyTorch uses a ``('storage', type, key, location, numel)`` tuple)."""
        self.pid = pid
        """The persistent id value."""
        self.offset = offset
        """Byte offset of the ``PERSID``/``BINPERSID`` opcode."""


class Unknown:
    """A value the analysis cannot know (a failed lookup, an extension code, a buffer)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        """Say what it stands for, for evidence."""
        self.what = what
        """A short description."""


class Mutated:
    """A module attribute that an earlier ``BUILD`` overwrote: its value is attacker data."""

    __slots__ = ("origin", "value")

    def __init__(self, origin: Global, value: Any) -> None:
        """``origin`` is the import that read the attribute, ``value`` what was written."""
        self.origin = origin
        """The import that read the overwritten attribute."""
        self.value = value
        """The value an earlier ``BUILD`` stored there."""


class Blob:
    """A byte or text constant too large to copy, kept as offsets into the buffer."""

    __slots__ = ("end", "kind", "start")

    def __init__(self, start: int, end: int, kind: str) -> None:
        """``kind`` is ``bytes``, ``bytearray``, ``str`` (UTF-8 in the buffer) or ``int``."""
        self.start = start
        """Offset of the first byte."""
        self.end = end
        """Offset after the last byte."""
        self.kind = kind
        """What the bytes encode."""

    def __len__(self) -> int:
        """Length in bytes in the buffer."""
        return self.end - self.start


def unwrap(value: Any) -> Any:
    """Follow :class:`Mutated` values to what was written."""
    seen = 0
    while type(value) is Mutated and seen < 16:
        value = value.value
        seen += 1
    return value


def brief(value: Any, limit: int = 160) -> str:
    """A short, bounded rendering for evidence (never recursion-deep, never huge)."""
    out: list[str] = []
    _brief(value, out, 3, [limit])
    text = "".join(out)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _brief(value: Any, out: list[str], depth: int, budget: list[int]) -> None:
    if budget[0] <= 0:
        out.append("...")
        return
    t = type(value)
    if t is str or t is bytes or t is bytearray:
        text = repr(value[:80])
        if len(value) > 80:
            text += "..."
    elif t is int:
        text = repr(value) if value.bit_length() <= 128 else f"<int of {value.bit_length()} bits>"
    elif value is None or t is bool or t is float:
        text = repr(value)
    elif t is Global:
        text = value.dotted
    elif t is Call:
        inner: list[str] = []
        _brief(value.func, inner, depth - 1, [40])
        text = "".join(inner) + "(...)"
    elif t is Mutated:
        inner = []
        _brief(value.value, inner, depth - 1, [60])
        text = "".join(inner)
    elif t is Persistent:
        text = "<persistent object>"
    elif t is Unknown:
        text = f"<{value.what}>"
    elif t is Blob:
        text = f"<{value.kind} of {len(value)} bytes>"
    elif t is tuple or t is list or t is set or t is frozenset or t is dict:
        _brief_container(value, out, depth, budget)
        return
    else:
        text = f"<{t.__name__}>"
    budget[0] -= len(text)
    out.append(text)


_BRACKETS: dict[type[Any], tuple[str, str]] = {
    tuple: ("(", ")"),
    list: ("[", "]"),
    dict: ("{", "}"),
    set: ("{", "}"),
    frozenset: ("frozenset({", "})"),
}


def _brief_container(value: Any, out: list[str], depth: int, budget: list[int]) -> None:
    t = type(value)
    opening, closing = _BRACKETS[t]
    if depth <= 0:
        out.append(f"{opening}...{closing}")
        budget[0] -= 5
        return
    out.append(opening)
    items = list(itertools.islice(value.items() if t is dict else value, 9))
    for i, item in enumerate(items):
        if i >= 8 or budget[0] <= 0:
            out.append(", ...")
            break
        if i:
            out.append(", ")
        if t is dict:
            _brief(item[0], out, depth - 1, budget)
            out.append(": ")
            _brief(item[1], out, depth - 1, budget)
        else:
            _brief(item, out, depth - 1, budget)
    if t is tuple and len(value) == 1:
        out.append(",")
    out.append(closing)


def strings_in(value: Any, limit: int = 64) -> list[str]:
    """Text constants inside a value (containers searched a few levels deep, bounded)."""
    found: list[str] = []
    todo: list[tuple[Any, int]] = [(value, 0)]
    while todo and len(found) < limit:
        item, depth = todo.pop()
        item = unwrap(item)
        t = type(item)
        if t is str:
            found.append(item)
        elif t is bytes:
            found.append(item.decode("latin-1"))
        elif depth < 4 and (t is tuple or t is list or t is set or t is frozenset):
            todo.extend((x, depth + 1) for x in itertools.islice(item, 64))
        elif depth < 4 and t is dict:
            todo.extend((x, depth + 1) for x in itertools.islice(item.values(), 64))
    return found
