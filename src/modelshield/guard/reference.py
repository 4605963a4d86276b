"""What normal traffic looks like, learned from the reference data.

:func:`fit_reference` reads the reference data once (CSV or Parquet, with the assessment's
column kinds) and keeps, per feature: the schema (kind, required, nullable, range, categories,
learned or declared in ``[guard.schema] features``), the drift histogram (numeric features:
quantile bins plus a bin for missing values; categorical ones: the levels seen, one bin for
the others and one for missing values) and what the out-of-distribution score needs. Every
per-request computation here is plain Python over a handful of numbers or one small numpy
product: microseconds, never a pass over the reference data.

Out-of-distribution score, calibrated so that reference rows get uniform p-values:

* per feature: a numeric value's two-sided tail share in the reference sample, a category's
  rarity (the share of reference rows whose value is at most as frequent; 0 for an unseen
  value); the instance's score is the smallest over its features;
* multivariate: the Mahalanobis distance of the numeric features (covariance shrunk towards
  its diagonal, so that collinear features do not blow it up);
* each score becomes a p-value: the share of reference rows at least as unusual.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from msgspec import Struct

from modelshield.core.guard_settings import DeclaredFeature, SchemaCheck

MAX_LEVELS = 50
"""Categories tracked per feature for drift (the most frequent); the rest share a bin."""
NUMERIC_BINS = 10
"""Quantile bins of a numeric feature's drift histogram."""
MAX_SAMPLE = 5_000
"""Reference rows kept for calibration (a seeded sample above it)."""

Array = np.ndarray[Any, Any]


class FeatureSpec(Struct, frozen=True):
    """One feature: its schema, its drift bins and reference counts."""

    name: str
    """The column name (the instance's key)."""
    kind: str
    """``numeric``, ``integer``, ``categorical`` or ``boolean``."""
    required: bool
    """Every instance must give it."""
    nullable: bool
    """It may be null (the reference has missing values)."""
    low: float | None = None
    """Smallest value the schema allows (numeric kinds)."""
    high: float | None = None
    """Largest value the schema allows (numeric kinds)."""
    categories: tuple[str, ...] | None = None
    """Values the schema allows (categorical, boolean); None: any."""
    edges: tuple[float, ...] = ()
    """Numeric: inner edges of the drift bins (value v goes to ``bisect_right(edges, v)``)."""
    levels: tuple[str, ...] = ()
    """Categorical: the levels with a drift bin of their own."""
    counts: tuple[int, ...] = ()
    """Reference histogram: the bins above, then (categorical) one for other values, then one
    for missing values."""

    @property
    def numeric(self) -> bool:
        """Numeric or integer."""
        return self.kind in ("numeric", "integer")

    def bin(self, value: Any) -> int:
        """The drift bin of a value (the last bin: missing)."""
        if value is None:
            return len(self.counts) - 1
        if self.numeric:
            try:
                v = float(value)
            except (TypeError, ValueError):
                return len(self.counts) - 1
            if v != v:  # NaN
                return len(self.counts) - 1
            return bisect_right(self.edges, v)
        key = _text(value)
        try:
            return self.levels.index(key)
        except ValueError:
            return len(self.levels)


