"""Every published pickle technique, written opcode by opcode, must be reported."""

from __future__ import annotations

import pickle

import pytest

from modelshield.core.findings import Severity
from tests.scanner.pickle import hostile
from tests.scanner.pickle.helpers import analyze


@pytest.mark.parametrize("proto", [0, 1, 2, 3, 4, 5])
def test_reduce_call_is_reported_with_its_argument(proto: int) -> None:
    run = analyze(hostile.reduce_call("posix", "system", "ls -la", proto=proto if proto else None))
    [finding] = run.of("PICKLE-CALL-DANGEROUS")
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["callable"] == "os.system"
    assert finding.evidence["written_as"] == "posix.system"
    assert "ls -la" in finding.evidence["args"]
    assert run.ctx.imports == {"os:system"}


def test_stack_global_with_memoize() -> None:
    run = analyze(hostile.stack_global_call("builtins", "eval", "print(1)"))
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"builtins.eval"}
    assert finding_offset(run, "PICKLE-CALL-DANGEROUS") > 0


def finding_offset(run: object, rule: str) -> int:
    [finding] = run.of(rule)  # type: ignore[attr-defined]
    assert finding.location.offset is not None
    return int(finding.location.offset)


def test_memo_indirection_and_decoy_pops_resolve_the_real_names() -> None:
    run = analyze(hostile.memo_decoy_stack_global())
    assert run.callables() == {"os.system"}
    # The decoy names were pushed and popped but never imported.
    assert "torch:LongStorage" not in run.ctx.imports


def test_string_opcode_operands_are_strings() -> None:
    run = analyze(hostile.string_operands_stack_global())
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}
    assert "PICKLE-DYNAMIC-IMPORT" not in run.rules


def test_int_operand_is_a_dynamic_import_and_the_earlier_payload_is_kept() -> None:
    run = analyze(hostile.int_operand_type_confusion())
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}
    [dynamic] = run.of("PICKLE-DYNAMIC-IMPORT")
    assert dynamic.severity is Severity.CRITICAL
    assert "int" in dynamic.message


def test_missing_memo_key_is_malformed_not_a_crash() -> None:
    run = analyze(hostile.missing_memo_key())
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}
    [malformed] = run.of("PICKLE-MALFORMED")
    assert "memo key 7" in malformed.message
    assert run.ctx.errors == []


def test_nullifai_payload_before_truncation_is_reported_with_the_malformation() -> None:
    data = hostile.nullifai_truncated()
    run = analyze(data)
    assert run.callables("PICKLE-IMPORT-DANGEROUS") == {"builtins.exec"}
    [malformed] = run.of("PICKLE-MALFORMED")
    assert "BINUNICODE" in malformed.message and "remain" in malformed.message
    assert malformed.location.offset == data.index(pickle.BINUNICODE)


def test_junk_after_stop_is_trailing_data() -> None:
    data = hostile.junk_after_stop()
    run = analyze(data)
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}
    [trailing] = run.of("PICKLE-TRAILING-DATA")
    assert trailing.severity is Severity.LOW
    assert trailing.evidence["size"] == str(len(data) - data.index(b"\n\n\t\t"))


def test_unknown_opcode_after_payload() -> None:
    run = analyze(hostile.unknown_opcode_after_payload())
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}
    [malformed] = run.of("PICKLE-MALFORMED")
    assert "unknown opcode 0xff" in malformed.message


def test_opcode_straddling_a_frame() -> None:
    run = analyze(hostile.frame_straddle())
    [mismatch] = run.of("PICKLE-FRAME-MISMATCH")
    assert "runs past the end of its frame" in mismatch.message
    assert "PICKLE-MALFORMED" not in run.rules


def test_frame_longer_than_the_data_still_shows_the_payload_inside() -> None:
    run = analyze(hostile.frame_beyond_data())
    assert "declares" in run.of("PICKLE-FRAME-MISMATCH")[0].message
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}


def test_well_formed_frames_are_not_flagged() -> None:
    data = pickle.dumps({"k": list(range(50_000)), "s": "x" * 70_000}, protocol=5)
    run = analyze(data)
    assert run.findings == []
    assert run.end == len(data)


