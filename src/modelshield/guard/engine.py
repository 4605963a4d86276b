"""The guard's engine: screen a request, ask for predictions, decide, record.

One engine serves both shapes: the standalone service (:mod:`modelshield.guard.app`) and
the middleware (:mod:`modelshield.guard.middleware`). Per request, in this order:

1. **rate** (per client token bucket), before the body is even decoded;
2. **decoding**: KServe v1 JSON, ``{"instances": [{feature: value}, ...]}`` (or positional
   lists in the reference's column order). Malformed JSON is a 400; valid JSON of another
   shape (unknown top-level keys, values that are not scalars, i.e. any nesting deeper than
   instance values, numbers beyond a 64-bit integer or a float, more than ``max_instances``
   instances, ``max_fields`` fields or ``max_string_length`` characters) is a 422, decided
   by a typed decoder that never builds what it refuses;
3. **schema**: types, required fields, ranges, categories, unknown fields;
4. **ood**: calibrated per-feature and multivariate p-values;
5. **extraction**, for a client already showing the signals;
6. the **model**, with ``perturbations`` randomised copies of each instance in the same call;
7. **adversarial**: the instability of the prediction under those copies, calibrated;
8. **extraction** signals updated with this request.

A check that fires applies its ``action`` (``allow`` records it, ``flag`` serves and marks
the decision, ``block`` refuses: 429 for the rate, 422 for the schema, 403 otherwise); a
check that raises applies its ``on_error`` (``open``: served, the reason
``check-error:<check>`` recorded; ``closed``: blocked, 503). Every request gets one record.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import logging
import math
import os
import random
import threading
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import numpy as np
from msgspec import Meta

from modelshield.core.errors import ConfigError
from modelshield.core.guard_settings import GuardSettings
from modelshield.guard import _kernels
from modelshield.guard._kernels import Windows, distance, instability_one, read_numeric
from modelshield.guard.log import DecisionLog, Pending, now_us
from modelshield.guard.metrics import Metrics
from modelshield.guard.predictors import Output, UpstreamError
from modelshield.guard.reference import FeatureSpec, Reference, _text

if TYPE_CHECKING:
    from modelshield.guard.logproc import ProcessLog

logger = logging.getLogger("modelshield.guard")

CHECKS: tuple[str, ...] = ("rate", "schema", "ood", "extraction", "adversarial")
"""The screening checks, in the order they run."""

MAX_CLIENTS = 100_000
"""Clients whose state (rate bucket, extraction windows) is kept; the oldest go first."""
UNUSUAL_P = 0.05
"""An instance whose smaller OOD p-value is below this counts as unusual for extraction."""
CALIBRATION_ROWS = 2_000
"""Reference rows predicted at start-up to calibrate the model-dependent scores."""
NOISE_POOL = 8_192
"""Rows of pre-drawn Gaussian noise the perturbations are taken from."""

KERNELS_COMPILED = not str(_kernels.__file__).endswith(".py")
"""Whether the arithmetic kernels (:mod:`modelshield.guard._kernels`) run compiled by mypyc
(``make dev``, ``scripts/build_kernels.py``) or as plain Python: the same results, the
compiled form faster."""

_COPIES = Output([])
"""The perturbed copies' output when their probabilities come as lists alone (see
:meth:`Guard._predict_one`)."""

_BLOCK_STATUS = {"rate": 429, "schema": 422}
_encode = msgspec.json.encode
_UUID_V7 = (7 << 76) | (2 << 62)
_UUID_MASK = ((1 << 80) - 1) ^ (0xF << 76) ^ (0x3 << 62)
_UUID_V7_LOW = _UUID_V7 & ((1 << 80) - 1)


_RANDOM_IDS = 256
"""Request ids whose random bits are read from the system, and formatted, in one go."""


class _Ids:
    """Version 7 UUIDs as text (see :func:`_new_id`). The random tails of
    :data:`_RANDOM_IDS` ids are read from the system and formatted at once, and the time's
    text once per millisecond: an id is then two strings joined (a system call, or the
    formatting of a whole UUID, per request cost more than the rest of the id)."""

    __slots__ = ("lock", "ms", "prefix", "tails")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ms = -1
        self.prefix = ""
        self.tails: list[str] = []

    def take(self) -> str:
        with self.lock:
            ms = time.time_ns() // 1_000_000
            if ms != self.ms:
                h = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
                self.ms, self.prefix = ms, f"{h[:8]}-{h[8:]}-"
            tails = self.tails
            if not tails:
                tails.extend(_tails(os.urandom(10 * _RANDOM_IDS)))
            return self.prefix + tails.pop()

    def forget(self) -> None:
        """After a fork: the child draws its own."""
        self.tails = []
        self.lock = threading.Lock()


def _tails(bits: bytes) -> list[str]:
    """The last three groups of version 7 UUIDs (``7xxx-Vxxx-xxxxxxxxxxxx``: the version,
    74 random bits, the RFC 4122 variant), one per 10 bytes of ``bits``."""
    out = []
    for at in range(0, len(bits) - 9, 10):
        h = f"{int.from_bytes(bits[at : at + 10]) & _UUID_MASK | _UUID_V7_LOW:020x}"
        out.append(f"{h[:4]}-{h[4:8]}-{h[8:]}")
    return out


_IDS = _Ids()
os.register_at_fork(after_in_child=_IDS.forget)


def _new_id() -> str:
    """A time-ordered (version 7, RFC 9562) UUID as text: the Unix time in milliseconds, then
    74 random bits. Ids made one after the other sort together, so that the decision log's
    index on ``request_id`` grows at its end instead of at a random page per record (a random
    id dirtied one index page per record, and the cost of a write grew with the table)."""
    return _IDS.take()


_NUMERIC, _INTEGER, _BOOLEAN, _CATEGORICAL = range(4)


def _schema_row(f: FeatureSpec) -> tuple[Any, ...]:
    """What the schema check of one feature needs, looked up once: its kind as a number,
    whether a missing value is a violation, the range (unbounded: infinite), the categories
    (a set) and the reasons it may give."""
    kind = {"numeric": _NUMERIC, "integer": _INTEGER, "boolean": _BOOLEAN}.get(f.kind, _CATEGORICAL)
    return (
        kind,
        f.required and not f.nullable,
        -math.inf if f.low is None else f.low,
        math.inf if f.high is None else f.high,
        None if f.categories is None else frozenset(f.categories),
        f"schema:missing:{f.name}",
        f"schema:type:{f.name}",
        f"schema:range:{f.name}",
        f"schema:category:{f.name}",
    )


class Answer(msgspec.Struct):
    """What to send back: status, JSON body, extra headers."""

    status: int
    """HTTP status."""
    body: bytes
    """The JSON body."""
    headers: list[tuple[bytes, bytes]]
    """Extra headers (``x-request-id``, ``retry-after``)."""
    prediction: Any = None
    """The predictions served (the middleware's copy of the app's answer)."""


class Tokens:
    """Bearer tokens per role, compared in constant time (SHA-256 digests, every token of the
    role compared, no early exit). The name of a predict token is the client's id."""

    ROLES: tuple[str, ...] = ("predict", "feedback", "read", "admin")
    """Roles: each endpoint takes the tokens of one role only."""
    MIN_LENGTH = 16
    """Shortest token accepted."""

    def __init__(self, table: dict[str, dict[str, str]]) -> None:
        """``{role: {name: token}}``; a token used by two roles is an error."""
        unknown = sorted(set(table) - set(self.ROLES))
        if unknown:
            raise ConfigError(f"tokens: unknown role(s) {', '.join(unknown)}")
        self._digests: dict[str, list[tuple[str, bytes]]] = {r: [] for r in self.ROLES}
        seen: dict[bytes, str] = {}
        for role, names in table.items():
            if not isinstance(names, dict):
                raise ConfigError(f"tokens: [{role}] must be a table of name = token")
            for name, token in names.items():
                if not isinstance(token, str) or len(token) < self.MIN_LENGTH:
                    raise ConfigError(
                        f"tokens: {role}.{name} must be a string of at least "
                        f"{self.MIN_LENGTH} characters"
                    )
                digest = hashlib.sha256(token.encode()).digest()
                if digest in seen:
                    raise ConfigError(
                        f"tokens: {role}.{name} is also a {seen[digest]} token: give each "
                        "role its own"
                    )
                seen[digest] = role
                self._digests[role].append((str(name)[:128], digest))

    @classmethod
    def from_file(cls, path: str) -> Tokens:
        """Read a TOML file: ``[predict] alice = "..."``, ``[read]``, ``[feedback]``,
        ``[admin]``."""
        import tomllib
        from pathlib import Path

        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read the tokens file {path}: {e}") from e
        return cls(data)

    def has(self, role: str) -> bool:
        """Whether any token of the role exists."""
        return bool(self._digests[role])

    def check(self, role: str, authorization: bytes | None) -> str | None:
        """The name of the token given (``Authorization: Bearer ...``), or None."""
        if not authorization or authorization[:7].lower() != b"bearer ":
            return None
        digest = hashlib.sha256(authorization[7:].strip()).digest()
        found = None
        for name, known in self._digests[role]:
            if hmac.compare_digest(digest, known) and found is None:
                found = name
        return found


