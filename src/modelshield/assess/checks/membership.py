"""Membership inference: do the model's losses tell its training rows from others?

The loss-threshold attack (Yeom et al.): a row with a lower loss is more likely a member; for a
classifier each loss is ranked among the evaluation rows of its own class first. Its AUC
between training rows (``--train-data``) and evaluation rows is the leak; 0.5 is none.
The interval comes from resampling both sets. Without probabilities, the attack uses whether
the answer is right (a label-only attack)."""

from __future__ import annotations

import numpy as np

from modelshield.assess.context import Context, fmt, fmt_ci, label_key
from modelshield.assess.interface import DataError, Prediction, Skipped
from modelshield.assess.rules import MEMBERSHIP
from modelshield.assess.stats import Array, bootstrap_weights, interval, weighted_auc

CHECK = "membership"


def _loss(ctx: Context, p: Prediction, y: Array) -> Array:
    if not ctx.classification:
        out: Array = (p.labels - y) ** 2
        return out
    if p.proba is not None:
        loss: Array = -np.log(np.clip(p.proba[np.arange(len(y)), y], 1e-12, 1.0))
        return loss
    wrong: Array = (p.labels != y).astype(float)
    return wrong


def _per_class(score: Array, y: Array, reference: Array, reference_y: Array) -> Array:
    """Each score as its rank among the evaluation rows of the same class: losses differ
    between classes (a minority class is harder), and comparing like with like is a stronger
    attack (difficulty calibration, Watson et al. 2022)."""
    out = np.empty_like(score)
    for c in np.unique(y):
        ref = np.sort(reference[reference_y == c])
        mask = y == c
        out[mask] = np.searchsorted(ref, score[mask], side="right") / max(len(ref), 1)
    return out


def run(ctx: Context) -> None:
    """Measure the attack AUC; a finding above ``max_membership_auc``."""
    if ctx.train is None:
        raise Skipped("no training data given (--train-data)")
    settings = ctx.settings
    rng = np.random.default_rng(ctx.seed(CHECK))
    train = ctx.train
    take = np.sort(rng.choice(train.rows, min(settings.membership_rows, train.rows), replace=False))
    frame = train.frame.iloc[take].reset_index(drop=True)
    missing = [c for c in ctx.predict.columns if c not in frame.columns]
    if missing:
        raise DataError(f"{train.path}: the training data lacks column(s) {', '.join(missing)}")
    if ctx.classification:
        index = {c: i for i, c in enumerate(ctx.classes)}
        keys = [label_key(v) for v in train.target[take]]
        unknown = sorted({k for k in keys if k not in index})
        if unknown:
            raise DataError(
                f"{train.path}: target values the model does not know: {', '.join(unknown[:10])}"
            )
        y_train: Array = np.array([index[k] for k in keys], dtype=np.int64)
    else:
        y_train = train.target[take].astype(float)
    members = _loss(ctx, ctx.predict(frame), y_train)
    pick = np.sort(rng.choice(len(ctx.y), min(settings.membership_rows, len(ctx.y)), replace=False))
    others = _loss(
        ctx,
        Prediction(ctx.base.labels[pick], None if ctx.base.proba is None else ctx.base.proba[pick]),
        ctx.y[pick],
    )
    score = -np.concatenate([members, others])  # lower loss: more likely a member
    if ctx.classification:
        score = _per_class(score, np.concatenate([y_train, ctx.y[pick]]), -others, ctx.y[pick])
    is_member = np.r_[np.ones(len(members)), np.zeros(len(others))]
    auc = float(weighted_auc(score, is_member, np.ones((1, len(score))))[0])
    chunk = max(1, 2_000_000 // len(score))
    samples = [
        weighted_auc(score, is_member, np.hstack([wm, wo]))
        for wm, wo in zip(
            bootstrap_weights(len(members), settings.bootstrap, ctx.seed(CHECK) + 1, chunk=chunk),
            bootstrap_weights(len(others), settings.bootstrap, ctx.seed(CHECK) + 2, chunk=chunk),
            strict=True,
        )
    ]
    ci = interval(np.concatenate(samples), settings.confidence)
    ctx.measure(CHECK, "attack_auc", auc, ci, n=len(score))
    ctx.measure(CHECK, "mean_loss", float(members.mean()), group="training rows", n=len(members))
    ctx.measure(CHECK, "mean_loss", float(others.mean()), group="evaluation rows", n=len(others))
    ctx.covered[CHECK] = f"{len(members)} training and {len(others)} evaluation rows"
    if ci[0] is None or ci[0] <= settings.max_membership_auc:
        return
    ratio = float(others.mean() / members.mean()) if members.mean() > 0 else float("inf")
    ctx.add(
        MEMBERSHIP,
        f"A loss-threshold attack tells training rows from evaluation rows with AUC "
        f"{fmt(auc)} (95% CI {fmt_ci(ci)}, limit {settings.max_membership_auc:g}): the mean "
        f"loss is {fmt(float(members.mean()))} on training rows and "
        f"{fmt(float(others.mean()))} on others ({ratio:.1f}x).",
        CHECK,
        {
            "attack": "loss threshold",
            "auc": fmt(auc, 4),
            "ci": fmt_ci(ci, 4),
            "threshold": f"{settings.max_membership_auc:g}",
            "training_rows": str(len(members)),
            "evaluation_rows": str(len(others)),
        },
    )
