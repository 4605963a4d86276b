"""Jinja templates (chat templates) parsed with Jinja2's own parser, never rendered.

Format handlers call :func:`check_template` on any string that holds a Jinja template: a GGUF
``tokenizer.chat_template``, a ``chat_template`` value in a JSON document, a ``.jinja`` file.
:func:`analyse_template` parses the text into Jinja2's syntax tree (``Environment.parse``: the
lexer and parser only, no compilation, no rendering) and walks it without recursion, looking
for what lets a template out of a sandbox: attribute and item access to Python internals
(``__class__``, ``__globals__``...), names of process, import and evaluation functions,
attributes of Jinja's own globals, names computed from pieces, and template loading statements.
Each issue carries the expression it was found in, rebuilt from the tree, and its line.

A template Jinja2 cannot parse is not rendered by Jinja2 either; its text is still searched for
sandbox-escape names. Templates above ``limits.max_template_bytes`` are searched as text only and
reported as not fully analysed.

Jinja2 is imported the first time a template is met.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from modelshield.core.findings import Location, Severity
from modelshield.core.rules import Rule
from modelshield.scanner.context import ScanContext
from modelshield.scanner.rules import (
    SCAN_LIMIT,
    TEMPLATE_DANGEROUS_NAME,
    TEMPLATE_OBFUSCATED_ACCESS,
    TEMPLATE_SANDBOX_ESCAPE,
    TEMPLATE_UNPARSEABLE,
)

if TYPE_CHECKING:
    from jinja2 import Environment, nodes

#: Attributes of Python objects that lead to code, frames or globals (Jinja's sandbox refuses
#: them, with every other name that starts with an underscore).
INTERNAL_ATTRIBUTES = frozenset(
    {
        "func_globals", "func_code", "func_closure", "func_defaults", "f_globals", "f_locals",
        "f_builtins", "f_back", "f_code", "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame",
        "cr_code", "cr_await", "ag_frame", "ag_code", "ag_await", "tb_frame", "tb_next",
        "co_code", "mro", "im_func", "im_self", "im_class",
    }
)  # fmt: skip

#: Attributes that are dangerous when called (``x.popen('id')``); as plain data fields
#: (``message.system``) they are left alone.
CALLED_METHODS = frozenset(
    {
        "popen", "system", "spawnl", "spawnle", "spawnlp", "spawnv", "spawnve", "spawnvp",
        "execl", "execle", "execlp", "execv", "execve", "execvp", "fork", "forkpty",
        "posix_spawn", "check_output", "check_call", "getoutput", "getstatusoutput", "Popen",
        "import_module", "load_module", "exec_module", "urlopen", "urlretrieve", "eval", "exec",
        "compile", "loads", "b64decode", "load_source",
    }
)  # fmt: skip

#: Attributes that no prompt reads, called or not.
ACCESSED_ATTRIBUTES = frozenset(
    {"environ", "os", "subprocess", "sys", "builtins", "importlib", "pty", "socket", "shutil",
     "ctypes", "posix", "nt", "modules"}
)  # fmt: skip

#: Variables that name modules or functions no template is given by a chat renderer.
DANGEROUS_VARIABLES = frozenset(
    {
        "os", "sys", "subprocess", "builtins", "importlib", "eval", "exec", "compile", "open",
        "getattr", "setattr", "delattr", "globals", "locals", "vars", "breakpoint", "input",
        "pty", "socket", "shutil", "ctypes", "pickle", "marshal", "posix", "nt", "chr", "ord",
    }
)  # fmt: skip

#: Jinja's default globals (and renderer helpers): callables and classes whose attributes
#: lead to module globals (``cycler.__init__.__globals__``). Calling them is fine.
JINJA_GLOBALS = frozenset({"cycler", "joiner", "lipsum", "namespace", "range", "dict", "self"})

#: Dunder names that payloads use; a string constant naming one is suspicious anywhere.
PAYLOAD_DUNDERS = frozenset(
    {
        "__class__", "__mro__", "__base__", "__bases__", "__subclasses__", "__globals__",
        "__builtins__", "__import__", "__init__", "__getattribute__", "__dict__", "__code__",
        "__closure__", "__reduce__", "__reduce_ex__", "__loader__", "__spec__", "__self__",
        "__func__", "__getitem__", "__call__", "__new__", "__module__", "__subclasshook__",
        "__qualname__", "__name__",
    }
)  # fmt: skip

#: Filters whose argument (or ``attribute=``) names attributes to read, dotted paths allowed.
_ATTRIBUTE_FILTERS = frozenset(
    {"selectattr", "rejectattr", "map", "sort", "groupby", "sum", "min", "max", "unique"}
)
#: Filters whose first positional argument is an attribute name (``map``'s is a filter name).
_POSITIONAL_ATTRIBUTE = frozenset({"selectattr", "rejectattr", "groupby"})

_DUNDER = re.compile(r"__[A-Za-z]\w*?__")
_FORMAT_FIELD_ACCESS = re.compile(r"\{[^{}]*?(?:\.|\[)\s*_[^{}]*\}")
#: Pieces that give away a name being built to hide it.
_SUSPICIOUS_PIECES = re.compile(
    r"__|class|glob|subcl|builtin|import|mro|bases?\b|init|popen|system|eval|exec", re.I
)
#: Pieces that, put together in a variable used as a key, give a hidden name away.
_HIDDEN_NAME = re.compile(r"__|class|glob|subcl|builtin|mro\b|import")
#: String pieces and variables followed when looking for a hidden name.
_MAX_PIECES = 64
#: Text search used when the template cannot be parsed (or is too large to be).
_TEXT_DANGER = re.compile(
    r"__(?:class|mro|bases?|subclasses|globals|builtins|import|init|getattribute|dict|code|"
    r"reduce(?:_ex)?|loader|spec|self|func)__|\b(?:func_globals|f_globals|gi_frame|popen|"
    r"subprocess|check_output|os\.system)\b|\\x5f\\x5f|\\u005f\\u005f"
)
#: Folded strings longer than this are not built (``'_' * 10**9`` costs nothing).
_MAX_FOLD = 256
#: Nesting followed when folding (``'a' + 'b' + ...`` chains nest one level per operator).
_MAX_FOLD_DEPTH = 32
#: Characters of an expression shown as evidence.
_MAX_EXPRESSION = 300
_MAX_SOURCE_DEPTH = 40
#: Distinct names listed per finding.
_MAX_NAMES = 12


class TemplateIssue(Struct, frozen=True):
    """One thing a template does that a chat template never needs."""

    rule: Rule
    """The rule it is reported under."""
    severity: Severity
    """Its severity before any cap."""
    expression: str
    """The expression it was found in, rebuilt from the syntax tree (truncated)."""
    line: int
    """Line of the template the expression starts on."""
    names: tuple[str, ...]
    """The offending names."""
    detail: str
    """What the expression does, for a person."""


class TemplateAnalysis(Struct, frozen=True):
    """What :func:`analyse_template` found."""

    parsed: bool
    """Whether Jinja2 parsed the whole template (False: searched as text only)."""
    problem: str = ""
    """Why it was not parsed: the parser's error, or the size limit."""
    too_large: bool = False
    """Not parsed because of ``limits.max_template_bytes``."""
    issues: tuple[TemplateIssue, ...] = ()
    """Issues, in template order."""
    text_hits: tuple[str, ...] = ()
    """Sandbox-escape names found by text search in a template that was not parsed."""


