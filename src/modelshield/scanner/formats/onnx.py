"""ONNX models, read from the protobuf wire format without the ``onnx`` package.

The messages that matter (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto) are walked with
the bounded reader in :mod:`modelshield.scanner.wire`, iteratively, graph by graph: the model
and its training graphs and local functions, every node (and the subgraphs in its attributes:
``If``, ``Loop``, ``Scan``), every tensor (initializers, attribute and sparse tensors). Nesting
deeper than ``limits.max_structure_depth`` messages is reported and not followed (ONNX Runtime's
protobuf parser stops at 100).

What is checked: external data locations (absolute, drive, UNC, ``..``, URL schemes), operator
domains outside ONNX's and ONNX Runtime's own (unless the model defines the function), operators
that call back into Python, malformed or oversized tensors, and metadata strings
(``metadata_props``, doc strings, producer fields) analysed as metadata, with attribute and
string-tensor values searched for hidden pickles. Tensor data is never read beyond its length.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from modelshield.core.findings import Location
from modelshield.scanner.context import ScanContext
from modelshield.scanner.metadata import check_bytes, check_hidden_pickle
from modelshield.scanner.rules import (
    ONNX_CUSTOM_OPERATOR,
    ONNX_EXTERNAL_DATA_PATH,
    ONNX_MALFORMED,
    ONNX_PYTHON_OPERATOR,
    ONNX_TENSOR_INVALID,
    SCAN_LIMIT,
)
from modelshield.scanner.wire.protobuf import (
    FIXED32,
    FIXED64,
    LEN,
    VARINT,
    Field,
    ProtobufError,
    fields,
    packed_varints,
    signed64,
)

#: Domains whose operators the ONNX standard defines, and ONNX Runtime's own contrib domains.
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training"})
STANDARD_DOMAINS |= {"ai.onnx.preview.training"}
RUNTIME_DOMAIN_PREFIX = "com.microsoft"
#: Operators whose purpose is to call a Python function named by the model or the host.
PYTHON_OPERATORS = frozenset({"PythonOp", "PythonOpGrad", "PyOp", "PyFunc", "PythonFunction"})
#: Attributes of such operators that name the function.
_FUNCTION_ATTRIBUTES = frozenset({"func_name", "name", "function", "callable", "op_type"})

#: Bits per element of each TensorProto data type (None: variable, not checked).
DATA_TYPE_BITS: dict[int, int | None] = {
    1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 8: None, 9: 8, 10: 16, 11: 64, 12: 32,
    13: 64, 14: 64, 15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8,
    25: 2, 26: 2, 27: None, 28: None,
}  # fmt: skip
_STRING = 8
#: Typed data fields of a TensorProto: field number -> (wire element size or 0 for varint).
_TYPED_FIELDS = {4: 4, 5: 0, 7: 0, 10: 8, 11: 0}
#: How many elements one typed entry holds, for the types where that is simple.
_PER_ENTRY = {21: 2, 22: 2, 23: 2, 25: 4, 26: 4}
_COMPLEX = {14: 2, 15: 2}
#: Dimensions read per tensor (ONNX puts no bound on rank; runtimes do).
_MAX_DIMS = 1024
#: Values of a repeated string field examined per tensor or attribute.
_MAX_STRINGS = 100_000

_DRIVE = re.compile(r"^[A-Za-z]:")

_MODEL, _GRAPH, _NODE, _TENSOR, _SPARSE, _FUNCTION, _TRAINING = range(7)


class _Task:
    """A message waiting to be analysed."""

    __slots__ = ("depth", "end", "kind", "start")

    def __init__(self, kind: int, start: int, end: int, depth: int) -> None:
        self.kind = kind
        self.start = start
        self.end = end
        self.depth = depth


class _Walk:
    """One model: a stack of messages to analyse, and what was already reported."""

    def __init__(self, ctx: ScanContext, data: memoryview, location: Location) -> None:
        self.ctx = ctx
        self.data = data
        self.location = location
        self.functions: set[tuple[str, str]] = set()
        self.reported_ops: set[tuple[str, str]] = set()
        self.too_deep = False
        # The model's own folder, when the model is a file on disk (not an archive member).
        self.folder = Path(ctx.path).parent if not location.members and ctx.depth == 0 else None

    # ---- driving -----------------------------------------------------------------------
    def run(self) -> None:
        """Walk the messages depth first. Each message is a generator that yields its child
        messages one at a time, so memory holds one frame per level of nesting, never a list
        of a graph's nodes."""
        self._collect_functions()
        handlers: dict[int, Callable[[_Task], Iterator[_Task]]] = {
            _MODEL: self._model,
            _GRAPH: self._graph,
            _NODE: self._node,
            _TENSOR: self._tensor,
            _SPARSE: self._sparse,
            _FUNCTION: self._function,
            _TRAINING: self._training,
        }
        root = _Task(_MODEL, 0, len(self.data), 0)
        frames: list[tuple[_Task, Iterator[_Task]]] = [(root, self._model(root))]
        done = 0
        while frames:
            task, frame = frames[-1]
            try:
                child = next(frame)
            except StopIteration:
                frames.pop()
                continue
            except ProtobufError as e:
                frames.pop()
                self.ctx.add(
                    ONNX_MALFORMED.finding(
                        self.location.at(task.start),
                        f"The ONNX protobuf is malformed: {e}. ONNX runtimes refuse the model; "
                        "the rest of this message was not analysed.",
                        evidence={"problem": str(e)},
                    )
                )
                continue
            done += 1
            if done % 4096 == 0:
                self.ctx.check_deadline(self.location)
            frames.append((child, handlers[child.kind](child)))
        self.ctx.bytes_read += len(self.data)

    def _child(self, kind: int, field: Field, depth: int) -> Iterator[_Task]:
        """The child message stored in ``field``, unless it is nested too deep."""
        if field.wire_type != LEN:
            return
        if depth > self.ctx.limits.max_structure_depth:
            if not self.too_deep:
                self.too_deep = True
                self.ctx.add(
                    SCAN_LIMIT.finding(
                        self.location.at(field.offset),
                        "The ONNX model nests messages (subgraphs in node attributes) deeper "
                        f"than limits.max_structure_depth ({self.ctx.limits.max_structure_depth})"
                        "; deeper parts were not analysed (ONNX Runtime refuses more than 100 "
                        "levels).",
                        evidence={"limit": "max_structure_depth"},
                    )
                )
            return
        yield _Task(kind, field.start, field.end, depth)

    def _fields(self, task: _Task) -> Iterator[Field]:
        return fields(self.data, task.start, task.end)

    def _text(self, field: Field) -> bytes:
        return bytes(self.data[field.start : field.end]) if field.wire_type == LEN else b""

    def _metadata(self, field: Field, what: str) -> None:
        value = self._text(field)
        if value:
            check_bytes(
                self.ctx, value, self.location.at(field.offset), key=what, where=f"ONNX {what}"
            )

    def _entries(self, field: Field, what: str) -> None:
        """A ``StringStringEntryProto`` (metadata_props)."""
        key, value = self._entry(field)
        if value:
            check_bytes(
                self.ctx,
                value,
                self.location.at(field.offset),
                key=key,
                where=f"ONNX {what} {key!r}",
            )

    def _entry(self, field: Field) -> tuple[str, bytes]:
        key = b""
        value = b""
        if field.wire_type != LEN:
            return "", b""
        for f in fields(self.data, field.start, field.end):
            if f.number == 1:
                key = self._text(f)
            elif f.number == 2:
                value = self._text(f)
        return key.decode("utf-8", "replace"), value

    # ---- messages ----------------------------------------------------------------------
    def _collect_functions(self) -> None:
        """Model-local functions (``ModelProto.functions``), which nodes may call by domain."""
        try:
            for f in fields(self.data, 0, len(self.data)):
                if f.number == 25 and f.wire_type == LEN:
                    name = domain = b""
                    for g in fields(self.data, f.start, f.end):
                        if g.number == 1:
                            name = self._text(g)
                        elif g.number == 10:
                            domain = self._text(g)
                    self.functions.add(
                        (domain.decode("utf-8", "replace"), name.decode("utf-8", "replace"))
                    )
        except ProtobufError:
            return  # reported when the model itself is walked

    def _model(self, task: _Task) -> Iterator[_Task]:
        for f in self._fields(task):
            if f.number == 7:
                yield from self._child(_GRAPH, f, task.depth + 1)
            elif f.number == 20:
                yield from self._child(_TRAINING, f, task.depth + 1)
            elif f.number == 25:
                yield from self._child(_FUNCTION, f, task.depth + 1)
            elif f.number == 14:
                self._entries(f, "metadata_props")
            elif f.number in (2, 3, 4, 6):
                what = {2: "producer_name", 3: "producer_version", 4: "domain", 6: "doc_string"}
                self._metadata(f, f"model {what[f.number]}")
                if f.number in (2, 3):  # the dependency audit maps these to a package version
                    text = self._text(f)[:200].decode("utf-8", "replace")
                    self.ctx.metadata[f"onnx_{what[f.number]}"] = text
            elif f.number == 1 and f.wire_type == VARINT:
                self.ctx.metadata["onnx_ir_version"] = str(f.value)

    def _training(self, task: _Task) -> Iterator[_Task]:
        for f in self._fields(task):
            if f.number in (1, 2):
                yield from self._child(_GRAPH, f, task.depth + 1)

    def _graph(self, task: _Task) -> Iterator[_Task]:
        for f in self._fields(task):
            if f.number == 1:
                yield from self._child(_NODE, f, task.depth + 1)
            elif f.number == 5:
                yield from self._child(_TENSOR, f, task.depth + 1)
            elif f.number == 15:
                yield from self._child(_SPARSE, f, task.depth + 1)
            elif f.number == 10:
                self._metadata(f, "graph doc_string")
            elif f.number == 16:
                self._entries(f, "graph metadata_props")

    def _function(self, task: _Task) -> Iterator[_Task]:
        for f in self._fields(task):
            if f.number == 7:
                yield from self._child(_NODE, f, task.depth + 1)
            elif f.number == 11:
                yield from self._attribute(f, task.depth + 1, {})
            elif f.number == 8:
                self._metadata(f, "function doc_string")
            elif f.number == 14:
                self._entries(f, "function metadata_props")

    def _sparse(self, task: _Task) -> Iterator[_Task]:
        for f in self._fields(task):
            if f.number in (1, 2):
                yield from self._child(_TENSOR, f, task.depth + 1)

    def _node(self, task: _Task) -> Iterator[_Task]:
        op_type = domain = name = ""
        named: dict[str, str] = {}
        for f in self._fields(task):
            if f.number == 4:
                op_type = self._text(f).decode("utf-8", "replace")
            elif f.number == 7:
                domain = self._text(f).decode("utf-8", "replace")
            elif f.number == 3:
                name = self._text(f).decode("utf-8", "replace")
            elif f.number == 5:
                yield from self._attribute(f, task.depth + 1, named)
            elif f.number == 6:
                self._metadata(f, "node doc_string")
            elif f.number == 9:
                self._entries(f, "node metadata_props")
        self._judge_operator(task, op_type, domain, name, named)

    def _attribute(self, field: Field, depth: int, named: dict[str, str]) -> Iterator[_Task]:
        """An AttributeProto: subgraphs and tensors go on the stack, strings are searched."""
        if field.wire_type != LEN:
            return
        attr_name = ""
        for f in fields(self.data, field.start, field.end):
            if f.number == 1:
                attr_name = self._text(f).decode("utf-8", "replace")
            elif f.number == 4:
                value = self._text(f)
                if len(named) < 16:
                    named[attr_name or "?"] = value[:200].decode("utf-8", "replace")
                check_hidden_pickle(
                    self.ctx,
                    value,
                    self.location.at(f.offset),
                    where=f"ONNX attribute {attr_name!r}",
                )
            elif f.number == 9:
                check_hidden_pickle(
                    self.ctx,
                    self._text(f),
                    self.location.at(f.offset),
                    where=f"ONNX attribute {attr_name!r}",
                )
            elif f.number in (5, 10):
                yield from self._child(_TENSOR, f, depth + 1)
            elif f.number in (6, 11):
                yield from self._child(_GRAPH, f, depth + 1)
            elif f.number in (22, 23):
                yield from self._child(_SPARSE, f, depth + 1)

    def _judge_operator(
        self, task: _Task, op_type: str, domain: str, name: str, named: dict[str, str]
    ) -> None:
        if domain in STANDARD_DOMAINS or (domain, op_type) in self.functions:
            return
        key = (domain, op_type)
        if key in self.reported_ops:
            return
        self.reported_ops.add(key)
        where = self.location.at(task.start)
        evidence = {"domain": domain, "op_type": op_type, "node": name}
        if op_type in PYTHON_OPERATORS:
            target = ", ".join(f"{k}={v!r}" for k, v in named.items() if k in _FUNCTION_ATTRIBUTES)
            evidence["function"] = target
            self.ctx.add(
                ONNX_PYTHON_OPERATOR.finding(
                    where,
                    f"Node {name!r} runs operator {domain}::{op_type}, which calls a Python "
                    f"function{f' ({target})' if target else ''} when the model runs.",
                    evidence=evidence,
                )
            )
        elif not domain.startswith(RUNTIME_DOMAIN_PREFIX):
            self.ctx.add(
                ONNX_CUSTOM_OPERATOR.finding(
                    where,
                    f"Node {name!r} uses operator {op_type!r} from the custom domain "
                    f"{domain!r}: the model runs only with a native library registered for "
                    "that domain, and runs that library's code. Further nodes of this operator "
                    "are not listed.",
                    evidence=evidence,
                )
            )

    def _tensor(self, task: _Task) -> Iterator[_Task]:
        tensor = _TensorInfo()
        for f in self._fields(task):
            tensor.read(self, f)
        for problem in tensor.problems(len(self.data)):
            self.ctx.add(
                ONNX_TENSOR_INVALID.finding(
                    self.location.at(task.start),
                    f"Tensor {tensor.name!r} is invalid: {problem}. Runtimes refuse it or "
                    "allocate what it claims.",
                    evidence={"tensor": tensor.name, "problem": problem},
                )
            )
        self._external(task, tensor)
        yield from ()

    def _external(self, task: _Task, tensor: _TensorInfo) -> None:
        for key, value in tensor.external:
            if key != "location":
                continue
            reason = _escapes(value, self.folder)
            if reason is None:
                continue
            self.ctx.add(
                ONNX_EXTERNAL_DATA_PATH.finding(
                    self.location.at(task.start),
                    f"Tensor {tensor.name!r} takes its data from {value!r}, which {reason}. "
                    "Loading the model reads that file into the tensor.",
                    evidence={"tensor": tensor.name, "location": value, "reason": reason},
                )
            )


