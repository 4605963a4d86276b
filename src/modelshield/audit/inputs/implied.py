"""Model-implied dependencies: the distributions a model needs, read from the model itself.

A pickle names the callables it imports when loaded (``sklearn.ensemble._forest:
RandomForestClassifier``): their top-level modules map to distributions (``sklearn`` ->
``scikit-learn``). Files also record the version they were saved with (scikit-learn's
``_sklearn_version`` in the pickled state, Keras ``metadata.json``, an ONNX producer, MLflow's
``MLmodel``, transformers' ``config.json``). The scanner fills ``FileResult.imports`` and
``FileResult.metadata``; this module turns them into :class:`Dependency` values with their
evidence, so that the auditor reports and audits them like declared dependencies.

Nothing is imported or unpickled: modules are mapped by name, versions read as text.

``torch_archive_version`` (the ``version`` record inside a torch ZIP checkpoint) is the
*serialisation format* number, not a torch release, so it is kept as evidence only.
"""

from __future__ import annotations

import contextlib
import json
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path

from msgspec.structs import replace
from packaging.utils import canonicalize_name

from modelshield.audit.inputs._common import InputError, open_regular, read_bytes
from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.core.findings import FileResult, Location
from modelshield.core.limits import Limits

MODULE_TO_DISTRIBUTION: Mapping[str, str] = {
    "sklearn": "scikit-learn",
    "torch": "torch",
    "torchvision": "torchvision",
    "torchaudio": "torchaudio",
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "joblib": "joblib",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "transformers": "transformers",
    "tokenizers": "tokenizers",
    "sentence_transformers": "sentence-transformers",
    "huggingface_hub": "huggingface-hub",
    "safetensors": "safetensors",
    "accelerate": "accelerate",
    "diffusers": "diffusers",
    "peft": "peft",
    "timm": "timm",
    "keras": "keras",
    "tensorflow": "tensorflow",
    "tf_keras": "tf-keras",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "mlflow": "mlflow",
    "statsmodels": "statsmodels",
    "imblearn": "imbalanced-learn",
    "category_encoders": "category-encoders",
    "skops": "skops",
    "dill": "dill",
    "cloudpickle": "cloudpickle",
    "gensim": "gensim",
    "spacy": "spacy",
    "nltk": "nltk",
    "fastai": "fastai",
    "lightning": "lightning",
    "pytorch_lightning": "pytorch-lightning",
    "jax": "jax",
    "flax": "flax",
    "numba": "numba",
    "pyarrow": "pyarrow",
    "h5py": "h5py",
    "PIL": "pillow",
    "cv2": "opencv-python",
    "yaml": "pyyaml",
    "prophet": "prophet",
    "shap": "shap",
    "umap": "umap-learn",
    "hdbscan": "hdbscan",
    "gradio": "gradio",
}
"""Top-level module -> PyPI distribution, for the common ML stack (where the names differ, the
mapping is the only reliable source: ``sklearn`` is not a distribution you want)."""

ONNX_PRODUCERS: Mapping[str, str] = {
    "pytorch": "torch",
    "skl2onnx": "skl2onnx",
    "tf2onnx": "tf2onnx",
    "keras2onnx": "keras2onnx",
    "onnxmltools": "onnxmltools",
    "paddle2onnx": "paddle2onnx",
}
"""ONNX ``producer_name`` -> the distribution whose version ``producer_version`` is."""

_NOT_A_RELEASE = {"torch_archive_version"}
_PY2_STDLIB = {"__builtin__", "copy_reg", "__main__"}


def _distribution(module: str, fallback: Mapping[str, list[str]] | None) -> str | None:
    top = module.split(".", 1)[0]
    if top in MODULE_TO_DISTRIBUTION:
        return MODULE_TO_DISTRIBUTION[top]
    if fallback is not None and fallback.get(top):
        return fallback[top][0]
    return None


def _is_stdlib(module: str) -> bool:
    top = module.split(".", 1)[0]
    return top in sys.stdlib_module_names or top in _PY2_STDLIB


