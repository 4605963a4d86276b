"""A small model directory made by real libraries, and a local signing key pair."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from modelshield.core.findings import Finding, Report

CHUNK = 64 * 1024
"""Chunk size the tests use, so that a few-hundred-kilobyte file has several chunks."""


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """``model/`` with a torch checkpoint, a NumPy array (several chunks) and JSON configs."""
    root = tmp_path / "model"
    (root / "tokenizer").mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(16, 8).state_dict(), root / "model.pt")
    rng = np.random.default_rng(0)
    np.save(root / "weights.npy", rng.standard_normal(40_000).astype(np.float32))  # ~160 KB
    (root / "config.json").write_text(json.dumps({"hidden_size": 16, "layers": 1}))
    (root / "tokenizer" / "vocab.json").write_text(json.dumps({"a": 0, "b": 1}))
    return root


def by_rule(report: Report) -> list[tuple[str, str]]:
    """``(rule_id, path relative to the model's parent)`` for every finding, sorted."""
    return sorted((f.rule_id, _tail(f)) for f in report.findings)


def _tail(f: Finding) -> str:
    parts = Path(f.location.path).parts
    return "/".join(parts[parts.index("model") + 1 :]) if "model" in parts else parts[-1]


@dataclass(frozen=True)
class KeyPair:
    """PEM files of an elliptic-curve key pair."""

    private: Path
    public: Path


def make_key_pair(directory: Path, name: str = "key") -> KeyPair:
    """A fresh P-256 key pair written as PEM (the curve model-signing defaults to)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = directory / f"{name}.pem"
    public = directory / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return KeyPair(private, public)
