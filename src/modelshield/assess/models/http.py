"""A model behind an HTTP endpoint: the black-box case of a vendor's model.

Request (POST, ``Content-Type: application/json``)::

    {"instances": [{"age": 31, "sex": "Female", ...}, ...]}

Response::

    {"predictions": ["Yes", "No", ...],
     "probabilities": [[0.2, 0.8], ...],     # optional, one column per class
     "classes": ["No", "Yes"]}               # required with probabilities

Each batch is one request, bounded by a timeout; a failed request (refused connection, a
status other than 200, a time-out, a body that is not this JSON) is a
:class:`~modelshield.assess.interface.ModelError` naming the endpoint and the problem.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import pandas as pd

from modelshield.assess.interface import ModelError, RawPrediction

MAX_RESPONSE_BYTES = 256 * 1024 * 1024
"""Largest response body read."""


class HttpModel:
    """A JSON endpoint."""

    kind = "http"

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        """The endpoint's URL and the time-out of one call."""
        self.url = url
        self.timeout = timeout
        self.classes: tuple[Any, ...] | None = None
        self.features: tuple[str, ...] | None = None

    def predict(self, rows: pd.DataFrame) -> RawPrediction:
        """One POST for the batch."""
        records = [
            {k: _plain(v) for k, v in zip(rows.columns, row, strict=True)}
            for row in rows.itertuples(index=False, name=None)
        ]
        body = json.dumps({"instances": records}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        except TimeoutError as e:
            raise ModelError(f"{self.url}: no answer within {self.timeout:g} s") from e
        except urllib.error.HTTPError as e:
            raise ModelError(f"{self.url}: HTTP {e.code} {e.reason}") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                raise ModelError(f"{self.url}: no answer within {self.timeout:g} s") from e
            raise ModelError(f"{self.url}: cannot reach the endpoint: {e.reason}") from e
        except OSError as e:
            raise ModelError(f"{self.url}: the request failed: {e}") from e
        if len(raw) > MAX_RESPONSE_BYTES:
            raise ModelError(f"{self.url}: the response is larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            doc = json.loads(raw)
            predictions = doc["predictions"]
        except (ValueError, KeyError, TypeError) as e:
            raise ModelError(
                f"{self.url}: the response is not JSON with a 'predictions' list ({e})"
            ) from e
        if not isinstance(predictions, list) or len(predictions) != len(rows):
            raise ModelError(
                f"{self.url}: {len(rows)} rows were sent and the response does not hold "
                f"{len(rows)} predictions"
            )
        proba = doc.get("probabilities")
        if proba is not None:
            classes = doc.get("classes")
            if not isinstance(classes, list):
                raise ModelError(f"{self.url}: 'probabilities' without a 'classes' list")
            self.classes = tuple(classes)
        return RawPrediction(np.asarray(predictions, dtype=object), proba)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
