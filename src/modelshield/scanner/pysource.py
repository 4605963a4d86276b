"""Python source read with Python's own parser, never run: what the code reaches for.

Model repositories ship Python that loaders import (``modeling_*.py`` through
``trust_remote_code``, MLflow ``code/``, ``hubconf.py``) and files that run at interpreter
start-up (``.pth``). :func:`analyse_source` parses such source with :func:`ast.parse` (which
compiles nothing and runs nothing), resolves the names the code uses through its imports and
simple assignments (``import os as o``, ``from subprocess import run``, ``s = os.system``,
``getattr(os, "system")``, ``__import__("os")``, ``importlib.import_module("os")``,
``__builtins__["exec"]``) and judges each resolved name:

1. a short table of names that are ordinary in source code although a pickle must never import
   them (``os.path.join``, ``os.environ``, ``importlib.util.find_spec``, ``threading``...), and
   of names that matter in source and are on no pickle list (downloads from the Hugging Face
   Hub, ``torch.hub.load``, loading native libraries into torch);
2. otherwise the callable policy (:mod:`modelshield.scanner.callables`, with the user's
   allow and deny entries): a denied name whose category is running processes or code, the
   network or native code is a *high* reach; deserialisation and dynamic imports are *medium*.

Code handed to ``exec``/``eval``/``compile`` as a literal (or as a literal decoded by
``base64``, ``bytes.fromhex`` or ``codecs``) is analysed in turn, a few levels deep. Long string
constants are returned so that callers can look for hidden pickles in them.

Everything is bounded: the source's size (``limits.max_source_bytes``, checked by callers),
the parser's own nesting limits (a :class:`SyntaxError` or :class:`RecursionError` is a
problem, never a crash), the number of reaches and constants kept.
"""

from __future__ import annotations

import ast
import base64
import binascii
import builtins
import codecs
import re
from collections.abc import Callable

from msgspec import Struct

from modelshield.core.findings import Severity
from modelshield.scanner.callables import CallablePolicy, Tier, Verdict, normalize

#: Categories of reaches that make code dangerous to import (run processes or code, talk to
#: the network, load native code).
HIGH_CATEGORIES = frozenset(
    {"process", "code-execution", "network", "ffi", "code-download", "policy"}
)
#: Categories worth a reviewer's look but ordinary in some model code.
MEDIUM_CATEGORIES = frozenset(
    {
        "deserialization",
        "import-machinery",
        "download",
        "filesystem",
        "remote-code",
        "code-construction",
    }
)

#: Reaches kept per analysis (a hostile file can repeat one call a million times).
MAX_REACHES = 200
#: String constants returned for the hidden-pickle search, and their shortest length.
MAX_CONSTANTS = 1000
MIN_CONSTANT = 64
#: Levels of ``exec(literal)`` followed.
MAX_EXEC_DEPTH = 3
#: Attribute chains longer than this are not resolved.
_MAX_CHAIN = 32

