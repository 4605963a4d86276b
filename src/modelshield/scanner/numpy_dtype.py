"""NumPy dtypes read the way NumPy reads them, without NumPy: does a dtype hold Python objects?

``numpy.load`` unpickles an array's data exactly when its dtype's ``hasobject`` is true
(``numpy.lib.format.read_array``), and ``joblib.load`` reads a nested pickle after a
``NumpyArrayWrapper`` exactly then too. A dtype holds objects when it is ``object`` (spelled
``'O'``, ``'|O'``, ``'O8'``, ``'O4'``, ``'object'``...) or NumPy 2's variable-width string
(``'T'``), or when a field or a subarray of it does: ``'i4,O'``, ``'(2,)O'``, ``'2O'``,
``[('a', '<i4'), ('b', '|O')]``, ``('O', (2,))``. This module mirrors the parts of NumPy that
decide it: the string grammar of ``numpy.dtype`` (``_convert_from_str`` and
``numpy._core._internal._commastring``), ``numpy.lib.format.descr_to_dtype`` for ``.npy``
headers (which drops unnamed void padding fields, subarrays included), and the constructors
joblib's pickled ``numpy.dtype(obj, align, copy)`` calls use. A test compares each with NumPy.

Every resolver returns a :class:`Dtype`, or None where NumPy refuses the description.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable

from msgspec import Struct


class Dtype(Struct, frozen=True):
    """What matters about a resolved dtype."""

    hasobject: bool
    """Whether it holds Python objects (NumPy then pickles the data)."""
    padding: bool = False
    """Whether it is a void type without fields (``'V8'``, or any subarray): an unnamed field
    of such a type is padding that ``descr_to_dtype`` drops."""
    empty: bool = False
    """Whether its item size is 0 and it has no fields (``'S'``, ``'V0'``, ``('O', 0)``): a
    subarray of it is refused, and ``(it, n)`` gives it the size ``n`` instead."""
    string: bool = False
    """NumPy 2's variable-width string type, which a structured field may not be."""
    object_type: bool = False
    """Whether it is the object type itself (not a structure or subarray holding objects)."""


_OBJECT = Dtype(hasobject=True, object_type=True)
_STRING = Dtype(hasobject=True, string=True)
_PLAIN = Dtype(hasobject=False)
_VOID = Dtype(hasobject=False, padding=True)
_UNSIZED = Dtype(hasobject=False, empty=True)
_UNSIZED_VOID = Dtype(hasobject=False, padding=True, empty=True)
#: Names of flexible types without a size.
_UNSIZED_NAMES = frozenset({"a", "bytes", "bytes_", "str", "str_", "unicode"})

_INT_MAX = (1 << 31) - 1
_BYTEORDER = "<>=|"
#: ``numpy.sctypeDict`` names (a test keeps the list equal to NumPy's), and those of them that
#: name ``numpy.object_``.
# fmt: off
NUMPY_TYPE_NAMES = frozenset({
    "a", "bool", "bool_", "byte", "bytes", "bytes_", "cdouble", "clongdouble", "complex",
    "complex128", "complex256", "complex64", "csingle", "datetime64", "double", "float",
    "float128", "float16", "float32", "float64", "half", "int", "int16", "int32", "int64", "int8",
    "int_", "intc", "intp", "long", "longdouble", "longlong", "object", "object_", "short",
    "single", "str", "str_", "timedelta64", "ubyte", "uint", "uint16", "uint32", "uint64",
    "uint8", "uintc", "uintp", "ulong", "ulonglong", "unicode", "ushort", "void",
})
# fmt: on
OBJECT_TYPE_NAMES = frozenset({"object", "object_"})
#: One-character type codes NumPy accepts (``numpy.dtype('d')``).
_TYPECODES = frozenset("?BDFGHILMNOPQSTUVbcdefghilmnpq")
#: Sizes ``PyArray_TypestrConvert`` accepts per kind (64-bit platforms).
_SIZED = {"b": {1}, "i": {1, 2, 4, 8}, "u": {1, 2, 4, 8}, "f": {2, 4, 8, 16}, "c": {8, 16, 32}}
_FLEXIBLE = frozenset("SUVa")
_STRTOL = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")
_DATETIME = re.compile(r"(?:[Mm]8|datetime64|timedelta64)(?:\[.*\])?", re.S)

# numpy._core._internal._commastring
_FORMAT = re.compile(
    r"(?P<order1>[<>|=]?)(?P<repeats> *[(]?[ ,0-9]*[)]? *)(?P<order2>[<>|=]?)"
    r"(?P<dtype>[A-Za-z0-9.?]*(?:\[[a-zA-Z0-9,.]+\])?)"
)
_SEP = re.compile(r"\s*,\s*")
_SPACE = re.compile(r"\s+$")
_CONVORDER = {"=": "<"}  # native order on a little-endian machine