class Reference:
    """The fitted reference: feature specs, calibration of the scores, drift histograms."""

    def __init__(
        self,
        features: Sequence[FeatureSpec],
        sample: Array,
        frequencies: Mapping[str, Mapping[str, float]],
        source: str,
        rows: int,
        categorical: Sequence[Sequence[Any]] = (),
    ) -> None:
        """Build from specs, the numeric sample (rows x numeric features, NaN for missing)
        and the categorical sample (one list per categorical feature); use
        :func:`fit_reference`."""
        self.features = tuple(features)
        self.source = source
        self.rows = rows
        self.names = tuple(f.name for f in self.features)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.numeric = tuple(i for i, f in enumerate(self.features) if f.numeric)
        self.all_numeric = all(f.kind != "categorical" for f in self.features)
        self._freq = {k: dict(v) for k, v in frequencies.items()}
        self._rarity = {k: _rarity(v) for k, v in self._freq.items()}
        x = sample
        filled = np.where(np.isfinite(x), x, np.nanmean(x, axis=0) if x.size else 0.0)
        self.center = np.nanmedian(x, axis=0) if x.size else np.zeros(0)
        self.center = np.nan_to_num(self.center)
        std = np.nanstd(x, axis=0) if x.size else np.ones(0)
        self.scale = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        self._sorted = [np.sort(x[:, j][np.isfinite(x[:, j])]).tolist() for j in range(x.shape[1])]
        # Multivariate: standardised, covariance shrunk towards the identity.
        self.mean = np.nan_to_num(np.nanmean(x, axis=0)) if x.size else np.zeros(0)
        z = (filled - self.mean) / self.scale
        d = z.shape[1]
        if d and len(z) > 1:
            cov = np.cov(z, rowvar=False).reshape(d, d)
            shrunk = 0.9 * cov + 0.1 * np.eye(d)
            self._precision = np.linalg.pinv(shrunk)
        else:
            self._precision = np.eye(d)
        self._d2_sorted = np.sort(self._mahalanobis(z)).tolist() if len(z) else []
        # Per-feature score of each reference row, then its distribution.
        scores = [self._feature_score_row(x[i]) for i in range(len(x))]
        cats = [f.name for f in self.features if not f.numeric]
        for name, column in zip(cats, categorical, strict=True):
            rarity = self._rarity[name]
            for i, v in enumerate(column):
                if v is not None and not (isinstance(v, float) and v != v):
                    scores[i] = min(scores[i], rarity.get(_text(v), 0.0))
        self._s_sorted = sorted(scores)

    # ---- per instance ------------------------------------------------------------------
    def numeric_vector(self, values: Sequence[Any]) -> list[float]:
        """The numeric features of an instance (in reference order) as floats, NaN missing."""
        out: list[float] = []
        for j in self.numeric:
            v = values[j]
            try:
                out.append(float(v) if v is not None else math.nan)
            except (TypeError, ValueError):
                out.append(math.nan)
        return out

    def ood_pvalues(self, values: Sequence[Any], num: Sequence[float]) -> tuple[float, float]:
        """Calibrated p-values of an instance: per feature and multivariate."""
        s = self._feature_score(values, num)
        n = len(self._s_sorted)
        p_feature = (1 + bisect_right(self._s_sorted, s)) / (n + 1) if n else 1.0
        if self.numeric and self._d2_sorted:
            z = np.array(
                [
                    (v - m) / sc if v == v else 0.0
                    for v, m, sc in zip(num, self.mean.tolist(), self.scale.tolist(), strict=True)
                ]
            )
            with np.errstate(all="ignore"):
                d2 = float(z @ self._precision @ z)
            if d2 != d2:  # NaN from inf - inf: as far out as it gets
                d2 = math.inf
            m = len(self._d2_sorted)
            p_multi = (1 + m - bisect_left(self._d2_sorted, d2)) / (m + 1)
        else:
            p_multi = 1.0
        return min(p_feature, 1.0), min(p_multi, 1.0)

    def _feature_score(self, values: Sequence[Any], num: Sequence[float]) -> float:
        smallest = 1.0
        for k in range(len(self.numeric)):
            v = num[k]
            if v != v:
                continue
            sample = self._sorted[k]
            n = len(sample)
            if not n:
                continue
            below = bisect_left(sample, v) / n
            above = (n - bisect_right(sample, v)) / n
            p = 2.0 * min(below + (1 - below - above) / 2, above + (1 - below - above) / 2)
            smallest = min(smallest, p)
        for j, f in enumerate(self.features):
            if not f.numeric:
                v = values[j]
                if v is None:
                    continue
                smallest = min(smallest, self._rarity[f.name].get(_text(v), 0.0))
        return smallest

    def _feature_score_row(self, row: Array) -> float:
        smallest = 1.0
        for k in range(len(self.numeric)):
            v = float(row[k])
            if v != v:
                continue
            sample = self._sorted[k]
            n = len(sample)
            below = bisect_left(sample, v) / n
            above = (n - bisect_right(sample, v)) / n
            p = 2.0 * min(below + (1 - below - above) / 2, above + (1 - below - above) / 2)
            smallest = min(smallest, p)
        return smallest

    def _mahalanobis(self, z: Array) -> Array:
        out: Array = np.einsum("ij,jk,ik->i", z, self._precision, z)
        return out

    def drift_spec(self) -> dict[str, Any]:
        """What the report needs to compute drift without the reference file: every feature's
        kind, bins and reference counts."""
        return {
            "source": self.source,
            "rows": self.rows,
            "features": [
                {
                    "name": f.name,
                    "kind": f.kind,
                    "edges": list(f.edges),
                    "levels": list(f.levels),
                    "counts": list(f.counts),
                }
                for f in self.features
            ],
        }