#: Top-level modules (after the callable policy's normalisation: ``posix`` is ``os``) whose
#: names are judged by the callable policy. The pickle lists also deny much that model code
#: calls as a matter of course (``torch.compile``, ``functools.wraps``, ``torch.distributed``):
#: names of other modules count only through the tables below or the user's deny entries.
SYSTEM_MODULES = frozenset(
    {
        "builtins",
        "os",
        "subprocess",
        "pty",
        "socket",
        "ctypes",
        "cffi",
        "shutil",
        "runpy",
        "code",
        "codeop",
        "marshal",
        "pickle",
        "dill",
        "cloudpickle",
        "joblib",
        "shelve",
        "importlib",
        "zipimport",
        "urllib",
        "http",
        "ftplib",
        "smtplib",
        "telnetlib",
        "poplib",
        "imaplib",
        "nntplib",
        "xmlrpc",
        "socketserver",
        "asyncio",
        "webbrowser",
        "requests",
        "httpx",
        "aiohttp",
        "urllib3",
        "paramiko",
        "pexpect",
        "sh",
        "plumbum",
        "commands",
        "popen2",
        "platform",
        "pydoc",
        "types",
        "yaml",
    }
)
#: Names that are ordinary in source code (prefixes of dotted names): the pickle lists deny
#: them, because no pickle needs them, but model code reads paths and environment variables.
_ORDINARY = (
    "os",  # every name of os not in _OS_REACHES: paths, environment, directory listings
    "importlib.util.find_spec",
    "importlib.metadata",
    "importlib.resources",
    "socket.gethostname",
    "socket.getfqdn",
    "importlib.import_module",  # a literal argument is an import; any other is judged below
    "builtins.__import__",  # the same
    "threading",
    "multiprocessing",
    "concurrent.futures",
    "atexit",
    "signal",
    "types",  # building functions and code objects is in _SOURCE_REACHES
    "asyncio",  # its subprocess and network entry points are in _SOURCE_REACHES
    "platform",  # platform.popen is in _SOURCE_REACHES
    "http.HTTPStatus",
    "builtins.help",
    # Writing pickles runs nothing; reading them does.
    "pickle.dump",
    "pickle.dumps",
    "pickle.Pickler",
    "pickle.HIGHEST_PROTOCOL",
    "pickle.DEFAULT_PROTOCOL",
    "dill.dump",
    "dill.dumps",
    "cloudpickle.dump",
    "cloudpickle.dumps",
    "joblib.dump",
)
#: The names of ``os`` that run programs, and those that delete or rewrite files.
_OS_REACHES = re.compile(
    r"os\.(?:(?P<process>system|popen|exec\w*|spawn\w*|fork\w*|posix_spawn\w*|startfile|kill\w*"
    r"|plock|set\w*uid|set\w*gid)|(?P<filesystem>remove\w*|unlink|rmdir|rename\w*|replace"
    r"|chmod|chown|lchown|truncate|symlink|link))(?:\.|$)"
)
#: Names that matter in source and are on no pickle list, with their category.
_SOURCE_REACHES = {
    "huggingface_hub.hf_hub_download": "download",
    "huggingface_hub.snapshot_download": "download",
    "huggingface_hub.file_download.hf_hub_download": "download",
    "transformers.utils.hub.cached_file": "download",
    "transformers.utils.cached_file": "download",
    "torch.hub.load_state_dict_from_url": "download",
    "torch.hub.download_url_to_file": "download",
    "torch.hub.load": "code-download",
    "transformers.dynamic_module_utils.get_class_from_dynamic_module": "code-download",
    "asyncio.create_subprocess_exec": "process",
    "asyncio.create_subprocess_shell": "process",
    "asyncio.open_connection": "network",
    "asyncio.start_server": "network",
    "platform.popen": "process",
    "types.FunctionType": "code-construction",
    "types.LambdaType": "code-construction",
    "types.CodeType": "code-execution",
    "torch.ops.load_library": "ffi",
    "torch.classes.load_library": "ffi",
    "shutil.rmtree": "filesystem",
    "shutil.move": "filesystem",
}
#: Loaders that run no pickle when called with a keyword at a safe value: the name, the
#: keyword, and whether the safe value is ``True`` (else the keyword must be absent or False).
_JUDGED_AT_CALL = {
    "numpy.load": ("allow_pickle", False),
    "torch.load": ("weights_only", True),
}
#: Modules the tables above call ordinary as a whole although some of their names are not:
#: any name of them taken by a computed name (``getattr(os, name)``) counts as the worst.
_COMPUTED = {
    "os": "process",
    "builtins": "code-execution",
    "importlib": "import-machinery",
    "types": "code-construction",
    "asyncio": "process",
    "platform": "process",
}
#: A name standing for "any name of this module" when asking the callable policy.
_ANY = "any_name"
#: Built-in names resolved as ``builtins.<name>`` when the module does not define them.
_BUILTINS = frozenset(dir(builtins))
#: Names through which code reaches the builtins module itself.
_BUILTINS_MODULE = frozenset({"__builtins__", "builtins"})