class ClientState:
    """Per-client state: the rate bucket and the extraction windows."""

    __slots__ = ("flagged", "last", "queries", "stamp", "tokens", "windows")

    def __init__(self, burst: float, window: int) -> None:
        """A full bucket, empty windows."""
        self.tokens = burst
        self.stamp = time.monotonic()
        self.windows = Windows(window)
        self.last: list[float] | None = None
        self.flagged: str | None = None
        self.queries = 0


SIGNALS: tuple[str, ...] = ("sweep", "boundary", "steps")
"""Extraction signals: unusual queries (a sweep of the input space), queries close to the
decision boundary, and tiny steps from the client's previous query (a line search)."""


class Calibration(msgspec.Struct):
    """What start-up predictions on the reference taught: the prediction histogram, the
    margins, the instability, and the base rates of the extraction signals."""

    prediction: FeatureSpec
    """The prediction's drift bins and reference counts."""
    classification: bool
    """The model predicts classes."""
    margins: list[float]
    """Sorted top-two probability margins of reference rows (classification with proba)."""
    instability: list[float]
    """Sorted instability scores of reference rows."""
    prediction_scale: float
    """Spread of reference predictions (regression instability unit)."""
    step_threshold: float
    """A step to the next query shorter than this (standardised) is tiny."""
    base_rates: tuple[float, float, float]
    """Each extraction signal's share on reference traffic."""


def build_decoder(settings: GuardSettings) -> msgspec.json.Decoder[Any]:
    """The typed decoder of a predict body (see the module docstring)."""
    text = Annotated[str, Meta(max_length=settings.max_string_length)]
    # JSON integers have no bound; one outside 64 bits fits no model input (nor a float, nor
    # the log writer's frames): refused here, as a number too large for a float already is.
    whole = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
    scalar = text | whole | float | bool | None
    key = Annotated[str, Meta(max_length=256)]
    instance = (
        Annotated[dict[key, scalar], Meta(max_length=settings.max_fields)]
        | Annotated[list[scalar], Meta(max_length=settings.max_fields)]
    )
    request = msgspec.defstruct(
        "PredictRequest",
        [
            (
                "instances",
                Annotated[
                    list[instance],
                    Meta(min_length=1, max_length=settings.max_instances),
                ],
            )
        ],
        forbid_unknown_fields=True,
    )
    return msgspec.json.Decoder(request)


