"""Where a policy error is in its TOML text: the line of the key, table or value it names.

``tomllib`` gives values without positions, so a validation error names a key path
(``ci.skip``, ``suppress[1].paths``) and this module finds that path's line again by reading
the text the way TOML nests it: ``[table]`` and ``[[array]]`` headers (the n-th ``[[x]]`` is
``x[n-1]``), dotted and quoted keys, and, in a ``pyproject.toml``, only the tables under
``[tool.modelshield]``. A path that is not written out (an entry of an inline array) gives the
line of the closest key or table that contains it; a message that names no path gives the
first line quoting a value it names. Best effort, for messages: None when nothing matches.
"""

from __future__ import annotations

import re

Part = tuple[str, "int | None"]
"""One step of a key path: a key and, for an array entry, its index."""

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_BARE_OR_QUOTED = r"(?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)"
_KEY = re.compile(rf"^\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*=")
_NAME = re.compile(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)")
_STEP = re.compile(r"([^.\[\]]+)(?:\[(\d+)\])?")

# The subject of each kind of validation message, after "SOURCE: ".
_SUBJECTS = (
    (re.compile(r"unknown key\(s\) in \[([^\]]+)\]: ([^,;\s]+)"), "{0}.{1}"),
    (re.compile(r"unknown key\(s\) ([^,;\s]+)"), "{0}"),
    (re.compile(r"unknown limit\(s\): ([^,;\s]+)"), "limits.{0}"),
    (re.compile(r"limit '([^']+)'"), "limits.{0}"),
    (re.compile(r"'([^']+)' must"), "{0}"),
    (re.compile(r"([A-Za-z_][\w.\-\[\]]*)(?::| needs| is| must)"), "{0}"),
)


def _names(dotted: str) -> list[str]:
    """The keys of a dotted TOML key, quotes removed."""
    return [next(g for g in m.groups() if g is not None) for m in _NAME.finditer(dotted)]


def parse_path(path: str) -> list[Part]:
    """``audit.ignore[0].reason`` as ``[("audit", None), ("ignore", 0), ("reason", None)]``."""
    return [
        (m.group(1), None if m.group(2) is None else int(m.group(2))) for m in _STEP.finditer(path)
    ]


def _covers(written: list[Part], wanted: list[Part]) -> bool:
    """Whether ``written`` (a table or key of the text) is ``wanted`` or contains it."""
    if len(written) > len(wanted):
        return False
    return all(
        name == want and (index is None or want_index is None or index == want_index)
        for (name, index), (want, want_index) in zip(written, wanted, strict=False)
    )


def key_line(
    text: str, path: list[Part], *, pyproject: bool = False, exact: bool = False
) -> int | None:
    """The line that writes ``path`` (1-based), or (unless ``exact``) the closest one that
    contains it."""
    current: list[Part] | None = None if pyproject else []
    arrays: dict[tuple[str, ...], int] = {}
    closest: tuple[int, int] | None = None  # (depth, line)

    def consider(written: list[Part], n: int) -> bool:
        nonlocal closest
        if not _covers(written, path):
            return False
        if len(written) == len(path):
            return True
        if closest is None or len(written) > closest[0]:
            closest = (len(written), n)
        return False

    for n, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            names = _names(header.group(2))
            if pyproject:
                if names[:2] != ["tool", "modelshield"]:
                    current = None
                    continue
                names = names[2:]
            if not names:
                current = []
                continue
            if header.group(1) == "[[":
                array = tuple(names)
                arrays[array] = arrays.get(array, -1) + 1
                current = [(name, None) for name in names[:-1]] + [(names[-1], arrays[array])]
            else:
                current = [(name, None) for name in names]
            if consider(current, n):
                return n
            continue
        if current is None:
            continue
        key = _KEY.match(line)
        if key and consider(current + [(name, None) for name in _names(key.group(1))], n):
            return n
    return None if closest is None or exact else closest[1]


def quoted_line(text: str, value: str) -> int | None:
    """The first line that quotes ``value`` (either quote), or None."""
    for n, line in enumerate(text.splitlines(), 1):
        if f"'{value}'" in line or f'"{value}"' in line:
            return n
    return None


def error_line(text: str, message: str, *, pyproject: bool = False) -> int | None:
    """The line of ``text`` a policy validation ``message`` (without its "SOURCE: " prefix)
    is about, or None."""
    for pattern, template in _SUBJECTS:
        found = pattern.match(message)
        if found:
            line = key_line(text, parse_path(template.format(*found.groups())), pyproject=pyproject)
            if line is not None:
                return line
            break
    for value in re.findall(r"'([^']+)'", message):
        line = quoted_line(text, value)
        if line is not None:
            return line
    return None
