"""What the guard asks for predictions: a hosted model, an upstream model server, or a
function given to the middleware.

A hosted model is opened by the assessment's :func:`~modelshield.assess.models.open_model`:
a file is scanned first and refused unless the scan passes under the policy (no finding at or
above its ``fail_on``, every part analysed); pickles and joblib files are then loaded only
through :func:`modelshield.loaders.load_model` (the restricted unpickler), and the native
formats (LightGBM text, XGBoost JSON, ONNX, TorchScript) by their own libraries. The loader
used and the scan's verdict are kept in :attr:`HostedPredictor.provenance`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from msgspec import Struct

from modelshield.assess.interface import Model, ModelError
from modelshield.core.errors import ConfigError
from modelshield.core.policy import Policy
from modelshield.guard._kernels import argmax


class Output(Struct, frozen=True):
    """Predictions for a batch of rows."""

    labels: list[Any]
    """One label (classification) or value (regression) per row, as JSON-ready Python values."""
    proba: Any = None
    """Probabilities (a rows x classes numpy array), when the model gives them."""


class UpstreamError(Exception):
    """The upstream model server failed: ``timeout`` is true when it did not answer in time."""

    def __init__(self, message: str, *, timeout: bool) -> None:
        """Say what happened."""
        super().__init__(message)
        self.timeout = timeout


class Provenance(Struct, frozen=True):
    """How the model was reached: for the log line at start-up and ``/admin/status``."""

    kind: str
    """The adapter (``sklearn``, ``lightgbm``, ``onnx``...), ``upstream`` or ``function``."""
    loader: str
    """The loader and its method, or the URL."""
    scanned: bool
    """The file was scanned, and passed, before it was loaded."""


def _to_python(values: Any) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(values).tolist()]


class HostedPredictor:
    """A model loaded in this process (see the module docstring)."""

    is_async = False

    def __init__(self, model: Model, names: Sequence[str], all_numeric: bool, prov: Provenance):
        """Wrap an opened model; ``names`` are the reference's features, in order."""
        from modelshield.assess.models.sklearn import SklearnModel

        self.model = model
        self.names = list(names)
        self.classes = model.classes
        self.provenance = prov
        missing = [f for f in (model.features or ()) if f not in self.names]
        if missing:
            raise ConfigError(
                f"the model reads feature(s) the reference data lacks: {', '.join(missing)}"
            )
        self._fast = isinstance(model, SklearnModel) and model.features is None and all_numeric
        self._estimator = model.estimator if isinstance(model, SklearnModel) else None
        self._proba = bool(self._fast and getattr(model, "_proba", False))
        self.takes_matrix = self._fast
        """Predicts from the float matrix alone (the rows may be left out)."""
        self._labels = (
            np.asarray(_to_python(model.classes), dtype=object)
            if model.classes is not None
            else None
        )
        self._label_list: list[Any] | None = None if self._labels is None else self._labels.tolist()

    @classmethod
    def open(cls, spec: str, policy: Policy, names: Sequence[str], all_numeric: bool) -> Any:
        """Scan and load a model file (or name a ``package.module:function``)."""
        from modelshield.assess.models import open_model

        if spec.startswith(("http://", "https://")):
            raise ConfigError("--model takes a file or a callable; use --upstream for a URL")
        opened = open_model(spec, policy, refuse_at=policy.fail_on)
        if opened.model is None:
            raise ConfigError(f"{spec}: the model was not loaded: {opened.refused}")
        prov = Provenance(opened.kind, opened.loader, opened.scan is not None)
        return cls(opened.model, names, all_numeric, prov)

    def predict_first(self, matrix: Any) -> tuple[Any, list[list[float]]] | None:
        """The first row's label and every row's probabilities as lists, for a float matrix:
        what the guard reads of an instance and its perturbed copies (the copies' labels are
        not made); the same values as :meth:`predict`'s. None when the model gives no
        probabilities from the matrix (then :meth:`predict`)."""
        if not (self._proba and self._estimator is not None and self._label_list is not None):
            return None
        plist: list[list[float]] = np.asarray(self._estimator.predict_proba(matrix)).tolist()
        return self._label_list[argmax(plist[0])], plist

    def predict(self, rows: Sequence[Sequence[Any]], matrix: Any = None) -> Output:
        """Predict rows (values in reference order); ``matrix`` is their float form when every
        feature is numeric."""
        if self._fast and self._estimator is not None:
            x = matrix if matrix is not None else np.asarray(rows, dtype=float)
            if self._proba and self._labels is not None:
                proba = np.asarray(self._estimator.predict_proba(x))
                return Output(self._labels[np.argmax(proba, axis=1)].tolist(), proba)
            return Output(_to_python(self._estimator.predict(x)))
        import pandas as pd

        frame = pd.DataFrame([list(r) for r in rows], columns=self.names)
        if self.model.features is not None:
            frame = frame[list(self.model.features)]
        raw = self.model.predict(frame)
        probabilities = None if raw.proba is None else np.asarray(raw.proba, dtype=float)
        return Output(_to_python(raw.labels), probabilities)