class Reach(Struct, frozen=True):
    """A name the code uses that can do something a model load should not."""

    name: str
    """The resolved dotted name, e.g. ``os.system``."""
    category: str
    """What it can do: ``process``, ``code-execution``, ``network``, ``ffi``,
    ``code-download``, ``deserialization``, ``import-machinery``, ``download``,
    ``filesystem``."""
    line: int
    """Line of the source where it is used (1-based)."""

    @property
    def severity(self) -> Severity:
        """High for processes, code, network and native code; medium for the rest."""
        return Severity.HIGH if self.category in HIGH_CATEGORIES else Severity.MEDIUM

    def describe(self) -> str:
        """``os.system (line 3)``."""
        return f"{self.name} (line {self.line})"


class SourceFacts(Struct, frozen=True):
    """What one Python source does that matters, as far as its text shows."""

    reaches: tuple[Reach, ...] = ()
    """Dangerous names used, in source order (at most :data:`MAX_REACHES`)."""
    imports: tuple[str, ...] = ()
    """Modules imported by absolute name, sorted."""
    relative_imports: tuple[tuple[int, str], ...] = ()
    """Modules imported relatively, as ``(level, dotted name)``: ``from .utils import x`` is
    ``(1, "utils")``, ``from . import layers`` is ``(1, "layers")``."""
    constants: tuple[str | bytes, ...] = ()
    """String and byte constants of at least :data:`MIN_CONSTANT` characters (at most
    :data:`MAX_CONSTANTS`), for the hidden-pickle search."""
    problem: str | None = None
    """Why the source could not be parsed (then nothing else is set)."""

    @property
    def severity(self) -> Severity | None:
        """The worst reach's severity, or None when the code reaches for nothing."""
        return max((r.severity for r in self.reaches), default=None)

    def summary(self, limit: int = 8) -> str:
        """The reaches for a message, worst first: ``os.system (lines 3, 9), socket.socket
        (line 7)``."""
        lines: dict[str, list[int]] = {}
        for reach in _worst_first(self.reaches):
            lines.setdefault(reach.name, []).append(reach.line)
        parts = [
            f"{name} (line{'s' if len(at) > 1 else ''} {', '.join(map(str, at[:5]))}"
            f"{'...' if len(at) > 5 else ''})"
            for name, at in list(lines.items())[:limit]
        ]
        more = len(lines) - len(parts)
        return ", ".join(parts) + (f" and {more} more" if more > 0 else "")

    def encode(self) -> str:
        """The reaches as one metadata string (``category:name:line`` separated by spaces),
        which :func:`decode_reaches` reads back."""
        return " ".join(f"{r.category}:{r.name}:{r.line}" for r in self.reaches)


def decode_reaches(text: str) -> tuple[Reach, ...]:
    """Reaches from :meth:`SourceFacts.encode` (malformed parts are left out)."""
    out: list[Reach] = []
    for part in text.split():
        category, _, rest = part.partition(":")
        name, _, line = rest.rpartition(":")
        if category and name and line.isdigit():
            out.append(Reach(name, category, int(line)))
    return tuple(out)


def _worst_first(reaches: tuple[Reach, ...]) -> list[Reach]:
    return sorted(reaches, key=lambda r: -r.severity)


def analyse_source(
    source: str | bytes, callables: CallablePolicy, *, filename: str = "<source>"
) -> SourceFacts:
    """Parse ``source`` and report what it reaches for; never raises for bad source."""
    return _Analysis(callables).run(source, filename, depth=0)


def parse(source: str | bytes, filename: str) -> tuple[ast.Module | None, str | None]:
    """The syntax tree of ``source``, or None and why it could not be parsed."""
    try:
        return ast.parse(source, filename=filename), None
    except SyntaxError as e:
        return None, f"not valid Python: {e.msg} (line {e.lineno})"
    except (ValueError, TypeError) as e:  # NUL bytes
        return None, f"not valid Python: {e}"
    except RecursionError:
        return None, "nested too deeply for Python's parser"
    except MemoryError:
        return None, "too large for Python's parser"


