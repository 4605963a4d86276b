"""GGUF files (llama.cpp and its servers): header, key/values and tensor table, with bounds.

Layout (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): ``GGUF``, a version, the
tensor and key/value counts, the key/values (typed: numbers, booleans, strings, arrays), the
tensor table (name, dimensions, ggml type, offset), then the tensor data from the next multiple
of ``general.alignment``. Counts and lengths are checked against the bytes the file has left
before anything is read or allocated, so a count of 2**63 costs nothing.

Tensor data is never read: a GGUF file runs no code, except through its chat templates
(``tokenizer.chat_template`` and ``tokenizer.chat_template.<name>``), which servers render with
Jinja; those are analysed as templates. Every other string value is analysed as metadata
(:mod:`modelshield.scanner.metadata`). The tensor table is checked the way llama.cpp checks it.
"""

from __future__ import annotations

import struct

from modelshield.core.findings import Location, Severity
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.detect import sniff_strong
from modelshield.scanner.formats.hygiene import scan_member
from modelshield.scanner.metadata import check_bytes
from modelshield.scanner.rules import GGUF_MALFORMED, GGUF_TENSOR_INVALID

#: Value types and the sizes of the scalar ones.
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING = 8
_ARRAY = 9
_UINT32 = 4

#: ggml tensor types: (elements per block, bytes per block), as ggml defines them.
GGML_TYPES: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 40), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
    15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18),
    21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4),
    27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66),
    39: (32, 17), 40: (64, 36), 41: (128, 18),
}  # fmt: skip

#: llama.cpp's limits: dimensions per tensor, bytes per tensor name.
GGML_MAX_DIMS = 4
GGML_MAX_NAME = 64
_DEFAULT_ALIGNMENT = 32
#: Smallest encodings, used to check counts against the bytes left before reading them.
_MIN_KV_BYTES = 8 + 4 + 1
_MIN_TENSOR_BYTES = 8 + 4 + 4 + 8
#: Keys whose string values servers render as Jinja chat templates.
_TEMPLATE_KEY = "tokenizer.chat_template"
#: Array elements read between two checks of the time budget.
_DEADLINE_EVERY = 1 << 16


