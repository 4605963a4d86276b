"""YAML read into a node graph from the parser's events: bounded, iterative, nothing constructed.

PyYAML's loaders parse text into events, compose events into nodes, then construct Python
objects from the nodes; only the last step runs code. This module does the first two steps
itself: it takes the events of PyYAML's own parser (the one ``yaml.load``, ``unsafe_load``,
``full_load`` and OmegaConf's loader use) and builds :class:`Node` objects without recursion, so
that a document nested a million levels deep costs no stack. Tags arrive resolved by the
parser exactly as the constructor will see them: ``!!`` and ``%TAG`` handles expanded, verbatim
``!<...>`` tags kept, URI escapes (``%21``) decoded. Anchors and aliases are kept as shared
nodes, never expanded, as PyYAML's composer does (it also refuses undefined aliases and
anchors defined twice in a document, and so does this module).

Limits: nodes per file (``limits.max_document_values``), nesting depth
(``limits.max_structure_depth``) and the time budget; a tripped limit stops the reading and is
reported by the caller, with every document read before it kept. Documents above
:data:`PURE_PARSER_MAX` bytes are read with libyaml's parser when PyYAML was built with it (the
C loaders use it; it is about twenty times faster).

:func:`expanded_size` counts the nodes a loader that copies shared nodes would make ("billion
laughs"), and :func:`to_tree` turns a document into plain dicts, lists and strings with merge
keys applied (aliases stay shared) for the analyses that read structure.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelshield.core.findings import Location
from modelshield.scanner.context import ScanContext

SCALAR = 0
SEQUENCE = 1
MAPPING = 2

#: Documents above this size are parsed with libyaml when it is available.
PURE_PARSER_MAX = 8 << 20
#: Events read between two checks of the time budget.
_DEADLINE_EVERY = 4096

_YAML = "tag:yaml.org,2002:"
MERGE_TAG = _YAML + "merge"
VALUE_TAG = _YAML + "value"


class Node:
    """One YAML node: a scalar, a sequence or a mapping, with its tag and position."""

    __slots__ = ("column", "kind", "line", "plain", "tag", "value")

    def __init__(self, kind: int, tag: str | None, line: int, column: int, plain: bool) -> None:
        """A node of ``kind`` (:data:`SCALAR`, :data:`SEQUENCE`, :data:`MAPPING`)."""
        self.kind = kind
        self.tag = tag
        """The explicit tag as the parser resolved it, or None for an implicit one."""
        self.line = line
        """Line (1-based) where the node starts."""
        self.column = column
        """Column (1-based) where the node starts."""
        self.plain = plain
        """A scalar the resolver may type from its text (a plain, untagged scalar)."""
        self.value: Any = "" if kind == SCALAR else []
        """The text (scalar), the items (sequence), or ``(key, value)`` pairs (mapping)."""

    @property
    def items(self) -> list[Node]:
        """A sequence's items."""
        items: list[Node] = self.value
        return items

    @property
    def pairs(self) -> list[tuple[Node, Node]]:
        """A mapping's ``(key, value)`` pairs, in document order."""
        pairs: list[tuple[Node, Node]] = self.value
        return pairs

    def children(self) -> Iterator[Node]:
        """Direct children: items, or keys and values."""
        if self.kind == SEQUENCE:
            yield from self.items
        elif self.kind == MAPPING:
            for key, value in self.pairs:
                yield key
                yield value

    def is_merge_key(self) -> bool:
        """Whether this is a merge key (``<<``, or any key tagged ``!!merge``)."""
        return self.kind == SCALAR and (
            self.tag == MERGE_TAG or (self.tag is None and self.plain and self.value == "<<")
        )


class YamlProblem:
    """Why the text could not be read as YAML (what the loader would raise), and where."""

    __slots__ = ("column", "line", "message")

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        """A parse or compose error at a position (1-based), when the parser gives one."""
        self.message = message
        self.line = line
        self.column = column


