"""The ``[assess]`` table of the policy: which checks run, their thresholds and their budgets.

Defaults are chosen so that a sound model passes (each relative threshold is judged on a
confidence interval or a corrected significance test, never on a point estimate alone) and
the deliberately broken models of the test suite fail. Absolute performance floors
(``min_metric``) are off until the user sets them: only the user knows what "good enough"
means for their model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import Struct, field

from modelshield.core.errors import ConfigError

CHECKS: tuple[str, ...] = (
    "performance",
    "calibration",
    "slices",
    "fairness",
    "consistency",
    "robustness",
    "evasion",
    "membership",
    "extraction",
    "backdoor",
)
"""Every check of the assessment, in the order it runs."""

CLASSIFICATION_METRICS: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "log_loss",
    "brier",
)
"""Classification metrics, each with a bootstrap interval."""

REGRESSION_METRICS: tuple[str, ...] = ("mae", "rmse", "r2")
"""Regression metrics, each with a bootstrap interval."""

LOWER_IS_BETTER = frozenset({"log_loss", "brier", "mae", "rmse"})
"""Metrics where a smaller value is better (``max_metric`` applies to these)."""


class AssessSettings(Struct, frozen=True):
    """The ``[assess]`` table: thresholds per check and the budgets of the assessment, and
    what ``modelshield ci`` assesses."""

    model: str = ""
    """``modelshield ci``: the model to assess (a file relative to the policy file,
    ``package.module:function`` or a URL); empty: ``ci`` assesses nothing."""
    data: str = ""
    """``modelshield ci``: the held-out data file (CSV or Parquet, relative to the policy
    file)."""
    target: str = ""
    """``modelshield ci``: the target column."""
    sensitive: tuple[str, ...] = ()
    """``modelshield ci``: the sensitive columns of the fairness check."""
    train_data: str = ""
    """``modelshield ci``: the training data, for the membership probe (optional)."""

    seed: int = 0
    """Seed of every random draw: bootstrap resamples, perturbations, attacks."""
    skip: tuple[str, ...] = ()
    """Checks not to run (a skipped check is listed as such in the report)."""
    bootstrap: int = 200
    """Bootstrap resamples behind each confidence interval."""
    confidence: float = 0.95
    """Level of every confidence interval."""
    batch_size: int = 10_000
    """Largest number of rows sent to the model in one call."""
    timeout_s: float = 30.0
    """HTTP endpoint: seconds to wait for one call before it counts as failed."""
    max_rows: int = 100_000
    """Rows of the data file used at most (a seeded sample above it)."""
    min_metric: Mapping[str, float] = field(default_factory=dict)
    """Performance floors, e.g. ``{accuracy = 0.8, roc_auc = 0.85}`` (none by default)."""
    max_metric: Mapping[str, float] = field(default_factory=dict)
    """Performance ceilings for error metrics, e.g. ``{rmse = 3.5, log_loss = 0.5}``."""
    max_ece: float = 0.1
    """Calibration: expected calibration error above which the model is miscalibrated (judged
    on the interval's lower bound)."""
    calibration_bins: int = 10
    """Calibration: equal-width confidence bins of the reliability curve."""
    slice_min_rows: int = 30
    """Slices: smallest slice examined."""
    slice_min_drop: float = 0.15
    """Slices, classification: smallest drop of the slice's accuracy below the rest's, beyond
    what the model's own confidence promises, worth a finding."""
    slice_min_error_rise: float = 1.0
    """Slices, regression: smallest rise of the slice's mean absolute error over the rest's,
    as a share of the rest's (1.0: twice the error), worth a finding."""
    slice_alpha: float = 0.05
    """Slices: false discovery rate of the slice tests (Benjamini-Hochberg)."""
    slice_bins: int = 5
    """Slices: quantile bins of each numeric column."""
    min_dp_ratio: float = 0.8
    """Fairness: smallest selection-rate ratio between groups (the four-fifths rule), judged
    on the interval's upper bound."""
    max_dp_difference: float = 0.2
    """Fairness: largest selection-rate difference between groups, judged on the interval's
    lower bound."""
    max_eo_difference: float = 0.2
    """Fairness: largest equalized-odds difference (the larger of the TPR and FPR gaps),
    judged on the interval's lower bound."""
    fairness_min_rows: int = 30
    """Fairness: groups with fewer rows are reported but never compared."""
    robustness_rows: int = 500
    """Robustness: rows perturbed (a seeded sample)."""
    noise: float = 0.1
    """Robustness: Gaussian noise added to numeric columns, as a share of each column's
    standard deviation."""
    max_flip_rate: float = 0.05
    """Robustness: largest share of predictions a natural perturbation may change (judged on
    the interval's lower bound)."""
    evasion_rows: int = 20
    """Evasion: rows attacked."""
    evasion_queries: int = 400
    """Evasion: model queries per attacked row."""
    evasion_epsilon: float = 0.3
    """Evasion: perturbation size at which attack success is judged, in standard deviations
    of each numeric column, root-mean-square over the columns ("scaled L2")."""
    max_evasion_success: float = 1.0
    """Evasion: largest share of rows the attack may turn within ``evasion_epsilon`` before a
    finding (judged on the interval's lower bound). 1.0, the default, measures and never
    judges: every model can be evaded, and how small a change matters depends on the domain;
    set it (0.3 is a strict gate) with an ``evasion_epsilon`` that means something for your
    columns."""
    membership_rows: int = 1_000
    """Membership: rows of each of the training and evaluation data used."""
    max_membership_auc: float = 0.55
    """Membership: largest attack AUC (0.5 is chance), judged on the interval's lower bound."""
    extraction_queries: int = 500
    """Extraction: queries the surrogate is trained from."""
    max_extraction_agreement: float = 1.0
    """Extraction: largest agreement of the surrogate with the model before a finding (1.0:
    measured, never a finding: almost every model can be copied this way)."""
    backdoor_rows: int = 12
    """Backdoor: rows each probed value is planted in."""
    backdoor_grid: int = 24
    """Backdoor: values probed per numeric column across its observed range."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str) -> AssessSettings:
        """Validate an ``[assess]`` table; unknown keys and bad values raise ConfigError."""
        unknown = sorted(set(data) - set(cls.__struct_fields__))
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) in [assess]: {', '.join(unknown)}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            kwargs[key] = _value(key, value, source)
        return cls(**kwargs)


_FRACTIONS = frozenset(
    {
        "slice_min_drop",
        "slice_alpha",
        "min_dp_ratio",
        "max_dp_difference",
        "max_eo_difference",
        "max_flip_rate",
        "max_evasion_success",
        "max_extraction_agreement",
        "max_ece",
    }
)
_POSITIVE_INTS = frozenset(
    {
        "bootstrap",
        "batch_size",
        "max_rows",
        "calibration_bins",
        "slice_min_rows",
        "slice_bins",
        "fairness_min_rows",
        "robustness_rows",
        "evasion_rows",
        "evasion_queries",
        "membership_rows",
        "extraction_queries",
        "backdoor_rows",
        "backdoor_grid",
    }
)
_POSITIVE_FLOATS = frozenset({"timeout_s", "noise", "evasion_epsilon", "slice_min_error_rise"})


_TEXT_KEYS = frozenset({"model", "data", "target", "train_data"})


def _value(key: str, value: Any, source: str) -> Any:
    where = f"{source}: assess.{key}"
    if key in _TEXT_KEYS:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where} must be a non-empty string")
        return value
    if key == "sensitive":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where} must be a list of column names")
        return tuple(value)
    if key == "seed":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where} must be an integer >= 0")
        return value
    if key == "skip":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of check names")
        bad = sorted(set(value) - set(CHECKS))
        if bad:
            raise ConfigError(
                f"{where}: unknown check(s) {', '.join(bad)}; use {', '.join(CHECKS)}"
            )
        return tuple(value)
    if key in ("min_metric", "max_metric"):
        return _metric_table(key, value, where)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if key in _POSITIVE_INTS:
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where} must be an integer >= 1")
        return value
    if key == "confidence":
        if not 0.5 <= value < 1:
            raise ConfigError(f"{where} must be in [0.5, 1)")
        return float(value)
    if key in _FRACTIONS:
        if not 0 <= value <= 1:
            raise ConfigError(f"{where} must be between 0 and 1")
        return float(value)
    if key == "max_membership_auc":
        if not 0.5 <= value <= 1:
            raise ConfigError(f"{where} must be between 0.5 and 1")
        return float(value)
    if key in _POSITIVE_FLOATS:
        if value <= 0:
            raise ConfigError(f"{where} must be > 0")
        return float(value)
    raise ConfigError(f"{where}: not a setting")  # pragma: no cover - every field is above


def _metric_table(key: str, value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of metric = number")
    known = set(CLASSIFICATION_METRICS) | set(REGRESSION_METRICS)
    wanted = LOWER_IS_BETTER if key == "max_metric" else known - LOWER_IS_BETTER
    table: dict[str, float] = {}
    for metric, bound in value.items():
        if metric not in wanted:
            raise ConfigError(
                f"{where}: {metric!r} is not a metric this table takes; use "
                f"{', '.join(sorted(wanted))}"
            )
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            raise ConfigError(f"{where}.{metric} must be a number")
        table[str(metric)] = float(bound)
    return table
