"""The restricted unpickler: CPython's own pickle machine with every entry point checked.

:class:`RestrictedUnpickler` subclasses the pure-Python ``pickle._Unpickler`` (the reference
implementation of the pickle machine, the one joblib's ``NumpyUnpickler`` and torch's
``weights_only`` unpickler are also built on), because only its dispatch table lets every opcode
be checked: the C unpickler resolves ``EXT1``/``EXT2``/``EXT4`` through ``copyreg``'s extension
cache without calling ``find_class``. Each entry point goes through the :class:`LoadSession`:

``GLOBAL``, ``STACK_GLOBAL``, ``INST``
    ``find_class``: admitted only when the scanner's classifier calls the name SAFE (this is
    also how the ``copyreg`` reconstructors and ``__reduce__`` helpers a pickle uses, such as
    ``copyreg._reconstructor`` or ``numpy.core.multiarray._reconstruct``, are reached);
``EXT1``, ``EXT2``, ``EXT4``
    refused: the extension registry is never consulted;
``PERSID``, ``BINPERSID``
    refused, unless the loader that drives the unpickler defines persistent ids (torch's
    storages) and a check for their shape;
``BUILD``, ``SETITEM(S)``, ``APPEND(S)``, ``ADDITEMS``
    refused when they write into an imported global, a module, a class or a function.

``load`` runs with the session's sentinel on (see :mod:`modelshield.loaders.session`).

:func:`bind` makes a subclass tied to one session, with the signature of ``pickle.Unpickler``
(``file, *, fix_imports, encoding, errors, buffers``): that is what ``torch.load`` needs from a
``pickle_module``, and :func:`pickle_module` wraps it as one.
"""

from __future__ import annotations

import functools
import pickle
import types
from collections.abc import Callable, Mapping
from typing import IO, Any, ClassVar, cast

from modelshield.loaders.session import LoadSession, Refused

Op = Callable[[Any], None]
"""A dispatch-table entry: it runs one opcode on the unpickler."""

_MISSING = object()


