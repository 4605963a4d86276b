"""One walk over a parsed document's containers, shared by the configuration analyses.

Documents are dicts, lists and scalars as :mod:`json` or :func:`.yamlnodes.to_tree` build them;
YAML aliases make some containers shared (and even recursive), so each container is visited
once, with the first key path that reaches it. Scalars are not visited: the analyses look at
mappings, and a 300,000-entry vocabulary costs one pass over its values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Path = tuple[str | int, ...]
"""Keys and list indexes from the document root."""


def containers(
    root: object, on_string: Callable[[str, Path], None] | None = None
) -> Iterator[tuple[dict[str, Any] | list[Any], Path]]:
    """Every dict and list of ``root`` once, parents before children, in document order.

    ``on_string`` is called with each string holding ``${`` (an OmegaConf interpolation) and
    its key path.
    """
    seen: set[int] = set()
    stack: list[tuple[Any, Path]] = [(root, ())]
    while stack:
        value, path = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        yield value, path
        items = reversed(value.items()) if isinstance(value, dict) else _indexed(value)
        for key, item in items:
            kind = type(item)
            if kind is dict or kind is list or isinstance(item, dict | list):
                stack.append((item, (*path, key if isinstance(key, int) else str(key))))
            elif on_string is not None and kind is str and "${" in item:
                on_string(item, (*path, key if isinstance(key, int) else str(key)))


def _indexed(items: list[Any]) -> Iterator[tuple[int, Any]]:
    """``(index, item)`` from the last item to the first."""
    for index in range(len(items) - 1, -1, -1):
        yield index, items[index]


def shown(path: Path) -> str:
    """A key path as people write it: ``model.layers[0]._target_``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out or "the document root"
