"""The guard's per-instance arithmetic on plain floats: the schema reading of a numeric
instance, the OOD scores, the instability of the perturbed copies' predictions, and the
extraction check's step distance, windows and test.

Plain Python, written for mypyc (``make dev`` compiles this module alone, in seconds, when
mypyc and a C compiler are there): typed lists of floats read by index, no ``zip`` or
``map``, so that the compiled form runs native double arithmetic. Compiled or not, the
operations and their order are the same (sums from left to right, numpy's order where the
batch form is numpy's), and so are the results, bit for bit: the tests compare both forms
on the same values. The compiled form is built with ``-ffp-contract=off``, so that no
multiply and add are fused into one rounding. Nothing here imports the rest of the package.
"""

from __future__ import annotations

import math

INF = math.inf
EXACT_INT = 2**53
"""Integers up to this size compare with a float bound exactly as floats."""


def read_numeric(
    instance: dict[str, object],
    names: list[str],
    lows: list[float],
    highs: list[float],
    integer: list[bool],
) -> tuple[list[object], list[float]] | None:
    """An instance of numeric features (an object from the request) read in the given
    order: its values and their floats, when every feature is there, with nothing else, as
    an int or a float (not a bool) within ``[low, high]`` and integral where ``integer``.
    Otherwise None: the caller's general reading says what is wrong, or what it makes of a
    missing value (None) or of one of another type. A shortcut of that reading, which
    agrees with it whenever this answers."""
    n = len(names)
    if len(instance) != n or len(lows) != n or len(highs) != n or len(integer) != n:
        return None
    values: list[object] = []
    x: list[float] = []
    for j in range(n):
        v = instance.get(names[j])
        # The type tested before any isinstance: compiled, an isinstance(v, int) narrows a
        # bool to an int, which type(v) then reports.
        t = type(v)
        if t is float and isinstance(v, float):
            f: float = v
            if integer[j] and not f.is_integer():
                return None
        elif t is int and isinstance(v, int):
            if not -EXACT_INT <= v <= EXACT_INT:
                return None
            f = float(v)
        else:
            return None  # None (missing), a bool, a string: the general reading's
        if f < lows[j] or f > highs[j] or f != f:
            return None
        values.append(v)
        x.append(f)
    return values, x


def d2(x: list[float], whitened: list[list[float]]) -> float:
    """The squared Mahalanobis distance of numeric values without NaN, in the whitened
    form: ``|W x - b|^2`` where each row of ``whitened`` is a row of W followed by its
    constant (``x`` extended by 1), each product sum and the sum of squares taken from left
    to right. An infinity's NaN (inf - inf) is infinitely far."""
    n = len(x)
    total = 0.0
    for row in whitened:
        if len(row) != n + 1:
            raise ValueError(f"{n} values for a row of {len(row) - 1} coefficients")
        w = 0.0
        for j in range(n):
            w += row[j] * x[j]
        w += row[n]
        total += w * w
    return total if total == total else INF


def scores_one(
    x: list[float], center: list[float], rscale: list[float], whitened: list[list[float]]
) -> tuple[float, float]:
    """One instance's OOD scores: the largest robust z-score ``|x - center| / rscale`` (a
    missing value, NaN, counts as 0) and :func:`d2` (NaN in ``x``: infinity, which the
    caller recomputes with the missing values at the mean)."""
    n = len(x)
    if len(center) != n or len(rscale) != n:
        raise ValueError(f"{n} values for {len(center)} centres and {len(rscale)} scales")
    u = 0.0
    for j in range(n):
        z = abs((x[j] - center[j]) / rscale[j])
        if z > u:  # False for NaN
            u = z
    return u, d2(x, whitened)


def distance(a: list[float], b: list[float], scale: list[float]) -> float:
    """The Euclidean distance of two instances in units of each feature's spread, over the
    features both have (NaN: missing); infinite, never an error, for absurd values."""
    n = len(a)
    if len(b) != n or len(scale) != n:
        raise ValueError(f"instances of {n} and {len(b)} values, {len(scale)} scales")
    total = 0.0
    for j in range(n):
        x = a[j]
        y = b[j]
        if x == x and y == y:
            d = (x - y) / scale[j]
            total += d * d
    return math.sqrt(total)