class _Analysis:
    """One analysis: resolves names and collects reaches, constants and imports."""

    def __init__(self, callables: CallablePolicy) -> None:
        self.callables = callables
        self.reaches: list[Reach] = []
        self.seen: set[tuple[str, int]] = set()
        self.imports: set[str] = set()
        self.relative: list[tuple[int, str]] = []
        self.constants: list[str | bytes] = []
        self._verdicts: dict[tuple[str, str], Verdict] = {}

    def run(self, source: str | bytes, filename: str, depth: int) -> SourceFacts:
        tree, problem = parse(source, filename)
        if tree is None:
            return SourceFacts(problem=problem)
        self._module(tree, depth, line_offset=0)
        return SourceFacts(
            reaches=tuple(sorted(self.reaches, key=lambda r: (r.line, r.name))),
            imports=tuple(sorted(self.imports)),
            relative_imports=tuple(dict.fromkeys(self.relative)),
            constants=tuple(self.constants),
        )

    # ---- one module -----------------------------------------------------------------------

    def _module(self, tree: ast.Module, depth: int, line_offset: int) -> None:
        nodes = list(ast.walk(tree))
        aliases: dict[str, tuple[str, str]] = {}
        defined: set[str] = set()
        inner: set[int] = set()  # nodes that are the base of a longer chain
        called: set[int] = set()  # nodes that are called
        passed: set[int] = set()  # nodes passed to a call (callbacks: map(os.system, ...))
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                self._import(node, aliases, line_offset)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.arg):
                defined.add(node.arg)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
            if isinstance(node, ast.Attribute | ast.Subscript):
                inner.add(id(node.value))
            elif isinstance(node, ast.Call):
                called.add(id(node.func))
                passed.update(id(a) for a in node.args)
                passed.update(id(k.value) for k in node.keywords)
            elif isinstance(node, ast.Constant) and len(self.constants) < MAX_CONSTANTS:
                value = node.value
                if isinstance(value, str | bytes) and len(value) >= MIN_CONSTANT:
                    self.constants.append(value)
        resolver = _Resolver(aliases, defined - set(aliases))
        # Simple aliases made by assignment (``run = subprocess.run``), twice for chains.
        for _ in range(2):
            for node in nodes:
                if (
                    isinstance(node, ast.Assign)
                    and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)
                ):
                    target = resolver.resolve(node.value)
                    if target is not None:
                        aliases[node.targets[0].id] = target
                        resolver.local.discard(node.targets[0].id)
        for node in nodes:
            line = getattr(node, "lineno", 0) + line_offset
            if isinstance(node, ast.Call):
                self._call(node, resolver, depth, line)
            if id(node) in inner:
                continue
            if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
                if not isinstance(node.ctx, ast.Load):
                    continue
            elif not isinstance(node, ast.Call):
                continue
            # What is called or handed to a call counts; ``except subprocess.CalledProcessError``
            # and ``isinstance(f, types.FunctionType)`` do nothing.
            if _exception_name(node):
                continue
            if id(node) not in called and (id(node) not in passed or _inert_name(node)):
                continue
            target = resolver.resolve(node)
            if target is None or _dotted(target) in _JUDGED_AT_CALL:
                continue
            self._judge(target, line)

    def _import(
        self, node: ast.Import | ast.ImportFrom, aliases: dict[str, tuple[str, str]], offset: int
    ) -> None:
        line = node.lineno + offset
        if isinstance(node, ast.Import):
            for alias in node.names:
                self.imports.add(alias.name)
                if alias.asname:
                    aliases[alias.asname] = (alias.name, "")
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = (top, "")
            return
        module = node.module or ""
        if node.level:
            if module:
                self.relative.append((node.level, module))
            else:
                self.relative.extend((node.level, a.name) for a in node.names if a.name != "*")
            return
        self.imports.add(module)
        for alias in node.names:
            if alias.name == "*":
                # Every name of the module comes into scope: judged as any name of it.
                self._judge((module, ""), line, computed=True, shown=f"{module}.*")
                continue
            aliases[alias.asname or alias.name] = (module, alias.name)

    def _call(self, node: ast.Call, resolver: _Resolver, depth: int, line: int) -> None:
        for given in node.keywords:
            if given.arg == "trust_remote_code" and _is_true(given.value):
                self._add(Reach("trust_remote_code=True", "remote-code", line))
        func = resolver.resolve(node.func)
        if func is None:
            return
        dotted = _dotted(func)
        literal = _literal_text(node.args[0]) if node.args else None
        if dotted in ("builtins.__import__", "importlib.import_module"):
            if isinstance(literal, str):
                self.imports.add(literal)
            else:
                self._add(Reach(dotted, "import-machinery", line))
        elif dotted == "builtins.getattr" and len(node.args) >= 2:
            base = resolver.resolve(node.args[0])
            if base is not None and _literal_text(node.args[1]) is None:
                self._judge(base, line, computed=True)
        elif dotted in ("builtins.exec", "builtins.eval", "builtins.compile"):
            code = _decoded_literal(node.args[0], resolver) if node.args else None
            if code is not None and depth < MAX_EXEC_DEPTH:
                tree, _ = parse(code, "<exec>")
                if tree is not None:
                    self._module(tree, depth + 1, line_offset=line - 1)
        elif dotted in _JUDGED_AT_CALL:
            name, safe_value = _JUDGED_AT_CALL[dotted]
            value = next((k.value for k in node.keywords if k.arg == name), None)
            safe = _is_true(value) if safe_value else (value is None or _is_false(value))
            if not safe:
                self._add(Reach(dotted, "deserialization", line))

    def _judge(
        self, target: tuple[str, str], line: int, *, computed: bool = False, shown: str = ""
    ) -> None:
        """Record ``target`` if it is a dangerous name. ``computed``: ``target`` is a module or
        object whose attribute is taken by a computed name (``getattr(os, name)``), judged as
        any name of it."""
        module, qualname = target
        if not qualname and not computed:
            return  # a module itself: what matters is what is used from it
        dotted = _dotted(target)
        shown = shown or (f"{dotted}.<computed>" if computed else dotted)
        category = _COMPUTED.get(dotted) if computed else None
        category = category or _source_category(dotted)
        if category == "":
            return
        if category is None:
            probe = (module, f"{qualname}.{_ANY}" if qualname else _ANY) if computed else target
            verdict = self._classify(*probe)
            if verdict.tier is not Tier.DANGEROUS:
                return
            if verdict.reason.startswith("denied by policy"):
                category = "policy"  # the user's deny list holds for source too
            elif normalize(*probe)[0].split(".")[0] not in SYSTEM_MODULES:
                return  # the pickle lists deny much that model code calls (torch.compile)
            else:
                category = verdict.category
            if category not in HIGH_CATEGORIES | MEDIUM_CATEGORIES or category == "filesystem":
                return
        self._add(Reach(shown, category, line))

    def _classify(self, module: str, qualname: str) -> Verdict:
        key = (module, qualname)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = self.callables.classify(module, qualname)
        return verdict

    def _add(self, reach: Reach) -> None:
        key = (reach.name, reach.line)
        if key in self.seen or len(self.reaches) >= MAX_REACHES:
            return
        self.seen.add(key)
        self.reaches.append(reach)