def test_extension_code() -> None:
    run = analyze(hostile.ext_code(1))
    [ext] = run.of("PICKLE-EXTENSION-CODE")
    assert ext.severity is Severity.HIGH
    assert ext.evidence == {"code": "1", "opcode": "EXT1"}


def test_persistent_id_outside_a_checkpoint_is_low() -> None:
    run = analyze(hostile.persistent_id())
    [pid] = run.of("PICKLE-PERSISTENT-ID")
    assert pid.severity is Severity.LOW
    assert analyze(hostile.persistent_id(), persistent_ids_expected=True).findings == []


def test_module_state_override_is_caught_and_resolved() -> None:
    run = analyze(hostile.module_state_override())
    writes = run.of("PICKLE-STATE-WRITE-MODULE")
    assert len(writes) == 2
    assert all(w.evidence["target"] == "torch._utils" for w in writes)
    dynamic = run.of("PICKLE-DYNAMIC-IMPORT")
    assert len(dynamic) == 1 and "overwritten module attribute" in dynamic[0].message
    # The names read back from the overwritten attributes resolve to builtins.eval, called.
    assert "builtins.eval" in run.callables("PICKLE-CALL-DANGEROUS")


def test_setitems_into_a_module_object_is_a_state_write() -> None:
    run = analyze(hostile.environ_write())
    [write] = run.of("PICKLE-STATE-WRITE-MODULE")
    assert write.evidence["target"] == "os.environ"
    assert write.evidence["opcode"] == "SETITEMS"


def test_numpy_size_gadget_writes_state_onto_a_function() -> None:
    run = analyze(hostile.numpy_size_gadget())
    [write] = run.of("PICKLE-STATE-WRITE-MODULE")
    assert write.evidence["target"] == "numpy.size"
    assert "numpy.__builtins__" in run.callables("PICKLE-IMPORT-DANGEROUS")


@pytest.mark.parametrize(
    ("sample", "gadget"),
    [
        (hostile.attrgetter_chain, "operator.attrgetter"),
        (hostile.methodcaller_locate, "operator.methodcaller"),
        (hostile.resolve_name_gadget, "pkgutil.resolve_name"),
    ],
)
def test_gadgets_are_resolved_to_the_callable_that_runs(sample: object, gadget: str) -> None:
    run = analyze(sample())  # type: ignore[operator]
    assert gadget in run.callables()
    system = [f for f in run.findings if f.evidence.get("callable") == "os.system"]
    assert len(system) == 1
    assert system[0].evidence["via"] == gadget


def test_methodcaller_call_carries_its_arguments() -> None:
    run = analyze(hostile.methodcaller_locate())
    [system] = [f for f in run.findings if f.evidence.get("callable") == "os.system"]
    assert system.rule_id == "PICKLE-CALL-DANGEROUS"
    assert "echo pwned" in system.evidence["args"]


def test_partial_hides_the_callable_that_runs() -> None:
    run = analyze(hostile.partial_hidden_callable())
    [load] = [f for f in run.findings if f.evidence.get("callable") == "torch.serialization.load"]
    assert load.rule_id == "PICKLE-CALL-DANGEROUS"
    assert "other_model.bin" in load.evidence["args"]


@pytest.mark.parametrize(
    ("sample", "opcode", "callable_"),
    [
        (hostile.inst_call, "INST", "builtins.exec"),
        (hostile.obj_call, "OBJ", "subprocess.Popen"),
        (hostile.newobj_call, "NEWOBJ", "subprocess.Popen"),
        (hostile.newobj_ex_call, "NEWOBJ_EX", "subprocess.Popen"),
    ],
)
def test_calls_without_reduce(sample: object, opcode: str, callable_: str) -> None:
    run = analyze(sample())  # type: ignore[operator]
    [call] = run.of("PICKLE-CALL-DANGEROUS")
    assert call.evidence["callable"] == callable_
    assert call.evidence["opcode"] == opcode


def test_newobj_ex_keyword_arguments_are_evidence() -> None:
    run = analyze(hostile.newobj_ex_call())
    assert "shell" in run.of("PICKLE-CALL-DANGEROUS")[0].evidence["args"]


