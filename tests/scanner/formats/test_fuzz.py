"""Corrupted safetensors, GGUF, ONNX, JSON and template files never crash the scanner."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import save

from tests.scanner.containers.test_fuzz import check_byte_flips
from tests.scanner.formats.conftest import published_templates


def _safetensors() -> bytes:
    return save({"a": np.zeros((2, 3), np.float32), "b": np.arange(4)}, metadata={"k": "v"})


def _gguf() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.gguf"
        writer = gguf.GGUFWriter(str(path), "llama")
        writer.add_chat_template(published_templates()["chatml.jinja"])
        writer.add_token_list([b"a", b"b"])
        writer.add_tensor("t", np.zeros((2, 32), np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


def _onnx() -> bytes:
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])
    branch = helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "b", [], [y])
    node = helper.make_node("If", ["c"], ["Y"], then_branch=branch, else_branch=branch)
    graph = helper.make_graph(
        [node], "g", [], [y], initializer=[numpy_helper.from_array(np.array(True), "c")]
    )
    buf = io.BytesIO()
    onnx.save_model(helper.make_model(graph), buf)
    return buf.getvalue()


SEEDS: dict[str, Callable[[], bytes]] = {
    "safetensors": _safetensors,
    "gguf": _gguf,
    "onnx": _onnx,
    "tokenizer-config": lambda: json.dumps(
        {"chat_template": published_templates()["qwen2.5-instruct.jinja"], "x": [1, "y"]}
    ).encode(),
    "template": lambda: published_templates()["llama-3.1-instruct.jinja"].encode(),
}


@pytest.mark.parametrize("seed", list(SEEDS))
def test_byte_flips_never_crash(seed: str) -> None:
    check_byte_flips(SEEDS[seed]())