def from_string(text: str) -> Dtype | None:
    """``numpy.dtype(text)``."""
    if "\x00" in text:
        return None
    if _is_commastring(text):
        return _from_commastring(text)
    kind = text[1:] if text[:1] in _BYTEORDER else text
    if not kind:
        return None
    if _DATETIME.fullmatch(kind):
        return _PLAIN
    if len(kind) == 1:
        if kind not in _TYPECODES:
            return _by_name(text)
        if kind in "OT":
            return _OBJECT if kind == "O" else _STRING
        if kind in _FLEXIBLE:
            return _UNSIZED_VOID if kind == "V" else _UNSIZED
        return _PLAIN
    letter, digits = kind[0], kind[1:]
    if _STRTOL.fullmatch(digits):
        size = int(digits)
        if size < 0 or size > _INT_MAX:
            return None
        if letter in _FLEXIBLE:
            if letter == "V":
                return _VOID if size else _UNSIZED_VOID
            return _PLAIN if size else _UNSIZED
        if size and letter == "O" and size in (4, 8):
            return _OBJECT
        if size and size in _SIZED.get(letter, ()):
            return _PLAIN
    return _by_name(text)


def _by_name(text: str) -> Dtype | None:
    """NumPy's last resort: the string as a name in ``numpy.sctypeDict`` (no byte order)."""
    if text in OBJECT_TYPE_NAMES:
        return _OBJECT
    if text == "void":
        return _UNSIZED_VOID
    if text in _UNSIZED_NAMES:
        return _UNSIZED
    return _PLAIN if text in NUMPY_TYPE_NAMES else None


def _is_commastring(text: str) -> bool:
    """``_check_for_commastring``: a digit or ``()`` first, or a comma outside brackets."""
    n = len(text)
    if text[:1].isdigit() and text[0] in "0123456789":
        return True
    if n > 1 and text[0] in _BYTEORDER and text[1] in "0123456789":
        return True
    if text.startswith("()") or (n > 3 and text[0] in _BYTEORDER and text[1:3] == "()"):
        return True
    depth = 0
    for c in text:
        if c == "," and depth == 0:
            return True
        depth += (c == "[") - (c == "]")
    return False


def _from_commastring(text: str) -> Dtype | None:
    """``_commastring`` then ``_convert_from_list``/``_convert_from_tuple``."""
    start = 0
    items: list[Dtype] = []
    is_list = False
    while start < len(text):
        match = _FORMAT.match(text, start)
        if match is None:  # pragma: no cover - every group can be empty
            return None
        order1, repeats, order2, name = match.groups()
        start = match.end()
        if start < len(text):
            if _SPACE.match(text, start):
                start = len(text)
            else:
                sep = _SEP.match(text, start)
                if sep is None:
                    return None
                start = sep.end()
                is_list = True
        if order1 and order2 and _CONVORDER.get(order1, order1) != _CONVORDER.get(order2, order2):
            return None
        order = order2 or order1
        spelled = ("" if order in ("|", "=", "<") else order) + name
        if not spelled and not repeats and start == len(text) and is_list:
            break  # _convert_from_list ignores a last empty item (a trailing comma)
        base = from_string(spelled)
        if base is None:
            return None
        if repeats:
            try:
                shape = ast.literal_eval(repeats)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                return None
            item = _subarray(base, shape)
            if item is None:
                return None
            base = item
        items.append(base)
    if not items:
        return None
    if is_list:
        return Dtype(hasobject=any(i.hasobject for i in items))
    return items[0]


def _subarray(base: Dtype, shape: object) -> Dtype | None:
    """``numpy.dtype((base, shape))``: a subarray (a void type), or ``base`` for shape ``()``;
    for a flexible type of no size and an integer, that type with that size."""
    if base.empty:
        if type(shape) is not int or shape < 0:
            return None  # "invalid itemsize in generic type tuple"
        return Dtype(hasobject=base.hasobject, padding=base.padding, empty=shape == 0)
    if type(shape) is int:
        shape = (shape,)
    if type(shape) is not tuple or not all(type(n) is int and n >= 0 for n in shape):
        return None
    if shape == ():
        return base
    if math.prod(shape) > _INT_MAX:
        return None
    return Dtype(hasobject=base.hasobject, padding=True, empty=math.prod(shape) == 0)


