"""The analyzer alone on the public corpus's pickle-family files.

Every malicious pickle must yield a finding that names what runs (a dangerous import or call,
a dynamic import, a state write, code-like arguments, or an unsafe embedded pickle); no benign
one may be flagged at high or above; nothing may raise. The whole set takes well under a second.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from modelshield.core.findings import Location, Severity
from modelshield.scanner.pickle.analyzer import analyze_pickles
from tests.conftest import CORPUS, corpus_rows
from tests.scanner.pickle.helpers import make_ctx

DECISIVE = {
    "PICKLE-IMPORT-DANGEROUS",
    "PICKLE-CALL-DANGEROUS",
    "PICKLE-DYNAMIC-IMPORT",
    "PICKLE-STATE-WRITE-MODULE",
    "PICKLE-CALL-CODE-ARGUMENT",
}


def _pickle_rows() -> list[dict[str, Any]]:
    """Raw pickles, and the PyTorch files that are not zip archives (legacy, raw, fakes)."""
    rows = []
    for row in corpus_rows():
        if row["format"] == "pickle":
            rows.append(row)
        elif row["format"] == "pytorch":
            with (CORPUS / row["file"]).open("rb") as fh:
                if fh.read(2) != b"PK":
                    rows.append(row)
    return rows


ROWS = _pickle_rows()
IDS = [row["file"].removeprefix("files/") for row in ROWS]


def _run(path: Path) -> list[Any]:
    from modelshield.scanner.callables import CallablePolicy

    ctx = make_ctx(callables=CallablePolicy.default())
    analyze_pickles(ctx, memoryview(path.read_bytes()), Location(str(path)))
    assert ctx.errors == []
    return ctx.findings


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_corpus_pickle(row: dict[str, Any], corpus_dir: Path) -> None:
    findings = _run(corpus_dir / row["file"])
    summary = [(f.rule_id, f.severity.label, f.evidence.get("callable", "")) for f in findings]
    if row["label"] == "malicious":
        decisive = [
            f
            for f in findings
            if f.rule_id in DECISIVE
            or (f.rule_id == "PICKLE-EMBEDDED" and f.severity >= Severity.HIGH)
        ]
        assert decisive, f"{row['technique']}: {summary}"
        assert max(f.severity for f in decisive) >= Severity.HIGH
    else:
        assert all(f.severity < Severity.HIGH for f in findings), summary


def test_corpus_pickles_are_fast(corpus_dir: Path) -> None:
    paths = [corpus_dir / row["file"] for row in ROWS]
    _run(paths[0])  # warm the callable lists
    started = time.perf_counter()
    for path in paths:
        _run(path)
    elapsed = time.perf_counter() - started
    assert len(paths) > 100
    assert elapsed < 5.0, elapsed  # about 0.2 s on one laptop core
