"""PGD (projected gradient descent, L2, in units of each column's standard deviation, sizes as
root-mean-square over the columns like the black-box attack's) for
models that give gradients: every perturbation size at once, ten gradient steps, then one
prediction call. Part of the evasion check; its figures are reported under ``white-box``."""

from __future__ import annotations

import numpy as np

from modelshield.assess.context import Context
from modelshield.assess.perturb import Space
from modelshield.assess.stats import Array

STEPS = 10
"""Gradient steps per perturbation size."""


def pgd(ctx: Context, rows: Array, space: Space, x0: Array, label: Array) -> None:
    """Attack ``rows`` (original numeric values ``x0``, answers ``label``) with PGD."""
    from modelshield.assess.checks.evasion import EPSILONS, _report

    columns = list(ctx.predict.columns)
    where = np.array([columns.index(c) for c in space.columns])
    eps = np.array(sorted({*EPSILONS, ctx.settings.evasion_epsilon}))
    r, k = len(rows), len(eps)
    base = ctx.data.frame.iloc[rows].reset_index(drop=True)
    full = np.repeat(base[columns].to_numpy(dtype=float), k, axis=0)
    start = np.repeat(x0, k, axis=0)
    radius = np.tile(eps, r)[:, None] * np.sqrt(len(where))  # scaled L2 is an RMS
    target = np.repeat(label, k)
    z = np.zeros_like(start)
    for _ in range(STEPS):
        x = space.project(start + z * space.scale)
        full[:, where] = x
        ctx.predict.ledger.count(len(full))
        grad = np.asarray(ctx.gradient(full, target))[:, where] * space.scale
        norm = np.linalg.norm(grad, axis=1, keepdims=True)
        z = z + 2.5 * radius / STEPS * np.where(norm > 0, grad / np.where(norm > 0, norm, 1), 0)
        length = np.linalg.norm(z, axis=1, keepdims=True)
        z = np.where(length > radius, z * radius / np.where(length > 0, length, 1), z)
    x = space.project(start + z * space.scale)
    frame = space.frame(base.iloc[np.repeat(np.arange(r), k)].reset_index(drop=True), x)
    turned = (ctx.predict(frame).labels != target).reshape(r, k)
    distances = np.where(turned.any(axis=1), eps[np.argmax(turned, axis=1)], np.inf)
    queries = np.full(r, (STEPS + 1) * k)
    _report(ctx, "white-box (PGD)", distances, queries, r)
