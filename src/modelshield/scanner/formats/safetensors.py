"""safetensors files: the header checked the way the reference loader checks it.

Layout (https://github.com/huggingface/safetensors#format): an 8-byte little-endian header
length, a UTF-8 JSON object mapping tensor names to ``{dtype, shape, data_offsets}`` (plus an
optional ``__metadata__`` map of strings), then the data buffer. The reference loader refuses a
header longer than 100,000,000 bytes, non-JSON, unknown dtypes, byte lengths that disagree with
dtype and shape, and tensors that overlap, leave gaps, or leave bytes after the last one.

Tensor data is never read: a file that passes every check holds nothing but numbers at the
places its header names, so it is inert (``FileResult.metadata["inert"]`` says so). Metadata
strings are analysed as metadata (templates, code, credentials, hidden pickles), and bytes that
no tensor covers are analysed by content.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from modelshield.core.findings import Location
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.formats.hygiene import scan_member
from modelshield.scanner.metadata import check_string
from modelshield.scanner.registry import Format
from modelshield.scanner.rules import (
    SAFETENSORS_HEADER_INVALID,
    SAFETENSORS_LARGE_METADATA,
    SAFETENSORS_LAYOUT_INVALID,
)

#: Bits per element of every dtype the reference loader accepts.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8,
    "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16,
    "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64,
    "U64": 64,
}  # fmt: skip
#: The reference loader refuses longer headers.
MAX_HEADER_BYTES = 100_000_000
#: Metadata larger than this (keys and values together) is reported.
LARGE_METADATA_BYTES = 1 << 20
_MAX_USIZE = (1 << 64) - 1


class _Invalid(ValueError):
    """The header is refused by the reference loader; the message says why."""


def scan_safetensors(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Validate header and layout; analyse metadata strings and uncovered bytes."""
    (length,) = struct.unpack_from("<Q", data, 0)
    ctx.bytes_read += 8
    try:
        if length > MAX_HEADER_BYTES:
            raise _Invalid(
                f"the header length is {length} bytes, above the loader's limit of "
                f"{MAX_HEADER_BYTES}"
            )
        if length > len(data) - 8:
            raise _Invalid(
                f"the header length is {length} bytes but the file has only {len(data) - 8} "
                "after the length field"
            )
        raw = bytes(data[8 : 8 + length])
        ctx.bytes_read += length
        # Parsing builds Python objects for every entry and value: bound them first.
        entries = raw.count(b'"data_offsets"')
        if entries > ctx.limits.max_members:
            raise LimitExceeded(
                "max_members",
                f"the header lists about {entries} tensors, more than limits.max_members "
                f"({ctx.limits.max_members}); it was not parsed",
                location,
            )
        values = raw.count(b",") + 1
        if values > ctx.limits.max_document_values:
            raise LimitExceeded(
                "max_document_values",
                f"the header holds about {values} values, more than "
                f"limits.max_document_values ({ctx.limits.max_document_values}); it was not "
                "parsed",
                location,
            )
        header = _parse(raw)
        metadata = _metadata(header.pop("__metadata__", None))
        tensors = {name: _entry(name, value) for name, value in header.items()}
    except _Invalid as e:
        ctx.add(
            SAFETENSORS_HEADER_INVALID.finding(
                location,
                f"The safetensors header is invalid: {e}. The reference loader refuses this "
                "file, so it is not the model it claims to be.",
                evidence={"problem": str(e)},
            )
        )
        return
    start = 8 + length
    layout_ok = _check_layout(ctx, data, location, tensors, start)
    _check_metadata(ctx, location, metadata)
    if layout_ok and not ctx.rule_totals.get(SAFETENSORS_HEADER_INVALID.id):
        ctx.metadata["inert"] = (
            f"safetensors: {len(tensors)} tensors of known dtypes tile the "
            f"{len(data) - start}-byte data buffer exactly; loading reads them as numbers "
            "and runs nothing"
        )


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Invalid(f"the header is not UTF-8 ({e.reason} at byte {e.start})") from None
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise _Invalid(f"the header holds {name}, which is not JSON")

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as e:
        raise _Invalid(f"the header is not JSON ({e.msg} at character {e.pos})") from None
    except RecursionError:
        raise _Invalid("the header nests JSON too deeply") from None
    except ValueError as e:  # integers with more digits than Python converts
        raise _Invalid(f"the header is not JSON ({e})") from None
    if not isinstance(value, dict):
        raise _Invalid(f"the header is a JSON {type(value).__name__}, not an object")
    if "__metadata__" in duplicates:
        raise _Invalid("the header has two '__metadata__' entries")
    if duplicates:
        raise _Invalid(
            f"the header names tensor {duplicates[0]!r} twice (the loader keeps the last "
            "entry; other readers may keep the first)"
        )
    return value


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _Invalid("'__metadata__' is not a map of strings to strings")
    return value


