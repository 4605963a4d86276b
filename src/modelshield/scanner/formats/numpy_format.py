"""NumPy ``.npy`` arrays (``.npz`` files are zips of them and arrive through the zip handler).

The header is a Python dict literal; it is parsed with :func:`ast.literal_eval` (never
``eval``), bounded like NumPy bounds it, with NumPy's fallback for headers Python 2 wrote
(``3L``). An array whose dtype holds Python objects stores its data as a pickle, which
``numpy.load(allow_pickle=True)`` unpickles: that data is analysed as a pickle. Whether it does
is decided as NumPy decides it (:mod:`modelshield.scanner.numpy_dtype`): ``'|O'``, but also
``'object'``, ``'O8'``, ``'T'``, a structured dtype with an object field, a subarray of objects
(``('O', (2,))``, ``'(2,)O'``), while unnamed padding fields are dropped first. Numeric data is
never read: its declared size is checked against the file.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from modelshield.core.findings import Location
from modelshield.scanner import numpy_dtype
from modelshield.scanner.context import ScanContext
from modelshield.scanner.detect import sniff_strong
from modelshield.scanner.formats.hygiene import scan_member
from modelshield.scanner.registry import Format
from modelshield.scanner.rules import NUMPY_HEADER_INVALID, NUMPY_MAX_HEADER_BYTES, NUMPY_TRUNCATED


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
        descr, shape = _parse_header(raw.decode("utf-8" if major == 3 else "latin-1"), major)
    except (_BadHeader, UnicodeDecodeError) as e:
        _invalid(ctx, data, location, offset, str(e))
        return
    dtype = numpy_dtype.from_descr(descr)
    if dtype is None:
        _invalid(ctx, data, location, offset, f"NumPy refuses the dtype description {descr!r:.80}")
        return
    if dtype.hasobject:
        ctx.saw_format("numpy-object")
        scan_member(ctx, data[offset:], location.child("<object array>"), Format.PICKLE)
        return
    if any(n < 0 for n in shape):
        _invalid(ctx, data, location, offset, f"the shape {shape!r} is not a tuple of sizes")
        return
    itemsize = numpy_dtype.itemsize(descr)
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


def _parse_header(text: str, major: int) -> tuple[Any, tuple[int, ...]]:
    import ast  # only for .npy headers

    try:
        try:
            header = ast.literal_eval(text)
        except SyntaxError:
            if major > 2:
                raise
            header = ast.literal_eval(_filter_header(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise _BadHeader(f"the header is not a Python literal ({type(e).__name__})") from None
    if not isinstance(header, dict) or not {"descr", "shape"} <= set(header):
        raise _BadHeader("the header is not a dict with 'descr' and 'shape'")
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(n, int) for n in shape):
        raise _BadHeader(f"the shape {shape!r} is not a tuple of sizes")
    return header["descr"], shape


def _filter_header(text: str) -> str:
    """NumPy's ``_filter_header`` for version 1 and 2 headers written by Python 2: drop the
    ``L`` suffix of long integers (``(3L,)``)."""
    import io
    import tokenize

    tokens = []
    last_was_number = False
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if not (last_was_number and token.type == tokenize.NAME and token.string == "L"):
                tokens.append(token)
            last_was_number = token.type == tokenize.NUMBER
    except (tokenize.TokenError, SyntaxError):
        return text
    return tokenize.untokenize(tokens)
