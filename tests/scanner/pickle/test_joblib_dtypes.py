"""joblib's in-stream arrays: the scan reads a nested pickle exactly where ``joblib.load`` does.

After a ``NumpyArrayWrapper``, ``joblib.load`` reads a nested pickle when the wrapper's dtype
has ``hasobject`` and raw bytes otherwise. The dtype is itself a pickled ``numpy.dtype(descr,
align, copy)`` call with a ``__setstate__`` state, and NumPy takes ``hasobject`` from that
state's flags. These tests compare the scan's reading with NumPy's on generated dtypes, and
with ``joblib.load`` on real files (harmless content only).
"""

from __future__ import annotations

import io
import pickle
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelshield.core.findings import Location
from modelshield.scanner.pickle.joblib import dtype_layout
from modelshield.scanner.pickle.sniff import walk
from modelshield.scanner.pickle.state import Session
from modelshield.scanner.pickle.vm import Interpreter
from tests.scanner.pickle.helpers import analyze, make_ctx

np = pytest.importorskip("numpy")
joblib = pytest.importorskip("joblib")

OS_SYSTEM = b"cos\nsystem\n(S'id'\ntR."  # built byte by byte, never loaded


class Marker:
    """An unlisted class of this module: its import proves that a nested pickle was read."""


MARKER = f"{__name__}.Marker"


class _Dtype:
    """Pickles as ``numpy.dtype(descr, False, True)`` with an optional ``BUILD`` state."""

    def __init__(self, descr: Any, state: Any) -> None:
        self.descr = descr
        self.state = state

    def __reduce__(self) -> tuple[Any, ...]:
        call = (np.dtype, (self.descr, False, True))
        return call if self.state is None else (*call, self.state)


def _numpy_hasobject(data: bytes) -> bool | None:
    try:
        return bool(pickle.loads(data).hasobject)  # builds a numpy dtype, nothing else
    except Exception:
        return None


def _scanned_layout(data: bytes) -> tuple[int | None, bool | None]:
    session = Session(make_ctx(), data, Location("dtype.pkl"))
    outcome = Interpreter(session).run(0)
    return dtype_layout(outcome.result)


DESCRS = ["O8", "O4", "O", "|O", "object", "(2,)O", "2O", "V16", "V8", "f8", "<i4", "U3", "T"]
FIELDS: list[Any] = [None, {"a": (np.dtype("O"), 0)}, {"a": (np.dtype("f8"), 0)}]
FLAGS: list[Any] = [0, 1, 2, 27, 62, 63, -1, -2, -128, -127, 256, True, 1.0]


@st.composite
def states(draw: st.DrawFn) -> Any:
    if draw(st.booleans()):
        return None
    fields = draw(st.sampled_from(FIELDS))
    names = None if fields is None else tuple(fields)
    subarray = draw(st.sampled_from([None, (np.dtype("O"), (2,)), (np.dtype("f8"), (2,))]))
    elsize, alignment = draw(st.sampled_from([(-1, -1), (8, 1), (16, 8)]))
    flags = draw(st.sampled_from(FLAGS))
    version = draw(st.sampled_from([0, 1, 2, 3, 4, 5]))
    size = draw(st.sampled_from([5, 6, 7, 8, 9, 10]))
    full = (version, "|", subarray, names, fields, elsize, alignment, flags, None, None)
    if size == 5:
        return ("|", subarray, fields, elsize, alignment)
    if size == 6:
        # NumPy itself crashes (SIGSEGV) on a six-item state with fields: not generated.
        return (version, "|", subarray, None, elsize, alignment)
    return full[:size]


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(DESCRS), states())
def test_dtype_hasobject_matches_numpy(descr: str, state: Any) -> None:
    data = pickle.dumps(_Dtype(descr, state), protocol=2)
    expected = _numpy_hasobject(data)
    if expected is not None:
        assert _scanned_layout(data)[1] == expected, (descr, state)


# ---- real joblib files --------------------------------------------------------------------


