"""Checks of the state that ``BUILD`` hands to objects whose load executes part of it.

Some classes on the safe list run code taken from their own pickled state: every scipy.stats
distribution's ``__setstate__`` updates ``__dict__`` from the state and passes
``_parse_arg_template`` to ``exec``. The class is legitimate (fitted searches keep
distributions), so it stays safe, and the state it receives is checked instead. The built-in
lists name those classes and the state keys they execute (``state-keys`` tables in
``data/callables_*.toml``); :data:`VALIDATORS` says what each key may hold.

Every ``BUILD`` state is looked at, whatever the class, since a state key means the same thing
to any subclass: a key the lists name must hold what the library itself writes there. For the
listed classes, a state whose keys cannot be read (the result of a call, an unknown value) is
reported as well: the class would execute whatever it turns out to hold.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Callable
from typing import Any

from modelshield.scanner.pickle import rules
from modelshield.scanner.pickle.state import Stream
from modelshield.scanner.pickle.values import Blob, Call, Global, brief, unwrap

#: Reconstructors whose first argument is the class of the object they create.
_CLASS_FIRST = frozenset(
    {
        ("copyreg", "__newobj__"),
        ("copyreg", "__newobj_ex__"),
        ("copyreg", "_reconstructor"),
        ("copy_reg", "_reconstructor"),
    }
)

#: Longest template accepted (scipy's is under 600 characters with many shape parameters).
MAX_TEMPLATE_CHARS = 8192

#: Items of a state read before giving up (a real state has a few dozen).
_MAX_ITEMS = 4096

_TEMPLATE_FUNCTIONS = frozenset({"_parse_args", "_parse_args_rvs", "_parse_args_stats"})


def _scipy_template_problem(value: Any) -> str | None:
    """None when ``value`` is a scipy argument-parser template, else what is wrong with it.

    scipy writes three functions (``_parse_args``, ``_parse_args_rvs``, ``_parse_args_stats``)
    whose parameters are the distribution's shape names with constant defaults and whose body
    returns those names, or passes them to ``self._argcheck_rvs``. Anything else is code that
    ``exec`` would run: a call, an import, an attribute other than that one.
    """
    if type(value) is not str:
        kind = "a large string" if type(value) is Blob else f"{type(value).__name__}"
        return f"holds {kind}, not the template text scipy writes"
    if len(value) > MAX_TEMPLATE_CHARS:
        return f"holds {len(value)} characters; scipy's template is far shorter"
    try:
        tree = ast.parse(value)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "holds text that is not Python"
    seen: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name not in _TEMPLATE_FUNCTIONS:
            return f"defines or runs something other than scipy's functions (line {_line(node)})"
        if node.decorator_list or node.returns is not None or node.name in seen:
            return f"decorates, annotates or redefines {node.name}"
        seen.add(node.name)
        args = node.args
        if args.vararg or args.kwarg or args.posonlyargs or args.kwonlyargs:
            return f"{node.name} takes arguments scipy never declares"
        names = {a.arg for a in args.args}
        if any(a.annotation is not None for a in args.args) or not all(
            _constant(d) for d in args.defaults
        ):
            return f"{node.name} has annotations or non-constant defaults (code run at definition)"
        if len(node.body) != 1 or not isinstance(node.body[0], ast.Return):
            return f"{node.name} does more than return its arguments"
        if not _returned_ok(node.body[0].value, names):
            return f"{node.name} returns something other than its arguments"
    if not seen:
        return "defines none of scipy's argument parsers"
    return None


def _line(node: ast.AST) -> int:
    return int(getattr(node, "lineno", 0))


def _constant(node: ast.AST | None) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant)


def _returned_ok(node: ast.AST | None, names: set[str]) -> bool:
    """A tuple of argument names and constants, or ``self._argcheck_rvs(those, size=size)``."""
    if node is None:
        return False
    if isinstance(node, ast.Tuple):
        return all(_returned_ok(e, names) for e in node.elts)
    if isinstance(node, ast.Name):
        return node.id in names
    if _constant(node):
        return True
    if isinstance(node, ast.Call):
        func = node.func
        return (
            isinstance(func, ast.Attribute)
            and func.attr == "_argcheck_rvs"
            and isinstance(func.value, ast.Name)
            and func.value.id == "self"
            and "self" in names
            and all(_returned_ok(a, names) for a in node.args)
            and all(k.arg is not None and _returned_ok(k.value, names) for k in node.keywords)
        )
    return False


VALIDATORS: dict[str, Callable[[Any], str | None]] = {
    "_parse_arg_template": _scipy_template_problem,
}
"""State key -> check of its value (None when it is what the library writes)."""


def _class_of(obj: Call) -> Global | None:
    """The class of an object a call created, through pickle's own reconstructors."""
    f = unwrap(obj.func)
    if type(f) is not Global or not f.name:
        return None
    if (f.module, f.name) in _CLASS_FIRST and type(obj.args) is tuple and obj.args:
        cls = unwrap(obj.args[0])
        return cls if type(cls) is Global and cls.name else None
    return f


