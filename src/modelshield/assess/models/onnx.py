"""ONNX models through onnxruntime (optional: ``pip install onnxruntime``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelshield.assess.interface import ModelError, RawPrediction
from modelshield.assess.models.boosters import _require


class OnnxModel:
    """An ONNX graph with one tensor input of shape ``(n, features)``.

    Outputs are read as skl2onnx writes classifiers (a label tensor, then probabilities as a
    tensor or a list of maps) or as one value tensor (regression, or scores per class)."""

    kind = "onnx"

    def __init__(self, path: str) -> None:
        """Open an inference session on the CPU."""
        ort = _require("onnxruntime")
        try:
            self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ModelError(f"{path}: onnxruntime cannot open it: {e}") from e
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"{path}: the graph takes {len(inputs)} inputs; one is supported")
        self.input = inputs[0].name
        self.dtype = np.float64 if "double" in inputs[0].type else np.float32
        self.classes: tuple[Any, ...] | None = None
        self.features: tuple[str, ...] | None = None
        outputs = self.session.get_outputs()
        self._has_label = len(outputs) >= 2

    def predict(self, rows: pd.DataFrame) -> RawPrediction:
        """Run the graph on one batch."""
        out = self.session.run(None, {self.input: rows.to_numpy(dtype=self.dtype)})
        if not self._has_label:
            return RawPrediction(np.asarray(out[0]).reshape(len(rows)), None)
        labels = np.asarray(out[0]).reshape(len(rows))
        probs = out[1]
        if isinstance(probs, list) and probs and isinstance(probs[0], dict):
            keys = sorted(probs[0])
            if self.classes is None:
                self.classes = tuple(keys)
            probs = [[p[k] for k in keys] for p in probs]
        proba = np.asarray(probs, dtype=float)
        if self.classes is None:
            self.classes = tuple(range(proba.shape[1]))
        return RawPrediction(labels, proba)
