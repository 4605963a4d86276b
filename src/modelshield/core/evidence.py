"""Evidence with types: the keys whose values are numbers or lists, for machine readers.

A :class:`~modelshield.core.findings.Finding` keeps its evidence as text (what people read,
and what every detector writes). Reports written for programs (JSON, SARIF) give the keys
below their type: counts, sizes, byte offsets, lines and columns as integers; lists of ids as
arrays. A value is converted only when it is exactly what the type promises (``"42"``, not
``"42 bytes"``); anything else stays a string, so no fact is ever lost or invented.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

EvidenceValue = str | int | list[str]
"""A typed evidence value: text, an integer, or a list of strings."""

INTEGER_KEYS: frozenset[str] = frozenset(
    {
        "line",
        "column",
        "offset",
        "size",
        "bytes",
        "available_bytes",
        "declared_bytes",
        "expected_bytes",
        "stored_bytes",
        "prefix_bytes",
        "inflated",
        "compressed",
        "entries",
        "executed_lines",
        "files",
        "more",
        "overlaps",
        "age_days",
        "count",
        "expected_size",
        "actual_size",
        "expected_chunks",
        "actual_chunks",
        "changed_chunks",
        "changed",
        "rows",
        "queries",
        "slices_tested",
        "training_rows",
        "evaluation_rows",
        "rows_probed",
    }
)
"""Keys whose values are integers (counts, sizes in bytes, offsets, 1-based lines and
columns)."""

LIST_KEYS: Mapping[str, str] = {
    "ids": ", ",
    "fixed_versions": ", ",
    "categories": ", ",
    "kinds": ", ",
    "references": " ",
}
"""Keys whose values are lists, with the separator the text form joins them with: advisory
ids and their aliases, fixed versions, reference URLs, categories."""

POSITION_KEYS: frozenset[str] = frozenset({"line", "column", "offset"})
"""Keys that say where a finding is rather than what it is (left out of its fingerprint)."""

_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")


def typed_value(key: str, value: str) -> EvidenceValue:
    """One evidence value with its type (the text itself when it is not of that type)."""
    if key in INTEGER_KEYS and _INTEGER.fullmatch(value):
        return int(value)
    separator = LIST_KEYS.get(key)
    if separator is not None:
        return [item for item in value.split(separator) if item]
    return value


def typed(evidence: Mapping[str, str]) -> dict[str, EvidenceValue]:
    """The evidence with typed values, keys sorted."""
    return {str(k): typed_value(str(k), str(evidence[k])) for k in sorted(evidence)}


def line_of(evidence: Mapping[str, str]) -> int | None:
    """The 1-based line the evidence names, or None."""
    value = typed_value("line", evidence.get("line", ""))
    return value if isinstance(value, int) and value > 0 else None


def column_of(evidence: Mapping[str, str]) -> int | None:
    """The 1-based column the evidence names, or None."""
    value = typed_value("column", evidence.get("column", ""))
    return value if isinstance(value, int) and value > 0 else None
