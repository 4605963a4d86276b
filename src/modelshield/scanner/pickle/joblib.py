"""joblib's in-stream arrays: what ``joblib.load`` reads right after a ``NumpyArrayWrapper``.

``joblib.dump`` (uncompressed or inside its compressors) pickles each numpy array as a
``joblib.numpy_pickle.NumpyArrayWrapper`` and writes the array's bytes into the same stream
right after the wrapper's ``BUILD``. ``NumpyUnpickler.load_build`` then reads them straight from
the file (``NumpyArrayWrapper.read_array``):

* an object array is a nested pickle (its own stack and memo) that follows immediately;
* any other array is, when the wrapper's state has ``numpy_array_alignment_bytes`` (joblib
  1.2+), one byte giving a padding length and that many padding bytes (joblib writes ``0xff``),
  then ``prod(shape) * dtype.itemsize`` raw bytes.

This module computes where that data ends, so the interpreter can continue after it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from modelshield.scanner.memio import Buffer
from modelshield.scanner.pickle.state import StreamError
from modelshield.scanner.pickle.values import Call, brief, unwrap

_DESCR = re.compile(r"[<>|=]?([a-zA-Z])(\d*)")
#: numpy's NPY_ITEM_REFCOUNT flag in a dtype's pickled state: the dtype holds Python objects.
_HASOBJECT = 0x01


def dtype_layout(dtype: Any) -> tuple[int | None, bool]:
    """``(itemsize, hasobject)`` of a pickled ``numpy.dtype(descr, align, copy)`` call."""
    d = unwrap(dtype)
    if type(d) is not Call or type(d.args) is not tuple or not d.args:
        return None, False
    descr = unwrap(d.args[0])
    itemsize: int | None = None
    hasobject = False
    if type(descr) is str:
        m = _DESCR.fullmatch(descr)
        if m is not None:
            kind, digits = m.group(1), m.group(2)
            hasobject = kind == "O"
            if digits:
                itemsize = int(digits) * (4 if kind == "U" else 1)
            elif kind in "Mm":
                itemsize = 8
    state = d.state
    # (version, endian, subarray, names, fields, elsize, alignment, flags[, metadata])
    if type(state) is tuple and len(state) >= 8:
        elsize, flags = state[5], state[7]
        if type(elsize) is int and elsize > 0:
            itemsize = elsize
        if type(flags) is int:
            hasobject = hasobject or bool(flags & _HASOBJECT)
    return itemsize, hasobject


def array_end(wrapper: Call, data: Buffer, pos: int, offset: int) -> tuple[int, bool]:
    """Where joblib's read of the wrapped array ends: ``(end, is_nested_pickle)``.

    For an object array the nested pickle starts at ``pos`` (the caller interprets it). Raises
    :class:`StreamError` when the state is unusable or the data runs past the buffer.
    """
    state = wrapper.state
    if type(state) is not dict:
        raise StreamError(offset, f"joblib NumpyArrayWrapper state is {brief(state, 60)}")
    itemsize, hasobject = dtype_layout(state.get("dtype"))
    if hasobject:
        return pos, True
    shape = state.get("shape")
    if type(shape) is not tuple or any(type(x) is not int or x < 0 for x in shape):
        raise StreamError(offset, f"joblib array shape {brief(shape, 60)} is not a tuple of sizes")
    if itemsize is None:
        raise StreamError(
            offset, f"joblib array dtype {brief(state.get('dtype'), 60)} has no known item size"
        )
    size = len(data)
    align = state.get("numpy_array_alignment_bytes")
    if align is not None:
        if pos >= size:
            raise StreamError(pos, "joblib array padding byte is missing (stream truncated)")
        padding = data[pos]
        pos += 1
        if type(align) is not int or padding > align or pos + padding > size:
            raise StreamError(
                pos - 1, f"joblib array padding of {padding} bytes (alignment {brief(align)})"
            )
        if bytes(data[pos : pos + padding]) != b"\xff" * padding:
            raise StreamError(pos, "joblib array padding is not the 0xff bytes joblib writes")
        pos += padding
    nbytes = math.prod(shape) * itemsize
    if nbytes > size - pos:
        raise StreamError(
            pos,
            f"joblib array of shape {brief(shape, 60)} and item size {itemsize} needs "
            f"{nbytes} bytes but only {size - pos} remain",
        )
    return pos + nbytes, False
