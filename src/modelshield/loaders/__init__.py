"""Loading model files under the scan policy: the policy enforced inside the unpickler.

The scanner is static; a loader is not, and every gap between the two programs is a bypass.
Here the same policy is enforced where code would run::

    import modelshield

    model = modelshield.load("model.pt")            # scan, then load under the policy
    result = modelshield.loaders.load_model("model.joblib")
    result.value, result.loader, result.method, result.report

    from modelshield.loaders import torch_load, joblib_load, numpy_load, pickle_load
    state = torch_load("weights.pt", map_location="cpu")   # drop-ins, same arguments

Each call (1) scans the file and raises :class:`~modelshield.core.errors.LoadRefused` (with the
report) when the policy does not pass it, then (2) loads it with a restricted unpickler whose
``find_class`` admits only what the scanner's classifier calls SAFE, whose extension codes,
persistent ids and state writes are checked, and which runs under a sentinel that stops the
operations an admitted class could reach from the file's data (see
:mod:`modelshield.loaders.session`). A callable the scan missed is refused at load with the
rule id and message the scanner gives.

**modelshield's own pillars** (assessment, runtime guard, and any future code that needs a
live model) must load users' models only through :func:`load_model` (or :func:`load`): never
with an unrestricted loader, and never after a scan alone.

Loaders and libraries are imported lazily: this package imports without torch, numpy or
joblib, and a loader whose library is missing raises
:class:`~modelshield.core.errors.MissingExtraError` naming the extra to install.
"""

from __future__ import annotations

from modelshield.core.errors import LoadRefused
from modelshield.loaders.api import load, load_model, loader_for, restricted_load
from modelshield.loaders.base import LOADERS, LoadResult
from modelshield.loaders.joblib_loader import joblib_load
from modelshield.loaders.numpy_loader import numpy_load
from modelshield.loaders.pickle_loader import pickle_load, pickle_loads
from modelshield.loaders.torch_loader import torch_load

__all__ = [
    "LOADERS",
    "LoadRefused",
    "LoadResult",
    "joblib_load",
    "load",
    "load_model",
    "loader_for",
    "numpy_load",
    "pickle_load",
    "pickle_loads",
    "restricted_load",
    "torch_load",
]
