"""skops schemas: what ``skops.io.load`` would import, call, or be tricked into calling.

A ``.skops`` file is a zip whose ``schema.json`` describes a tree of nodes, each with a
``__loader__`` (its kind), a ``__module__`` and a ``__class__``. Before building anything skops
audits the tree: every node's type must be in the set skops trusts by default for that kind
of node, or in the ``trusted=`` list the user passes. This module reproduces that audit from
``data/skops_trusted.toml`` (generated from skops by ``scripts/generate_skops_trusted.py``)
and judges each untrusted name by the callable policy, and it reports the node shapes that
only a hand-edited file holds and that published skops versions mis-audited:

* ``OperatorFuncNode`` whose ``__module__`` is not ``operator`` (CVE-2025-54412: the audit
  read the declared name, the loader called ``getattr(operator, __class__)``);
* ``MethodNode`` whose declared class differs from its bound object's (CVE-2025-54413);
* ``LossNode`` naming a class outside scikit-learn's losses (imported before the audit until
  skops 0.14);
* ``RandomGeneratorNode`` whose bit generator is not one of NumPy's (the name is called).

The schema is found by content (a JSON document whose root has ``__loader__``,
``__module__`` and ``__class__``), wherever it stands.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

from msgspec import Struct

from modelshield.core.findings import Location, Severity
from modelshield.scanner.callables import Tier, Verdict
from modelshield.scanner.config.judge import is_dotted
from modelshield.scanner.config.walk import containers, shown
from modelshield.scanner.context import ScanContext
from modelshield.scanner.rules import SKOPS_TAMPERED_NODE, SKOPS_UNTRUSTED_TYPE

_DATA_FILE = "skops_trusted.toml"
#: What loading does with the name a node of each kind carries.
_ACTIONS = {
    "FunctionNode": "loads the function",
    "TypeNode": "loads the type",
    "ObjectNode": "creates an instance (__new__ and __setstate__) of",
    "ConstructorFromReduceNode": "calls",
    "PartialNode": "builds a partial of",
    "OperatorFuncNode": "calls",
    "MethodNode": "loads the bound method",
    "TreeNode": "calls",
    "LossNode": "calls",
    "QuantileForestNode": "calls",
    "DTypeNode": "builds the dtype",
}
_MAX_EVIDENCE = 300


class _Trusted(Struct, frozen=True):
    by_loader: dict[str, frozenset[str]]
    loaders: frozenset[str]
    bit_generators: frozenset[str]
    losses: frozenset[str]


@functools.cache
def _trusted() -> _Trusted:
    import tomllib

    from modelshield.scanner.callables import _data_bytes

    data = tomllib.loads(_data_bytes(_DATA_FILE).decode("utf-8"))
    sets: dict[str, list[str]] = data["sets"]
    by_loader = {
        loader: frozenset(spec["types"]).union(*(sets[name] for name in spec["sets"]))
        for loader, spec in data["trusted"].items()
    }
    return _Trusted(
        by_loader,
        frozenset(data["loaders"]),
        frozenset(sets["numpy-bit-generators"]),
        frozenset(sets["sklearn-losses"]),
    )


def is_skops_schema(root: object) -> bool:
    """Whether a parsed JSON document is a skops schema."""
    return isinstance(root, dict) and all(
        isinstance(root.get(k), str) for k in ("__loader__", "__module__", "__class__")
    )


def check_skops(ctx: ScanContext, root: object, location: Location, *, source: str) -> None:
    """Audit a skops schema as ``skops.io.load`` does, and report what it lets through."""
    ctx.saw_format("skops")
    trusted = _trusted()
    for node, path in _nodes(root):
        loader = node["__loader__"]
        module, name = node.get("__module__"), node.get("__class__")
        if not isinstance(module, str) or not isinstance(name, str):
            continue
        if loader not in trusted.loaders:
            continue  # skops refuses a loader it does not have
        if loader == "OperatorFuncNode":
            _operator(ctx, node, module, name, path, location, source)
            continue
        if loader == "MethodNode":
            _method(ctx, node, module, name, path, location, source)
            continue
        if loader == "LossNode" and f"{module}.{name}" not in trusted.losses:
            _tampered(
                ctx,
                location,
                source,
                path,
                f"a LossNode naming {module}.{name}, which is not one of scikit-learn's loss "
                "classes; skops before 0.14 imported the module before auditing the file",
                ctx.callables.classify(module, name),
            )
            continue
        if loader == "RandomGeneratorNode":
            _bit_generator(ctx, node, path, location, source, trusted)
        if loader in ("SliceNode", "JsonNode", "CachedNode"):
            continue  # skops' audit never reports these
        if f"{module}.{name}" in trusted.by_loader.get(loader, frozenset()):
            continue
        _untrusted(ctx, loader, module, name, path, location, source)


def _nodes(root: object) -> Iterator[tuple[dict[str, Any], str]]:
    for value, path in containers(root):
        if isinstance(value, dict) and isinstance(value.get("__loader__"), str):
            yield value, shown(path) if path else "the root"


def _untrusted(
    ctx: ScanContext,
    loader: str,
    module: str,
    name: str,
    path: str,
    location: Location,
    source: str,
) -> None:
    verdict = ctx.callables.classify(module, name)
    ctx.note_import(f"{verdict.module}:{verdict.name}")
    if verdict.tier is Tier.SAFE:
        severity = Severity.LOW
        judged = "the callable policy holds it safe"
    elif verdict.tier is Tier.DANGEROUS:
        severity = max(verdict.severity or Severity.HIGH, Severity.HIGH)
        judged = f"it is a denied callable ({verdict.category}: {verdict.reason[:160]})"
    else:
        severity = Severity.MEDIUM
        judged = "it is on no allow list"
    if not ctx.wants(SKOPS_UNTRUSTED_TYPE.id, severity):
        return
    action = _ACTIONS.get(loader, "builds")
    ctx.add(
        SKOPS_UNTRUSTED_TYPE.finding(
            location,
            f"{source}: the {loader} at {path} names {module}.{name}, which skops does not "
            f"trust by default (loading needs it in trusted=), and {judged}; skops.io.load "
            f"{action} it.",
            severity=severity,
            evidence={
                "path": path,
                "loader": loader,
                "callable": f"{module}.{name}",
                "where": source,
                "cve": "CVE-2024-37065",
                **({"category": verdict.category} if verdict.tier is Tier.DANGEROUS else {}),
            },
        )
    )


def _operator(
    ctx: ScanContext,
    node: dict[str, Any],
    module: str,
    name: str,
    path: str,
    location: Location,
    source: str,
) -> None:
    """skops builds ``getattr(operator, __class__)(*attrs)`` whatever ``__module__`` says."""
    verdict = ctx.callables.classify("operator", name)
    attrs = _json_values(node.get("attrs"))
    if module != "operator":
        _tampered(
            ctx,
            location,
            source,
            path,
            f"an OperatorFuncNode declared as {module}.{name} that skops builds as "
            f"operator.{name}({attrs}); skops before 0.12 audited the declared name "
            "(CVE-2025-54412)",
            verdict,
            cve="CVE-2025-54412",
        )
        return
    _untrusted(
        ctx, "OperatorFuncNode", "operator", name, f"{path} ({attrs[:120]})", location, source
    )


def _method(
    ctx: ScanContext,
    node: dict[str, Any],
    module: str,
    name: str,
    path: str,
    location: Location,
    source: str,
) -> None:
    """A bound method ``getattr(obj, func)``; its declared class must be the object's."""
    content = node.get("content")
    content = content if isinstance(content, dict) else {}
    obj = content.get("obj")
    func = content.get("func")
    obj = obj if isinstance(obj, dict) else {}
    obj_module, obj_class = obj.get("__module__"), obj.get("__class__")
    if not isinstance(func, str):
        return
    if (obj_module, obj_class) != (module, name) or not func.isidentifier():
        verdict = ctx.callables.classify(str(obj_module), f"{obj_class}.{func}")
        _tampered(
            ctx,
            location,
            source,
            path,
            f"a MethodNode declared as {module}.{name}.{func} bound to an object of "
            f"{obj_module}.{obj_class}; skops before 0.12 audited the declared class "
            "(CVE-2025-54413)",
            verdict,
            cve="CVE-2025-54413",
        )
        return
    if is_dotted(f"{module}.{name}"):
        _untrusted(ctx, "MethodNode", module, f"{name}.{func}", path, location, source)


