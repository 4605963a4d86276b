"""NumPy dtype descriptions read without NumPy, compared with NumPy itself.

Where NumPy accepts a description, ``hasobject`` (whether ``numpy.load`` and ``joblib.load``
unpickle the data) must be exactly NumPy's. Where NumPy refuses one, nothing is loaded; the
module may then say either thing.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.format import descr_to_dtype

from modelshield.scanner import numpy_dtype

ATOMS = [
    "O", "|O", "<O", "O8", "O4", "O16", "O0", "O08", "O+8", "O 8", "O-8", "object", "object_",
    "|object", "Object", "T", "|T", "T8", "f8", "<f8", "i4", "V8", "V", "|V0", "U3", "S2", "S",
    "a", "a2", "b1", "M8[ns]", "?", "d", "float64", "void", "str", "c", "x", "",
]  # fmt: skip
ORDERS = ["", "<", ">", "|", "="]
REPEATS = ["", "(2,)", "2", "(2,3)", "()", "(0,)", "( 2 )", "2,", "(2)", "0"]
SEPARATORS = [",", ", ", " ,"]
SHAPES: list[Any] = [(2,), 2, (), (0,), (2, 3), 0, -1, "x"]
NAMES: list[Any] = ["a", "b", "", "", ("t", "c"), "f0", "f1", 3]


def _numpy(make: Any, descr: Any) -> bool | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(make(descr).hasobject)
        except Exception:
            return None


def _ours(dtype: numpy_dtype.Dtype | None) -> bool | None:
    return None if dtype is None else dtype.hasobject


item = st.builds(
    lambda o1, r, o2, a: o1 + r + o2 + a,
    st.sampled_from(ORDERS),
    st.sampled_from(REPEATS),
    st.sampled_from(ORDERS),
    st.sampled_from(ATOMS),
)
dtype_strings = st.builds(
    lambda items, sep, trailing: sep.join(items) + ("," if trailing else ""),
    st.lists(item, min_size=1, max_size=3),
    st.sampled_from(SEPARATORS),
    st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(dtype_strings)
def test_dtype_strings_hold_objects_exactly_when_numpy_says_so(text: str) -> None:
    expected = _numpy(np.dtype, text)
    if expected is not None:
        assert _ours(numpy_dtype.from_string(text)) == expected, text


descrs = st.recursive(
    st.sampled_from(ATOMS) | dtype_strings,
    lambda inner: (
        st.tuples(inner, st.sampled_from(SHAPES))
        | st.lists(
            st.tuples(st.sampled_from(NAMES), inner)
            | st.tuples(st.sampled_from(NAMES), inner, st.sampled_from(SHAPES)),
            max_size=3,
        )
    ),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(descrs)
def test_npy_header_descriptions_match_descr_to_dtype(descr: Any) -> None:
    expected = _numpy(descr_to_dtype, descr)
    if expected is not None:
        assert _ours(numpy_dtype.from_descr(descr)) == expected, descr


@settings(max_examples=400, deadline=None)
@given(descrs)
def test_dtype_constructor_arguments_match_numpy_dtype(descr: Any) -> None:
    expected = _numpy(np.dtype, descr)
    if expected is not None:
        assert _ours(numpy_dtype.from_object(descr)) == expected, descr


def test_unnamed_padding_fields_are_dropped_like_numpy_drops_them() -> None:
    # numpy.save pads structured dtypes with unnamed void fields; descr_to_dtype drops them,
    # subarrays included, so an unnamed object subarray is not read as objects.
    for descr in ([("", "O", (2,))], [("", "(2,)O")], [("a", "<i4"), ("", "|V4")]):
        assert descr_to_dtype(descr).hasobject is False
        assert _ours(numpy_dtype.from_descr(descr)) is False
    assert _ours(numpy_dtype.from_descr([("", "O")])) is True


def test_type_names_are_numpys() -> None:
    # Only numpy's own: packages such as ml_dtypes (keras) add theirs to sctypeDict on import.
    names = {
        k
        for k, v in np.sctypeDict.items()
        if isinstance(k, str) and getattr(v, "__module__", "numpy") == "numpy"
    }
    assert names == numpy_dtype.NUMPY_TYPE_NAMES
    assert {n for n in names if np.sctypeDict[n] is np.object_} == numpy_dtype.OBJECT_TYPE_NAMES
