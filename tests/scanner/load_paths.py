"""What loading a pickle can run for one importable callable, found by reading bytecode.

Unpickling calls more than the callable a pickle imports: ``REDUCE`` calls ``cls(*args)``
(``__new__`` and ``__init__``) or a function with the file's arguments, ``NEWOBJ`` calls
``cls.__new__``, ``BUILD`` calls ``__setstate__`` (looked up through ``__getattr__``) or
``__setattr__``, ``SETITEMS``/``APPENDS``/``ADDITEMS`` call ``__setitem__``, ``append``,
``extend`` and ``add`` (and hash the keys), and a discarded object runs ``__del__``. This module
walks those hooks of a class, or the function itself, through their bytecode: every global,
module attribute, import inside the function and attribute of ``self`` is resolved to the object
it names, and a reference to a *sink* (code execution, imports by name, file or network I/O,
processes, ctypes, deserialisation) is reported with the chain of calls that leads to it.
Functions of the same top-level package are followed, to :data:`MAX_DEPTH` calls.

It is a test and maintenance tool (it imports the libraries it inspects); the scanner itself
never imports anything. ``scripts/generate_safe_callables.py`` uses it to decide which classes
and functions the safe list may name, and ``tests/scanner/test_load_paths.py`` re-checks every
safe entry against the installed libraries.

Limits: native code (C, Cython) is opaque, and calls on values whose type the bytecode does not
say (an argument's method) are not followed. What it finds is a lower bound; what it misses is
bounded by those two cases.
"""

from __future__ import annotations

import builtins
import dis
import functools
import importlib
import inspect
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

MAX_DEPTH = 6
"""Calls followed from a hook before the walk stops (the scipy and sklearn cases need 3)."""

CLASS_HOOKS = (
    "__new__",
    "__init__",
    "__setstate__",
    "__setattr__",
    "__getattr__",
    "__setitem__",
    "append",
    "extend",
    "add",
    "update",
    "__hash__",
    "__eq__",
    "__del__",
    "__call__",
    "__reduce__",
    "__reduce_ex__",
)
"""Methods that loading a pickle may run on a class it imports (``__reduce__``/``__reduce_ex__``
run when the object was written, but name the reconstructor a load calls: walked as well)."""

# Modules whose every function and class is a sink, by what it does. A name resolves to a sink
# when the object it names is defined in one of them (``__module__``), or is one of them.
SINK_MODULES: dict[str, str] = {
    "subprocess": "process",
    "_posixsubprocess": "process",
    "pty": "process",
    "multiprocessing.connection": "process",
    "multiprocessing.pool": "process",
    "multiprocessing.process": "process",
    "multiprocessing.managers": "process",
    "multiprocessing.popen_fork": "process",
    "multiprocessing.popen_spawn_posix": "process",
    "multiprocessing.popen_forkserver": "process",
    "multiprocessing.spawn": "process",
    "multiprocessing.forkserver": "process",
    "multiprocessing.shared_memory": "process",
    "concurrent.futures.process": "process",
    "joblib.externals.loky": "process",
    "joblib.pool": "process",
    "socket": "network",
    "_socket": "network",
    "ssl": "network",
    "urllib.request": "network",
    "http.client": "network",
    "http.server": "network",
    "requests": "network",
    "urllib3": "network",
    "httpx": "network",
    "aiohttp": "network",
    "ftplib": "network",
    "smtplib": "network",
    "xmlrpc": "network",
    "socketserver": "network",
    "webbrowser": "network",
    "ctypes": "ffi",
    "_ctypes": "ffi",
    "cffi": "ffi",
    "pickle": "deserialization",
    "_pickle": "deserialization",
    "marshal": "deserialization",
    "dill": "deserialization",
    "cloudpickle": "deserialization",
    "shelve": "deserialization",
    "joblib.numpy_pickle": "deserialization",
    "joblib.numpy_pickle_compat": "deserialization",
    "numpy.lib.npyio": "deserialization",
    "numpy.lib._npyio_impl": "deserialization",
    "numpy.lib.format": "deserialization",
    "numpy.lib._format_impl": "deserialization",
    "torch.serialization": "deserialization",
    **{
        f"pandas.io.{m}": "deserialization"
        for m in (
            "pickle",
            "parsers",
            "excel",
            "pytables",
            "sql",
            "stata",
            "json",
            "html",
            "xml",
            "parquet",
            "feather_format",
            "orc",
            "sas",
            "spss",
            "clipboards",
            "clipboard",
        )
    },
    "pandas.core.computation.eval": "code-execution",
    "pandas.core.computation.expr": "code-execution",
    "yaml": "deserialization",
    "importlib": "import-by-name",
    "pkgutil": "import-by-name",
    "runpy": "import-by-name",
    "zipimport": "import-by-name",
    "pydoc": "import-by-name",
    "code": "code-execution",
    "codeop": "code-execution",
    "pdb": "code-execution",
    "bdb": "code-execution",
    "shutil": "filesystem",
    "tempfile": "filesystem",
    "fileinput": "filesystem",
    "zipfile": "filesystem",
    "tarfile": "filesystem",
    "sqlite3": "filesystem",
}

