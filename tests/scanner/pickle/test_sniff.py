"""The pickle sniffer against CPython's own unpicklers: what they accept, it accepts.

Streams are generated (hypothesis) and handed to ``pickle.loads`` (the C unpickler) and
``pickle._loads`` (the pure-Python one joblib and dill use); the harmless ones only: no
``GLOBAL`` names anything but builtins containers. Where either loads a stream, the sniffer must
call it a pickle; where both fail on its first opcode, it must not.
"""

from __future__ import annotations

import ast
import io
import pickle
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelshield.scanner import detect as detect_module
from modelshield.scanner.detect import Format, detect
from modelshield.scanner.pickle import sniff
from modelshield.scanner.pickle.sniff import FIRST_OPCODES, STOPPED, looks_like_pickle, walk
from tests.scanner.pickle.helpers import analyze

SRC = Path(sniff.__file__).parents[2]
OS_SYSTEM = b"cos\nsystem\n(S'id'\ntR."  # built byte by byte, never loaded


def _loads(data: bytes) -> bool:
    """Whether CPython's C or Python unpickler loads ``data`` (harmless streams only)."""
    for load in (pickle.loads, pickle._loads):  # type: ignore[attr-defined]
        try:
            load(data)
        except Exception:
            continue
        return True
    return False


def test_one_looks_like_pickle_and_detection_uses_it() -> None:
    definitions = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        definitions += [
            path.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name == "looks_like_pickle"
        ]
    assert definitions == ["sniff.py"]
    assert detect_module.looks_like_pickle is looks_like_pickle


# Opcodes a stream may start with, each with an argument an unpickler reads cleanly.
FIRST = [
    b"\x80\x00",  # PROTO 0
    b"\x80\x01",  # PROTO 1
    b"\x80\x02",
    b"\x80\x05",
    b"\x95" + struct.pack("<Q", 0),  # FRAME of 0 bytes
    b"\x95" + struct.pack("<Q", 2),  # FRAME over what follows (NONE STOP)
    b"C\x02ab",  # SHORT_BINBYTES
    b"\x88",  # NEWTRUE
    b"\x89",
    b"\x8a\x01\x05",  # LONG1
    b"\x8b\x01\x00\x00\x00\x05",  # LONG4
    b"\x8f",  # EMPTY_SET
    b"\x8c\x01a",  # SHORT_BINUNICODE
    b"\x96" + struct.pack("<Q", 1) + b"x",  # BYTEARRAY8
    b"G" + struct.pack(">d", 1.5),
    b"I0x10\n",  # INT in base 0 (C: strtol)
    b"I017\n",  # octal for strtol
    b"L12L\n",
    b"F1e5\n",
    b"S'x'\n",
    b"V\\u0041\n",
    b"U\x01x",
    b"T\x01\x00\x00\x00x",
    b"(",
    b"N",
    b"K\x01",
    b"}",
    b"]",
    b")",
]
# Opcodes that fail on an empty machine.
FAILING = [
    b"h\x00",  # BINGET of a memo that is empty
    b"j\x00\x00\x00\x00",
    b"g0\n",
    b"\x94",  # MEMOIZE with nothing on the stack
    b"q\x00",
    b"0",  # POP
    b"1",  # POP_MARK without MARK
    b"2",
    b"R",
    b"b",
    b"a",
    b"s",
    b"t",
    b"e",
    b"\x81",
    b"\x82\x01",  # EXT1: the registry is empty
    b"\x97",  # NEXT_BUFFER without buffers
    b"\x80\x06",  # PROTO 6
    b"I1.5\n",
    b"S'x\n",
    b"\xff",
    b".",
]
TAIL = [b"N.", b"K\x01\x85.", b")}\x86.", b"]K\x01a.", b"N0N."]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FIRST), min_size=1, max_size=3), st.sampled_from(TAIL))
def test_any_opcode_an_unpickler_accepts_first_is_a_pickle(first: list[bytes], tail: bytes) -> None:
    data = b"".join(first) + tail
    if _loads(data):
        assert detect(memoryview(data)) is Format.PICKLE, data
        assert walk(data, max_ops=1000).outcome == STOPPED


@pytest.mark.parametrize("first", FAILING)
def test_opcodes_that_fail_first_are_not_pickles(first: bytes) -> None:
    data = first + b"N."
    assert not _loads(data)
    assert detect(memoryview(data)) in (Format.UNKNOWN, Format.TEXT), data
    assert not looks_like_pickle(data)


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
values = st.recursive(
    scalars | st.text() | st.binary(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=4), children, max_size=4)
        | st.frozensets(st.integers(), max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.integers(0, 5), st.data())
