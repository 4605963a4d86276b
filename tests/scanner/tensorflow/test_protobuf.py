"""The wire-format reader: every length checked before slicing, nothing allocated from a claim."""

from __future__ import annotations

import pytest

from modelshield.scanner.protobuf import LEN, VARINT, ProtobufError, fields, payload, read_varint
from tests.scanner.tensorflow.protobuild import key, ld, s, varint, vi


def test_fields_of_a_message() -> None:
    data = memoryview(
        vi(1, 300) + s(2, "abc") + key(3, 5) + b"\x01\x00\x00\x00" + key(4, 1) + bytes(8)
    )
    found = list(fields(data))
    assert [(f.number, f.wire_type) for f in found] == [(1, VARINT), (2, LEN), (3, 5), (4, 1)]
    assert found[0].value == 300
    assert bytes(payload(data, found[1])) == b"abc"
    assert found[2].value == 1


@pytest.mark.parametrize("n", [0, 1, 127, 128, 2**32, 2**63, 2**64 - 1])
def test_varints_round_trip(n: int) -> None:
    data = memoryview(varint(n))
    assert read_varint(data, 0, len(data)) == (n, len(data))


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
        (b"\x08\xff", "ends inside a varint"),
        (b"\x12" + varint(2**63), "claims"),
        (ld(2, b"abc")[:-1], "claims 3 bytes but only 2 remain"),
        (b"\x1b", "groups are not read"),
        (b"\x0f", "wire type 7"),
        (b"\x00", "field number 0"),
        (key(1, 5) + b"\x00", "ends inside fixed field"),
    ],
)
def test_malformed_messages_raise_protobuf_error(data: bytes, problem: str) -> None:
    with pytest.raises(ProtobufError, match=problem):
        list(fields(memoryview(data)))


def test_leading_fields_stop_at_the_first_error_and_keep_a_cut_message() -> None:
    from modelshield.scanner.protobuf import leading_fields

    data = memoryview(vi(1, 1) + ld(2, b"abcdef")[:-2])
    found = leading_fields(data)
    assert [(f.number, f.value) for f in found] == [(1, 1), (2, 4)]
    assert leading_fields(memoryview(vi(1, 1) + b"\x08")) == leading_fields(memoryview(vi(1, 1)))
    assert len(leading_fields(memoryview(vi(1, 1) * 10), limit=3)) == 3
