"""Python source judged with Python's own parser: names resolved through imports and aliases,
ordinary model code left alone, obfuscated calls found, never anything run."""

from __future__ import annotations

import base64
import inspect
from pathlib import Path

import pytest
import torch.nn.modules

from modelshield.core.findings import Severity
from modelshield.scanner.callables import CallablePolicy
from modelshield.scanner.pysource import analyse_source, decode_reaches

POLICY = CallablePolicy.default()

#: Model code as custom-code repositories ship it: torch layers, rotary embeddings, logging,
#: paths and environment variables, optional imports, torch.load with weights_only.
ORDINARY_MODEL = '''
"""A small decoder, written the way custom-code repositories write modeling files."""
import math
import os
import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_tiny import TinyConfig

try:
    import flash_attn  # optional fast path
except ImportError:
    flash_attn = None

logger = __import__("logging").getLogger(__name__)
CACHE = os.environ.get("TINY_CACHE", os.path.join(os.path.expanduser("~"), ".cache"))


class RotaryEmbedding(nn.Module):
    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.arange(x.shape[-2], device=x.device).type_as(self.inv_freq)
        freqs = torch.einsum("i,j->ij", t, self.inv_freq)
        return torch.cat((freqs, freqs), dim=-1)


class TinyAttention(nn.Module):
    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.q = nn.Linear(config.hidden_size, config.hidden_size)
        self.scale = 1 / math.sqrt(config.hidden_size)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        scores = self.q(x) @ x.transpose(-1, -2) * self.scale
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        return F.softmax(scores, dim=-1) @ x


def load_extra(path: str) -> dict:
    if not os.path.exists(path):
        warnings.warn(f"{path} missing")
        return {}
    return torch.load(path, map_location="cpu", weights_only=True)


def activation(name: str):
    return getattr(F, name)
'''


def reaches(source: str, policy: CallablePolicy = POLICY) -> dict[str, str]:
    facts = analyse_source(source, policy)
    assert facts.problem is None, facts.problem
    return {r.name: r.category for r in facts.reaches}


def test_ordinary_model_code_reaches_for_nothing() -> None:
    facts = analyse_source(ORDINARY_MODEL, POLICY)
    assert facts.problem is None
    assert facts.reaches == ()
    assert facts.severity is None
    assert facts.relative_imports == ((1, "configuration_tiny"),)
    assert {"torch", "os", "math", "flash_attn"} <= set(facts.imports)


def test_torch_own_layers_reach_for_nothing() -> None:
    """Real model code: the layers torch itself ships (linear, activation, transformer...)."""
    folder = Path(inspect.getfile(torch.nn.modules))
    for name in ("linear.py", "activation.py", "transformer.py", "conv.py", "normalization.py"):
        facts = analyse_source((folder.parent / name).read_bytes(), POLICY)
        assert facts.problem is None, name
        assert [r for r in facts.reaches if r.severity >= Severity.HIGH] == [], name


@pytest.mark.parametrize(
    ("source", "name", "category"),
    [
        ("import os\nos.system('id')", "os.system", "process"),
        ("import os as o\no.popen('id')", "os.popen", "process"),
        ("from os import system as s\ns('id')", "os.system", "process"),
        ("import subprocess\nsubprocess.run(['id'])", "subprocess.run", "process"),
        ("from subprocess import Popen\nPopen('id', shell=True)", "subprocess.Popen", "process"),
        ("import os\nf = os.system\nf('id')", "os.system", "process"),
        ("import os\ngetattr(os, 'system')('id')", "os.system", "process"),
        ("__import__('os').system('id')", "os.system", "process"),
        ("import importlib\nimportlib.import_module('os').system('x')", "os.system", "process"),
        ("__builtins__['exec']('1')", "builtins.exec", "code-execution"),
        ("exec('x = 1')", "builtins.exec", "code-execution"),
        ("eval(input())", "builtins.eval", "code-execution"),
        ("import socket\nsocket.create_connection(('h', 1))", "socket.create_connection",
         "network"),
        ("import urllib.request as u\nu.urlopen('http://x')", "urllib.request.urlopen", "network"),
        ("import ctypes\nctypes.CDLL('libx.so')", "ctypes.CDLL", "ffi"),
        ("import torch\ntorch.ops.load_library('x.so')", "torch.ops.load_library", "ffi"),
        ("import torch\ntorch.hub.load('a/b', 'm')", "torch.hub.load", "code-download"),
        ("import pickle\npickle.loads(b'')", "pickle.loads", "deserialization"),
        ("import torch\ntorch.load('x.bin')", "torch.load", "deserialization"),
        ("import numpy as np\nnp.load('a.npy', allow_pickle=True)", "numpy.load",
         "deserialization"),
        ("import importlib\nimportlib.import_module(name)", "importlib.import_module",
         "import-machinery"),
        ("import shutil\nshutil.rmtree('/')", "shutil.rmtree", "filesystem"),
        ("import os\nos.remove('x')", "os.remove", "filesystem"),
        ("from huggingface_hub import hf_hub_download\nhf_hub_download('a/b', 'f')",
         "huggingface_hub.hf_hub_download", "download"),
        ("m = AutoModel.from_pretrained('a/b', trust_remote_code=True)",
         "trust_remote_code=True", "remote-code"),
        ("import threading, os\nthreading.Thread(target=os.system, args=('id',))", "os.system",
         "process"),
        ("from subprocess import *\nrun('id')", "subprocess.*", "process"),
        ("import os\ngetattr(os, name)('id')", "os.<computed>", "process"),
    ],
)  # fmt: skip
def test_dangerous_names_are_resolved(source: str, name: str, category: str) -> None:
    assert reaches(source).get(name) == category


