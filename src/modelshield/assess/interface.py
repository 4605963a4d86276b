"""The seams of the assessment: the model interface every adapter implements, the query
ledger that counts predictions, and the errors.

Errors (one base, as the rest of modelshield)::

    ModelshieldError
    └── AssessError            the assessment cannot start: what to fix is in the message
        ├── DataError          the data file: missing column, wrong types, unreadable
        └── ModelError         the model: cannot be opened, raised, timed out, bad output

A ``ModelError`` raised while a check runs does not end the run: the check is recorded as an
error (the report says which check and why, and the run exits 2), and the other checks go on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from msgspec import Struct

from modelshield.core.errors import ModelshieldError
from modelshield.core.measurements import QueryCount

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


class AssessError(ModelshieldError):
    """The assessment cannot run as asked."""


class DataError(AssessError):
    """The data file cannot be used: the message names the file, the column and the problem."""


class ModelError(AssessError):
    """The model cannot be opened, or a prediction failed (raised, timed out, bad output)."""


class Skipped(Exception):
    """Raised by a check that does not apply (no probabilities, no training data...): the
    report lists it as skipped with the message."""


class RawPrediction(Struct, frozen=True):
    """What an adapter returns for a batch of rows."""

    labels: Any
    """Predicted labels (classification) or values (regression): a 1-D array-like."""
    proba: Any = None
    """Classification: probabilities, one row per input and one column per class in
    :attr:`Model.classes` order; None when the model gives labels only."""


class Model(Protocol):
    """One small interface for every kind of model: a batch of rows in, predictions out."""

    kind: str
    """``sklearn``, ``lightgbm``, ``onnx``, ``torchscript``, ``callable`` or ``http``."""
    classes: tuple[Any, ...] | None
    """The model's classes in the order of its probabilities; None when it does not say."""
    features: tuple[str, ...] | None
    """The columns it reads, in order; None: every column but the target (and ignored ones)."""

    def predict(self, rows: pd.DataFrame) -> RawPrediction:
        """Predict one batch (the runner batches and counts calls)."""
        ...


class Prediction(Struct, frozen=True):
    """Predictions normalised by the runner: class indices (or values) and probabilities."""

    labels: np.ndarray[Any, Any]
    """Classification: the index of the predicted class in the assessment's classes (-1 for a
    label the model gave that the data never had); regression: float values."""
    proba: np.ndarray[Any, Any] | None = None
    """Classification: probabilities per class (the assessment's class order), or None."""


class _Tally:
    __slots__ = ("calls", "rows", "seconds")

    def __init__(self) -> None:
        self.calls = 0
        self.rows = 0
        self.seconds = 0.0


class QueryLedger:
    """Counts calls and rows per check: every prediction goes through it."""

    def __init__(self) -> None:
        """An empty ledger; predictions outside any check count under ``setup``."""
        self._tallies: dict[str, _Tally] = {}
        self.current = "setup"

    @contextmanager
    def check(self, name: str) -> Iterator[None]:
        """Count what happens inside the block under ``name``, with its wall-clock time."""
        previous, self.current = self.current, name
        tally = self._tallies.setdefault(name, _Tally())
        start = time.perf_counter()
        try:
            yield
        finally:
            tally.seconds += time.perf_counter() - start
            self.current = previous

    def count(self, rows: int) -> None:
        """One call of ``rows`` rows, under the current check."""
        tally = self._tallies.setdefault(self.current, _Tally())
        tally.calls += 1
        tally.rows += rows

    def rows(self, name: str) -> int:
        """Rows predicted so far under ``name``."""
        tally = self._tallies.get(name)
        return 0 if tally is None else tally.rows

    def counts(self) -> tuple[QueryCount, ...]:
        """Every check's count, in the order checks first counted."""
        return tuple(
            QueryCount(name, t.calls, t.rows, round(t.seconds, 6))
            for name, t in self._tallies.items()
        )
