"""HDF5 files built with h5py: external references, oversized datasets, attribute floods,
payloads in attributes, broken files, and the reader process failing or missing."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelshield.core.findings import Severity
from modelshield.scanner.formats import hdf5
from tests.scanner.keras.conftest import keras_zip, rule_ids, scan, worst, write_h5

h5py = pytest.importorskip("h5py")
np = pytest.importorskip("numpy")

OS_SYSTEM = (
    b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
    b"\x8c\x02id\x94\x85\x94R\x94."
)
LAMBDA_CONFIG = {
    "class_name": "Sequential",
    "config": {"layers": [{"class_name": "Lambda", "config": {"function": "lambda x: eval(x)"}}]},
}


def test_weights_only_h5_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
        group = f.create_group("dense")
        group.attrs["weight_names"] = np.array([b"dense/kernel:0"])
        group.create_dataset("kernel", data=np.ones((4, 2), dtype="f4"))
    result = scan(path)
    assert rule_ids(result) == []
    assert result.gaps == ()
    assert result.format == "hdf5"


@pytest.mark.parametrize(
    ("target", "severity"),
    [("other.h5", Severity.MEDIUM), ("/etc/passwd", Severity.HIGH)],
)
def test_external_links_are_reported_not_followed(
    tmp_path: Path, target: str, severity: Severity
) -> None:
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f["weights"] = h5py.ExternalLink(target, "/kernel")
    result = scan(path)
    assert rule_ids(result) == ["HDF5-EXTERNAL-REFERENCE"]
    assert result.findings[0].severity == severity
    assert result.findings[0].evidence["file"] == target


def test_external_storage_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("kernel", shape=(16,), dtype="u1", external=[("/etc/passwd", 0, 16)])
    result = scan(path)
    assert worst(result, "HDF5-EXTERNAL-REFERENCE") == Severity.HIGH
    assert result.findings[0].evidence["kind"] == "external storage"


def test_virtual_datasets_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
    layout[:] = h5py.VirtualSource("../secret.h5", "data", shape=(4,))
    with h5py.File(path, "w") as f:
        f.create_virtual_dataset("kernel", layout)
    result = scan(path)
    assert worst(result, "HDF5-EXTERNAL-REFERENCE") == Severity.HIGH
    assert result.findings[0].evidence["kind"] == "virtual dataset"


def test_a_2_to_the_40_element_dataset_is_reported_never_read(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("kernel", shape=(2**40,), dtype="f4", chunks=(1024,))
    assert path.stat().st_size < 10_000
    result = scan(path)
    assert rule_ids(result) == ["HDF5-DATASET-OVERSIZED"]
    assert result.findings[0].evidence["declared_bytes"] == str(4 * 2**40)


def test_forty_thousand_attributes_trip_the_limit_but_model_config_is_read(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    with h5py.File(path, "w", libver="latest") as f:  # dense attribute storage
        for i in range(40_000):
            f.attrs[f"a{i}"] = i
        f.attrs["model_config"] = json.dumps(LAMBDA_CONFIG)
    result = scan(path)
    assert worst(result, "KERAS-LAMBDA") == Severity.CRITICAL
    limit = next(f for f in result.findings if f.rule_id == "SCAN-LIMIT")
    assert limit.evidence["limit"] == "max_attributes"
    assert result.gaps


def test_too_many_objects_trip_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        for i in range(50):
            f.create_group(f"g{i}")
    result = scan(path, max_members=20)
    assert [f.evidence.get("limit") for f in result.findings] == ["max_members"]


def test_a_pickle_in_an_attribute_is_analysed(tmp_path: Path) -> None:
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.create_group("layer").attrs["state"] = np.void(OS_SYSTEM)
    result = scan(path)
    assert result.max_severity == Severity.CRITICAL
    assert any("state" in m for f in result.findings for m in f.location.members)


def test_the_model_config_of_a_weights_member_of_a_keras_zip(tmp_path: Path) -> None:
    """model.weights.h5 inside a .keras archive goes through the same reader."""
    inner = write_h5(tmp_path / "w.h5", {})
    with h5py.File(inner, "a") as f:
        f["escape"] = h5py.ExternalLink("/root/.ssh/id_rsa", "/x")
    archive = keras_zip(tmp_path / "m.keras", {"class_name": "Sequential", "config": {}})
    import zipfile

    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("extra.weights.h5", inner.read_bytes())
    result = scan(archive)
    finding = next(f for f in result.findings if f.rule_id == "HDF5-EXTERNAL-REFERENCE")
    assert finding.location.members == ("extra.weights.h5",)
    assert finding.severity == Severity.HIGH


def test_a_broken_hdf5_file_is_not_analysed(tmp_path: Path) -> None:
    good = write_h5(tmp_path / "good.h5", {"model_config": LAMBDA_CONFIG})
    path = tmp_path / "broken.h5"
    path.write_bytes(good.read_bytes()[:600])
    result = scan(path)
    assert rule_ids(result) == ["HDF5-NOT-ANALYSED"]
    assert result.gaps


def test_without_h5py_the_file_is_reported_not_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_h5(tmp_path / "m.h5", {"model_config": LAMBDA_CONFIG})
    real = hdf5.importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "h5py" else real(name, *args)

    monkeypatch.setattr(hdf5.importlib.util, "find_spec", find_spec)
    result = scan(path)
    assert rule_ids(result) == ["ARCHIVE-UNSUPPORTED"]
    assert "modelshield[hdf5]" in result.findings[0].message
    assert result.gaps


def test_a_reader_killed_by_a_signal_is_a_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash = tmp_path / "crash.sh"
    crash.write_text("#!/bin/sh\nkill -SEGV $$\n")
    crash.chmod(crash.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(sys, "executable", str(crash))
    result = scan(write_h5(tmp_path / "m.h5", {}))
    assert rule_ids(result) == ["HDF5-NOT-ANALYSED"]
    assert "signal 11" in result.findings[0].message


def test_a_reader_out_of_time_is_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def run(*args: Any, **kwargs: Any) -> Any:
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])

    monkeypatch.setattr(hdf5.subprocess, "run", run)
    result = scan(write_h5(tmp_path / "m.h5", {}))
    assert rule_ids(result) == ["HDF5-NOT-ANALYSED"]


def test_a_reader_out_of_memory_is_a_finding(tmp_path: Path) -> None:
    result = scan(write_h5(tmp_path / "m.h5", {}), reader_memory_bytes=20 << 20)
    assert rule_ids(result) == ["HDF5-NOT-ANALYSED"]


# ---- the reader itself, in this process (the scans above run it in a child) -------------------

PROBE_LIMITS = {"max_members": 100, "max_attributes": 100, "max_document_bytes": 1 << 20}


def test_the_probe_reports_structure(tmp_path: Path) -> None:
    from modelshield.scanner.formats import hdf5_probe

    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(LAMBDA_CONFIG)
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["training_config"] = np.arange(3)  # not text: ignored
        group = f.create_group("layer")
        group.attrs["state"] = np.void(OS_SYSTEM)
        group.attrs["empty"] = h5py.Empty("f4")
        group.create_dataset("kernel", data=np.ones((2, 3), dtype="f4"))
        group["loop"] = group  # a hard link back: visited once
        f["ext"] = h5py.ExternalLink("/etc/passwd", "/x")
        f["soft"] = h5py.SoftLink("/layer")
    out = hdf5_probe.probe(str(path), PROBE_LIMITS)
    assert json.loads(out["root"]["model_config"]) == LAMBDA_CONFIG
    assert out["root"]["keras_version"] == "2.15.0"
    assert "training_config" not in out["root"]
    assert [b["attribute"] for b in out["blobs"]] == ["state"]
    assert out["datasets"] == [
        {"object": "/layer/kernel", "shape": [2, 3], "declared": 24, "stored": 24}
    ]
    assert out["external"] == [{"kind": "external link", "object": "/ext", "file": "/etc/passwd"}]
    assert out["objects"] == 3
    assert out["limit"] is None


def test_the_probe_stops_at_its_limits(tmp_path: Path) -> None:
    from modelshield.scanner.formats import hdf5_probe

    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = np.bytes_(b"x" * 2000)  # fixed length: its size is known
        f.attrs["training_config"] = "y" * 2000  # variable length: read, then cut
        for i in range(5):
            f.create_group(f"g{i}").attrs["a"] = 1
    limits = {"max_members": 3, "max_attributes": 100, "max_document_bytes": 1000}
    out = hdf5_probe.probe(str(path), limits)
    assert out["root"]["model_config"] == {"too_large": 2000}
    assert out["root"]["training_config"] == "y" * 1001
    assert out["limit"][0] == "max_members"
    out = hdf5_probe.probe(str(path), {**limits, "max_members": 100, "max_attributes": 3})
    assert out["limit"][0] == "max_attributes"


def test_the_probe_prints_json_and_reports_unreadable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelshield.scanner.formats import hdf5_probe

    good = write_h5(tmp_path / "m.h5", {"keras_version": "3.9.0"})
    assert hdf5_probe.main(["probe", str(good), json.dumps(PROBE_LIMITS)]) == 0
    assert json.loads(capsys.readouterr().out)["root"] == {"keras_version": "3.9.0"}
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    assert hdf5_probe.main(["probe", str(bad), json.dumps(PROBE_LIMITS)]) == 0
    assert "error" in json.loads(capsys.readouterr().out)


def test_an_oversized_model_config_is_reported(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "m.h5", {"model_config": "x" * 5000})
    result = scan(path, max_document_bytes=4096)
    assert rule_ids(result) == ["KERAS-CONFIG-INVALID"]
    assert result.gaps