class Composition:
    """The documents read from one text, and why the reading stopped early, if it did."""

    __slots__ = ("documents", "error", "limit", "nodes", "tags")

    def __init__(self) -> None:
        """An empty reading."""
        self.documents: list[Node] = []
        """Root nodes of the documents read completely."""
        self.error: YamlProblem | None = None
        """The parse or compose error that stopped the reading."""
        self.limit: tuple[str, str] | None = None
        """``(limit name, detail)`` when a limit stopped the reading."""
        self.nodes = 0
        """Nodes read (aliases included)."""
        self.tags: set[str] = set()
        """Every explicit tag met, resolved."""


def compose(ctx: ScanContext, text: str | bytes, location: Location) -> Composition:
    """Read every document of ``text`` into nodes, within the context's limits.

    ``bytes`` are decoded by PyYAML's reader as the loaders decode a binary stream (UTF-8, or
    UTF-16 after a byte-order mark). Never raises for bad input: a parse error or a tripped
    limit ends the reading and is recorded in the result, after the documents read before it.
    """
    import yaml

    result = Composition()
    loader_class: Any = yaml.SafeLoader
    if len(text) > PURE_PARSER_MAX and getattr(yaml, "__with_libyaml__", False):
        loader_class = yaml.CSafeLoader
    loader: Any = None
    try:
        loader = loader_class(text)  # the reader checks the encoding and characters here
        _read(ctx, loader, location, result)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = " ".join(p for p in (e.context, e.problem) if p) or type(e).__name__
        result.error = YamlProblem(
            problem,
            None if mark is None else mark.line + 1,
            None if mark is None else mark.column + 1,
        )
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        result.error = YamlProblem(first, None, None)
    except _Stop:
        pass
    finally:
        dispose = getattr(loader, "dispose", None)
        if dispose is not None:
            dispose()
    return result


class _Stop(Exception):
    """A limit ended the reading (recorded in the result)."""


def _read(ctx: ScanContext, loader: Any, location: Location, result: Composition) -> None:
    import yaml

    node_events = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)
    limits = ctx.limits
    max_nodes, max_depth = limits.max_document_values, limits.max_structure_depth
    anchors: dict[str, Node] = {}
    stack: list[Node] = []
    root: Node | None = None
    events = 0

    def add(node: Node) -> None:
        nonlocal root
        result.nodes += 1
        if result.nodes > max_nodes:
            result.limit = (
                "max_document_values",
                f"the YAML text holds more than {max_nodes} nodes (limits.max_document_values)",
            )
            raise _Stop
        if stack:
            stack[-1].value.append(node)
        else:
            root = node

    while loader.check_event():
        event: Any = loader.get_event()
        events += 1
        if not events % _DEADLINE_EVERY:
            ctx.check_deadline(location)
        kind = type(event)
        mark: Any = event.start_mark
        if kind is yaml.AliasEvent:
            target = anchors.get(event.anchor)
            if target is None:
                raise yaml.composer.ComposerError(
                    None, None, f"found undefined alias {event.anchor!r}", mark
                )
            add(target)
            continue
        if kind is yaml.DocumentStartEvent:
            anchors = {}
            root = None
            continue
        if kind is yaml.DocumentEndEvent:
            if root is not None:
                result.documents.append(root)
            continue
        if kind is yaml.SequenceEndEvent or kind is yaml.MappingEndEvent:
            node = stack.pop()
            if node.kind == MAPPING:
                flat: list[Node] = node.value
                node.value = list(zip(flat[0::2], flat[1::2], strict=True))
            continue
        if kind not in node_events:
            continue  # stream start and end
        tag = event.tag if event.tag not in (None, "!") else None
        if tag is not None:
            result.tags.add(tag)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        if kind is yaml.ScalarEvent:
            node = Node(SCALAR, tag, line, column, bool(event.implicit[0]))
            node.value = event.value
        else:
            node = Node(
                SEQUENCE if kind is yaml.SequenceStartEvent else MAPPING, tag, line, column, False
            )
        if event.anchor is not None:
            if event.anchor in anchors:
                raise yaml.composer.ComposerError(
                    f"found duplicate anchor {event.anchor!r}; first occurrence",
                    None,
                    "second occurrence",
                    mark,
                )
            anchors[event.anchor] = node  # before the children: recursive nodes are allowed
        add(node)
        if node.kind != SCALAR:
            stack.append(node)
            if len(stack) > max_depth:
                result.limit = (
                    "max_structure_depth",
                    f"the YAML text nests deeper than {max_depth} levels "
                    "(limits.max_structure_depth)",
                )
                raise _Stop


