"""What imports, calls and state writes do, symbolically.

Besides plain ``GLOBAL`` + ``REDUCE``, published bypasses reach a dangerous callable through
objects that resolve names or attributes at load time: ``pkgutil.resolve_name("os:system")``,
``pydoc.locate``, ``builtins.__import__`` + ``getattr``, ``operator.attrgetter`` /
``methodcaller`` / ``itemgetter`` applied to a module, ``functools.partial``. The gadgets
themselves are on the dangerous list; here they are also *resolved*, so that the finding names
the callable that really runs (``os.system`` with its argument).
"""

from __future__ import annotations

import re
from typing import Any

from modelshield.core.findings import Severity
from modelshield.scanner.callables import Tier
from modelshield.scanner.memio import Buffer
from modelshield.scanner.pickle import rules, state_checks
from modelshield.scanner.pickle.embedded import is_embedded_pickle
from modelshield.scanner.pickle.state import Stream
from modelshield.scanner.pickle.values import (
    Blob,
    Call,
    Global,
    Mutated,
    Persistent,
    Unknown,
    brief,
    strings_in,
    unwrap,
)

#: Module spellings that mean the same module for the gadgets modelled here.
_ALIASES = {"__builtin__": "builtins", "_operator": "operator", "_functools": "functools"}

#: Calls whose result is modelled rather than left opaque.
_FOLDED = frozenset(
    {
        ("_codecs", "encode"),
        ("codecs", "encode"),
        ("builtins", "bytes"),
        ("builtins", "bytearray"),
        ("pkgutil", "resolve_name"),
        ("pydoc", "locate"),
        ("builtins", "__import__"),
        ("importlib", "import_module"),
        ("builtins", "getattr"),
        ("builtins", "globals"),
        ("builtins", "vars"),
        ("builtins", "locals"),
    }
)

#: The placeholder joblib pickles in place of each array; the array bytes follow its BUILD.
JOBLIB_WRAPPERS = frozenset(
    {
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        ("sklearn.externals.joblib.numpy_pickle", "NumpyArrayWrapper"),
    }
)

#: How deep calls of callable objects (partial of partial of ...) are followed.
_MAX_CALL_DEPTH = 16

#: Values that cannot be an argument tuple (a real load raises on them).
_NOT_ARGS = (list, dict, set, frozenset, str, bytes, bytearray, int, float, bool, type(None))


def _norm(module: str) -> str:
    return _ALIASES.get(module, module)


def import_global(st: Stream, module: str, name: str, opcode: str, offset: int) -> Any:
    """Import ``module.name``: record it, and return what a load would push."""
    verdict = st.ledger.imported(module, name, opcode, offset)
    safe = verdict.tier is Tier.SAFE and (_norm(module), name) not in _FOLDED
    ref = Global(module, name, offset, opcode, safe)
    overrides = st.session.overrides
    if overrides:
        owner, _, attr = f"{module}.{name}".rpartition(".")
        written = overrides.get(owner)
        if written is not None and attr in written:
            return Mutated(ref, written[attr])
    return ref


def module_object(module: str, offset: int, via: str) -> Global:
    """A module object obtained at load time (``__import__('os')``); not itself a callable."""
    return Global(module, "", offset, via, False)


def dynamic_import(st: Stream, module: Any, name: Any, offset: int) -> Any:
    """STACK_GLOBAL with operands that are not both string constants."""
    real_module, real_name = unwrap(module), unwrap(name)
    kinds = f"module operand {_kind(module)}, name operand {_kind(name)}"
    st.session.emit(
        rules.DYNAMIC_IMPORT,
        offset,
        f"STACK_GLOBAL takes its names from values computed while loading ({kinds}): "
        f"module {brief(module)}, name {brief(name)}. Picklers always push string literals; "
        "this hides the imported name from scanners.",
        {"module_operand": brief(module), "name_operand": brief(name), "opcode": "STACK_GLOBAL"},
    )
    if type(real_module) is str and type(real_name) is str:
        return import_global(st, real_module, real_name, "STACK_GLOBAL (computed operands)", offset)
    return Unknown("dynamically imported object")


def _kind(value: Any) -> str:
    t = type(value)
    if t is Mutated:
        return "read back from an overwritten module attribute"
    if t is Call:
        return "the result of a call"
    if t is Global:
        return "an imported object"
    if t is str:
        return "a string"
    return f"of type {t.__name__}" if t is not Unknown else "unknown"


