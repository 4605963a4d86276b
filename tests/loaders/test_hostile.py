"""Differential suite, hostile half: every hostile pickle of the test suite is refused by the
restricted load, and a payload that would create a marker file never runs.

Two checks per file: :func:`modelshield.load` (scan, then restricted load) refuses it; and the
restricted unpickler **alone** (:func:`restricted_load`, no scan) refuses every file whose first
pickle imports something the policy does not admit. The second check is what makes a scanner
miss harmless.
"""

from __future__ import annotations

import copyreg
import importlib.util
import inspect
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

import modelshield
from modelshield.core.errors import LoadRefused
from modelshield.core.findings import Severity
from modelshield.core.policy import Policy
from modelshield.loaders import restricted_load
from tests.loaders.samples import CONTAINERS, NOT_EXECUTING, payloads
from tests.scanner.pickle import hostile
from tests.scanner.pickle.hostile import Asm

pytest.importorskip("torch")
pytest.importorskip("joblib")
pytest.importorskip("numpy")

REPO = Path(__file__).resolve().parents[2]
TECHNIQUES = sorted(payloads(Path("marker")))
#: The techniques tried in every container (all of them are tried as plain pickles).
IN_CONTAINERS = ("reduce-os-system-p2", "stack-global-eval", "inst-exec", "nullifai-truncated")


def _expect_refused(path: Path, loader: str, marker: Path) -> None:
    with pytest.raises(LoadRefused) as scanned:
        modelshield.load(path)
    assert scanned.value.stage in ("scan", "load")
    assert scanned.value.findings, "a refusal carries the findings that made it"
    with pytest.raises(LoadRefused) as alone:
        restricted_load(str(path), loader, Policy())
    assert alone.value.stage == "load"
    assert alone.value.findings
    assert not marker.exists()


