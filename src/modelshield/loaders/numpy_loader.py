"""NumPy files under the policy: ``.npy``, ``.npz`` and pickles, as numpy's ``load`` reads them.

numpy's ``load`` with ``allow_pickle=True`` hands object data to ``pickle.load`` (through
``numpy.lib.format.read_array``, whose ``pickle_kwargs`` accept no unpickler), so the
restricted loader reads what numpy reads with numpy's own functions and unpickles with the
restricted unpickler:

* the first bytes choose, as in numpy: a zip (``.npz``), the ``.npy`` magic, else a pickle;
* ``.npy``: numpy's ``read_magic`` and header parser; an array without objects is then read by
  ``read_array`` itself (``allow_pickle=False``); object data by the restricted unpickler, with
  numpy's ``encoding`` and ``fix_imports``; ``mmap_mode`` goes to ``open_memmap`` as in numpy
  (which never memory-maps objects);
* ``.npz``: numpy's lazy ``NpzFile``, restricted (:func:`restricted_npz_class`): its members
  are read as above when they are accessed;
* anything else: one pickle, restricted.

The header length limit stays numpy's default even with ``allow_pickle=True`` (numpy lifts it
for trusted files; a restricted load does not trust the file).
"""

from __future__ import annotations

import functools
import importlib
from typing import IO, Any

from modelshield.core.findings import Report
from modelshield.core.policy import Policy
from modelshield.loaders.base import Source, require, run_guarded, scan_then_load
from modelshield.loaders.session import LoadSession
from modelshield.loaders.unpickler import unpickle

METHOD = "numpy's npy/npz readers, object data through modelshield's restricted unpickler"
"""How a NumPy file was read."""

_ZIP_PREFIXES = (b"PK\x03\x04", b"PK\x05\x06")
_MAX_HEADER_SIZE = 10_000  # numpy.lib.format's own default


def _numpy() -> Any:
    return require("numpy", "Loading NumPy files", "numpy")


def numpy_load(
    file: Source,
    mmap_mode: str | None = None,
    allow_pickle: bool = False,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    *,
    max_header_size: int = _MAX_HEADER_SIZE,
    policy: Policy | None = None,
) -> Any:
    """Drop-in for numpy's ``load``: scan the file, refuse it unless the policy passes it, then
    read it as numpy does, with object data (``allow_pickle=True``) unpickled under the policy.

    An ``.npz`` comes back as numpy's lazy ``NpzFile`` (restricted, see
    :func:`restricted_npz_class`) when ``file`` is a path, and as a ``dict`` of its members
    otherwise (the temporary copy is gone when this returns). Raises
    :class:`~modelshield.core.errors.LoadRefused`."""

    def load(path: str, session: LoadSession, report: Report) -> Any:
        return load_numpy(
            path,
            session,
            report=report,
            mmap_mode=mmap_mode,
            allow_pickle=allow_pickle,
            fix_imports=fix_imports,
            encoding=encoding,
            max_header_size=max_header_size,
            eager=not isinstance(file, str) and not hasattr(file, "__fspath__"),
        )[0]

    return scan_then_load(file, policy, ".npy", load)