def _dump(value: Any, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    joblib.dump(value, buf, **kwargs)
    return buf.getvalue()


def _markers(dtype: Any, shape: tuple[int, ...] = (2,)) -> Any:
    array = np.empty(shape, dtype=dtype)
    for index in np.ndindex(shape):
        if array.dtype.names:
            array[index] = (1, *(Marker() for _ in array.dtype.names[1:]))
        else:
            array[index] = Marker()
    return array


REAL = {
    "object": lambda: _markers(object),
    "field": lambda: _markers([("a", "<i4"), ("b", "O")]),
    "subarray-field": lambda: np.array(
        [(1, (Marker(), Marker()))], dtype=[("a", "<i4"), ("b", "O", (2,))]
    ),
    "subarray": lambda: np.array([[Marker(), Marker()]], dtype=("O", (2,))),
}


@pytest.mark.parametrize("kind", REAL)
@pytest.mark.parametrize("protocol", [2, 5])
def test_joblib_object_arrays_of_every_dtype_are_read_as_nested_pickles(
    kind: str, protocol: int
) -> None:
    data = _dump({"x": REAL[kind](), "y": np.arange(5)}, protocol=protocol)
    assert joblib.load(io.BytesIO(data))["x"].dtype.hasobject
    run = analyze(data, real_policy=True)
    assert MARKER in run.callables("PICKLE-IMPORT-UNKNOWN")
    assert run.end == len(data)


def _wrapper_dtype(data: bytes) -> tuple[int, int]:
    """Where ``X\\x02\\x00\\x00\\x00O8...b`` (the pickled dtype with its state) is, protocol 2."""
    start = data.index(b"X\x02\x00\x00\x00O8")
    end = data.index(b"tq", start) + 3  # ...K?t q<memo> then BUILD
    assert data[end : end + 1] == b"b"
    return start, end + 1


def _respelled(data: bytes, descr: bytes) -> bytes:
    """The file with the wrapper's dtype spelled ``descr`` and no state: NumPy decides from
    the spelling alone."""
    start, end = _wrapper_dtype(data)
    call = data[start:end]
    reduce_end = call.index(b"R") + 1
    spelled = b"X" + struct.pack("<I", len(descr)) + descr + call[7:reduce_end]
    return data[:start] + spelled + data[end:]


@pytest.mark.parametrize("descr", [b"object", b"O", b"|O", b"O4", b"(2,)O", b"2O"])
def test_dtype_spellings_joblib_reads_as_objects(descr: bytes) -> None:
    data = _respelled(_dump(_markers(object, (2, 2) if b"2" in descr else (2,)), protocol=2), descr)
    if b"2" in descr:
        data = data.replace(b"K\x02K\x02\x86", b"K\x02\x85", 1)  # shape (2,) of (2,)-subarrays
    assert joblib.load(io.BytesIO(data)).dtype.hasobject
    run = analyze(data, real_policy=True)
    assert MARKER in run.callables("PICKLE-IMPORT-UNKNOWN")


def _nested_span(data: bytes) -> tuple[int, int]:
    start = data.index(b"ub\x80") + 2
    return start, walk(data, start, max_ops=1 << 20).end


def test_hostile_nested_pickle_behind_a_respelled_dtype_is_found() -> None:
    data = _respelled(_dump(np.array([1, "a"], dtype=object), protocol=2), b"object")
    start, end = _nested_span(data)
    hostile = data[:start] + OS_SYSTEM + data[end:]
    run = analyze(hostile)
    assert "os.system" in run.callables("PICKLE-CALL-DANGEROUS")


def test_object_dtype_whose_state_clears_the_flag_is_read_as_raw_bytes() -> None:
    # numpy.dtype('O8') with flags 62: hasobject is False, so joblib reads 2 * 8 raw bytes
    # (one padding-length byte first) and goes on with the outer pickle, where the payload is.
    # Not loaded: joblib would build object pointers from those bytes.
    data = _dump(np.array([1, "a"], dtype=object), protocol=2)
    start, end = _wrapper_dtype(data)
    data = data[:start] + data[start:end].replace(b"K?t", b"K>t") + data[end:]
    nested_start, nested_end = _nested_span(data)
    decoy = b"\x80\x02N."  # a harmless pickle where the old reading looked for the nested one
    raw = b"\x00" + decoy + bytes(16 - len(decoy))
    hostile = data[:nested_start] + raw + b"0" + OS_SYSTEM
    assert (
        _numpy_hasobject(pickle.dumps(_Dtype("O8", (3, "|", None, None, None, -1, -1, 62)), 2))
        is False
    )
    run = analyze(hostile)
    assert "os.system" in run.callables("PICKLE-CALL-DANGEROUS")
    assert nested_end > nested_start
