"""Text documents that ship with models: JSON and YAML configs, and Jinja templates.

A JSON document (``tokenizer_config.json``, ``chat_template.json``, ``config.json``...) is parsed
with the standard library and walked without recursion; every string value is analysed as
metadata (:mod:`modelshield.scanner.metadata`). Strings under a ``chat_template`` key
(including the list form ``[{"name": ..., "template": ...}]``) are the templates that
``transformers`` and the servers built on it render, so they are analysed as rendered chat
templates; any other string holding Jinja syntax is analysed too, with findings capped at
medium.

A text file holding Jinja delimiters (``chat_template.jinja``, a ``.j2`` file) is analysed as
one template, as a renderer given the file would see it.

A YAML document (``model_config.yaml`` in a ``.nemo`` archive, Lightning's ``hparams.yaml``,
an MLflow ``MLmodel``, a Hydra config) is read into a node graph without constructing anything
(:mod:`modelshield.scanner.config.yamlnodes`): its object-building tags, its instantiation
targets and its strings are analysed, like a JSON document's. Text that detection only
suspected of being YAML (``key: value`` lines) and that does not parse into a mapping or a
sequence is ordinary text; text that declares itself YAML (a ``.yaml`` name, directives,
Python tags) and does not parse is reported as not analysed.

Every parsed document also goes through the configuration analyses
(:mod:`modelshield.scanner.config.analyse`): instantiation targets, jsonpickle tags, skops
schemas.

All kinds are recognised by content (:mod:`modelshield.scanner.detect`), never by name.
"""

from __future__ import annotations

import json
from typing import Any

from modelshield.core.findings import Location, Severity
from modelshield.scanner.config.analyse import analyse_document, analyse_yaml
from modelshield.scanner.config.yamlnodes import SCALAR, Composition, compose
from modelshield.scanner.config.yamltags import TEXT_TAG
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.detect import declares_yaml
from modelshield.scanner.formats.unknown import loader_name
from modelshield.scanner.metadata import check_string
from modelshield.scanner.rules import SCAN_LIMIT, YAML_UNPARSEABLE
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
        # Not JSON after all (a YAML flow mapping, JSON5, a truncated file...): no JSON loader
        # reads it, a YAML loader may. What does not parse as YAML either is searched for a
        # template, as a text file.
        _yaml(ctx, bytes(data), text, location, suspected=False)
        return
    analyse_document(ctx, document, location, source=_source(location, "JSON"), text=text)
    _walk(ctx, document, location)


def scan_yaml(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Read YAML into nodes and analyse its tags, targets and strings; text that only looked
    like YAML is searched for a template, as any text file."""
    if not _within_size(ctx, data, location):
        return
    raw = bytes(data)
    _yaml(ctx, raw, _decoded(raw), location, suspected=True)


def _yaml(ctx: ScanContext, raw: bytes, text: str, location: Location, *, suspected: bool) -> None:
    """Analyse ``raw`` as YAML; ``suspected``: detection took it for YAML (not for JSON), so
    text that is not YAML is reported as ordinary text."""
    composition = compose(ctx, raw, location)
    source = _source(location, "YAML")
    structured = any(d.kind != SCALAR for d in composition.documents)
    if not structured and not composition.tags:
        if composition.error is not None and _declared(text, location):
            _unparseable(ctx, composition, text, location, source)
        elif composition.limit is not None:
            _limit(ctx, composition, location)
        elif suspected and ctx.depth == 0:
            ctx.refined_format = "text"  # prose that looked like YAML
        if looks_like_template(text):
            check_template(ctx, text, location, rendered=True, where="this file", quiet=True)
        return
    for tree, positions in analyse_yaml(ctx, composition, location, source=source, text=text):
        _walk(ctx, tree, location, kind="YAML", positions=positions)
    if composition.limit is not None:
        _limit(ctx, composition, location)
    elif composition.error is not None and not _front_matter(text, composition):
        _unparseable(ctx, composition, text, location, source)


def _decoded(raw: bytes) -> str:
    """The text as PyYAML's reader decodes a byte stream (UTF-16 after its byte-order mark,
    else UTF-8), with undecodable bytes replaced."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", "replace")
    return raw.decode("utf-8-sig", "replace")


def _declared(text: str, location: Location) -> bool:
    """Whether the content says it is YAML (directives, Python tags) or its name does."""
    name = loader_name(location) or ""
    return declares_yaml(text) or name.lower().endswith((".yaml", ".yml"))


