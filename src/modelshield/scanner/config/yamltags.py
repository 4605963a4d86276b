"""YAML tags that make a loader import or call Python: judged by the callable policy.

PyYAML's unsafe constructors (``UnsafeLoader``/``Loader``, ``FullLoader`` in part, ruamel.yaml's
``typ='unsafe'``) match a node's resolved tag against prefixes (``constructor.py``):

``tag:yaml.org,2002:python/object/apply:NAME``
    calls ``NAME`` with the node's arguments (a sequence, or ``args``/``kwds`` and then
    ``state``, ``listitems``, ``dictitems``);
``tag:yaml.org,2002:python/object/new:NAME``
    ``NAME.__new__`` (or a call), with the same arguments;
``tag:yaml.org,2002:python/object:NAME``
    an instance of the class ``NAME`` with the mapping as its state;
``tag:yaml.org,2002:python/name:NAME``
    the function or class itself;
``tag:yaml.org,2002:python/module:NAME``
    the module, imported.

``NAME`` is split at its last dot (``builtins`` when there is none), as ``find_python_name``
does. The plain tags (``python/tuple``, ``python/str``...) build data and are not reported; a
``python/`` tag matching no constructor makes the loader fail and is not reported either.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from modelshield.core.findings import Location, Severity
from modelshield.scanner.callables import Tier
from modelshield.scanner.config.judge import Judgement, judge_dotted, judge_module
from modelshield.scanner.config.yamlnodes import MAPPING, SCALAR, SEQUENCE, Node
from modelshield.scanner.context import ScanContext
from modelshield.scanner.rules import YAML_PYTHON_OBJECT

PYTHON_TAG = "tag:yaml.org,2002:python/"
#: Object-building tag prefixes (after ``python/``) and what the loader does.
OBJECT_TAGS = (
    ("object/apply:", "calls"),
    ("object/new:", "creates (with __new__) and fills"),
    ("object:", "creates an instance of"),
    ("name:", "loads a reference to"),
    ("module:", "imports"),
)
#: Python tags that build plain data (PyYAML's ``FullConstructor`` and ``SafeConstructor``).
PLAIN_TAGS = frozenset(
    {"none", "bool", "str", "unicode", "bytes", "int", "long", "float", "complex", "list",
     "dict", "tuple"}
)  # fmt: skip
#: Text forms of object-building tags, for text that could not be parsed.
TEXT_TAG = re.compile(
    r"(?:!!|tag:yaml\.org,2002:)python/(?:object/apply|object/new|object|name|module):"
    r"([^\s\[\]{},>]*)"
)
_MAX_ARGUMENTS = 200


def object_tag(tag: str) -> tuple[str, str] | None:
    """``(action, name)`` for an object-building tag, or None."""
    if not tag.startswith(PYTHON_TAG):
        return None
    rest = tag[len(PYTHON_TAG) :]
    for prefix, action in OBJECT_TAGS:
        if rest.startswith(prefix):
            return action, rest[len(prefix) :]
    return None


def check_tags(ctx: ScanContext, documents: list[Node], location: Location, *, source: str) -> None:
    """Report every object-building tag in the documents (each node once)."""
    for node, path in _nodes_with_paths(documents):
        if node.tag is None:
            continue
        found = object_tag(node.tag)
        if found is None:
            continue
        action, name = found
        if not name:
            continue  # the constructor refuses an empty name
        judgement = (
            judge_module(ctx, name)
            if action == "imports"
            else (judge_dotted(ctx, name, last_dot_only=True))
        )
        ctx.note_import(judgement.imported)
        if judgement.tier is Tier.SAFE:
            continue
        _report(ctx, node, path, action, judgement, location, source)


def _report(
    ctx: ScanContext,
    node: Node,
    path: str,
    action: str,
    judgement: Judgement,
    location: Location,
    source: str,
) -> None:
    severity = judgement.severity or Severity.MEDIUM
    if not ctx.wants(YAML_PYTHON_OBJECT.id, severity):
        return
    kind = "a denied callable" if judgement.tier is Tier.DANGEROUS else "on no allow list"
    arguments = _arguments(node)
    evidence = {
        "tag": node.tag or "",
        "callable": judgement.name,
        "path": path,
        "line": str(node.line),
        "column": str(node.column),
        "where": source,
        "reason": judgement.reason[:300],
        "cve": "CVE-2017-18342",  # yaml.load constructing Python objects from tags
    }
    if arguments:
        evidence["arguments"] = arguments
    if judgement.category:
        evidence["category"] = judgement.category
    with_args = f" with {arguments!r}" if arguments and action == "calls" else ""
    ctx.add(
        YAML_PYTHON_OBJECT.finding(
            location,
            f"{source}, line {node.line}, column {node.column} ({path}): the tag "
            f"{node.tag!r} makes an unsafe YAML loader import {judgement.name}, {kind} "
            f"({judgement.reason[:200]}); loading {action} it{with_args}.",
            severity=severity,
            evidence=evidence,
        )
    )


def _arguments(node: Node) -> str:
    """The scalar arguments of a call node, shortened, for the evidence."""
    values: list[str] = []
    if node.kind == SEQUENCE:
        values = [n.value for n in node.items if n.kind == SCALAR]
    elif node.kind == MAPPING:
        for key, value in node.pairs:
            if key.kind == SCALAR and key.value in ("args", "kwds"):
                children = value.items if value.kind == SEQUENCE else []
                if value.kind == MAPPING:
                    children = [v for _, v in value.pairs]
                values.extend(n.value for n in children if n.kind == SCALAR)
    elif node.value:
        values = [node.value]
    text = ", ".join(values)
    return text if len(text) <= _MAX_ARGUMENTS else text[: _MAX_ARGUMENTS - 1] + "…"


def _nodes_with_paths(documents: list[Node]) -> Iterator[tuple[Node, str]]:
    """Every node once, with the first key path that reaches it (``[doc 2] a.b[0]``)."""
    seen: set[int] = set()
    stack: list[tuple[Node, str]] = []
    for index in range(len(documents) - 1, -1, -1):
        prefix = f"[document {index + 1}]" if len(documents) > 1 else ""
        stack.append((documents[index], prefix))
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node, path or "the document root"
        if node.kind == SEQUENCE:
            stack.extend(
                (item, f"{path}[{i}]") for i, item in reversed(list(enumerate(node.items)))
            )
        elif node.kind == MAPPING:
            for key, value in reversed(node.pairs):
                if key.kind == SCALAR:
                    name, key_name = str(key.value), f"<key {str(key.value)[:40]!r}>"
                else:
                    name = key_name = f"<key at line {key.line}>"
                stack.append((value, f"{path}.{name}" if path else name))
                stack.append((key, f"{path}.{key_name}" if path else key_name))
