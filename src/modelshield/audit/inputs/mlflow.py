"""MLflow model directories: ``MLmodel`` and ``python_env.yaml``.

``MLmodel`` records the MLflow version that saved the model (``mlflow_version``) and, per
flavor, the version of the library that serialised it (``sklearn_version``, ``pytorch_version``,
``xgb_version``...). These become *model-implied* dependencies: the model was produced with
them, and loading it imports them. ``python_env.yaml`` lists build and runtime requirements
(often ``-r requirements.txt``), read like a requirements file. The ``conda.yaml`` and
``requirements.txt`` beside them are read by their own parsers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from packaging.utils import canonicalize_name

from modelshield.audit.inputs._common import (
    InputBuilder,
    InputError,
    ParseOptions,
    TextIndex,
    failed,
    load_yaml_text,
    read_text,
    shown,
)
from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.audit.inputs.requirements import read_requirement_lines
from modelshield.core.findings import Location

FLAVOR_VERSION_KEYS: Mapping[str, str] = {
    "sklearn": "scikit-learn",
    "pytorch": "torch",
    "torch": "torch",
    "xgb": "xgboost",
    "xgboost": "xgboost",
    "lgb": "lightgbm",
    "lightgbm": "lightgbm",
    "cb": "catboost",
    "catboost": "catboost",
    "keras": "keras",
    "tensorflow": "tensorflow",
    "tf": "tensorflow",
    "transformers": "transformers",
    "onnx": "onnx",
    "spacy": "spacy",
    "statsmodels": "statsmodels",
    "h2o": "h2o",
    "fastai": "fastai",
    "paddle": "paddlepaddle",
    "prophet": "prophet",
    "sentence_transformers": "sentence-transformers",
    "langchain": "langchain",
    "openai": "openai",
    "mlflow": "mlflow",
}
"""``<prefix>_version`` keys of MLmodel flavors -> the PyPI distribution they name."""


def _implied(
    name: str, version: str, index: TextIndex, shown_path: str, key: str, why: str
) -> Dependency:
    line, offset = index.find(f"{key}:")
    return Dependency(
        name=name,
        canonical=canonicalize_name(name),
        location=Location(shown_path, (), offset),
        version=version.strip(),
        line=line,
        origin="model-implied",
        evidence={"recorded_in": f"{shown_path}: {why}", "version_source": key},
    )


def _read(
    path: Path, shown_path: str, kind: InputKind, options: ParseOptions
) -> tuple[InputBuilder, str, Mapping[str, object]] | ParsedInput:
    """The builder, the text and the YAML mapping of an MLflow file, or the failed input."""
    try:
        text, size = read_text(path, options.limits)
        data = load_yaml_text(text)
    except InputError as e:
        return failed(shown_path, kind, str(e))
    if not isinstance(data, Mapping):
        return failed(shown_path, kind, f"{path.name} must be a YAML mapping")
    builder = InputBuilder(shown_path, kind, options)
    builder.size = size
    return builder, text, data


def parse_mlmodel(path: Path, shown_path: str, options: ParseOptions) -> ParsedInput:
    """Read an MLflow ``MLmodel`` file's recorded library versions.

    A field of the wrong type (a version that is not a string, ``flavors`` that is not a
    mapping) is an error: MLflow would not load such a file, and a version it hides is a
    dependency left unaudited.
    """
    read = _read(path, shown_path, InputKind.MLFLOW_MLMODEL, options)
    if isinstance(read, ParsedInput):
        return read
    builder, text, data = read
    index = TextIndex(text)
    version = data.get("mlflow_version")
    if isinstance(version, str) and version.strip():
        dep = _implied("mlflow", version, index, shown_path, "mlflow_version", "mlflow_version")
        builder.add(dep)
    elif version is not None:
        builder.error(f"'mlflow_version' must be a version string, not {shown(version)}")
    flavors = data.get("flavors")
    loaders: list[str] = []
    if flavors is not None and not isinstance(flavors, Mapping):
        builder.error(f"'flavors' must be a mapping, not {shown(flavors)}")
        flavors = {}
    for flavor, table in (flavors or {}).items():
        if not isinstance(table, Mapping):
            builder.error(f"flavor {shown(flavor)} must be a mapping, not {shown(table)}")
            continue
        loader = table.get("loader_module")
        if isinstance(loader, str):
            loaders.append(loader)
        for key, value in table.items():
            if not (isinstance(key, str) and key.endswith("_version")):
                continue
            prefix = key[: -len("_version")]
            if not isinstance(value, str) or not value.strip():
                builder.error(
                    f"flavor {shown(flavor)}: {key} must be a version, not {shown(value)}"
                )
                continue
            if prefix == "python":
                continue
            dist = FLAVOR_VERSION_KEYS.get(prefix, prefix.replace("_", "-"))
            builder.add(_implied(dist, value, index, shown_path, key, f"flavor {flavor}, {key}"))
    if loaders:
        builder.metadata["loader_modules"] = ", ".join(sorted(set(loaders)))
    return builder.result()


def parse_python_env(path: Path, shown_path: str, options: ParseOptions) -> ParsedInput:
    """Read MLflow's ``python_env.yaml`` (build and runtime requirements)."""
    read = _read(path, shown_path, InputKind.MLFLOW_PYTHON_ENV, options)
    if isinstance(read, ParsedInput):
        return read
    builder, text, data = read
    python = data.get("python")
    if python is not None and not isinstance(python, str):
        builder.error(f"'python' must be a version string, not {shown(python)}")
    index = TextIndex(text)
    for key in ("build_dependencies", "dependencies"):
        lines = data.get(key)
        if lines is None:
            continue
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            builder.error(f"'{key}' must be a list of strings, not {shown(lines)}")
            continue
        read_requirement_lines(builder, lines, path, index)
    return builder.result()