def _text(value: Any) -> str:
    """A category as text: ``True``/``False`` as ``true``/``false``, integral floats as ints."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, np.bool_):
        return "true" if bool(value) else "false"
    return str(value)


def _rarity(freq: Mapping[str, float]) -> dict[str, float]:
    """For each level, the share of rows whose level is at most as frequent."""
    ordered = sorted(freq.values())
    out: dict[str, float] = {}
    for level, share in freq.items():
        out[level] = sum(s for s in ordered if s <= share)
    return out


def fit_reference(
    path: str,
    schema: SchemaCheck,
    *,
    target: str | None = None,
    drop: Sequence[str] = (),
    seed: int = 0,
) -> tuple[Reference, Any]:
    """Fit the reference from a CSV or Parquet file; also return the sample as a data frame
    (the rows the model is calibrated on)."""
    import pandas as pd

    from modelshield.assess.data import read_table

    table = read_table(path)
    table.columns = pd.Index([str(c) for c in table.columns])
    return fit_frame(table, schema, source=path, target=target, drop=drop, seed=seed)


def fit_frame(
    table: Any,
    schema: SchemaCheck,
    *,
    source: str = "<frame>",
    target: str | None = None,
    drop: Sequence[str] = (),
    seed: int = 0,
) -> tuple[Reference, Any]:
    """Fit the reference from a data frame (see :func:`fit_reference`)."""
    import pandas as pd

    from modelshield.assess.data import infer_kind
    from modelshield.assess.interface import DataError

    unwanted = [c for c in (target, *drop) if c is not None]
    for c in unwanted:
        if c not in table.columns:
            raise DataError(f"{source}: no column {c!r}")
    frame = table.drop(columns=unwanted)
    if frame.shape[1] == 0 or len(frame) == 0:
        raise DataError(f"{source}: the reference data has no feature column or no row")
    rows = len(frame)
    if rows > MAX_SAMPLE:
        frame = frame.sample(n=MAX_SAMPLE, random_state=seed)
    frame = frame.reset_index(drop=True)
    for name in schema.features:
        if name not in frame.columns:
            raise DataError(f"{source}: [guard.schema] declares {name!r}, not in the reference")
    specs: list[FeatureSpec] = []
    freqs: dict[str, dict[str, float]] = {}
    numeric_columns: list[Array] = []
    for name in frame.columns:
        column = frame[name]
        declared = schema.features.get(name, DeclaredFeature())
        kind = declared.kind or infer_kind(column)
        missing = bool(column.isna().any())
        required = declared.required if declared.required is not None else True
        spec_kwargs: dict[str, Any] = {}
        if kind in ("numeric", "integer"):
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            if not len(finite):
                raise DataError(f"{source}: column {name!r} has no numeric value")
            low, high = float(finite.min()), float(finite.max())
            slack = schema.range_tolerance * (high - low)
            edges = sorted(set(np.quantile(finite, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1])))
            counts = np.bincount(
                np.searchsorted(np.asarray(edges), finite, side="right"), minlength=len(edges) + 1
            ).tolist()
            spec_kwargs.update(
                low=declared.min if declared.min is not None else low - slack,
                high=declared.max if declared.max is not None else high + slack,
                edges=tuple(float(e) for e in edges),
                counts=(*counts, int(len(values) - len(finite))),
            )
            numeric_columns.append(values)
        else:
            texts = [_text(v) for v in column.dropna().tolist()]
            share: dict[str, float] = {}
            for t in texts:
                share[t] = share.get(t, 0) + 1
            total = max(len(texts), 1)
            freqs[name] = {k: v / total for k, v in share.items()}
            levels = tuple(sorted(share, key=lambda k: (-share[k], k))[:MAX_LEVELS])
            other = sum(v for k, v in share.items() if k not in levels)
            categories = (
                declared.categories if declared.categories is not None else tuple(sorted(share))
            )
            spec_kwargs.update(
                categories=tuple(categories),
                levels=levels,
                counts=(*(int(share[k]) for k in levels), int(other), int(column.isna().sum())),
            )
        specs.append(
            FeatureSpec(name=name, kind=kind, required=required, nullable=missing, **spec_kwargs)
        )
    sample = np.column_stack(numeric_columns) if numeric_columns else np.zeros((len(frame), 0))
    categorical = [frame[f.name].tolist() for f in specs if not f.numeric]
    return Reference(specs, sample, freqs, source, rows, categorical), frame
