"""Allowlist-first classification of the callables a pickle imports.

A pickle can import any ``module:qualname`` and call it. A deny list of dangerous callables is
never complete (dozens of published scanner bypasses each added one more), so here the
*allowlist* decides safety: a callable is :attr:`Tier.SAFE` only when an allow entry covers it,
:attr:`Tier.DANGEROUS` when a deny entry does (the deny list ranks severity and category), and
:attr:`Tier.UNKNOWN` (medium, which fails the default policy) otherwise.

The built-in lists live in ``data/callables_safe.toml`` and ``data/callables_dangerous.toml``,
one table per concept with a reason beside every entry, and ``data/callables_generated.toml``,
written by ``scripts/generate_safe_callables.py`` from the installed libraries; they ship
inside the package and are read once per process. The safe lists name callables one by one:
loading a pickle runs a class's ``__new__``, ``__init__``, ``__setstate__`` and container hooks
and calls a function with the file's arguments, so an entry vouches for all of that, and a
package-wide safe entry would vouch for names nobody inspected. Some safe classes execute part
of their own state (scipy distributions ``exec`` their ``_parse_arg_template``); their tables
name those ``state-keys`` (:meth:`CallablePolicy.state_keys`), which the pickle analyzer checks.
The generated file also denies what the scanned packages re-export (``types.MethodType`` as a
scikit-learn module attribute is ``types.MethodType``).

``data/callables.json`` holds the same tables already parsed (``make docs`` writes it; a test
fails when it is stale) with a CRC-32 of each TOML file: a file whose checksum matches is taken
from it, since parsing 300 KB of TOML would cost a one-file scan over 100 ms; any other is
parsed from the TOML.

Patterns (built-in lists and the ``[callables]`` table of a policy):

``module:qualname``
    exactly one callable; the qualname may be dotted (``bdb:Bdb.run``). A deny entry also covers
    the attributes of what it names (``bdb:Bdb`` denies ``bdb:Bdb.run``); an allow entry never
    does (``builtins:object`` does not allow ``builtins:object.__subclasses__``).
``module.*`` or ``module:*``
    every name in the module and in its submodules (``asyncio.*`` covers
    ``asyncio.unix_events``): deny lists and policy files; the built-in safe lists have none.
``module``
    policy files only: the same as ``module.*``. In a deny list a dotted bare name also denies
    the callable it could name, so ``somelib.unsafe_loader`` denies both the module
    ``somelib.unsafe_loader`` and the function ``somelib:unsafe_loader``.

Names are normalised before matching, never compared as substrings: Python 2 names through
CPython's own ``fix_imports`` tables (``__builtin__`` → ``builtins``, ``httplib`` →
``http.client``, ``copy_reg`` → ``copyreg``...), and the private or platform aliases a pickle can
use for the same object (``posix``/``nt`` → ``os``, ``_pickle`` → ``pickle``, ``_io`` → ``io``,
``_operator`` → ``operator``...). ``evaluate`` is not ``eval``, ``osmosis`` is not ``os``.

Precedence, first match wins (an attribute path deeper than :data:`MAX_QUALNAME_DEPTH` is
dangerous before anything else is looked at):

1. the user's deny entries: dangerous, whatever else matches;
2. the user's exact allow entries (``module:qualname``): safe, even over the built-in dangerous
   list, because the user named that one callable;
3. built-in exact safe entries (hand-written, then generated);
4. built-in exact dangerous entries, and the attributes of what they name;
5. a dunder anywhere in the qualname (``__globals__``, ``__builtins__``, ``__subclasses__``):
   dangerous introspection;
6. built-in package-wide entries, deepest package first; at one depth the deny entry wins (the
   shipped safe lists have none: a package-wide safe entry in a custom build is still refused
   for the names listed below);
7. a name that walks through a module attribute to a denied callable or is a denied module
   (``posixpath:os.system``, ``sklearn.base:np.load``, ``sklearn.utils:os``): dangerous;
8. the user's package-wide allow entries;
9. unknown.

A package-wide allow (the user's) only covers a plain name that could be a class or
function defined there: never a dotted qualname, a dunder, the name of a module (``os``, ``np``),
a name listed in the deny list's ``refused-names`` or as the name of a denied callable (modules
re-export ``urlretrieve`` and ``listdir``), nor anything in a test module. So a wildcard allow
such as ``os.*`` or ``mypkg.*`` can never make ``os.system`` safe: only an exact entry can.
"""