def _front_matter(text: str, composition: Composition) -> bool:
    """Markdown with YAML front matter (a model card): a first document, then prose."""
    return bool(composition.documents) and text.lstrip("\ufeff \t\r\n").startswith("---")


def _unparseable(
    ctx: ScanContext, composition: Composition, text: str, location: Location, source: str
) -> None:
    error = composition.error
    assert error is not None
    where = "" if error.line is None else f" at line {error.line}, column {error.column}"
    tags = sorted({m.group(0)[:120] for m in TEXT_TAG.finditer(text[: 1 << 20])})
    evidence = {"problem": error.message[:300], "where": source}
    if error.line is not None:
        evidence["line"] = str(error.line)
        evidence["column"] = str(error.column)
    read = len(composition.documents)
    done = f"The {read} document(s) before it were analysed; the rest" if read else "It"
    message = (
        f"{source} could not be parsed as YAML{where}: {error.message[:200]}. {done} was not "
        "analysed."
    )
    severity = None
    if tags:
        evidence["python_tags"] = ", ".join(tags[:10])
        message += (
            f" The unread text holds Python object tags ({', '.join(tags[:3])}), which YAML "
            "readers that accept it would run."
        )
        severity = Severity.HIGH
    ctx.add(YAML_UNPARSEABLE.finding(location, message, severity=severity, evidence=evidence))


def _limit(ctx: ScanContext, composition: Composition, location: Location) -> None:
    assert composition.limit is not None
    name, detail = composition.limit
    error = LimitExceeded(name, detail, location)
    ctx.add(error.finding("YAML reading stopped"))


def _source(location: Location, kind: str) -> str:
    name = loader_name(location)
    return f"the {kind} document" if name is None else f"{kind} file {name!r}"


def scan_template(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Analyse a text file holding Jinja syntax as one template."""
    text = _text(ctx, data, location)
    if text is not None:
        check_template(ctx, text, location, rendered=True, where="this file", quiet=True)


def _within_size(ctx: ScanContext, data: memoryview, location: Location) -> bool:
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
        return False
    ctx.bytes_read += len(data)
    return True


def _text(ctx: ScanContext, data: memoryview, location: Location) -> str | None:
    if not _within_size(ctx, data, location):
        return None
    return bytes(data).decode("utf-8-sig", "replace")


def _walk(
    ctx: ScanContext,
    document: Any,
    location: Location,
    *,
    kind: str = "JSON",
    positions: dict[object, tuple[int, int]] | None = None,
) -> None:
    """Analyse every string in a parsed document, iteratively, bounded in depth; containers
    shared through YAML aliases are walked once."""
    max_depth = ctx.limits.max_structure_depth
    stack: list[tuple[Any, tuple[str | int, ...], Any]] = [(document, (), None)]
    seen: set[int] = set()
    strings = 0
    deep = False
    while stack:
        value, path, parent = stack.pop()
        if isinstance(value, str):
            strings += 1
            if strings % _DEADLINE_EVERY == 0:
                ctx.check_deadline(location)
            line = None
            if positions is not None and parent is not None:
                line = positions.get((id(parent), path[-1]))
            _string(ctx, value, path, location, kind, line)
            continue
        if not isinstance(value, dict | list):
            continue
        if len(path) >= max_depth:
            deep = True
            continue
        if positions is not None:
            if id(value) in seen:
                continue
            seen.add(id(value))
        if isinstance(value, dict):
            stack.extend((v, (*path, str(k)), value) for k, v in reversed(value.items()))
        else:
            stack.extend((v, (*path, i), value) for i, v in reversed(list(enumerate(value))))
    if deep:
        raise LimitExceeded(
            "max_structure_depth",
            f"parts of the {kind} document nested deeper than {max_depth} levels were not analysed",
            location,
        )


def _string(
    ctx: ScanContext,
    value: str,
    path: tuple[str | int, ...],
    location: Location,
    kind: str = "JSON",
    line: tuple[int, int] | None = None,
) -> None:
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
        where=(lambda: f"{kind} key {_path(path)}{_at(line)}") if path else f"this {kind} document",
        rendered_template=rendered,
    )


def _at(position: tuple[int, int] | None) -> str:
    return "" if position is None else f" (line {position[0]}, column {position[1]})"


def _path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return repr(out)