def recorded_versions(metadata: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Distribution -> ``(version, metadata key)`` from a scan's recorded facts."""
    out: dict[str, tuple[str, str]] = {}
    producer = metadata.get("onnx_producer_name", "").strip().lower()
    producer_version = metadata.get("onnx_producer_version", "").strip()
    if producer in ONNX_PRODUCERS and producer_version:
        out[ONNX_PRODUCERS[producer]] = (producer_version, "onnx_producer_version")
    for key, value in sorted(metadata.items()):
        if not key.endswith("_version") or key in _NOT_A_RELEASE or not value.strip():
            continue
        prefix = key[: -len("_version")]
        dist = MODULE_TO_DISTRIBUTION.get(prefix)
        if dist is not None:
            out.setdefault(dist, (value.strip(), key))
    return out


def implied_dependencies(
    result: FileResult, fallback: Mapping[str, list[str]] | None = None
) -> tuple[list[Dependency], list[str]]:
    """The model's implied dependencies, and the third-party modules no distribution maps to.

    ``fallback`` maps top-level modules to distributions for modules outside the built-in table
    (:func:`importlib.metadata.packages_distributions` of the auditing environment).
    """
    callables: dict[str, list[str]] = {}
    unmapped: set[str] = set()
    for entry in result.imports:
        module = entry.split(":", 1)[0]
        if not module or _is_stdlib(module):
            continue
        dist = _distribution(module, fallback)
        if dist is None:
            unmapped.add(module.split(".", 1)[0])
            continue
        callables.setdefault(canonicalize_name(dist), []).append(entry)
    versions: dict[str, tuple[str, str]] = {
        canonicalize_name(k): v for k, v in recorded_versions(result.metadata).items()
    }
    loc = Location(result.path)
    deps = []
    for canonical in sorted(set(callables) | set(versions)):
        evidence: dict[str, str] = {}
        used = callables.get(canonical, [])
        if used:
            evidence["callables"] = ", ".join(sorted(used)[:8]) + (
                f" (+{len(used) - 8} more)" if len(used) > 8 else ""
            )
        recorded = versions.get(canonical)
        version, key = recorded if recorded is not None else (None, "")
        if key:
            evidence["version_source"] = key
        if canonical == "torch" and "torch_archive_version" in result.metadata:
            evidence["torch_archive_version"] = result.metadata["torch_archive_version"]
        deps.append(
            Dependency(
                name=canonical,
                canonical=canonical,
                location=loc,
                version=version,
                specifiers=() if version is not None else ("",),
                origin="model-implied",
                evidence=evidence,
            )
        )
    return deps, sorted(unmapped)


def parsed_model(
    result: FileResult, fallback: Mapping[str, list[str]] | None = None
) -> ParsedInput:
    """A scanned model file as an audit input.

    A scan that left part of the file unanalysed (its *gaps*: a limit, a member it could not
    open, a format it does not analyse) may have missed imports the model makes, so the audit
    cannot say every dependency is accounted for: the gaps are kept, and the audit's result
    for the file is incomplete (exit 2) unless the policy accepts them, by the same
    ``[[accept_incomplete]]`` entries as the scan.
    """
    deps, unmapped = implied_dependencies(result, fallback)
    metadata = {"dependencies": str(len(deps)), "model_format": result.format}
    if unmapped:
        metadata["unmapped_modules"] = ", ".join(unmapped)
    gaps = tuple(
        replace(g, message=f"model scan: {g.message} Dependencies it implies may be missing.")
        for g in result.gaps
    )
    return ParsedInput(
        path=result.path,
        kind=InputKind.MODEL,
        dependencies=tuple(deps),
        size=result.size,
        metadata=metadata,
        gaps=gaps,
    )


# ---- versions recorded outside pickles (read directly: cheap, no scanner needed) ----------


def keras_metadata(path: Path, limits: Limits) -> dict[str, str]:
    """``keras_version`` from a ``.keras`` archive's ``metadata.json`` ({} when absent)."""
    try:
        fh, _ = open_regular(path)
        with fh, zipfile.ZipFile(fh) as zf:
            info = zf.getinfo("metadata.json")
            if info.file_size > limits.max_manifest_bytes:
                return {}
            with zf.open(info) as zh:
                doc = json.loads(zh.read(limits.max_manifest_bytes))
    except (KeyError, OSError, zipfile.BadZipFile, ValueError, EOFError, RuntimeError):
        return {}  # InputError (not a regular file) is a ValueError
    version = doc.get("keras_version") if isinstance(doc, dict) else None
    return {"keras_version": version} if isinstance(version, str) else {}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated varint")


def onnx_producer(path: Path, head_bytes: int = 65536) -> dict[str, str]:
    """``onnx_producer_name``/``_version`` from an ONNX ModelProto's first fields ({} if none).

    Only the file's head is read: the producer fields (2 and 3) precede the graph (7).
    """
    try:
        fh, _ = open_regular(path)
        with fh:
            data = fh.read(head_bytes)
    except (OSError, InputError):
        return {}
    out: dict[str, str] = {}
    pos = 0
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        while pos < len(data) and len(out) < 2:
            key, pos = _varint(data, pos)
            field, wire = key >> 3, key & 7
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 2:
                length, pos = _varint(data, pos)
                if field in (2, 3) and pos + length <= len(data):
                    name = "onnx_producer_name" if field == 2 else "onnx_producer_version"
                    out[name] = data[pos : pos + length].decode("utf-8")
                pos += length
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                break
    return out


def json_version(path: Path, key: str, limits: Limits) -> str | None:
    """A string field of a small JSON object (``transformers_version`` in ``config.json``)."""
    try:
        doc = json.loads(read_bytes(path, limits.max_manifest_bytes, "max_manifest_bytes"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return None  # InputError (unreadable, too large, not a regular file) included
    value = doc.get(key) if isinstance(doc, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None
