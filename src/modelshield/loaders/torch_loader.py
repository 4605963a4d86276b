"""PyTorch checkpoints under the policy: torch's own ``weights_only`` unpickler where it is
faithful, modelshield's restricted unpickler as torch's ``pickle_module`` everywhere else.

**weights_only.** For a zip checkpoint (not TorchScript), torch's ``weights_only`` unpickler
admits its built-in allowlist plus the globals added with ``torch.serialization.safe_globals``.
It is used when that set is provably inside the policy: every built-in entry is SAFE under the
policy's classifier (checked per policy), no global was added by the program beforehand, and
the added ones are the SAFE callables the scan saw the file import, resolved by the session
(so not a module, not a dangerous object under its real name). Anything it refuses (a global
the file spells another way, an opcode it does not implement, a class it cannot build) sends
the load to the second path, which gives the authoritative answer.

**pickle_module.** Legacy checkpoints (``_use_new_zipfile_serialization=False``, and the tar
format), zip checkpoints the first path refused, and calls with ``pickle_load_args``: torch's
loader runs with modelshield's restricted unpickler (:mod:`modelshield.loaders.unpickler`) as
its ``pickle_module``. torch subclasses its ``Unpickler`` and sets ``persistent_load``; the
restricted class checks every persistent id first (``('storage', ...)`` ids, the legacy
``('module', <nn.Module subclass>, ...)`` ids and the tar format's storage keys).

torch's own ``find_class`` answers names containing ``Storage`` itself (``StorageType``, a
dtype holder), before the restricted one is asked. TorchScript archives are refused: torch
hands them to ``torch.jit.load``, which runs TorchScript code, not pickle.
"""

from __future__ import annotations

import contextlib
import functools
import io
import pickle
import threading
import zipfile
from collections.abc import Callable, Iterable
from typing import IO, Any

from modelshield.core.errors import LoadRefused
from modelshield.core.findings import Report
from modelshield.core.policy import Policy
from modelshield.loaders.base import Source, require, run_guarded, scan_then_load
from modelshield.loaders.session import LoadSession
from modelshield.loaders.unpickler import pickle_module
from modelshield.scanner.callables import CallablePolicy, Tier

WEIGHTS_ONLY = "torch's weights_only unpickler, fed the policy's safe globals"
"""How a checkpoint was read when torch's own restricted unpickler sufficed."""
PICKLE_MODULE = "torch's loader with modelshield's restricted unpickler as pickle_module"
"""How a checkpoint was read otherwise."""

# torch's safe-globals list is process-wide: one weights_only load at a time adds and removes
# its globals, so that two loads under different policies never see each other's.
_WEIGHTS_ONLY_LOCK = threading.Lock()


def _torch() -> Any:
    return require("torch", "Loading PyTorch checkpoints", "torch")


def torch_load(
    f: Source,
    map_location: Any = None,
    *,
    policy: Policy | None = None,
    mmap: bool | None = None,
    **pickle_load_args: Any,
) -> Any:
    """Drop-in for torch's ``load``: scan the file, refuse it unless the policy passes it, then
    load it through the restricted path. ``pickle_module`` and ``weights_only`` are chosen here
    and cannot be passed. Raises :class:`~modelshield.core.errors.LoadRefused`."""

    def load(path: str, session: LoadSession, report: Report) -> Any:
        imports = report.results[0].imports
        return load_torch(
            path,
            session,
            report=report,
            imports=imports,
            map_location=map_location,
            mmap=mmap,
            **pickle_load_args,
        )[0]

    return scan_then_load(f, policy, ".pt", load)


