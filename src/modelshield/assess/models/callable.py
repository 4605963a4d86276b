"""A Python callable named ``package.module:function``: rows in, predictions out.

The function takes a pandas ``DataFrame`` and returns one label or value per row. It may also
offer probabilities: an attribute ``predict_proba`` (a function of the same rows returning one
column per class) with an attribute ``classes`` naming the classes. The user names their own
code; nothing is imported from the model or the data."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pandas as pd

from modelshield.assess.interface import ModelError, RawPrediction


class CallableModel:
    """A function (or any callable object) as a model."""

    kind = "callable"

    def __init__(self, function: Any, name: str) -> None:
        """Wrap ``function``."""
        self.function = function
        self.name = name
        classes = getattr(function, "classes", None)
        self.classes: tuple[Any, ...] | None = None if classes is None else tuple(classes)
        features = getattr(function, "features", None)
        self.features: tuple[str, ...] | None = None if features is None else tuple(features)
        proba = getattr(function, "predict_proba", None)
        self._proba = proba if callable(proba) and self.classes is not None else None

    @classmethod
    def from_name(cls, name: str) -> CallableModel:
        """Import ``package.module:function`` (the user's own code, named on the command
        line)."""
        module_name, _, qualname = name.partition(":")
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as e:
            raise ModelError(f"{name}: cannot import {module_name!r}: {e}") from e
        for part in qualname.split("."):
            try:
                target = getattr(target, part)
            except AttributeError as e:
                raise ModelError(f"{name}: {module_name!r} has no {qualname!r}") from e
        if not callable(target):
            raise ModelError(f"{name}: {qualname!r} is not callable")
        return cls(target, name)

    def predict(self, rows: pd.DataFrame) -> RawPrediction:
        """Call the function (and its ``predict_proba``)."""
        labels = np.asarray(self.function(rows))
        proba = None if self._proba is None else np.asarray(self._proba(rows), dtype=float)
        return RawPrediction(labels, proba)
