"""Keras model files written by Keras itself (torch backend), and helpers to build hostile ones.

Keras 3 runs on the torch backend here, so no TensorFlow is needed: ``KERAS_BACKEND`` is set
before Keras is first imported. Real files are built once per session.
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from modelshield.core.findings import FileResult, Severity
from tests.scanner.containers.conftest import rule_ids, scan

__all__ = ["keras_zip", "rule_ids", "scan", "worst", "write_h5"]

os.environ.setdefault("KERAS_BACKEND", "torch")


def worst(result: FileResult, rule: str) -> Severity:
    """The highest severity among a result's findings of one rule."""
    severities = [f.severity for f in result.findings if f.rule_id == rule]
    assert severities, f"no {rule} finding: {rule_ids(result)}"
    return max(severities)


def keras_zip(path: Path, config: Any, *, metadata: dict[str, str] | str | None = None) -> Path:
    """A ``.keras`` archive with ``config`` and ``metadata`` (dicts, or raw text) and Keras'
    other members."""
    meta = metadata if metadata is not None else {"keras_version": "3.9.0"}
    text = config if isinstance(config, str) else json.dumps(config)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", meta if isinstance(meta, str) else json.dumps(meta))
        z.writestr("config.json", text)
        z.writestr("model.weights.h5", _empty_h5())
    return path


def _empty_h5() -> bytes:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_group("layers")
    return buf.getvalue()


def write_h5(path: Path, attrs: dict[str, Any]) -> Path:
    """An HDF5 file with root attributes, as Keras' legacy ``.h5`` format writes them."""
    import h5py

    with h5py.File(path, "w") as f:
        for key, value in attrs.items():
            f.attrs[key] = value if isinstance(value, str | bytes) else json.dumps(value)
        f.create_group("model_weights")
    return path


@pytest.fixture(scope="session")
def keras() -> ModuleType:
    """Keras 3 on the torch backend."""
    return pytest.importorskip("keras")


@pytest.fixture(scope="session")
def real_models(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Benign models written by Keras: Sequential and functional, compiled, .keras and .h5."""
    import logging

    logging.getLogger("absl").setLevel(logging.ERROR)  # "HDF5 is a legacy format" notices
    layers = keras.layers
    out = tmp_path_factory.mktemp("keras-real")
    models: dict[str, Any] = {}
    models["sequential"] = keras.Sequential(
        [keras.Input((4,)), layers.Dense(8, activation="relu"), layers.Dense(1)]
    )
    inp = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, activation="relu", kernel_regularizer=keras.regularizers.L2(1e-4))(inp)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.2)(x)
    x = keras.ops.relu(keras.ops.add(x, 1.0))
    y = layers.Dense(2, activation="softmax", kernel_constraint=keras.constraints.MaxNorm(2))(x)
    functional = keras.Model(inp, y)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.9)
    functional.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.AUC()],
    )
    models["functional"] = functional
    rnn = keras.Sequential(
        [keras.Input((5,)), layers.Embedding(10, 4), layers.LSTM(3), layers.Dense(1)]
    )
    rnn.compile("rmsprop", keras.losses.BinaryCrossentropy(), metrics=[keras.metrics.Precision()])
    models["rnn"] = rnn
    return _save(models, out)


@pytest.fixture(scope="session")
def lambda_models(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Models with Lambda layers, written by Keras: a harmless one and one calling os.system."""
    import logging

    logging.getLogger("absl").setLevel(logging.ERROR)
    out = tmp_path_factory.mktemp("keras-lambda")
    harmless = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2)])
    evil = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Lambda(lambda t: __import__("os").system("id") and t),
        ]
    )
    return _save({"harmless": harmless, "evil": evil}, out)


def _save(models: dict[str, Any], out: Path) -> dict[str, Path]:
    """Each model saved as .keras and as .h5 (Keras' torch backend converts tensors with a
    call numpy 2 deprecates: its warnings are Keras', not ours)."""
    paths: dict[str, Path] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name, model in models.items():
            for ext in (".keras", ".h5"):
                path = out / f"{name}{ext}"
                model.save(path)
                paths[f"{name}{ext}"] = path
    return paths