def load_torch(
    path: str,
    session: LoadSession,
    *,
    report: Any = None,
    imports: Iterable[str] = (),
    map_location: Any = None,
    mmap: bool | None = None,
    **pickle_load_args: Any,
) -> tuple[Any, str]:
    """Load a checkpoint the caller scanned (or chose not to) under ``session``'s policy.

    Returns the object and how it was read (:data:`WEIGHTS_ONLY` or :data:`PICKLE_MODULE`).
    """
    torch = _torch()
    serialization = torch.serialization
    if _is_torchscript(serialization, path):
        raise LoadRefused(
            session.path,
            "it is a TorchScript archive: torch hands it to torch.jit.load, which runs "
            "TorchScript code; no restricted loader reads it",
            report=report,
            stage="format",
        )
    if not pickle_load_args and _weights_only_usable(torch, path):
        try:
            value = run_guarded(
                session,
                report,
                lambda: _weights_only(torch, session, path, imports, map_location, mmap),
            )
        except (LoadRefused, pickle.UnpicklingError, RuntimeError, TypeError, ValueError):
            session.refusals.clear()  # the restricted unpickler decides, below
        else:
            return value, WEIGHTS_ONLY
    module = pickle_module(session, persistent_check=functools.partial(_persistent_id, torch))

    def run() -> Any:
        # The scan ran first (or the caller is verifying the restricted path on purpose); the
        # restricted unpickler checks every global, persistent id and state write itself.
        return serialization.load(
            path,
            map_location,
            pickle_module=module,
            weights_only=False,
            mmap=mmap,
            **pickle_load_args,
        )

    return run_guarded(session, report, run), PICKLE_MODULE


def _weights_only(
    torch: Any,
    session: LoadSession,
    path: str,
    imports: Iterable[str],
    map_location: Any,
    mmap: bool | None,
) -> Any:
    serialization = torch.serialization
    with _WEIGHTS_ONLY_LOCK:
        added = _weights_only_plan(torch, session, path, imports)
        if added is None:
            raise RuntimeError("torch's weights_only unpickler is not faithful for this file")
        with serialization.safe_globals(added), session.active():
            # The scan ran first; torch's weights_only unpickler admits only globals checked
            # SAFE under this policy by _weights_only_plan.
            return serialization.load(path, map_location, weights_only=True, mmap=mmap)


def _weights_only_plan(
    torch: Any, session: LoadSession, path: str, imports: Iterable[str]
) -> list[tuple[Any, str]] | None:
    """The globals to add so that torch's weights_only unpickler can read ``path``, or None
    when it could admit something the policy does not.

    Every global of the checkpoint's pickle (as torch's own parser lists them, with the opcode
    set its unpickler implements) must be in torch's built-in allowlist (all SAFE under the
    policy, checked per policy), or be a SAFE callable the scan saw, resolved by the session
    and not already registered by the program under the same name (torch would then pick one of
    the two objects).
    """
    serialization = torch.serialization
    try:
        from torch._weights_only_unpickler import _get_allowed_globals, get_globals_in_pkl

        with open(path, "rb") as fh:  # noqa: PTH123 - torch's reader takes a file object
            if not serialization._is_zipfile(fh):
                return None
            with serialization._open_zipfile_reader(fh) as archive:
                record = archive.get_record("data.pkl")
        needed = get_globals_in_pkl(io.BytesIO(record))
        defaults = dict(_get_allowed_globals())
        existing = {
            (g[1] if isinstance(g, tuple) else f"{g.__module__}.{g.__qualname__}")
            for g in serialization.get_safe_globals()
        }
    except (ImportError, AttributeError, RuntimeError, pickle.UnpicklingError, EOFError):
        return None
    if not defaults or not _all_safe(session.callables, frozenset(defaults)):
        return None
    offered = {}
    for text in imports:
        module, _, name = text.partition(":")
        offered[f"{module}.{name}"] = (module, name)
    added = []
    for key in needed:
        if key in defaults:
            continue
        if key in existing or key not in offered:
            return None
        module, name = offered[key]
        if session.verdict(module, name).tier is not Tier.SAFE:
            return None
        try:
            obj = session.resolve(module, name, _lookup, "GLOBAL")
        except (ImportError, AttributeError):
            return None
        added.append((obj, key))
    return added