class _Malformed(Exception):
    """The file cannot be read past this point; the message says why."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class _Reader:
    """Little-endian reads from a buffer, each checked against its end."""

    def __init__(self, data: memoryview, pos: int, version: int, order: str) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data)
        self.wide = version >= 2  # counts and lengths are 64-bit from version 2 on
        self.u32_format = order + "I"
        self.u64_format = order + "Q"

    @property
    def left(self) -> int:
        return self.end - self.pos

    def need(self, size: int, what: str) -> None:
        if size > self.left:
            raise _Malformed(
                f"{what} needs {size} bytes but the file has {self.left} left", self.pos
            )

    def u32(self, what: str) -> int:
        self.need(4, what)
        (value,) = struct.unpack_from(self.u32_format, self.data, self.pos)
        self.pos += 4
        return int(value)

    def u64(self, what: str) -> int:
        self.need(8, what)
        (value,) = struct.unpack_from(self.u64_format, self.data, self.pos)
        self.pos += 8
        return int(value)

    def count(self, what: str) -> int:
        return self.u64(what) if self.wide else self.u32(what)

    def string(self, what: str) -> bytes:
        length = self.count(f"the length of {what}")
        self.need(length, what)
        value = bytes(self.data[self.pos : self.pos + length])
        self.pos += length
        return value

    def skip_string(self, what: str) -> None:
        length = self.count(f"the length of {what}")
        self.need(length, what)
        self.pos += length


class _Tensor:
    __slots__ = ("dims", "ggml_type", "name", "offset", "problem", "size")

    def __init__(self, name: str, dims: list[int], ggml_type: int, offset: int) -> None:
        self.name = name
        self.dims = dims
        self.ggml_type = ggml_type
        self.offset = offset
        self.problem: str | None = None
        self.size: int | None = None


def scan_gguf(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Parse the header, key/values and tensor table; analyse templates and metadata."""
    (version,) = struct.unpack_from("<I", data, 4)
    order = "<"
    if not 1 <= version <= 64:  # a big-endian file (detection accepted one of the two)
        (version,) = struct.unpack_from(">I", data, 4)
        order = ">"
        ctx.metadata["gguf_byte_order"] = "big-endian"
    ctx.metadata["gguf_version"] = str(version)
    reader = _Reader(data, 8, version, order)
    try:
        n_tensors = reader.count("the tensor count")
        n_kv = reader.count("the key/value count")
        if n_kv > reader.left // _MIN_KV_BYTES or n_tensors > reader.left // _MIN_TENSOR_BYTES:
            raise _Malformed(
                f"the header declares {n_tensors} tensors and {n_kv} key/values, more than "
                f"the {reader.left} bytes after it can hold",
                8,
            )
        alignment = _read_kvs(ctx, reader, n_kv, location)
        if n_tensors > ctx.limits.max_members:
            raise LimitExceeded(
                "max_members",
                f"the tensor table lists {n_tensors} tensors, more than limits.max_members "
                f"({ctx.limits.max_members}); the key/values were analysed, the tensors not",
                location.at(reader.pos),
            )
        tensors = [_read_tensor(reader, i) for i in range(n_tensors)]
    except _Malformed as e:
        ctx.bytes_read += reader.pos
        ctx.add(
            GGUF_MALFORMED.finding(
                location.at(e.offset),
                f"The GGUF file cannot be read past offset {e.offset}: {e}. llama.cpp refuses "
                "it; nothing after that point was analysed.",
                evidence={"problem": str(e), "offset": str(e.offset)},
            )
        )
        return
    ctx.bytes_read += reader.pos
    data_start = -(-reader.pos // alignment) * alignment
    _check_tensors(ctx, data, location, tensors, alignment, data_start)


def _read_kvs(ctx: ScanContext, reader: _Reader, n_kv: int, location: Location) -> int:
    """Read every key/value; analyse strings; return the alignment the file declares."""
    seen: set[str] = set()
    alignment = _DEFAULT_ALIGNMENT
    for _ in range(n_kv):
        start = reader.pos
        raw_key = reader.string("a key")
        try:
            key = raw_key.decode("utf-8")
        except UnicodeDecodeError:
            raise _Malformed(f"the key {raw_key[:40]!r} is not UTF-8", start) from None
        if key in seen:
            raise _Malformed(f"the key {key!r} appears twice", start)
        seen.add(key)
        value_type = reader.u32(f"the type of {key!r}")
        if value_type == _STRING:
            value_at = reader.pos
            value = reader.string(f"the value of {key!r}")
            _string_value(ctx, key, value, location.at(value_at))
        elif value_type == _ARRAY:
            _skip_array(ctx, reader, key, location, 1)
        elif value_type in _SCALAR_SIZES:
            if key == "general.alignment" and value_type == _UINT32:
                alignment = reader.u32(key)
                if alignment == 0 or alignment & (alignment - 1):
                    raise _Malformed(f"general.alignment {alignment} is not a power of two", start)
            else:
                reader.need(_SCALAR_SIZES[value_type], f"the value of {key!r}")
                reader.pos += _SCALAR_SIZES[value_type]
        else:
            raise _Malformed(f"the key {key!r} has unknown value type {value_type}", start)
    return alignment


def _string_value(ctx: ScanContext, key: str, value: bytes, location: Location) -> None:
    template = key == _TEMPLATE_KEY or key.startswith(_TEMPLATE_KEY + ".")
    check_bytes(
        ctx,
        value,
        location,
        key=key,
        where=f"GGUF key {key!r}",
        rendered_template=template,
    )


def _skip_array(
    ctx: ScanContext, reader: _Reader, key: str, location: Location, depth: int
) -> None:
    """Skip an array value (its elements are token lists and numbers, not analysed)."""
    if depth > ctx.limits.max_structure_depth:
        raise LimitExceeded(
            "max_structure_depth",
            f"the GGUF value {key!r} nests arrays deeper than {ctx.limits.max_structure_depth}",
            location.at(reader.pos),
        )
    start = reader.pos
    elem_type = reader.u32(f"the element type of {key!r}")
    count = reader.count(f"the element count of {key!r}")
    if elem_type in _SCALAR_SIZES:
        reader.need(count * _SCALAR_SIZES[elem_type], f"the {count} elements of {key!r}")
        reader.pos += count * _SCALAR_SIZES[elem_type]
        return
    if elem_type not in (_STRING, _ARRAY):
        raise _Malformed(f"the array {key!r} has unknown element type {elem_type}", start)
    smallest = 8 if reader.wide else 4
    if count > reader.left // smallest:
        raise _Malformed(
            f"the array {key!r} declares {count} elements, more than the {reader.left} bytes "
            "left can hold",
            start,
        )
    for i in range(count):
        if i % _DEADLINE_EVERY == _DEADLINE_EVERY - 1:
            ctx.check_deadline(location)
        if elem_type == _STRING:
            reader.skip_string(f"element {i} of {key!r}")
        else:
            _skip_array(ctx, reader, key, location, depth + 1)


def _read_tensor(reader: _Reader, index: int) -> _Tensor:
    raw_name = reader.string(f"the name of tensor {index}")
    n_dims = reader.u32(f"the dimension count of tensor {index}")
    width = 8 if reader.wide else 4
    reader.need(n_dims * width, f"the {n_dims} dimensions of tensor {index}")
    dims = [reader.count("a dimension") for _ in range(min(n_dims, GGML_MAX_DIMS))]
    reader.pos += (n_dims - len(dims)) * width
    ggml_type = reader.u32(f"the type of tensor {index}")
    offset = reader.u64(f"the offset of tensor {index}")
    tensor = _Tensor(raw_name.decode("utf-8", "replace"), dims, ggml_type, offset)
    if n_dims > GGML_MAX_DIMS:
        tensor.problem = f"it has {n_dims} dimensions, more than {GGML_MAX_DIMS}"
    elif len(raw_name) > GGML_MAX_NAME:
        tensor.problem = f"its name has {len(raw_name)} bytes, more than {GGML_MAX_NAME}"
    return tensor


def _check_tensors(
    ctx: ScanContext,
    data: memoryview,
    location: Location,
    tensors: list[_Tensor],
    alignment: int,
    data_start: int,
) -> None:
    names: set[str] = set()
    size = len(data)
    spans: list[tuple[int, int, str]] = []
    for tensor in tensors:
        problem = _tensor_problem(tensor, alignment, data_start, size)
        if tensor.name in names:
            problem = problem or "its name is used by another tensor"
        names.add(tensor.name)
        if problem is not None:
            _invalid(ctx, location, tensor, problem)
            continue
        if tensor.size is not None:
            spans.append(
                (data_start + tensor.offset, data_start + tensor.offset + tensor.size, tensor.name)
            )
    spans.sort()
    end = data_start
    for start, stop, name in spans:
        if start < end:
            ctx.add(
                GGUF_TENSOR_INVALID.finding(
                    location.at(start),
                    f"The data of tensor {name!r} overlaps the tensor before it; llama.cpp "
                    "refuses overlapping tensors.",
                    evidence={"tensor": name, "problem": "overlap"},
                )
            )
        elif start - end >= alignment:
            _hidden(ctx, data, location, end, start, "gap between tensors")
        end = max(end, stop)
    if spans and size - end >= alignment:
        _hidden(ctx, data, location, end, size, "data after the last tensor")


def _tensor_problem(tensor: _Tensor, alignment: int, data_start: int, size: int) -> str | None:
    if tensor.problem is not None:
        return tensor.problem
    elements = 1
    for dim in tensor.dims:
        elements *= dim
    if elements >= 1 << 63:
        return f"its shape {tensor.dims} holds more than 2**63 elements"
    if tensor.offset % alignment:
        return f"its offset {tensor.offset} is not a multiple of the alignment {alignment}"
    block = GGML_TYPES.get(tensor.ggml_type)
    if block is None:
        return None  # a ggml type this scanner does not know: its size is not checked
    per_block, block_bytes = block
    if tensor.dims and tensor.dims[0] % per_block:
        return (
            f"its first dimension {tensor.dims[0]} is not a multiple of its block size {per_block}"
        )
    tensor.size = elements // per_block * block_bytes
    if data_start + tensor.offset + tensor.size > size:
        return (
            f"its {tensor.size} bytes at offset {tensor.offset} of the data (which starts at "
            f"{data_start}) reach past the end of the {size}-byte file"
        )
    return None


def _invalid(ctx: ScanContext, location: Location, tensor: _Tensor, problem: str) -> None:
    ctx.add(
        GGUF_TENSOR_INVALID.finding(
            location,
            f"Tensor {tensor.name!r} is invalid: {problem}. llama.cpp refuses such a file.",
            evidence={"tensor": tensor.name, "problem": problem, "type": str(tensor.ggml_type)},
        )
    )


def _hidden(
    ctx: ScanContext, data: memoryview, location: Location, start: int, stop: int, what: str
) -> None:
    """Bytes no tensor covers: analyse them when they start like something."""
    if sniff_strong(bytes(data[start : start + 64])) is None:
        return
    ctx.add(
        GGUF_TENSOR_INVALID.finding(
            location.at(start),
            f"The file holds {stop - start} bytes that no tensor covers ({what}) and they start "
            "like another format; they were analysed by content.",
            severity=Severity.MEDIUM,
            evidence={"problem": what, "bytes": str(stop - start)},
        )
    )
    scan_member(ctx, data[start:stop], location.child(f"<{what} @{start}>"))
