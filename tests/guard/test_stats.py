"""Drift statistics: property tests and equality with SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from modelshield.guard import stats

counts = st.lists(st.integers(min_value=0, max_value=10_000), min_size=2, max_size=30).filter(
    lambda c: sum(c) > 0
)


@given(counts)
def test_psi_of_a_histogram_with_itself_is_zero(c: list[int]) -> None:
    assert stats.psi(c, c) == 0.0


@given(counts, st.integers(min_value=2, max_value=50))
def test_psi_depends_on_shares_only(c: list[int], k: int) -> None:
    assert stats.psi(c, [k * v for v in c]) == pytest.approx(0.0, abs=1e-12)


@given(counts, counts)
def test_psi_is_never_negative_and_is_symmetric(a: list[int], b: list[int]) -> None:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    if sum(a) and sum(b):
        assert stats.psi(a, b) >= 0.0
        assert stats.psi(a, b) == pytest.approx(stats.psi(b, a))


def test_psi_of_a_known_shift() -> None:
    # (0.6-0.5) ln(0.6/0.5) + (0.4-0.5) ln(0.4/0.5)
    assert stats.psi([50, 50], [60, 40]) == pytest.approx(0.1 * np.log(1.2) - 0.1 * np.log(0.8))


samples = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3, max_size=200)


@settings(max_examples=150, deadline=None)
@given(samples, samples, st.lists(st.floats(-1e3, 1e3, allow_nan=False), max_size=15))
def test_ks_from_histograms_equals_scipy_on_the_binned_values(
    a: list[float], b: list[float], edges: list[float]
) -> None:
    cuts = np.unique(np.asarray(edges, dtype=float))
    ia = np.searchsorted(cuts, a, side="right")
    ib = np.searchsorted(cuts, b, side="right")
    ha = np.bincount(ia, minlength=len(cuts) + 1)
    hb = np.bincount(ib, minlength=len(cuts) + 1)
    d, p = stats.ks(ha.tolist(), hb.tolist())
    expected = sps.ks_2samp(ia, ib, method="asymp")
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    en = len(a) * len(b) / (len(a) + len(b))
    assert p == pytest.approx(sps.kstwobign.sf(np.sqrt(en) * d), abs=1e-9)


def test_ks_on_integer_data_equals_scipy_on_the_raw_values() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 20, 500)
    b = rng.integers(2, 22, 300)
    ha = np.bincount(a, minlength=22)
    hb = np.bincount(b, minlength=22)
    assert stats.ks(ha.tolist(), hb.tolist())[0] == pytest.approx(sps.ks_2samp(a, b).statistic)


@pytest.mark.parametrize("x", [0.0, 0.1, 0.3, 0.5, 0.8, 0.99, 1.0, 1.36, 2.0, 3.5, 6.0])
def test_kolmogorov_survival_equals_scipy(x: float) -> None:
    assert stats.kolmogorov_sf(x) == pytest.approx(sps.kstwobign.sf(x), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(counts, counts)
def test_chi2_equals_scipy_contingency(a: list[int], b: list[int]) -> None:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    keep = [i for i in range(n) if a[i] + b[i] > 0]
    stat, dof, p = stats.chi2(a, b)
    if len(keep) < 2 or not sum(a) or not sum(b):
        assert (stat, dof, p) == (0.0, 0, 1.0)
        return
    table = np.array([[a[i] for i in keep], [b[i] for i in keep]])
    expected = sps.chi2_contingency(table, correction=False)
    assert stat == pytest.approx(expected.statistic, rel=1e-9, abs=1e-9)
    assert dof == expected.dof
    assert p == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("dof", [1, 2, 3, 7, 30, 200])
@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 3.0, 10.0, 50.0, 300.0])
def test_chi2_survival_equals_scipy(x: float, dof: int) -> None:
    assert stats.chi2_sf(x, dof) == pytest.approx(sps.chi2.sf(x, dof), rel=1e-8, abs=1e-300)
