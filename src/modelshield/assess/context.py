"""What every check shares: the data, the counted predictor, the baseline predictions, and
where findings and measurements go."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from modelshield.assess.data import Dataset
from modelshield.assess.interface import DataError, Model, ModelError, Prediction, QueryLedger
from modelshield.core.assess_settings import AssessSettings
from modelshield.core.findings import Finding, Gap, Location
from modelshield.core.measurements import Curve, Measurement
from modelshield.core.rules import Rule

Array = np.ndarray[Any, Any]


def label_key(value: Any) -> str:
    """A label as text, so that ``1``, ``1.0``, ``np.int64(1)`` and ``"1"`` are one class."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


class Predictor:
    """The model behind the ledger: batches rows, counts calls, normalises the output."""

    def __init__(
        self,
        model: Model,
        ledger: QueryLedger,
        *,
        classes: Sequence[str] | None,
        columns: Sequence[str],
        batch_size: int,
    ) -> None:
        """``classes``: the class keys (classification) in the model's order; None for
        regression. ``columns``: what the model reads, in order."""
        self.model = model
        self.ledger = ledger
        self.classes = None if classes is None else list(classes)
        self._index = None if classes is None else {c: i for i, c in enumerate(classes)}
        self._has_proba = False
        self.columns = list(columns)
        self.batch_size = batch_size

    def __call__(self, frame: pd.DataFrame) -> Prediction:
        """Predict every row of ``frame`` in batches; raises ModelError naming the problem."""
        labels: list[Array] = []
        probas: list[Array] = []
        rows = frame[self.columns]
        for start in range(0, len(rows), self.batch_size):
            batch = rows.iloc[start : start + self.batch_size]
            self.ledger.count(len(batch))
            try:
                raw = self.model.predict(batch)
            except ModelError:
                raise
            except Exception as e:
                raise ModelError(
                    f"the model raised {type(e).__name__} on a batch of {len(batch)} rows: {e}"
                ) from e
            lab, prob = self._normalise(raw.labels, raw.proba, len(batch))
            labels.append(lab)
            if prob is not None:
                probas.append(prob)
        if not labels:
            empty = np.zeros(0, dtype=np.int64 if self.classes is not None else float)
            return Prediction(empty, None)
        proba = np.concatenate(probas) if len(probas) == len(labels) else None
        return Prediction(np.concatenate(labels), proba)

    def _normalise(self, labels: Any, proba: Any, n: int) -> tuple[Array, Array | None]:
        out = np.asarray(labels)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim != 1 or len(out) != n:
            raise ModelError(f"the model returned {out.shape} predictions for {n} rows")
        prob: Array | None = None
        if proba is not None and self._index is not None:
            prob = self._reorder(np.asarray(proba, dtype=float), n, self._index)
        if self._index is None:
            try:
                return out.astype(float), None
            except (TypeError, ValueError) as e:
                raise ModelError(f"the model returned values that are not numbers: {e}") from e
        index = self._index
        idx = np.fromiter((index.get(label_key(v), -1) for v in out), dtype=np.int64, count=n)
        return idx, prob

    def _reorder(self, proba: Array, n: int, index: Mapping[str, int]) -> Array:
        """Probability columns in the assessment's class order (the model's order may differ,
        and it may not know a class the data has: that column is 0)."""
        own = self.model.classes
        if own is None or proba.ndim != 2 or proba.shape != (n, len(own)):
            raise ModelError(
                f"the model returned probabilities of shape {proba.shape} for {n} rows and "
                f"{'unknown' if own is None else len(own)} classes"
            )
        out = np.zeros((n, len(index)))
        for j, c in enumerate(own):
            i = index.get(label_key(c))
            if i is not None:
                out[:, i] = proba[:, j]
        return out