def looks_like_template(text: str) -> bool:
    """Whether a string holds Jinja expression or statement delimiters."""
    return ("{{" in text and "}}" in text) or ("{%" in text and "%}" in text)


# ---- the parser ------------------------------------------------------------------------------


@functools.cache
def _environment() -> Environment:
    """A Jinja2 environment that parses what chat renderers accept (never used to render)."""
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension

    class _Generation(Extension):
        """``{% generation %}...{% endgeneration %}`` (transformers' assistant-mask tag)."""

        tags = {"generation"}  # noqa: RUF012 - Jinja's own class attribute

        def parse(self, parser: Any) -> nodes.Node:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    return jinja2.Environment(
        extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _Generation],
        autoescape=False,
    )


def analyse_template(text: str, *, max_bytes: int) -> TemplateAnalysis:
    """Parse ``text`` as a Jinja template and list its sandbox-escape issues."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        return TemplateAnalysis(
            parsed=False,
            problem=f"the template has {size} bytes, above limits.max_template_bytes ({max_bytes})",
            too_large=True,
            text_hits=_text_hits(text),
        )
    import jinja2

    try:
        tree = _environment().parse(text)
    except jinja2.TemplateSyntaxError as e:
        return TemplateAnalysis(
            parsed=False, problem=f"line {e.lineno}: {e.message}", text_hits=_text_hits(text)
        )
    except RecursionError:
        return TemplateAnalysis(
            parsed=False,
            problem="expressions nested too deeply for the parser",
            text_hits=_text_hits(text),
        )
    return TemplateAnalysis(parsed=True, issues=tuple(_Analyser(tree).run()))


def _text_hits(text: str) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for match in _TEXT_DANGER.finditer(text):
        found[match.group(0)] = None
        if len(found) >= _MAX_NAMES:
            break
    return tuple(found)


# ---- the analysis ----------------------------------------------------------------------------


class _Analyser:
    """One pass over a parsed template."""

    def __init__(self, tree: nodes.Template) -> None:
        from jinja2 import nodes

        self._nodes = nodes
        self._tree = tree
        self._stored: set[str] = set()
        self._constants: dict[str, str | None] = {}
        # Issues per expression root: (rule id, root id) -> [issue pieces].
        self._found: dict[tuple[str, int], _Pending] = {}
        self._fold_depth = 0
        # Expressions assigned to each variable ("name") and namespace attribute (".attr").
        self._sources: dict[str, list[nodes.Node]] = {}
        # Names that are called (``namespace(...)``), by node identity.
        self._called: set[int] = set()

    def run(self) -> Iterator[TemplateIssue]:
        """Walk the tree; yield one issue per rule and root expression."""
        self._collect_assignments()
        for node, root in _walk(self._tree, self._nodes):
            self._check(node, root)
        for pending in self._found.values():
            yield pending.issue()

    # ---- what the template defines itself --------------------------------------------
    def _collect_assignments(self) -> None:
        n = self._nodes
        for node, _ in _walk(self._tree, n):
            if isinstance(node, n.Name) and node.ctx in ("store", "param"):
                self._stored.add(node.name)
            elif isinstance(node, n.Call) and isinstance(node.node, n.Name):
                self._called.add(id(node.node))
            elif isinstance(node, n.For) and isinstance(node.target, n.Name):
                self._sources.setdefault(node.target.name, []).append(node.iter)
            elif isinstance(node, n.Assign) and isinstance(node.target, n.NSRef):
                self._sources.setdefault("." + node.target.attr, []).append(node.node)
            elif isinstance(node, n.Assign) and isinstance(node.target, n.Name):
                self._sources.setdefault(node.target.name, []).append(node.node)
                value = self._fold(node.node, set())
                name = node.target.name
                # A name assigned twice with different values is not a constant.
                if name in self._constants and self._constants[name] != value:
                    self._constants[name] = None
                else:
                    self._constants[name] = value
            elif isinstance(node, n.Macro | n.Import | n.FromImport):
                target = getattr(node, "name", None) or getattr(node, "target", None)
                if isinstance(target, str):
                    self._stored.add(target)

    # ---- the checks --------------------------------------------------------------------
    def _check(self, node: nodes.Node, root: nodes.Node) -> None:
        n = self._nodes
        if isinstance(node, n.Getattr):
            self._attribute(node.attr, node, root, how="attribute", called=False)
            base = node.node
            if (
                isinstance(base, n.Name)
                and base.name in JINJA_GLOBALS
                and base.name not in self._stored
            ):
                self._add(
                    TEMPLATE_DANGEROUS_NAME,
                    Severity.HIGH,
                    root,
                    base.name,
                    "reads an attribute of one of Jinja's own globals, whose functions lead to "
                    "module globals",
                )
        elif isinstance(node, n.NSRef):
            # {% set ns.attr = ... %} writes an attribute.
            self._attribute(node.attr, node, root, how="assignment", called=False)
        elif isinstance(node, n.Getitem):
            self._subscript(node, root)
        elif isinstance(node, n.Call):
            self._call(node, root)
        elif isinstance(node, n.Filter):
            self._filter(node, root)
        elif isinstance(node, n.Name):
            if (
                node.ctx == "load"
                and node.name in JINJA_GLOBALS
                and node.name not in self._stored
                and id(node) not in self._called
            ):
                self._add(
                    TEMPLATE_DANGEROUS_NAME,
                    Severity.HIGH,
                    root,
                    node.name,
                    "uses one of Jinja's own globals as a value (its text or attributes lead "
                    "to module globals)",
                )
            if (
                node.ctx == "load"
                and node.name not in self._stored
                and (node.name in DANGEROUS_VARIABLES or _DUNDER.fullmatch(node.name))
            ):
                internal = _DUNDER.fullmatch(node.name) is not None
                self._add(
                    TEMPLATE_SANDBOX_ESCAPE if internal else TEMPLATE_DANGEROUS_NAME,
                    Severity.CRITICAL if internal else Severity.HIGH,
                    root,
                    node.name,
                    "uses a variable named after a Python internal or an OS, import or "
                    "evaluation function",
                )
        elif isinstance(node, n.Const) and isinstance(node.value, str):
            self._constant(node.value, root)
        elif isinstance(node, n.Include | n.Import | n.FromImport | n.Extends):
            self._add(
                TEMPLATE_DANGEROUS_NAME,
                Severity.HIGH,
                root,
                type(node).__name__.lower(),
                "loads another template through the renderer's loader (which may read files)",
            )
        if isinstance(node, _FOLDABLE(n)):
            self._built_name(node, root)

    def _attribute(
        self, name: str, node: nodes.Node, root: nodes.Node, *, how: str, called: bool
    ) -> None:
        """An attribute read by name (``x.name``, ``x|attr('name')``, ``x['name']``...)."""
        verdict = _attribute_verdict(name, called=called)
        if verdict is None:
            return
        severity, rule, why = verdict
        built = "built from pieces" in how
        self._add(
            rule, severity, root, name, f"{why} through a name built from pieces" if built else why
        )

    def _subscript(self, node: nodes.Getitem, root: nodes.Node) -> None:
        n = self._nodes
        arg = node.arg
        if isinstance(arg, n.Const):
            if isinstance(arg.value, str) and (
                _DUNDER.fullmatch(arg.value) or arg.value in INTERNAL_ATTRIBUTES
            ):
                # Jinja's getitem falls back to getattr: x['__class__'] is x.__class__.
                self._attribute(arg.value, node, root, how="subscript", called=False)
            return
        if isinstance(arg, n.Name | n.Getattr | n.Slice) or (
            isinstance(arg, n.Getitem) and isinstance(arg.arg, n.Const)
        ):
            # messages[i], message[key], tool['function'][name]: plain indexing, unless the
            # variable was assembled from pieces of an internal name (in a loop, in a
            # namespace attribute).
            joined = "".join(self._pieces(arg))
            if _HIDDEN_NAME.search(joined):
                self._add(
                    TEMPLATE_OBFUSCATED_ACCESS,
                    Severity.HIGH,
                    root,
                    repr(joined[:64]),
                    "indexes with a variable assembled from pieces of an internal name",
                )
            return
        self._computed_name(arg, node, root, "subscript")

    def _call(self, node: nodes.Call, root: nodes.Node) -> None:
        n = self._nodes
        target = node.node
        if (
            isinstance(target, n.Getattr)
            and target.attr in ("format", "format_map")
            and self._fold(target.node, set()) is None
        ):
            # str.format reads the attributes its fields name ('{0.__class__}'): a format
            # string computed at render time (message content, a variable) can reach them.
            self._add(
                TEMPLATE_OBFUSCATED_ACCESS,
                Severity.HIGH,
                root,
                f".{target.attr}()",
                "calls str.format on a string computed when the template renders, whose fields "
                "can read any attribute",
            )
        if isinstance(target, n.Getattr):
            verdict = _attribute_verdict(target.attr, called=True)
            if verdict is not None and target.attr in CALLED_METHODS:
                severity, rule, why = verdict
                self._add(rule, severity, root, target.attr, why)

    def _filter(self, node: nodes.Filter, root: nodes.Node) -> None:
        n = self._nodes
        if node.name == "format" and node.node is not None:
            text = self._fold(node.node, set())
            if text is not None and "%c" in text and self._fold(node, set()) is None:
                self._add(
                    TEMPLATE_OBFUSCATED_ACCESS,
                    Severity.HIGH,
                    root,
                    repr(text[:64]),
                    "turns computed character codes into text ('%c'), the way hidden names "
                    "are spelled",
                )
        if node.name == "attr":
            if not node.args:
                return
            arg = node.args[0]
            if isinstance(arg, n.Const) and isinstance(arg.value, str):
                self._attribute(arg.value, node, root, how="|attr filter", called=False)
            else:
                self._computed_name(arg, node, root, "|attr filter", always=True)
        elif node.name in _ATTRIBUTE_FILTERS:
            candidates = [kw.value for kw in node.kwargs if kw.key == "attribute"]
            if node.name in _POSITIONAL_ATTRIBUTE and node.args:
                candidates.append(node.args[0])
            first = node.args[0] if node.args else None
            if node.name == "map" and isinstance(first, n.Const) and first.value == "attr":
                # map('attr', name) applies the attr filter to every item.
                candidates += node.args[1:2]
            for arg in candidates:
                if isinstance(arg, n.Const) and isinstance(arg.value, str):
                    for part in arg.value.split("."):
                        self._attribute(part, node, root, how=f"|{node.name} filter", called=False)
                else:
                    self._computed_name(arg, node, root, f"|{node.name} filter", always=True)

    def _computed_name(
        self, arg: nodes.Node, node: nodes.Node, root: nodes.Node, how: str, *, always: bool = False
    ) -> None:
        """A name computed at render time: resolve it if it is built from constants."""
        folded = self._fold(arg, set())
        if folded is not None:
            for part in folded.split(".") if "filter" in how else (folded,):
                self._attribute(part, node, root, how=f"{how}, built from pieces", called=False)
            return
        pieces = [p for p in self._pieces(arg) if _SUSPICIOUS_PIECES.search(p)]
        if always or pieces:
            for shown in [repr(p) for p in pieces[:_MAX_NAMES]] or ["a computed name"]:
                self._add(
                    TEMPLATE_OBFUSCATED_ACCESS,
                    Severity.HIGH,
                    root,
                    shown,
                    f"reads an attribute whose name is computed when the template renders ({how})",
                )

    def _constant(self, value: str, root: nodes.Node) -> None:
        if _FORMAT_FIELD_ACCESS.search(value) and _DUNDER.search(value):
            self._add(
                TEMPLATE_SANDBOX_ESCAPE,
                Severity.CRITICAL,
                root,
                _DUNDER.search(value).group(0),  # type: ignore[union-attr]
                "holds a str.format field that reads Python internals",
            )
            return
        for match in _DUNDER.finditer(value):
            if match.group(0) in PAYLOAD_DUNDERS:
                self._add(
                    TEMPLATE_DANGEROUS_NAME,
                    Severity.HIGH,
                    root,
                    match.group(0),
                    "holds a string constant naming a Python internal",
                )
                return

    def _built_name(self, node: nodes.Node, root: nodes.Node) -> None:
        """A string built from pieces (``'__cla' ~ 'ss__'``) that names an internal."""
        folded = self._fold(node, set())
        if folded is None or isinstance(node, self._nodes.Const):
            return
        names = {m.group(0) for m in _DUNDER.finditer(folded) if m.group(0) in PAYLOAD_DUNDERS}
        names |= {p for p in re.split(r"[^\w]+", folded) if p in INTERNAL_ATTRIBUTES}
        for name in sorted(names):
            self._add(
                TEMPLATE_OBFUSCATED_ACCESS,
                Severity.HIGH,
                root,
                name,
                "builds the name of a Python internal from pieces",
            )
        if names and _FORMAT_FIELD_ACCESS.search(folded):
            self._add(
                TEMPLATE_SANDBOX_ESCAPE,
                Severity.CRITICAL,
                root,
                sorted(names)[0],
                "builds a str.format field that reads Python internals",
            )

    # ---- constant folding --------------------------------------------------------------
    def _fold(self, node: nodes.Node, seen: set[str]) -> str | None:
        """The constant string an expression evaluates to, when it is built from constants
        with the operations payloads use to hide names; None otherwise."""
        if self._fold_depth >= _MAX_FOLD_DEPTH:
            return None
        self._fold_depth += 1
        try:
            value = self._fold_node(node, seen)
        finally:
            self._fold_depth -= 1
        if value is not None and len(value) > _MAX_FOLD:
            return None
        return value

    def _fold_node(self, node: nodes.Node, seen: set[str]) -> str | None:
        n = self._nodes
        value: str | None = None
        if isinstance(node, n.Const):
            value = node.value if isinstance(node.value, str) else None
        elif isinstance(node, n.Name) and node.name in self._constants and node.name not in seen:
            value = self._fold_name(node.name, seen)
        elif isinstance(node, n.Concat):
            parts = [self._fold(child, seen) for child in node.nodes]
            value = None if None in parts else "".join(p for p in parts if p is not None)
        elif isinstance(node, n.Add):
            left, right = self._fold(node.left, seen), self._fold(node.right, seen)
            value = left + right if left is not None and right is not None else None
        elif isinstance(node, n.Mul):
            value = self._fold_mul(node, seen)
        elif isinstance(node, n.Mod):
            fmt = self._fold(node.left, seen)
            args = self._fold_args(node.right, seen)
            value = _printf(fmt, args) if fmt is not None and args is not None else None
        elif isinstance(node, n.Filter):
            value = self._fold_filter(node, seen)
        elif isinstance(node, n.Call):
            value = self._fold_call(node, seen)
        elif isinstance(node, n.Getitem):
            value = self._fold_slice(node, seen)
        return value

    def _fold_name(self, name: str, seen: set[str]) -> str | None:
        seen.add(name)
        return self._constants.get(name)

    def _fold_mul(self, node: nodes.Mul, seen: set[str]) -> str | None:
        n = self._nodes
        text = self._fold(node.left, seen)
        count = node.right.value if isinstance(node.right, n.Const) else None
        if text is None or not isinstance(count, int) or not 0 <= count * len(text) <= _MAX_FOLD:
            return None
        return text * count

    def _fold_args(self, node: nodes.Node, seen: set[str]) -> list[str | int] | None:
        n = self._nodes
        items = node.items if isinstance(node, n.Tuple | n.List) else [node]
        out: list[str | int] = []
        for item in items:
            if isinstance(item, n.Const) and isinstance(item.value, int):
                out.append(item.value)
                continue
            folded = self._fold(item, seen)
            if folded is None:
                return None
            out.append(folded)
        return out

    def _fold_filter(self, node: nodes.Filter, seen: set[str]) -> str | None:
        n = self._nodes
        if node.node is None:
            return None
        name = node.name
        if name == "join":
            items = self._fold_args(node.node, seen)
            sep = self._fold(node.args[0], seen) if node.args else ""
            if items is None or sep is None or not all(isinstance(i, str) for i in items):
                return None
            return sep.join(str(i) for i in items)
        text = self._fold(node.node, seen)
        if text is None:
            return None
        if name in ("lower", "upper", "trim", "string", "capitalize", "title"):
            return {
                "lower": text.lower,
                "upper": text.upper,
                "trim": text.strip,
                "string": lambda: text,
                "capitalize": text.capitalize,
                "title": text.title,
            }[name]()
        if name == "reverse":
            return text[::-1]
        if name == "format":
            args = self._fold_args(n.Tuple(list(node.args), "load"), seen)
            return _printf(text, args) if args is not None else None
        if name == "replace" and len(node.args) >= 2:
            return self._fold_replace(text, node.args[0], node.args[1], seen)
        return None

    def _fold_replace(
        self, text: str, old_node: nodes.Node, new_node: nodes.Node, seen: set[str]
    ) -> str | None:
        old, new = self._fold(old_node, seen), self._fold(new_node, seen)
        if old is None or new is None or not old:
            return None
        if text.count(old) * max(len(new), 1) > _MAX_FOLD:
            return None
        return text.replace(old, new)

    def _fold_call(self, node: nodes.Call, seen: set[str]) -> str | None:
        n = self._nodes
        target = node.node
        if isinstance(target, n.Name) and target.name == "chr" and len(node.args) == 1:
            arg = node.args[0]
            if (
                isinstance(arg, n.Const)
                and isinstance(arg.value, int)
                and 0 <= arg.value < 0x110000
            ):
                return chr(arg.value)
            return None
        if not isinstance(target, n.Getattr):
            return None
        base = self._fold(target.node, seen)
        if base is None:
            return None
        if target.attr == "join" and len(node.args) == 1:
            items = self._fold_args(node.args[0], seen)
            if items is None or not all(isinstance(i, str) for i in items):
                return None
            return base.join(str(i) for i in items)
        if target.attr == "format":
            args = self._fold_args(n.Tuple(list(node.args), "load"), seen)
            return _brace_format(base, args) if args is not None else None
        if target.attr in ("lower", "upper", "strip") and not node.args:
            return {"lower": base.lower, "upper": base.upper, "strip": base.strip}[target.attr]()
        if target.attr == "replace" and len(node.args) == 2:
            return self._fold_replace(base, node.args[0], node.args[1], seen)
        return None

    def _fold_slice(self, node: nodes.Getitem, seen: set[str]) -> str | None:
        n = self._nodes
        if not isinstance(node.arg, n.Slice):
            return None
        text = self._fold(node.node, seen)
        parts = [node.arg.start, node.arg.stop, node.arg.step]
        values: list[int | None] = []
        for part in parts:
            if part is None:
                values.append(None)
            elif isinstance(part, n.Const) and isinstance(part.value, int):
                values.append(part.value)
            elif isinstance(part, n.Neg) and isinstance(part.node, n.Const):
                inner = part.node.value
                values.append(-inner if isinstance(inner, int) else None)
            else:
                return None
        if text is None or values[2] == 0:
            return None
        return text[values[0] : values[1] : values[2]]

    def _pieces(self, node: nodes.Node) -> list[str]:
        """The string constants an expression may be built from: its own, and those of the
        expressions assigned to the variables and namespace attributes it reads (bounded)."""
        n = self._nodes
        found: list[str] = []
        pending: list[nodes.Node] = [node]
        followed: set[str] = set()
        while pending and len(found) < _MAX_PIECES:
            for child, _ in _walk(pending.pop(), n):
                key = None
                if isinstance(child, n.Const) and isinstance(child.value, str):
                    found.append(child.value[:64])
                elif isinstance(child, n.Name) and child.ctx == "load":
                    key = child.name
                elif isinstance(child, n.Getattr) and isinstance(child.node, n.Name):
                    key = "." + child.attr
                if key is not None and key not in followed and len(followed) < _MAX_PIECES:
                    followed.add(key)
                    pending.extend(self._sources.get(key, ()))
                if len(found) >= _MAX_PIECES:
                    break
        return found

    # ---- recording ---------------------------------------------------------------------
    def _add(self, rule: Rule, severity: Severity, root: nodes.Node, name: str, why: str) -> None:
        key = (rule.id, id(root))
        pending = self._found.get(key)
        if pending is None:
            pending = self._found[key] = _Pending(rule, root, self._nodes)
        pending.add(severity, name, why)


def _attribute_verdict(name: str, *, called: bool) -> tuple[Severity, Rule, str] | None:
    """How bad reading attribute ``name`` is (None: harmless)."""
    if _DUNDER.fullmatch(name) or name in INTERNAL_ATTRIBUTES:
        return Severity.CRITICAL, TEMPLATE_SANDBOX_ESCAPE, "reaches Python internals"
    if name.startswith("_"):
        return Severity.HIGH, TEMPLATE_SANDBOX_ESCAPE, "reads a private attribute"
    if name in ACCESSED_ATTRIBUTES or (called and name in CALLED_METHODS):
        return (
            Severity.HIGH,
            TEMPLATE_DANGEROUS_NAME,
            "reaches an OS, import or evaluation function",
        )
    return None


def _printf(fmt: str, args: list[str | int] | None) -> str | None:
    """``fmt % args`` for ``%s``, ``%c``, ``%d`` and ``%%`` only (no widths: no memory bombs)."""
    if args is None:
        return None
    out: list[str] = []
    pending = list(args)
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        spec = fmt[i + 1 : i + 2]
        if spec == "%":
            out.append("%")
        elif spec in ("s", "c", "d") and pending:
            value = pending.pop(0)
            if spec == "c" and isinstance(value, int):
                if not 0 <= value < 0x110000:
                    return None
                out.append(chr(value))
            else:
                out.append(str(value))
        else:
            return None
        i += 2
    return "".join(out)


class _NoFold(Exception):
    pass


def _brace_format(fmt: str, args: list[str | int]) -> str | None:
    """``fmt.format(*args)`` for bare ``{}`` and ``{N}`` fields only."""
    if re.search(r"[{}]", re.sub(r"\{\d*\}", "", fmt)):
        return None
    counter = 0

    def field(match: re.Match[str]) -> str:
        nonlocal counter
        index = int(match.group(1)) if match.group(1) else counter
        counter += 1
        if index >= len(args):
            raise _NoFold
        return str(args[index])

    try:
        return re.sub(r"\{(\d*)\}", field, fmt)
    except _NoFold:
        return None


@functools.cache
def _FOLDABLE(n: Any) -> tuple[type, ...]:
    """Node types that build strings from pieces."""
    return (n.Concat, n.Add, n.Mod, n.Mul, n.Filter, n.Call)


def _walk(root: nodes.Node, n: Any) -> Iterator[tuple[nodes.Node, nodes.Node]]:
    """Every node under ``root`` in document order, with the outermost expression holding it
    (statements are their own roots). Iterative: a 200,000-deep chain costs no stack."""
    stack: list[tuple[nodes.Node, nodes.Node | None]] = [(root, None)]
    while stack:
        node, expr_root = stack.pop()
        if expr_root is None and isinstance(node, n.Expr):
            expr_root = node
        yield node, expr_root if expr_root is not None else node
        children = list(node.iter_child_nodes())
        stack.extend((child, expr_root) for child in reversed(children))


class _Pending:
    """Issues of one rule found in one root expression."""

    def __init__(self, rule: Rule, root: nodes.Node, n: Any) -> None:
        self.rule = rule
        self.root = root
        self.n = n
        self.severity = Severity.INFO
        self.names: dict[str, None] = {}
        self.reasons: dict[str, None] = {}

    def add(self, severity: Severity, name: str, why: str) -> None:
        self.severity = max(self.severity, severity)
        if len(self.names) < _MAX_NAMES:
            self.names[name] = None
        if len(self.reasons) < 4:
            self.reasons[why] = None

    def issue(self) -> TemplateIssue:
        return TemplateIssue(
            rule=self.rule,
            severity=self.severity,
            expression=_truncate(_source(self.root, self.n, 0)),
            line=getattr(self.root, "lineno", 0) or 0,
            names=tuple(self.names),
            detail="; ".join(self.reasons),
        )


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_EXPRESSION else text[: _MAX_EXPRESSION - 1] + "…"


_COMPARE = {"eq": "==", "ne": "!=", "gt": ">", "gteq": ">=", "lt": "<", "lteq": "<="}
_COMPARE |= {"notin": "not in"}


def _source(node: Any, n: Any, depth: int) -> str:
    """Jinja source for an expression, rebuilt from the tree (bounded in depth)."""
    if depth > _MAX_SOURCE_DEPTH:
        return "…"
    d = depth + 1
    if isinstance(node, n.Const):
        return repr(node.value)
    if isinstance(node, n.Name):
        return str(node.name)
    if isinstance(node, n.Getattr):
        return f"{_source(node.node, n, d)}.{node.attr}"
    if isinstance(node, n.Getitem):
        return f"{_source(node.node, n, d)}[{_source(node.arg, n, d)}]"
    if isinstance(node, n.Slice):
        parts = [_source(p, n, d) if p is not None else "" for p in (node.start, node.stop)]
        step = f":{_source(node.step, n, d)}" if node.step is not None else ""
        return f"{parts[0]}:{parts[1]}{step}"
    if isinstance(node, n.Call):
        return f"{_source(node.node, n, d)}({_arguments(node, n, d)})"
    if isinstance(node, n.Filter):
        base = _source(node.node, n, d) if node.node is not None else ""
        args = f"({_arguments(node, n, d)})" if node.args or node.kwargs else ""
        return f"{base}|{node.name}{args}"
    if isinstance(node, n.Test):
        args = f"({_arguments(node, n, d)})" if node.args or node.kwargs else ""
        return f"{_source(node.node, n, d)} is {node.name}{args}"
    if isinstance(node, n.Concat):
        return " ~ ".join(_source(c, n, d) for c in node.nodes[:16])
    if isinstance(node, n.BinExpr):
        return f"{_source(node.left, n, d)} {node.operator} {_source(node.right, n, d)}"
    if isinstance(node, n.UnaryExpr):
        return f"{node.operator} {_source(node.node, n, d)}"
    if isinstance(node, n.Compare):
        ops = " ".join(
            f"{_COMPARE.get(op.op, op.op)} {_source(op.expr, n, d)}" for op in node.ops[:8]
        )
        return f"{_source(node.expr, n, d)} {ops}"
    if isinstance(node, n.List):
        return "[" + ", ".join(_source(i, n, d) for i in node.items[:16]) + "]"
    if isinstance(node, n.Tuple):
        return "(" + ", ".join(_source(i, n, d) for i in node.items[:16]) + ")"
    if isinstance(node, n.Dict):
        items = (f"{_source(p.key, n, d)}: {_source(p.value, n, d)}" for p in node.items[:16])
        return "{" + ", ".join(items) + "}"
    if isinstance(node, n.CondExpr):
        other = f" else {_source(node.expr2, n, d)}" if node.expr2 is not None else ""
        return f"{_source(node.expr1, n, d)} if {_source(node.test, n, d)}{other}"
    if isinstance(node, n.For):
        return f"for {_source(node.target, n, d)} in {_source(node.iter, n, d)}"
    if isinstance(node, n.Include | n.Import | n.FromImport | n.Extends):
        return f"{type(node).__name__.lower()} {_source(node.template, n, d)}"
    return type(node).__name__


def _arguments(node: Any, n: Any, depth: int) -> str:
    parts = [_source(a, n, depth) for a in node.args[:16]]
    parts += [f"{kw.key}={_source(kw.value, n, depth)}" for kw in node.kwargs[:16]]
    return ", ".join(parts)


# ---- reporting -------------------------------------------------------------------------------


def check_template(
    ctx: ScanContext,
    text: str,
    location: Location,
    *,
    rendered: bool,
    where: str,
    quiet: bool = False,
) -> None:
    """Analyse one template and report what it does.

    ``rendered`` says that a known loader renders the string as a chat template (GGUF
    ``tokenizer.chat_template*``, a ``chat_template`` key, a template file); otherwise findings
    are capped at medium. ``where`` names where the template was found, for messages. With
    ``quiet``, text that Jinja2 cannot parse and that holds no sandbox-escape names is not
    reported (a text file that merely contains ``{{`` is no template).
    """
    ctx.check_deadline(location)
    analysis = analyse_template(text, max_bytes=ctx.limits.max_template_bytes)
    cap = None if rendered else Severity.MEDIUM
    stored = "" if rendered else " No known loader renders a template stored there."
    for issue in analysis.issues:
        severity = min(issue.severity, cap) if cap is not None else issue.severity
        ctx.add(
            issue.rule.finding(
                location,
                f"The Jinja template in {where} {issue.detail}: {issue.expression} (line "
                f"{issue.line}). A renderer without a sandbox runs what this reaches.{stored}",
                severity=severity,
                evidence={
                    "expression": issue.expression,
                    "line": str(issue.line),
                    "names": ", ".join(issue.names),
                    "template": where,
                },
            )
        )
    if analysis.parsed:
        return
    hits = ", ".join(analysis.text_hits)
    if analysis.too_large:
        ctx.add(
            SCAN_LIMIT.finding(
                location,
                f"The Jinja template in {where} was not parsed: {analysis.problem}; it was only "
                "searched as text"
                + (f" and holds sandbox-escape names ({hits})" if hits else "")
                + ". Raise limits.max_template_bytes to parse it.",
                evidence={"limit": "max_template_bytes", "template": where},
            )
        )
        if hits:
            ctx.add(
                TEMPLATE_SANDBOX_ESCAPE.finding(
                    location,
                    f"The Jinja template in {where}, too large to parse, holds sandbox-escape "
                    f"names: {hits}.{stored}",
                    severity=Severity.HIGH if rendered else Severity.MEDIUM,
                    evidence={"names": hits, "template": where},
                )
            )
        return
    if (rendered and not quiet) or hits:
        ctx.add(
            TEMPLATE_UNPARSEABLE.finding(
                location,
                f"Jinja2 cannot parse the template in {where} ({analysis.problem}), so "
                "Jinja2-based renderers refuse it"
                + (f"; its text holds sandbox-escape names ({hits})" if hits else "")
                + ".",
                severity=Severity.MEDIUM if hits else None,
                evidence={"problem": analysis.problem, "names": hits, "template": where},
            )
        )
