"""TensorFlow SavedModel (``saved_model.pb``), frozen GraphDef and Keras ``keras_metadata.pb``.

Parsed from the protocol buffers wire format (:mod:`modelshield.scanner.wire.protobuf`) along the
schema of TensorFlow's protos, without TensorFlow:

* ``SavedModel {1: schema version, 2: MetaGraphDef}``;
* ``MetaGraphDef {1: MetaInfoDef {4: tags, 5: tensorflow_version}, 2: GraphDef,
  6: AssetFileDef {2: filename}, 7: SavedObjectGraph {1: SavedObject {4: SavedUserObject
  {1: identifier, 3: metadata}}}}``;
* ``GraphDef {1: NodeDef, 2: FunctionDefLibrary {1: FunctionDef {1: OpDef {1: name},
  3: NodeDef}}}``;
* ``NodeDef {1: name, 2: op, 3: input, 5: map<string, AttrValue>}``;
* ``AttrValue {1: ListValue {2: s, 8: tensor, 9: func}, 2: s, 8: TensorProto {8: string_val},
  9: placeholder, 10: NameAttrList {1: name, 2: map<string, AttrValue>}}``;
* ``SavedMetadata {1: SavedObject {3: node_path, 4: identifier, 5: metadata}}``
  (``keras_metadata.pb``).

Every node of the graph and of every library function is looked at, reachable or not. Ops that
run Python or touch files or the network are reported with the constant strings that feed them
(``TF-UNSAFE-OP``); checkpoint ops only when their path is such a constant. Asset file names
that escape the model folder are reported (``TF-ASSET-PATH``), and Keras layer metadata (JSON
in the object graph or in ``keras_metadata.pb``) is analysed as a Keras config. Nested attribute
values are followed to a fixed depth; broken wire format is reported with what was read before
it (``TF-PROTOBUF-MALFORMED``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from msgspec import Struct, field

from modelshield.core.findings import Location
from modelshield.scanner.context import ScanContext
from modelshield.scanner.formats.hygiene import unsafe_path
from modelshield.scanner.formats.keras import analyse_config_text
from modelshield.scanner.rules import TF_ASSET_PATH, TF_PROTOBUF_MALFORMED, TF_UNSAFE_OP
from modelshield.scanner.wire.protobuf import LEN, VARINT, ProtobufError, fields, payload, text

#: Ops that call back into Python.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
#: Ops that read, list or map files named by their inputs or attributes.
FILE_READ_OPS = frozenset(
    {
        "ReadFile",
        "MatchingFiles",
        "ImmutableConst",
        "WholeFileReader",
        "WholeFileReaderV2",
        "TextLineReader",
        "TextLineReaderV2",
        "TFRecordReader",
        "TFRecordReaderV2",
        "FixedLengthRecordReader",
        "FixedLengthRecordReaderV2",
        "LMDBReader",
        "IdentityReader",
        "IdentityReaderV2",
        "TextLineDataset",
        "TFRecordDataset",
        "TFRecordDatasetV2",
        "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2",
        "CSVDataset",
        "CSVDatasetV2",
        "ExperimentalCSVDataset",
        "LMDBDataset",
        "ExperimentalLMDBDataset",
        "SqlDataset",
        "ExperimentalSqlDataset",
        "LoadDataset",
        "ExperimentalLoadDataset",
        "DecodeProtoV2",
        "FixedUnigramCandidateSampler",
        "GenerateVocabRemapping",
        "LoadAndRemapMatrix",
        "IsFile",
        "FileExists",
    }
)
#: Ops that write files or logs to paths named by their inputs or attributes.
FILE_WRITE_OPS = frozenset(
    {
        "WriteFile",
        "CreateSummaryFileWriter",
        "CreateSummaryDbWriter",
        "SummaryWriter",
        "WriteSummary",
        "WriteScalarSummary",
        "WriteHistogramSummary",
        "WriteImageSummary",
        "WriteAudioSummary",
        "WriteGraphSummary",
        "WriteRawProtoSummary",
        "ImportEvent",
        "SaveDataset",
        "SaveDatasetV2",
        "DatasetToTFRecord",
        "ExperimentalDatasetToTFRecord",
        "SnapshotDataset",
        "SnapshotDatasetV2",
        "DebugIdentityV2",
        "DebugIdentityV3",
        "DeleteFile",
        "RecursivelyCreateDir",
    }
)
#: Ops that talk to other hosts.
NETWORK_OPS = frozenset(
    {
        "Rpc",
        "TryRpc",
        "RpcCall",
        "RpcClient",
        "RpcServer",
        "RpcServerStart",
        "RpcServerRegister",
        "BigQueryReader",
        "GenerateBigQueryReaderPartitions",
        "DebugIdentity",
        "DebugNanCount",
        "DebugNumericSummary",
        "DebugNumericSummaryV2",
    }
)
#: Checkpoint, vocabulary and cache ops that savers, table initialisers and input pipelines use
#: with paths fed at run time, with the positions of their path inputs: reported only when a
#: path is a constant of the graph. ``PrintV2`` is reported when it prints to a file.
PATH_OPS: dict[str, tuple[int, ...]] = {
    "Save": (0,),
    "SaveV2": (0,),
    "SaveSlices": (0,),
    "Restore": (0,),
    "RestoreV2": (0,),
    "RestoreSlice": (0,),
    "MergeV2Checkpoints": (0, 1),
    "InitializeTableFromTextFile": (1,),
    "InitializeTableFromTextFileV2": (1,),
    "CacheDataset": (1,),
    "CacheDatasetV2": (1,),
    "PrintV2": (),
}
_CATEGORY = {
    **dict.fromkeys(PYTHON_OPS, "runs Python callbacks"),
    **dict.fromkeys(FILE_READ_OPS, "reads or lists files"),
    **dict.fromkeys(FILE_WRITE_OPS, "writes files"),
    **dict.fromkeys(NETWORK_OPS, "reaches the network or a debug server"),
    **dict.fromkeys(PATH_OPS, "reads or writes the file at a constant path"),
}

MAX_ATTR_DEPTH = 32
"""Nested attribute values (functions of functions) followed per node."""
_MAX_STRING = 4096
_MAX_CONST_STRINGS = 16
_MAX_EVIDENCE = 300
_DT_STRING = 7
_KERAS_IDENTIFIER = "_tf_keras"
_PRINT_TO_STREAMS = frozenset({"stderr", "stdout", "log(info)", "log(warning)", "log(error)"})


class _Node(Struct):
    name: str = ""
    op: str = ""
    inputs: list[str] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)
    """String attribute values (paths, URLs, function names)."""
    consts: list[str] = field(default_factory=list)
    """String values of a Const node's tensor."""
    output_stream: str = ""
    """A PrintV2 node's ``output_stream`` attribute."""


