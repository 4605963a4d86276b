"""The running interpreter's installed distributions (``modelshield audit --env``).

Reads only metadata (``importlib.metadata``): nothing is imported. Where a distribution is
installed twice on ``sys.path``, the first one (the one ``import`` would find) is audited.
"""

from __future__ import annotations

import importlib.metadata
import sys

from packaging.utils import canonicalize_name

from modelshield.audit.interface import Dependency, InputKind, ParsedInput
from modelshield.core.findings import Location


def environment_label() -> str:
    """How the environment appears as an input path in reports."""
    return f"environment:{sys.prefix}"


def parse_environment(paths: list[str] | None = None) -> ParsedInput:
    """Every distribution installed on ``paths`` (default ``sys.path``), pinned."""
    shown = environment_label()
    seen: set[str] = set()
    deps: list[Dependency] = []
    for dist in importlib.metadata.distributions(path=paths if paths is not None else sys.path):
        name = dist.metadata["Name"] if dist.metadata is not None else None
        version = dist.version
        if not isinstance(name, str) or not name or not isinstance(version, str):
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
    return ParsedInput(
        path=shown,
        kind=InputKind.ENVIRONMENT,
        dependencies=tuple(deps),
        metadata={"dependencies": str(len(deps)), "python": sys.version.split()[0]},
    )