@pytest.mark.parametrize(
    "source",
    [
        "import os\nos.path.join('a', 'b')\nos.environ.get('X')\nos.makedirs('d')",
        "import subprocess\ntry:\n    pass\nexcept subprocess.CalledProcessError:\n    pass",
        "import types\nisinstance(f, types.FunctionType)",
        "import torch\ntorch.load('x.bin', weights_only=True)",
        "import numpy as np\nnp.load('a.npy')",
        "import importlib\nimportlib.import_module('flash_attn')",
        "import pickle\npickle.dumps({})",
        "model.eval()\nre.compile('x')",
        "def eval(x):\n    return x\neval(1)",
        "import torch\ntorch.compile(model)\ntorch.distributed.init_process_group('nccl')",
        "import functools\n@functools.wraps(f)\ndef g():\n    pass",
    ],
)
def test_ordinary_uses_are_not_reaches(source: str) -> None:
    assert reaches(source) == {}


def test_code_handed_to_exec_as_an_encoded_literal_is_analysed() -> None:
    hidden = base64.b64encode(b"import socket; socket.socket().connect(('evil', 4444))").decode()
    source = f"import base64\nexec(base64.b64decode('{hidden}'))\n"
    found = analyse_source(source, POLICY)
    assert {r.name for r in found.reaches} == {"builtins.exec", "socket.socket"}
    assert {r.line for r in found.reaches} == {2}
    hexed = b"import os; os.system('id')".hex()
    assert "os.system" in reaches(f"exec(bytes.fromhex('{hexed}').decode())")
    assert "os.system" in reaches("import codecs\nexec(codecs.decode('vzcbeg bf; bf.flfgrz(1)', "
                                  "'rot13'))")  # fmt: skip


def test_the_policy_deny_list_holds_for_source() -> None:
    source = "import torch\ntorch.compile(model)"
    assert reaches(source) == {}
    strict = CallablePolicy.default(deny=("torch:compile",))
    assert reaches(source, strict) == {"torch.compile": "policy"}


def test_reaches_round_trip_through_metadata_text() -> None:
    facts = analyse_source("import os\nos.system('a')\nimport pickle\npickle.load(f)", POLICY)
    assert decode_reaches(facts.encode()) == facts.reaches
    assert facts.severity == Severity.HIGH
    assert facts.summary() == "os.system (line 2), pickle.load (line 4)"
    assert decode_reaches("garbage no:colon x:y:z") == ()


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("print 'python 2'\n", "not valid Python"),
        ("x = " + "(" * 100_000 + ")" * 100_000, "not valid Python"),
        ("a\x00b", "not valid Python"),
        (b"\xff\xfe\x00garbage", "not valid Python"),
    ],
    ids=["python2", "nested", "nul", "bytes"],
)
def test_source_python_cannot_parse_is_a_problem_not_a_crash(
    source: str | bytes, problem: str
) -> None:
    facts = analyse_source(source, POLICY)
    assert facts.problem is not None and problem in facts.problem
    assert facts.reaches == ()