def _pairs(state: Any) -> list[tuple[Any, Any]] | None:
    """Every (key, value) that ``__dict__.update(state)`` or the default ``BUILD`` could set,
    or None when the keys cannot be known (a value computed while loading).

    Both readings are taken: a ``(dict, dict)`` state is the default BUILD's (instance dict,
    slot state) but also, to a ``__setstate__`` that calls ``update``, two key/value pairs (a
    2-item dict unpacks to its two keys).
    """
    state = unwrap(state)
    t = type(state)
    if t is dict:
        return list(itertools.islice(state.items(), _MAX_ITEMS))
    if t is not tuple and t is not list:
        return [] if t in _INERT else None
    pairs: list[tuple[Any, Any]] = []
    for element in state[:_MAX_ITEMS]:
        element = unwrap(element)
        te = type(element)
        if te is dict:
            pairs.extend(itertools.islice(element.items(), _MAX_ITEMS))
            if len(element) == 2:
                first, second = element
                pairs.append((first, second))
        elif (te is tuple or te is list or te is str) and len(element) == 2:
            pairs.append((element[0], element[1]))
        elif te not in _INERT:
            return None
    return pairs


#: Values with no keys to set (a real ``update`` fails on most of them; nothing runs).
_INERT = (type(None), bytes, bytearray, int, float, bool, str, Blob, tuple, list)


def check_build(st: Stream, obj: Call, state: Any, offset: int) -> None:
    """Check the state ``BUILD`` gives to ``obj`` against the keys the lists name."""
    policy = st.session.ctx.callables
    checked = policy.checked_state_keys
    if not checked:
        return
    cls = _class_of(obj)
    class_keys = policy.state_keys(cls.module, cls.name) if cls is not None else ()
    pairs = _pairs(state)
    where = cls.dotted if cls is not None else "an object"
    if pairs is None:
        if class_keys:
            _report(
                st,
                offset,
                where,
                "/".join(class_keys),
                state,
                "the state is computed while loading, so the keys it sets cannot be checked",
            )
        return
    for key, value in pairs:
        key = unwrap(key)
        if type(key) is not str or key not in checked:
            continue
        problem = VALIDATORS[key](unwrap(value))
        if problem is not None:
            _report(st, offset, where, key, value, problem)


def _report(st: Stream, offset: int, where: str, key: str, value: Any, problem: str) -> None:
    value = unwrap(value)
    code = value[:2000] if type(value) is str else brief(value, 200)
    st.session.emit(
        rules.STATE_CODE,
        offset,
        f"BUILD gives {where} a state whose {key!r} {problem}. Loading the pickle executes "
        f"that value: {brief(value, 120)}",
        {"class": where, "state_key": key, "code": code, "problem": problem},
        title=f"Pickle state carries code that {where} executes when loaded",
    )