class RestrictedMixin:
    """The checks, for any ``pickle._Unpickler`` subclass (joblib's ``NumpyUnpickler`` too)."""

    session: ClassVar[LoadSession]
    """The session this class is bound to (see :func:`bind`)."""
    persistent_check: ClassVar[Callable[[Any], str | None] | None] = None
    """For loaders that define persistent ids: returns None for an id they define, else a
    sentence saying what was expected. None (the default): every persistent id is refused."""
    stack: list[Any]
    metastack: list[list[Any]]
    _opcode: str = "GLOBAL"
    _persistent: Callable[[Any], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        """Resolve a global only when the policy calls it SAFE (see LoadSession.resolve)."""
        lookup: Callable[[str, str], Any] = super().find_class  # type: ignore[misc]
        return self.session.resolve(module, name, lookup, self._opcode)

    def load(self) -> Any:
        """Unpickle with the sentinel on; a refusal is raised even if a library caught it."""
        with self.session.active():
            result = super().load()  # type: ignore[misc]
        if self.session.refusals:
            raise Refused(self.session.refusals[0])
        return result

    @property
    def persistent_load(self) -> Callable[[Any], Any]:
        """The checked persistent-load hook (loaders assign theirs; it runs behind the check)."""
        return self._checked_persistent_load

    @persistent_load.setter
    def persistent_load(self, function: Callable[[Any], Any]) -> None:
        self._persistent = function

    def _checked_persistent_load(self, pid: Any) -> Any:
        check = type(self).persistent_check
        if check is None or self._persistent is None:
            self.session.refuse_persistent_id(pid, "this format defines no persistent ids")
        problem = check(pid)
        if problem is not None:
            self.session.refuse_persistent_id(pid, problem)
        return self._persistent(pid)

    def _instantiate(self, klass: Any, args: Any) -> None:
        """INST and OBJ: ``klass(*args)``, as the code of ``klass``."""
        with self.session.running(klass):
            super()._instantiate(klass, args)  # type: ignore[misc]


class RestrictedUnpickler(RestrictedMixin, pickle._Unpickler):
    """The pickle machine of ``pickle._Unpickler`` under a session's policy. Use :func:`bind`."""


# ---- dispatch tables --------------------------------------------------------------------------


def _peek(self: RestrictedMixin, where: str) -> Any:
    """The object an opcode writes into, or _MISSING when the stack is too short (the opcode
    itself then fails as it would in the plain unpickler)."""
    try:
        if where == "mark":
            return self.metastack[-1][-1]
        return self.stack[-int(where)]
    except IndexError:
        return _MISSING


def _writer(original: Op, opcode: str, where: str, track: bool) -> Op:
    def run(self: RestrictedMixin) -> None:
        target = _peek(self, where)
        if target is _MISSING:
            original(self)
            return
        self.session.check_target(target, opcode)
        if not track:
            original(self)
            return
        with self.session.running(type(target)):
            original(self)

    return run


def _caller(original: Op, where: int) -> Op:
    def run(self: RestrictedMixin) -> None:
        owner = self.stack[-where] if len(self.stack) >= where else None
        with self.session.running(owner):
            original(self)

    return run


def _importer(original: Op, opcode: str) -> Op:
    def run(self: RestrictedMixin) -> None:
        self._opcode = opcode
        original(self)

    return run


def _extension(opcode: str, size: int) -> Op:
    def run(self: Any) -> None:
        raw = self.read(size)
        code = int.from_bytes(raw, "little", signed=size == 4) if len(raw) == size else -1
        self.session.refuse_extension(code, opcode)

    return run


@functools.cache
def _tables(base: Any) -> tuple[Mapping[int, Op], Mapping[int, Op]]:
    """The checked dispatch tables for ``base`` (without and with owner tracking)."""
    source: dict[int, Op] = dict(base.dispatch)
    out = []
    for track in (False, True):
        table = dict(source)
        writers = {
            pickle.BUILD: "2",
            pickle.SETITEM: "3",
            pickle.SETITEMS: "mark",
            pickle.APPEND: "2",
            pickle.APPENDS: "mark",
            pickle.ADDITEMS: "mark",
        }
        for op, where in writers.items():
            table[op[0]] = _writer(source[op[0]], _OP_NAMES[op], where, track)
        for op, name in ((pickle.GLOBAL, "GLOBAL"), (pickle.STACK_GLOBAL, "STACK_GLOBAL")):
            table[op[0]] = _importer(source[op[0]], name)
        table[pickle.INST[0]] = _importer(source[pickle.INST[0]], "INST")
        table[pickle.EXT1[0]] = _extension("EXT1", 1)
        table[pickle.EXT2[0]] = _extension("EXT2", 2)
        table[pickle.EXT4[0]] = _extension("EXT4", 4)
        if track:
            table[pickle.REDUCE[0]] = _caller(source[pickle.REDUCE[0]], 2)
            table[pickle.NEWOBJ[0]] = _caller(source[pickle.NEWOBJ[0]], 2)
            table[pickle.NEWOBJ_EX[0]] = _caller(source[pickle.NEWOBJ_EX[0]], 3)
        out.append(types.MappingProxyType(table))
    return out[0], out[1]


_OP_NAMES = {
    pickle.BUILD: "BUILD",
    pickle.SETITEM: "SETITEM",
    pickle.SETITEMS: "SETITEMS",
    pickle.APPEND: "APPEND",
    pickle.APPENDS: "APPENDS",
    pickle.ADDITEMS: "ADDITEMS",
}


def bind(
    session: LoadSession,
    base: type[RestrictedMixin] = RestrictedUnpickler,
    persistent_check: Callable[[Any], str | None] | None = None,
) -> type[RestrictedMixin]:
    """A subclass of ``base`` tied to ``session``: construct it as ``pickle.Unpickler``.

    Owner tracking (for the sentinel's exact-allow exemption) costs a little per call opcode
    and is switched on only when the policy has exact allow entries.
    """
    plain, tracking = _tables(cast(Any, base))
    namespace = {
        "session": session,
        "persistent_check": staticmethod(persistent_check) if persistent_check else None,
        "dispatch": dict(tracking if session.exact_allowed else plain),
    }
    return type(base.__name__, (base,), namespace)


def unpickle(
    session: LoadSession,
    file: IO[bytes],
    *,
    fix_imports: bool = True,
    encoding: str = "ASCII",
    errors: str = "strict",
) -> Any:
    """Read one pickle from ``file`` under ``session``'s policy (the scan ran first)."""
    cls: Any = bind(session)
    return cls(file, fix_imports=fix_imports, encoding=encoding, errors=errors).load()


def pickle_module(
    session: LoadSession, persistent_check: Callable[[Any], str | None] | None = None
) -> types.SimpleNamespace:
    """A stand-in for the ``pickle`` module that a loader taking ``pickle_module=`` can use:
    ``Unpickler`` is restricted by ``session``, ``load`` reads one pickle with it."""
    cls: Any = bind(session, persistent_check=persistent_check)

    def load(file: IO[bytes], **kwargs: Any) -> Any:
        return cls(file, **kwargs).load()

    return types.SimpleNamespace(
        __name__="modelshield.loaders.unpickler",
        Unpickler=cls,
        load=load,
        UnpicklingError=pickle.UnpicklingError,
    )


__all__ = ["RestrictedMixin", "RestrictedUnpickler", "bind", "pickle_module", "unpickle"]