# Single functions and classes, by (module, name) as they are imported.
SINK_NAMES: dict[tuple[str, str], str] = {
    **{
        ("builtins", n): "code-execution"
        for n in ("exec", "eval", "compile", "breakpoint", "input", "help")
    },
    ("builtins", "__import__"): "import-by-name",
    ("builtins", "open"): "filesystem",
    **{("io", n): "filesystem" for n in ("open", "FileIO", "open_code")},
    ("codecs", "open"): "filesystem",
    **{("gzip", n): "filesystem" for n in ("open", "GzipFile")},
    **{("bz2", n): "filesystem" for n in ("open", "BZ2File")},
    **{("lzma", n): "filesystem" for n in ("open", "LZMAFile")},
    **{
        ("os", n): "process"
        for n in (
            "system",
            "popen",
            "execv",
            "execve",
            "execl",
            "execle",
            "execlp",
            "execlpe",
            "execvp",
            "execvpe",
            "spawnv",
            "spawnve",
            "spawnl",
            "spawnle",
            "spawnlp",
            "spawnlpe",
            "spawnvp",
            "spawnvpe",
            "posix_spawn",
            "posix_spawnp",
            "fork",
            "forkpty",
            "kill",
            "killpg",
            "startfile",
        )
    },
    **{
        ("os", n): "filesystem"
        for n in (
            "open",
            "fdopen",
            "remove",
            "unlink",
            "rmdir",
            "removedirs",
            "rename",
            "renames",
            "replace",
            "mkdir",
            "makedirs",
            "listdir",
            "scandir",
            "walk",
            "fwalk",
            "chmod",
            "chown",
            "lchown",
            "symlink",
            "link",
            "truncate",
            "write",
            "read",
            "mkfifo",
            "mknod",
        )
    },
    **{
        ("numpy", n): "deserialization"
        for n in ("load", "loadtxt", "genfromtxt", "fromfile", "memmap", "fromregex")
    },
    **{("numpy", n): "filesystem" for n in ("save", "savez", "savez_compressed", "savetxt")},
    ("numpy", "DataSource"): "network",
    **{("torch", n): "deserialization" for n in ("load", "from_file")},
    ("torch", "save"): "filesystem",
    ("joblib", "load"): "deserialization",
    ("joblib", "dump"): "filesystem",
    ("joblib", "Parallel.__call__"): "process",
    ("multiprocessing.context", "Process"): "process",
    ("multiprocessing.context", "BaseContext.Pool"): "process",
    ("multiprocessing.context", "BaseContext.Process"): "process",
    ("pandas.io.common", "get_handle"): "filesystem",
    ("pandas.io.common", "urlopen"): "network",
    ("joblib", "Memory"): "filesystem",
    ("pandas", "read_pickle"): "deserialization",
    ("pandas", "eval"): "code-execution",
    ("sys", "settrace"): "code-execution",
    ("sys", "setprofile"): "code-execution",
}