from __future__ import annotations

import enum
import functools
import re
import sys
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from msgspec import Struct

from modelshield.core.errors import ConfigError
from modelshield.core.findings import Severity


class Tier(enum.Enum):
    """Where a callable stands."""

    SAFE = "safe"
    """Covered by an allow entry: it only builds inert data."""
    DANGEROUS = "dangerous"
    """Covered by a deny entry: it can run code or touch the host."""
    UNKNOWN = "unknown"
    """Not listed: the scanner cannot vouch for it."""


class Verdict(Struct, frozen=True):
    """The classification of one callable."""

    module: str
    """Normalised module."""
    name: str
    """Normalised qualified name inside the module."""
    tier: Tier
    """Safe, dangerous or unknown."""
    severity: Severity | None
    """Severity for a finding (None for safe)."""
    category: str
    """What it can do: ``code-execution``, ``process``, ``network``, ``filesystem``..."""
    reason: str
    """Why it is listed (from the data files)."""


CATEGORIES = frozenset(
    {
        "code-execution",
        "process",
        "filesystem",
        "network",
        "import-machinery",
        "deserialization",
        "ffi",
        "introspection",
        "exit",
    }
)
"""Categories a dangerous verdict may carry (plus ``policy`` for user denies)."""

MAX_QUALNAME_DEPTH = 8
"""Attribute paths deeper than this are dangerous: libraries write ``Outer.Inner.method`` at
most, while ``os.path.os.path....os.system`` chains are how a path walks to a gadget."""
MAX_MODULE_DEPTH = 16
"""Module paths deeper than this are unknown without being walked (keeps matching linear)."""

_CACHE_SIZE = 4096
"""Verdicts remembered per policy; real files repeat a few dozen names, hostile ones are bounded."""
_CACHE_KEY_CHARS = 512
"""Longer names are classified without being remembered (the cache stays small)."""

UNKNOWN_SEVERITY = Severity.MEDIUM
"""Severity of an unlisted callable: fails the default ``fail_on = "medium"``."""
POLICY_DENY_SEVERITY = Severity.HIGH
"""Least severity of a callable the user's policy denies."""

# Aliases a pickle can use for the same module, beyond CPython's Python 2 table: private C
# modules whose objects are the public ones, and the per-platform names of os.
_EXTRA_ALIASES: Mapping[str, str] = {
    "exceptions": "builtins",
    "posix": "os",
    "nt": "os",
    "_pickle": "pickle",
    "_operator": "operator",
    "_io": "io",
    "_pyio": "io",
    "_functools": "functools",
    "_collections": "collections",
    "_codecs": "codecs",
    "_socket": "socket",
    "_ssl": "ssl",
    "_signal": "signal",
    "_sqlite3": "sqlite3",
    "_datetime": "datetime",
    "_pydatetime": "datetime",
    "_decimal": "decimal",
    "_pydecimal": "decimal",
}
_MODULE_ALIASES: Mapping[str, str] = {**IMPORT_MAPPING, **_EXTRA_ALIASES}

