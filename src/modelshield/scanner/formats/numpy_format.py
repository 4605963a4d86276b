"""NumPy ``.npy`` arrays (``.npz`` files are zips of them and arrive through the zip handler).

The header is a Python dict literal; it is parsed with :func:`ast.literal_eval` (never
``eval``), bounded like NumPy bounds it. An object array (``'O'`` anywhere in the dtype,
structured dtypes included) stores its data as a pickle, which ``numpy.load(allow_pickle=True)``
unpickles: that data is analysed as a pickle. Numeric data is never read: its declared size is
checked against the file.
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

from modelshield.core.findings import Location
from modelshield.scanner.context import ScanContext
from modelshield.scanner.detect import sniff_strong
from modelshield.scanner.formats.hygiene import scan_member
from modelshield.scanner.registry import Format
from modelshield.scanner.rules import NUMPY_HEADER_INVALID, NUMPY_MAX_HEADER_BYTES, NUMPY_TRUNCATED

_TYPESTR = re.compile(r"^[<>|=]?([?bBhHiIlLqQpPefdgFDGSaUVOMmcu])(\d*)(\[\w+\])?$")
_FIXED_SIZES = {"?": 1, "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8}
_FIXED_SIZES |= {"Q": 8, "p": 8, "P": 8, "e": 2, "f": 4, "d": 8, "g": 16, "F": 8, "D": 16}
_FIXED_SIZES |= {"G": 32, "O": 8, "M": 8, "m": 8, "c": 1}


class _BadHeader(ValueError):
    pass


def scan_numpy(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Parse the header; analyse object-array data as a pickle; size-check numeric data."""
    head = bytes(data[:12])
    ctx.bytes_read += len(head)
    major = head[6] if len(head) > 6 else 0
    if major == 1 and len(head) >= 10:
        (length,) = struct.unpack_from("<H", head, 8)
        start = 10
    elif major in (2, 3) and len(head) >= 12:
        (length,) = struct.unpack_from("<I", head, 8)
        start = 12
    else:
        _invalid(ctx, data, location, len(head), f"unknown format version {major}")
        return
    offset = start + length
    if length > NUMPY_MAX_HEADER_BYTES:
        _invalid(ctx, data, location, offset, f"the header has {length} bytes")
        return
    raw = bytes(data[start:offset])
    ctx.bytes_read += len(raw)
    try:
        if len(raw) < length:
            raise _BadHeader("the file ends inside the header")
        descr, shape = _parse_header(raw.decode("utf-8" if major == 3 else "latin-1"))
    except (_BadHeader, UnicodeDecodeError) as e:
        _invalid(ctx, data, location, offset, str(e))
        return
    if _has_object(descr):
        ctx.saw_format("numpy-object")
        scan_member(ctx, data[offset:], location.child("<object array>"), Format.PICKLE)
        return
    itemsize = _itemsize(descr)
    if itemsize is None:
        return
    expected = math.prod(shape) * itemsize
    available = max(0, len(data) - offset)
    if available < expected:
        ctx.add(
            NUMPY_TRUNCATED.finding(
                location,
                f"The header declares shape {shape} of {descr!r} ({expected} bytes) but only "
                f"{available} bytes follow it. NumPy will refuse to load this file.",
                evidence={"expected_bytes": str(expected), "available_bytes": str(available)},
            )
        )
    elif available > expected:
        # Loaders ignore bytes after the array; look whether something was hidden there.
        tail = data[offset + expected :]
        if sniff_strong(bytes(tail[:64])) is not None:
            scan_member(ctx, tail, location.child("<trailing data>"))


def _invalid(ctx: ScanContext, data: memoryview, location: Location, offset: int, why: str) -> None:
    ctx.add(
        NUMPY_HEADER_INVALID.finding(
            location,
            f"The array header could not be parsed: {why}. Whatever follows it was analysed by "
            "content instead.",
            evidence={"problem": why},
        )
    )
    if offset < len(data):
        scan_member(ctx, data[offset:], location.child("<array data>"))


def _parse_header(text: str) -> tuple[Any, tuple[int, ...]]:
    import ast  # only for .npy headers

    try:
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise _BadHeader(f"the header is not a Python literal ({type(e).__name__})") from None
    if not isinstance(header, dict) or not {"descr", "shape"} <= set(header):
        raise _BadHeader("the header is not a dict with 'descr' and 'shape'")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise _BadHeader(f"the shape {shape!r} is not a tuple of sizes")
    return header["descr"], shape


def _has_object(descr: Any) -> bool:
    """Whether a dtype description holds Python objects anywhere (structured fields too)."""
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list):
        return any(
            isinstance(field, tuple) and len(field) >= 2 and _has_object(field[1])
            for field in descr
        )
    # Anything else is not a dtype NumPy writes; treat it as possibly holding objects.
    return True


def _itemsize(descr: Any) -> int | None:
    """Bytes per element, or None when the description is not understood."""
    if isinstance(descr, str):
        match = _TYPESTR.match(descr)
        if match is None:
            return None
        kind, digits = match.group(1), match.group(2)
        if digits:
            return int(digits) * (4 if kind == "U" else 1)
        return _FIXED_SIZES.get(kind)
    if isinstance(descr, list):
        total = 0
        for field in descr:
            if not isinstance(field, tuple) or len(field) < 2:
                return None
            size = _itemsize(field[1])
            if size is None:
                return None
            shape = field[2] if len(field) > 2 else ()
            shape = (shape,) if isinstance(shape, int) else shape
            if not isinstance(shape, tuple) or not all(isinstance(n, int) for n in shape):
                return None
            total += size * math.prod(shape)
        return total
    return None
