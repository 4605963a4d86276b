"""The guard's arithmetic kernels (``modelshield.guard._kernels``): the module the package
imports (compiled by mypyc when ``make dev`` could build it) and the same source run as plain
Python give the same results, bit for bit, on random, extreme and malformed input; both
agree with numpy's forms of the same quantities."""

from __future__ import annotations

import importlib.util
import math
import shutil
import struct
import sysconfig
from collections import deque
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from modelshield.guard import _kernels

SOURCE = Path(_kernels.__file__).with_name("_kernels.py")


def _plain() -> ModuleType:
    """The kernels' source run by the interpreter (whatever the package imports), named
    inside the package so that coverage counts its lines."""
    spec = importlib.util.spec_from_file_location("modelshield.guard._kernels_plain", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLAIN = _plain()
FORMS = [_kernels, PLAIN]


def _bits(value: Any) -> Any:
    """A float's bits (NaN equal to NaN, -0.0 unlike 0.0); tuples element by element."""
    if isinstance(value, tuple):
        return tuple(_bits(v) for v in value)
    if isinstance(value, float):
        return struct.pack("<d", value)
    return value


def _same(name: str, *args: Any) -> Any:
    """Call the kernel ``name`` in both forms; they must agree bit for bit (or both raise
    the same error)."""
    results = []
    for module in FORMS:
        try:
            results.append(("ok", _bits(getattr(module, name)(*args))))
        except ValueError as e:
            results.append(("error", type(e).__name__))
    assert results[0] == results[1], name
    return getattr(PLAIN, name)(*args) if results[0][0] == "ok" else None


def test_the_package_imports_the_compiled_kernels_where_make_dev_could_build_them() -> None:
    """``make dev`` compiles the kernels where mypyc and a C compiler are installed; then the
    package must import the compiled module, not its source."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    compiled = list(SOURCE.parent.glob(f"_kernels*{suffix}"))
    buildable = importlib.util.find_spec("mypyc") is not None and any(
        shutil.which(cc) for cc in ("cc", "gcc", "clang")
    )
    if not compiled and not buildable:
        pytest.skip("no mypyc or C compiler here: the kernels run as plain Python")
    assert compiled, "make dev should have compiled the kernels (scripts/build_kernels.py)"
    assert _kernels.__file__ is not None and _kernels.__file__.endswith(suffix)
    assert PLAIN.__file__ == str(SOURCE)


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
extreme = st.floats(width=64) | st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324])


@settings(max_examples=300, deadline=None)
@given(
    d=st.integers(1, 12),
    data=st.data(),
)
def test_scores_and_distances_agree_in_both_forms(d: int, data: st.DataObject) -> None:
    x = data.draw(st.lists(extreme, min_size=d, max_size=d))
    y = data.draw(st.lists(extreme, min_size=d, max_size=d))
    center = data.draw(st.lists(finite, min_size=d, max_size=d))
    rscale = data.draw(st.lists(st.floats(1e-6, 1e6), min_size=d, max_size=d))
    whitened = data.draw(
        st.lists(st.lists(finite, min_size=d + 1, max_size=d + 1), min_size=d, max_size=d)
    )
    u, d2 = _same("scores_one", x, center, rscale, whitened)
    assert _bits(d2) == _bits(_same("d2", x, whitened))
    assert d2 >= 0.0 and not math.isnan(d2)  # NaN is read as infinitely far
    assert u >= 0.0
    distance = _same("distance", x, y, rscale)
    assert math.isnan(distance) or distance >= 0.0  # NaN only from inf - inf


def test_the_distance_and_scores_are_numpys_up_to_rounding() -> None:
    rng = np.random.default_rng(3)
    for d in (1, 2, 10, 40):
        w = rng.normal(size=(d, d + 1))
        center = rng.normal(size=d)
        rscale = rng.uniform(0.1, 3.0, size=d)
        for _ in range(50):
            x = rng.normal(size=d) * rng.choice([1e-3, 1.0, 1e3])
            u, d2 = _same("scores_one", x.tolist(), center.tolist(), rscale.tolist(), w.tolist())
            assert u == pytest.approx(float(np.max(np.abs((x - center) / rscale))), rel=1e-12)
            expected = float(np.sum((w[:, :d] @ x + w[:, d]) ** 2))
            assert d2 == pytest.approx(expected, rel=1e-9, abs=1e-9)
            y = rng.normal(size=d)
            y[rng.integers(d)] = np.nan  # missing: that feature left out
            got = _same("distance", x.tolist(), y.tolist(), rscale.tolist())
            keep = ~np.isnan(y)
            want = float(np.sqrt(np.sum(((x - y)[keep] / rscale[keep]) ** 2)))
            assert got == pytest.approx(want, rel=1e-12)


def test_missing_and_absurd_values() -> None:
    w = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    # A missing value counts as 0 in the per-feature score; its distance is infinitely far
    # (the caller recomputes it with the value at the mean).
    u, d2 = _same("scores_one", [math.nan, 2.0], [0.0, 0.0], [1.0, 1.0], w)
    assert u == 2.0 and d2 == math.inf
    assert _same("d2", [math.inf, 0.0], [[1.0, 0.0, 0.0], [1.0, 0.0, -math.inf]]) == math.inf
    assert _same("distance", [1e308, 0.0], [-1e308, 0.0], [1.0, 1.0]) == math.inf
    assert _same("distance", [math.nan, 1.0], [5.0, 1.0], [1.0, 1.0]) == 0.0


@pytest.mark.parametrize(
    ("value", "integral", "read"),
    [
        (False, False, False),
        (True, False, False),
        (1, False, True),
        (2**53, False, True),
        (2**53 + 1, False, False),  # not exact as a float: the general reading's
        (-(2**53) - 1, False, False),
        (2.5, False, True),
        (2.5, True, False),
        (3.0, True, True),
        ("1", False, False),
        (None, False, False),
    ],
)
def test_the_numeric_reading_of_each_kind_of_value(value: Any, integral: bool, read: bool) -> None:
    got = _same("read_numeric", {"f0": value}, ["f0"], [-1e300], [1e300], [integral])
    assert (got is not None) == read
    if got is not None:
        assert got == ([value], [float(value)]) and type(got[0][0]) is type(value)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("d2", ([1.0, 2.0], [[1.0, 2.0]])),  # a row without its constant
        ("scores_one", ([1.0, 2.0], [0.0], [1.0, 1.0], [[1.0, 0.0, 0.0]] * 2)),
        ("distance", ([1.0, 2.0], [1.0], [1.0, 1.0])),
        ("instability_one", ([0.5, 0.5], [[0.5, 0.25, 0.25]])),
        ("instability_one", ([0.2, 0.3, 0.5], [[0.5, 0.5]])),
    ],
)
def test_lengths_that_do_not_match_are_an_error_in_both_forms(name: str, args: Any) -> None:
    for module in FORMS:
        with pytest.raises(ValueError):
            getattr(module, name)(*args)


probabilities = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(
    classes=st.integers(1, 4),
    k=st.sampled_from([1, 2, 7, 8, 9, 16, 130]),
    data=st.data(),
)
def test_instability_and_its_sums_agree_in_both_forms(
    classes: int, k: int, data: st.DataObject
) -> None:
    cell = st.floats(0.0, 1.0) | st.just(math.nan)
    p = data.draw(st.lists(cell, min_size=classes, max_size=classes))
    copies = data.draw(
        st.lists(st.lists(cell, min_size=classes, max_size=classes), min_size=k, max_size=k)
    )
    _same("instability_one", p, copies)
    values = [c[0] for c in copies]
    total = _same("pairwise_sum", values)
    reduced = float(np.add.reduce(np.array(values, dtype=float)))
    assert _bits(total) == _bits(reduced)  # numpy's own order, bit for bit
    assert _same("argmax", p) == int(np.argmax(np.array(p, dtype=float)))


cells = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, width=64)
    | st.sampled_from([0, 1, -1, 2.5, 3.0, 2**53, 2**53 + 1, -(2**53) - 1, "1", ""])
)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), d=st.integers(1, 4))
def test_the_numeric_reading_agrees_in_both_forms(data: st.DataObject, d: int) -> None:
    names = [f"f{j}" for j in range(d)]
    instance = {n: data.draw(cells) for n in names}
    change = data.draw(st.sampled_from(["none", "none", "drop", "extra"]))
    if change == "drop":
        del instance[names[-1]]
    elif change == "extra":
        instance["extra"] = 1.0
    lows = data.draw(st.lists(st.sampled_from([-math.inf, -10.0, 0.0]), min_size=d, max_size=d))
    highs = data.draw(st.lists(st.sampled_from([math.inf, 10.0, 2.0**53]), min_size=d, max_size=d))
    integer = data.draw(st.lists(st.booleans(), min_size=d, max_size=d))
    got = _same("read_numeric", instance, names, lows, highs, integer)
    if got is not None:
        values, x = got
        assert values == [instance[n] for n in names] and len(instance) == d
        assert x == [float(v) for v in values]
        for v, low, high, whole in zip(values, lows, highs, integer, strict=True):
            assert type(v) in (int, float) and low <= v <= high
            assert not whole or float(v).is_integer()


@settings(deadline=None)
@given(st.integers(1, 300), st.floats(0.001, 0.5), st.data())
def test_chernoff_bounds_the_binomial_tail_in_both_forms(
    n: int, base: float, draw: st.DataObject
) -> None:
    hits = draw.draw(st.integers(0, n))
    p = _same("chernoff_p", hits, n, base)
    assert p >= sps.binom.sf(hits - 1, n, base) - 1e-12
    assert _same("chernoff_p", 0, 0, base) == 1.0


class _DequeWindows:
    """The windows as they were: a deque of ``maxlen`` per signal and a running sum."""

    def __init__(self, size: int) -> None:
        self.windows = [deque[int](maxlen=size) for _ in range(3)]
        self.sums = [0, 0, 0]

    def push(self, signal: int, hit: int) -> None:
        w = self.windows[signal]
        if len(w) == w.maxlen:
            self.sums[signal] -= w[0]
        w.append(hit)
        self.sums[signal] += hit


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(1, 12),
    pushes=st.lists(st.tuples(st.integers(0, 1), st.integers(-1, 1), st.integers(-1, 1))),
    min_queries=st.integers(0, 14),
    min_share=st.floats(0.0, 1.0),
    alpha=st.sampled_from([1e-6, 0.01, 0.5, 1.0]),
    base=st.floats(0.001, 0.9),
)
def test_the_extraction_windows_keep_the_last_observations_in_both_forms(
    size: int,
    pushes: list[tuple[int, int, int]],
    min_queries: int,
    min_share: float,
    alpha: float,
    base: float,
) -> None:
    """The ring windows hold what a deque of ``maxlen`` holds (the last ``size``
    observations, their sum), and the first signal to fire is the one the plain test
    names."""
    reference = _DequeWindows(size)
    forms = [module.Windows(size) for module in FORMS]
    rates = [base, base / 2, min(0.99, base * 2)]
    for unusual, boundary, step in pushes:
        for w in forms:
            w.observe(unusual, boundary, step)
        reference.push(0, unusual)
        if boundary >= 0:
            reference.push(1, boundary)
        if step >= 0:
            reference.push(2, step)
        expected = -1
        for s in range(3):
            n = len(reference.windows[s])
            hits = reference.sums[s]
            if (
                n >= max(min_queries, 1)
                and hits / n >= min_share
                and PLAIN.chernoff_p(hits, n, rates[s]) < alpha
            ):
                expected = s
                break
        for w in forms:
            assert w.sums == reference.sums
            assert [len(r) for r in w.rings] == [len(d) for d in reference.windows]
            assert sorted(w.rings[0]) == sorted(reference.windows[0])
            assert w.first_signal(min_queries, min_share, alpha, rates) == expected


def test_a_window_holds_at_least_one_observation() -> None:
    for module in FORMS:
        with pytest.raises(ValueError):
            module.Windows(0)
