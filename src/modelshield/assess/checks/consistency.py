"""Consistency: the same rows give the same answers, predicted again or one at a time.

Two cheap probes (three calls): the first rows predicted a second time (a stochastic model
answers differently), and three rows predicted alone (a model whose answer depends on the
other rows of its batch leaks between requests: batch normalisation left in training mode,
per-batch scaling)."""

from __future__ import annotations

import numpy as np

from modelshield.assess.context import Context
from modelshield.assess.interface import Prediction
from modelshield.assess.rules import INCONSISTENT
from modelshield.assess.stats import Array

CHECK = "consistency"
REPEAT_ROWS = 200
"""Rows predicted a second time."""
SINGLE_ROWS = 3
"""Rows predicted one at a time."""
TOLERANCE = 1e-6
"""Largest difference between two probabilities (or values) counted as the same answer."""


def _differs(a: Prediction, b: Prediction, idx: Array, regression: bool) -> Array:
    if regression:
        out: Array = ~np.isclose(a.labels[idx], b.labels, rtol=TOLERANCE, atol=TOLERANCE)
        return out
    changed: Array = a.labels[idx] != b.labels
    if a.proba is not None and b.proba is not None:
        changed |= ~np.isclose(a.proba[idx], b.proba, atol=TOLERANCE).all(axis=1)
    return changed


def run(ctx: Context) -> None:
    """Predict again and one at a time; a finding for any row whose answer changed."""
    n = len(ctx.y)
    regression = not ctx.classification
    again_idx = np.arange(min(REPEAT_ROWS, n))
    again = ctx.predict(ctx.data.frame.iloc[again_idx])
    changed_again = _differs(ctx.base, again, again_idx, regression)
    single_idx = np.linspace(0, n - 1, min(SINGLE_ROWS, n)).astype(int)
    singles = [ctx.predict(ctx.data.frame.iloc[[i]]) for i in single_idx]
    changed_single = np.array(
        [
            bool(_differs(ctx.base, s, np.array([i]), regression)[0])
            for s, i in zip(singles, single_idx, strict=True)
        ]
    )
    ctx.measure(CHECK, "changed_on_repeat", float(changed_again.mean()), n=len(again_idx))
    ctx.measure(CHECK, "changed_alone", float(changed_single.mean()), n=len(single_idx))
    ctx.covered[CHECK] = f"{len(again_idx)} rows predicted again, {len(single_idx)} alone"
    if changed_again.any():
        first = int(again_idx[np.flatnonzero(changed_again)[0]])
        ctx.add(
            INCONSISTENT,
            f"{int(changed_again.sum())} of {len(again_idx)} rows ({changed_again.mean():.0%}) "
            f"got a different answer when predicted a second time (first: row {first}): the "
            "model is not deterministic.",
            CHECK,
            {
                "kind": "stochastic",
                "changed": str(int(changed_again.sum())),
                "rows": str(len(again_idx)),
                "example_row": str(first),
            },
        )
    if changed_single.any():
        first = int(single_idx[np.flatnonzero(changed_single)[0]])
        ctx.add(
            INCONSISTENT,
            f"{int(changed_single.sum())} of {len(single_idx)} rows got a different answer when "
            f"predicted alone rather than in a batch (first: row {first}): the prediction depends "
            "on the other rows of the batch.",
            CHECK,
            {
                "kind": "batch-dependent",
                "changed": str(int(changed_single.sum())),
                "rows": str(len(single_idx)),
                "example_row": str(first),
            },
        )
