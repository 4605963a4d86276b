"""Gradient-boosting libraries' native model files: LightGBM text, XGBoost JSON/UBJSON.

Neither format is a pickle: the libraries parse them as data, after the scan."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pandas as pd

from modelshield.assess.interface import ModelError, RawPrediction
from modelshield.core.errors import MissingExtraError


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(f"assessing a {module} model", "assess", module) from e


def _from_scores(scores: Any, binary: bool, classes: int) -> RawPrediction:
    s = np.asarray(scores, dtype=float)
    if binary:
        proba = np.column_stack([1.0 - s, s])
        return RawPrediction(np.argmax(proba, axis=1), proba)
    if classes > 2:
        s = s.reshape(len(s), classes) if s.ndim == 1 else s
        return RawPrediction(np.argmax(s, axis=1), s)
    return RawPrediction(s, None)


class LightGBMModel:
    """A LightGBM model saved with ``Booster.save_model`` (text)."""

    kind = "lightgbm"

    def __init__(self, path: str) -> None:
        """Read the model file."""
        lgb = _require("lightgbm")
        try:
            self.booster = lgb.Booster(model_file=path)
        except Exception as e:
            raise ModelError(f"{path}: LightGBM cannot read it: {e}") from e
        objective = str(self.booster.dump_model().get("objective", ""))
        self.n_classes = int(self.booster.dump_model().get("num_class", 1))
        self.binary = objective.startswith(("binary", "cross_entropy"))
        classification = self.binary or objective.startswith(("multiclass", "softmax"))
        self.classes: tuple[Any, ...] | None = (
            tuple(range(max(2, self.n_classes))) if classification else None
        )
        names = self.booster.feature_name()
        generic = all(n.startswith("Column_") for n in names)
        self.features: tuple[str, ...] | None = None if generic else tuple(names)

    def predict(self, rows: pd.DataFrame) -> RawPrediction:
        """Probabilities (classification) or values (regression)."""
        scores = self.booster.predict(rows.to_numpy(dtype=float))
        return _from_scores(scores, self.binary, self.n_classes)


class XGBoostModel:
    """An XGBoost model saved with ``Booster.save_model`` (JSON or UBJSON)."""

    kind = "xgboost"

    def __init__(self, path: str) -> None:
        """Read the model file."""
        xgb = _require("xgboost")
        self._xgb = xgb
        try:
            self.booster = xgb.Booster(model_file=path)
        except Exception as e:
            raise ModelError(f"{path}: XGBoost cannot read it: {e}") from e
        import json

        config = json.loads(self.booster.save_config())
        objective = str(config["learner"]["objective"]["name"])
        self.n_classes = int(config["learner"]["learner_model_param"].get("num_class", "0"))
        self.binary = objective.startswith("binary:")
        classification = self.binary or objective.startswith("multi:")
        self.classes: tuple[Any, ...] | None = (
            tuple(range(max(2, self.n_classes))) if classification else None
        )
        names = self.booster.feature_names
        self.features: tuple[str, ...] | None = None if not names else tuple(names)

    def predict(self, rows: pd.DataFrame) -> RawPrediction:
        """Probabilities (classification) or values (regression)."""
        matrix = self._xgb.DMatrix(rows.to_numpy(dtype=float), feature_names=self.features)
        return _from_scores(self.booster.predict(matrix), self.binary, self.n_classes)
