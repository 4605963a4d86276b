"""Model adapters behind one small interface (:class:`~modelshield.assess.interface.Model`).

:func:`open_model` picks the adapter from what the user named:

* ``http://`` or ``https://`` URL: a model behind an HTTP endpoint (:mod:`.http`);
* ``package.module:function`` that is not a file: a Python callable (:mod:`.callable`);
* a file, which is **scanned first**: a file with findings at ``high`` or above, or parts the
  scan could not analyse, is refused unless the user trusts it (``--trust``). Then, by the
  format the scan detected: pickles and joblib files through the restricted loaders of
  :mod:`modelshield.loaders` (scikit-learn estimators and pipelines, and anything with a
  scikit-learn ``predict``); LightGBM text models; XGBoost JSON/UBJSON models; ONNX through
  onnxruntime; TorchScript and ``torch.export`` programs.
"""

from __future__ import annotations

import re
from pathlib import Path

from msgspec import Struct

from modelshield.assess.interface import Model, ModelError
from modelshield.core.findings import FileResult, Report, Severity
from modelshield.core.policy import Policy

REFUSE_AT = Severity.HIGH
"""A model file whose scan reports a finding at or above this is not loaded without --trust."""

_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class OpenedModel(Struct, frozen=True):
    """A model ready to predict, or the reason it was refused, and how it was opened."""

    model: Model | None
    """The adapter; None when the file was refused."""
    kind: str
    """The adapter's kind, or the format of a refused file."""
    loader: str = ""
    """How a file was read: the restricted loader and its method, or the native library."""
    scan: Report | None = None
    """The scan's report of a model file (policy applied); None for callables and URLs."""
    trusted: bool = False
    """Loaded although the scan refused it (``--trust``)."""
    refused: str = ""
    """Why the file was not loaded (empty when it was)."""


def open_model(
    spec: str,
    policy: Policy,
    *,
    trust: bool = False,
    timeout: float = 30.0,
    refuse_at: Severity = REFUSE_AT,
) -> OpenedModel:
    """Open the model the user named (see the module docstring); a file whose scan reports a
    finding at or above ``refuse_at`` is refused unless ``trust``."""
    if spec.startswith(("http://", "https://")):
        from modelshield.assess.models.http import HttpModel

        return OpenedModel(HttpModel(spec, timeout=timeout), "http", loader="HTTP POST, JSON")
    if _CALLABLE.match(spec) and not Path(spec).exists():
        from modelshield.assess.models.callable import CallableModel

        return OpenedModel(CallableModel.from_name(spec), "callable", loader="Python import")
    if not Path(spec).is_file():
        raise ModelError(
            f"{spec}: no such model file (name a file, a URL, or package.module:function)"
        )
    return _open_file(spec, policy, trust, refuse_at)


def _open_file(path: str, policy: Policy, trust: bool, refuse_at: Severity) -> OpenedModel:
    from modelshield.loaders import LoadRefused, load_model, loader_for, restricted_load
    from modelshield.scanner.engine import scan_file

    load_policy = policy.with_fail_on(refuse_at)
    scan = load_policy.apply(Report.of("scan", [scan_file(path, load_policy)]))
    result = scan.results[0]
    worst = [f for f in scan.findings if f.severity >= refuse_at]
    unfinished = bool(scan.unfinished)
    if (worst or unfinished) and not trust:
        why = (
            f"its scan reported {len(worst)} finding(s) at or above '{refuse_at.label}' "
            f"(worst: {worst[0].rule_id})"
            if worst
            else "its scan could not analyse it fully"
        )
        return OpenedModel(
            None,
            result.format,
            scan=scan,
            refused=f"{why}; pass --trust to load it anyway (through the restricted loader)",
        )
    trusted = bool(worst or unfinished)
    restricted = loader_for(result)
    if restricted is not None:
        try:
            if trusted:
                value, method = restricted_load(
                    path, restricted, load_policy, report=scan, imports=result.imports
                )
                loader = f"{restricted}: {method}"
            else:
                loaded = load_model(path, policy=load_policy, loader=restricted)
                value, loader = loaded.value, f"{loaded.loader}: {loaded.method}"
        except LoadRefused as e:
            return OpenedModel(None, result.format, scan=scan, refused=e.diagnostics())
        from modelshield.assess.models.sklearn import SklearnModel

        return OpenedModel(SklearnModel.wrap(value), "sklearn", loader, scan, trusted)
    return _open_native(path, result, scan, trusted)


def _open_native(path: str, result: FileResult, scan: Report, trusted: bool) -> OpenedModel:
    with Path(path).open("rb") as f:
        head = f.read(64)
    if result.format == "text" and head.lstrip().startswith(b"tree"):
        from modelshield.assess.models.boosters import LightGBMModel

        return OpenedModel(
            LightGBMModel(path), "lightgbm", "lightgbm.Booster(model_file=...)", scan, trusted
        )
    if head.lstrip().startswith(b'{"learner"') or (
        result.format in ("data", "unknown") and b"learner" in head
    ):
        from modelshield.assess.models.boosters import XGBoostModel

        return OpenedModel(
            XGBoostModel(path), "xgboost", "xgboost.Booster(model_file=...)", scan, trusted
        )
    if result.format == "onnx":
        from modelshield.assess.models.onnx import OnnxModel

        return OpenedModel(OnnxModel(path), "onnx", "onnxruntime.InferenceSession", scan, trusted)
    if result.format in ("torchscript", "zip"):
        from modelshield.assess.models.torch import open_torch_program

        model, how = open_torch_program(path)
        return OpenedModel(model, model.kind, how, scan, trusted)
    raise ModelError(
        f"{path}: no adapter reads {result.format!r} model files; supported: scikit-learn "
        "pickles and joblib files, LightGBM text, XGBoost JSON, ONNX, TorchScript and "
        "torch.export archives, a Python callable (package.module:function) or an HTTP URL"
    )