def walk(documents: list[Node]) -> Iterator[Node]:
    """Every node of the documents once (shared and recursive nodes included), in document
    order, without recursion."""
    seen: set[int] = set()
    stack = list(reversed(documents))
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if node.kind != SCALAR:
            stack.extend(reversed(list(node.children())))


def expanded_size(root: Node, cap: int) -> int | None:
    """How many nodes the document holds with every alias expanded (what a loader that
    copies shared nodes builds), counted without expanding, up to ``cap`` (returns more than
    ``cap`` as ``cap + 1``); None when a node contains itself (the expansion never ends)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            total = 1
            for child in node.children():
                total += sizes[id(child)]
                if total > cap:
                    total = cap + 1
                    break
            sizes[key] = total
            active.discard(key)
            continue
        if key in sizes:
            continue
        if key in active:
            return None
        active.add(key)
        stack.append((node, True))
        for child in node.children():
            child_key = id(child)
            if child_key in active:
                return None
            if child_key not in sizes:
                stack.append((child, False))
    return sizes[id(root)]


Position = tuple[int, int]
"""``(line, column)``, 1-based."""


class Tree:
    """A document as plain values (dicts with string keys, lists, strings), with positions."""

    __slots__ = ("positions", "root")

    def __init__(self, root: object, positions: dict[object, Position]) -> None:
        """Wrap a converted root and its positions."""
        self.root = root
        """The converted document."""
        self.positions = positions
        """``id(container)`` and ``(id(container), key or index)`` to where it starts."""


def to_tree(document: Node) -> Tree:
    """Convert a document to dicts, lists and strings, as a safe loader would build it.

    Scalars become their text; merge keys are applied the way PyYAML's constructor applies
    them (merged pairs first, so the mapping's own keys win); a mapping key that is not a
    scalar becomes ``<mapping key at line N>``. Shared nodes become shared objects, so the
    result is no larger than the document.
    """
    positions: dict[object, Position] = {}
    made: dict[int, Any] = {}
    pending: list[tuple[Node, bool]] = [(document, False)]
    while pending:
        node, done = pending.pop()
        key = id(node)
        if node.kind == SCALAR:
            made[key] = node.value
            continue
        if not done:
            if key in made:
                continue
            made[key] = {} if node.kind == MAPPING else []
            positions[id(made[key])] = (node.line, node.column)
            pending.append((node, True))
            pending.extend((child, False) for child in node.children() if id(child) not in made)
            continue
        container = made[key]
        if node.kind == SEQUENCE:
            for index, item in enumerate(node.items):
                container.append(made[id(item)])
                positions[(id(container), index)] = (item.line, item.column)
            continue
        own: list[tuple[str, Node]] = []
        merged: list[tuple[str, Any, Node]] = []
        for k, v in node.pairs:
            if k.is_merge_key():
                merged.extend(_merged_pairs(v, made))
            else:
                own.append((_key_text(k), v))
        for name, value, value_node in merged:
            container[name] = value
            positions[(id(container), name)] = (value_node.line, value_node.column)
        for name, value_node in own:
            container[name] = made[id(value_node)]
            positions[(id(container), name)] = (value_node.line, value_node.column)
    return Tree(made[id(document)], positions)


def _merged_pairs(value: Node, made: dict[int, Any]) -> Iterator[tuple[str, Any, Node]]:
    if value.kind == MAPPING:
        sources = [value]
    elif value.kind == SEQUENCE:
        sources = value.items
    else:
        return
    for source in sources:
        if source.kind != MAPPING:
            continue
        converted = made.get(id(source))
        if isinstance(converted, dict):
            for name, item in converted.items():
                yield name, item, source
        else:  # not converted yet (a merge of a mapping that contains this one)
            for k, v in source.pairs:
                if not k.is_merge_key():
                    yield _key_text(k), made.get(id(v), ""), v


def _key_text(node: Node) -> str:
    if node.kind == SCALAR:
        text: str = node.value
        return text
    kind = "mapping" if node.kind == MAPPING else "sequence"
    return f"<{kind} key at line {node.line}>"