class FunctionPredictor:
    """A Python function ``rows (list of dicts) -> predictions``: for the middleware."""

    is_async = False
    takes_matrix = False
    classes: tuple[Any, ...] | None = None

    def __init__(self, fn: Callable[[list[dict[str, Any]]], Sequence[Any]], names: Sequence[str]):
        """Wrap ``fn``; predictions that are lists of numbers are read as probabilities."""
        self.fn = fn
        self.names = list(names)
        self.provenance = Provenance("function", getattr(fn, "__qualname__", "function"), False)

    def predict(self, rows: Sequence[Sequence[Any]], matrix: Any = None) -> Output:
        """Call the function on the rows as dicts."""
        out = list(self.fn([dict(zip(self.names, r, strict=True)) for r in rows]))
        return read_predictions(out, len(rows))


def read_predictions(predictions: Any, expected: int) -> Output:
    """KServe v1 ``predictions``: labels, values, or lists of probabilities."""
    if not isinstance(predictions, list) or len(predictions) != expected:
        raise ModelError(
            f"the model answered {type(predictions).__name__} for {expected} instance(s); "
            "expected a list with one prediction per instance"
        )
    if predictions and all(
        isinstance(p, list) and p and all(isinstance(v, int | float) for v in p)
        for p in predictions
    ):
        try:
            proba = np.asarray(predictions, dtype=float)
        except ValueError as e:
            raise ModelError(f"the model answered probability lists of unequal length: {e}") from e
        return Output(np.argmax(proba, axis=1).tolist(), proba)
    for p in predictions:
        if not (p is None or isinstance(p, str | int | float | bool)):
            raise ModelError("the model answered a prediction that is not a label or a value")
        if isinstance(p, float) and not math.isfinite(p):
            raise ModelError("the model answered a prediction that is not finite")
    return Output(list(predictions))


CALIBRATION_BATCH = 256
"""Rows per request when the guard calibrates on an upstream at start-up."""


class UpstreamPredictor:
    """An existing model server speaking KServe v1 JSON at ``url`` (httpx, pooled)."""

    is_async = True
    takes_matrix = False
    classes: tuple[Any, ...] | None = None

    def __init__(self, url: str, names: Sequence[str], timeout: float) -> None:
        """Proxy to ``url``; a call waits at most ``timeout`` seconds."""
        try:
            import httpx
        except ImportError as e:  # pragma: no cover - a dependency of the extra
            from modelshield.core.errors import MissingExtraError

            raise MissingExtraError("proxying to --upstream", "guard", "httpx") from e
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"--upstream {url!r}: give an http(s):// URL")
        self.url = url
        self.names = list(names)
        self.timeout = timeout
        self._httpx = httpx
        self._client: Any = None
        self.provenance = Provenance("upstream", url, False)

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = self._httpx.AsyncClient(
                timeout=self._httpx.Timeout(self.timeout),
                limits=self._httpx.Limits(max_connections=64, max_keepalive_connections=32),
            )
        return self._client

    async def apredict(self, rows: Sequence[Sequence[Any]], matrix: Any = None) -> Output:
        """POST the rows as instances; read the predictions."""
        import msgspec

        body = msgspec.json.encode(
            {"instances": [dict(zip(self.names, r, strict=True)) for r in rows]}
        )
        try:
            response = await self._get_client().post(
                self.url, content=body, headers={"content-type": "application/json"}
            )
        except self._httpx.TimeoutException as e:
            raise UpstreamError(
                f"the upstream did not answer in {self.timeout:g} s", timeout=True
            ) from e
        except self._httpx.HTTPError as e:
            raise UpstreamError(
                f"the upstream is unreachable: {type(e).__name__}", timeout=True
            ) from e
        if response.status_code != 200:
            raise UpstreamError(f"the upstream answered HTTP {response.status_code}", timeout=False)
        try:
            data = msgspec.json.decode(response.content)
            return read_predictions(data.get("predictions"), len(rows))
        except (msgspec.DecodeError, AttributeError, ModelError) as e:
            raise UpstreamError(
                f"the upstream's answer is not KServe v1 JSON: {e}", timeout=False
            ) from e

    def predict(self, rows: Sequence[Sequence[Any]], matrix: Any = None) -> Output:
        """Synchronous call, in batches of :data:`CALIBRATION_BATCH` rows (calibration at
        start-up)."""
        import asyncio

        async def batches() -> Output:
            labels: list[Any] = []
            probas: list[Any] = []
            try:
                for i in range(0, len(rows), CALIBRATION_BATCH):
                    out = await self.apredict(rows[i : i + CALIBRATION_BATCH])
                    labels.extend(out.labels)
                    probas.append(out.proba)
            finally:
                await self.aclose()
            if probas and all(p is not None for p in probas):
                return Output(labels, np.vstack(probas))
            return Output(labels)

        return asyncio.run(batches())

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
