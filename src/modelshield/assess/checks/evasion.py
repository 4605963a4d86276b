"""Evasion: how small a crafted change turns the model's answer, within a query budget.

A decision-based black-box attack of the HopSkipJump family, written for tabular data and
vectorised over the attacked rows (one model call serves every row at each step):

1. **start** from the nearest rows of the data that the model already answers differently
   (free: the baseline predictions are known), with the attacked row's categories kept, and
   keep the nearest one that is still adversarial (one call);
2. **line search** between the row and that point for the boundary (two calls of a few points
   each, rather than ten sequential halvings);
3. **iterate**: estimate the boundary's normal from the signs of random probes around the
   boundary point (one call), step along it into the adversarial side (one call), and line-
   search back towards the row (two calls); stop at the budget.

Every probe respects the columns' constraints: categories never change, integers stay
integers, values stay within the observed bounds. Distances are "scaled L2": the change of each
numeric column in its standard deviations, root-mean-square over the columns (the L2 norm over
the square root of their number, so that a size means the same for 3 columns or 300). Where
the model gives gradients (a torch program), PGD runs as well. The success rate at each
perturbation size, the median minimal perturbation over successful rows and the queries per
row are reported."""

from __future__ import annotations

import numpy as np

from modelshield.assess.context import Context, fmt
from modelshield.assess.interface import Skipped
from modelshield.assess.perturb import Space
from modelshield.assess.rules import EVASION
from modelshield.assess.stats import Array, wilson

CHECK = "evasion"
EPSILONS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)
"""Perturbation sizes (scaled L2) at which success is reported (the policy's added)."""
NEIGHBOURS = 6
"""Data rows tried as starting points per attacked row."""
LINE_POINTS = 5
"""Points per line-search call."""
STEPS = (1.0, 0.5, 0.25)
"""Step sizes along the estimated normal, as shares of the current distance."""
MAX_ITERATIONS = 10
"""Refinement rounds at most (each costs five calls, whatever the number of rows)."""
STALL = 0.005
"""A row whose distance shrank by less than this share in a round stops being refined."""
MEMORY = 0.8
"""Weight of the earlier estimates of the boundary's normal at each iteration."""
PROBE_RADIUS = 0.05
"""Radius of the probes around a boundary point, as a share of its distance: well above the
line search's resolution, so that probes fall on both sides."""
LINE_PASSES = 3
"""Line-search calls: each narrows the bracket by ``LINE_POINTS + 1``."""
MARGINS = (1.02, 1.1, 1.3)
"""Jumps to the tangent plane's nearest point, past it by these factors."""


def scaled_l2(z: Array) -> Array:
    """The size of changes ``z`` given in standard deviations of each column: the
    root-mean-square over the numeric columns (the L2 norm over the square root of their
    number), so that sizes mean the same whatever the number of columns."""
    out: Array = np.linalg.norm(z, axis=1) / np.sqrt(max(z.shape[1], 1))
    return out


class _Attack:
    """The state of the attack on every row at once, in scaled coordinates."""

    def __init__(
        self,
        ctx: Context,
        rows: Array,
        space: Space,
        origin: Array,
        label: Array,
        rng: np.random.Generator,
    ) -> None:
        self.ctx = ctx
        self.frame = ctx.data.frame.iloc[rows].reset_index(drop=True)
        self.space = space
        self.x0 = origin  # (r, d) original values
        self.label = label  # original predictions
        self.rng = rng
        self.best = np.full(len(rows), np.inf)  # best scaled distance found
        self.point = origin.copy()  # best adversarial point (original units)
        self.queries = np.zeros(len(rows), dtype=np.int64)
        self.normal = np.zeros_like(origin)  # running estimate of the boundary's normal

    def adversarial(self, points: Array, owners: Array) -> Array:
        """Query ``points`` (each for the row ``owners`` names); which changed the answer."""
        x = self.space.project(points)
        base = self.frame.iloc[owners].reset_index(drop=True)
        p = self.ctx.predict(self.space.frame(base, x))
        np.add.at(self.queries, owners, 1)
        out: Array = p.labels != self.label[owners]
        return out

    def distance(self, points: Array, owners: Array) -> Array:
        """Scaled L2 distance of projected points from their rows (see :func:`scaled_l2`)."""
        return scaled_l2((self.space.project(points) - self.x0[owners]) / self.space.scale)

    def keep(self, points: Array, owners: Array, hits: Array) -> None:
        """Remember the nearest adversarial point of each row."""
        dist = self.distance(points, owners)
        for i in np.flatnonzero(hits):
            o = owners[i]
            if dist[i] < self.best[o]:
                self.best[o] = dist[i]
                self.point[o] = self.space.project(points[i])

    def line_search(self, active: Array) -> None:
        """Pull each active row's point towards the row, along the line, in two calls."""
        lo = np.zeros(len(active))
        hi = np.ones(len(active))
        for _ in range(LINE_PASSES):
            fractions = (
                lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, LINE_POINTS + 2)[None, 1:-1]
            )
            owners = np.repeat(active, LINE_POINTS)
            start, end = self.x0[owners], self.point[owners]
            points = start + fractions.reshape(-1, 1) * (end - start)
            hits = self.adversarial(points, owners).reshape(len(active), LINE_POINTS)
            self.keep(points, owners, hits.reshape(-1))
            f = fractions
            first = np.where(hits.any(axis=1), hits.argmax(axis=1), LINE_POINTS)
            new_hi = np.where(
                first < LINE_POINTS,
                f[np.arange(len(active)), np.minimum(first, LINE_POINTS - 1)],
                hi,
            )
            new_lo = np.where(first > 0, f[np.arange(len(active)), np.maximum(first - 1, 0)], lo)
            lo, hi = np.where(first > 0, new_lo, lo), new_hi


