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
from statistics import NormalDist
from typing import Any

import numpy as np
from msgspec import Struct

from modelshield.core.guard_settings import DeclaredFeature, SchemaCheck
from modelshield.guard import _kernels

MAX_LEVELS = 50
"""Categories tracked per feature for drift (the most frequent); the rest share a bin."""
NUMERIC_BINS = 10
"""Quantile bins of a numeric feature's drift histogram."""
MAX_SAMPLE = 5_000
"""Reference rows kept for calibration (a seeded sample above it)."""
WHITENED_MAX_FEATURES = 64
"""Up to this many numeric features, every squared Mahalanobis distance (the reference's and
each request's) is one function's, in plain Python, on the whitened form (see
:meth:`Reference._scores_one`); above it, the batch form's ``einsum`` and its order."""

Array = np.ndarray[Any, Any]
_NORMAL = NormalDist()


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
            except (TypeError, ValueError, OverflowError):
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
        # Per feature: robust z-scores (median, IQR / 1.349; the spread when the IQR is 0).
        if x.size:
            q25, q75 = np.nanquantile(x, [0.25, 0.75], axis=0)
            iqr = np.nan_to_num(q75 - q25) / 1.349
        else:
            iqr = np.ones(0)
        self._rscale = np.where(iqr > 0, iqr, self.scale)
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
        # The whitened form: rows W (W'W = the precision, from its eigenvectors) with the
        # standardisation folded in, z'Pz = |W diag(1/scale) (x - mean)|^2; each row carries
        # its constant as a last coefficient, for x extended by 1.
        self._whitened: list[list[float]] | None = None
        if 0 < d <= WHITENED_MAX_FEATURES:
            values, vectors = np.linalg.eigh((self._precision + self._precision.T) / 2)
            w = np.sqrt(np.clip(values, 0.0, None))[:, None] * vectors.T / self.scale
            self._whitened = np.hstack([w, -(w @ self.mean)[:, None]]).tolist()
        self._cats = [(j, f.name) for j, f in enumerate(self.features) if not f.numeric]
        ref_rows = [[None] * len(self.features) for _ in range(len(x))]
        for (j, _name), column in zip(self._cats, categorical, strict=True):
            for i, v in enumerate(column):
                ref_rows[i][j] = None if isinstance(v, float) and v != v else v
        self._u_sorted = np.zeros(0)
        self._d2_sorted = np.zeros(0)
        u, d2 = self._scores(ref_rows, x)
        self._u_sorted = np.sort(u)
        self._d2_sorted = np.sort(d2) if d else np.zeros(0)
        self._u_list: list[float] = self._u_sorted.tolist()
        self._center_list: list[float] = self.center.tolist()
        self._rscale_list: list[float] = self._rscale.tolist()
        self._mean_list: list[float] = self.mean.tolist()
        self._scale_list: list[float] = self.scale.tolist()
        self._d2_list: list[float] = self._d2_sorted.tolist()
        self._precision_rows: list[list[float]] = self._precision.tolist()

    # ---- per instance ------------------------------------------------------------------
    def numeric_vector(self, values: Sequence[Any]) -> list[float]:
        """The numeric features of an instance (in reference order) as floats, NaN missing."""
        out: list[float] = []
        for j in self.numeric:
            v = values[j]
            try:
                out.append(float(v) if v is not None else math.nan)
            except (TypeError, ValueError, OverflowError):
                out.append(math.nan)
        return out

    def _scores(self, rows: Sequence[Sequence[Any]], num: Array) -> tuple[Array, Array]:
        """Per instance: the largest per-feature z-score (a category's rarity read as the z
        of the same two-sided tail share; an unseen one is infinitely far) and the squared
        Mahalanobis distance of the numeric features (missing values at the mean)."""
        n = len(rows)
        with np.errstate(all="ignore"):
            if num.shape[1]:
                z = np.abs((num - self.center) / self._rscale)
                # The largest z of each row, a missing value counting as 0 (z >= 0).
                u = np.fmax.reduce(z, axis=1, initial=0.0)
                if self._whitened is not None:
                    # Each row by the request path's function: the same value, bit for bit.
                    filled = np.where(np.isnan(num), self.mean, num)
                    d2 = np.array([self._d2(r) for r in filled.tolist()], dtype=float)
                else:
                    zm = np.where(np.isnan(num), 0.0, (num - self.mean) / self.scale)
                    d2 = np.einsum("ij,jk,ik->i", zm, self._precision, zm)
                    d2 = np.where(np.isnan(d2), np.inf, d2)
            else:
                u = np.zeros(n)
                d2 = np.zeros(n)
        for j, name in self._cats:
            rarity = self._rarity[name]
            for i, r in enumerate(rows):
                v = r[j]
                if v is not None:
                    share = rarity.get(_text(v), 0.0)
                    zc = math.inf if share <= 0 else _NORMAL.inv_cdf(1 - min(share, 1.0) / 2)
                    if zc > u[i]:
                        u[i] = zc
        return u, d2

    def _d2(self, x: list[float]) -> float:
        """The squared Mahalanobis distance of numeric values without NaN, whitened form
        (:func:`modelshield.guard._kernels.d2`); an infinity's NaN (inf - inf) is infinitely
        far."""
        assert self._whitened is not None
        return _kernels.d2(x, self._whitened)

    def _scores_one(self, x: list[float]) -> tuple[float, float]:
        """:meth:`_scores` of one all-numeric instance, the same values, without numpy: up
        to :data:`WHITENED_MAX_FEATURES` numeric features by
        :func:`modelshield.guard._kernels.scores_one` (its distance is :meth:`_d2`'s, the
        function the batch form applies to each row); above, element by element in the
        order of the batch form's ``einsum`` (one call of numpy costs more than the
        products)."""
        whitened = self._whitened
        if whitened is not None:
            u, d2 = _kernels.scores_one(x, self._center_list, self._rscale_list, whitened)
            if d2 == math.inf and any(v != v for v in x):  # missing values: at the mean
                d2 = _kernels.d2(
                    [m if v != v else v for v, m in zip(x, self._mean_list, strict=True)],
                    whitened,
                )
            return u, d2
        u = 0.0
        for v, c, r in zip(x, self._center_list, self._rscale_list, strict=True):
            z = abs((v - c) / r)
            if z > u:  # False for NaN: a missing value counts as 0
                u = z
        zm = [
            0.0 if v != v else (v - m) / s
            for v, m, s in zip(x, self._mean_list, self._scale_list, strict=True)
        ]
        # z' P z term by term in einsum's order (row of P by row, each product left to right,
        # one running sum): the same value as the batch form's einsum, bit for bit (tested).
        d2 = 0.0
        for zj, prow in zip(zm, self._precision_rows, strict=True):
            for p, zk in zip(prow, zm, strict=True):
                d2 += zj * p * zk
        return u, math.inf if d2 != d2 else d2

    def ood(self, rows: Sequence[Sequence[Any]], num: Array) -> tuple[Array, Array]:
        """Calibrated p-values of instances (``num``: their numeric features, n x d, NaN
        missing): per feature and multivariate, each the share of reference rows at least as
        unusual (with the usual +1 of a conformal p-value)."""
        u, d2 = self._scores(rows, num)
        n = len(self._u_sorted)
        p_feature = (1 + n - np.searchsorted(self._u_sorted, u, side="left")) / (n + 1)
        m = len(self._d2_sorted)
        if m:
            p_multi = (1 + m - np.searchsorted(self._d2_sorted, d2, side="left")) / (m + 1)
        else:
            p_multi = np.ones(len(rows))
        return p_feature, p_multi

    def ood_one(self, x: list[float]) -> tuple[float, float]:
        """:meth:`ood_lists` of one all-numeric instance given as its floats (NaN missing):
        its two p-values."""
        us, ds = self._u_list, self._d2_list
        n, m = len(us), len(ds)
        if self._cats or not x:
            num = np.array([x], dtype=float).reshape(1, len(x))
            pf, pm = self.ood_lists([x], num)
            return pf[0], pm[0]
        u, d2 = self._scores_one(x)
        return (1 + n - bisect_left(us, u)) / (n + 1), (1 + m - bisect_left(ds, d2)) / (m + 1)

    def ood_lists(
        self, rows: Sequence[Sequence[Any]], num: Array
    ) -> tuple[list[float], list[float]]:
        """:meth:`ood` as lists, the same values: the ranks by bisection of sorted lists
        (the request path's few instances: numpy's cost per call would dominate)."""
        us, ds = self._u_list, self._d2_list
        n, m = len(us), len(ds)
        if len(rows) == 1 and not self._cats and num.shape[1]:
            u, d2 = self._scores_one(num[0].tolist())
            return [(1 + n - bisect_left(us, u)) / (n + 1)], [
                (1 + m - bisect_left(ds, d2)) / (m + 1)
            ]
        uu, dd = self._scores(rows, num)
        p_feature = [(1 + n - bisect_left(us, x)) / (n + 1) for x in uu.tolist()]
        if not m:
            return p_feature, [1.0] * len(rows)
        return p_feature, [(1 + m - bisect_left(ds, x)) / (m + 1) for x in dd.tolist()]

    def numeric_matrix(self, rows: Sequence[Sequence[Any]]) -> Array:
        """The numeric features of instances as an n x d float matrix (NaN: missing or not a
        number)."""
        return np.array([self.numeric_vector(r) for r in rows], dtype=float).reshape(
            len(rows), len(self.numeric)
        )

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