# Names scripts commonly bind modules to; an attribute path through one of them
# (sklearn.base:np.load) is resolved as the module's.
_MODULE_NICKNAMES: Mapping[str, str] = {
    "np": "numpy",
    "pd": "pandas",
    "sp": "scipy",
    "F": "torch.nn.functional",
    "nn": "torch.nn",
    "tf": "tensorflow",
    "dist": "torch.distributed",
}
_THIRD_PARTY_MODULE_NAMES = frozenset(
    {
        "numpy",
        "scipy",
        "pandas",
        "torch",
        "tensorflow",
        "keras",
        "jax",
        "sklearn",
        "joblib",
        "dill",
        "cloudpickle",
        "yaml",
        "requests",
        "urllib3",
        "httpx",
        "aiohttp",
        "pip",
        "setuptools",
        "pkg_resources",
    }
)
_MODULE_NAMES = (
    frozenset(sys.stdlib_module_names) | _THIRD_PARTY_MODULE_NAMES | set(_MODULE_NICKNAMES)
)


def _is_test_module(module: str) -> bool:
    """Test suites and test helpers shipped inside packages (sklearn.utils._testing...)."""
    for segment in module.split("."):
        bare = segment.lstrip("_")
        if bare.startswith("test") or bare.endswith("testutils") or bare == "conftest":
            return True
    return False


def normalize(module: str, name: str) -> tuple[str, str]:
    """The canonical (module, qualname) of what a pickle's ``module``/``name`` imports.

    Applies CPython's ``fix_imports`` tables (``_compat_pickle.NAME_MAPPING`` then
    ``IMPORT_MAPPING``), then the private and platform aliases (``posix`` → ``os``,
    ``_io`` → ``io``...). Only whole module names are mapped; nothing is matched by substring.
    """
    mapped = NAME_MAPPING.get((module, name))
    if mapped is not None:  # as in pickle: a name mapping replaces the module mapping
        return _EXTRA_ALIASES.get(mapped[0], mapped[0]), mapped[1]
    return _MODULE_ALIASES.get(module, module), name


# ---- patterns -------------------------------------------------------------------------------
class Pattern(Struct, frozen=True):
    """A parsed allow or deny entry, module already normalised."""

    module: str
    """The module (normalised)."""
    qualname: str | None
    """The exact qualname (normalised), or None for the module and all its submodules."""
    text: str
    """The entry as written."""
    also_exact: tuple[str, str] | None = None
    """For a bare dotted module in a deny list: the callable it could also name."""


def _dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


_PLAIN_EXACT = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
"""An ASCII ``module:qualname``: most entries, parsed without the general checks (the
built-in lists hold thousands of them)."""


def parse_pattern(text: str, *, bare_module: bool = True) -> Pattern:
    """Parse ``module:qualname``, ``module:*``, ``module.*`` or (if allowed) bare ``module``.

    Raises :class:`~modelshield.core.errors.ConfigError` for anything else (empty parts,
    wildcards inside names, spaces, several colons).
    """
    if isinstance(text, str) and _PLAIN_EXACT.fullmatch(text) and text.isascii():
        module, _, qualname = text.partition(":")
        module, qualname = normalize(module, qualname)
        return Pattern(module, qualname, text)
    original = text
    if not isinstance(text, str) or not text or text != text.strip():
        raise ConfigError(f"invalid callable pattern {original!r}: empty or padded with spaces")
    if text.count(":") > 1:
        raise ConfigError(f"invalid callable pattern {original!r}: more than one ':'")
    module, sep, qualname = text.partition(":")
    if not sep and module.endswith(".*"):
        module, qualname, sep = module[:-2], "*", ":"
    if not _dotted(module):
        raise ConfigError(
            f"invalid callable pattern {original!r}: {module!r} is not a dotted module name"
        )
    if not sep:
        if not bare_module:
            raise ConfigError(
                f"invalid callable pattern {original!r}: use 'module:qualname' or 'module.*'"
            )
        head, _, last = module.rpartition(".")
        exact = normalize(head, last) if head else None
        return Pattern(normalize(module, "")[0], None, original, exact)
    if qualname == "*":
        return Pattern(normalize(module, "")[0], None, original)
    if not _dotted(qualname):
        raise ConfigError(
            f"invalid callable pattern {original!r}: {qualname!r} is not a (dotted) name or '*'"
        )
    module, qualname = normalize(module, qualname)
    return Pattern(module, qualname, original)