_OS_NAMES = ("os", "posix", "nt")


class Hit(NamedTuple):
    """A sink reached from a hook."""

    hook: str
    """The hook the walk started from (``__setstate__``, or ``call`` for a function)."""
    chain: tuple[str, ...]
    """The functions walked, hook first, ending with the one that names the sink."""
    sink: str
    """The sink, as ``module:name``."""
    category: str
    """What the sink does (``code-execution``, ``network``...)."""

    def describe(self) -> str:
        """One line for reports and test failures."""
        return f"{self.hook}: {' -> '.join(self.chain)} -> {self.sink} ({self.category})"


def _sink_sets() -> tuple[dict[int, tuple[str, str]], dict[str, str]]:
    by_id: dict[int, tuple[str, str]] = {}
    for (module, name), category in SINK_NAMES.items():
        obj: Any = _import(module)
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if obj is not None:
            by_id[id(obj)] = (f"{module}:{name}", category)
    return by_id, dict(SINK_MODULES)


@functools.cache
def _sinks() -> tuple[dict[int, tuple[str, str]], dict[str, str]]:
    return _sink_sets()


def _module_sink(module_name: str | None) -> str | None:
    if not module_name:
        return None
    modules = _sinks()[1]
    name = module_name
    while name:
        category = modules.get(name)
        if category is not None:
            return category
        name = name.rpartition(".")[0]
    return None


def sink_of(obj: Any) -> tuple[str, str] | None:
    """``(module:name, category)`` when ``obj`` is a sink (a function, class or module)."""
    by_id = _sinks()[0]
    found = by_id.get(id(obj))
    if found is not None:
        return found
    if isinstance(obj, types.ModuleType) or not callable(obj):
        return None  # a module is judged by what is used from it
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return None  # ``except pickle.UnpicklingError`` loads nothing
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        return None
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?")
    if module in _OS_NAMES and ("os", name) in SINK_NAMES:
        return f"os:{name}", SINK_NAMES[("os", name)]
    category = _module_sink(module)
    return (f"{module}:{name}", category) if category else None


# ---- resolving what bytecode names ---------------------------------------------------------
def _static_attr(cls: type, name: str) -> tuple[Any, type | None]:
    """``name`` looked up on ``cls`` without running descriptors, and the class defining it."""
    for klass in getattr(cls, "__mro__", (cls,)):
        try:
            namespace = vars(klass)
        except TypeError:
            continue
        if name in namespace:
            return namespace[name], klass
    return None, None


def _after(cls: type, owner: type | None, name: str) -> tuple[Any, type | None]:
    """``super(owner, self).name`` for an instance of ``cls``."""
    mro = list(getattr(cls, "__mro__", ()))
    start = mro.index(owner) + 1 if owner in mro else 1
    for klass in mro[start:]:
        namespace = vars(klass)
        if name in namespace:
            return namespace[name], klass
    return None, None


def _get_attr(obj: Any, name: str) -> Any:
    """An attribute of a module or class, read without side effects where possible."""
    if isinstance(obj, type):
        return _static_attr(obj, name)[0]
    if isinstance(obj, types.ModuleType):
        value = obj.__dict__.get(name)
        if value is None and name not in obj.__dict__:
            full = f"{obj.__name__}.{name}"
            return sys.modules.get(full)  # a submodule imported elsewhere
        return value
    return None


