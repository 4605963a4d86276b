"""The interpreter's values match what the pickler wrote, for every opcode of protocols 0-5."""

from __future__ import annotations

import collections
import copyreg
import io
import pickle
import pickletools
import struct
from typing import Any

import pytest

from modelshield.core.findings import Location
from modelshield.scanner.pickle.state import Session
from modelshield.scanner.pickle.values import Blob, Call, Global, Persistent, Unknown, brief
from modelshield.scanner.pickle.vm import INLINE_MAX, Interpreter, Outcome
from tests.scanner.pickle import hostile
from tests.scanner.pickle.helpers import analyze, make_ctx

PLAIN: list[Any] = [
    None,
    [True, False],
    [1, -1, 255, 256, 65535, 65536, -(2**31), 2**31 - 1, 2**63, -(2**70), 10**40],
    [0.0, -1.5, 1e300, float("inf")],
    ["", "a", "é☃", "x" * 300, "line\nbreak", "back\\slash"],
    (1, (2, (3, ())), ("a", "b", "c", "d")),
    {"a": 1, "b": [1, 2, {"c": None}], 3: "int key", (1, 2): "tuple key"},
    [b"", b"\x00\xff", b"x" * 300],
]


def interpret(data: bytes, **kwargs: Any) -> Outcome:
    ctx = make_ctx()
    session = Session(ctx, data, Location("x"))
    return Interpreter(session).run(0, **kwargs)


@pytest.mark.parametrize("proto", range(6))
@pytest.mark.parametrize("index", range(len(PLAIN)))
def test_plain_data_round_trips_symbolically(proto: int, index: int) -> None:
    obj = PLAIN[index]
    data = pickle.dumps(obj, protocol=proto)
    out = interpret(data)
    assert out.complete and out.end == len(data)
    assert out.result == obj
    assert analyze(data).findings == []


@pytest.mark.parametrize("proto", [4, 5])
def test_sets_and_frozensets(proto: int) -> None:
    obj = [{1, 2, 3}, frozenset({"a"}), set()]
    assert interpret(pickle.dumps(obj, protocol=proto)).result == obj


def test_memo_shares_values_instead_of_copying() -> None:
    inner = [1, 2]
    out = interpret(pickle.dumps([inner, inner, inner], protocol=2))
    assert out.result[0] is out.result[1] is out.result[2]


def test_recursive_structures_need_pop_mark() -> None:
    t: Any = ([],)
    t[0].append(t)
    data = pickle.dumps(t, protocol=1)
    assert pickle.POP_MARK in data
    out = interpret(data)
    assert out.complete and out.end == len(data)


def test_large_constants_stay_in_the_buffer() -> None:
    data = pickle.dumps(["y" * (INLINE_MAX + 1), b"z" * (INLINE_MAX + 1)], protocol=4)
    text, blob = interpret(data).result
    assert type(text) is Blob and text.kind == "str" and len(text) == INLINE_MAX + 1
    assert type(blob) is Blob and blob.kind == "bytes"
    assert bytes(data[blob.start : blob.end]) == b"z" * (INLINE_MAX + 1)


def test_globals_and_calls_are_symbolic() -> None:
    out = interpret(pickle.dumps(collections.OrderedDict(a=1), protocol=2))
    call = out.result
    assert type(call) is Call and type(call.func) is Global
    assert (call.func.module, call.func.name) == ("collections", "OrderedDict")
    assert brief(call) == "collections.OrderedDict(...)"


def test_persistent_ids_are_collected() -> None:
    class WithIds(pickle.Pickler):
        def persistent_id(self, obj: object) -> Any:
            return ("storage", "key-1") if obj == "ref" else None

    buf = io.BytesIO()
    WithIds(buf, protocol=2).dump(["ref", 1])
    out = interpret(buf.getvalue(), persistent_ids_expected=True)
    assert out.persistent_ids == (("storage", "key-1"),)
    assert type(out.result[0]) is Persistent


def test_protocol_0_persistent_id() -> None:
    class WithIds(pickle.Pickler):
        def persistent_id(self, obj: object) -> Any:
            return "text-id" if obj == "ref" else None

    buf = io.BytesIO()
    WithIds(buf, protocol=0).dump(["ref"])
    assert pickle.PERSID in buf.getvalue()
    assert interpret(buf.getvalue()).persistent_ids == ("text-id",)


def test_out_of_band_buffers() -> None:
    data = pickle.dumps(pickle.PickleBuffer(b"abc"), protocol=5, buffer_callback=lambda b: False)
    out = interpret(data)
    assert out.complete and type(out.result) is Unknown


def _extension_samples() -> list[bytes]:
    return [
        hostile.Asm(2).raw(pickle.EXT2 + struct.pack("<H", 300)).stop().bytes(),
        hostile.Asm(2).raw(pickle.EXT4 + struct.pack("<i", 70000)).stop().bytes(),
    ]


