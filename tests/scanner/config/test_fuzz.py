"""Corrupted YAML configs, skops schemas and jsonpickle documents never crash the scanner."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import jsonpickle
import pytest
import skops.io as sio
from sklearn.preprocessing import StandardScaler

from tests.scanner.containers.test_fuzz import check_byte_flips

_YAML = b"""%TAG !py! tag:yaml.org,2002:python/
---
base: &base
  _target_: torch.nn.Linear
  in_features: ${dims.in}
model:
  <<: *base
  act: !py!name:torch.nn.functional.gelu ''
  pair: !!python/tuple [1, 2]
  list: [*base, {k: "v\\u0041"}]
dims: {in: 3}
lr: ${eval:1+2}
"""


def _schema() -> str:
    with zipfile.ZipFile(io.BytesIO(sio.dumps(StandardScaler()))) as archive:
        return archive.read("schema.json").decode()


SEEDS: dict[str, Callable[[], bytes]] = {
    "yaml": lambda: _YAML,
    "skops-schema": lambda: _schema().encode(),
    "jsonpickle": lambda: jsonpickle.encode(
        {"t": (1, 2), "f": {"py/function": "textwrap.dedent"}}, keys=True
    ).encode(),
}


@pytest.mark.parametrize("seed", list(SEEDS))
def test_byte_flips_never_crash(seed: str) -> None:
    check_byte_flips(SEEDS[seed]())