class _Resolver:
    """Resolves expressions to ``(module, qualname)`` through a module's imports."""

    def __init__(self, aliases: dict[str, tuple[str, str]], local: set[str]) -> None:
        self.aliases = aliases
        self.local = local

    def resolve(self, node: ast.expr, depth: int = 0) -> tuple[str, str] | None:
        if depth > _MAX_CHAIN:
            return None
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            if node.id in self.local:
                return None
            if node.id in _BUILTINS_MODULE:
                return ("builtins", "")
            if node.id in _BUILTINS:
                return ("builtins", node.id)
            return None
        if isinstance(node, ast.Attribute):
            return self._member(node.value, node.attr, depth)
        if isinstance(node, ast.Subscript):
            key = _literal_text(node.slice)
            if isinstance(key, str) and key.isidentifier():
                return self._member(node.value, key, depth)
            return None
        if isinstance(node, ast.Call):
            func = self.resolve(node.func, depth + 1)
            if func is None or not node.args:
                return None
            dotted = _dotted(func)
            first = _literal_text(node.args[0])
            if dotted == "builtins.__import__" and isinstance(first, str):
                return (first.split(".")[0], "")
            if dotted == "importlib.import_module" and isinstance(first, str):
                return (first, "")
            if dotted == "builtins.getattr" and len(node.args) >= 2:
                name = _literal_text(node.args[1])
                if isinstance(name, str) and name.isidentifier():
                    return self._member(node.args[0], name, depth)
            if dotted in ("builtins.vars", "builtins.globals") and first is None:
                return ("builtins", "") if dotted == "builtins.globals" else None
        return None

    def _member(self, base: ast.expr, attr: str, depth: int) -> tuple[str, str] | None:
        resolved = self.resolve(base, depth + 1)
        if resolved is None:
            return None
        module, qualname = resolved
        return (module, f"{qualname}.{attr}" if qualname else attr)