def call(
    st: Stream, func: Any, args: Any, kwargs: Any, opcode: str, offset: int, depth: int = 0
) -> Any:
    """Model ``func(*args, **kwargs)``; return the value a load would push."""
    f = unwrap(func)
    tf = type(f)
    if isinstance(args, _NOT_ARGS):
        st.semantic(offset, f"{opcode} arguments are a {type(args).__name__}, not a tuple")
    if tf is Global:
        if f.name:
            if kwargs is None and _scanned_nested_load(st, f, args, offset):
                return Call(func, args, kwargs, offset, opcode)
            if kwargs is None:
                method = _safe_bound_method(st, f, args, offset)
                if method is not None:
                    return method
            st.ledger.called(f.module, f.name, args, kwargs, opcode, offset)
            folded = _fold(st, f, args, offset)
            if folded is not None:
                return folded
            if not f.safe:
                named = _named_callable(st, f, args, kwargs, offset)
                if named is not None:
                    return named
        return Call(func, args, kwargs, offset, opcode)
    if tf is Call and depth < _MAX_CALL_DEPTH:
        resolved = _call_object(st, f, args, kwargs, offset, depth + 1)
        if resolved is not None:
            return resolved
        _returned_object_called(st, f, opcode, offset)
        return Call(func, args, kwargs, offset, opcode)
    if tf is Call or tf is Persistent or tf is Unknown:
        return Call(func, args, kwargs, offset, opcode)
    st.semantic(offset, f"{opcode} calls a constant of type {tf.__name__}")
    return Unknown(f"result of calling a {tf.__name__}")


#: Callables that load their single bytes argument as a nested model. Plain pickle writes
#: ``torch.storage._load_from_bytes(b"...")`` for every tensor (copy, multiprocessing, joblib);
#: when the bytes are a constant, they are analysed here like any embedded file, and the call
#: is then judged by what they hold instead of by the loader's name.
_NESTED_LOADERS = frozenset({("torch.storage", "_load_from_bytes")})


def _scanned_nested_load(st: Stream, f: Global, args: Any, offset: int) -> bool:
    """Analyse a nested loader's constant bytes argument; True when it was analysed.

    The constant is either inline ``bytes`` or, above the interpreter's inline size (every
    real tensor), a :class:`Blob` that stays in the buffer: both are the file's own bytes.
    """
    if (_norm(f.module), f.name) not in _NESTED_LOADERS or type(args) is not tuple:
        return False
    if len(args) != 1:
        return False
    arg = unwrap(args[0])
    session = st.session
    if type(arg) is bytes:
        data: Buffer = arg
    elif type(arg) is Blob and arg.kind == "bytes":
        data = memoryview(session.data)[arg.start : arg.end]
    else:
        return False
    # Pickles (the legacy format torch.save writes there) were analysed when the constant was
    # pushed; anything else (a zip checkpoint) is analysed here.
    if not is_embedded_pickle(data):
        if len(data) > session.ctx.limits.max_embedded_scan_bytes:
            return False
        session.ctx.scan_buffer(data, session.location.child(f"<{f.module}.{f.name} @{offset}>"))
    st.ledger.vouch(f.module, f.name)
    return True


_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"

#: A module-qualified name as name resolvers take it: ``os.system``, ``os:system``,
#: ``os.path:join``. Resolvers of every library accept one of these two spellings.
_QUALIFIED_NAME = re.compile(rf"{_DOTTED}(?::{_DOTTED})?")

#: Text constants of one call that are tried as names (the first ones found, bounded).
_NAMED_STRINGS = 8


def _name_splits(text: str) -> list[tuple[str, str]]:
    """The (module, qualname) readings of a qualified name, as resolvers split it."""
    if len(text) > 200 or not _QUALIFIED_NAME.fullmatch(text):
        return []
    module, sep, name = text.partition(":")
    if sep:
        return [(module, name)]
    parts = text.split(".")
    # "os.path.join": module "os.path" (importlib-style resolvers) or "os" (getattr walks).
    return [(".".join(parts[:i]), ".".join(parts[i:])) for i in range(len(parts) - 1, 0, -1)]


def _named_callable(st: Stream, f: Global, args: Any, kwargs: Any, offset: int) -> Any:
    """A string argument of an unlisted callable that names a dangerous callable.

    Libraries ship many name resolvers (``hydra.utils.get_method('os.system')``,
    ``werkzeug.utils.import_string``, ``distlib.util.resolve('os', 'system')``); no list of
    them is complete, so the argument is judged instead of the resolver's name. The named
    callable is recorded as imported through ``f``; when the call has the resolver's shape (the
    name is its first argument, or its first two arguments are a module and a name), the
    call is taken to return it, so a later call of the result reports it as called.
    """
    texts = strings_in(args, _NAMED_STRINGS)
    if kwargs is not None:
        texts += strings_in(kwargs, _NAMED_STRINGS)
    first: Any = None
    if type(args) is tuple and args:
        first = unwrap(args[0])
        if len(args) == 2 and type(first) is str and type(unwrap(args[1])) is str:
            first = f"{first}:{unwrap(args[1])}"
            texts.append(first)
    classify = st.session.ctx.callables.classify
    via = f"{f.module}.{f.name} (resolves a name)"
    result: Any = None
    for text in texts:
        for module, name in _name_splits(text):
            verdict = classify(module, name)
            if verdict.tier is not Tier.DANGEROUS or (verdict.severity or Severity.INFO) < (
                Severity.HIGH
            ):
                continue
            imported = import_global(st, module, name, via, offset)
            if text == first and result is None:
                result = imported
            break
    return result


