"""The request path's fast forms give exactly what the plain forms give.

The engine computes its per-request checks in forms chosen for speed (schema rules looked up
once per feature, OOD ranks by bisection and a single instance's scores in plain Python,
perturbed copies and instability by broadcasting). Each test here writes the plain form out
and compares, value for value, on awkward inputs: missing values, infinities, huge numbers,
wrong types, every feature kind.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelshield.core.guard_settings import DeclaredFeature, GuardSettings, SchemaCheck
from modelshield.guard.engine import Guard, _new_id
from modelshield.guard.predictors import Output
from modelshield.guard.reference import Reference, _text, fit_frame


def _frame(categorical: bool) -> Any:
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 400
    data: dict[str, Any] = {
        "a": rng.normal(size=n),
        "b": rng.normal(10, 3, size=n),
        "n": rng.integers(0, 20, size=n),
    }
    data["b"][::17] = np.nan  # nullable
    if categorical:
        data["flag"] = rng.integers(0, 2, size=n).astype(bool)
        data["colour"] = rng.choice(
            ["red", "green", "blue", "mauve"], p=[0.5, 0.3, 0.19, 0.01], size=n
        )
    return pd.DataFrame(data)


def _reference(categorical: bool, **declared: DeclaredFeature) -> Reference:
    ref, _ = fit_frame(_frame(categorical), SchemaCheck(features=declared))
    return ref


def _guard(ref: Reference, **schema: Any) -> Guard:
    return Guard(ref, GuardSettings(schema=SchemaCheck(**schema)), None, None)


def _plain_violations(guard: Guard, instance: Any) -> tuple[list[Any], set[str], list[str]]:
    """The schema rules as the specification states them, feature by feature."""
    names = guard.reference.names
    index = guard.reference.index
    violations: set[str] = set()
    unknown: list[str] = []
    if isinstance(instance, list):
        if len(instance) != len(names):
            violations.add("schema:arity")
        values = list(instance[: len(names)]) + [None] * (len(names) - len(instance))
    else:
        values = [instance.get(n) for n in names]
        extra = [k for k in instance if k not in index]
        if extra:
            unknown.extend(extra[:5])
            if not guard.settings.schema.allow_unknown_fields:
                violations.add("schema:unknown-field")
    for f, v in zip(guard.reference.features, values, strict=True):
        if v is None:
            if f.required and not f.nullable:
                violations.add(f"schema:missing:{f.name}")
            continue
        if f.kind in ("numeric", "integer"):
            if isinstance(v, bool) or not isinstance(v, int | float):
                violations.add(f"schema:type:{f.name}")
                continue
            if f.kind == "integer" and isinstance(v, float) and not v.is_integer():
                violations.add(f"schema:type:{f.name}")
            if (f.low is not None and v < f.low) or (f.high is not None and v > f.high):
                violations.add(f"schema:range:{f.name}")
        elif f.kind == "boolean":
            if not isinstance(v, bool) and v not in (0, 1):
                violations.add(f"schema:type:{f.name}")
        elif isinstance(v, float):
            violations.add(f"schema:type:{f.name}")
        elif f.categories is not None and _text(v) not in f.categories:
            violations.add(f"schema:category:{f.name}")
    return values, violations, unknown


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.sampled_from([0, 1, 0.0, 1.0, 2.5, -1e308, 1e308, 7, 19.0, 20.5, -2.0, 2.0, -2, 2]),
    st.sampled_from(["red", "green", "blue", "mauve", "teal", "1", "true", ""]),
)
_KEYS = st.sampled_from(["a", "b", "n", "flag", "colour", "extra", "other"])


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.dictionaries(_KEYS, _VALUES, max_size=7),
        st.lists(_VALUES, max_size=7),
    ),
    st.booleans(),
)
def test_schema_rules_match_the_plain_form(instance: Any, allow_unknown: bool) -> None:
    declared = {
        "a": DeclaredFeature(min=-2.0, max=2.0),
        "colour": DeclaredFeature(categories=("red", "green", "blue")),
    }
    guard = _guard(_reference(True, **declared), allow_unknown_fields=allow_unknown)
    violations: set[str] = set()
    unknown: list[str] = []
    values = guard._read(instance, violations, unknown)
    assert (values, violations, unknown) == _plain_violations(guard, instance)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=5), st.booleans())
def test_the_numeric_shortcut_answers_only_what_the_schema_reading_would(
    instance: dict[str, Any], integral_bounds: bool
) -> None:
    """_kernels.read_numeric, the request path's reading of one numeric instance: when it
    answers, the schema reading finds the same values and nothing wrong, and the floats are
    the values'; it answers whenever nothing is wrong, every value is there, and no value is
    a bool or an integer beyond 2**53 (the general reading takes those)."""
    from modelshield.guard._kernels import read_numeric

    declared = {"a": DeclaredFeature(min=-2 if integral_bounds else -2.0, max=2.0)}
    guard = _guard(_reference(False, **declared))
    assert guard._read_numeric
    got = read_numeric(instance, guard._name_list, guard._lows, guard._highs, guard._integral)
    values, violations, unknown = _plain_violations(guard, instance)
    if got is not None:
        assert got[0] == values and not violations and not unknown
        assert got[1] == [float(v) for v in values]
        assert all(type(a) is type(b) for a, b in zip(got[0], values, strict=True))
    else:
        plain = all(type(v) in (int, float) and abs(v) <= 2**53 for v in values) and len(
            instance
        ) == len(values)
        assert violations or unknown or not plain


def test_the_numeric_shortcut_is_off_where_it_could_disagree() -> None:
    """Off for categorical or boolean features, with the schema check off, and for bounds a
    float cannot hold exactly."""
    assert not _guard(_reference(True))._read_numeric
    assert not _guard(_reference(False), enabled=False)._read_numeric
    assert not _guard(_reference(False, a=DeclaredFeature(max=2**53 + 1)))._read_numeric
    assert _guard(_reference(False, a=DeclaredFeature(max=2**53)))._read_numeric


@pytest.mark.parametrize("categorical", [False, True])
def test_ood_lists_equal_ood_on_awkward_rows(categorical: bool) -> None:
    ref = _reference(categorical)
    frame = _frame(categorical)
    rows = [list(r) for r in frame.head(50).itertuples(index=False)]
    rows = [[None if isinstance(v, float) and v != v else v for v in r] for r in rows]
    extra: list[list[Any]] = [["red", True], ["teal", False], [None, None], ["mauve", True]]
    rows += [
        [x, y, z, *(extra[i % 4] if categorical else [])]
        for i, (x, y, z) in enumerate(
            [
                (math.inf, 1.0, 3),
                (-math.inf, math.inf, 3),
                (None, None, None),
                (1e308, -1e308, 10**6),
                (0.0, 0.0, 0),
                (math.inf, None, -math.inf),
            ]
        )
    ]
    assert bool(ref._cats) == categorical  # the single-instance form serves numeric data
    for batch in [[r] for r in rows] + [rows]:
        num = ref.numeric_matrix(batch)
        pf, pm = ref.ood(batch, num)
        lf, lm = ref.ood_lists(batch, num)
        assert lf == pf.tolist()
        assert lm == pm.tolist()
        if len(batch) == 1 and not categorical:  # the request path's one-instance form
            x = [math.nan if v is None else float(v) for v in batch[0]]
            assert ref.ood_one(x) == (lf[0], lm[0])


def test_request_ids_are_distinct_time_ordered_version_7_uuids() -> None:
    before = time.time_ns() // 1_000_000
    ids = [_new_id() for _ in range(2_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        # The first 48 bits are the Unix time in milliseconds.
        assert before <= parsed.int >> 80 <= after
    # Ids made later sort after (by their millisecond; random within one).
    stamps = [uuid.UUID(text).int >> 80 for text in ids]
    assert stamps == sorted(stamps)
    assert ids[0][:13] <= ids[-1][:13]


@pytest.mark.parametrize(("n", "k"), [(1, 8), (3, 5), (2_000, 8)])
def test_perturbed_copies_equal_the_repeated_form(n: int, k: int) -> None:
    ref = _reference(False)
    guard = _guard(ref)
    matrix = np.random.default_rng(3).normal(size=(n, len(ref.names))) * 5
    state = guard._random.getstate()
    rng_state = guard._rng.bit_generator.state
    got = guard._noisy(matrix, k)
    # The plain form: each row repeated k times, plus the same draws times the noise scale,
    # integer features rounded.
    guard._random.setstate(state)
    guard._rng.bit_generator.state = rng_state
    base = np.repeat(matrix, k, axis=0)
    m = len(base)
    if m <= 8_192:
        start = guard._random.randrange(8_192 - m + 1)
        draws = guard._pool[start : start + m]
    else:
        draws = guard._rng.standard_normal(base.shape)
    expected = base + draws * guard._noise
    expected = np.where(guard._integer, np.round(expected), expected)
    assert guard._any_integer
    assert np.array_equal(got, expected)


@pytest.mark.parametrize(("n", "k", "classes"), [(1, 8, 2), (4, 8, 3), (5, 3, 2)])
def test_instability_equals_the_repeated_form(n: int, k: int, classes: int) -> None:
    guard = _guard(_reference(False))
    rng = np.random.default_rng(7)
    proba = rng.dirichlet(np.ones(classes), size=n)
    # Copies close to their row, some flipping.
    noisy = np.repeat(proba, k, axis=0) + rng.normal(0, 0.2, size=(n * k, classes))
    pproba = np.abs(noisy) / np.abs(noisy).sum(axis=1, keepdims=True)
    got = guard._instability(Output([0] * n, proba), Output([0] * (n * k), pproba), n, k)
    p = np.repeat(proba, k, axis=0)
    flips = (np.argmax(pproba, axis=1) != np.argmax(p, axis=1)).reshape(n, k)
    tv = (0.5 * np.abs(pproba - p).sum(axis=1)).reshape(n, k)
    assert got == ((flips.sum(axis=1) + tv.sum(axis=1)) / k).tolist()


def test_the_perturbations_are_the_guards_own_draws() -> None:
    """Unseeded (the default), each guard draws its noise pool and its offsets from the
    operating system: two guards differ, and neither touches the random module (the host
    application's, in the middleware shape). The same seed gives the same draws."""
    import asyncio

    from modelshield.core.guard_settings import AdversarialCheck

    ref = _reference(False)
    state = random.getstate()

    def make(seed: int | None) -> Guard:
        guard = Guard(ref, GuardSettings(adversarial=AdversarialCheck(seed=seed)), None, None)
        guard.calibration = object()  # type: ignore[assignment]  # only its presence is read

        class Model:
            takes_matrix = True
            is_async = False

            def predict(self, rows: Any, matrix: Any) -> Output:
                return Output([0] * len(matrix), np.full((len(matrix), 2), 0.5))

        guard.predictor = Model()
        return guard

    def offsets(guard: Guard) -> list[int]:
        return [guard._random.randrange(1 << 30) for _ in range(4)]

    a, b = make(None), make(None)
    assert not np.array_equal(a._pool, b._pool)
    assert offsets(a) != offsets(b)
    x = [0.5] * len(ref.names)
    a._predict_one([x], list(x))
    asyncio.run(a._predict([x], None, None, list(x)))
    assert random.getstate() == state
    c, d = make(3), make(3)
    assert np.array_equal(c._pool, d._pool)
    assert offsets(c) == offsets(d)


@pytest.mark.parametrize("k", [1, 8, 13])
def test_one_instance_and_its_copies_are_one_block_added(k: int) -> None:
    """The request path's matrix for one instance: the instance itself, value for value
    (NaN, -0.0 and infinities included), then its copies: the instance plus k consecutive
    pool draws times the noise scale, integer features rounded in the copies only."""
    from modelshield.core.guard_settings import AdversarialCheck

    ref = _reference(False)
    settings = GuardSettings(adversarial=AdversarialCheck(perturbations=k, seed=7))
    guard = Guard(ref, settings, None, None)
    offsets = random.Random(7)  # the guard's own draws, in the same order
    guard.calibration = object()  # type: ignore[assignment]  # only its presence is read
    assert guard._any_integer
    seen: list[Any] = []

    class Model:
        takes_matrix = True
        is_async = False

        def predict(self, rows: Any, matrix: Any) -> Output:
            seen.append(matrix.copy())
            return Output([0] * len(matrix), np.full((len(matrix), 2), 0.5))

    guard.predictor = Model()
    rows = np.random.default_rng(5).normal(size=(20, len(ref.names))) * 7
    rows[3, 0] = np.nan  # a missing value stays missing
    rows[4, :] = 2.5  # halves round to even, as numpy does
    rows[5, :] = -0.0
    rows[6, 1] = np.inf
    rows[7, 2] = 2.5  # an integer feature's fractional value: sent as given, copies rounded
    for row in rows:
        x = row.tolist()
        main, rest, plist = guard._predict_one([x], list(x))
        b = offsets.randrange(max(1, 8_192 // k))
        got = seen[-1]
        assert got.shape == (k + 1, len(x))
        assert np.array_equal(got[0], row, equal_nan=True)
        assert np.array_equal(np.signbit(got[0]), np.signbit(row))
        expected = row + guard._pool[b * k : (b + 1) * k] * guard._noise
        expected = np.where(guard._integer, np.round(expected), expected)
        assert np.array_equal(got[1:], expected, equal_nan=True)
        assert main.labels == [0] and rest is not None and plist is not None
        assert len(plist) == k + 1


@pytest.mark.parametrize("k", [1, 2, 7, 8, 9, 16, 23, 130, 300])
@pytest.mark.parametrize("classes", [1, 2, 3])
def test_one_instances_instability_in_python_equals_numpys(k: int, classes: int) -> None:
    from modelshield.guard._kernels import instability_one

    guard = _guard(_reference(False))
    rng = np.random.default_rng(k * 10 + classes)
    for _ in range(20):
        p = rng.dirichlet(np.ones(classes), size=1)
        noisy = np.repeat(p, k, axis=0) + rng.normal(0, 0.3, size=(k, classes))
        q = np.abs(noisy) / np.abs(noisy).sum(axis=1, keepdims=True)
        q[0] = p[0]  # a tie with the instance's own probabilities
        plain = guard._instability(Output([0], p), Output([0] * k, q), 1, k)
        vectorised = guard._instability(
            Output([0, 0], np.vstack([p, p])), Output([0] * (2 * k), np.vstack([q, q])), 2, k
        )
        assert plain == [instability_one(p[0].tolist(), q.tolist())]
        assert vectorised == plain * 2  # the broadcast form: bit for bit the same


@pytest.mark.parametrize("d", [1, 2, 10, 37, 80])
def test_one_instances_mahalanobis_is_the_batch_forms_bit_for_bit(d: int) -> None:
    """The request path's d2 must rank against the reference's exactly: the one-instance
    form gives the batch form's value bit for bit (the whitened form's function for each
    row up to 64 features, einsum's order above), on random, extreme and correlated
    instances, missing values included; and both are z'Pz up to rounding."""
    import pandas as pd

    from modelshield.guard.reference import WHITENED_MAX_FEATURES

    rng = np.random.default_rng(d)
    base = rng.normal(size=(400, d)) @ rng.normal(size=(d, d)) * rng.choice([1e-3, 1, 1e4])
    base[:, 0] += 1e6  # far from zero: the whitened form's constant cancels it
    ref, _ = fit_frame(pd.DataFrame(base, columns=[f"c{i}" for i in range(d)]), SchemaCheck())
    assert (ref._whitened is not None) == (d <= WHITENED_MAX_FEATURES)
    batch = np.vstack([base[:200], rng.normal(size=(100, d)) * 1e6, base[:5] * -3])
    batch[-1, 0] = np.nan
    batch[-2, -1] = np.nan
    batch[-3, 0] = np.inf
    _u, d2 = ref._scores([list(r) for r in batch], batch)
    for row, expected in zip(batch.tolist(), d2.tolist(), strict=True):
        assert ref._scores_one(row)[1] == expected
    zm = np.where(np.isnan(batch), 0.0, (batch - ref.mean) / ref.scale)
    quadratic = np.einsum("ij,jk,ik->i", zm, ref._precision, zm)
    quadratic = np.where(np.isnan(quadratic), np.inf, quadratic)
    assert np.allclose(d2, quadratic, rtol=1e-6, atol=1e-6)
    # The reference's own distances are the same function's: its rows rank exactly.
    own = ref._scores([list(r) for r in base], base)[1]
    assert sorted(own.tolist()) == ref._d2_list


@pytest.mark.parametrize("kind", ["binary", "three-class", "string-labels", "regressor"])
def test_the_first_rows_label_and_the_probability_lists_are_predicts(kind: str) -> None:
    """HostedPredictor.predict_first (the one-instance request's model call): the first
    row's label and every row's probabilities are predict()'s, the label the same object;
    None for a model without probabilities."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from modelshield.assess.models.sklearn import SklearnModel
    from modelshield.guard.predictors import HostedPredictor, Provenance

    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 4))
    score = x[:, 0] + 0.5 * x[:, 1]
    if kind == "regressor":
        estimator: Any = LinearRegression().fit(x, score)
    else:
        y: Any = (score > 0).astype(int)
        if kind == "three-class":
            y = np.digitize(score, [-0.5, 0.5])
        elif kind == "string-labels":
            y = np.where(score > 0, "yes", "no")
        estimator = LogisticRegression().fit(x, y)
    predictor = HostedPredictor(
        SklearnModel(estimator), ["a", "b", "c", "d"], True, Provenance("sklearn", "test", True)
    )
    for _ in range(20):
        matrix = rng.normal(size=(9, 4)) * rng.choice([0.01, 1.0, 50.0])
        got = predictor.predict_first(matrix)
        out = predictor.predict([], matrix)
        if kind == "regressor":
            assert got is None
            continue
        assert got is not None
        label, plist = got
        assert label == out.labels[0] and type(label) is type(out.labels[0])
        assert plist == out.proba.tolist()