class Guard:
    """The engine: reference, settings, predictor, decision log, metrics, client state."""

    def __init__(
        self,
        reference: Reference,
        settings: GuardSettings,
        predictor: Any,
        log: DecisionLog | ProcessLog | None,
        *,
        seed: int | None = None,
    ) -> None:
        """Assemble; call :meth:`calibrate` before serving when there is a predictor.
        ``seed`` (default: ``[guard.adversarial] seed``) seeds the perturbations; unset, they
        come from the operating system."""
        self.reference = reference
        self.settings = settings
        self.predictor = predictor
        self.log = log
        self.metrics = Metrics([*reference.names, "prediction"])
        if log is not None:
            self.metrics.watch_log(self._log_values)
        self.decoder = build_decoder(settings)
        self.clients: dict[str, ClientState] = {}
        self.calibration: Calibration | None = None
        if seed is None:
            seed = settings.adversarial.seed
        # The guard's own generators (not the random module's, which the host application of
        # the middleware shares): numpy's for the noise pool, Python's for the offsets into it.
        self._rng = np.random.default_rng(seed)
        self._random = random.Random(seed)
        self._randrange = self._random.randrange
        self._counts: dict[int, list[list[int]]] = {}
        self._seen: dict[int, tuple[list[list[Any]], list[Any]]] = {}
        self._window_us = settings.window_seconds * 1_000_000
        self._names = reference.names
        self._index = reference.index
        self._features = reference.features
        self._numeric_scale = reference.scale.tolist()
        noise = np.zeros(len(self._names))
        integer = np.zeros(len(self._names), dtype=bool)
        for k, j in enumerate(reference.numeric):
            noise[j] = settings.adversarial.noise * self._numeric_scale[k]
            integer[j] = self._features[j].kind == "integer"
        self._noise = noise
        self._integer = integer
        self._any_integer = bool(integer.any())
        self._numeric_index = list(reference.numeric)
        self._all_numeric_columns = self._numeric_index == list(range(len(self._names)))
        self._schema_rows = tuple(_schema_row(f) for f in self._features)
        # The schema reading's shortcut for one numeric instance (_kernels.read_numeric):
        # every feature numeric, the check on, and its bounds floats exactly.
        self._name_list = list(self._names)
        self._lows = [float(row[2]) for row in self._schema_rows]
        self._highs = [float(row[3]) for row in self._schema_rows]
        self._integral = [row[0] == _INTEGER for row in self._schema_rows]
        self._read_numeric = (
            settings.schema.enabled
            and self._all_numeric_columns
            and reference.all_numeric
            and all(row[0] in (_NUMERIC, _INTEGER) for row in self._schema_rows)
            and self._lows == [row[2] for row in self._schema_rows]
            and self._highs == [row[3] for row in self._schema_rows]
        )
        # Standard normal draws made once, read from a random offset per request: a draw per
        # request costs more than the rest of the adversarial check.
        self._pool = self._rng.standard_normal((NOISE_POOL, len(self._names)))
        # The same draws times the noise scale, multiplied once.
        self._pool_scaled = self._pool * noise
        self._blocks: Any = None
        self._blocks_k = 0
        self._redact = frozenset(settings.redact)
        self._log_record: Any = getattr(log, "record", None)
        if self._log_record is not None and log is not None:
            log.describe(self._names, self._redact)  # type: ignore[union-attr]
        self._margin_for: Calibration | None = None
        self._base_rates: list[float] = []
        self._margin_threshold: float | None = None
        self.alerter: Any = None
        self._lock = threading.Lock()
        self.in_flight = 0
        """Requests inside :meth:`process` now (see :meth:`process` on phases)."""

    # ---- calibration -------------------------------------------------------------------
    def calibrate(self, frame: Any) -> None:
        """Predict a sample of the reference (one call, plus one for its perturbations) and
        learn the prediction histogram, margins, instability and base rates."""
        ref = self.reference
        sample = frame.head(CALIBRATION_ROWS)
        rows = [[_py(v) for v in r] for r in sample[list(ref.names)].itertuples(index=False)]
        if not rows:
            raise ConfigError("the reference data has no row to calibrate on")
        matrix = self._matrix(rows) if ref.all_numeric else None
        out = self.predictor.predict(rows, matrix)
        classification = (
            self.predictor.classes is not None
            or out.proba is not None
            or any(isinstance(v, str | bool) for v in out.labels)
            or (all(isinstance(v, int) for v in out.labels) and len(set(out.labels)) <= 20)
        )
        labels = out.labels
        if classification:
            levels = tuple(
                _text(c) for c in (self.predictor.classes or sorted(set(labels), key=str))
            )
            counts = [0] * (len(levels) + 2)
            spec = FeatureSpec("prediction", "categorical", False, True, levels=levels)
            spec = msgspec.structs.replace(spec, counts=tuple(counts))
            for v in labels:
                counts[spec.bin(v)] += 1
            spec = msgspec.structs.replace(spec, counts=tuple(counts))
            scale = 1.0
        else:
            values = np.asarray(labels, dtype=float)
            edges = sorted(set(np.quantile(values, np.linspace(0, 1, 11)[1:-1]).tolist()))
            bins = np.searchsorted(np.asarray(edges), values, side="right")
            counts = [*np.bincount(bins, minlength=len(edges) + 1).tolist(), 0]
            spec = FeatureSpec(
                "prediction", "numeric", False, True, edges=tuple(edges), counts=tuple(counts)
            )
            std = float(np.std(values))
            scale = std if std > 0 else 1.0
        margins: list[float] = []
        if out.proba is not None and out.proba.shape[1] >= 2:
            top = np.sort(out.proba, axis=1)
            margins = sorted((top[:, -1] - top[:, -2]).tolist())
        self.calibration = Calibration(spec, classification, margins, [], scale, 0.0, (0, 0, 0))
        instability: list[float] = []
        if self.settings.adversarial.enabled:
            k = self.settings.adversarial.perturbations
            perturbed = self._perturb(rows, matrix, k)
            pout = self.predictor.predict(*perturbed)
            instability = sorted(self._instability(out, pout, len(rows), k))
        # Extraction base rates on reference traffic.
        pf, pm = ref.ood(rows, ref.numeric_matrix(rows))
        unusual = int((np.minimum(pf, pm) < UNUSUAL_P).sum())
        steps: list[float] = []
        previous: list[float] | None = None
        for r in rows:
            num = ref.numeric_vector(r)
            if previous is not None:
                steps.append(self._distance(num, previous))
            previous = num
        shuffled = list(rows)
        self._rng.shuffle(shuffled)
        pairs = [
            self._distance(ref.numeric_vector(a), ref.numeric_vector(b))
            for a, b in itertools.pairwise(shuffled)
        ]
        threshold = float(np.quantile(pairs, 0.01)) if pairs else 0.0
        step_rate = max(
            float(np.mean([s < threshold for s in steps])) if steps else 0.0,
            float(np.mean([s < threshold for s in pairs])) if pairs else 0.0,
            0.01,
        )
        margin_rate = 0.1 if margins else 0.0
        self.calibration = Calibration(
            spec,
            classification,
            margins,
            instability,
            scale,
            threshold,
            (max(unusual / len(rows), 0.01), margin_rate, step_rate),
        )

    def _distance(self, a: list[float], b: list[float]) -> float:
        return distance(a, b, self._numeric_scale)

    # ---- screening helpers -------------------------------------------------------------
    def _matrix(self, rows: Sequence[Sequence[Any]]) -> Any:
        return np.array(
            [[math.nan if v is None else float(v) for v in r] for r in rows], dtype=float
        )

    def _noisy(self, matrix: Any, k: int, out: Any = None) -> Any:
        """``k`` noisy copies of each row of ``matrix`` (into ``out`` when given: an
        ``n * k`` x d C-contiguous float array)."""
        n, d = matrix.shape
        m = n * k
        if m <= NOISE_POOL:
            start = self._randrange(NOISE_POOL - m + 1)
            scaled = self._pool_scaled[start : start + m]  # draws times the noise scale
        else:
            scaled = self._rng.standard_normal((m, d)) * self._noise
        if out is None:
            out = np.empty((m, d))
        # Row i's copies are rows i*k .. i*k+k-1: the row plus its draws times the noise scale.
        if n == 1:  # one instance (an upstream's or the middleware's request; the hosted
            # model's is made from _make_blocks): the same sums without three reshapes
            np.add(matrix[0], scaled, out=out)
        else:
            np.add(matrix[:, None, :], scaled.reshape(n, k, d), out=out.reshape(n, k, d))
        if self._any_integer:
            np.copyto(out, np.round(out), where=self._integer)
        return out

    def _make_blocks(self, k: int) -> Any:
        """The pool's scaled draws as blocks of ``1 + k`` rows whose first row is -0.0
        (``x + -0.0`` is ``x`` for every float, -0.0 and NaN included): one instance plus a
        random block is the instance and its ``k`` noisy copies, in one addition."""
        d = self._pool_scaled.shape[1]
        count = max(1, NOISE_POOL // k)
        blocks = np.full((count, k + 1, d), -0.0)
        if k <= NOISE_POOL:
            blocks[:, 1:, :] = self._pool_scaled[: k * count].reshape(count, k, d)
        else:  # more copies than the pool has rows: fresh draws
            blocks[:, 1:, :] = self._rng.standard_normal((count, k, d)) * self._noise
        self._blocks, self._blocks_k = blocks, k
        return blocks

    def _perturb(self, rows: list[list[Any]], matrix: Any, k: int) -> tuple[list[Any], Any]:
        """``k`` copies of each row with noise on numeric features (integers stay integers)."""
        if matrix is not None:
            noisy = self._noisy(matrix, k)
            if getattr(self.predictor, "takes_matrix", False):
                return [], noisy
            as_rows = [[None if v != v else v for v in r] for r in noisy.tolist()]
            return as_rows, noisy
        out: list[list[Any]] = []
        noise = self._noise.tolist()
        for r in rows:
            for _ in range(k):
                copy = list(r)
                for j in self.reference.numeric:
                    v = copy[j]
                    if isinstance(v, int | float) and not isinstance(v, bool):
                        w = float(v) + float(self._rng.standard_normal()) * noise[j]
                        copy[j] = round(w) if self._integer[j] else w
                out.append(copy)
        return out, None

    def _instability(self, out: Output, pout: Output, n: int, k: int) -> list[float]:
        """Per row: the share of perturbed copies whose label changes, plus the mean
        total-variation distance of their probabilities (relative change for regression)."""
        cal = self.calibration
        if (
            out.proba is not None
            and pout.proba is not None
            and (cal is None or cal.classification)
            and out.proba.shape[1] >= 1
        ):
            if n == 1:
                return [instability_one(out.proba[0].tolist(), pout.proba.tolist())]
            p = out.proba
            q = pout.proba.reshape(n, k, p.shape[1])
            flips = q.argmax(axis=2) != p.argmax(axis=1)[:, None]
            add = np.add.reduce  # what .sum() calls, without its Python wrapper
            tv = 0.5 * add(np.abs(q - p[:, None, :]), axis=2)
            result: list[float] = ((add(flips, axis=1) + add(tv, axis=1)) / k).tolist()
            return result
        labels = out.labels
        plabels = pout.labels
        scale = cal.prediction_scale if cal is not None and not cal.classification else 0.0
        regression = scale > 0
        scores: list[float] = []
        for i in range(n):
            chunk = plabels[i * k : (i + 1) * k]
            if regression:
                y = float(labels[i])
                scores.append(sum(abs(float(v) - y) for v in chunk) / (k * scale))
            else:
                scores.append(sum(v != labels[i] for v in chunk) / k)
        return scores

    def _client(self, client: str) -> ClientState:
        state = self.clients.get(client)
        if state is None:
            if len(self.clients) >= MAX_CLIENTS:
                self.clients.pop(next(iter(self.clients)))
            state = self.clients[client] = ClientState(
                float(self.settings.rate.burst), self.settings.extraction.window
            )
        return state

    def _rate_ok(self, state: ClientState) -> bool:
        rate = self.settings.rate
        now = time.monotonic()
        state.tokens = min(float(rate.burst), state.tokens + (now - state.stamp) * rate.per_second)
        state.stamp = now
        if state.tokens >= 1.0:
            state.tokens -= 1.0
            return True
        return False

    def _read(self, instance: Any, violations: set[str], unknown: list[str]) -> list[Any]:
        """An instance's values in reference order; schema problems go to ``violations``."""
        names = self._names
        if isinstance(instance, list):
            if len(instance) != len(names):
                violations.add("schema:arity")
            values = list(instance[: len(names)]) + [None] * (len(names) - len(instance))
        else:
            get = instance.get
            values = [get(n) for n in names]
            if not instance.keys() <= self._index.keys():
                extra = [k for k in instance if k not in self._index]
                if extra:
                    unknown.extend(extra[:5])
                    if not self.settings.schema.allow_unknown_fields:
                        violations.add("schema:unknown-field")
        if not self.settings.schema.enabled:
            return values
        add = violations.add
        for (kind, must, low, high, cats, missing, bad_type, bad_range, bad_category), v in zip(
            self._schema_rows, values, strict=True
        ):
            if v is None:
                if must:
                    add(missing)
                continue
            if kind <= _INTEGER:
                t = type(v)
                if (t is not float and t is not int) and (
                    isinstance(v, bool) or not isinstance(v, int | float)
                ):
                    add(bad_type)
                    continue
                if kind == _INTEGER and isinstance(v, float) and not v.is_integer():
                    add(bad_type)
                if v < low or v > high:
                    add(bad_range)
            elif kind == _BOOLEAN:
                if not isinstance(v, bool) and v not in (0, 1):
                    add(bad_type)
            elif isinstance(v, float):
                add(bad_type)
            elif cats is not None and _text(v) not in cats:
                add(bad_category)
        return values

    def _extraction(
        self, state: ClientState, nums: list[list[float]], pvals: list[float], margins: Any
    ) -> str | None:
        """Update the client's windows with this request's instances; the signal that fires,
        if any."""
        cal = self.calibration
        if cal is None:
            return None
        if self._margin_for is not cal:
            self._margin_for = cal
            self._margin_threshold = (
                cal.margins[max(0, int(0.1 * len(cal.margins)) - 1)] if cal.margins else None
            )
            self._base_rates = list(cal.base_rates)
        margin_threshold = self._margin_threshold
        if margins is None:
            margin_threshold = None
        windows = state.windows
        step = cal.step_threshold
        scale = self._numeric_scale
        for i, num in enumerate(nums):
            state.queries += 1
            last = state.last
            windows.observe(
                1 if pvals[i] < UNUSUAL_P else 0,
                -1 if margin_threshold is None else int(float(margins[i]) <= margin_threshold),
                -1 if last is None else int(distance(num, last, scale) < step),
            )
            state.last = num
        settings = self.settings.extraction
        s = windows.first_signal(
            settings.min_queries, settings.min_share, settings.alpha, self._base_rates
        )
        fired = SIGNALS[s] if s >= 0 else None
        if fired and state.flagged is None and self.alerter is not None:
            self.alerter.raise_alert(
                "extraction",
                "client",
                f"a client shows model-extraction signals ({fired}) after {state.queries} queries",
                client=True,
            )
        state.flagged = fired
        return fired

    # ---- the request -------------------------------------------------------------------
    async def process(
        self,
        body: bytes,
        client: str,
        started: float,
        serve: Callable[[list[list[Any]], Any], Awaitable[Output]] | None = None,
    ) -> Answer:
        """Screen, predict (``serve``: the middleware's app; default: the predictor), decide
        and record one predict request whose body began arriving at ``started``
        (``time.perf_counter()``).

        With ``phases`` on (the default), requests in flight together advance in phases:
        each yields to the event loop once on entry (so that the requests that arrived with
        it enter too) and, while others are in flight, after a hosted model's call and
        before its answer is sent. So the screening and model call of every such request
        run, then the decision and record of each, then the answers: each phase's code
        stays in the processor's caches (see docs/guard.md, Overhead). A lone request
        yields once."""
        if not self.settings.phases:
            return await self._process(body, client, started, serve)
        self.in_flight += 1
        try:
            await asyncio.sleep(0)
            answer = await self._process(body, client, started, serve)
            if self.in_flight > 1:
                await asyncio.sleep(0)
            return answer
        finally:
            self.in_flight -= 1

    async def _process(
        self,
        body: bytes,
        client: str,
        started: float,
        serve: Callable[[list[list[Any]], Any], Awaitable[Output]] | None,
    ) -> Answer:
        settings = self.settings
        request_id = _new_id()
        reasons: list[str] = []
        scores: dict[str, Any] = {}
        fired: dict[str, str] = {}
        state = self._client(client)

        def fire(check: str, reason: str) -> None:
            fired[check] = getattr(settings, check).action
            reasons.append(reason)
            self.metrics.check_hits.inc(check)

        def failed(check: str, error: BaseException) -> None:
            self.metrics.check_errors.inc(check)
            reasons.append(f"check-error:{check}")
            scores[f"{check}_error"] = f"{type(error).__name__}: {error}"[:200]
            if getattr(settings, check).on_error == "closed":
                fired[f"error:{check}"] = "block"

        if settings.rate.enabled and not self._rate_ok(state):
            fire("rate", "rate")
        try:
            request = self.decoder.decode(body)
        except msgspec.ValidationError as e:
            return self.reject(422, "invalid-shape", client, body, started, str(e), request_id)
        except msgspec.DecodeError as e:
            return self.reject(400, "malformed-json", client, body, started, str(e), request_id)
        screen_start = time.perf_counter()
        violations: set[str] = set()
        instances = request.instances
        matrix = None
        unconvertible = False
        # One all-numeric instance (the usual request): its floats as a list, no matrix until
        # the model's (numpy's cost per call is most of such a request's screening); read by
        # the kernel when nothing is wrong with it, else by the general reading below.
        x: list[float] | None = None
        rows: list[list[Any]]
        read = None
        if self._read_numeric and len(instances) == 1 and type(instances[0]) is dict:
            read = read_numeric(
                instances[0], self._name_list, self._lows, self._highs, self._integral
            )
        if read is not None:
            values, x = read
            rows = [values]
        else:
            unknown: list[str] = []
            rows = [self._read(inst, violations, unknown) for inst in instances]
            if unknown:
                scores["unknown_fields"] = [u[:64] for u in unknown[:5]]
            if violations and settings.schema.enabled:
                fired["schema"] = settings.schema.action
                reasons.extend(sorted(violations)[:20])
                self.metrics.check_hits.inc("schema")
            if len(rows) == 1 and self._all_numeric_columns and self.reference.all_numeric:
                try:
                    x = [math.nan if v is None else float(v) for v in rows[0]]
                except (TypeError, ValueError, OverflowError):
                    unconvertible = True
            elif self.reference.all_numeric:
                try:
                    matrix = self._matrix(rows)
                except (TypeError, ValueError, OverflowError):
                    unconvertible = True
        num: Any = None
        if x is not None:
            nums: list[list[float]] = [x]
        else:
            if matrix is None:
                num = self.reference.numeric_matrix(rows)
            elif self._all_numeric_columns:
                num = matrix
            else:
                num = matrix[:, self._numeric_index]
            nums = num.tolist()
        pvals = [1.0] * len(rows)
        if settings.ood.enabled:
            try:
                if x is not None:
                    pf1, pm1 = self.reference.ood_one(x)
                    least = pf1 if pf1 < pm1 else pm1
                    pvals = [least]
                else:
                    pf, pm = self.reference.ood_lists(rows, num)
                    pvals = [a if a < b else b for a, b in zip(pf, pm, strict=True)]
                    pf1, pm1, least = min(pf), min(pm), min(pvals)
                scores["ood_p_feature"] = pf1
                scores["ood_p_multivariate"] = pm1
                if least < settings.ood.alpha:
                    fire("ood", "ood")
            except Exception as e:
                failed("ood", e)
        if settings.extraction.enabled and state.flagged is not None:
            fire("extraction", f"extraction:{state.flagged}")
        blocked = "block" in fired.values()
        if unconvertible and not blocked:
            return self.reject(
                422,
                "invalid-value",
                client,
                body,
                started,
                "a value the model cannot take: " + ", ".join(sorted(violations)[:5]),
                request_id,
            )
        output: Output | None = None
        model_seconds = 0.0
        if not blocked:
            t_model = time.perf_counter()
            try:
                if (
                    x is not None
                    and serve is None
                    and getattr(self.predictor, "takes_matrix", False)
                ):
                    # One instance for the hosted model (the usual request): no coroutine.
                    output, perturbed, plist = self._predict_one(rows, x)
                    if self.in_flight > 1:
                        await asyncio.sleep(0)
                else:
                    output, perturbed = await self._predict(rows, matrix, serve, x)
                    plist = None
            except UpstreamError as e:
                status = 504 if e.timeout else 502
                reason = "upstream-timeout" if e.timeout else "upstream-error"
                return self.reject(status, reason, client, body, started, str(e), request_id)
            except Exception as e:
                logger.warning("the model failed on a request: %s: %s", type(e).__name__, e)
                return self.reject(
                    500, "model-error", client, body, started, f"{type(e).__name__}", request_id
                )
            model_seconds = time.perf_counter() - t_model
            cal = self.calibration
            if settings.adversarial.enabled and perturbed is not None and cal is not None:
                try:
                    k = settings.adversarial.perturbations
                    if plist is not None:
                        inst = [instability_one(plist[0], plist[1:])]
                    else:
                        inst = self._instability(output, perturbed, len(rows), k)
                    worst = max(inst)
                    n = len(cal.instability)
                    p = (1 + n - bisect_left(cal.instability, worst)) / (n + 1) if n else 1.0
                    scores["instability"] = worst
                    scores["adversarial_p"] = p
                    if p < settings.adversarial.alpha:
                        fire("adversarial", "adversarial")
                except Exception as e:
                    failed("adversarial", e)
            if settings.extraction.enabled and "extraction" not in fired:
                try:
                    margins: Any = None
                    proba = output.proba
                    if plist is not None or (proba is not None and len(rows) == 1):
                        top2 = sorted(plist[0] if plist else proba[0].tolist())[-2:]
                        margins = [top2[-1] - top2[0]] if len(top2) == 2 else None
                    elif proba is not None and proba.shape[1] == 2:
                        # The top two of two: |p1 - p0| is the sorted difference, exactly.
                        margins = np.abs(proba[:, 1] - proba[:, 0])
                    elif proba is not None and proba.shape[1] > 2:
                        top = np.sort(proba, axis=1)
                        margins = top[:, -1] - top[:, -2]
                    signal = self._extraction(state, nums, pvals, margins)
                    if signal is not None:
                        fire("extraction", f"extraction:{signal}")
                except Exception as e:
                    failed("extraction", e)
        elif settings.extraction.enabled:
            try:
                self._extraction(state, nums, pvals, None)
            except Exception as e:
                failed("extraction", e)
        decision = "allow"
        for action in fired.values():
            if action == "block":
                decision = "block"
            elif action == "flag" and decision != "block":
                decision = "flag"
        headers = [(b"x-request-id", request_id.encode())]
        if decision == "block":
            status = 403
            for check in ("rate", "schema"):
                if fired.get(check) == "block":
                    status = _BLOCK_STATUS[check]
                    break
            if any(k.startswith("error:") for k in fired) and status == 403:
                status = 503
            if status == 429:
                headers.append((b"retry-after", b"1"))
            payload = {
                "error": "blocked",
                "decision": decision,
                "reasons": reasons,
                "request_id": request_id,
            }
            prediction: Any = None
        else:
            assert output is not None
            prediction = output.labels
            payload = {
                "predictions": prediction,
                "decision": decision,
                "reasons": reasons,
                "request_id": request_id,
            }
            self._count(rows, prediction)
            status = 200
        answer = Answer(status, _encode(payload), headers, prediction)
        elapsed = time.perf_counter() - started
        self.metrics.screening.observe(max(0.0, time.perf_counter() - screen_start - model_seconds))
        if settings.durability == "commit" and self.log is not None:
            return await self._record(
                answer, request_id, client, decision, reasons, scores, rows, body, elapsed
            )
        self._submit(answer, request_id, client, decision, reasons, scores, rows, body, elapsed)
        return answer

    async def _predict(
        self,
        rows: list[list[Any]],
        matrix: Any,
        serve: Callable[[list[list[Any]], Any], Awaitable[Output]] | None,
        x: list[float] | None = None,
    ) -> tuple[Output, Output | None]:
        """The predictions and those of the perturbed copies (one call when possible); ``x``:
        one all-numeric instance's floats, given instead of ``matrix`` (the hosted model's
        one instance goes to :meth:`_predict_one` instead)."""
        adversarial = self.settings.adversarial
        k = adversarial.perturbations if adversarial.enabled and self.calibration else 0
        predictor = self.predictor
        if x is not None:
            matrix = np.array([x])
        if serve is not None:
            output = await serve(rows, matrix)
            if not k or predictor is None:
                return output, None
            prows, pmatrix = self._perturb(rows, matrix, k)
            return output, predictor.predict(prows, pmatrix)
        n = len(rows)
        all_matrix: Any
        if k and matrix is not None and getattr(predictor, "takes_matrix", False):
            # The rows and their copies in one matrix, the copies written in place.
            all_rows = rows
            all_matrix = np.empty((n * (k + 1), matrix.shape[1]))
            all_matrix[:n] = matrix
            self._noisy(matrix, k, all_matrix[n:])
        elif k:
            prows, pmatrix = self._perturb(rows, matrix, k)
            all_rows = rows + prows
            all_matrix = None if matrix is None else np.vstack([matrix, pmatrix])
        else:
            all_rows, all_matrix = rows, matrix
        if predictor.is_async:
            out = await predictor.apredict(all_rows, all_matrix)
        else:
            out = predictor.predict(all_rows, all_matrix)
            if self.in_flight > 1:
                await asyncio.sleep(0)
        if not k:
            return out, None
        proba = out.proba
        main = Output(out.labels[:n], None if proba is None else proba[:n])
        rest = Output(out.labels[n:], None if proba is None else proba[n:])
        return main, rest

    def _predict_one(
        self, rows: list[list[Any]], x: list[float]
    ) -> tuple[Output, Output | None, list[list[float]] | None]:
        """:meth:`_predict` of one all-numeric instance given as its floats (the usual
        request), for a hosted model that predicts from the float matrix: the instance and its
        copies in one matrix, by one addition (see _make_blocks), and one synchronous call (the
        caller yields after it; a coroutine here cost more than the rest of this). Also the
        probabilities of the instance and its copies as lists (None without copies or
        probabilities). With them, the checks read the lists only: from a model that gives
        the first row's label and the lists (``predict_first``), the instance's output has
        no probabilities and the copies' is :data:`_COPIES`."""
        adversarial = self.settings.adversarial
        k = adversarial.perturbations if adversarial.enabled and self.calibration else 0
        if k:
            blocks = self._blocks if self._blocks_k == k else self._make_blocks(k)
            matrix: Any = np.add(x, blocks[self._randrange(len(blocks))])
            if self._any_integer:
                copies = matrix[1:]
                np.copyto(copies, np.round(copies), where=self._integer)
        else:
            matrix = np.array([x])
        first = getattr(self.predictor, "predict_first", None) if k else None
        if first is not None:
            got = first(matrix)
            if got is not None:  # the instance's label; the lists carry the rest
                label, plist = got
                return Output([label]), _COPIES, plist
        out = self.predictor.predict(rows, matrix)
        if not k:
            return out, None, None
        proba = out.proba
        main = Output(out.labels[:1], None if proba is None else proba[:1])
        rest = Output(out.labels[1:], None if proba is None else proba[1:])
        return main, rest, None if proba is None else proba.tolist()

    def _count(self, rows: list[list[Any]], prediction: Sequence[Any]) -> None:
        """Keep the served instances and predictions for the current window's histograms
        (binned later, off the request path, by :meth:`take_counts`)."""
        window = now_us() // self._window_us * self._window_us
        seen = self._seen.get(window)
        if seen is None:
            seen = self._seen[window] = ([], [])
        seen[0].extend(rows)
        seen[1].extend(prediction)

    def _bin(self, window: int, rows: list[list[Any]], predictions: list[Any]) -> None:
        counts = self._counts.get(window)
        features = self._features
        spec = self.calibration.prediction if self.calibration else None
        if counts is None:
            counts = self._counts[window] = [[0] * len(f.counts) for f in features] + (
                [[0] * len(spec.counts)] if spec is not None else []
            )
        matrix = None
        if self.reference.all_numeric:
            try:
                matrix = np.array(rows, dtype=float).reshape(len(rows), len(features))
            except (TypeError, ValueError, OverflowError):
                matrix = None
        for j, f in enumerate(features):
            column = counts[j]
            if f.numeric:
                values = (
                    matrix[:, j]
                    if matrix is not None
                    else np.array(
                        [v if isinstance(v, int | float) else np.nan for v in (r[j] for r in rows)],
                        dtype=float,
                    )
                )
                finite = np.isfinite(values)
                bins = np.searchsorted(np.asarray(f.edges), values[finite], side="right")
                for b, c in enumerate(np.bincount(bins, minlength=len(f.edges) + 1).tolist()):
                    column[b] += c
                column[-1] += int((~finite).sum())
            else:
                for r in rows:
                    column[f.bin(r[j])] += 1
        if spec is not None:
            last = counts[-1]
            for p in predictions:
                last[spec.bin(p)] += 1

    def take_counts(self) -> list[dict[str, Any]]:
        """The histogram counts gathered since the last call, as rows for the log."""
        seen, self._seen = self._seen, {}
        for window, (instances, predictions) in seen.items():
            if instances:
                self._bin(window, instances, predictions)
        counts, self._counts = self._counts, {}
        names = [*self._names, "prediction"]
        replica = self.log.replica if self.log is not None else ""
        rows: list[dict[str, Any]] = []
        for window, per_feature in counts.items():
            for name, bins in zip(names, per_feature, strict=False):
                for b, c in enumerate(bins):
                    if c:
                        rows.append(
                            {
                                "window_us": window,
                                "replica": replica,
                                "feature": name,
                                "bin": b,
                                "count": c,
                            }
                        )
        return rows

    def reject(
        self,
        status: int,
        reason: str,
        client: str,
        body: bytes,
        started: float,
        detail: str = "",
        request_id: str | None = None,
    ) -> Answer:
        """Refuse a request before (or instead of) a decision, and record it."""
        request_id = request_id or _new_id()
        decision = "error" if status >= 500 else "reject"
        payload = {"error": reason, "detail": detail[:300], "request_id": request_id}
        answer = Answer(status, _encode(payload), [(b"x-request-id", request_id.encode())])
        elapsed = time.perf_counter() - started
        self._submit(answer, request_id, client, decision, [reason], {}, None, body, elapsed)
        return answer

    def _features_for_log(self, rows: list[list[Any]] | None) -> Any:
        """The rows as the log stores them (the writer makes the dicts: off the request
        path)."""
        if rows is None or not self.settings.log_features:
            return None
        return FeatureRows(self._names, self._redact, rows)

    def _submit(
        self,
        answer: Answer,
        request_id: str,
        client: str,
        decision: str,
        reasons: list[str],
        scores: dict[str, Any],
        rows: list[list[Any]] | None,
        body: bytes,
        elapsed: float,
        waiter: Any = None,
    ) -> Pending | bool | None:
        self.metrics.count(decision, answer.status)
        self.metrics.latency.observe(elapsed)
        if self.log is None:
            return None
        fast = self._log_record
        if fast is not None:  # the writer process: encoded at once, no record object
            log_rows = rows if rows is not None and self.settings.log_features else None
            if fast(
                now_us(), request_id, client, answer.status, decision, reasons, scores,
                answer.prediction, log_rows, int(elapsed * 1e6), body, waiter,
            ):  # fmt: skip
                return True
            self._refuse(answer)
            return None
        record = Pending(
            now_us(),
            request_id,
            client,
            answer.status,
            decision,
            reasons,
            scores,
            answer.prediction,
            self._features_for_log(rows),
            int(elapsed * 1e6),
            body,
        )
        record.waiter = waiter
        if not self.log.submit(record):
            self._refuse(answer)
            return None
        return record

    def _refuse(self, answer: Answer) -> None:
        """What cannot be logged is not answered: 503, retry later."""
        answer.status = 503
        answer.body = _encode(
            {"error": "backpressure", "detail": "the decision log is full; retry later"}
        )
        answer.headers.append((b"retry-after", b"1"))

    async def _record(
        self,
        answer: Answer,
        request_id: str,
        client: str,
        decision: str,
        reasons: list[str],
        scores: dict[str, Any],
        rows: list[list[Any]],
        body: bytes,
        elapsed: float,
    ) -> Answer:
        """Submit the record and wait until it is committed (``durability = "commit"``)."""
        loop = asyncio.get_running_loop()
        waiter = (loop, loop.create_future())
        record = self._submit(
            answer, request_id, client, decision, reasons, scores, rows, body, elapsed, waiter
        )
        if record is not None:
            await waiter[1]
        return answer

    def _log_values(self) -> dict[str, float]:
        log = self.log
        assert log is not None
        return {
            "written": log.written_total,
            "spooled": log.spooled_total,
            "replayed": log.replayed_total,
            "dropped": log.dropped_total,
            "backpressure": log.backpressure_total,
            "quarantined": log.quarantined_total,
            "pending": log.pending,
            "database_up": 1.0 if log.db_ok else 0.0,
        }


class FeatureRows:
    """Instances waiting for the writer, which turns them into ``{feature: value}`` dicts
    (redacted features as ``"[redacted]"``)."""

    __slots__ = ("names", "redact", "rows")

    def __init__(self, names: Sequence[str], redact: frozenset[str], rows: list[list[Any]]):
        """Keep references only."""
        self.names = names
        self.redact = redact
        self.rows = rows

    def dicts(self) -> list[dict[str, Any]]:
        """The rows as dicts."""
        names, redact = self.names, self.redact
        if not redact:
            return [dict(zip(names, r, strict=True)) for r in self.rows]
        return [
            {n: ("[redacted]" if n in redact else v) for n, v in zip(names, r, strict=True)}
            for r in self.rows
        ]


def _py(value: Any) -> Any:
    """A cell of a data frame as a JSON scalar (NaN as None)."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
