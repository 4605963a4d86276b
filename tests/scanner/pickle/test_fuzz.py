"""Arbitrary and mutated bytes: the analyzer reports, it never raises and never hangs."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.scanner.pickle import hostile
from tests.scanner.pickle.helpers import analyze

SEEDS = [
    pickle.dumps({"a": [1, 2.5, "x", b"y", None, (True, frozenset({3}))]}, protocol=p)
    for p in range(6)
] + [
    hostile.module_state_override(),
    hostile.methodcaller_locate(),
    hostile.embedded_base64(hostile.reduce_call("os", "system", "id", proto=4)),
    hostile.memo_decoy_stack_global(),
]


def _check(data: bytes) -> None:
    run = analyze(data)
    assert run.ctx.errors == []
    assert 0 <= run.end <= len(data)
    for finding in run.findings:
        assert finding.rule_id.startswith(("PICKLE-", "SCAN-"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _check(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200).map(lambda b: b"\x80\x04" + b))
def test_random_bytes_after_a_proto_header(data: bytes) -> None:
    _check(data)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_mutated_pickles(seed: bytes, edits: list[tuple[int, int]]) -> None:
    data = bytearray(seed)
    for where, value in edits:
        data[where % len(data)] = value
    _check(bytes(data))