def pairwise_sum(values: list[float]) -> float:
    """``numpy.add.reduce`` of a contiguous float vector, in numpy's order (pairwise: eight
    running sums, then a fixed tree; below eight values, one after the other), so that the
    plain-Python scores equal the vectorised ones bit for bit."""
    n = len(values)
    if n == 8:  # the default perturbations: the tree alone
        a = values
        return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
    if n < 8:
        total = -0.0
        for i in range(n):
            total += values[i]
        return total
    if n > 128:
        half = n // 2
        half -= half % 8
        return pairwise_sum(values[:half]) + pairwise_sum(values[half:])
    r = values[:8]
    whole = n - n % 8
    for i in range(8, whole, 8):
        for j in range(8):
            r[j] += values[i + j]
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for i in range(whole, n):
        total += values[i]
    return total


def argmax(row: list[float]) -> int:
    """numpy's argmax of a row: the first largest value (a NaN counts as the largest)."""
    best = 0
    top = row[0]
    if top != top:
        return 0
    for i in range(1, len(row)):
        v = row[i]
        if v != v:
            return i
        if v > top:
            best = i
            top = v
    return best


def instability_one(p: list[float], copies: list[list[float]]) -> float:
    """The instability of one instance with probabilities ``p`` under its perturbed copies'
    probabilities: the share of copies whose label (argmax) differs, plus the mean total
    variation distance ``0.5 * sum |q - p|``; the same operations as the batch form's numpy,
    in its order."""
    k = len(copies)
    if len(p) == 2 and p[0] == p[0] and p[1] == p[1]:
        # Two classes (the usual case), written out: argmax is 1 only when the second is
        # larger, the distance's two terms summed in order.
        p0 = p[0]
        p1 = p[1]
        first_label = p1 > p0
        flips = 0
        tvs: list[float] = []
        for q0, q1 in copies:  # ValueError for a copy of other than two
            if q0 != q0 or q1 != q1:
                break  # a NaN: numpy's argmax rule, below
            flips += (q1 > q0) != first_label
            tvs.append(0.5 * (abs(q0 - p0) + abs(q1 - p1)))
        else:
            return (flips + pairwise_sum(tvs)) / k
    label = argmax(p)
    flips = 0
    tvs = []
    m = len(p)
    for i in range(k):
        q = copies[i]
        if len(q) != m:
            raise ValueError(f"a copy has {len(q)} probabilities, the instance {m}")
        if argmax(q) != label:
            flips += 1
        diffs = [abs(q[j] - p[j]) for j in range(m)]
        tvs.append(0.5 * pairwise_sum(diffs))
    return (flips + pairwise_sum(tvs)) / k


def chernoff_p(hits: int, n: int, base: float) -> float:
    """An upper bound on the chance of ``hits`` or more successes in ``n`` trials of rate
    ``base``: ``exp(-n KL(hits/n || base))`` (1 when the share is not above the rate)."""
    if n <= 0:
        return 1.0
    share = hits / n
    if share <= base:
        return 1.0
    if share >= 1.0:
        return float(base**n)
    kl = share * math.log(share / base) + (1 - share) * math.log((1 - share) / (1 - base))
    return math.exp(-n * kl)


class Windows:
    """One client's extraction windows: for each of the three signals, its last ``size``
    observations (1: the signal, 0: not) in a ring, oldest overwritten first, and their
    sum."""

    def __init__(self, size: int) -> None:
        """Empty windows of ``size`` observations (at least 1)."""
        if size < 1:
            raise ValueError(f"a window of {size} observations")
        self.size = size
        self.rings: list[list[int]] = [[], [], []]
        self.heads: list[int] = [0, 0, 0]
        self.sums: list[int] = [0, 0, 0]

    def push(self, signal: int, hit: int) -> None:
        """One observation (0 or 1) of a signal."""
        ring = self.rings[signal]
        if len(ring) < self.size:
            ring.append(hit)
        else:
            at = self.heads[signal]
            self.sums[signal] -= ring[at]
            ring[at] = hit
            at += 1
            self.heads[signal] = 0 if at == self.size else at
        self.sums[signal] += hit

    def observe(self, unusual: int, boundary: int, step: int) -> None:
        """One instance's observations of the three signals (-1: not observed)."""
        self.push(0, unusual)
        if boundary >= 0:
            self.push(1, boundary)
        if step >= 0:
            self.push(2, step)

    def first_signal(
        self, min_queries: int, min_share: float, alpha: float, base_rates: list[float]
    ) -> int:
        """The first signal (in order) whose window holds ``min_queries`` observations or
        more (one at least), of which at least ``min_share`` show it, a share less likely
        than ``alpha`` for traffic whose rate is the signal's base rate
        (:func:`chernoff_p`); -1: none."""
        for s in range(3):
            n = len(self.rings[s])
            if n < min_queries or n == 0:
                continue
            hits = self.sums[s]
            if hits / n >= min_share and chernoff_p(hits, n, base_rates[s]) < alpha:
                return s
        return -1
