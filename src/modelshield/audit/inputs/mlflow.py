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
    InputError,
    ParseOptions,
    load_yaml_text,
    locate,
    read_text,
)
from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.audit.inputs.requirements import parse_requirement_lines
from modelshield.core.findings import ErrorRecord, Location

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


def _fail(shown: str, kind: InputKind, message: str) -> ParsedInput:
    return ParsedInput(
        path=shown,
        kind=kind,
        errors=(ErrorRecord(Location(shown), f"{shown}: {message}", stage="audit-parse"),),
    )


def _implied(name: str, version: str, text: str, shown: str, key: str, why: str) -> Dependency:
    line, offset = locate(text, f"{key}:")
    return Dependency(
        name=name,
        canonical=canonicalize_name(name),
        location=Location(shown, (), offset),
        version=version.strip(),
        line=line,
        origin="model-implied",
        evidence={"recorded_in": f"{shown}: {why}", "version_source": key},
    )


def parse_mlmodel(path: Path, shown: str, options: ParseOptions) -> ParsedInput:
    """Read an MLflow ``MLmodel`` file's recorded library versions."""
    try:
        text, size = read_text(path, options.limits)
        data = load_yaml_text(text)
    except InputError as e:
        return _fail(shown, InputKind.MLFLOW_MLMODEL, str(e))
    if not isinstance(data, Mapping):
        return _fail(shown, InputKind.MLFLOW_MLMODEL, "an MLmodel file must be a YAML mapping")
    deps: list[Dependency] = []
    version = data.get("mlflow_version")
    if isinstance(version, str) and version.strip():
        deps.append(_implied("mlflow", version, text, shown, "mlflow_version", "mlflow_version"))
    flavors = data.get("flavors")
    loaders: list[str] = []
    if isinstance(flavors, Mapping):
        for flavor, table in flavors.items():
            if not isinstance(table, Mapping):
                continue
            loader = table.get("loader_module")
            if isinstance(loader, str):
                loaders.append(loader)
            for key, value in table.items():
                if not (isinstance(key, str) and key.endswith("_version")):
                    continue
                prefix = key[: -len("_version")]
                if prefix == "python" or not isinstance(value, str) or not value.strip():
                    continue
                dist = FLAVOR_VERSION_KEYS.get(prefix, prefix.replace("_", "-"))
                deps.append(_implied(dist, value, text, shown, key, f"flavor {flavor}, {key}"))
    metadata = {"dependencies": str(len(deps))}
    if loaders:
        metadata["loader_modules"] = ", ".join(sorted(set(loaders)))
    return ParsedInput(
        path=shown,
        kind=InputKind.MLFLOW_MLMODEL,
        dependencies=tuple(deps),
        size=size,
        metadata=metadata,
    )


def parse_python_env(path: Path, shown: str, options: ParseOptions) -> ParsedInput:
    """Read MLflow's ``python_env.yaml`` (build and runtime requirements)."""
    kind = InputKind.MLFLOW_PYTHON_ENV
    try:
        text, size = read_text(path, options.limits)
        data = load_yaml_text(text)
    except InputError as e:
        return _fail(shown, kind, str(e))
    if not isinstance(data, Mapping):
        return _fail(shown, kind, "python_env.yaml must be a YAML mapping")
    deps: list[Dependency] = []
    errors: list[ErrorRecord] = []
    for key in ("build_dependencies", "dependencies"):
        lines = data.get(key) or []
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            errors.append(
                ErrorRecord(
                    Location(shown),
                    f"{shown}: '{key}' must be a list of strings",
                    stage="audit-parse",
                )
            )
            continue
        more, errs = parse_requirement_lines(list(lines), path, shown, options, text)
        deps.extend(more)
        errors.extend(errs)
    return ParsedInput(
        path=shown,
        kind=kind,
        dependencies=tuple(deps),
        errors=tuple(errors),
        size=size,
        metadata={"dependencies": str(len(deps))},
    )
