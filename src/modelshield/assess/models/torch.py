"""TorchScript modules and ``torch.export`` programs: a float tensor of shape
``(n, features)`` in, one output per row (a value, a probability of the positive class) or one
score per class out. Gradients are available, so the evasion check also runs PGD."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelshield.assess.interface import ModelError, RawPrediction
from modelshield.assess.models.boosters import _require


class TorchModel:
    """A callable torch program."""

    def __init__(self, module: Any, kind: str, classification: bool) -> None:
        """Wrap a loaded module; ``classification`` from the output (sigmoid or scores)."""
        self.module = module
        self.kind = kind
        self.features: tuple[str, ...] | None = None
        self.classes: tuple[Any, ...] | None = None
        self.classification = classification

    def _scores(self, x: Any) -> Any:
        out = self.module(x)
        return out[0] if isinstance(out, tuple | list) else out

    def predict(self, rows: pd.DataFrame) -> RawPrediction:
        """Run the program without gradients."""
        torch = _require("torch")
        with torch.no_grad():
            out = self._scores(torch.as_tensor(rows.to_numpy(dtype=np.float32)))
        scores = out.detach().cpu().numpy().astype(float)
        return self._interpret(scores, len(rows))

    def _interpret(self, scores: Any, n: int) -> RawPrediction:
        if scores.ndim == 2 and scores.shape[1] > 1:
            e = np.exp(scores - scores.max(axis=1, keepdims=True))
            proba = e / e.sum(axis=1, keepdims=True)
            if self.classes is None:
                self.classes = tuple(range(proba.shape[1]))
            return RawPrediction(np.argmax(proba, axis=1), proba)
        s = scores.reshape(n)
        if self.classification:
            if self.classes is None:
                self.classes = (0, 1)
            proba = np.column_stack([1.0 - s, s])
            return RawPrediction((s >= 0.5).astype(int), proba)
        return RawPrediction(s, None)

    def gradient(self, x: np.ndarray[Any, Any], target: np.ndarray[Any, Any]) -> Any:
        """Gradient of the loss of class ``target`` with respect to ``x`` (rows, features)."""
        torch = _require("torch")
        t = torch.as_tensor(x.astype(np.float32)).requires_grad_(True)
        out = self._scores(t)
        tgt = torch.as_tensor(target.astype(np.int64))
        if out.ndim == 2 and out.shape[1] > 1:
            loss = torch.nn.functional.cross_entropy(out, tgt, reduction="sum")
        else:
            p = out.reshape(-1).clamp(1e-7, 1 - 1e-7)
            loss = torch.nn.functional.binary_cross_entropy(p, tgt.float(), reduction="sum")
        loss.backward()
        return t.grad.detach().numpy().astype(float)


def open_torch_program(path: str) -> tuple[TorchModel, str]:
    """A TorchScript archive (``torch.jit.load``) or a ``torch.export`` archive."""
    torch = _require("torch")
    errors = []
    try:
        module = torch.jit.load(path, map_location="cpu")
        module.eval()
        return TorchModel(module, "torchscript", _looks_like_probability(module)), (
            "torch.jit.load"
        )
    except Exception as e:
        errors.append(f"torch.jit.load: {e}")
    try:
        program = torch.export.load(path)
        module = program.module()
        return TorchModel(module, "torch-export", _looks_like_probability(module)), (
            "torch.export.load"
        )
    except Exception as e:
        errors.append(f"torch.export.load: {e}")
    raise ModelError(f"{path}: not a TorchScript or torch.export archive ({'; '.join(errors)})")


def _looks_like_probability(module: Any) -> bool:
    # A one-output program is a classifier when the author marked it so.
    return bool(getattr(module, "is_classifier", False))
