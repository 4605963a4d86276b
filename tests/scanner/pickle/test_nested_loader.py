"""``torch.storage._load_from_bytes``: plain pickle's spelling of every tensor.

``pickle.dumps(tensor)`` (and so joblib, copy and multiprocessing) writes a call of this
loader on a nested legacy torch checkpoint. The call is judged by what its constant bytes hold,
which are analysed in place; a call on anything that is not constant bytes stays dangerous.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import torch

from modelshield.core.findings import Severity
from modelshield.core.policy import Policy
from modelshield.scanner.engine import scan_file
from tests.scanner.pickle.hostile import Asm, reduce_call

LOADER = ("torch.storage", "_load_from_bytes")


def _scan(tmp_path: Path, data: bytes) -> list[tuple[str, Severity, str]]:
    path = tmp_path / "sample.pkl"
    path.write_bytes(data)
    result = scan_file(str(path), Policy())
    assert not result.errors
    return [(f.rule_id, f.severity, f.evidence.get("callable", "")) for f in result.findings]


def _loader_call(inner: bytes) -> bytes:
    a = Asm(4).global_(*LOADER).mark().binbytes(inner).tuple().reduce()
    return a.stop().bytes()


def test_plain_pickle_of_tensors_is_not_flagged(tmp_path: Path) -> None:
    data = pickle.dumps({"weight": torch.ones(4, 3), "bias": torch.zeros(3)})
    assert b"_load_from_bytes" in data  # the spelling this test is about
    findings = _scan(tmp_path, data)
    assert findings, "the nested checkpoints should be reported at info"
    assert all(sev <= Severity.INFO for _, sev, _ in findings), findings


def test_loader_of_a_hostile_nested_pickle_is_flagged(tmp_path: Path) -> None:
    findings = _scan(tmp_path, _loader_call(reduce_call("os", "system", "id")))
    assert ("PICKLE-CALL-DANGEROUS", Severity.CRITICAL, "os.system") in findings
    assert any(r == "PICKLE-EMBEDDED" and s >= Severity.HIGH for r, s, _ in findings)


def test_loader_of_a_hostile_nested_torch_zip_is_flagged(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", reduce_call("builtins", "eval", "1+1"))
        z.writestr("archive/version", "3\n")
    findings = _scan(tmp_path, _loader_call(buf.getvalue()))
    assert ("PICKLE-CALL-DANGEROUS", Severity.CRITICAL, "builtins.eval") in findings


def test_loader_called_on_a_computed_value_stays_dangerous(tmp_path: Path) -> None:
    # The argument is the result of another call: nothing constant to analyse.
    a = Asm(4).global_(*LOADER).mark().global_("builtins", "bytes").mark().int1(8).tuple()
    data = a.reduce().tuple().reduce().stop().bytes()
    findings = _scan(tmp_path, data)
    assert any(
        r == "PICKLE-CALL-DANGEROUS" and c == "torch.storage._load_from_bytes"
        for r, _, c in findings
    ), findings


def test_a_whole_module_with_large_tensors_is_judged_by_its_nested_checkpoints(
    tmp_path: Path,
) -> None:
    # nanoGPT-sized layers: every storage is larger than the interpreter's inline constant
    # size, so its bytes stay in the buffer as a blob; the nested legacy checkpoints are still
    # analysed in place and the loader's calls judged by them.
    model = torch.nn.Sequential(
        torch.nn.Embedding(100, 64),
        torch.nn.LayerNorm(64),
        torch.nn.Linear(64, 192),
        torch.nn.GELU(),
        torch.nn.Linear(192, 64),
    )
    data = pickle.dumps(model)
    assert data.count(b"_load_from_bytes") == 1  # memoised: one import, many calls
    findings = _scan(tmp_path, data)
    assert findings, "the nested checkpoints should be reported at info"
    assert all(sev <= Severity.INFO for _, sev, _ in findings), findings


def test_loader_of_a_large_hostile_nested_pickle_is_flagged(tmp_path: Path) -> None:
    # Above the inline size the constant is a blob: still analysed, still judged.
    inner = Asm(2).global_("os", "system").mark().binunicode("id").tuple().reduce()
    payload = inner.mark().binbytes(bytes(8192)).pop_mark().stop().bytes()
    findings = _scan(tmp_path, _loader_call(payload))
    assert ("PICKLE-CALL-DANGEROUS", Severity.CRITICAL, "os.system") in findings
