"""``modelshield.load``: scan a file, pick the restricted loader for its format, load it."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from modelshield.core.errors import ConfigError, LoadRefused
from modelshield.core.findings import FileResult, Report
from modelshield.core.policy import Policy
from modelshield.loaders.base import LOADERS, LoadResult, scan_before_load

#: Formats (as the scan names them) and the loader that reads each.
FORMAT_LOADERS = {
    "pytorch-zip": "torch",
    "pytorch-legacy": "torch",
    "numpy": "numpy",
    "numpy-object": "numpy",
    "pickle": "pickle",
    # joblib's loader opens its compressors itself (and plain pickles inside them).
    "zlib": "joblib",
    "gzip": "joblib",
    "bzip2": "joblib",
    "xz": "joblib",
    "lzma": "joblib",
    "lz4": "joblib",
}

#: The wrapper class joblib writes before each array's raw data: a pickle that imports it was
#: written by joblib and needs joblib's loader to read the data that follows.
JOBLIB_MARKERS = frozenset(
    {
        "joblib.numpy_pickle:NumpyArrayWrapper",
        "sklearn.externals.joblib.numpy_pickle:NumpyArrayWrapper",
    }
)


def loader_for(result: FileResult) -> str | None:
    """The restricted loader for a scanned file, or None when none reads its format.

    By the format the scan detected: PyTorch checkpoints (zip and legacy) → ``torch``;
    ``.npy`` → ``numpy``, and a zip whose members are ``.npy`` (``.npz``) → ``numpy``;
    compressed streams (joblib's compressors) → ``joblib``; a plain pickle → ``joblib`` when it
    imports joblib's array wrapper, else ``pickle``. TorchScript, archives of other content and
    formats that do not unpickle (safetensors, ONNX, GGUF...) have none.
    """
    fmt = result.format
    if fmt == "zip" and ("numpy" in result.formats_seen or "numpy-object" in result.formats_seen):
        return "numpy"
    loader = FORMAT_LOADERS.get(fmt)
    if loader == "pickle" and JOBLIB_MARKERS.intersection(result.imports):
        return "joblib"
    return loader


def load(
    path: str | os.PathLike[str], *, policy: Policy | None = None, loader: str | None = None
) -> Any:
    """Scan a model file and load it under the policy; return the loaded object.

    The file is refused (:class:`~modelshield.core.errors.LoadRefused`, carrying the report and
    the findings) when its scan fails the policy (a finding at or above ``fail_on``, or a part
    not analysed), or when the restricted unpickler meets anything the policy does not admit.
    The loader is chosen by the format the scan detected (:func:`loader_for`), or named with
    ``loader`` (``torch``, ``joblib``, ``pickle`` or ``numpy``); :func:`load_model` also says
    which one read the file. An ``.npz`` comes back as a ``dict`` of its arrays.
    """
    return load_model(path, policy=policy, loader=loader).value


def load_model(
    path: str | os.PathLike[str], *, policy: Policy | None = None, loader: str | None = None
) -> LoadResult:
    """:func:`load`, returning the object with the loader that read it, how, and the scan's
    report. This is the entry point for modelshield's own pillars."""
    policy = policy or Policy()
    if loader is not None and loader not in LOADERS:
        raise ConfigError(f"unknown loader {loader!r}; use one of: {', '.join(LOADERS)}")
    name = os.fspath(path)
    report = scan_before_load(name, policy)
    result = report.results[0]
    chosen = loader or loader_for(result)
    if chosen is None:
        raise LoadRefused(
            name,
            f"no restricted loader reads {result.format!r} content",
            report=report,
            stage="format",
        )
    value, method = restricted_load(
        name, chosen, policy, report=report, imports=result.imports, eager=True
    )
    return LoadResult(value, chosen, method, result.format, report)


def restricted_load(
    path: str,
    loader: str,
    policy: Policy,
    *,
    report: Report | None = None,
    imports: Iterable[str] = (),
    eager: bool = True,
) -> tuple[Any, str]:
    """Load ``path`` with one restricted loader, **without scanning it first**.

    For callers that scanned already (:func:`load_model`) or that test the restricted path on
    its own (``scan --verify-load``, in a sandboxed child). ``imports`` are the callables the
    scan saw (torch's weights_only path registers the SAFE ones). Returns the object and how
    it was read.
    """
    from modelshield.loaders.session import LoadSession

    if loader == "torch":
        from modelshield.loaders.torch_loader import load_torch

        return load_torch(path, LoadSession(path, policy), report=report, imports=imports)
    if loader == "joblib":
        from modelshield.loaders.joblib_loader import joblib_session, load_joblib

        return load_joblib(path, joblib_session(path, policy, path, None), report=report)
    if loader == "numpy":
        from modelshield.loaders.numpy_loader import load_numpy

        return load_numpy(path, LoadSession(path, policy), report=report, eager=eager)
    if loader == "pickle":
        from modelshield.loaders.pickle_loader import METHOD, load_pickle

        value, _ = load_pickle(path, LoadSession(path, policy), report=report)
        return value, METHOD
    raise ConfigError(f"unknown loader {loader!r}; use one of: {', '.join(LOADERS)}")


__all__ = ["FORMAT_LOADERS", "load", "load_model", "loader_for", "restricted_load"]
