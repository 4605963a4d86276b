"""joblib files under the policy: joblib's own ``NumpyUnpickler`` with the restricted checks.

joblib's loader already runs on the pure-Python pickle machine (``NumpyUnpickler`` subclasses
``pickle._Unpickler`` and replaces ``BUILD`` to read the array data that follows each
``NumpyArrayWrapper``). The restricted class here subclasses it, so that every compressor joblib
detects (zlib, gzip, bz2, lzma, xz, lz4) is opened by joblib's own code, memory maps work as in
joblib, and the pickle machine is checked as in :mod:`modelshield.loaders.unpickler`.

Object arrays inside a joblib file are a nested pickle stream that joblib reads with a fresh
``pickle._Unpickler`` sharing the outer ``find_class``. That inner unpickler would resolve
extension codes and persistent ids on its own, so the wrapper class joblib pickles is replaced,
when the policy admits it, by a subclass whose nested stream is read by the restricted
unpickler of the same session.

Files written by joblib < 0.10 (a pickle beside companion ``.npy`` files) are refused: their
reader loads the companions with numpy's unrestricted pickle path.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from modelshield.core.errors import LoadRefused
from modelshield.core.findings import Report
from modelshield.core.policy import Policy
from modelshield.loaders.base import Source, require, run_guarded, scan_then_load
from modelshield.loaders.session import LoadSession
from modelshield.loaders.unpickler import RestrictedMixin, bind

METHOD = "joblib's NumpyUnpickler with modelshield's restricted checks"
"""How a joblib file was read."""

_WRITABLE_MMAP = ("r+", "w+")


def _joblib() -> Any:
    return require("joblib.numpy_pickle", "Loading joblib files", "joblib")


def joblib_load(
    filename: Source,
    mmap_mode: str | None = None,
    *,
    policy: Policy | None = None,
    ensure_native_byte_order: bool | str = "auto",
) -> Any:
    """Drop-in for joblib's ``load``: scan the file, refuse it unless the policy passes it,
    then load it with joblib's unpickler under the policy. Raises
    :class:`~modelshield.core.errors.LoadRefused`."""

    def load(path: str, session: LoadSession, report: Report) -> Any:
        return load_joblib(
            path,
            session,
            report=report,
            mmap_mode=mmap_mode,
            ensure_native_byte_order=ensure_native_byte_order,
        )[0]

    return scan_then_load(filename, policy, ".joblib", load, writable=mmap_mode in _WRITABLE_MMAP)


def joblib_session(label: str, policy: Policy, path: str, mmap_mode: str | None) -> LoadSession:
    """A session that lets numpy open ``path`` for writing when the memory map asks for it."""
    writable = (path,) if mmap_mode in _WRITABLE_MMAP else ()
    return LoadSession(label, policy, writable=writable)


def load_joblib(
    path: str,
    session: LoadSession,
    *,
    report: Any = None,
    mmap_mode: str | None = None,
    ensure_native_byte_order: bool | str = "auto",
) -> tuple[Any, str]:
    """Load a joblib file the caller scanned (or chose not to) under ``session``'s policy."""
    numpy_pickle = _joblib()
    if ensure_native_byte_order == "auto":
        ensure_native_byte_order = mmap_mode is None
    if ensure_native_byte_order and mmap_mode is not None:
        raise ValueError("Native byte ordering can only be enforced if 'mmap_mode' is None")
    unpickler: Any = bind(session, _unpickler_class(numpy_pickle))
    path = os.fspath(path)

    def run() -> Any:
        with (
            open(path, "rb") as fh,  # noqa: PTH123 - joblib's helper takes a file object
            numpy_pickle._validate_fileobject_and_memmap(fh, path, mmap_mode) as (fobj, mode),
        ):
            if isinstance(fobj, str):
                raise LoadRefused(
                    session.path,
                    "it was written by joblib < 0.10, whose reader loads companion files "
                    "with numpy's unrestricted pickle path",
                    report=report,
                    stage="format",
                )
            # The scan ran first; this NumpyUnpickler subclass checks everything it unpickles.
            reader: Any = unpickler(path, fobj, bool(ensure_native_byte_order), mmap_mode=mode)
            return reader.load()

    return run_guarded(session, report, run), METHOD


@functools.cache
def _unpickler_class(numpy_pickle: Any) -> type[RestrictedMixin]:
    """The restricted ``NumpyUnpickler`` and its restricted array wrapper."""
    base_wrapper = numpy_pickle.NumpyArrayWrapper
    ensure_native = numpy_pickle._ensure_native_byte_order

    class RestrictedArrayWrapper(base_wrapper):  # type: ignore[misc, valid-type]
        """joblib's wrapper, reading a nested object-array stream with the restricted
        unpickler of the same session."""

        def read_array(self, unpickler: Any, ensure_native_byte_order: bool) -> Any:
            if not self.dtype.hasobject:
                return super().read_array(unpickler, ensure_native_byte_order)
            inner: Any = bind(unpickler.session)
            array = inner(unpickler.file_handle).load()
            return ensure_native(array) if ensure_native_byte_order else array

    class RestrictedNumpyUnpickler(RestrictedMixin, numpy_pickle.NumpyUnpickler):  # type: ignore[misc]
        """joblib's ``NumpyUnpickler`` under a session's policy."""

        def find_class(self, module: str, name: str) -> Any:
            obj = super().find_class(module, name)
            return RestrictedArrayWrapper if obj is base_wrapper else obj

    return RestrictedNumpyUnpickler


__all__ = ["METHOD", "joblib_load", "joblib_session", "load_joblib"]