class _Tensor:
    __slots__ = ("begin", "dtype", "end", "name", "shape")

    def __init__(self, name: str, dtype: str, shape: list[int], begin: int, end: int) -> None:
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.begin = begin
        self.end = end


def _entry(name: str, value: Any) -> _Tensor:
    if not isinstance(value, dict):
        raise _Invalid(f"the entry of tensor {name!r} is not an object")
    dtype = value.get("dtype")
    shape = value.get("shape")
    offsets = value.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _Invalid(f"tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_usize(n) for n in shape):
        raise _Invalid(f"tensor {name!r} has shape {shape!r}, not a list of sizes")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_usize(n) for n in offsets)
        or offsets[0] > offsets[1]
    ):
        raise _Invalid(f"tensor {name!r} has data_offsets {offsets!r}, not [begin, end]")
    return _Tensor(name, dtype, shape, offsets[0], offsets[1])


def _usize(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= _MAX_USIZE


def _check_layout(
    ctx: ScanContext,
    data: memoryview,
    location: Location,
    tensors: dict[str, _Tensor],
    start: int,
) -> bool:
    """Check that the tensors tile the data buffer; analyse bytes they do not cover."""
    buffer = len(data) - start
    problems: list[str] = []
    for t in tensors.values():
        bits = _elements(t.shape) * DTYPE_BITS[t.dtype]
        if bits % 8:
            problems.append(f"tensor {t.name!r} of shape {t.shape} does not fill whole bytes")
        elif t.end - t.begin != bits // 8:
            problems.append(
                f"tensor {t.name!r} spans {t.end - t.begin} bytes but {t.dtype} of shape "
                f"{t.shape} needs {bits // 8}"
            )
        if t.end > buffer:
            problems.append(
                f"tensor {t.name!r} ends at byte {t.end} of a {buffer}-byte data buffer"
            )
    cursor = 0
    hidden: list[tuple[int, int, str]] = []
    for t in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
        if t.begin < cursor:
            problems.append(f"tensor {t.name!r} overlaps the tensor before it")
        elif t.begin > cursor:
            hidden.append((cursor, min(t.begin, buffer), f"gap before tensor {t.name!r}"))
        cursor = max(cursor, t.end)
    if cursor < buffer:
        hidden.append((cursor, buffer, "data after the last tensor"))
    problems += [f"{what}: {stop - begin} bytes" for begin, stop, what in hidden if stop > begin]
    for problem in problems[:20]:
        ctx.add(
            SAFETENSORS_LAYOUT_INVALID.finding(
                location,
                f"The tensors do not tile the data buffer: {problem}. The reference loader "
                "refuses this file.",
                evidence={"problem": problem},
            )
        )
    for begin, stop, what in hidden:
        if stop > begin:
            scan_member(ctx, data[start + begin : start + stop], location.child(f"<{what}>"))
    return not problems


def _elements(shape: list[int]) -> int:
    """The element count, stopping once it is past any buffer (no huge integers)."""
    count = 1
    for n in shape:
        count *= n
        if count > _MAX_USIZE:
            return _MAX_USIZE + 1
    return count


def _check_metadata(ctx: ScanContext, location: Location, metadata: dict[str, str]) -> None:
    size = sum(len(k) + len(v) for k, v in metadata.items())
    if size > LARGE_METADATA_BYTES:
        ctx.add(
            SAFETENSORS_LARGE_METADATA.finding(
                location,
                f"'__metadata__' holds {size} characters in {len(metadata)} entries; "
                "descriptive metadata is a few hundred. Every string was analysed.",
                evidence={"size": str(size), "entries": str(len(metadata))},
            )
        )
    for key, value in metadata.items():
        stripped = value.strip()
        if stripped[:1] in ("{", "[") and stripped[-1:] in ("}", "]") and _is_json(stripped):
            # Configuration stored as JSON text (trainers and some Hub libraries do this) is
            # analysed as a JSON document.
            scan_member(
                ctx, stripped.encode("utf-8"), location.child(f"<metadata {key}>"), Format.JSON
            )
        else:
            check_string(ctx, value, location, key=key, where=f"safetensors metadata key {key!r}")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True