def test_mutated_pickles_that_load_are_always_pickles(
    value: object, protocol: int, data: st.DataObject
) -> None:
    raw = bytearray(pickle.dumps(value, protocol))
    for _ in range(data.draw(st.integers(0, 2))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    stream = bytes(raw)
    if _loads(stream):
        assert walk(stream, max_ops=1 << 20, persistent_load=False).outcome == STOPPED, stream


def test_first_opcodes_are_exactly_those_that_do_not_fail_on_an_empty_machine() -> None:
    for code in range(256):
        accepted = any(_loads(bytes([code]) + arg + b"N.") for arg in _ARGS.get(code, [b""]))
        # PERSID is accepted by loaders that have a persistent_load hook (torch).
        assert (code in FIRST_OPCODES) == (accepted or code == 0x50), hex(code)


_ARGS = {
    0x80: [b"\x02"],
    0x95: [struct.pack("<Q", 2)],
    0x43: [b"\x00"],
    0x42: [b"\x00\x00\x00\x00"],
    0x8E: [bytes(8)],
    0x96: [bytes(8)],
    0x8C: [b"\x00"],
    0x58: [b"\x00\x00\x00\x00"],
    0x8D: [bytes(8)],
    0x8A: [b"\x00"],
    0x8B: [b"\x00\x00\x00\x00"],
    0x4A: [b"\x00\x00\x00\x00"],
    0x4B: [b"\x00"],
    0x4D: [b"\x00\x00"],
    0x47: [bytes(8)],
    0x49: [b"1\n"],
    0x4C: [b"1\n"],
    0x46: [b"1.0\n"],
    0x53: [b"'a'\n"],
    0x56: [b"a\n"],
    0x55: [b"\x00"],
    0x54: [b"\x00\x00\x00\x00"],
    0x63: [b"builtins\nlist\n"],
}


# ---- streams after the first: the analyzer must read them as the loader does -----------------


def test_a_second_pickle_that_starts_with_frame_is_analysed() -> None:
    second = b"\x95" + struct.pack("<Q", len(OS_SYSTEM)) + OS_SYSTEM
    run = analyze(pickle.dumps([1, 2], 2) + second)
    assert "os.system" in run.callables("PICKLE-CALL-DANGEROUS")
    assert "PICKLE-TRAILING-DATA" not in run.rules


def test_loop_readers_read_a_frame_led_second_pickle() -> None:
    # What pickle.load in a loop reads: the second object, whose stream starts with FRAME.
    second = b"\x95" + struct.pack("<Q", 3) + b"K\x07."
    stream = io.BytesIO(pickle.dumps("first", 2) + second)
    assert [pickle.load(stream), pickle.load(stream)] == ["first", 7]
    run = analyze(stream.getvalue())
    assert run.findings == []
    assert run.end == len(stream.getvalue())


def _legacy_with_frame_led_main_pickle(main: bytes | None = None) -> bytes:
    """A real legacy torch checkpoint whose fourth (main-object) pickle starts with FRAME
    instead of PROTO 2, or is replaced by ``main`` behind a FRAME."""
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"w": torch.ones(3)}, buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    starts = [0]
    for _ in range(4):
        starts.append(walk(data, starts[-1], max_ops=1 << 20).end)
    begin, end = starts[3], starts[4]
    assert data[begin : begin + 2] == b"\x80\x02"
    body = data[begin + 2 : end] if main is None else main
    return data[:begin] + b"\x95" + struct.pack("<Q", len(body)) + body + data[end:]


def test_legacy_torch_main_pickle_led_by_frame_loads_and_is_analysed() -> None:
    torch = pytest.importorskip("torch")
    data = _legacy_with_frame_led_main_pickle()
    assert torch.load(io.BytesIO(data), weights_only=False)["w"].tolist() == [1.0, 1.0, 1.0]
    run = analyze(data, real_policy=True)
    assert run.findings == []
    assert run.end == len(data)
    assert "torch._utils:_rebuild_tensor_v2" in run.ctx.imports


def test_hostile_frame_led_main_pickle_in_a_legacy_checkpoint_is_found() -> None:
    run = analyze(_legacy_with_frame_led_main_pickle(OS_SYSTEM))
    assert "os.system" in run.callables("PICKLE-CALL-DANGEROUS")


# ---- number arguments: where an unpickler reads one, the walk and the interpreter go on ------

number_text = st.text(alphabet="0123456789abcdefxXoObB_+-. eEinfaL\x00\t", max_size=8)


def _load_value(data: bytes) -> tuple[bool, object]:
    for load in (pickle.loads, pickle._loads):  # type: ignore[attr-defined]
        try:
            return True, load(data)
        except Exception:
            continue
    return False, None


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([b"I", b"L", b"F"]), number_text)
def test_number_arguments_are_read_as_the_unpicklers_read_them(op: bytes, text: str) -> None:
    arg = text.encode("latin-1")
    loaded, value = _load_value(op + arg + b"\n.")
    run = analyze(op + arg + b"\n0" + OS_SYSTEM)
    if loaded:
        assert walk(op + arg + b"\n.", persistent_load=False).outcome == STOPPED
        assert "os.system" in run.callables("PICKLE-CALL-DANGEROUS"), arg
    else:
        assert "PICKLE-MALFORMED" in run.rules
    if loaded and op == b"I" and type(value) is int:
        assert sniff.int_argument(arg) == value


def test_strict_sniffing_takes_a_complete_protocol_0_pickle_that_imports() -> None:
    # Opaque data (a tensor storage) that is exactly such a pickle is worth analysing; random
    # float data starting like one is not.
    assert looks_like_pickle(OS_SYSTEM + bytes(30), strict=True, partial=True)
    assert not looks_like_pickle(OS_SYSTEM[:-1] + bytes(30), strict=True, partial=True)
    assert not looks_like_pickle(b"\x80\x02" + struct.pack("<8d", *range(8)), strict=True)