def _start(attack: _Attack, ctx: Context, rows: Array, space: Space) -> None:
    """Nearest differently-answered rows of the data as starting points (one call)."""
    everything = space.matrix(ctx.data.frame)
    other = ctx.base.labels[None, :] != attack.label[:, None]  # (r, n)
    z = np.nan_to_num(everything / space.scale)
    z0 = attack.x0 / space.scale
    # |a - b|^2 = |a|^2 + |b|^2 - 2ab: an (rows, n) matrix, never (rows, n, columns).
    squared = (z0**2).sum(axis=1)[:, None] + (z**2).sum(axis=1)[None, :] - 2 * z0 @ z.T
    dist = np.sqrt(np.maximum(squared, 0.0))
    complete = np.asarray(np.isfinite(everything).all(axis=1))
    dist = np.where(other & complete[None, :], dist, np.inf)
    k = min(NEIGHBOURS, dist.shape[1])
    nearest = np.argsort(dist, axis=1)[:, :k]
    owners = np.repeat(np.arange(len(rows)), k)
    points = everything[nearest.reshape(-1)]
    valid = np.isfinite(dist[owners, nearest.reshape(-1)])
    points = np.where(np.isfinite(points), points, attack.x0[owners])
    hits = attack.adversarial(points[valid], owners[valid])
    attack.keep(points[valid], owners[valid], hits)
    missing = np.flatnonzero(~np.isfinite(attack.best))
    if len(missing):  # no data row works: random directions, growing radius (one call)
        radii = np.array([1.0, 2.0, 4.0, 8.0])
        owners = np.repeat(missing, len(radii) * 2)
        u = attack.rng.normal(size=(len(owners), space.scale.size))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        r = np.tile(np.repeat(radii, 2), len(missing))[:, None]
        points = attack.x0[owners] + u * r * space.scale
        attack.keep(points, owners, attack.adversarial(points, owners))


def _iterate(attack: _Attack, budget: int, probes: int) -> None:
    """HopSkipJump-style refinement while every active row has budget left."""
    space = attack.space
    d = space.scale.size
    t = 0
    last = attack.best.copy()
    per_iteration = probes + len(STEPS) + len(MARGINS) + LINE_PASSES * LINE_POINTS
    while True:
        active = np.flatnonzero(
            np.isfinite(attack.best)
            & (attack.queries + per_iteration <= budget)
            & (attack.best > 1e-9)
        )
        if len(active) == 0 or t >= MAX_ITERATIONS:
            return
        if t >= 3:  # rows that stopped improving rest (their budget is not spent)
            improving = attack.best[active] < last[active] * (1 - STALL)
            active = active[improving]
            if len(active) == 0:
                return
        last = attack.best.copy()
        t += 1
        boundary = attack.point[active]
        dist = attack.best[active]
        delta = np.maximum(dist * PROBE_RADIUS, 1e-3)
        owners = np.repeat(active, probes)
        u = attack.rng.normal(size=(len(owners), d))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        around = boundary.repeat(probes, axis=0) + u * np.repeat(delta, probes)[:, None] * (
            space.scale
        )
        sign = np.where(attack.adversarial(around, owners), 1.0, -1.0).reshape(len(active), probes)
        sign -= sign.mean(axis=1, keepdims=True)
        estimate = (sign[:, :, None] * u.reshape(len(active), probes, d)).sum(axis=1) / probes
        # The boundary's normal changes slowly along it: earlier estimates still count.
        memory = attack.normal[active] * MEMORY + estimate
        attack.normal[active] = memory
        norm = np.linalg.norm(memory, axis=1, keepdims=True)
        grad = memory
        grad = np.where(norm > 0, grad / np.where(norm > 0, norm, 1.0), 0.0)
        # Candidates, all in one call: steps along the normal into the adversarial side (a
        # shrinking share of the distance), and jumps to the nearest point of the boundary's
        # tangent plane (exact for a locally linear boundary), with small margins.
        size = (dist / np.sqrt(t))[:, None] * np.array(STEPS)[None, :]  # (a, steps)
        stepped = boundary[:, None, :] + grad[:, None, :] * size[:, :, None] * space.scale
        offset = (boundary - attack.x0[active]) / space.scale
        along = (offset * grad).sum(axis=1)
        jumps = attack.x0[active][:, None, :] + (
            grad[:, None, :]
            * (along[:, None] * np.array(MARGINS)[None, :])[:, :, None]
            * space.scale
        )
        candidates = np.concatenate([stepped, jumps], axis=1)  # (a, c, d)
        c = candidates.shape[1]
        flat = candidates.reshape(-1, d)
        owners = np.repeat(active, c)
        hits = attack.adversarial(flat, owners).reshape(len(active), c)
        attack.keep(flat, owners, hits.reshape(-1))
        # Line-search from the row towards the nearest adversarial candidate.
        dists = np.where(hits, attack.distance(flat, owners).reshape(len(active), c), np.inf)
        moved = np.isfinite(dists).any(axis=1)
        for i in np.flatnonzero(moved):
            j = int(np.argmin(dists[i]))
            attack.point[active[i]] = space.project(candidates[i, j])
            attack.best[active[i]] = dists[i, j]
        if moved.any():
            attack.line_search(active[moved])