# ---- indexes --------------------------------------------------------------------------------
class _Entry(Struct, frozen=True):
    text: str
    reason: str
    severity: Severity | None
    category: str


class _Index:
    """Exact (module, qualname) entries and package-wide module entries."""

    def __init__(self) -> None:
        self.exact: dict[tuple[str, str], _Entry] = {}
        self.wide: dict[str, _Entry] = {}

    def add(self, pattern: Pattern, entry: _Entry) -> None:
        if pattern.qualname is None:
            self.wide[pattern.module] = entry
        else:
            self.exact[(pattern.module, pattern.qualname)] = entry
        if pattern.also_exact is not None:
            self.exact.setdefault(pattern.also_exact, entry)

    def attribute_of(self, module: str, segments: list[str]) -> _Entry | None:
        """An exact entry for the qualname or for any object it is an attribute of."""
        for end in range(len(segments), 0, -1):
            entry = self.exact.get((module, ".".join(segments[:end])))
            if entry is not None:
                return entry
        return None

    def package_of(self, module: str) -> _Entry | None:
        """The deepest package-wide entry covering the module."""
        for prefix in _prefixes(module):
            entry = self.wide.get(prefix)
            if entry is not None:
                return entry
        return None

    def match(self, module: str, segments: list[str]) -> _Entry | None:
        """Any entry covering the callable (used for deny lists)."""
        return self.attribute_of(module, segments) or self.package_of(module)


def _prefixes(module: str) -> Iterator[str]:
    """``a.b.c``, ``a.b``, ``a``: deepest first."""
    while module:
        yield module
        module = module.rpartition(".")[0]


class _BuiltinLists(Struct, frozen=True):
    safe: _Index
    dangerous: _Index
    refused_names: frozenset[str]
    state_keys: dict[tuple[str, str], tuple[str, ...]]
    """Safe classes whose load executes values of their state: (module, qualname) -> keys."""
    generated: dict[str, str]
    """The generated file's safe entries, ``module:qualname`` -> reason. Kept as parsed (the
    names are canonical already): building thousands of index records would cost every scan."""


COMPILED_DATA = "callables.json"
"""The parsed form of the TOML lists, beside them in ``data/``."""
GENERATED_DATA = "callables_generated.toml"
"""Exact entries written by ``scripts/generate_safe_callables.py`` from the installed
libraries: safe tables, and denied re-exports in tables that carry a ``severity``."""
_TOML_FILES = ("callables_safe.toml", "callables_dangerous.toml", GENERATED_DATA)


def _data_bytes(name: str) -> bytes:
    # A plain file read: importlib.resources imports tempfile, shutil, zipfile and threading,
    # a tenth of a one-file scan's start-up. It is the fallback for installs not on disk.
    from pathlib import Path

    try:
        return (Path(__file__).with_name("data") / name).read_bytes()
    except FileNotFoundError:
        from importlib import resources

        return resources.files("modelshield.scanner").joinpath("data", name).read_bytes()


@functools.cache
def _compiled_tables() -> dict[str, Any]:
    """``{file name: [crc32 of its bytes, parsed tables]}`` from the compiled file, or {}."""
    import json

    try:
        doc = json.loads(_data_bytes(COMPILED_DATA))
    except (OSError, ValueError):
        return {}
    files = doc.get("files") if isinstance(doc, dict) else None
    return files if isinstance(files, dict) else {}


def _load_table_file(name: str) -> dict[str, Any]:
    import zlib

    data = _data_bytes(name)
    compiled = _compiled_tables().get(name)
    if (
        isinstance(compiled, list)
        and len(compiled) == 2
        and compiled[0] == zlib.crc32(data)
        and isinstance(compiled[1], dict)
    ):
        return compiled[1]
    import tomllib  # the TOML changed since callables.json was written

    return tomllib.loads(data.decode("utf-8"))