def test_the_payloads_are_live(tmp_path: Path) -> None:
    """Control: the plain pickle loader, in a child process, does create the marker for every
    executing technique (so its absence after a restricted load means something)."""
    script = (
        "import pickle, sys\n"
        "from pathlib import Path\n"
        "from tests.loaders.samples import NOT_EXECUTING, payloads\n"
        "root = Path(sys.argv[1])\n"
        "for name, data in payloads(root / 'unused').items():\n"
        "    if name in NOT_EXECUTING:\n"
        "        continue\n"
        "    try:\n"
        "        pickle.loads(payloads(root / name)[name])\n"
        "    except pickle.UnpicklingError:\n"
        "        pass  # nullifAI: the payload ran before the stream broke\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, check=True)
    created = {p.name for p in tmp_path.iterdir()}
    assert created == set(TECHNIQUES) - NOT_EXECUTING


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_every_technique_is_refused_in_a_plain_pickle(tmp_path: Path, technique: str) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "model.pkl"
    path.write_bytes(payloads(marker)[technique])
    _expect_refused(path, "pickle", marker)


@pytest.mark.parametrize("technique", IN_CONTAINERS)
@pytest.mark.parametrize("container", sorted(set(CONTAINERS) - {"pickle"}))
def test_payloads_are_refused_in_every_container(
    tmp_path: Path, container: str, technique: str
) -> None:
    marker = tmp_path / "MARKER"
    wrap, loader, suffix = CONTAINERS[container]
    path = tmp_path / f"model{suffix}"
    path.write_bytes(wrap(payloads(marker)[technique]))
    _expect_refused(path, loader, marker)


@pytest.mark.parametrize("technique", IN_CONTAINERS)
def test_payloads_in_a_nested_checkpoint_are_refused(tmp_path: Path, technique: str) -> None:
    """torch.storage._load_from_bytes (how plain pickle writes tensors) unpickles its bytes
    with weights_only=False; the restricted loader reads them under the same policy."""
    from tests.loaders.samples import torch_zip

    marker = tmp_path / "MARKER"
    nested = torch_zip(payloads(marker)[technique])
    outer = Asm(2).global_("torch.storage", "_load_from_bytes").binbytes(nested)
    path = tmp_path / "model.pkl"
    path.write_bytes(outer.tuple1().reduce().stop().bytes())
    _expect_refused(path, "pickle", marker)
    denied = Policy(fail_on=Severity.CRITICAL, deny_callables=("torch.storage:_load_from_bytes",))
    with pytest.raises(LoadRefused) as info:
        restricted_load(str(path), "pickle", denied)
    assert info.value.findings[0].evidence["callable"] == "torch.storage._load_from_bytes"


# ---- the scanner suite's own hostile generators ---------------------------------------------

#: Samples whose first pickle imports nothing the policy refuses: the restricted unpickler may
#: read them (nothing runs), the scan refuses them for what else they hold.
_INERT = {
    "frame_straddle",
    "duplicate_proto",
    "proto_above_5",
    "misplaced_proto",
    "frame_restarted",
    "stop_inside_frame",
    "multi_stream",
    "embedded_raw",
    "embedded_base64",
    "embedded_hex",
    "embedded_codecs",
}
_CALLS = {
    "reduce_call": lambda: hostile.reduce_call("os", "system", "id"),
    "stack_global_call": lambda: hostile.stack_global_call("builtins", "eval", "1"),
    "embedded_raw": lambda: hostile.embedded_raw(hostile.reduce_call("os", "system", "id")),
    "embedded_base64": lambda: hostile.embedded_base64(hostile.reduce_call("os", "system", "x")),
    "embedded_hex": lambda: hostile.embedded_hex(hostile.reduce_call("os", "system", "id")),
    "embedded_codecs": lambda: hostile.embedded_codecs(hostile.reduce_call("os", "system", "x")),
    "ext_code": lambda: hostile.ext_code(1),
}
_SKIPPED = {"memo_fanout", "deep_marks", "deep_lists"}  # resource shapes, tested by the scanner


def _generators() -> dict[str, Callable[[], bytes]]:
    out: dict[str, Callable[[], bytes]] = dict(_CALLS)
    for name, function in inspect.getmembers(hostile, inspect.isfunction):
        if name in out or name in _SKIPPED or function.__module__ != hostile.__name__:
            continue
        required = [
            p for p in inspect.signature(function).parameters.values() if p.default is p.empty
        ]
        if not required:
            out[name] = function
    return out


GENERATORS = _generators()


def test_every_generator_is_covered() -> None:
    names = {n for n, f in inspect.getmembers(hostile, inspect.isfunction)}
    assert names - _SKIPPED <= set(GENERATORS)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_scanner_suite_samples_are_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / "sample.pkl"
    path.write_bytes(GENERATORS[name]())
    if name in _INERT:
        # Hostile to scanners (findings below the default threshold for some), inert to a
        # loader: either refused, or plain data comes back.
        try:
            value = modelshield.load(path)
        except LoadRefused:
            return
        assert _plain_data(value), (name, value)
        return
    with pytest.raises(LoadRefused):
        modelshield.load(path)
    with pytest.raises(LoadRefused) as info:
        restricted_load(str(path), "pickle", Policy())
    assert info.value.stage == "load"


def _plain_data(value: object) -> bool:
    if value is None or isinstance(value, str | bytes | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_plain_data(v) for v in value)
    if isinstance(value, dict):
        return all(_plain_data(k) and _plain_data(v) for k, v in value.items())
    return False


def test_extension_codes_are_refused_even_when_registered(tmp_path: Path) -> None:
    """A registered extension code resolves without a name in the stream; the restricted
    unpickler never consults the registry."""
    marker = tmp_path / "MARKER"
    copyreg.add_extension("os", "system", 0xF1)
    try:
        path = tmp_path / "ext.pkl"
        path.write_bytes(
            b"\x80\x02\x82\xf1X"
            + len(f"touch {marker}").to_bytes(4, "little")
            + f"touch {marker}".encode()
            + b"\x85R."
        )
        with pytest.raises(LoadRefused) as info:
            restricted_load(str(path), "pickle", Policy())
    finally:
        copyreg.remove_extension("os", "system", 0xF1)
    assert info.value.findings[0].rule_id == "PICKLE-EXTENSION-CODE"
    assert info.value.findings[0].evidence["code"] == str(0xF1)
    assert not marker.exists()


# ---- the demo's hostile files --------------------------------------------------------------


def _demo_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_demo_models", REPO / "scripts" / "build_demo_models.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_hostile_files_are_refused(tmp_path: Path) -> None:
    demo = _demo_script()
    made = demo.build_benign(tmp_path)
    for name, build in demo.HOSTILE.items():
        path = tmp_path / name
        path.write_bytes(build(made))
        with pytest.raises(LoadRefused):
            modelshield.load(path)