def _returned_object_called(st: Stream, f: Call, opcode: str, offset: int) -> None:
    """Report a call of the value an unlisted callable returned (PICKLE-CALL-RETURNED-OBJECT)."""
    maker: Any = f
    depth = 0
    while type(maker) is Call and depth < _MAX_CALL_DEPTH:
        maker = unwrap(maker.func)
        depth += 1
    if type(maker) is not Global or maker.safe or not maker.name:
        return
    st.session.emit(
        rules.CALL_RETURNED_OBJECT,
        offset,
        f"{opcode} calls the object that {maker.dotted}{_paren(f.args)} returned, and "
        f"{maker.dotted} is not on the safe list. Name resolvers turn a string into any "
        "callable this way; picklers never write a call like this.",
        {"callable": f"result of {maker.dotted}", "args": brief(f.args), "opcode": opcode},
    )


def _paren(args: Any) -> str:
    text = brief(args)
    return text if text.startswith("(") else f"({text})"


def _safe_bound_method(st: Stream, f: Global, args: Any, offset: int) -> Global | None:
    """``getattr(obj, "name")`` on an object a safe class built, naming a safe method.

    Pickle writes a bound method as that call (scipy's discrete distributions keep
    ``numpy.vectorize(getattr(self, "_entropy"))``). Binding a method runs nothing; the method
    is judged by its exact entry (``module:Class.name``), so ``getattr`` on such an object is
    no finding when the method it returns is safe. Anything else stays a call of ``getattr``.
    """
    if (_norm(f.module), f.name) != ("builtins", "getattr") or type(args) is not tuple:
        return None
    if len(args) != 2:
        return None
    obj, name = unwrap(args[0]), unwrap(args[1])
    if type(obj) is not Call or type(name) is not str or not name.isidentifier():
        return None
    if name.startswith("__"):
        return None
    maker = unwrap(obj.func)
    if type(maker) is not Global or not maker.safe or "." in maker.name:
        return None
    method = attribute(st, obj, name, "builtins.getattr", offset)
    if type(method) is not Global or not method.safe:
        return None
    st.ledger.vouch(f.module, f.name)
    return method


def _fold(st: Stream, f: Global, args: Any, offset: int) -> Any:
    key = (_norm(f.module), f.name)
    if key not in _FOLDED or type(args) is not tuple:
        return None
    via = f"{key[0]}.{key[1]}"
    if key in {("builtins", "globals"), ("builtins", "vars"), ("builtins", "locals")}:
        # The namespace whose items include the builtins' names (see itemgetter below).
        return module_object("builtins", offset, via) if not args else None
    if not args:
        # bytes() / bytearray(): how protocols 0-2 spell an empty byte string.
        return b"" if key == ("builtins", "bytes") else None
    first = unwrap(args[0])
    if key in {("_codecs", "encode"), ("codecs", "encode")}:
        # How protocols 0-2 spell bytes: _codecs.encode('\x80\x04...', 'latin1').
        if type(first) is str and len(args) == 2 and args[1] in ("latin1", "latin-1"):
            try:
                data = first.encode("latin-1")
            except UnicodeEncodeError:
                return None
            embedded = st.session.embedded
            if embedded is not None:
                embedded.check_bytes(data, offset)
            return data
        return None
    if key in {("builtins", "bytes"), ("builtins", "bytearray")}:
        return first if type(first) is bytes else None
    if key in {("pkgutil", "resolve_name"), ("pydoc", "locate")}:
        return _resolve_dotted(st, first, via, offset) if type(first) is str else None
    if key in {("builtins", "__import__"), ("importlib", "import_module")}:
        return module_object(first, offset, via) if type(first) is str and first else None
    if key == ("builtins", "getattr") and len(args) >= 2 and type(unwrap(args[1])) is str:
        return attribute(st, first, unwrap(args[1]), via, offset)
    return None


def _resolve_dotted(st: Stream, text: str, via: str, offset: int) -> Any:
    module, sep, name = text.partition(":")
    if not sep:
        module, _, name = text.rpartition(".")
        if not module:
            return module_object(text, offset, via) if text else None
    if not name:
        return module_object(module, offset, via)
    return import_global(st, module, name, via, offset)