def _bit_generator(
    ctx: ScanContext,
    node: dict[str, Any],
    path: str,
    location: Location,
    source: str,
    trusted: _Trusted,
) -> None:
    """skops calls ``getattr(numpy.random, name)`` for the bit generator's stored name."""
    name = _stored_bit_generator(node)
    if name is None or f"numpy.random.{name}" in trusted.bit_generators:
        return
    _tampered(
        ctx,
        location,
        source,
        path,
        f"a RandomGeneratorNode whose bit generator is numpy.random.{name}, which is not a "
        "NumPy bit generator; skops calls it by that name (older versions without auditing it)",
        ctx.callables.classify("numpy.random", name),
    )


def _stored_bit_generator(node: dict[str, Any]) -> str | None:
    content = node.get("content")
    state = content.get("bit_generator") if isinstance(content, dict) else None
    inner = state.get("content") if isinstance(state, dict) else None
    entry = inner.get("bit_generator") if isinstance(inner, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("content"), str):
        try:
            value = json.loads(entry["content"])
        except ValueError:
            return None
        return value if isinstance(value, str) else None
    return None


def _tampered(
    ctx: ScanContext,
    location: Location,
    source: str,
    path: str,
    what: str,
    verdict: Verdict,
    *,
    cve: str = "",
) -> None:
    severity = Severity.HIGH
    if verdict.tier is Tier.DANGEROUS:
        severity = max(verdict.severity or Severity.HIGH, Severity.HIGH)
    evidence = {
        "path": path,
        "callable": f"{verdict.module}.{verdict.name}"[:_MAX_EVIDENCE],
        "where": source,
    }
    if cve:
        evidence["cve"] = cve
    ctx.add(
        SKOPS_TAMPERED_NODE.finding(
            location,
            f"{source}: {path} is {what}. Only a hand-edited file holds such a node.",
            severity=severity,
            evidence=evidence,
        )
    )


def _json_values(node: object) -> str:
    """The JSON values under a node (an ``attrs`` tuple of JsonNodes), as text."""
    values: list[str] = []
    stack = [node]
    while stack and len(values) < 16:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("__loader__") == "JsonNode" and isinstance(item.get("content"), str):
                values.append(item["content"])
            else:
                stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    text = ", ".join(values)
    return text[:_MAX_EVIDENCE]
