"""Entry points: run the configuration analyses on a parsed document or an embedded string.

Handlers call :func:`analyse_document` on every JSON document and every YAML document they
parse, and :func:`analyse_yaml` on a YAML text already read into nodes; metadata strings
(safetensors ``__metadata__``, GGUF values, JSON string values) that hold a configuration go
through :func:`analyse_embedded`. An analysis is skipped when the document's text shows none of
its markers and holds no backslash (an escape such as ``\\u005f`` or ``\\/`` could spell a
marker that the text does not show), so that most large tokenizer files cost a few substring
searches.
"""

from __future__ import annotations

import json
import re

from modelshield.core.findings import Location
from modelshield.scanner.callables import Tier
from modelshield.scanner.config.jsonpickle import check_jsonpickle, looks_like_jsonpickle
from modelshield.scanner.config.judge import judge_dotted
from modelshield.scanner.config.skops import check_skops, is_skops_schema
from modelshield.scanner.config.targets import Positions, check_targets
from modelshield.scanner.config.yamlnodes import (
    MAPPING,
    SEQUENCE,
    Composition,
    compose,
    expanded_size,
    to_tree,
)
from modelshield.scanner.config.yamltags import check_tags
from modelshield.scanner.context import ScanContext
from modelshield.scanner.rules import YAML_ALIAS_EXPANSION

#: Text that shows a document may hold an instantiation target or a resolver call.
TARGET_MARKERS = (
    "_target_",
    "class_path",
    "params",
    "target",
    "handlers",
    "formatters",
    "filters",
    "${",
    "trust_remote_code",
)
#: ``"type": "a.b"`` values (mmengine registries): only a denied callable is reported, so a
#: document whose ``type`` values are all registry names is not walked for them.
_DOTTED_TYPE = re.compile(
    r"""["']?\btype["']?\s*[:=]\s*["']?([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)["']?"""
)
#: Markers of an embedded configuration in a metadata string.
_EMBEDDED = re.compile(r"_target_|class_path|\"py/|!!python|tag:yaml\.org,2002:python|%TAG")
_MAX_EMBEDDED = 16 << 20


def analyse_document(
    ctx: ScanContext,
    root: object,
    location: Location,
    *,
    source: str,
    text: str | None = None,
    positions: Positions | None = None,
    json_document: bool = True,
) -> None:
    """Run the target, jsonpickle and skops analyses on a parsed document.

    ``text`` is the document's text, used to skip analyses whose markers it lacks (None: run
    them all); ``json_document`` is false for YAML (jsonpickle and skops write JSON only).
    """
    if json_document and is_skops_schema(root):
        check_skops(ctx, root, location, source=source)
        return
    escaped = text is None or "\\" in text
    if escaped or _wants_targets(ctx, text or ""):
        check_targets(ctx, root, location, source=source, positions=positions)
    if json_document and (escaped or looks_like_jsonpickle(text or "")):
        check_jsonpickle(ctx, root, location, source=source)


def _wants_targets(ctx: ScanContext, text: str) -> bool:
    if any(marker in text for marker in TARGET_MARKERS):
        return True
    for match in _DOTTED_TYPE.finditer(text):
        if judge_dotted(ctx, match.group(1)).tier is Tier.DANGEROUS:
            return True
    return False


def analyse_yaml(
    ctx: ScanContext,
    composition: Composition,
    location: Location,
    *,
    source: str,
    text: str | None = None,
) -> list[tuple[object, Positions]]:
    """Analyse YAML documents already read into nodes: object tags, alias expansion, and the
    document analyses on each. Returns each document as plain values with its positions, for
    the caller's own walks (metadata strings)."""
    documents = composition.documents
    if composition.tags:
        check_tags(ctx, documents, location, source=source)
    trees: list[tuple[object, Positions]] = []
    cap = ctx.limits.max_document_values
    for index, document in enumerate(documents):
        size = expanded_size(document, cap)
        if size is None or size > cap:
            _alias_expansion(ctx, location, source, index, len(documents), size, cap)
        if document.kind not in (MAPPING, SEQUENCE):
            continue
        tree = to_tree(document)
        where = source if len(documents) == 1 else f"{source} (document {index + 1})"
        analyse_document(
            ctx,
            tree.root,
            location,
            source=where,
            text=text,
            positions=tree.positions,
            json_document=False,
        )
        trees.append((tree.root, tree.positions))
    return trees


def _alias_expansion(
    ctx: ScanContext,
    location: Location,
    source: str,
    index: int,
    count: int,
    size: int | None,
    cap: int,
) -> None:
    which = f" (document {index + 1})" if count > 1 else ""
    what = (
        "contains itself through an anchor, so expanding it never ends"
        if size is None
        else f"expands to more than {cap} nodes through its aliases (limits.max_document_values)"
    )
    ctx.add(
        YAML_ALIAS_EXPANSION.finding(
            location,
            f"{source}{which} {what}. Each node was analysed once; a loader that copies "
            "aliased nodes (OmegaConf, deepcopy, JSON export) exhausts memory or never ends.",
            evidence={"expanded": "endless" if size is None else f">{cap}", "where": source},
        )
    )


def analyse_embedded(ctx: ScanContext, value: str, location: Location, *, where: str) -> None:
    """Analyse a metadata string that holds a JSON or YAML configuration (FlexTok-style
    ``_target_`` configs in safetensors metadata, YAML with Python tags in GGUF values)."""
    if len(value) > _MAX_EMBEDDED or not _EMBEDDED.search(value):
        return
    source = f"the configuration in {where}"
    stripped = value.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            document = json.loads(value)
        except (ValueError, RecursionError):
            document = None
        if isinstance(document, dict | list):
            analyse_document(ctx, document, location, source=source, text=value)
            return
    composition = compose(ctx, value, location)
    if composition.documents:
        analyse_yaml(ctx, composition, location, source=source, text=value)