_CONSTANT_OR_CLASS = re.compile(r"[A-Z][A-Z0-9_]*|\w*(?:Expired|Type)")


def _inert_name(node: ast.expr) -> bool:
    """A name that, handed to a call rather than called, does nothing: a constant
    (``subprocess.PIPE``), an exception or a type (``types.FunctionType``)."""
    last = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return bool(_CONSTANT_OR_CLASS.fullmatch(last))


def _exception_name(node: ast.expr) -> bool:
    """``raise pickle.UnpicklingError(...)`` calls a class that does nothing."""
    last = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return last.endswith(("Error", "Exception", "Warning"))


def _dotted(target: tuple[str, str]) -> str:
    module, qualname = target
    return f"{module}.{qualname}" if qualname else module


def _source_category(dotted: str) -> str | None:
    """The source table's word: a category, ``""`` for ordinary, None when not listed."""
    if dotted.startswith("os."):
        match = _OS_REACHES.match(dotted)
        if match is not None:
            return "process" if match["process"] else "filesystem"
    for name, category in _SOURCE_REACHES.items():
        if dotted == name or dotted.startswith(name + "."):
            return category
    for prefix in _ORDINARY:
        if dotted == prefix or dotted.startswith(prefix + "."):
            return ""
    return None


def _is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _literal_text(node: ast.expr) -> str | bytes | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        return node.value
    return None


def _hex(raw: bytes) -> bytes:
    return bytes.fromhex(raw.decode("latin-1"))


_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "base64.b64decode": base64.b64decode,
    "base64.standard_b64decode": base64.b64decode,
    "base64.urlsafe_b64decode": base64.urlsafe_b64decode,
    "base64.b32decode": base64.b32decode,
    "base64.b16decode": base64.b16decode,
    "base64.a85decode": base64.a85decode,
    "base64.b85decode": base64.b85decode,
    "binascii.a2b_base64": binascii.a2b_base64,
    "binascii.unhexlify": binascii.unhexlify,
    "builtins.bytes.fromhex": _hex,
}


def _decoded_literal(node: ast.expr, resolver: _Resolver, depth: int = 0) -> str | bytes | None:
    """The text of a literal handed to ``exec``, decoded through a few well-known decoders
    (``base64.b64decode("...")``, ``bytes.fromhex``, ``codecs.decode(..., "rot13")``, and
    ``.decode()`` on any of them)."""
    if depth > 4:
        return None
    text = _literal_text(node)
    if text is not None:
        return text
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute | ast.Name):
        return None
    if isinstance(node.func, ast.Attribute) and node.func.attr == "decode" and not node.args:
        inner = _decoded_literal(node.func.value, resolver, depth + 1)
        return inner.decode("utf-8", "replace") if isinstance(inner, bytes) else inner
    func = resolver.resolve(node.func)
    if func is None or not node.args:
        return None
    argument = _decoded_literal(node.args[0], resolver, depth + 1)
    if argument is None:
        return None
    dotted = _dotted(func)
    try:
        if dotted in _DECODERS:
            raw = argument.encode("latin-1") if isinstance(argument, str) else argument
            decoded: bytes = _DECODERS[dotted](raw)
            return decoded
        if dotted == "codecs.decode" and len(node.args) >= 2:
            codec = _literal_text(node.args[1])
            if codec in ("rot13", "rot_13") and isinstance(argument, str):
                return codecs.decode(argument, "rot13")
    except (ValueError, TypeError, LookupError, binascii.Error):
        return None
    return None
