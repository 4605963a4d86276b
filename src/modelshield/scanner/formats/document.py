"""Text documents that ship with models: JSON (tokenizer and model configs) and Jinja templates.

A JSON document (``tokenizer_config.json``, ``chat_template.json``, ``config.json``...) is parsed
with the standard library and walked without recursion; every string value is analysed as
metadata (:mod:`modelshield.scanner.metadata`). Strings under a ``chat_template`` key
(including the list form ``[{"name": ..., "template": ...}]``) are the templates that
``transformers`` and the servers built on it render, so they are analysed as rendered chat
templates; any other string holding Jinja syntax is analysed too, with findings capped at
medium.

A text file holding Jinja delimiters (``chat_template.jinja``, a ``.j2`` file, a YAML config
with a template in it) is analysed as one template, as a renderer given the file would see it.

Both kinds are recognised by content (:mod:`modelshield.scanner.detect`), never by name.
"""

from __future__ import annotations

import json
from typing import Any

from modelshield.core.findings import Location
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.metadata import check_string
from modelshield.scanner.rules import SCAN_LIMIT
from modelshield.scanner.templates import check_template, looks_like_template

#: The key under which chat templates are stored (tokenizer_config.json, chat_template.json,
#: processor configs).
TEMPLATE_KEY = "chat_template"
#: Strings analysed between two checks of the time budget.
_DEADLINE_EVERY = 4096


def scan_json(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Parse a JSON document and analyse its strings; text that is not JSON is searched for a
    template."""
    text = _text(ctx, data, location)
    if text is None:
        return
    values = text.count(",") + 1
    if values > ctx.limits.max_document_values:
        raise LimitExceeded(
            "max_document_values",
            f"the JSON document holds about {values} values, more than "
            f"limits.max_document_values ({ctx.limits.max_document_values}); it was not parsed",
            location,
        )
    try:
        document = json.loads(text)
    except RecursionError:
        ctx.add(
            SCAN_LIMIT.finding(
                location,
                "The JSON document nests deeper than the parser follows, so it was not "
                "analysed (Python's and Rust's JSON readers refuse it too).",
                evidence={"limit": "max_structure_depth"},
            )
        )
        return
    except ValueError:
        # Not JSON after all (JSON5, a truncated file...): no JSON loader reads it. A template
        # in it is still analysed, as a text file.
        if looks_like_template(text):
            check_template(ctx, text, location, rendered=True, where="this file", quiet=True)
        return
    _walk(ctx, document, location)


def scan_template(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Analyse a text file holding Jinja syntax as one template."""
    text = _text(ctx, data, location)
    if text is not None:
        check_template(ctx, text, location, rendered=True, where="this file", quiet=True)


def _text(ctx: ScanContext, data: memoryview, location: Location) -> str | None:
    limit = ctx.limits.max_document_bytes
    if len(data) > limit:
        ctx.add(
            SCAN_LIMIT.finding(
                location,
                f"The text document has {len(data)} bytes, above limits.max_document_bytes "
                f"({limit}); it was not analysed.",
                evidence={"limit": "max_document_bytes", "size": str(len(data))},
            )
        )
        return None
    ctx.bytes_read += len(data)
    return bytes(data).decode("utf-8-sig", "replace")


def _walk(ctx: ScanContext, document: Any, location: Location) -> None:
    """Analyse every string in a parsed document, iteratively, bounded in depth."""
    max_depth = ctx.limits.max_structure_depth
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    strings = 0
    deep = False
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            strings += 1
            if strings % _DEADLINE_EVERY == 0:
                ctx.check_deadline(location)
            _string(ctx, value, path, location)
            continue
        if not isinstance(value, dict | list):
            continue
        if len(path) >= max_depth:
            deep = True
            continue
        if isinstance(value, dict):
            stack.extend((v, (*path, str(k))) for k, v in reversed(value.items()))
        else:
            stack.extend((v, (*path, i)) for i, v in reversed(list(enumerate(value))))
    if deep:
        raise LimitExceeded(
            "max_structure_depth",
            f"parts of the JSON document nested deeper than {max_depth} levels were not analysed",
            location,
        )


def _string(ctx: ScanContext, value: str, path: tuple[str | int, ...], location: Location) -> None:
    keys = [p for p in path if isinstance(p, str)]
    key = keys[-1] if keys else ""
    rendered = bool(path) and (
        path[-1] == TEMPLATE_KEY
        or (len(path) >= 3 and path[-3] == TEMPLATE_KEY and path[-1] == "template")
    )
    check_string(
        ctx,
        value,
        location,
        key=key,
        where=(lambda: f"JSON key {_path(path)}") if path else "this JSON document",
        rendered_template=rendered,
    )


def _path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return repr(out)