def compiled_data_text() -> str:
    """The text of ``data/callables.json`` for the TOML lists as they are now."""
    import json
    import tomllib
    import zlib

    files = {}
    for name in _TOML_FILES:
        data = _data_bytes(name)
        files[name] = [zlib.crc32(data), tomllib.loads(data.decode("utf-8"))]
    doc = {
        "about": "Generated from the callables_*.toml files beside it by `make docs`; "
        "edit those, never this file.",
        "files": files,
    }
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _data_error(file: str, where: str, problem: str) -> RuntimeError:
    return RuntimeError(f"built-in list {file}, {where}: {problem}")


def _parse_entries(
    file: str, table_name: str, table: Mapping[str, Any], dangerous: bool
) -> Iterator[tuple[tuple[str, str | None], tuple[str, str] | None, _Entry]]:
    """``(module, qualname or None), callable a bare deny also names, entry`` per entry."""
    allowed = {"about", "entries"} | ({"category", "severity"} if dangerous else {"state-keys"})
    if set(table) - allowed or not isinstance(table.get("about"), str) or "entries" not in table:
        raise _data_error(file, table_name, f"needs exactly {sorted(allowed)}")
    category = str(table.get("category", "safe"))
    severity = Severity.parse(str(table["severity"])) if dangerous else None
    default_label = severity.label if severity is not None else ""
    if dangerous and category not in CATEGORIES:
        raise _data_error(file, table_name, f"unknown category {category!r}")
    shared: dict[str, _Entry] = {}  # safe entries with one reason share one record
    for text, value in dict(table["entries"]).items():
        plain = type(value) is str and value and _PLAIN_EXACT.fullmatch(text) and text.isascii()
        if plain and not dangerous:  # the common case, without building a Pattern
            module, _, qualname = text.partition(":")
            entry = shared.get(value)
            if entry is None:
                entry = shared[value] = _Entry(text, value, None, "safe")
            yield normalize(module, qualname), None, entry
            continue
        reason, entry_severity, entry_category = value, severity, category
        if isinstance(value, dict):
            if not dangerous or set(value) - {"reason", "severity", "category"}:
                raise _data_error(file, f"{table_name}.{text}", "unexpected inline table")
            reason = value.get("reason")
            entry_severity = Severity.parse(str(value.get("severity", default_label)))
            entry_category = str(value.get("category", category))
            if entry_category not in CATEGORIES:
                raise _data_error(file, text, f"unknown category {entry_category!r}")
        if not isinstance(reason, str) or not reason:
            raise _data_error(file, f"{table_name}.{text}", "needs a reason string")
        try:
            pattern = parse_pattern(text, bare_module=False)
        except ConfigError as e:
            raise _data_error(file, table_name, str(e)) from e
        entry = _Entry(text, reason, entry_severity, entry_category)
        yield (pattern.module, pattern.qualname), pattern.also_exact, entry


def _build_index(
    file: str,
    data: Mapping[str, Any],
    dangerous: bool,
    index: _Index | None = None,
    state_keys: dict[tuple[str, str], tuple[str, ...]] | None = None,
) -> _Index:
    """Parse the tables of one file into ``index`` (a new one by default); a safe table's
    ``state-keys`` are recorded in ``state_keys`` for each of its exact entries."""
    index = _Index() if index is None else index
    seen: set[tuple[str, str | None]] = set(index.exact) | {(m, None) for m in index.wide}
    for table_name, table in data.items():
        if table_name == "refused-names":
            continue
        if not isinstance(table, dict):
            raise _data_error(file, table_name, "must be a table")
        keys = _state_keys(file, table_name, table)
        for key, also_exact, entry in _parse_entries(file, table_name, table, dangerous):
            if key in seen:
                listed = f"{key[0]}:{key[1] or '*'}"
                raise _data_error(file, table_name, f"{listed!r} is listed twice")
            seen.add(key)
            module, qualname = key
            if qualname is None:
                index.wide[module] = entry
            else:
                index.exact[(module, qualname)] = entry
                if keys and state_keys is not None:
                    state_keys[(module, qualname)] = keys
            if also_exact is not None:
                index.exact.setdefault(also_exact, entry)
    return index