def _lookup(module: str, name: str) -> Any:
    """What pickle's ``find_class`` returns for a protocol-4 name (dotted names walked)."""
    import importlib

    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _weights_only_usable(torch: Any, path: str) -> bool:
    """Whether torch has the safe-globals API and ``path`` is a zip checkpoint."""
    serialization = torch.serialization
    if not all(hasattr(serialization, n) for n in ("safe_globals", "get_safe_globals")):
        return False
    return zipfile.is_zipfile(path)  # legacy formats go through the restricted unpickler


@functools.lru_cache(maxsize=32)
def _all_safe(callables: CallablePolicy, names: frozenset[str]) -> bool:
    for key in names:
        module, _, name = key.rpartition(".")
        if callables.classify(module, name).tier is not Tier.SAFE:
            return False
    return True


def _is_torchscript(serialization: Any, source: str | IO[bytes]) -> bool:
    """torch's own test (a ``constants.pkl`` record), with zipfile as the fallback."""
    with contextlib.ExitStack() as stack:
        fh = stack.enter_context(open(source, "rb")) if isinstance(source, str) else source  # noqa: PTH123
        start = fh.tell()
        try:
            if not serialization._is_zipfile(fh):
                return False
            with serialization._open_zipfile_reader(fh) as archive:
                return bool(serialization._is_torchscript_zip(archive))
        except AttributeError:
            pass
        except RuntimeError:
            return False  # torch cannot open it as a zip either: its loader will fail
        finally:
            fh.seek(start)
        if not zipfile.is_zipfile(fh):
            return False
        with zipfile.ZipFile(fh) as archive:
            names = archive.namelist()
        fh.seek(start)
        return any(n.lower().endswith("constants.pkl") for n in names)


def load_from_bytes(session: LoadSession) -> Callable[[bytes], Any]:
    """A restricted stand-in for ``torch.storage._load_from_bytes``.

    Plain pickle (``pickle.dumps``, ``copy``, multiprocessing, joblib) writes every tensor as a
    call of ``torch.storage._load_from_bytes`` on the bytes of a nested checkpoint, which torch
    reads with ``weights_only=False``. The scanner judges the nested checkpoint; the restricted
    loader reads it with the restricted unpickler, under the same session.
    """

    def load(data: bytes) -> Any:
        torch = _torch()
        serialization = torch.serialization
        buffer = io.BytesIO(bytes(data))
        if _is_torchscript(serialization, buffer):
            session.refuse_nested_torchscript()
        module = pickle_module(session, persistent_check=functools.partial(_persistent_id, torch))
        # The nested checkpoint is read by the restricted unpickler of the outer load.
        return serialization.load(buffer, pickle_module=module, weights_only=False)

    return load


_EXPECTED_IDS = (
    "torch checkpoints define ('storage', ...) ids, ('module', <nn.Module subclass>, ...) ids "
    "in the legacy format, and storage keys in the tar format"
)


def _persistent_id(torch: Any, pid: Any) -> str | None:
    """None for a persistent id torch's loaders define, else what was expected."""
    if isinstance(pid, int | str) and str(pid).isdigit():
        return None  # the tar format's storage keys: a lookup in torch's own table
    if not isinstance(pid, tuple) or not pid:
        return _EXPECTED_IDS
    kind = pid[0]
    if isinstance(kind, bytes):
        kind = kind.decode("ascii", "replace")
    if kind == "storage":
        return None
    if (
        kind == "module"
        and len(pid) > 1
        and isinstance(pid[1], type)
        and issubclass(pid[1], torch.nn.Module)
    ):
        return None
    return _EXPECTED_IDS


__all__ = ["PICKLE_MODULE", "WEIGHTS_ONLY", "load_from_bytes", "load_torch", "torch_load"]
