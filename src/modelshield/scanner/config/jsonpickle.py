"""jsonpickle documents: the tags ``jsonpickle.decode`` turns into imports and calls.

jsonpickle writes Python objects as JSON with reserved ``py/...`` keys, and its unpickler
imports and calls what they name (``jsonpickle/unpickler.py``):

* ``py/object``: ``loadclass`` imports the class (the longest importable module prefix, then
  attributes), then ``cls.__new__(cls, *args)`` with ``py/newargs``, ``py/newargsex`` or
  ``py/initargs``, then ``__setstate__``/``__dict__`` from ``py/state``;
* ``py/reduce``: ``[callable, args, state, listitems, dictitems]``: the callable (usually a
  ``py/function`` or ``py/type`` object) is called with the arguments;
* ``py/type`` and ``py/function``: references to any class or function (``loadclass``);
* ``py/mod``: ``module/attribute.path``, imported and walked;
* ``py/repr``: ``module/expression``, passed to ``eval`` by ``decode(safe=False)`` and by
  jsonpickle before 1.0, read like ``py/mod`` otherwise;
* keys starting with ``json://`` are themselves jsonpickle documents (``keys=True``).

The plain tags (``py/tuple``, ``py/set``, ``py/bytes``, ``py/b64``, ``py/id``, ``py/ref``,
``py/seq``, ``py/iterator``) build data only. Names are judged like every configuration
callable (:mod:`.judge`); callables on the allow lists are not reported.
"""

from __future__ import annotations

import json
from typing import Any

from modelshield.core.findings import Location, Severity
from modelshield.scanner.callables import Tier
from modelshield.scanner.config.judge import Judgement, is_dotted, judge_dotted, judge_module
from modelshield.scanner.config.walk import containers, shown
from modelshield.scanner.context import ScanContext
from modelshield.scanner.rules import JSONPICKLE_OBJECT

#: Tags whose value names something to import, and what the loader does with it.
_NAMING = {
    "py/object": "creates an instance of",
    "py/type": "imports the class",
    "py/function": "imports the function",
    "py/mod": "imports",
    "py/repr": "evaluates",
}
RESERVED = frozenset(
    {
        "py/bytes",
        "py/b64",
        "py/b85",
        "py/function",
        "py/id",
        "py/initargs",
        "py/iterator",
        "py/mod",
        "py/newargs",
        "py/newargsex",
        "py/newobj",
        "py/object",
        "py/property",
        "py/reduce",
        "py/ref",
        "py/repr",
        "py/seq",
        "py/set",
        "py/state",
        "py/tuple",
        "py/type",
    }
)
"""Every key jsonpickle reserves (``jsonpickle.tags.RESERVED``)."""
_JSON_KEY = "json://"
_MAX_KEY_DOCUMENT = 1 << 20
_MAX_NESTED_KEYS = 4


def looks_like_jsonpickle(text: str) -> bool:
    """Whether JSON text may hold jsonpickle tags (a cheap test on the text)."""
    return '"py/' in text or '"json://' in text


def check_jsonpickle(
    ctx: ScanContext, root: object, location: Location, *, source: str, nested: int = 0
) -> None:
    """Report the jsonpickle tags of a parsed JSON document that import or call."""
    _JsonPickle(ctx, location, source, nested).run(root)


class _JsonPickle:
    def __init__(self, ctx: ScanContext, location: Location, source: str, nested: int) -> None:
        self.ctx = ctx
        self.location = location
        self.source = source
        self.nested = nested
        self.called: set[int] = set()
        """Mappings that are the callable of a ``py/reduce`` (reported as called)."""

    def run(self, root: object) -> None:
        for value, path in containers(root):
            if isinstance(value, dict):
                self._mapping(value, shown(path) if path else "")

    def _mapping(self, mapping: dict[str, Any], path: str) -> None:
        reduce = mapping.get("py/reduce")
        if isinstance(reduce, list) and reduce:
            head = reduce[0]
            if isinstance(head, dict):
                self.called.add(id(head))
            elif isinstance(head, str) and head != "py/newobj" and is_dotted(head):
                self._report(judge_dotted(self.ctx, head), "py/reduce", "calls", path)
        for tag, action in _NAMING.items():
            value = mapping.get(tag)
            if isinstance(value, str):
                self._named(tag, action, value, mapping, path)
        for key in mapping:
            if isinstance(key, str) and key.startswith(_JSON_KEY):
                self._pickled_key(key, path)

    def _named(self, tag: str, action: str, value: str, mapping: dict[str, Any], path: str) -> None:
        where = f"{path}.{tag}" if path else tag
        if id(mapping) in self.called and tag in ("py/function", "py/type"):
            action = "calls"
        if tag == "py/repr":
            module, _, expression = value.partition("/")
            if is_dotted(module):
                self._repr(value, module, expression, where)
            return
        if tag == "py/mod":
            module, _, rest = value.partition("/")
            if not is_dotted(module):
                return
            names = rest.split(".") if rest and is_dotted(rest) else []
            if len(names) > 1:
                judgement = judge_dotted(self.ctx, ".".join([module, *names[1:]]))
            else:
                judgement = judge_module(self.ctx, module)
            self._report(judgement, tag, action, where)
            return
        if is_dotted(value):
            self._report(judge_dotted(self.ctx, value), tag, action, where)

    def _repr(self, value: str, module: str, expression: str, where: str) -> None:
        """``py/repr`` is ``module/expression``; old and unsafe decoders ``eval`` the
        expression with the module imported."""
        self.ctx.add(
            JSONPICKLE_OBJECT.finding(
                self.location,
                f"{self.source}: {where} holds a jsonpickle py/repr ({value[:120]!r}), which "
                "jsonpickle.decode(safe=False) and jsonpickle before 1.0 pass to eval after "
                f"importing {module}: arbitrary code in the file.",
                severity=Severity.HIGH,
                evidence={
                    "path": where,
                    "tag": "py/repr",
                    "callable": "builtins.eval",
                    "module": module,
                    "expression": expression[:300],
                    "where": self.source,
                    "cve": "CVE-2020-22083",
                },
            )
        )

    def _report(self, judgement: Judgement, tag: str, action: str, where: str) -> None:
        self.ctx.note_import(judgement.imported)
        if judgement.tier is Tier.SAFE:
            return
        kind = "a denied callable" if judgement.tier is Tier.DANGEROUS else "on no allow list"
        evidence = {
            "path": where,
            "tag": tag,
            "callable": judgement.name,
            "reason": judgement.reason[:300],
            "where": self.source,
            "cve": "CVE-2020-22083",
        }
        if judgement.category:
            evidence["category"] = judgement.category
        self.ctx.add(
            JSONPICKLE_OBJECT.finding(
                self.location,
                f"{self.source}: the jsonpickle {tag} at {where} names {judgement.name}, "
                f"{kind} ({judgement.reason[:200]}); jsonpickle.decode {action} it.",
                severity=judgement.severity or Severity.MEDIUM,
                evidence=evidence,
            )
        )

    def _pickled_key(self, key: str, path: str) -> None:
        text = key[len(_JSON_KEY) :]
        if self.nested >= _MAX_NESTED_KEYS or len(text) > _MAX_KEY_DOCUMENT:
            return
        if not looks_like_jsonpickle(text):
            return
        try:
            inner = json.loads(text)
        except (ValueError, RecursionError):
            return
        where = f"{self.source}, the json:// key at {path or 'the root'}"
        check_jsonpickle(self.ctx, inner, self.location, source=where, nested=self.nested + 1)