def from_descr(descr: object) -> Dtype | None:
    """``numpy.lib.format.descr_to_dtype(descr)``: a ``.npy`` header's description."""
    if isinstance(descr, str):
        return from_string(descr)
    if isinstance(descr, tuple):
        if not descr:
            return None
        base = from_descr(descr[0])
        return None if base is None or len(descr) < 2 else _subarray(base, descr[1])
    if not isinstance(descr, list | dict | set | frozenset):
        return None
    return _fields(descr, drop_padding=True)


def _fields(fields: Iterable[object], *, drop_padding: bool) -> Dtype | None:
    """A structured dtype from ``(name, description[, shape])`` items."""
    names: set[str] = set()
    hasobject = False
    for index, field in enumerate(fields):
        # numpy.dtype(list) wants tuples; descr_to_dtype unpacks whatever has two or three items
        allowed = (str, tuple, list) if drop_padding else (tuple,)
        if not isinstance(field, allowed) or len(field) not in (2, 3):
            return None
        name = field[0]
        base = from_descr(field[1]) if drop_padding else from_object(field[1])
        if base is None:
            return None
        if len(field) == 3:
            base = _subarray(base, field[2])
            if base is None:
                return None
        if drop_padding and name == "" and base.padding:
            continue  # descr_to_dtype drops unnamed void fields: numpy.save's padding
        if base.string and not drop_padding:
            return None  # numpy.dtype(list) refuses StringDType fields (the dict form allows them)
        # Names and titles share one namespace; numpy.dtype(list) names an unnamed field f<i>.
        labels = list(name) if isinstance(name, tuple) and len(name) == 2 else [name]
        if not drop_padding and labels[-1] == "":
            labels[-1] = f"f{index}"
        if not all(isinstance(label, str) for label in labels) or names & set(labels):
            return None
        names.update(str(label) for label in labels)
        hasobject = hasobject or base.hasobject
    return Dtype(hasobject=hasobject)


def from_object(obj: object) -> Dtype | None:
    """``numpy.dtype(obj)`` for the plain values a pickle can hold: a string, a list of
    fields, a ``(base, shape)`` tuple, or a ``{'names': ..., 'formats': ...}`` dict."""
    if isinstance(obj, str):
        return from_string(obj)
    if isinstance(obj, list):
        return _fields(obj, drop_padding=False)
    if isinstance(obj, tuple) and len(obj) == 2:
        base = from_object(obj[0])
        return None if base is None else _subarray(base, obj[1])
    if isinstance(obj, dict):
        formats = obj.get("formats")
        if isinstance(formats, list | tuple):
            parts = [from_object(f) for f in formats]
        else:  # {name: (dtype, offset[, title])}
            parts = [
                from_object(v[0]) if isinstance(v, tuple | list) and v else None
                for v in obj.values()
            ]
        if any(p is None for p in parts):
            return None
        return Dtype(hasobject=any(p is not None and p.hasobject for p in parts))
    return None


def is_flexible(text: str) -> bool:
    """Whether a type string names a flexible type (bytes, str, void), whose item size a
    pickled dtype's state sets."""
    kind = text[1:] if text[:1] in _BYTEORDER else text
    return kind[:1] in _FLEXIBLE and (len(kind) == 1 or kind[1:].isdigit())


# ---- item sizes of numeric dtypes ------------------------------------------------------------

_TYPESTR = re.compile(r"^[<>|=]?([?bBhHiIlLqQpPefdgFDGSaUVOMmcu])(\d*)(\[\w+\])?$")
_FIXED_SIZES = {"?": 1, "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8}
_FIXED_SIZES |= {"Q": 8, "p": 8, "P": 8, "e": 2, "f": 4, "d": 8, "g": 16, "F": 8, "D": 16}
_FIXED_SIZES |= {"G": 32, "O": 8, "M": 8, "m": 8, "c": 1}


def itemsize(descr: object) -> int | None:
    """Bytes per element of a simple description (a type string or a list of fields), or None
    when it is not understood."""
    if isinstance(descr, str):
        match = _TYPESTR.match(descr)
        if match is None:
            return None
        kind, digits = match.group(1), match.group(2)
        if digits:
            return int(digits) * (4 if kind == "U" else 1)
        return _FIXED_SIZES.get(kind)
    if isinstance(descr, list):
        total = 0
        for field in descr:
            if not isinstance(field, tuple) or len(field) < 2:
                return None
            size = itemsize(field[1])
            if size is None:
                return None
            shape = field[2] if len(field) > 2 else ()
            shape = (shape,) if isinstance(shape, int) else shape
            if not isinstance(shape, tuple) or not all(isinstance(n, int) for n in shape):
                return None
            total += size * math.prod(shape)
        return total
    return None