def _hand_written_samples() -> list[bytes]:
    """Opcodes no modern pickler writes for plain data."""
    return [
        *_extension_samples(),
        hostile.Asm(2).int1(1).dup().tuple2().stop().bytes(),
        hostile.Asm().string0("protocol 0 str").stop().bytes(),
        hostile.Asm(2).binstring(b"py2 str").raw(b"U\x02ab").tuple2().stop().bytes(),
        hostile.Asm().mark().global_("collections", "OrderedDict").obj().stop().bytes(),
        hostile.Asm().mark().inst("collections", "OrderedDict").stop().bytes(),
        hostile.Asm(4).binunicode8("text").stop().bytes(),
        hostile.Asm(4).raw(pickle.BINBYTES8 + struct.pack("<Q", 2) + b"ab").stop().bytes(),
        hostile.Asm().mark().int1(1).raw(pickle.LIST).stop().bytes(),
        hostile.Asm().mark().unicode("k").int1(1).raw(pickle.DICT).stop().bytes(),
        hostile.Asm(2).empty_list().int1(1).append().stop().bytes(),
        hostile.Asm(2).long_binget(0).stop().bytes(),
        hostile.Asm(4)
        .stack_global("collections", "OrderedDict")
        .empty_tuple()
        .empty_dict()
        .newobj_ex()
        .stop()
        .bytes(),
    ]


class Point:
    """A class pickled through the copyreg extension registry."""


def test_every_opcode_of_protocols_0_to_5_is_interpreted() -> None:
    copyreg.add_extension(__name__, "Point", 240)
    try:
        samples = [pickle.dumps(obj, protocol=p) for p in range(6) for obj in PLAIN]
        samples += [pickle.dumps([{1}, frozenset({2}), bytearray(b"x")], protocol=5)]
        samples += [
            pickle.dumps(pickle.PickleBuffer(b"abc"), protocol=5, buffer_callback=lambda b: False)
        ]
        samples += [pickle.dumps([Point], protocol=2)]  # EXT1 through the registry
        point = Point()
        point.x = (1,)  # type: ignore[attr-defined]
        samples += [pickle.dumps(point, protocol=2)]  # NEWOBJ, BUILD, TUPLE1
        samples += [pickle.dumps(([],), protocol=1)]
    finally:
        copyreg.remove_extension(__name__, "Point", 240)
    t: Any = ([],)
    t[0].append(t)
    samples += [pickle.dumps(t, protocol=p) for p in (1, 2)]  # POP_MARK, POP
    samples += [pickle.dumps(10**1000, protocol=2)]
    samples += [pickle.dumps([str(i) for i in range(300)], protocol=2)]  # LONG_BINPUT
    samples += _hand_written_samples()
    buf = io.BytesIO()

    class WithIds(pickle.Pickler):
        def persistent_id(self, obj: object) -> Any:
            return "x" if obj == "ref" else None

    for proto in (0, 2):
        buf = io.BytesIO()
        WithIds(buf, protocol=proto).dump(["ref"])
        samples.append(buf.getvalue())

    seen: set[str] = set()
    for data in samples:
        seen.update(op.name for op, _, _ in pickletools.genops(data))
        out = interpret(data)
        assert out.complete and out.end == len(data), data[:40]
    # EXT codes and a memo miss make findings; nothing else may be malformed.
    missing = sorted({op.name for op in pickletools.opcodes} - seen)
    assert not missing, ", ".join(missing)


def test_long_binget_of_a_missing_key_is_one_malformed_finding() -> None:
    run = analyze(hostile.Asm(2).long_binget(0).stop().bytes())
    assert run.rules == ["PICKLE-MALFORMED"]


def test_sklearn_version_is_recorded_from_build_state() -> None:
    a = hostile.Asm(2).global_("sklearn.tree", "DecisionTreeClassifier").empty_tuple().newobj()
    a.empty_dict().unicode("_sklearn_version").unicode("1.4.2").setitem().build().stop()
    run = analyze(a.bytes())
    assert run.ctx.metadata["sklearn_version"] == "1.4.2"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x02N", "without STOP"),
        (b"\x80\x02J\x01\x00", "truncated inside BININT"),
        (b"\x80\x02X\xff\xff\xff\x00ab.", "remain in the data"),
        (b"\x80\x02T\xff\xff\xff\xff.", "negative length"),
        (b"\x80\x02\x8b\xff\xff\xff\xff.", "negative length"),
        (b"S'unquoted\n.", "not quoted"),
        (b"Iabc\n.", "not an integer"),
        (b"Fxyz\n.", "not a number"),
        (b"cos\nsys", "no terminating newline"),
        (b"cmod\n\xf8\n.", "not valid UTF-8"),
        (b"\x80\x04\x8c\x02\xff\xfe.", "not valid UTF-8"),
        (b"\x80\x020.", "POP with nothing"),
        (b"\x80\x02t.", "without a MARK"),
        (b"\x80\x02(K\x01d.", "odd number"),
        (b"\x80\x02}(]K\x01u.", "not hashable"),
        (b"\x80\x02K\x01K\x02b.", "BUILD sets state on a int"),
        (b"\x80\x02K\x01)R.", "calls a constant"),
    ],
)
def test_malformations_are_reported_with_their_offset(data: bytes, message: str) -> None:
    run = analyze(data)
    malformed = run.of("PICKLE-MALFORMED")
    assert malformed, run.findings
    assert message in malformed[0].message
    assert malformed[0].location.offset is not None
    assert run.ctx.errors == []


def test_opcode_table_is_cpythons() -> None:
    """The interpreter's table (also what content detection recognises) is pickletools'."""
    from modelshield.scanner.pickle.opcodes import OPCODES

    theirs = {op.code.encode("latin-1")[0]: (op.name, op.proto) for op in pickletools.opcodes}
    assert {code: (info.name, info.proto) for code, info in OPCODES.items()} == theirs
