"""Payloads behind limits: the linear pass names what follows the point where a limit stopped
the interpreter, and the content an archive nested too deep was not followed into."""

from __future__ import annotations

import pickle
import struct

import pytest

from modelshield.core.findings import Location, Severity
from modelshield.core.limits import Limits
from modelshield.scanner.context import LimitExceeded
from modelshield.scanner.pickle.linear import sweep_plain
from tests.scanner.pickle import hostile
from tests.scanner.pickle.helpers import Run, analyze, make_ctx

_SMALL = Limits(max_opcodes=2_000)


def _stopped(data: bytes, limits: Limits = _SMALL, **kwargs: object) -> tuple[Run, LimitExceeded]:
    """Analyse ``data`` expecting a limit; the findings made and the limit."""
    ctx = make_ctx(limits)
    from modelshield.scanner.pickle.analyzer import analyze_pickles

    with pytest.raises(LimitExceeded) as info:
        analyze_pickles(ctx, memoryview(data), Location("sample.pkl"), **kwargs)  # type: ignore[arg-type]
    return Run(ctx, -1, list(ctx.findings)), info.value


def _padded(tail: bytes, pairs: int = 5_000, proto: int = 4) -> bytes:
    """NONE, POP padding past ``_SMALL``'s budget, then ``tail``."""
    return hostile.Asm(proto).raw(b"N0" * pairs).raw(tail).bytes()


def test_a_global_after_the_opcode_limit_is_named() -> None:
    run, limit = _stopped(_padded(hostile.Asm().call("os", "system", "id").none().stop().bytes()))
    assert limit.limit == "max_opcodes"
    [found] = run.of("PICKLE-IMPORT-DANGEROUS")
    assert found.severity is Severity.CRITICAL
    assert found.evidence["callable"] == "os.system"
    assert found.evidence["found_by"] == "linear pass after limits.max_opcodes"
    assert "linear pass" in found.message
    assert found.location.offset == 2 + 10_000  # the GLOBAL, right after the padding
    assert "found 1 import(s)" in limit.detail
    assert limit.finding().evidence["linear_pass"].startswith("1 imports")
    assert "only searched for imports" in limit.finding().message


def test_inst_and_safe_imports() -> None:
    tail = hostile.Asm().mark().inst("subprocess", "Popen").pop()
    tail.global_("collections", "OrderedDict").pop().none().stop()
    run, _ = _stopped(_padded(tail.bytes()))
    assert run.callables() == {"subprocess.Popen"}  # the safe import makes no finding


def test_stack_global_names_come_from_the_strings_before_it() -> None:
    tail = hostile.Asm().unicode("os").memoize().unicode("system").memoize().stack_global()
    tail.memoize().unicode("id").tuple1().reduce().pop().none().stop()
    run, _ = _stopped(_padded(tail.bytes()))
    assert run.callables("PICKLE-IMPORT-DANGEROUS") == {"os.system"}


def test_stack_global_names_read_back_from_the_memo() -> None:
    # Picklers memoize module names and fetch them again with BINGET for the next import.
    tail = hostile.Asm().unicode("builtins").binput(7).pop().unicode("eval").binput(8).pop()
    tail.binget(7).binget(8).stack_global().pop().none().stop()
    run, _ = _stopped(_padded(tail.bytes()))
    assert run.callables("PICKLE-IMPORT-DANGEROUS") == {"builtins.eval"}


def test_memo_from_before_the_limit_names_a_later_stack_global() -> None:
    head = hostile.Asm(4).unicode("os").memoize().unicode("system").memoize().pop().pop()
    tail = hostile.Asm().binget(0).binget(1).stack_global().pop().none().stop()
    data = head.raw(b"N0" * 5_000).raw(tail.bytes()).bytes()
    run, _ = _stopped(data)
    assert run.callables("PICKLE-IMPORT-DANGEROUS") == {"os.system"}


def test_memoize_slots_are_counted_through_padding() -> None:
    # MEMOIZE numbers its slots; NONE, MEMOIZE padding shifts every later slot number.
    tail = hostile.Asm().unicode("os").memoize().pop().unicode("system").memoize().pop()
    tail.long_binget(5_002).long_binget(5_003).stack_global().pop().none().stop()
    data = hostile.Asm(4).raw(b"N0" * 5_000).raw(b"N\x94" * 5_002).raw(tail.bytes()).bytes()
    run, _ = _stopped(data)
    assert run.callables("PICKLE-IMPORT-DANGEROUS") == {"os.system"}


def test_a_stack_global_whose_names_cannot_be_read_is_a_dynamic_import() -> None:
    tail = hostile.Asm().unicode("o").unicode("s").raw(b"\x93").pop().none().stop()
    # Names computed by a call: the pass cannot know them.
    tail = hostile.Asm().global_("builtins", "str").empty_tuple().reduce().unicode("x")
    tail.stack_global().pop().none().stop()
    run, _ = _stopped(_padded(tail.bytes()))
    [dynamic] = run.of("PICKLE-DYNAMIC-IMPORT")
    assert dynamic.severity is Severity.HIGH
    assert dynamic.evidence["count"] == "1"


