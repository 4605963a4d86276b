"""The running interpreter's installed distributions (``modelshield audit --env``).

Reads only metadata (``importlib.metadata``): nothing is imported. Where a distribution is
installed twice on ``sys.path``, the first one (the one ``import`` would find) is audited.
"""

from __future__ import annotations

import importlib.metadata
import sys

from packaging.utils import canonicalize_name

from modelshield.audit.inputs._common import InputBuilder, ParseOptions
from modelshield.audit.inputs.dependency import Dependency, InputKind, ParsedInput
from modelshield.core.findings import Location


def environment_label() -> str:
    """How the environment appears as an input path in reports."""
    return f"environment:{sys.prefix}"


def name_and_version(dist: importlib.metadata.Distribution) -> tuple[str | None, str | None]:
    """``Name`` and ``Version`` from the metadata's header block.

    ``dist.metadata`` parses the whole file (long description included) with the email
    parser, and ``dist.metadata["Name"]`` plus ``dist.version`` parse it two more times: for
    the 100-odd distributions of an ML environment that was most of an ``--env`` audit. The
    header block is read the same way ``importlib.metadata`` finds it (``METADATA``, else
    ``PKG-INFO``); a file without both headers falls back to its parser.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    found: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, colon, value = line.partition(":")
        if colon and not key[:1].isspace():
            found.setdefault(key.strip().lower(), value.strip())
    name, version = found.get("name"), found.get("version")
    if name and version:
        return name, version
    meta = dist.metadata
    return (meta["Name"] if meta is not None else None), dist.version


def parse_environment(
    paths: list[str] | None = None, options: ParseOptions | None = None
) -> ParsedInput:
    """Every distribution installed on ``paths`` (default ``sys.path``), pinned."""
    shown = environment_label()
    builder = InputBuilder(shown, InputKind.ENVIRONMENT, options or ParseOptions())
    seen: set[str] = set()
    deps: list[Dependency] = []
    for dist in importlib.metadata.distributions(path=paths if paths is not None else sys.path):
        name, version = name_and_version(dist)
        if not name or not version:
            continue
        canonical = canonicalize_name(name)
        if canonical in seen:
            continue
        seen.add(canonical)
        deps.append(
            Dependency(
                name=name,
                canonical=canonical,
                location=Location(shown),
                version=version,
                origin="installed",
            )
        )
    deps.sort(key=lambda d: d.canonical)
    for dep in deps:
        if not builder.add(dep):
            break
    builder.metadata["python"] = sys.version.split()[0]
    return builder.result()