class Context:
    """The state every check reads and writes."""

    def __init__(
        self,
        *,
        data: Dataset,
        predict: Predictor,
        settings: AssessSettings,
        task: str,
        y: Array,
        classes: Sequence[str],
        positive: int | None,
        location: Location,
        sensitive: Sequence[str],
        train: Dataset | None = None,
        gradient: Any = None,
    ) -> None:
        """Build the context; :meth:`baseline` must run before any check."""
        self.data = data
        self.predict = predict
        self.settings = settings
        self.task = task
        self.y = y
        self.classes = list(classes)
        self.positive = positive
        self.location = location
        self.sensitive = list(sensitive)
        self.train = train
        self.gradient = gradient
        self.base = Prediction(np.zeros(0))
        self.findings: list[Finding] = []
        self.gaps: list[Gap] = []
        self.measurements: list[Measurement] = []
        self.curves: list[Curve] = []
        self.covered: dict[str, str] = {}

    @property
    def classification(self) -> bool:
        """Whether the task is classification."""
        return self.task == "classification"

    @property
    def numeric_columns(self) -> list[str]:
        """Feature columns the model reads that are numbers (integers included)."""
        return [c for c in self.predict.columns if self.data.kinds.get(c) in ("numeric", "integer")]

    @property
    def categorical_columns(self) -> list[str]:
        """Feature columns the model reads that take values from a set."""
        return [
            c for c in self.predict.columns if self.data.kinds.get(c) in ("categorical", "boolean")
        ]

    def seed(self, check: str) -> int:
        """A seed for one check, derived from the policy's seed (checks stay independent)."""
        return (self.settings.seed * 1_000_003 + sum(map(ord, check)) * 7919) % (2**32)

    def baseline(self) -> None:
        """Predict every row once; checks compare against these."""
        self.base = self.predict(self.data.frame)
        if self.classification and len(self.base.labels) and (self.base.labels < 0).all():
            raise DataError(
                f"none of the model's predictions is a class of the target column "
                f"{self.data.target_name!r} (classes: {', '.join(self.classes)})"
            )

    def add(self, rule: Rule, message: str, check: str, evidence: Mapping[str, str]) -> None:
        """A finding of ``rule`` made by ``check``."""
        self.findings.append(
            rule.finding(self.location, message, evidence={"check": check, **evidence})
        )

    def gap(self, rule: Rule, check: str, message: str) -> None:
        """A part of ``check`` that did not run: a finding of an incomplete rule and its gap."""
        self.add(rule, f"{check}: {message}", check, {})
        self.gaps.append(Gap(rule.id, self.location, f"{check}: {message}"))

    def measure(
        self,
        check: str,
        name: str,
        value: float | None,
        ci: tuple[float | None, float | None] = (None, None),
        *,
        group: str = "",
        n: int = 0,
    ) -> Measurement:
        """Record a figure (rounded to 6 places) and return it."""
        m = Measurement(check, name, _r(value), _r(ci[0]), _r(ci[1]), group, n)
        self.measurements.append(m)
        return m

    def curve(
        self,
        check: str,
        name: str,
        x_label: str,
        y_label: str,
        x: Sequence[float],
        y: Sequence[float],
        series: str = "",
    ) -> None:
        """Record a series of points for a plot."""
        self.curves.append(
            Curve(
                check,
                name,
                x_label,
                y_label,
                tuple(round(float(v), 6) for v in x),
                tuple(round(float(v), 6) for v in y),
                series,
            )
        )

    def correct(self, prediction: Prediction | None = None) -> Array:
        """Per-row correctness (classification) of ``prediction`` (default: the baseline)."""
        p = self.base if prediction is None else prediction
        out: Array = p.labels == self.y
        return out


def _r(value: float | None) -> float | None:
    if value is None:
        return None
    f = float(value)
    return None if not np.isfinite(f) else round(f, 6)


def fmt(value: float | None, digits: int = 3) -> str:
    """A figure for a message (``n/a`` when undefined)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_ci(ci: tuple[float | None, float | None], digits: int = 3) -> str:
    """An interval for a message."""
    if ci[0] is None or ci[1] is None:
        return "no interval"
    return f"{ci[0]:.{digits}f}-{ci[1]:.{digits}f}"