def load_numpy(
    path: str,
    session: LoadSession,
    *,
    report: Any = None,
    mmap_mode: str | None = None,
    allow_pickle: bool = True,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    max_header_size: int = _MAX_HEADER_SIZE,
    eager: bool = False,
) -> tuple[Any, str]:
    """Read a NumPy file the caller scanned (or chose not to) under ``session``'s policy.

    ``eager`` reads every member of an ``.npz`` now into a ``dict`` (what
    :func:`modelshield.load` returns, so that nothing is unpickled after it returns)."""
    np = _numpy()
    if encoding not in ("ASCII", "latin1", "bytes"):
        raise ValueError("encoding must be 'ASCII', 'latin1', or 'bytes'")
    kwargs: dict[str, Any] = {"encoding": encoding, "fix_imports": fix_imports}
    fmt = np.lib.format

    def run() -> Any:
        fid = open(path, "rb")  # noqa: PTH123, SIM115 - an npz keeps it open, as numpy does
        handed_over = False
        try:
            magic = fid.read(len(fmt.MAGIC_PREFIX))
            fid.seek(0)
            if magic.startswith(_ZIP_PREFIXES):
                npz = restricted_npz_class()(
                    fid, session, allow_pickle, kwargs, max_header_size=max_header_size
                )
                handed_over = True
                if not eager:
                    return npz
                with npz:
                    return {name: npz[name] for name in npz.files}
            if magic == fmt.MAGIC_PREFIX:
                if mmap_mode:
                    return fmt.open_memmap(path, mode=mmap_mode, max_header_size=max_header_size)
                return read_npy(np, fid, session, allow_pickle, kwargs, max_header_size)
            if not allow_pickle:
                raise ValueError(
                    "This file contains pickled (object) data. Load it with allow_pickle=True "
                    "to unpickle it under the policy."
                )
            # The scan ran first; the restricted unpickler checks what it unpickles.
            return unpickle(session, fid, **kwargs)
        finally:
            if not handed_over:
                fid.close()

    return run_guarded(session, report, run), METHOD


def read_npy(
    np: Any,
    fp: IO[bytes],
    session: LoadSession,
    allow_pickle: bool,
    pickle_kwargs: dict[str, Any],
    max_header_size: int,
) -> Any:
    """One ``.npy`` stream, read as numpy's ``read_array`` reads it."""
    fmt = np.lib.format
    start = fp.tell()
    version = fmt.read_magic(fp)
    _, _, dtype = _header_reader(np)(fp, version, max_header_size=max_header_size)
    if not dtype.hasobject:
        fp.seek(start)
        return fmt.read_array(fp, allow_pickle=False, max_header_size=max_header_size)
    if not allow_pickle:
        raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
    # The scan ran first; the object data is unpickled by the restricted unpickler.
    return unpickle(session, fp, **pickle_kwargs)


def _header_reader(np: Any) -> Any:
    """numpy's own header parser for every format version (private, by version of numpy)."""
    for owner in ("numpy.lib._format_impl", "numpy.lib.format"):
        try:
            module = importlib.import_module(owner)  # two constant names, never from data
        except ImportError:
            continue
        reader = getattr(module, "_read_array_header", None)
        if reader is not None:
            return reader
    raise RuntimeError(f"numpy {np.__version__} has no header parser modelshield knows")


@functools.cache
def restricted_npz_class() -> type:
    """``RestrictedNpzFile``: numpy's lazy ``NpzFile`` whose members are read by
    :func:`read_npy` under a session (built on first use: numpy is imported lazily)."""
    np = _numpy()
    base: Any = np.lib.npyio.NpzFile

    class RestrictedNpzFile(base):  # type: ignore[misc]
        """An ``.npz`` opened by numpy, each member read under the session's policy."""

        def __init__(
            self,
            fid: IO[bytes],
            session: LoadSession,
            allow_pickle: bool,
            pickle_kwargs: dict[str, Any],
            *,
            max_header_size: int,
        ) -> None:
            super().__init__(
                fid,
                own_fid=True,
                allow_pickle=False,
                pickle_kwargs=pickle_kwargs,
                max_header_size=max_header_size,
            )
            self._session = session
            self._restricted_pickle = allow_pickle

        def __getitem__(self, key: str) -> Any:
            try:
                member = self._files[key]
            except KeyError:
                raise KeyError(f"{key} is not a file in the archive") from None
            with self.zip.open(member) as fh:
                magic = fh.read(len(np.lib.format.MAGIC_PREFIX))
                fh.seek(0)
                if magic != np.lib.format.MAGIC_PREFIX:
                    return fh.read()
                session = self._session
                return run_guarded(
                    session,
                    None,
                    lambda: read_npy(
                        np,
                        fh,
                        session,
                        self._restricted_pickle,
                        self.pickle_kwargs,
                        self.max_header_size,
                    ),
                )

    return RestrictedNpzFile


__all__ = ["METHOD", "load_numpy", "numpy_load", "read_npy", "restricted_npz_class"]
