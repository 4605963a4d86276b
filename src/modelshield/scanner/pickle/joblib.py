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
from typing import Any

from modelshield.scanner import numpy_dtype
from modelshield.scanner.memio import Buffer
from modelshield.scanner.pickle.sniff import looks_like_pickle
from modelshield.scanner.pickle.state import StreamError
from modelshield.scanner.pickle.values import Call, Global, brief, unwrap

#: Python types ``numpy.dtype(type)`` turns into an object dtype.
_OBJECT_TYPES = frozenset({("builtins", "object"), ("__builtin__", "object"), ("numpy", "object_")})
#: Positions of ``elsize`` in the state tuple, by its length (``arraydescr_setstate``).
_ELSIZE_AT = {5: 3, 6: 4, 7: 5, 8: 5, 9: 5}
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
#: How deep dtypes inside dtypes (fields of fields) are followed.
_MAX_DEPTH = 8


def dtype_layout(dtype: Any, depth: int = 0) -> tuple[int | None, bool | None]:
    """``(itemsize, hasobject)`` of a pickled ``numpy.dtype(obj, align, copy)`` call, as the
    unpickled dtype has them after its ``__setstate__`` (``BUILD``).

    ``hasobject`` is None when NumPy would refuse the dtype or its state, or when it cannot be
    decided (a description computed at load time). With a state, NumPy takes ``hasobject`` from
    the state's flags (version 3 and 4: the low bit; earlier versions: any flag, an object type
    or an object field), whatever the description says: an ``'O8'`` dtype whose state clears
    the flag is read as raw bytes, a ``'V16'`` one that sets it as a nested pickle.
    """
    d = unwrap(dtype)
    if depth > _MAX_DEPTH or type(d) is not Call or type(d.args) is not tuple or not d.args:
        return None, None
    func = unwrap(d.func)
    if type(func) is not Global or func.name != "dtype" or func.module.split(".")[0] != "numpy":
        return None, None
    obj = unwrap(d.args[0])
    base = _base(obj, depth)
    itemsize = numpy_dtype.itemsize(obj) if type(obj) is str else None
    state = unwrap(d.state)
    if state is None:
        return itemsize, None if base is None else base.hasobject
    if type(state) is not tuple or len(state) not in _ELSIZE_AT:
        return itemsize, None
    version = 0 if len(state) == 5 else state[0]
    flags = state[7] if len(state) >= 8 else 0
    if type(version) not in (int, bool) or not 0 <= version <= 4:
        return itemsize, None
    if type(flags) not in (int, bool) or not _INT_MIN <= flags <= _INT_MAX:
        return itemsize, None
    elsize = state[_ELSIZE_AT[len(state)]]
    if type(obj) is str and numpy_dtype.is_flexible(obj) and type(elsize) is int:
        itemsize = elsize  # numpy takes elsize from the state for flexible types only
    if version >= 3:
        return itemsize, bool(flags & 1)
    # _descr_find_object: any flag, the object type itself, or a field of the state that holds
    # objects; the state replaces the description's fields and subarray (numpy first reads a
    # negative flags byte from old pickles as unsigned).
    fields = state[3] if len(state) == 6 else state[4] if len(state) >= 7 else state[2]
    found = bool(flags + 128 if -128 <= flags < 0 else flags)
    found = found or (base is not None and base.object_type)
    if not found and type(fields) is dict:
        found = any(_field_has_object(value, depth) for value in fields.values())
    return itemsize, found


def _base(obj: Any, depth: int) -> numpy_dtype.Dtype | None:
    """``numpy.dtype(obj)`` for what a pickle can pass: a description or a Python type."""
    if type(obj) is Call:
        _, hasobject = dtype_layout(obj, depth + 1)
        return None if hasobject is None else numpy_dtype.Dtype(hasobject=hasobject)
    if type(obj) is Global:
        if (obj.module, obj.name) in _OBJECT_TYPES:
            return numpy_dtype.Dtype(hasobject=True, object_type=True)
        return None
    return numpy_dtype.from_object(obj)


def _field_has_object(value: Any, depth: int) -> bool:
    """A ``fields`` entry ``(dtype, offset[, title])`` whose dtype holds objects."""
    value = unwrap(value)
    if type(value) is not tuple or not value:
        return False
    _, hasobject = dtype_layout(value[0], depth + 1)
    return bool(hasobject)


def array_end(wrapper: Call, data: Buffer, pos: int, offset: int) -> tuple[int, bool]:
    """Where joblib's read of the wrapped array ends: ``(end, is_nested_pickle)``.

    For an object array the nested pickle starts at ``pos`` (the caller interprets it). Raises
    :class:`StreamError` when the state is unusable or the data runs past the buffer.
    """
    state = wrapper.state
    if type(state) is not dict:
        raise StreamError(offset, f"joblib NumpyArrayWrapper state is {brief(state, 60)}")
    itemsize, hasobject = dtype_layout(state.get("dtype"))
    if hasobject is None and looks_like_pickle(data, pos):
        hasobject = True  # undecided, and a pickle follows: analyse it rather than skip it
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
