"""The assessment's pipeline: open the model (scanned first), read the data, run each check,
and return one :class:`~modelshield.core.Report`.

data + model adapter -> checks -> findings and measurements -> Report -> reporters
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from msgspec.structs import replace

from modelshield.assess.context import Context, Predictor, label_key
from modelshield.assess.data import Dataset, load_dataset
from modelshield.assess.interface import DataError, Model, ModelError, QueryLedger, Skipped
from modelshield.assess.models import OpenedModel, open_model
from modelshield.core.assess_settings import CHECKS
from modelshield.core.findings import ErrorRecord, FileResult, Location, Report
from modelshield.core.measurements import Assessment, CheckRun
from modelshield.core.policy import Policy

MAX_REGRESSION_CLASSES = 20
"""A numeric target with more distinct values than this is a regression target (unless the
model says it is a classifier, or ``task`` is given)."""


def assess(
    model: str,
    data: str,
    target: str,
    *,
    sensitive: Sequence[str] = (),
    policy: Policy | None = None,
    trust: bool = False,
    kinds: Mapping[str, str] | None = None,
    drop: Sequence[str] = (),
    task: str | None = None,
    positive_class: str | None = None,
    train_data: str | None = None,
    checks: Sequence[str] | None = None,
) -> Report:
    """Assess ``model`` on the rows of ``data`` (a CSV or Parquet file) against ``target``.

    Returns a report holding the model file's scan (when it is a file) and the assessment's
    result, with its measurements in ``report.assessment``. The policy is *not* applied:
    call ``policy.apply(report)`` (as the CLI does) to drop ignored findings. Raises
    :class:`~modelshield.assess.interface.AssessError` for what stops the run before any
    check (an unreadable data file, a missing column, a model that cannot be opened).
    """
    started = time.perf_counter()
    policy = policy or Policy()
    settings = policy.assess
    opened = open_model(model, policy, trust=trust, timeout=settings.timeout_s)
    scan_results = () if opened.scan is None else opened.scan.results
    location = Location(model)
    dataset = load_dataset(
        data,
        target,
        sensitive=sensitive,
        kinds=kinds,
        drop=drop,
        max_rows=settings.max_rows,
        seed=settings.seed,
    )
    info = _info(opened, model, dataset, sensitive, settings.seed)
    if opened.model is None:
        refused = FileResult(
            path=model,
            format=opened.kind,
            errors=(ErrorRecord(location, f"model not loaded: {opened.refused}", "assess"),),
        )
        not_run = tuple(CheckRun(c, "skipped", "the model was not loaded") for c in CHECKS)
        return Report(
            "assess",
            _version(),
            (*scan_results, refused),
            time.perf_counter() - started,
            assessment=replace(info, checks=not_run),
        )
    train = None
    if train_data is not None:
        train = load_dataset(
            train_data,
            target,
            kinds=kinds,
            drop=drop,
            max_rows=settings.max_rows,
            seed=settings.seed,
        )
    ctx = _context(opened, dataset, policy, location, sensitive, task, positive_class, train)
    ledger = ctx.predict.ledger
    runs: list[CheckRun] = []
    errors: list[ErrorRecord] = []
    with ledger.check("baseline"):
        ctx.baseline()
    wanted = CHECKS if checks is None else tuple(c for c in CHECKS if c in checks)
    for name in CHECKS:
        if name not in wanted or name in settings.skip:
            runs.append(CheckRun(name, "skipped", "switched off by the policy or the caller"))
            continue
        module = importlib.import_module(f"modelshield.assess.checks.{name}")
        try:
            with ledger.check(name):
                module.run(ctx)
        except Skipped as e:
            runs.append(CheckRun(name, "skipped", str(e)))
            continue
        except ModelError as e:
            errors.append(ErrorRecord(location, f"{name}: {e}", f"assess:{name}"))
            runs.append(CheckRun(name, "error", str(e)))
            continue
        except Exception as e:  # a bug of ours: the other checks still run
            message = f"{name} stopped on {type(e).__name__}: {e}"
            errors.append(ErrorRecord(location, message, f"assess:{name}"))
            runs.append(CheckRun(name, "error", message))
            continue
        runs.append(CheckRun(name, "ran", ctx.covered.get(name, "")))
    info = replace(
        info,
        task=ctx.task,
        classes=tuple(ctx.classes),
        positive_class="" if ctx.positive is None else ctx.classes[ctx.positive],
        columns={c: dataset.kinds[c] for c in ctx.predict.columns},
        checks=tuple(runs),
        measurements=tuple(ctx.measurements),
        curves=tuple(ctx.curves),
        queries=ledger.counts(),
    )
    result = FileResult(
        path=model,
        format=opened.kind,
        findings=tuple(ctx.findings),
        errors=tuple(errors),
        gaps=tuple(ctx.gaps),
        duration_s=time.perf_counter() - started,
        metadata={"data": data, "rows": str(dataset.rows), "loader": opened.loader},
    )
    return Report(
        "assess",
        _version(),
        (*scan_results, result),
        time.perf_counter() - started,
        assessment=info,
    )


def _version() -> str:
    from modelshield._version import __version__

    return __version__


def _info(
    opened: OpenedModel, model: str, dataset: Dataset, sensitive: Sequence[str], seed: int
) -> Assessment:
    return Assessment(
        model=model,
        model_kind=opened.kind,
        data=dataset.path,
        target=dataset.target_name,
        task="",
        rows=dataset.rows,
        rows_total=dataset.rows_total,
        loader=opened.loader,
        scanned=opened.scan is not None,
        trusted=opened.trusted,
        sensitive=tuple(sensitive),
        seed=seed,
    )


def _context(
    opened: OpenedModel,
    dataset: Dataset,
    policy: Policy,
    location: Location,
    sensitive: Sequence[str],
    task: str | None,
    positive_class: str | None,
    train: Dataset | None,
) -> Context:
    model = opened.model
    if model is None:  # pragma: no cover - the caller returned already
        raise ModelError("no model")
    columns = _columns(model.features, dataset)
    y_keys = [label_key(v) for v in dataset.target]
    chosen = task or _infer_task(model, dataset.target)
    if chosen not in ("classification", "regression"):
        raise DataError(f"unknown task {chosen!r}; use classification or regression")
    classes: list[str] = []
    positive: int | None = None
    if chosen == "classification":
        if model.classes is not None:
            classes = [label_key(c) for c in model.classes]
        else:
            classes = sorted(set(y_keys), key=_natural)
        unknown = sorted(set(y_keys) - set(classes))
        if unknown:
            raise DataError(
                f"{dataset.path}: the target column {dataset.target_name!r} holds values that "
                f"are not classes of the model: {', '.join(unknown[:10])} (the model's classes: "
                f"{', '.join(classes[:20])}); is it the right column, encoded as in training?"
            )
        index = {c: i for i, c in enumerate(classes)}
        y: Any = np.fromiter((index[k] for k in y_keys), dtype=np.int64, count=len(y_keys))
        if positive_class is not None:
            if positive_class not in index:
                raise DataError(
                    f"--positive-class {positive_class!r} is not a class of the model "
                    f"({', '.join(classes)})"
                )
            positive = index[positive_class]
        elif len(classes) == 2:
            positive = 1
    else:
        try:
            y = dataset.target.astype(float)
        except (TypeError, ValueError) as e:
            raise DataError(
                f"{dataset.path}: the target column {dataset.target_name!r} is not numeric, "
                "which a regression needs"
            ) from e
    ledger = QueryLedger()
    predictor = Predictor(
        model,
        ledger,
        classes=classes if chosen == "classification" else None,
        columns=columns,
        batch_size=policy.assess.batch_size,
    )
    for name in sensitive:
        if name not in dataset.frame.columns:
            raise DataError(f"{dataset.path}: no sensitive column {name!r}")
    return Context(
        data=dataset,
        predict=predictor,
        settings=policy.assess,
        task=chosen,
        y=y,
        classes=classes,
        positive=positive,
        location=location,
        sensitive=sensitive,
        train=train,
        gradient=getattr(model, "gradient", None),
    )


def _columns(features: tuple[str, ...] | None, dataset: Dataset) -> list[str]:
    if features is None:
        return list(dataset.frame.columns)
    # LightGBM and XGBoost store names with spaces and punctuation as underscores.
    loose = {re.sub(r"\W", "_", str(c)): str(c) for c in dataset.frame.columns}
    chosen = [f if f in dataset.frame.columns else loose.get(f, f) for f in features]
    missing = [f for f, c in zip(features, chosen, strict=True) if c not in dataset.frame.columns]
    if missing:
        raise DataError(
            f"{dataset.path}: the model reads column(s) the data does not have: "
            f"{', '.join(repr(m) for m in missing[:10])}"
        )
    return chosen


#: Adapters whose models always name their classes when they are classifiers.
KNOWS_CLASSES = frozenset({"sklearn", "lightgbm", "xgboost"})


def _infer_task(model: Model, target: Any) -> str:
    if model.classes is not None:
        return "classification"
    if model.kind in KNOWS_CLASSES:
        return "regression"
    values = np.asarray(target)
    if values.dtype.kind in "biu" or values.dtype.kind == "b":
        return (
            "classification" if len(np.unique(values)) <= MAX_REGRESSION_CLASSES else "regression"
        )
    if values.dtype.kind == "f":
        whole = bool(np.all(np.mod(values, 1) == 0))
        few = len(np.unique(values)) <= MAX_REGRESSION_CLASSES
        return "classification" if whole and few else "regression"
    return "classification"


def _natural(key: str) -> tuple[int, float, str]:
    try:
        return (0, float(key), key)
    except ValueError:
        return (1, 0.0, key)
