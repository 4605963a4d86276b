"""Hostile sizes and shapes finish fast, with a bounded finding, and keep earlier findings."""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

import pytest

from modelshield.core.findings import Finding, Location
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.scanner.context import MAX_FINDINGS_PER_RULE, MAX_IMPORTS_LISTED, LimitExceeded
from modelshield.scanner.engine import scan_file
from modelshield.scanner.pickle.ledger import Ledger
from modelshield.scanner.pickle.state import Session
from modelshield.scanner.pickle.values import Unknown
from modelshield.scanner.pickle.vm import Interpreter, _keys
from tests.conftest import traced_peak
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


def test_nothing_of_a_finished_stream_is_kept() -> None:
    # 300 pickles each returning a list of 2,000 ints: only what legacy-checkpoint detection
    # needs (the first few results) may outlive its stream.
    one = hostile.Asm(4).empty_list().mark()
    for i in range(2_000):
        one.binint(100_000 + i)
    data = one.appends().stop().bytes() * 300
    run, peak = traced_peak(lambda: analyze(data))
    assert run.findings == [] and run.end == len(data)
    assert peak < 8 * 2**20, peak  # all results at once would be about 40 MiB


def test_the_deadline_is_checked_between_streams() -> None:
    # Two-byte pickles never reach the interpreter's periodic check inside a stream.
    with pytest.raises(LimitExceeded) as info:
        analyze(b"N." * 2_000, limits=Limits(max_seconds_per_file=1e-9))
    assert info.value.limit == "max_seconds_per_file"


def test_findings_past_the_caps_are_counted_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    original = Ledger._finding

    def counting(self: Ledger, entry: Any) -> Finding:
        built.append(entry.verdict.name)
        return original(self, entry)

    monkeypatch.setattr(Ledger, "_finding", counting)
    data = b"".join(b"cmod%d\nf\n." % i for i in range(5_000))
    run = analyze(data)
    assert run.ctx.rule_totals["PICKLE-IMPORT-UNKNOWN"] == 5_000
    assert len(built) <= MAX_FINDINGS_PER_RULE + 1  # the kept ones and the worst dropped one
    [summary] = [f for f in run.ctx.finish_findings() if f.title.startswith("...")]
    assert summary.evidence["more"] == str(5_000 - MAX_FINDINGS_PER_RULE)


def test_imports_listed_in_a_result_are_capped() -> None:
    data = b"".join(b"cmod%d\nf\n." % i for i in range(MAX_IMPORTS_LISTED + 50))
    run = analyze(data)
    assert len(run.ctx.imports) == MAX_IMPORTS_LISTED


@pytest.mark.parametrize(("depth", "kept"), [(10, True), (300, False), (100_000, False)])
def test_large_tuple_keys_are_not_hashed(depth: int, kept: bool) -> None:
    # CPython hashes nested tuples recursively in C: 2,000,000 levels crash the process (the
    # resource test checks that in a child process); here the key is only replaced.
    data = hostile.Asm(4).empty_dict().none().raw(pickle.TUPLE1 * depth)
    data.unicode("value").setitem().stop()
    session = Session(make_ctx(), data.bytes(), Location("k.pkl"))
    [(key, value)] = Interpreter(session).run(0).result.items()
    assert value == "value"
    assert (type(key) is tuple) is kept
    assert session.ctx.findings == []


def test_large_set_items_and_dict_keys_built_at_once_are_not_hashed() -> None:
    nested = hostile.Asm(4).none().raw(pickle.TUPLE1 * 1_000)
    a = hostile.Asm(4).mark().raw(nested.bytes()[2:]).none().raw(b"d")  # DICT
    a.mark().raw(nested.bytes()[2:]).raw(b"\x91").tuple2().stop()  # FROZENSET
    session = Session(make_ctx(), a.bytes(), Location("k.pkl"))
    mapping, frozen = Interpreter(session).run(0).result
    assert [type(k) for k in mapping] == [Unknown]
    assert [type(k) for k in frozen] == [Unknown]


def test_small_tuple_keys_are_kept() -> None:
    small = ((1, 2), ("a", (3,)))
    assert _keys([small, "x"]) == [small, "x"]
    nested: tuple[Any, ...] = ()
    for _ in range(300):
        nested = (nested,)
    [placeholder] = _keys([nested])
    assert type(placeholder) is Unknown


def test_a_tuple_of_2_to_the_60_leaves_used_as_a_key_is_not_hashed() -> None:
    a = hostile.Asm(4).empty_dict().none().none().tuple2().memoize()
    for level in range(60):
        a.pop().long_binget(level).long_binget(level).tuple2().memoize()
    a.none().setitem().raw(pickle.POP).call("os", "system", "id").stop()
    started = time.monotonic()
    run = analyze(a.bytes())
    assert time.monotonic() - started < 5  # hashing it would never end
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}


def test_a_huge_base64_looking_text_is_not_copied() -> None:
    text = "gASV" + "A" * (24 * 2**20)
    data = hostile.Asm(4).binunicode8(text).pop().none().stop().bytes()
    run, peak = traced_peak(lambda: analyze(data, limits=Limits(max_embedded_scan_bytes=2**20)))
    [limit] = run.of("SCAN-LIMIT")
    assert "base64 or hex text" in limit.message
    # The analyzer's own copy of the buffer, and no copy of the text (it used to be copied,
    # then matched, before its size was checked).
    assert peak < len(data) + 4 * 2**20, peak


def test_a_huge_text_that_only_starts_like_base64_is_no_limit() -> None:
    text = "gASV" + "prose, not base64! " * 2**16
    data = hostile.Asm(4).binunicode8(text).pop().none().stop().bytes()
    assert analyze(data, limits=Limits(max_embedded_scan_bytes=2**10)).findings == []
