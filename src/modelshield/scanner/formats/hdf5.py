"""HDF5 files: Keras ``.h5`` models and the ``model.weights.h5`` of ``.keras`` archives.

The structure is read by h5py (the optional ``hdf5`` extra), never by Keras' loader, and in a
child process (:mod:`.hdf5_probe`) under an address-space limit
(``limits.reader_memory_bytes``) and the file's remaining time budget: the HDF5 C library is
large and has crashed on malformed files before, and a crash or a runaway allocation there must
cost one finding, not the scan. The child reports the attributes Keras reads, the objects, the
links and the dataset shapes (never dataset contents); this module turns them into findings:

* the ``model_config`` and ``training_config`` JSON are analysed as Keras configs (Lambda
  layers, imports, external models, paths: :mod:`.keras`), ``keras_version`` and ``backend``
  go to the file's metadata;
* external links, external raw storage and virtual datasets name other files
  (``HDF5-EXTERNAL-REFERENCE``);
* datasets declaring far more bytes than they store (``HDF5-DATASET-OVERSIZED``);
* small attribute values that start like a pickle, an archive or an executable are analysed
  by content;
* a file the library cannot read, a crashed or timed-out reader, and tripped limits make the
  result incomplete (``HDF5-NOT-ANALYSED``, ``SCAN-LIMIT``). Without h5py the file is reported
  as not opened (``ARCHIVE-UNSUPPORTED``), never passed.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from modelshield.core.findings import Location, Severity
from modelshield.scanner.context import ScanContext
from modelshield.scanner.formats.hygiene import scan_member, unsafe_path, unsupported
from modelshield.scanner.formats.keras import analyse_config_text
from modelshield.scanner.rules import (
    HDF5_DATASET_OVERSIZED,
    HDF5_EXTERNAL_REFERENCE,
    HDF5_NOT_ANALYSED,
    KERAS_CONFIG_INVALID,
    SCAN_LIMIT,
)

PROBE_MODULE = "modelshield.scanner.formats.hdf5_probe"
_MAX_OUTPUT = 1 << 30


def scan_hdf5(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Read an HDF5 file's structure in a child process and analyse what Keras would load."""
    if importlib.util.find_spec("h5py") is None:
        unsupported(
            ctx,
            location,
            "An HDF5 file (Keras .h5 model or weights)",
            "Install the hdf5 extra (pip install 'modelshield[hdf5]', which brings h5py) to "
            "have it analysed.",
        )
        return
    ctx.bytes_read += len(data)
    result = _run_probe(ctx, data, location)
    if result is None:
        return
    if "error" in result:
        _not_analysed(ctx, location, f"the HDF5 library could not read it: {result['error']}")
        return
    _report(ctx, result, location)


