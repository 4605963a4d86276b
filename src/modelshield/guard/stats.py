"""Drift statistics computed from histogram counts, in pure Python.

Every statistic here takes two lists of counts over the same bins: the reference's and a
window's. Counts are mergeable (the counts of two windows, or of two replicas, add up), which
is what lets stateless replicas share one database: each writes its own counts, and drift is
computed from their sums.

* :func:`psi`: population stability index, ``sum((c - r) * ln(c / r))`` over bin shares,
  with empty bins floored at :data:`PSI_FLOOR` (0 exactly when the shares are equal).
* :func:`ks`: the two-sample Kolmogorov-Smirnov statistic of the binned values (the largest
  gap between the two cumulative shares; SciPy's ``ks_2samp`` on the bin indices gives the
  same number) and its asymptotic p-value (SciPy's ``kstwobign``).
* :func:`chi2`: Pearson's chi-squared test of homogeneity of the two histograms (SciPy's
  ``chi2_contingency`` without continuity correction), bins empty in both left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

PSI_FLOOR = 1e-4
"""Share given to a bin that is empty in one of the histograms (PSI would be infinite)."""


def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    """Population stability index of ``current`` against ``reference`` (>= 0)."""
    r_total = float(sum(reference))
    c_total = float(sum(current))
    if r_total <= 0 or c_total <= 0:
        return 0.0
    value = 0.0
    for r, c in zip(reference, current, strict=True):
        rs = max(r / r_total, PSI_FLOOR)
        cs = max(c / c_total, PSI_FLOOR)
        if rs != cs:
            value += (cs - rs) * math.log(cs / rs)
    return max(value, 0.0)


def ks(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float]:
    """Kolmogorov-Smirnov statistic and asymptotic p-value of two histograms (ordered bins)."""
    r_total = float(sum(reference))
    c_total = float(sum(current))
    if r_total <= 0 or c_total <= 0:
        return 0.0, 1.0
    r_cum = c_cum = 0.0
    d = 0.0
    for r, c in zip(reference, current, strict=True):
        r_cum += r
        c_cum += c
        d = max(d, abs(r_cum / r_total - c_cum / c_total))
    en = r_total * c_total / (r_total + c_total)
    return d, kolmogorov_sf(math.sqrt(en) * d)


def chi2(reference: Sequence[float], current: Sequence[float]) -> tuple[float, int, float]:
    """Chi-squared statistic, degrees of freedom and p-value of the 2 x k table."""
    pairs = [(r, c) for r, c in zip(reference, current, strict=True) if r + c > 0]
    r_total = float(sum(r for r, _ in pairs))
    c_total = float(sum(c for _, c in pairs))
    total = r_total + c_total
    if r_total <= 0 or c_total <= 0 or len(pairs) < 2:
        return 0.0, 0, 1.0
    stat = 0.0
    for r, c in pairs:
        column = r + c
        for observed, row in ((r, r_total), (c, c_total)):
            expected = row * column / total
            stat += (observed - expected) ** 2 / expected
    dof = len(pairs) - 1
    return stat, dof, chi2_sf(stat, dof)


def kolmogorov_sf(x: float) -> float:
    """Survival function of the Kolmogorov distribution (the limit of sqrt(n) * D_n)."""
    if x <= 0:
        return 1.0
    if x < 1.0:
        # The other series converges faster for small x: 1 - sqrt(2 pi)/x sum exp(-(2k-1)^2
        # pi^2 / (8 x^2)).
        total = 0.0
        for k in range(1, 50):
            term = math.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * x * x))
            total += term
            if term < 1e-17:
                break
        return min(1.0, max(0.0, 1.0 - math.sqrt(2 * math.pi) / x * total))
    total = 0.0
    for k in range(1, 100):
        term = (-1) ** (k - 1) * math.exp(-2 * k * k * x * x)
        total += term
        if abs(term) < 1e-17:
            break
    return min(1.0, max(0.0, 2.0 * total))


def chi2_sf(x: float, dof: int) -> float:
    """Survival function of the chi-squared distribution with ``dof`` degrees of freedom."""
    if dof <= 0:
        return 1.0
    if x <= 0:
        return 1.0
    return _gamma_q(dof / 2.0, x / 2.0)


def _gamma_q(a: float, x: float) -> float:
    """The regularised upper incomplete gamma function Q(a, x)."""
    if x < a + 1.0:
        # Series for P(a, x).
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1.0
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        p = total * math.exp(-x + a * math.log(x) - math.lgamma(a))
        return max(0.0, 1.0 - p)
    # Continued fraction for Q(a, x) (modified Lentz).
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            break
    return min(1.0, math.exp(-x + a * math.log(x) - math.lgamma(a)) * h)