def attribute(st: Stream, obj: Any, attr: str, via: str, offset: int) -> Any:
    """``getattr(obj, attr)`` when ``obj`` is a known module or global (else None).

    On an object a call created (``Bdb()``), the attribute is taken to be its class's: the
    bound method ``Bdb().run`` is reported as ``bdb.Bdb.run``.
    """
    obj = unwrap(obj)
    if type(obj) is Call:
        obj = unwrap(obj.func)
    if type(obj) is not Global or not attr:
        return None
    name = f"{obj.name}.{attr}" if obj.name else attr
    return import_global(st, obj.module, name, via, offset)


def _call_object(st: Stream, obj: Call, args: Any, kwargs: Any, offset: int, depth: int) -> Any:
    """Calling an object built by a call: attrgetter / methodcaller / itemgetter / partial."""
    maker = unwrap(obj.func)
    if type(maker) is not Global or type(obj.args) is not tuple or not obj.args:
        return None
    key = (_norm(maker.module), maker.name)
    via = f"{key[0]}.{key[1]}"
    given = args if type(args) is tuple else ()
    if key == ("functools", "partial"):
        inner_kwargs = obj.kwargs if kwargs is None else kwargs
        return call(st, obj.args[0], obj.args[1:] + given, inner_kwargs, via, offset, depth)
    if not given:
        return None
    target = given[0]
    name = unwrap(obj.args[0])
    if type(name) is not str:
        return None
    if key == ("operator", "attrgetter"):
        value: Any = target
        for part in name.split("."):
            value = attribute(st, value, part, via, offset)
            if value is None:
                return None
        return value
    if key == ("operator", "methodcaller"):
        method = attribute(st, target, name, via, offset)
        if method is None:
            return None
        return call(st, method, obj.args[1:], obj.kwargs, via, offset, depth)
    if key == ("operator", "itemgetter"):
        space = unwrap(target)
        if type(space) is Global and (
            (space.module == "builtins" and space.name in ("", "__dict__"))
            or space.name.endswith("__builtins__")
        ):
            return import_global(st, "builtins", name, via, offset)
    return None


def build(st: Stream, target: Any, state: Any, offset: int) -> Call | None:
    """``BUILD``: set ``state`` on ``target``. Returns a joblib array wrapper to read, if any."""
    _note_metadata(st, state)
    t = type(target)
    if t is Call:
        obj: Call = target
        obj.state = state
        state_checks.check_build(st, obj, state, offset)
        f = unwrap(obj.func)
        if type(f) is Global and (f.module, f.name) in JOBLIB_WRAPPERS:
            return obj
        return None
    if t is Global or t is Mutated:
        _state_write(st, target, state, "BUILD", offset)
        return None
    if t is Persistent or t is Unknown:
        return None
    st.semantic(offset, f"BUILD sets state on a {t.__name__} constant")
    return None


def write_into(st: Stream, target: Any, items: Any, opcode: str, offset: int) -> None:
    """APPEND(S)/SETITEM(S)/ADDITEMS on something other than a list, dict or set it built."""
    t = type(target)
    if t is Global or t is Mutated:
        _state_write(st, target, items, opcode, offset)
    elif t is not Call and t is not Persistent and t is not Unknown:
        st.semantic(offset, f"{opcode} on a {t.__name__}")


def _state_write(st: Stream, target: Any, state: Any, opcode: str, offset: int) -> None:
    ref = target.origin if type(target) is Mutated else target
    path = ref.dotted
    written: list[str] = []
    dicts = [state] if type(state) is dict else []
    if type(state) is tuple and len(state) == 2:
        dicts = [d for d in state if type(d) is dict]
    overrides = st.session.overrides
    for d in dicts:
        for key, value in d.items():
            if type(key) is str:
                overrides.setdefault(path, {})[key] = value
                written.append(key)
    what = f"attributes {', '.join(written[:8])}" if written else f"{brief(state, 80)}"
    st.session.emit(
        rules.STATE_WRITE_MODULE,
        offset,
        f"{opcode} writes {what} onto {path}, an imported module, class or function, not an "
        "object the pickle created. This changes process-wide state while loading (later "
        "imports of that name return attacker data).",
        {"target": path, "opcode": opcode, "state": brief(state, 120)},
        title=f"Pickle writes state onto {path}",
    )


def _note_metadata(st: Stream, state: Any) -> None:
    states = state if type(state) is tuple else (state,)
    for s in states[:2]:
        if type(s) is dict:
            version = s.get("_sklearn_version")
            if type(version) is str and len(version) < 64:
                st.session.ctx.metadata["sklearn_version"] = version
