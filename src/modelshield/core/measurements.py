"""Measurements: what a pillar measured, beside the findings it made.

The assessment (``modelshield assess``) measures a model on data: metrics with confidence
intervals, group rates, curves, and how many predictions each check asked for. Findings say
what failed a threshold; these records say what was measured, so that a reader (or a reporter
drawing plots) sees the figures behind every verdict, passed ones included.

They live in the core because reporters read them, and reporters import the core only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from msgspec import Struct, field


class Measurement(Struct, frozen=True):
    """One figure with its confidence interval (when it has one)."""

    check: str
    """The check that measured it: ``performance``, ``fairness``, ``robustness``..."""
    name: str
    """What it is: ``accuracy``, ``selection_rate``, ``dp_ratio``, ``flip_rate``..."""
    value: float | None
    """The estimate on the rows used; None when it is undefined (no positive row...)."""
    low: float | None = None
    """Lower bound of the confidence interval (None: no interval)."""
    high: float | None = None
    """Upper bound of the confidence interval (None: no interval)."""
    group: str = ""
    """The rows it is about: empty for every row, else a definition such as ``colour=Black``
    or ``age in [17, 21)``."""
    n: int = 0
    """How many rows it rests on."""


class Curve(Struct, frozen=True):
    """A series of points for a plot: a reliability curve, a robustness curve..."""

    check: str
    """The check that measured it."""
    name: str
    """What it shows, e.g. ``reliability`` or ``flip_rate_vs_noise``."""
    x_label: str
    """What x is."""
    y_label: str
    """What y is."""
    x: tuple[float, ...]
    """X values, in order."""
    y: tuple[float, ...]
    """Y values, one per x."""
    series: str = ""
    """Which series when a plot shows several (a feature, a group, a perturbation)."""


class QueryCount(Struct, frozen=True):
    """How many predictions one check asked the model for: a vendor's endpoint bills them."""

    check: str
    """The check."""
    calls: int
    """Calls made to the model (one batch is one call)."""
    rows: int
    """Rows predicted, all calls together."""
    seconds: float = 0.0
    """Wall-clock seconds the check took, predictions included."""


CheckStatus = Literal["ran", "skipped", "error"]
"""Whether a check ran (its findings, if any, say whether it passed), was skipped (not
applicable, or switched off by the policy: ``detail`` says why) or stopped on an error."""


class CheckRun(Struct, frozen=True):
    """What happened to one check."""

    check: str
    """The check."""
    status: CheckStatus
    """See :data:`CheckStatus`."""
    detail: str = ""
    """Why it was skipped, what stopped it, or what it covered."""


class Assessment(Struct, frozen=True):
    """The measurements of one assessment run, and what it ran on."""

    model: str
    """The model as the user named it (a file, ``package.module:function`` or a URL)."""
    model_kind: str
    """The adapter that ran it: ``sklearn``, ``lightgbm``, ``onnx``, ``torchscript``,
    ``callable`` or ``http``."""
    data: str
    """The data file."""
    target: str
    """The target column."""
    task: str
    """``classification`` or ``regression``."""
    rows: int
    """Rows of the data file used (after dropping rows without a target)."""
    rows_total: int
    """Rows in the data file."""
    loader: str = ""
    """For a model file: the loader that read it (``joblib``, ``lightgbm``...) and how."""
    scanned: bool = False
    """The model file was scanned before it was loaded."""
    trusted: bool = False
    """The user passed ``--trust``: the file was loaded although its scan reported findings at
    or above ``high`` (through the restricted loader all the same)."""
    classes: tuple[str, ...] = ()
    """Classification: the classes, in the model's order."""
    positive_class: str = ""
    """Binary classification: the class counted as a positive (selection, TPR, FPR)."""
    sensitive: tuple[str, ...] = ()
    """The sensitive columns named by the user."""
    columns: Mapping[str, str] = field(default_factory=dict)
    """Each feature column and its kind (``numeric``, ``integer``, ``categorical``,
    ``boolean``), in the data's order."""
    seed: int = 0
    """The seed of every random draw (bootstrap, perturbations, attacks): same inputs, same
    seed, same report."""
    checks: tuple[CheckRun, ...] = ()
    """Every check, ran or not."""
    measurements: tuple[Measurement, ...] = ()
    """Every figure measured."""
    curves: tuple[Curve, ...] = ()
    """Series for plots."""
    queries: tuple[QueryCount, ...] = ()
    """Predictions asked for, per check."""

    @property
    def total_calls(self) -> int:
        """Calls made to the model by every check together."""
        return sum(q.calls for q in self.queries)

    @property
    def total_rows(self) -> int:
        """Rows predicted by every check together."""
        return sum(q.rows for q in self.queries)
