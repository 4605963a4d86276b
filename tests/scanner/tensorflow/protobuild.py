"""TensorFlow protobufs written byte by byte, field numbers as in TensorFlow's .proto files.

``saved_model.proto``: SavedModel {1: saved_model_schema_version, 2: meta_graphs}.
``meta_graph.proto``: MetaGraphDef {1: meta_info_def {4: tags, 5: tensorflow_version},
2: graph_def, 6: asset_file_def {2: filename}, 7: object_graph_def}.
``graph.proto``: GraphDef {1: node, 2: library, 4: versions {1: producer}}.
``node_def.proto``: NodeDef {1: name, 2: op, 3: input, 4: device, 5: attr (map)}.
``function.proto``: FunctionDefLibrary {1: function}; FunctionDef {1: signature (OpDef
{1: name}), 3: node_def}.
``attr_value.proto``: AttrValue {1: list, 2: s, 3: i, 6: type, 8: tensor, 10: func};
NameAttrList {1: name, 2: attr}.
``tensor.proto``: TensorProto {1: dtype, 2: tensor_shape, 8: string_val}.
``saved_object_graph.proto``: SavedObjectGraph {1: nodes}; SavedObject {4: user_object};
SavedUserObject {1: identifier, 2: version, 3: metadata}.
``saved_metadata.proto`` (Keras): SavedMetadata {1: nodes}; SavedObject {2: node_id,
3: node_path, 4: identifier, 5: metadata}.
"""

from __future__ import annotations

DT_FLOAT = 1
DT_STRING = 7


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return key(number, 2) + varint(len(payload)) + payload


def vi(number: int, value: int) -> bytes:
    """A varint field."""
    return key(number, 0) + varint(value)


def s(number: int, text: str) -> bytes:
    return ld(number, text.encode())


def attr_s(text: str) -> bytes:
    return s(2, text)


def attr_type(dtype: int) -> bytes:
    return vi(6, dtype)


def attr_func(name: str) -> bytes:
    return ld(10, s(1, name))


def node(name: str, op: str, *inputs: str, **attrs: bytes) -> bytes:
    body = s(1, name) + s(2, op) + b"".join(s(3, i) for i in inputs)
    for k, v in attrs.items():
        body += ld(5, s(1, k) + ld(2, v))
    return body


def const_string(name: str, *values: str) -> bytes:
    tensor = vi(1, DT_STRING) + ld(2, ld(2, vi(1, len(values)))) + b"".join(s(8, v) for v in values)
    return node(name, "Const", dtype=attr_type(DT_STRING), value=ld(8, tensor))


def const_float(name: str, raw: bytes) -> bytes:
    tensor = vi(1, DT_FLOAT) + ld(2, ld(2, vi(1, len(raw) // 4))) + ld(4, raw)
    return node(name, "Const", dtype=attr_type(DT_FLOAT), value=ld(8, tensor))


def function(name: str, *nodes: bytes) -> bytes:
    return ld(1, s(1, name)) + b"".join(ld(3, n) for n in nodes)


def graph(*nodes: bytes, functions: tuple[bytes, ...] = ()) -> bytes:
    body = b"".join(ld(1, n) for n in nodes)
    if functions:
        body += ld(2, b"".join(ld(1, f) for f in functions))
    return body + ld(4, vi(1, 1882))


def meta_graph(
    graph_def: bytes, *, assets: tuple[str, ...] = (), object_graph: bytes = b""
) -> bytes:
    body = ld(1, s(4, "serve") + s(5, "2.16.1")) + ld(2, graph_def)
    body += b"".join(ld(6, ld(1, s(1, "asset_path:0")) + s(2, a)) for a in assets)
    if object_graph:
        body += ld(7, object_graph)
    return body


def saved_model(*metas: bytes) -> bytes:
    return vi(1, 1) + b"".join(ld(2, m) for m in metas)


def user_object(identifier: str, metadata: str) -> bytes:
    """A SavedObjectGraph with one node holding a SavedUserObject."""
    return ld(1, ld(4, s(1, identifier) + ld(2, vi(1, 1)) + s(3, metadata)))


def keras_metadata(*objects: tuple[str, str, str]) -> bytes:
    """SavedMetadata nodes of (node_path, identifier, metadata JSON)."""
    return b"".join(
        ld(1, vi(2, i + 1) + s(3, path) + s(4, ident) + s(5, meta) + ld(6, vi(1, 1)))
        for i, (path, ident, meta) in enumerate(objects)
    )


def nested_func_attr(depth: int) -> bytes:
    """An AttrValue whose function's attribute holds a function ... ``depth`` levels deep,
    built from the inside out in linear time."""
    inner = attr_s("leaf")
    parts: list[bytes] = []
    size = len(inner)
    for _ in range(depth):
        # AttrValue {10: NameAttrList {1: "f", 2: entry {1: "k", 2: <inner AttrValue>}}}
        entry_head = s(1, "k") + key(2, 2) + varint(size)
        entry_size = len(entry_head) + size
        nal_head = s(1, "f") + key(2, 2) + varint(entry_size)
        nal_size = len(nal_head) + entry_size
        attr_head = key(10, 2) + varint(nal_size)
        parts.append(attr_head + nal_head + entry_head)
        size = len(attr_head) + nal_size
    return b"".join(reversed(parts)) + inner