def run(ctx: Context) -> None:
    """Attack a sample of correctly answered rows; a finding when small changes succeed."""
    if not ctx.classification:
        raise Skipped("evasion is measured on classifiers")
    numeric = ctx.numeric_columns
    if not numeric:
        raise Skipped("no numeric column to perturb (categories are never changed)")
    settings = ctx.settings
    rng = np.random.default_rng(ctx.seed(CHECK))
    space = Space.of(ctx.data.frame, numeric, dict(ctx.data.kinds))
    x_all = space.matrix(ctx.data.frame)
    usable = np.flatnonzero(ctx.correct() & np.isfinite(x_all).all(axis=1))
    if len(usable) == 0:
        raise Skipped("no correctly answered row without missing values to attack")
    rows = np.sort(rng.choice(usable, min(settings.evasion_rows, len(usable)), replace=False))
    attack = _Attack(ctx, rows, space, x_all[rows], ctx.base.labels[rows], rng)
    _start(attack, ctx, rows, space)
    found = np.isfinite(attack.best)
    if found.any():
        attack.line_search(np.flatnonzero(found))
    probes = max(8, min(32, 2 * space.scale.size))
    _iterate(attack, settings.evasion_queries, probes)
    distances = attack.best
    _report(ctx, "black-box", distances, attack.queries, len(rows))
    if ctx.gradient is not None:
        from modelshield.assess.checks.pgd import pgd

        pgd(ctx, rows, space, attack.x0, attack.label)
    eps = settings.evasion_epsilon
    success = distances <= eps
    ci = wilson(float(success.sum()), len(rows), settings.confidence)
    if ci[0] is None or ci[0] <= settings.max_evasion_success:
        return
    ok = distances[np.isfinite(distances)]
    ctx.add(
        EVASION,
        f"A black-box attack turned {int(success.sum())} of {len(rows)} rows "
        f"({success.mean():.0%}, 95% CI {ci[0]:.0%}-{ci[1]:.0%}) with a change of at most "
        f"{eps:g} standard deviations per column (scaled L2, root-mean-square; limit "
        f"{settings.max_evasion_success:.0%} of rows); median minimal change "
        f"{fmt(float(np.median(ok)))} sd, "
        f"{float(np.mean(attack.queries)):.0f} queries per row.",
        CHECK,
        {
            "attack": "black-box (decision-based)",
            "epsilon": f"{eps:g}",
            "success_rate": fmt(float(success.mean()), 4),
            "ci": f"{ci[0]:.4f}-{ci[1]:.4f}",
            "median_minimal_l2": fmt(float(np.median(ok)), 4),
            "queries_per_row": f"{float(np.mean(attack.queries)):.0f}",
            "rows": str(len(rows)),
        },
    )


def _report(ctx: Context, attack: str, distances: Array, queries: Array, rows: int) -> None:
    eps = sorted({*EPSILONS, ctx.settings.evasion_epsilon})
    rates = [float(np.mean(distances <= e)) for e in eps]
    for e, rate in zip(eps, rates, strict=True):
        ctx.measure(
            CHECK,
            "success_rate",
            rate,
            wilson(rate * rows, rows, ctx.settings.confidence),
            group=f"{attack}, L2 <= {e:g}",
            n=rows,
        )
    ok = distances[np.isfinite(distances)]
    ctx.measure(CHECK, "success_rate", float(len(ok)) / rows, group=f"{attack}, any size", n=rows)
    ctx.measure(
        CHECK,
        "median_minimal_l2",
        float(np.median(ok)) if len(ok) else None,
        group=attack,
        n=len(ok),
    )
    ctx.measure(CHECK, "queries_per_row", float(np.mean(queries)), group=attack, n=rows)
    ctx.curve(
        CHECK,
        "success_vs_perturbation",
        "perturbation (scaled L2)",
        "success rate",
        eps,
        rates,
        series=attack,
    )
    ctx.covered[CHECK] = f"{rows} rows, at most {ctx.settings.evasion_queries} queries each"