def test_discarded_call_is_still_a_call() -> None:
    run = analyze(hostile.discarded_call())
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}


def test_unknown_callable_with_code_argument_is_high() -> None:
    run = analyze(hostile.unknown_with_code_argument())
    [finding] = run.of("PICKLE-CALL-CODE-ARGUMENT")
    assert finding.severity is Severity.HIGH
    assert "import os" in finding.evidence["code"]
    assert "PICKLE-IMPORT-UNKNOWN" not in run.rules


def test_unknown_callable_with_plain_argument_is_medium() -> None:
    run = analyze(hostile.reduce_call("acme_tools.runner", "run_snippet", "hello world"))
    [finding] = run.of("PICKLE-IMPORT-UNKNOWN")
    assert finding.severity is Severity.MEDIUM
    assert '"acme_tools.runner:run_snippet"' in finding.message
    assert "PICKLE-CALL-CODE-ARGUMENT" not in run.rules


def test_one_finding_per_callable_per_stream() -> None:
    a = hostile.Asm(2)
    for _ in range(50):
        a.call("os", "system", "id").pop()
    run = analyze(a.none().stop().bytes())
    [finding] = run.of("PICKLE-CALL-DANGEROUS")
    assert finding.evidence["calls"] == "50"


def test_every_stream_of_a_multi_pickle_file_is_analysed() -> None:
    data = hostile.multi_stream()
    run = analyze(data)
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}
    assert run.end == len(data)
    assert "PICKLE-TRAILING-DATA" not in run.rules


def test_max_streams_stops_without_judging_the_rest() -> None:
    data = hostile.multi_stream()
    run = analyze(data, max_streams=1)
    assert run.findings == []
    assert run.end == len(pickle.dumps(["a", "b"], protocol=2))


def test_duplicate_and_misplaced_proto() -> None:
    run = analyze(hostile.duplicate_proto())
    [anomaly] = run.of("PICKLE-PROTO-ANOMALY")
    assert anomaly.severity is Severity.LOW and "again" in anomaly.message


def test_protocol_above_five() -> None:
    run = analyze(hostile.proto_above_5())
    assert "above 5" in run.of("PICKLE-PROTO-ANOMALY")[0].message


def test_legacy_torch_file_with_computed_magic_is_analysed_stream_by_stream() -> None:
    data = hostile.torch_legacy_computed_magic()
    run = analyze(data)
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"builtins.eval", "os.system"}
    assert run.end == len(data)
    assert run.ctx.errors == []


def test_empty_input_is_malformed() -> None:
    assert analyze(b"").rules == ["PICKLE-MALFORMED"]


PAYLOAD = hostile.stack_global_call("builtins", "eval", "print(1)")


@pytest.mark.parametrize("cut", range(1, len(PAYLOAD)))
def test_every_truncation_of_a_payload_is_reported_never_raised(cut: int) -> None:
    run = analyze(PAYLOAD[:cut])
    assert run.ctx.errors == []
    assert "PICKLE-MALFORMED" in run.rules


def test_frame_started_inside_another_frame() -> None:
    run = analyze(hostile.frame_restarted())
    assert any(
        "before the previous frame ended" in f.message for f in run.of("PICKLE-FRAME-MISMATCH")
    )


def test_stop_before_the_end_of_its_frame() -> None:
    run = analyze(hostile.stop_inside_frame())
    assert any("before the end of its frame" in f.message for f in run.of("PICKLE-FRAME-MISMATCH"))
    # The C loader reads the rest of the frame as the next pickle: it is analysed too.
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}


def test_proto_that_is_not_the_first_opcode() -> None:
    run = analyze(hostile.misplaced_proto())
    assert "not the stream's first opcode" in run.of("PICKLE-PROTO-ANOMALY")[0].message


def test_bound_method_of_a_created_object_is_named_after_its_class() -> None:
    run = analyze(hostile.bound_method_of_created_object())
    [code] = run.of("PICKLE-CALL-CODE-ARGUMENT")
    assert code.evidence["callable"] == "acme_tools.runner.Runner.execute"
    assert code.evidence["via"] == "builtins.getattr"
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"builtins.getattr"}
