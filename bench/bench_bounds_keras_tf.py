"""Hostile Keras, HDF5 and TensorFlow files: time and peak memory of one scan each.

Usage::

    python bench/bench_bounds_keras_tf.py

Each file is built under ``bench-out/bounds/`` and scanned in a fresh process
(``modelshield scan``), so that the peak resident memory reported (the scanning process, and
separately its children: the HDF5 reader) belongs to that one scan. The goal for each: under
10 s and 500 MB, ending with a finding (never a crash, never a clean pass). Figures only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = REPO / "bench-out" / "bounds"


def _h5_attributes(path: Path, libver: str) -> None:
    import h5py

    with h5py.File(path, "w", libver=libver) as f:
        for i in range(40_000):
            f.attrs[f"a{i}"] = i


def _h5_huge_dataset(path: Path) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("kernel", shape=(2**40,), dtype="f4", chunks=(4096,))


def _savedmodel(path: Path, graph: bytes) -> None:
    from tests.scanner.tensorflow.protobuild import meta_graph, saved_model

    path.write_bytes(saved_model(meta_graph(graph)))


def _absurd_length(path: Path) -> None:
    from tests.scanner.tensorflow.protobuild import varint

    _savedmodel(path, b"\x0a" + varint(2**63))


def _absurd_varint(path: Path) -> None:
    _savedmodel(path, b"\x0a" + b"\xff" * 64)


def _nested(path: Path) -> None:
    from tests.scanner.tensorflow.protobuild import graph, nested_func_attr, node

    _savedmodel(path, graph(node("call", "PartitionedCall", f=nested_func_attr(50_000))))


def _deep_config(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.9.0"}))
        z.writestr("config.json", "[" * 1_000_000)


def _many_nodes(path: Path) -> None:
    from tests.scanner.tensorflow.protobuild import graph, node

    nodes = [node(f"n{i}", "AddV2", f"n{i - 1}", f"n{i - 2}") for i in range(300_000)]
    _savedmodel(path, graph(*nodes, node("r", "ReadFile", "path")))


CASES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "hdf5-40000-attributes-dense": (".h5", lambda p: _h5_attributes(p, "latest")),
    "hdf5-40000-attributes-compact": (".h5", lambda p: _h5_attributes(p, "earliest")),
    "hdf5-2**40-element-dataset": (".h5", _h5_huge_dataset),
    "protobuf-length-2**63": (".pb", _absurd_length),
    "protobuf-64-byte-varint": (".pb", _absurd_varint),
    "protobuf-50000-nested-attributes": (".pb", _nested),
    "protobuf-300000-nodes": (".pb", _many_nodes),
    "keras-config-nested-1e6-deep": (".keras", _deep_config),
}

_MEASURE = """
import json, resource, sys, time
from modelshield.core.policy import Policy
from modelshield.scanner.engine import scan_file
start = time.monotonic()
result = scan_file(sys.argv[1], Policy())
print(json.dumps({
    "seconds": time.monotonic() - start,
    "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    "rules": sorted({f.rule_id for f in result.findings}),
    "errors": [e.message for e in result.errors],
    "status": result.status,
}))
"""


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"{'case':36} {'seconds':>8} {'scan MB':>8} {'reader MB':>9}  status      rules")
    for name, (ext, build) in CASES.items():
        path = OUT / f"{name}{ext}"
        if not path.exists():
            build(path)
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, check=False
        )
        try:
            row = json.loads(proc.stdout)
        except ValueError:
            print(f"{name:36} FAILED: {proc.stderr.strip()[-300:]}")
            continue
        print(
            f"{name:36} {row['seconds']:8.2f} {row['self_mb']:8.0f} {row['children_mb']:9.0f}"
            f"  {row['status']:11} {', '.join(row['rules']) or 'NONE'} {row['errors'] or ''}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
