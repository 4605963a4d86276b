"""Pillar *assess*: how a model behaves on the user's own data.

Performance with confidence intervals, calibration, weakest slices, fairness per sensitive
column, consistency, robustness to natural perturbations, evasion with a query budget, and
security probes (membership inference, extraction, backdoor triggers), as a CI gate::

    from modelshield.assess import assess

    report = assess("model.joblib", "holdout.csv", target="label", sensitive=["sex"])
    report.assessment.measurements      # every figure, with its interval

Heavy libraries (numpy, pandas, the model's own) are imported when the assessment runs, never
by ``import modelshield``. Model files are loaded only after a scan, through
:mod:`modelshield.loaders`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelshield.assess.runner import assess

__all__ = ["assess"]


def __getattr__(name: str) -> Any:
    if name == "assess":
        from modelshield.assess.runner import assess

        return assess
    raise AttributeError(name)