class _TensorInfo:
    """What one TensorProto declares."""

    def __init__(self) -> None:
        self.name = ""
        self.dims: list[int] = []
        self.data_type = 0
        self.raw: int | None = None
        self.typed = 0
        self.location_external = False
        self.external: list[tuple[str, str]] = []

    def read(self, walk: _Walk, f: Field) -> None:
        data = walk.data
        if f.number == 1:
            if f.wire_type == VARINT:
                self.dims.append(signed64(f.value))
            elif f.wire_type == LEN:
                self.dims += [signed64(v) for v in packed_varints(data, f.start, f.end, _MAX_DIMS)]
        elif f.number == 2 and f.wire_type == VARINT:
            self.data_type = f.value
        elif f.number == 8:
            self.name = walk._text(f).decode("utf-8", "replace")
        elif f.number == 9 and f.wire_type == LEN:
            self.raw = (self.raw or 0) + f.length
        elif f.number == 13:
            key, value = walk._entry(f)
            self.external.append((key, value.decode("utf-8", "replace")))
        elif f.number == 14 and f.wire_type == VARINT:
            self.location_external = f.value == 1
        elif f.number == 6 and f.wire_type == LEN:
            self.typed += 1
            if self.typed <= _MAX_STRINGS:
                check_hidden_pickle(
                    walk.ctx,
                    walk._text(f),
                    walk.location.at(f.offset),
                    where=f"ONNX string tensor {self.name!r}",
                )
        elif f.number in _TYPED_FIELDS:
            self.typed += _count(data, f, _TYPED_FIELDS[f.number])

    def problems(self, file_size: int) -> list[str]:
        found: list[str] = []
        if self.data_type == 0 or self.data_type > 0x7FFFFFFF:
            found.append(f"its data type is {self.data_type} (undefined)")
        negative = [d for d in self.dims if d < 0]
        if negative:
            found.append(f"its shape {self.dims[:8]} has a negative dimension")
            return found
        elements = 1
        for d in self.dims:
            elements *= d
            if elements >= 1 << 63:
                found.append(f"its shape {self.dims[:8]} holds more than 2**63 elements")
                return found
        external = self.location_external or bool(self.external)
        if external:
            found += self._external_problems()
            return found
        bits = DATA_TYPE_BITS.get(self.data_type)
        if self.raw is not None and bits is not None:
            expected = (elements * bits + 7) // 8
            if self.raw != expected:
                found.append(
                    f"its raw data has {self.raw} bytes but {elements} elements of its type "
                    f"need {expected}"
                )
        elif self.raw is None and elements and not self.typed:
            size = (elements * (bits or 8) + 7) // 8
            found.append(
                f"it declares {elements} elements ({size} bytes) but holds no data"
                + (f", and the file has only {file_size} bytes" if size > file_size else "")
            )
        elif self.raw is None and self.typed and bits is not None:
            per = _PER_ENTRY.get(self.data_type, 1)
            expected = -(-elements // per) * _COMPLEX.get(self.data_type, 1)
            if self.typed != expected:
                found.append(f"it holds {self.typed} typed values but its shape needs {expected}")
        return found

    def _external_problems(self) -> list[str]:
        found: list[str] = []
        entries = dict(self.external)
        if not entries.get("location"):
            found.append("its data is external but no location is given")
        for key in ("offset", "length"):
            value = entries.get(key)
            if value is not None and not value.strip().isdigit():
                found.append(f"its external data {key} {value!r} is not a non-negative integer")
        return found


def _count(data: memoryview, f: Field, size: int) -> int:
    """Elements in one occurrence of a typed data field (packed or not)."""
    if f.wire_type == LEN:
        if size:
            return f.length // size
        chunk = bytes(data[f.start : f.end])
        return len(chunk) - len(chunk.translate(None, bytes(range(128))))
    return 1 if f.wire_type in (VARINT, FIXED32, FIXED64) else 0


def _escapes(location: str, folder: Path | None) -> str | None:
    """Why an external data location leaves the model folder, or None.

    ``folder`` is the folder of the model file when it is a file on disk (not an archive
    member): a location that is a symbolic link out of it escapes too (CVE-2024-27318).
    """
    text = location.strip()
    unified = text.replace("\\", "/")
    if "\x00" in text:
        return "holds a NUL byte"
    if unified.startswith("//"):
        return "is a UNC network path"
    if unified.startswith("/") or _DRIVE.match(unified):
        return "is an absolute path"
    if "://" in text or text.lower().startswith("file:"):
        return "is a URL"
    if text.startswith("~"):
        return "starts in a home folder ('~')"
    normal = posixpath.normpath(unified)
    if normal == ".." or normal.startswith("../"):
        return "climbs out of the model folder with '..'"
    if folder is not None:
        target = folder / normal
        try:
            inside = target.resolve().is_relative_to(folder.resolve())
        except (OSError, RuntimeError):
            return None
        if not inside:
            return "is a symbolic link that resolves outside the model folder"
    return None


def scan_onnx(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Walk the model; report external data paths, custom and Python operators, bad tensors
    and metadata."""
    _Walk(ctx, data, location).run()