def function_code(obj: Any) -> tuple[types.CodeType, dict[str, Any]] | None:
    """The code and globals of a Python function (through wrappers and descriptors)."""
    seen = 0
    while seen < 8:
        seen += 1
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        elif isinstance(obj, property):
            obj = obj.fget
        elif isinstance(obj, (functools.cached_property, functools.partial)):
            obj = obj.func
        elif isinstance(obj, types.MethodType):
            obj = obj.__func__
        else:
            break
    if isinstance(obj, types.FunctionType):
        return obj.__code__, obj.__globals__
    return None


def _top(module: str | None) -> str:
    return (module or "").partition(".")[0]


def _relative(package: str, module: str, level: int) -> str:
    if level <= 0:
        return module
    base = package.rsplit(".", level - 1)[0] if level > 1 else package
    return f"{base}.{module}" if module else base


def _import(name: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except Exception:
        return None


# ---- the walk ------------------------------------------------------------------------------
class Walker:
    """Walks hooks to sinks; one per run, caching what every function reaches."""

    def __init__(self, max_depth: int = MAX_DEPTH) -> None:
        """Follow at most ``max_depth`` calls from a hook."""
        self.max_depth = max_depth
        self._cache: dict[tuple[int, int], list[tuple[tuple[str, ...], str, str]]] = {}
        self._active: set[tuple[int, int]] = set()

    def hits_of(self, obj: Any) -> list[Hit]:
        """Every sink the loading paths of ``obj`` (a class or a function) reach."""
        hits: list[Hit] = []
        if isinstance(obj, type):
            for hook, fn, owner in self._hooks(obj):
                for chain, sink, category in self._reach(fn, obj, owner, 0):
                    hits.append(Hit(hook, chain, sink, category))
            return hits
        for chain, sink, category in self._reach(obj, None, None, 0):
            hits.append(Hit("call", chain, sink, category))
        return hits

    def _hooks(self, cls: type) -> Iterator[tuple[str, Any, type | None]]:
        for hook in CLASS_HOOKS:
            fn, owner = _static_attr(cls, hook)
            if fn is not None and function_code(fn) is not None:
                yield hook, fn, owner
        meta_call, owner = _static_attr(type(cls), "__call__")
        if meta_call is not None and function_code(meta_call) is not None:
            yield "metaclass __call__", meta_call, owner

    def _reach(
        self, fn: Any, cls: type | None, owner: type | None, depth: int
    ) -> list[tuple[tuple[str, ...], str, str]]:
        found = function_code(fn)
        if found is None:
            return []
        code, globs = found
        key = (id(code), id(cls))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if key in self._active or depth > self.max_depth:
            return []
        self._active.add(key)
        try:
            name = f"{globs.get('__name__', '?')}:{code.co_qualname}"
            results: list[tuple[tuple[str, ...], str, str]] = []
            for target, target_cls, target_owner, sink in self._names(code, globs, cls, owner):
                if sink is not None:
                    results.append(((name,), *sink))
                    continue
                for chain, s, category in self._reach(target, target_cls, target_owner, depth + 1):
                    results.append(((name, *chain), s, category))
            # One path per sink is enough evidence.
            unique: dict[str, tuple[tuple[str, ...], str, str]] = {}
            for item in results:
                unique.setdefault(item[1], item)
            value = list(unique.values())
        finally:
            self._active.discard(key)
        if depth <= self.max_depth:
            self._cache[key] = value
        return value

    def _names(
        self, code: types.CodeType, globs: dict[str, Any], cls: type | None, owner: type | None
    ) -> Iterator[tuple[Any, type | None, type | None, tuple[str, str] | None]]:
        """What the code names: (object to follow, its self class, its owner, or a sink)."""
        home = _top(globs.get("__name__"))
        package = globs.get("__package__") or globs.get("__name__", "")
        self_name = code.co_varnames[0] if code.co_argcount and cls is not None else None
        for code_obj in _all_code(code):
            bound: dict[str, Any] = {}  # local names bound to modules or imported objects
            current: Any = None  # what the instructions so far resolved to
            on_self = super_pending = False
            from_module: Any = None  # the module of an ``import ... from`` in progress
            imported: Any = None  # what the last IMPORT_FROM read
            consts: list[Any] = []
            instructions = [
                i for i in dis.get_instructions(code_obj) if i.opname not in _TRANSPARENT
            ]
            for index, ins in enumerate(instructions):
                op = ins.opname
                if op == "LOAD_CONST":
                    consts.append(ins.argval)
                    current, on_self, super_pending = None, False, False
                    continue
                if op in ("LOAD_GLOBAL", "LOAD_NAME"):
                    name = ins.argval
                    current = globs[name] if name in globs else getattr(builtins, name, None)
                    on_self = False
                    super_pending = current is super
                    if not super_pending and not _constant_import(current, instructions, index):
                        yield from self._emit(current, None, None, home)
                elif op in ("LOAD_FAST", "LOAD_DEREF", "LOAD_CLOSURE"):
                    current = bound.get(ins.argval)
                    on_self = self_name is not None and ins.argval == self_name
                    super_pending = False
                elif op in ("LOAD_ATTR", "LOAD_METHOD"):
                    attr = ins.argval
                    if super_pending and cls is not None:
                        value, value_owner = _after(cls, owner, attr)
                        yield from self._emit(value, cls, value_owner, home)
                        current = None
                    elif on_self and cls is not None:
                        value, value_owner = _static_attr(cls, attr)
                        yield from self._emit(value, cls, value_owner, home)
                        current = None
                    elif current is not None:
                        current = _get_attr(current, attr)
                        if not _constant_import(current, instructions, index):
                            yield from self._emit(current, None, None, home)
                    on_self = super_pending = False
                elif op == "IMPORT_NAME":
                    level = consts[-2] if len(consts) >= 2 and isinstance(consts[-2], int) else 0
                    fromlist = consts[-1] if consts else None
                    full = _relative(package, ins.argval, level)
                    module = _import(full)
                    if fromlist is None and module is not None and "." in full:
                        module = _import(full.partition(".")[0])  # import a.b binds a
                    current = from_module = module
                    on_self = super_pending = False
                elif op == "IMPORT_FROM":
                    value = None
                    if isinstance(from_module, types.ModuleType):
                        value = _get_attr(from_module, ins.argval)
                        if value is None:
                            value = _import(f"{from_module.__name__}.{ins.argval}")
                    yield from self._emit(value, None, None, home)
                    imported = value
                    current = None
                elif op in ("STORE_FAST", "STORE_DEREF", "STORE_NAME"):
                    value = imported if imported is not None else current
                    if value is not None:
                        bound[ins.argval] = value
                    else:
                        bound.pop(ins.argval, None)
                    imported = current = None
                    on_self = super_pending = False
                elif op == "CALL" and super_pending:
                    continue  # super() itself: the attribute that follows is the parent's
                else:
                    if op != "POP_TOP":
                        from_module = None
                    current, imported = None, None
                    on_self = super_pending = False

    def _emit(
        self, value: Any, cls: type | None, owner: type | None, home: str
    ) -> Iterator[tuple[Any, type | None, type | None, tuple[str, str] | None]]:
        if value is None:
            return
        sink = sink_of(value)
        if sink is not None:
            yield value, None, None, sink
            return
        if isinstance(value, type):
            if _top(value.__module__) != home:
                return
            # Constructing a class runs its __new__ and __init__.
            for hook in ("__new__", "__init__"):
                fn, hook_owner = _static_attr(value, hook)
                if fn is not None and function_code(fn) is not None:
                    yield fn, value, hook_owner, None
            return
        found = function_code(value)
        if found is None:
            return
        if _top(found[1].get("__name__")) != home:
            return
        yield value, cls, owner, None


def _constant_import(value: Any, instructions: list[dis.Instruction], index: int) -> bool:
    """``importlib.import_module("torch._decomp")``: an import of a module the code names
    itself, not of a name taken from data."""
    if value is not importlib.import_module and value is not builtins.__import__:
        return False
    following = instructions[index + 1 : index + 3]
    return (
        len(following) == 2
        and following[0].opname == "LOAD_CONST"
        and isinstance(following[0].argval, str)
        and following[1].opname == "CALL"
    )


_TRANSPARENT = frozenset({"CACHE", "PRECALL", "EXTENDED_ARG", "PUSH_NULL", "KW_NAMES", "NOP"})


def _all_code(code: types.CodeType) -> Iterator[types.CodeType]:
    """The code object and every code object nested in it (closures, lambdas, comprehensions)."""
    todo = [code]
    while todo:
        current = todo.pop()
        yield current
        todo.extend(c for c in current.co_consts if isinstance(c, types.CodeType))


# ---- enumerating what a package defines -----------------------------------------------------
def resolve(module: str, qualname: str) -> Any:
    """Import ``module`` and walk ``qualname``; raises ImportError or AttributeError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def walk_modules(package: str, skip: Callable[[str], bool]) -> Iterator[types.ModuleType]:
    """Every importable module of ``package`` (itself included) whose name ``skip`` accepts not."""
    import pkgutil

    root = _import(package)
    if root is None:
        return
    yield root
    path = getattr(root, "__path__", None)
    if path is None:
        return
    for info in pkgutil.walk_packages(path, package + ".", onerror=lambda _name: None):
        if skip(info.name):
            continue
        module = _import(info.name)
        if module is not None:
            yield module


def defined_names(module: types.ModuleType) -> Iterator[tuple[str, Any]]:
    """(name, object) for every class and function ``module`` defines itself."""
    for name, value in sorted(vars(module).items()):
        if not (isinstance(value, type) or callable(value)):
            continue
        if getattr(value, "__module__", None) != module.__name__:
            continue
        if getattr(value, "__name__", None) != name:
            continue
        yield name, value


def is_callable_kind(value: Any) -> bool:
    """A class or a function (Python or native): what a pickle's import can call."""
    return isinstance(value, type) or inspect.isroutine(value) or callable(value)


# ---- reviewed sinks ------------------------------------------------------------------------
class Review(NamedTuple):
    """Why a sink behind a hook is acceptable."""

    reason: str
    """What makes it safe, for the generated list and for reviewers."""
    state_keys: tuple[str, ...] = ()
    """State keys the scanner checks in every BUILD because this sink executes them."""
    hooks: frozenset[str] | None = None
    """The hooks it is accepted from (None: any)."""
    callers_only: bool = False
    """Accepted inside the package's own calls, never when the function itself is imported."""
    via: frozenset[str] = frozenset()
    """Accepted only when one of these functions is on the chain (empty: always)."""


_SCIPY_TEMPLATE = Review(
    "scipy.stats distributions exec their argument-parser template: __init__ builds it from "
    "shape names scipy validates as identifiers, and the template a pickle's state carries is "
    "checked by the scanner (PICKLE-STATE-CODE)",
    state_keys=("_parse_arg_template",),
)
_SCIPY_LOWLEVEL = Review(
    "scipy's own compiled integrand wrapped in a LowLevelCallable (the function pointer comes "
    "from scipy's extension module, never from the pickle)",
    callers_only=True,
    via=frozenset(
        f"scipy.stats._continuous_distns:{cls}.{method}"
        for cls in ("geninvgauss_gen", "studentized_range_gen")
        for method in ("_cdf", "_pdf", "_munp")
    ),
)
_TORCH_INPUT_TYPO = Review(
    "passes the builtin input (a typo for the forward argument) as a value to "
    "_output_padding, which only reads attributes of it: input() is never called",
    hooks=frozenset({"__call__"}),
)
_LOWLEVEL_SINKS = (
    ("scipy._lib._ccallback:LowLevelCallable._parse_callback", "_ctypes:CFuncPtr"),
    ("scipy._lib._ccallback:_import_cffi", "cffi.api:FFI"),
    ("scipy._lib._ccallback:_get_ctypes_func", "ctypes:cast"),
    ("scipy._lib._ccallback:_get_ctypes_func", "ctypes:c_void_p"),
    ("scipy._lib._ccallback:_get_ctypes_data", "ctypes:c_void_p"),
    ("scipy._lib._ccallback:_get_ctypes_data", "ctypes:cast"),
)

REVIEWED: dict[tuple[str, str], Review] = {
    (
        "scipy.stats._distn_infrastructure:rv_generic._attach_argparser_methods",
        "builtins:exec",
    ): _SCIPY_TEMPLATE,
    **dict.fromkeys(_LOWLEVEL_SINKS, _SCIPY_LOWLEVEL),
    **{
        (f"scipy.stats._continuous_distns:{cls}.{method}", sink): _SCIPY_LOWLEVEL
        for cls in ("geninvgauss_gen", "studentized_range_gen")
        for method in ("_cdf", "_pdf", "_munp")
        for sink in ("ctypes:c_void_p", "ctypes:cast")
    },
    **{
        (
            f"torch.ao.nn.quantized.reference.modules.conv:ConvTranspose{n}d.forward",
            "builtins:input",
        ): (_TORCH_INPUT_TYPO)
        for n in (1, 2, 3)
    },
}
"""(the function that names the sink, the sink) -> why it is acceptable. Keys are written as
:class:`Hit` writes them (``module:qualname``, ``module:name``)."""

_PICKLING_TIME = Review(
    "runs when a storage is pickled (it serialises the storage to bytes with torch.save), "
    "never when one is loaded; the reconstructor it names, torch.storage._load_from_bytes, "
    "is imported by the pickle itself and judged there (its bytes are analysed in place)",
    hooks=frozenset({"__reduce__", "__reduce_ex__"}),
)
REVIEWED.update(
    {
        ("torch.storage:_load_from_bytes", "torch:load"): _PICKLING_TIME,
        ("torch.storage:TypedStorage.__reduce__", "torch:save"): _PICKLING_TIME,
        ("torch.storage:_StorageBase.__reduce__", "torch:save"): _PICKLING_TIME,
        ("torch.serialization:_get_layout", "torch.serialization:_get_layout"): Review(
            "looks a layout constant up by name in torch's own table (the function names "
            "itself to cache it); it reads no file"
        ),
        ("lightgbm.basic:_load_pandas_categorical", "io:open"): Review(
            "Booster(model_file=path) reads a LightGBM model file and parses it (no code runs); "
            "only a REDUCE call of the class reaches it: real pickles rebuild a Booster with "
            "NEWOBJ and __setstate__ from the model string",
            hooks=frozenset({"__init__"}),
        ),
    }
)

REVIEWED_MODULES: dict[tuple[str, str], Review] = {
    ("lightgbm.basic", "ffi"): Review(
        "LightGBM is a ctypes binding: these calls go to its own lib_lightgbm with handles and "
        "buffers it allocates (the model string is parsed by LightGBM's C++ loader)"
    ),
}
"""(module of the function that names the sink, sink category) -> why any such sink is
acceptable: for libraries built on ctypes, every method calls their own shared library."""


def review_of(hit: Hit) -> Review | None:
    """The review that accepts ``hit``, or None."""
    review = REVIEWED.get((hit.chain[-1], hit.sink))
    if review is None:
        module = hit.chain[-1].partition(":")[0]
        review = REVIEWED_MODULES.get((module, hit.category))
    if review is None:
        return None
    if review.hooks is not None and hit.hook not in review.hooks:
        return None
    if review.callers_only and len(hit.chain) == 1 and hit.hook == "call":
        return None
    if review.via and not review.via.intersection(hit.chain):
        return None
    return review