class _Graph(Struct):
    """Nodes of one graph or function body."""

    where: str
    nodes: list[_Node] = field(default_factory=list)


def scan_savedmodel(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Analyse a SavedModel's meta graphs, function library, assets and Keras metadata."""
    _scan(ctx, data, location, _saved_model)


def scan_graphdef(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Analyse a frozen GraphDef (the graph and its function library)."""
    _scan(ctx, data, location, _graph_def)


def scan_keras_metadata(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Analyse ``keras_metadata.pb``: the Keras config of every layer of a SavedModel."""
    ctx.saw_format("keras-metadata")
    _scan(ctx, data, location, _saved_metadata)


_Walk = Callable[[ScanContext, memoryview, Location, list["_Graph"]], None]


def _scan(ctx: ScanContext, data: memoryview, location: Location, walk: _Walk) -> None:
    """Walk a message, report a wire-format error, then report the graphs read before it."""
    ctx.bytes_read += len(data)
    graphs: list[_Graph] = []
    try:
        walk(ctx, data, location, graphs)
    except ProtobufError as e:
        _malformed(ctx, location, str(e))
    for graph in graphs:
        _report_graph(ctx, graph, location)


# ---- walking the schema -----------------------------------------------------------------------


def _saved_model(ctx: ScanContext, data: memoryview, location: Location, out: list[_Graph]) -> None:
    for f in fields(data):
        if f.number == 2 and f.wire_type == LEN:
            _meta_graph(ctx, payload(data, f), location, out)
        elif f.number == 1 and f.wire_type == VARINT:
            ctx.metadata["saved_model_schema_version"] = str(f.value)


def _saved_metadata(
    ctx: ScanContext, data: memoryview, location: Location, out: list[_Graph]
) -> None:
    for f in fields(data):
        if f.number == 1 and f.wire_type == LEN:
            _saved_object_metadata(ctx, payload(data, f), location)


def _meta_graph(ctx: ScanContext, data: memoryview, location: Location, out: list[_Graph]) -> None:
    for f in fields(data):
        if f.wire_type != LEN:
            continue
        if f.number == 1:
            for info in fields(payload(data, f)):
                if info.number == 5 and info.wire_type == LEN:
                    ctx.metadata["tensorflow_version"] = text(payload(data, f), info, 64)
        elif f.number == 2:
            _graph_def(ctx, payload(data, f), location, out)
        elif f.number == 6:
            _asset(ctx, payload(data, f), location)
        elif f.number == 7:
            _object_graph(ctx, payload(data, f), location)


def _graph_def(ctx: ScanContext, data: memoryview, location: Location, out: list[_Graph]) -> None:
    graph = _Graph("the graph")
    out.append(graph)
    for index, f in enumerate(fields(data)):
        if not index % 4096:
            ctx.check_deadline(location)
        if f.wire_type != LEN:
            continue
        if f.number == 1:
            _add_node(graph, _node_def(ctx, payload(data, f), location))
        elif f.number == 2:
            library = payload(data, f)
            out.extend(
                _function_def(ctx, payload(library, fn), location)
                for fn in fields(library)
                if fn.number == 1 and fn.wire_type == LEN
            )


def _function_def(ctx: ScanContext, data: memoryview, location: Location) -> _Graph:
    graph = _Graph("a library function")
    for index, f in enumerate(fields(data)):
        if not index % 4096:
            ctx.check_deadline(location)
        if f.wire_type != LEN:
            continue
        if f.number == 1:
            for sig in fields(payload(data, f)):
                if sig.number == 1 and sig.wire_type == LEN:
                    graph.where = f"function {text(payload(data, f), sig, 256)!r}"
        elif f.number == 3:
            _add_node(graph, _node_def(ctx, payload(data, f), location))
    return graph


def _add_node(graph: _Graph, node: _Node) -> None:
    """Keep the nodes the report needs: reported ops, and Const nodes holding strings."""
    if node.op in _CATEGORY or node.consts:
        graph.nodes.append(node)


def _node_def(ctx: ScanContext, data: memoryview, location: Location) -> _Node:
    node = _Node()
    attrs: list[tuple[str, memoryview]] = []
    for f in fields(data):
        if f.wire_type != LEN:
            continue
        if f.number == 1:
            node.name = text(data, f, 256)
        elif f.number == 2:
            node.op = text(data, f, 256)
        elif f.number == 3 and len(node.inputs) < 64:
            node.inputs.append(text(data, f, 256))
        elif f.number == 5:
            entry, key, value = payload(data, f), "", None
            for item in fields(entry):
                if item.number == 1 and item.wire_type == LEN:
                    key = text(entry, item, 256)
                elif item.number == 2 and item.wire_type == LEN:
                    value = payload(entry, item)
            if value is not None:
                attrs.append((key, value))
    # Every node's attributes are walked (bounded), so that nesting beyond what the scanner
    # follows is reported wherever it is; only strings of reported ops and Const nodes count.
    for key, attr in attrs:
        if node.op == "PrintV2" and key == "output_stream":
            node.output_stream = _attr_text(attr)
        _attr_strings(ctx, attr, location, node, const=node.op == "Const")
    return node


def _attr_text(data: memoryview) -> str:
    """The string (``s``) of an AttrValue, or ''."""
    for f in fields(data):
        if f.number == 2 and f.wire_type == LEN:
            return text(data, f, _MAX_STRING)
    return ""


def _attr_strings(
    ctx: ScanContext, data: memoryview, location: Location, node: _Node, *, const: bool
) -> None:
    """Collect the strings of an AttrValue and the values nested in it (bounded depth)."""
    stack: list[tuple[memoryview, int, str]] = [(data, 0, "attr")]
    while stack:
        buf, depth, kind = stack.pop()
        if depth > MAX_ATTR_DEPTH:
            raise ProtobufError(f"attribute values nest deeper than {MAX_ATTR_DEPTH} levels", 0)
        for f in fields(buf):
            if f.wire_type != LEN:
                continue
            if kind == "attr":
                if f.number in (2, 9):
                    _keep(node.strings, text(buf, f, _MAX_STRING))
                elif f.number == 1:
                    stack.append((payload(buf, f), depth + 1, "list"))
                elif f.number == 8:
                    _tensor_strings(payload(buf, f), node.consts if const else node.strings)
                elif f.number == 10:
                    stack.append((payload(buf, f), depth + 1, "func"))
            elif kind == "list":
                if f.number == 2:
                    _keep(node.strings, text(buf, f, _MAX_STRING))
                elif f.number == 8:
                    _tensor_strings(payload(buf, f), node.consts if const else node.strings)
                elif f.number == 9:
                    stack.append((payload(buf, f), depth + 1, "func"))
            elif f.number == 1:  # NameAttrList.name: a function the node calls
                _keep(node.strings, text(buf, f, _MAX_STRING))
            elif f.number == 2:  # NameAttrList.attr: map entry -> AttrValue
                entry = payload(buf, f)
                stack.extend(
                    (payload(entry, item), depth + 1, "attr")
                    for item in fields(entry)
                    if item.number == 2 and item.wire_type == LEN
                )


def _tensor_strings(data: memoryview, out: list[str]) -> None:
    """The ``string_val`` entries of a string TensorProto (numeric tensors are skipped)."""
    for seen, f in enumerate(fields(data)):
        if f.number == 1 and f.wire_type == VARINT and f.value != _DT_STRING:
            return
        if f.number == 8 and f.wire_type == LEN:
            _keep(out, text(data, f, _MAX_STRING))
        if len(out) >= _MAX_CONST_STRINGS or seen > 4 * _MAX_CONST_STRINGS:
            return


def _keep(out: list[str], value: str) -> None:
    if len(out) < _MAX_CONST_STRINGS and value:
        out.append(value)


def _asset(ctx: ScanContext, data: memoryview, location: Location) -> None:
    for f in fields(data):
        if f.number == 2 and f.wire_type == LEN:
            name = text(data, f, _MAX_STRING)
            reason = unsafe_path(name)
            if reason is not None:
                ctx.add(
                    TF_ASSET_PATH.finding(
                        location,
                        f"The asset file name {name[:200]!r} is unsafe: {reason}. The loader "
                        "hands the graph a path outside the model's assets folder.",
                        evidence={"asset": name[:_MAX_EVIDENCE], "reason": reason},
                    )
                )


def _object_graph(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Keras metadata kept in the object graph by TensorFlow 2.0-2.4 SavedModels."""
    for node in fields(data):
        if node.number != 1 or node.wire_type != LEN:
            continue
        obj = payload(data, node)
        for f in fields(obj):
            if f.number == 4 and f.wire_type == LEN:
                _user_object(ctx, payload(obj, f), location)


def _user_object(ctx: ScanContext, data: memoryview, location: Location) -> None:
    identifier, metadata = "", None
    for f in fields(data):
        if f.wire_type != LEN:
            continue
        if f.number == 1:
            identifier = text(data, f, 256)
        elif f.number == 3:
            metadata = payload(data, f)
    if metadata is not None and identifier.startswith(_KERAS_IDENTIFIER) and len(metadata):
        ctx.saw_format("keras-metadata")
        analyse_config_text(ctx, metadata, location, source=f"{identifier} metadata")


def _saved_object_metadata(ctx: ScanContext, data: memoryview, location: Location) -> None:
    path, identifier, metadata = "", "", None
    for f in fields(data):
        if f.wire_type != LEN:
            continue
        if f.number == 3:
            path = text(data, f, 256)
        elif f.number == 4:
            identifier = text(data, f, 256)
        elif f.number == 5:
            metadata = payload(data, f)
    if metadata is not None and len(metadata):
        source = f"{identifier or 'object'} {path}".strip()
        analyse_config_text(ctx, metadata, location, source=f"{source} metadata")


# ---- reporting --------------------------------------------------------------------------------


def _report_graph(ctx: ScanContext, graph: _Graph, location: Location) -> None:
    consts = {n.name: n.consts for n in graph.nodes if n.op == "Const" and n.consts}
    for index, node in enumerate(graph.nodes):
        if not index % 1_000:
            ctx.check_deadline(location)
        category = _CATEGORY.get(node.op)
        if category is None:
            continue
        fed = [s for name in _input_nodes(node.inputs) for s in consts.get(name, ())]
        if node.op in PATH_OPS:
            fed = _constant_paths(node, consts)
            if not fed and not _prints_to_file(node):
                continue
        evidence = {"op": node.op, "node": node.name[:_MAX_EVIDENCE], "in": graph.where[:200]}
        detail = ""
        if fed:
            evidence["constant_inputs"] = ", ".join(repr(s[:200]) for s in fed)[:_MAX_EVIDENCE]
            detail = f" Constant inputs: {evidence['constant_inputs']}."
        strings = [s for s in node.strings if s.isprintable()]
        if strings:
            evidence["attributes"] = ", ".join(repr(s[:200]) for s in strings)[:_MAX_EVIDENCE]
        ctx.add(
            TF_UNSAFE_OP.finding(
                location,
                f"The node {node.name[:200]!r} in {graph.where} is a {node.op} op, which "
                f"{category} when the graph runs.{detail}",
                evidence=evidence,
            )
        )


def _input_nodes(inputs: list[str]) -> Iterator[str]:
    """Node names of NodeDef inputs (``name``, ``name:1``, ``name:output:0``, ``^name``)."""
    for item in inputs:
        yield item.lstrip("^").split(":", 1)[0]


def _constant_paths(node: _Node, consts: dict[str, list[str]]) -> list[str]:
    """Non-empty constant strings fed to the path inputs of a checkpoint, table or cache op."""
    data_inputs = [i for i in node.inputs if not i.startswith("^")]
    paths: list[str] = []
    for index in PATH_OPS[node.op]:
        if index < len(data_inputs):
            name = data_inputs[index].split(":", 1)[0]
            paths += [s for s in consts.get(name, ()) if s.strip()]
    return paths


def _prints_to_file(node: _Node) -> bool:
    """Whether a PrintV2 op's ``output_stream`` names a file rather than a standard stream."""
    return node.op == "PrintV2" and node.output_stream not in ("", *_PRINT_TO_STREAMS)


def _malformed(ctx: ScanContext, location: Location, problem: str) -> None:
    ctx.add(
        TF_PROTOBUF_MALFORMED.finding(
            location,
            f"The protobuf could not be parsed: {problem}. What came before was analysed; the "
            "rest was not.",
            evidence={"problem": problem[:_MAX_EVIDENCE]},
        )
    )