def test_the_pass_goes_on_into_the_next_pickle_of_the_file() -> None:
    second = hostile.Asm(2).call("posix", "system", "id").stop().bytes()
    run, _ = _stopped(_padded(b"N.") + second)
    assert run.callables("PICKLE-IMPORT-DANGEROUS") == {"os.system"}


def test_the_pass_stops_at_trailing_data_and_invalid_opcodes() -> None:
    junk = b"\xff" + hostile.Asm(2).call("os", "system", "id").stop().bytes()
    run, limit = _stopped(_padded(b"N." + junk))
    assert run.callables() == set()
    assert "trailing data" in limit.detail
    run, limit = _stopped(_padded(b"\xff" + junk))
    assert run.callables() == set()
    assert "invalid opcode" in limit.detail


def test_byte_constants_that_are_pickles_are_walked_too() -> None:
    inner = hostile.reduce_call("os", "system", "id")
    tail = hostile.Asm().binbytes(inner).pop().none().stop()
    run, _ = _stopped(_padded(tail.bytes()))
    assert run.callables("PICKLE-IMPORT-DANGEROUS") == {"os.system"}


@pytest.mark.parametrize(
    ("padding", "limits", "tripped"),
    [
        (b"N" * 10_000, Limits(max_stack_depth=1_000), "max_stack_depth"),
        (b"(" * 10_000, Limits(max_stack_depth=1_000), "max_stack_depth"),
        (b"N\x94" * 10_000, Limits(max_memo_entries=1_000), "max_memo_entries"),
    ],
)
def test_every_interpreter_limit_is_followed_by_the_pass(
    padding: bytes, limits: Limits, tripped: str
) -> None:
    data = hostile.Asm(4).raw(padding).call("os", "system", "id").none().stop().bytes()
    run, limit = _stopped(data, limits)
    assert limit.limit == tripped
    assert run.callables("PICKLE-IMPORT-DANGEROUS") == {"os.system"}


def test_the_stream_limit_is_followed_by_the_pass() -> None:
    data = b"N." * 500 + hostile.reduce_call("os", "system", "id")
    run, limit = _stopped(data, Limits(max_pickle_streams=100))
    assert limit.limit == "max_pickle_streams"
    assert run.callables("PICKLE-IMPORT-DANGEROUS") == {"os.system"}
    assert run.ctx.streams == 101


def test_joblib_arrays_nested_too_deep_are_followed_by_the_pass(tmp_path: object) -> None:
    from tests.scanner.hostile_files import deep_joblib

    path = deep_joblib(tmp_path / "deep.joblib", depth=6)  # type: ignore[operator]
    run, limit = _stopped(path.read_bytes(), Limits(max_nested_depth=4))
    assert limit.limit == "max_nested_depth"
    assert run.callables("PICKLE-IMPORT-DANGEROUS") == {"os.system"}
    assert len(run.of("PICKLE-IMPORT-DANGEROUS")) == 1  # one pass, not one per level


def test_the_opcode_budget_is_shared_by_the_streams_of_a_file() -> None:
    one = hostile.Asm(4).raw(b"N0" * 400).none().stop().bytes()
    assert analyze(one * 2, limits=Limits(max_opcodes=2_000)).findings == []
    # Checked every few kilobytes and when each stream starts: the fourth does not.
    run, limit = _stopped(one * 4, Limits(max_opcodes=2_000))
    assert limit.limit == "max_opcodes"
    assert limit.location.offset == 3 * len(one)
    assert run.findings == []


def test_plain_content_is_searched_where_pickles_start() -> None:
    ctx = make_ctx()
    stored = b"PK\x03\x04 header " + hostile.reduce_call("os", "system", "id") + b" more bytes"
    proto0 = b"junk ci\nnot a name!\n csubprocess\nPopen\n(S'id'\ntR." + struct.pack("<Q", 7)
    limit = LimitExceeded("max_nested_depth", "too deep", Location("a.zip"))
    sweep_plain(ctx, stored + proto0, Location("a.zip", ("b.zip",)), limit)
    found = [f for f in ctx.findings if f.rule_id == "PICKLE-IMPORT-DANGEROUS"]
    assert [f.evidence["callable"] for f in found] == ["os.system", "subprocess.Popen"]
    assert found[0].location == Location("a.zip", ("b.zip",), stored.index(b"cos"))
    assert "2 import(s) were found" in limit.detail
    assert not [f for f in ctx.findings if f.rule_id == "PICKLE-IMPORT-UNKNOWN"]


def test_plain_search_is_bounded_by_the_embedded_scan_limit() -> None:
    ctx = make_ctx(Limits(max_embedded_scan_bytes=1_000))
    data = bytes(2_000) + pickle.dumps(1, protocol=2)[:2] + b"cos\nsystem\n."
    sweep_plain(ctx, data, Location("a.zip"), LimitExceeded("x", "y", Location("a.zip")))
    assert ctx.findings == []


def test_a_buffer_that_is_a_pickle_is_walked_from_its_start() -> None:
    # No PROTO and no GLOBAL: only walking it from its first opcode finds the import.
    data = hostile.Asm().unicode("os").unicode("system").stack_global().stop().bytes()
    ctx = make_ctx()
    sweep_plain(ctx, data, Location("a.zip"), LimitExceeded("x", "y", Location("a.zip")))
    assert [f.evidence["callable"] for f in ctx.findings] == ["os.system"]
