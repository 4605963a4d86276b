"""Hostile sizes and shapes finish fast, with a bounded finding, and keep earlier findings."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest

from modelshield.core.findings import Location
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.scanner.context import LimitExceeded
from modelshield.scanner.engine import scan_file
from modelshield.scanner.pickle.state import Session
from modelshield.scanner.pickle.vm import Interpreter
from tests.scanner.pickle import hostile
from tests.scanner.pickle.helpers import analyze, make_ctx


def test_declared_length_of_2_62_is_malformed_and_keeps_the_payload() -> None:
    started = time.monotonic()
    run = analyze(hostile.huge_declared_length())
    assert time.monotonic() - started < 1.0
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}
    [malformed] = run.of("PICKLE-MALFORMED")
    assert str(2**62) in malformed.message


def test_a_million_memo_gets_of_one_big_list_share_it() -> None:
    data = hostile.memo_fanout(1_000_000)
    started = time.monotonic()
    run = analyze(data)
    elapsed = time.monotonic() - started
    assert run.findings == []
    assert run.end == len(data)
    assert elapsed < 10.0  # about 0.4 s
    # Every GET pushed the same list object: memory grows by one reference per GET.
    session = Session(make_ctx(), data, Location("fanout.pkl"))
    result = Interpreter(session).run(0).result
    assert len(result) == 1_000_000
    first = result[0]
    assert len(first) == 1000
    assert all(item is first for item in result)


def test_opcode_limit_is_a_scan_limit_that_keeps_earlier_findings(tmp_path: Path) -> None:
    data = hostile.Asm(2).call("os", "system", "id").raw(hostile.memo_fanout(50_000)[2:]).bytes()
    limits = Limits(max_opcodes=10_000)
    with pytest.raises(LimitExceeded) as info:
        analyze(data, limits=limits)
    assert info.value.limit == "max_opcodes"
    path = tmp_path / "fanout.pkl"
    path.write_bytes(data)
    result = scan_file(str(path), Policy(limits=limits))
    rules = [f.rule_id for f in result.findings]
    assert "SCAN-LIMIT" in rules
    assert any(f.evidence.get("callable") == "os.system" for f in result.findings)
    assert result.errors == ()


def test_deep_marks_trip_the_stack_limit() -> None:
    with pytest.raises(LimitExceeded) as info:
        analyze(hostile.deep_marks(200_000), limits=Limits(max_stack_depth=100_000))
    assert info.value.limit == "max_stack_depth"


def test_a_million_marks_are_within_the_default_limits() -> None:
    data = hostile.Asm(2).raw(b"(" * 1_000_000).call("os", "system", "id").stop().bytes()
    run = analyze(data)
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}


def test_deep_lists_finish_and_render_boundedly() -> None:
    # 50,000 nested lists handed to an unknown callable: evidence rendering stays bounded.
    nest = hostile.deep_lists(50_000)[2:-1]
    a = hostile.Asm(2).global_("acme", "load").raw(nest).tuple1().reduce().stop()
    run = analyze(a.bytes())
    [unknown] = run.of("PICKLE-IMPORT-UNKNOWN")
    assert len(unknown.evidence["args"]) <= 160


def test_memo_entry_limit() -> None:
    a = hostile.Asm(4)
    for _ in range(5000):
        a.none().memoize().pop()
    with pytest.raises(LimitExceeded) as info:
        analyze(a.none().stop().bytes(), limits=Limits(max_memo_entries=1000))
    assert info.value.limit == "max_memo_entries"


def test_twenty_megabyte_pickle_is_fast() -> None:
    obj = {
        "weights": [float(i) / 7 for i in range(1_200_000)],
        "vocab": {f"token{i}": i for i in range(200_000)},
        "blob": b"\x00" * 4_000_000,
    }
    data = pickle.dumps(obj, protocol=4)
    assert len(data) > 16 * 2**20
    started = time.monotonic()
    run = analyze(data)
    elapsed = time.monotonic() - started
    assert run.findings == [] and run.end == len(data)
    assert elapsed < 10.0, elapsed  # about 1 s on a laptop core; generous for shared CI
