"""CVSS base scores for advisory severity (v3.0/v3.1 and v2 vectors).

OSV records carry CVSS *vectors*, not scores. The base-score formulas are short and stable
(FIRST's specifications), so they are computed here rather than adding a dependency. CVSS v4
needs FIRST's large lookup tables: a v4-only record falls back to the database's own label
(``database_specific.severity``), and a record with neither has an unknown severity, which the
auditor reports as HIGH (never silently low).

Specifications: https://www.first.org/cvss/v3.1/specification-document#7-1-Base-Metrics-Equations
and https://www.first.org/cvss/v2/guide#3-2-1-Base-Equation.
"""

from __future__ import annotations

import math

from modelshield.audit.records import CvssScore
from modelshield.core.findings import Severity

_V3_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
# Privileges Required weighs more when the scope changes.
_V3_PR = {"U": {"N": 0.85, "L": 0.62, "H": 0.27}, "C": {"N": 0.85, "L": 0.68, "H": 0.5}}

_V2_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"L": 0.395, "A": 0.646, "N": 1.0},
    "AC": {"H": 0.35, "M": 0.61, "L": 0.71},
    "Au": {"M": 0.45, "S": 0.56, "N": 0.704},
    "C": {"N": 0.0, "P": 0.275, "C": 0.660},
    "I": {"N": 0.0, "P": 0.275, "C": 0.660},
    "A": {"N": 0.0, "P": 0.275, "C": 0.660},
}

_LABELS = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MODERATE": Severity.MEDIUM,
    "MEDIUM": Severity.MEDIUM,
    "LOW": Severity.LOW,
}


def _metrics(vector: str, prefix_parts: int) -> dict[str, str]:
    parts = vector.strip().split("/")[prefix_parts:]
    out: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition(":")
        if not sep:
            raise ValueError(f"malformed CVSS metric {part!r}")
        out[key] = value
    return out


def _roundup(value: float) -> float:
    """CVSS v3.1 Roundup: the smallest one-decimal number >= value, robust to float error."""
    scaled = round(value * 100_000)
    if scaled % 10_000 == 0:
        return scaled / 100_000
    return (math.floor(scaled / 10_000) + 1) / 10.0


def _v3_rating(score: float) -> Severity:
    if score >= 9.0:
        return Severity.CRITICAL
    if score >= 7.0:
        return Severity.HIGH
    if score >= 4.0:
        return Severity.MEDIUM
    if score > 0.0:
        return Severity.LOW
    return Severity.INFO


def cvss3_score(vector: str) -> CvssScore:
    """Base score of a ``CVSS:3.x/AV:N/AC:L/...`` vector. Raises ValueError when malformed."""
    if not vector.startswith("CVSS:3."):
        raise ValueError(f"not a CVSS v3 vector: {vector!r}")
    m = _metrics(vector, 1)
    try:
        scope = m["S"]
        w = {k: _V3_WEIGHTS[k][m[k]] for k in _V3_WEIGHTS}
        pr = _V3_PR[scope][m["PR"]]
    except KeyError as e:
        raise ValueError(f"incomplete or invalid CVSS v3 vector {vector!r}") from e
    iss = 1 - (1 - w["C"]) * (1 - w["I"]) * (1 - w["A"])
    changed = 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02) ** 15
    impact = 6.42 * iss if scope == "U" else changed
    exploitability = 8.22 * w["AV"] * w["AC"] * pr * w["UI"]
    if impact <= 0:
        base = 0.0
    elif scope == "U":
        base = _roundup(min(impact + exploitability, 10.0))
    else:
        base = _roundup(min(1.08 * (impact + exploitability), 10.0))
    return CvssScore(vector, base, _v3_rating(base))


def cvss2_score(vector: str) -> CvssScore:
    """Base score of a ``AV:N/AC:L/Au:N/C:P/I:P/A:P`` vector. Raises ValueError when malformed."""
    text = vector[len("CVSS:2.0/") :] if vector.startswith("CVSS:2.0/") else vector
    m = _metrics(text, 0)
    try:
        w = {k: _V2_WEIGHTS[k][m[k]] for k in _V2_WEIGHTS}
    except KeyError as e:
        raise ValueError(f"incomplete or invalid CVSS v2 vector {vector!r}") from e
    impact = 10.41 * (1 - (1 - w["C"]) * (1 - w["I"]) * (1 - w["A"]))
    exploitability = 20 * w["AV"] * w["AC"] * w["Au"]
    f_impact = 0.0 if impact == 0 else 1.176
    base = round((0.6 * impact + 0.4 * exploitability - 1.5) * f_impact + 1e-9, 1)
    if base >= 7.0:
        rating = Severity.HIGH
    elif base >= 4.0:
        rating = Severity.MEDIUM
    elif base > 0:
        rating = Severity.LOW
    else:
        rating = Severity.INFO
    return CvssScore(vector, base, rating)


def score_vector(kind: str, vector: str) -> CvssScore | None:
    """Score an OSV ``severity`` entry (``CVSS_V3``/``CVSS_V2``); None for kinds not computed."""
    if kind == "CVSS_V3" or vector.startswith("CVSS:3."):
        return cvss3_score(vector)
    if kind == "CVSS_V2":
        return cvss2_score(vector)
    return None


def label_severity(label: str) -> Severity | None:
    """A database's own label (GHSA's ``MODERATE``...) as a severity; None when unknown."""
    return _LABELS.get(label.strip().upper())
