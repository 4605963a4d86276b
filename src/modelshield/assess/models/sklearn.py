"""scikit-learn estimators and pipelines (and anything with their ``predict`` interface),
loaded through the restricted loaders."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelshield.assess.interface import ModelError, RawPrediction


class SklearnModel:
    """An object with ``predict`` (and ``predict_proba`` when it has it)."""

    kind = "sklearn"

    def __init__(self, estimator: Any) -> None:
        """Wrap a fitted estimator."""
        self.estimator = estimator
        classes = getattr(estimator, "classes_", None)
        self.classes: tuple[Any, ...] | None = None if classes is None else tuple(classes)
        names = getattr(estimator, "feature_names_in_", None)
        self.features: tuple[str, ...] | None = (
            None if names is None else tuple(str(n) for n in names)
        )
        self._labels = np.asarray(self.classes if self.classes is not None else (), dtype=object)
        self._proba = self.classes is not None and hasattr(estimator, "predict_proba")

    @classmethod
    def wrap(cls, value: Any) -> SklearnModel:
        """Wrap a loaded object, or say why it is not a model."""
        if not callable(getattr(value, "predict", None)):
            raise ModelError(
                f"the file holds a {type(value).__module__}.{type(value).__qualname__}, which "
                "has no predict() method"
            )
        return cls(value)

    def predict(self, rows: pd.DataFrame) -> RawPrediction:
        """Labels from the estimator's probabilities (its ``predict`` when it has none)."""
        x: Any = rows if self.features is not None else rows.to_numpy()
        if self._proba:
            proba = np.asarray(self.estimator.predict_proba(x))
            labels = self._labels[np.argmax(proba, axis=1)]
            return RawPrediction(labels, proba)
        return RawPrediction(np.asarray(self.estimator.predict(x)), None)
