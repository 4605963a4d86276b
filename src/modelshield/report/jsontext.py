"""JSON text with a two-space indent, written several times faster than ``json.dumps``.

``json.dumps(obj, indent=2)`` falls back to the pure-Python encoder whenever ``indent`` is set
(CPython 3.11 and 3.12 implement indentation only in Python), and for a report of a few hundred
findings that costs more than the audit itself. :func:`dumps` writes exactly the same text
(property-tested against ``json.dumps(obj, indent=2)``) with one specialised function: exact
type checks first, strings escaped by the C helper ``json`` itself uses, one list of pieces
joined once.
"""

from __future__ import annotations

import math
from json.encoder import encode_basestring_ascii
from typing import Any

_INDENT = "  "


def dumps(obj: Any) -> str:
    """``json.dumps(obj, indent=2)``: ASCII only (``\\u`` escapes), ``NaN``/``Infinity`` allowed.

    Keys must be strings (ours always are); anything not JSON-like raises ``TypeError``.
    """
    out: list[str] = []
    _write(obj, "\n", out)
    return "".join(out)


def _write(obj: Any, newline: str, out: list[str]) -> None:
    """Append ``obj``'s text; ``newline`` is a newline plus the current indentation."""
    kind = type(obj)
    if kind is str:
        out.append(encode_basestring_ascii(obj))
    elif kind is dict:
        if not obj:
            out.append("{}")
            return
        inner = newline + _INDENT
        opener = "{"
        for key, value in obj.items():
            if type(key) is not str:
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            out.append(f"{opener}{inner}{encode_basestring_ascii(key)}: ")
            opener = ","
            if type(value) is str:
                out.append(encode_basestring_ascii(value))
            else:
                _write(value, inner, out)
        out.append(newline + "}")
    elif kind is list or kind is tuple:
        if not obj:
            out.append("[]")
            return
        inner = newline + _INDENT
        opener = "["
        for value in obj:
            out.append(opener + inner)
            opener = ","
            if type(value) is str:
                out.append(encode_basestring_ascii(value))
            else:
                _write(value, inner, out)
        out.append(newline + "]")
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif isinstance(obj, int):
        out.append(int.__repr__(obj))
    elif isinstance(obj, float):
        out.append(_float(obj))
    elif isinstance(obj, str):
        out.append(encode_basestring_ascii(obj))
    elif isinstance(obj, dict):
        _write(dict(obj), newline, out)
    elif isinstance(obj, list | tuple):
        _write(list(obj), newline, out)
    else:
        raise TypeError(f"Object of type {kind.__name__} is not JSON serializable")


def _float(value: float) -> str:
    if math.isfinite(value):
        return float.__repr__(value)
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