def _run_probe(ctx: ScanContext, data: memoryview, location: Location) -> dict[str, Any] | None:
    limits = ctx.limits
    budget = limits.max_seconds_per_file - (time.monotonic() - ctx.started)
    args = json.dumps(
        {
            "max_members": limits.max_members,
            "max_attributes": limits.max_attributes,
            "max_document_bytes": limits.max_document_bytes,
        }
    )
    temp: str | None = None
    try:
        if ctx.depth == 0 and _is_whole_file(ctx.path, data):
            path = ctx.path
        else:
            handle, temp = tempfile.mkstemp(suffix=".h5")
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            path = temp
        proc = subprocess.run(
            [sys.executable, "-I", "-m", PROBE_MODULE, path, args],
            capture_output=True,
            timeout=max(1.0, budget),
            env=_child_env(),
            preexec_fn=_limiter(limits.reader_memory_bytes) if os.name == "posix" else None,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _not_analysed(ctx, location, f"reading its structure took longer than {budget:.0f} s")
        return None
    except OSError as e:
        _not_analysed(ctx, location, f"the HDF5 reader could not be started ({e})")
        return None
    finally:
        if temp is not None:
            Path(temp).unlink()
    if proc.returncode != 0 or not proc.stdout or len(proc.stdout) > _MAX_OUTPUT:
        how = (
            f"it was killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"it exited with status {proc.returncode}"
        )
        _not_analysed(ctx, location, f"the HDF5 reader failed on it ({how})")
        return None
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        _not_analysed(ctx, location, "the HDF5 reader's output could not be read")
        return None
    return result if isinstance(result, dict) else None


def _is_whole_file(path: str, data: memoryview) -> bool:
    try:
        return Path(path).stat().st_size == len(data)
    except OSError:
        return False


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HDF5_", "PYTHON"))}
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    # No filter plugins: dataset contents are never read, and no file may make the library
    # load a shared object.
    env["HDF5_PLUGIN_PATH"] = os.devnull
    env["HDF5_USE_FILE_LOCKING"] = "FALSE"
    return env


def _limiter(memory: int) -> Any:
    def limit() -> None:  # pragma: no cover - runs in the child
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return limit


def _report(ctx: ScanContext, result: dict[str, Any], location: Location) -> None:
    root = result.get("root") or {}
    if "model_config" in root or "keras_version" in root:
        ctx.saw_format("keras-h5")
    for key in ("keras_version", "backend"):
        value = root.get(key)
        if isinstance(value, str):
            ctx.metadata["keras_version" if key == "keras_version" else "keras_backend"] = value[
                :64
            ]
    for key in ("model_config", "training_config"):
        value = root.get(key)
        if isinstance(value, str):
            analyse_config_text(ctx, value, location, source=f"{key} attribute")
        elif isinstance(value, dict):
            ctx.add(
                KERAS_CONFIG_INVALID.finding(
                    location,
                    f"The {key} attribute has {value.get('too_large')} bytes, above "
                    "limits.max_document_bytes; it was not analysed.",
                    evidence={"source": key, "problem": "too large"},
                )
            )
    for ref in result.get("external") or ():
        _external(ctx, ref, location)
    for dataset in result.get("datasets") or ():
        _oversized(ctx, dataset, location)
    for blob in result.get("blobs") or ():
        raw = base64.b64decode(blob["data"])
        where = f"<attribute {blob['attribute']!r} of {blob['object']}>"
        scan_member(ctx, raw, location.child(where))
    limit = result.get("limit")
    if limit:
        name, detail = limit
        ctx.add(
            SCAN_LIMIT.finding(
                location,
                f"Analysis stopped: {detail}. The rest of this HDF5 file was not analysed; raise "
                f"limits.{name} if the file is trusted to be this large.",
                evidence={"limit": name},
            )
        )


def _external(ctx: ScanContext, ref: dict[str, str], location: Location) -> None:
    target = str(ref.get("file", ""))
    reason = unsafe_path(target)
    ctx.add(
        HDF5_EXTERNAL_REFERENCE.finding(
            location,
            f"The {ref.get('kind')} {ref.get('object')!r} reads the file {target!r}"
            + (f", which {reason}" if reason else "")
            + ". Reading it reads that file.",
            severity=Severity.HIGH if reason else None,
            evidence={
                "kind": str(ref.get("kind")),
                "object": str(ref.get("object")),
                "file": target[:300],
            },
        )
    )


def _oversized(ctx: ScanContext, dataset: dict[str, Any], location: Location) -> None:
    limits = ctx.limits
    declared, stored = int(dataset["declared"]), int(dataset["stored"])
    too_big = declared > limits.max_decompressed_bytes
    ratio = (
        declared > limits.ratio_check_min_bytes
        and declared > limits.max_compression_ratio * max(stored, 1)
    )
    if not (too_big or ratio):
        return
    ctx.add(
        HDF5_DATASET_OVERSIZED.finding(
            location,
            f"The dataset {dataset['object']!r} of shape {tuple(dataset['shape'])} declares "
            f"{declared} bytes but stores {stored}. A loader that reads it allocates the "
            "declared size.",
            evidence={
                "object": str(dataset["object"]),
                "declared_bytes": str(declared),
                "stored_bytes": str(stored),
            },
        )
    )


def _not_analysed(ctx: ScanContext, location: Location, why: str) -> None:
    ctx.add(
        HDF5_NOT_ANALYSED.finding(
            location,
            f"This HDF5 file was not analysed: {why}. Do not load it unless you trust its source.",
            evidence={"problem": why[:300]},
        )
    )