def _state_keys(file: str, table_name: str, table: Mapping[str, Any]) -> tuple[str, ...]:
    keys = table.get("state-keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise _data_error(file, table_name, "state-keys must be a list of names")
    return tuple(keys)


def _split_generated(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The generated file's safe tables and its denied tables (those with a severity)."""
    safe: dict[str, Any] = {}
    denied: dict[str, Any] = {}
    for name, table in data.items():
        target = denied if isinstance(table, dict) and "severity" in table else safe
        target[name] = table
    return safe, denied


@functools.cache
def _make_lists(generated: bool) -> _BuiltinLists:
    safe_keys: dict[tuple[str, str], tuple[str, ...]] = {}
    safe = _build_index(
        "callables_safe.toml", _load_table_file("callables_safe.toml"), False, None, safe_keys
    )
    dangerous_data = _load_table_file("callables_dangerous.toml")
    dangerous = _build_index("callables_dangerous.toml", dangerous_data, True)
    flat: dict[str, str] = {}
    if generated:
        gen_safe, gen_denied = _split_generated(_load_table_file(GENERATED_DATA))
        for name, table in gen_safe.items():
            if "state-keys" in table:  # a few classes: parsed like the hand-written tables
                _build_index(GENERATED_DATA, {name: table}, False, safe, safe_keys)
            elif isinstance(table, dict) and isinstance(table.get("entries"), dict):
                flat.update(table["entries"])
            else:
                raise _data_error(GENERATED_DATA, name, "needs about and entries")
        _build_index(GENERATED_DATA, gen_denied, True, dangerous)
    overlap = (set(safe.exact) & set(dangerous.exact)) | (set(safe.wide) & set(dangerous.wide))
    if overlap:
        raise _data_error("callables_*.toml", "safe and dangerous", f"both list {sorted(overlap)}")
    refused_table = dangerous_data.get("refused-names", {})
    refused = {str(name) for name in refused_table.get("entries", {})}
    refused |= {qualname.split(".")[0] for _module, qualname in dangerous.exact}
    return _BuiltinLists(safe, dangerous, frozenset(refused), safe_keys, flat)


def _builtin_lists() -> _BuiltinLists:
    """Parse the shipped TOML lists once per process."""
    return _make_lists(True)


def hand_written_lists() -> _BuiltinLists:
    """The lists without the generated file: what ``scripts/generate_safe_callables.py``
    starts from (it must not read its own previous output)."""
    return _make_lists(False)


# ---- the classifier ---------------------------------------------------------------------------
class CallablePolicy:
    """Classifies (module, name) pairs: the built-in lists extended by a user's policy.

    Build it with :meth:`default`; :meth:`classify` is a handful of dict lookups, cheap enough
    for the pickle VM to call on every import.
    """

    def __init__(
        self, lists: _BuiltinLists, allow: Iterable[Pattern] = (), deny: Iterable[Pattern] = ()
    ) -> None:
        """Combine parsed built-in lists with the user's parsed allow and deny patterns."""
        self._lists = lists
        self._deny = _Index()
        for pattern in deny:
            self._deny.add(pattern, _Entry(pattern.text, "denied by policy", None, "policy"))
        self._allow_exact = _Index()
        self._allow_wide = _Index()
        for pattern in allow:
            target = self._allow_wide if pattern.qualname is None else self._allow_exact
            target.add(pattern, _Entry(pattern.text, "allowed by policy", None, "safe"))
        self._has_deny = bool(self._deny.exact or self._deny.wide)
        self._cache: dict[tuple[str, str], Verdict] = {}
        self._checked_keys = frozenset(k for keys in lists.state_keys.values() for k in keys)

    @classmethod
    def default(cls, allow: tuple[str, ...] = (), deny: tuple[str, ...] = ()) -> CallablePolicy:
        """The built-in lists extended by a user's policy (patterns as in policy files).

        Invalid patterns raise :class:`~modelshield.core.errors.ConfigError`. The TOML lists are
        parsed once per process and policies are cached per (allow, deny).
        """
        return _default(tuple(allow), tuple(deny))

    def state_keys(self, module: str, name: str) -> tuple[str, ...]:
        """The state keys a load of this class executes (checked in its BUILD state), or ()."""
        return self._lists.state_keys.get(normalize(module, name), ())

    @property
    def checked_state_keys(self) -> frozenset[str]:
        """Every state key some safe class executes: checked in any object's BUILD state."""
        return self._checked_keys

    def classify(self, module: str, name: str) -> Verdict:
        """Classify the callable a pickle imports as ``module`` / ``name``."""
        if len(module) + len(name) > _CACHE_KEY_CHARS:
            return self._classify(module, name)
        key = (module, name)
        verdict = self._cache.get(key)
        if verdict is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            verdict = self._cache[key] = self._classify(module, name)
        return verdict

    def _classify(self, module: str, name: str) -> Verdict:
        module, name = normalize(module, name)
        if name.count(".") >= MAX_QUALNAME_DEPTH:
            return Verdict(
                module,
                name[:200],
                Tier.DANGEROUS,
                Severity.HIGH,
                "introspection",
                f"an attribute path of {name.count('.') + 1} steps; libraries never write one "
                f"deeper than {MAX_QUALNAME_DEPTH}, attribute chains that walk to a gadget do",
            )
        if module.count(".") >= MAX_MODULE_DEPTH:
            return Verdict(
                module[:200],
                name,
                Tier.UNKNOWN,
                UNKNOWN_SEVERITY,
                "unknown",
                f"a module path of {module.count('.') + 1} levels is not on the allowlist",
            )
        segments = name.split(".")
        lists = self._lists

        denied = self._deny.match(module, segments) if self._has_deny else None
        if denied is not None:
            return self._policy_deny(module, name, segments, denied)
        allowed = self._allow_exact.exact.get((module, name))
        if allowed is not None:
            return Verdict(
                module, name, Tier.SAFE, None, "safe", f"allowed by policy entry {allowed.text!r}"
            )

        entry = lists.safe.exact.get((module, name))
        if entry is not None:
            return _safe(module, name, entry)
        generated = lists.generated.get(f"{module}:{name}")
        if generated is not None:
            return Verdict(module, name, Tier.SAFE, None, "safe", generated)
        entry = lists.dangerous.attribute_of(module, segments)
        if entry is not None:
            return _dangerous(module, name, entry)
        dunder = next((s for s in segments if len(s) > 4 and s[:2] == s[-2:] == "__"), None)
        if dunder is not None:
            return Verdict(
                module,
                name,
                Tier.DANGEROUS,
                Severity.CRITICAL,
                "introspection",
                f"reaches the special attribute {dunder}, which exposes namespaces, globals or "
                "the class hierarchy (eval is one step away)",
            )

        note = ""
        for prefix in _prefixes(module):
            entry = lists.dangerous.wide.get(prefix)
            if entry is not None:
                return _dangerous(module, name, entry)
            entry = lists.safe.wide.get(prefix)
            if entry is not None:
                refusal = self._refusal(module, segments)
                if refusal is None:
                    return _safe(module, name, entry)
                note = f"; the package-wide entry {entry.text!r} does not cover it: {refusal}"

        via = self._through_module_attribute(segments)
        if via is not None:
            return _via(module, name, *via)

        entry = self._allow_wide.package_of(module)
        if entry is not None:
            refusal = self._refusal(module, segments)
            if refusal is None:
                return Verdict(
                    module, name, Tier.SAFE, None, "safe", f"allowed by policy entry {entry.text!r}"
                )
            note = f"; the policy entry {entry.text!r} does not cover it: {refusal}"
        return Verdict(
            module,
            name,
            Tier.UNKNOWN,
            UNKNOWN_SEVERITY,
            "unknown",
            f'not on the allowlist{note}. If you trust it, add "{module}:{name}" to '
            "[callables] allow in your policy file",
        )

    # ---- helpers --------------------------------------------------------------------------
    def _policy_deny(self, module: str, name: str, segments: list[str], entry: _Entry) -> Verdict:
        builtin = self._lists.dangerous.match(module, segments)
        severity = POLICY_DENY_SEVERITY
        category = "policy"
        if builtin is not None and builtin.severity is not None:
            severity = max(severity, builtin.severity)
            category = builtin.category
        return Verdict(
            module,
            name,
            Tier.DANGEROUS,
            severity,
            category,
            f"denied by policy entry {entry.text!r}",
        )

    def _refusal(self, module: str, segments: list[str]) -> str | None:
        """Why a package-wide allow cannot cover this name, or None when it can."""
        if len(segments) > 1:
            return "dotted names need an exact entry"
        name = segments[0]
        if not name.isidentifier():
            return "not a plain name"
        if name in _MODULE_NAMES or name.lstrip("_") in _MODULE_NAMES:
            return f"{name!r} is the name of a module"
        if name in self._lists.refused_names:
            return f"{name!r} is the name of a dangerous callable that modules re-export"
        if _is_test_module(module):
            return "test modules are never covered"
        return None

    def _through_module_attribute(self, segments: list[str]) -> tuple[str, str, _Entry] | None:
        """A denied module or callable reached through a module attribute.

        ``posixpath:os.system`` is os.system (posixpath imports os); ``sklearn.base:np.load``
        is numpy.load; ``somepkg:subprocess`` is the subprocess module object itself.
        """
        dangerous = self._lists.dangerous
        for cut in range(1, len(segments) + 1):
            head = ".".join(segments[:cut])
            head = _MODULE_NICKNAMES.get(head, head)
            if cut == len(segments):
                entry = dangerous.package_of(normalize(head, "")[0])
                if entry is not None:
                    return head, "*", entry
                break
            inner_module, inner_name = normalize(head, ".".join(segments[cut:]))
            entry = dangerous.match(inner_module, inner_name.split("."))
            if entry is not None:
                return inner_module, inner_name, entry
        return None


def _via(module: str, name: str, inner_module: str, inner_name: str, entry: _Entry) -> Verdict:
    target = f"the module {inner_module}" if inner_name == "*" else f"{inner_module}:{inner_name}"
    return Verdict(
        module,
        name,
        Tier.DANGEROUS,
        entry.severity,
        entry.category,
        f"reaches {target} through a module attribute: {entry.reason}",
    )


def _safe(module: str, name: str, entry: _Entry) -> Verdict:
    return Verdict(module, name, Tier.SAFE, None, "safe", entry.reason)


def _dangerous(module: str, name: str, entry: _Entry) -> Verdict:
    reason = entry.reason
    if entry.text != f"{module}:{name}":
        reason = f"{reason} (listed as {entry.text!r})"
    return Verdict(module, name, Tier.DANGEROUS, entry.severity, entry.category, reason)


@functools.lru_cache(maxsize=32)
def _default(allow: tuple[str, ...], deny: tuple[str, ...]) -> CallablePolicy:
    # A bare dotted name in a deny list may mean the module or the callable: deny both. In an
    # allow list it means the module only: allowing more than was written is never done.
    allow_patterns = [
        Pattern(p.module, p.qualname, p.text) for p in (parse_pattern(text) for text in allow)
    ]
    deny_patterns = [parse_pattern(text) for text in deny]
    return CallablePolicy(_builtin_lists(), allow_patterns, deny_patterns)


if __name__ == "__main__":
    sys.stdout.write(compiled_data_text())
