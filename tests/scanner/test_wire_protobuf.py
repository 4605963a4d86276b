"""The protobuf wire reader shared by detection and the ONNX, TensorFlow and SentencePiece
readers: every length checked before slicing, nothing allocated from a claim, groups skipped as
protobuf's own parsers skip them."""

from __future__ import annotations

import pytest

from modelshield.scanner.wire.protobuf import (
    LEN,
    MAX_VARINT_BYTES,
    VARINT,
    Field,
    ProtobufError,
    fields,
    leading_fields,
    packed_varints,
    payload,
    read_varint,
    signed64,
    text,
)
from tests.scanner.tensorflow.protobuild import key, ld, s, varint, vi


def test_fields_of_a_message() -> None:
    data = memoryview(
        vi(1, 300) + s(2, "abc") + key(3, 5) + b"\x01\x00\x00\x00" + key(4, 1) + bytes(8)
    )
    found = list(fields(data))
    assert [(f.number, f.wire_type) for f in found] == [(1, VARINT), (2, LEN), (3, 5), (4, 1)]
    assert found[0].value == 300
    assert bytes(payload(data, found[1])) == b"abc"
    assert (found[1].value, found[1].length, found[1].offset) == (3, 3, 3)
    assert text(data, found[1], 2) == "ab"
    assert found[2].value == 1
    assert (found[3].start, found[3].end) == (found[3].offset + 1, found[3].offset + 9)
    nested = memoryview(ld(1, vi(2, 7)))
    [outer] = fields(nested)
    assert list(fields(nested, outer.start, outer.end)) == [Field(2, VARINT, 7, 3, 3, 2)]


@pytest.mark.parametrize("n", [0, 1, 127, 128, 2**32, 2**63, 2**64 - 1])
def test_varints_round_trip(n: int) -> None:
    data = memoryview(varint(n))
    assert read_varint(data, 0, len(data)) == (n, len(data))


def test_varint_bounds_and_int64() -> None:
    assert MAX_VARINT_BYTES == 10
    assert read_varint(b"\xff" * 9 + b"\x01", 0, 10) == (2**64 - 1, 10)
    assert signed64(2**64 - 1) == -1
    assert signed64(5) == 5
    assert packed_varints(varint(1) + varint(300) + varint(2**40), 0, 9, 2) == [1, 300]
    with pytest.raises(ProtobufError, match="past the end"):
        packed_varints(b"\x01\xff", 0, 2, 10)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
        (b"\x08\xff", "ends inside a varint"),
        (b"\x12" + varint(2**63), "claims"),
        (ld(2, b"abc")[:-1], "claims 3 bytes but only 2 remain"),
        (b"\x0f", "invalid wire type 7"),
        (b"\x00", "field number 0"),
        (key(1, 5) + b"\x00", "ends inside fixed field"),
        (b"\x0d\x00\x00", "truncated"),
        (b"\x0c", "invalid wire type 4"),  # an end of group that no group opened
        (b"\x0b\x08\x01", "not closed"),
        (b"\x0b\x13\x0c", "mismatched end of group"),
        (b"\x0b" * 150, "nested deeper than 100"),
        (b"\x0b\x12\x05x", "inside the group is truncated"),
        (b"\x0b\x09\x00", "inside the group is truncated"),
        (b"\x0b\x0f", "invalid wire type 7 inside the group"),
        (b"\x0b\x00", "field number 0 inside the group"),
    ],
)
def test_malformed_messages_raise_protobuf_error(data: bytes, problem: str) -> None:
    with pytest.raises(ProtobufError, match=problem) as e:
        list(fields(memoryview(data)))
    assert 0 <= e.value.offset < len(data)
    assert e.value.problem in str(e.value)


def test_groups_are_skipped() -> None:
    group = b"\x0b" + b"\x08\x01" + b"\x13\x14" + b"\x0c" + b"\x10\x05"  # group 1 {1, group 2 {}}
    assert [(f.number, f.value) for f in fields(group, 0, len(group))] == [(2, 5)]
    every_kind = b"\x0b" + b"\x09" + bytes(8) + b"\x0d" + bytes(4) + b"\x12\x01x" + b"\x0c"
    assert list(fields(every_kind)) == []


def test_groups_are_skipped_as_protobuf_skips_them() -> None:
    """The loader wins: protobuf's own parser keeps a message with an unknown group, and so
    does the reader (ONNX's ModelProto with a group in field 99 before its ir_version)."""
    onnx = pytest.importorskip("onnx")
    data = key(99, 3) + vi(1, 7) + key(99, 4) + vi(1, 8)
    assert onnx.ModelProto.FromString(data).ir_version == 8
    assert [(f.number, f.value) for f in fields(data)] == [(1, 8)]


def test_leading_fields_stop_at_the_first_error_and_keep_a_cut_message() -> None:
    data = memoryview(vi(1, 1) + ld(2, b"abcdef")[:-2])
    found = leading_fields(data)
    assert [(f.number, f.value) for f in found] == [(1, 1), (2, 4)]
    assert bytes(payload(data, found[1])) == b"abcd"
    assert found[1].offset == 2
    assert leading_fields(memoryview(vi(1, 1) + b"\x08")) == leading_fields(memoryview(vi(1, 1)))
    assert len(leading_fields(memoryview(vi(1, 1) * 10), limit=3)) == 3
