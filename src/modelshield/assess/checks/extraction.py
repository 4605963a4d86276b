"""Extraction susceptibility: how well a cheap copy trained from a few queries agrees with the
model. Synthetic rows are drawn column by column from the data's own values (so they carry no
row of the data), the model labels them (``extraction_queries`` rows, one call), and a
softmax regression (a ridge regression for regression models) is fitted with numpy. Its
agreement with the model is measured on the evaluation rows.

Almost every model can be copied this way, so this is a measurement; a finding only when the
policy sets ``max_extraction_agreement`` below 1."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelshield.assess.context import Context, fmt
from modelshield.assess.encode import Encoder, fit_linear, fit_softmax
from modelshield.assess.rules import EXTRACTABLE

CHECK = "extraction"


def run(ctx: Context) -> None:
    """Query synthetic rows, fit the surrogate, measure agreement."""
    settings = ctx.settings
    rng = np.random.default_rng(ctx.seed(CHECK))
    frame = ctx.data.frame[ctx.predict.columns]
    n = settings.extraction_queries
    synthetic = pd.DataFrame(
        {c: frame[c].to_numpy()[rng.integers(0, len(frame), n)] for c in frame.columns}
    )
    answers = ctx.predict(synthetic)
    encode = Encoder(frame, dict(ctx.data.kinds))
    x_train, x_eval = encode(synthetic), encode(frame)
    if ctx.classification:
        labels = np.maximum(answers.labels, 0)
        w = fit_softmax(x_train, labels, len(ctx.classes))
        copy = np.argmax(x_eval @ w, axis=1)
        agreement = float(np.mean(copy == ctx.base.labels))
        ctx.measure(CHECK, "agreement", agreement, n=len(frame))
    else:
        w = fit_linear(x_train, answers.labels)
        copy = x_eval @ w
        residual = np.sum((copy - ctx.base.labels) ** 2)
        total = np.sum((ctx.base.labels - ctx.base.labels.mean()) ** 2) or 1.0
        agreement = float(1.0 - residual / total)
        ctx.measure(CHECK, "r2_vs_model", agreement, n=len(frame))
    ctx.measure(CHECK, "queries", float(n), n=n)
    ctx.covered[CHECK] = f"surrogate trained from {n} queries"
    if agreement <= settings.max_extraction_agreement:
        return
    ctx.add(
        EXTRACTABLE,
        f"A {'softmax' if ctx.classification else 'linear'} surrogate trained on {n} queries of "
        f"synthetic rows agrees with the model on {agreement:.1%} of the evaluation rows "
        f"(limit {settings.max_extraction_agreement:.0%}).",
        CHECK,
        {
            "agreement": fmt(agreement, 4),
            "queries": str(n),
            "threshold": f"{settings.max_extraction_agreement:g}",
        },
    )
