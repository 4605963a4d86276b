"""The public labelled corpus as a regression gate.

Every malicious file must be flagged at high or critical; no benign file may be flagged at high
or critical, and no file may produce an internal error. Files of formats that no scanner in
modelshield covers yet are strict expected failures that name the format, so that the day
support lands the xfail turns into a failure and must be removed.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelshield.core.findings import Severity
from modelshield.core.policy import Policy
from modelshield.scanner.engine import scan_file
from tests.conftest import CORPUS, corpus_rows

# Formats (manifest "format" or "category") without a scanner yet, with what is missing.
NOT_COVERED: dict[str, str] = {
    "onnx": "ONNX (custom domains, external data paths) is not scanned yet",
    "gguf": "GGUF (chat-template injection) is not scanned yet",
    "template_injection": "Jinja2 chat templates (GGUF / tokenizer_config.json SSTI) are not "
    "scanned yet",
    "metadata_policy": "safetensors / JSON config metadata strings are not checked yet",
}


def _params() -> list[Any]:
    params = []
    for row in corpus_rows():
        marks = []
        if row["label"] == "malicious":
            gap = NOT_COVERED.get(row["category"]) or NOT_COVERED.get(row["format"])
            if gap:
                marks.append(pytest.mark.xfail(strict=True, reason=f"{row['format']}: {gap}"))
        params.append(pytest.param(row, id=row["file"].removeprefix("files/"), marks=marks))
    if not params:
        params.append(
            pytest.param(
                None,
                id="corpus-absent",
                marks=pytest.mark.skip(reason=f"public corpus not found at {CORPUS}"),
            )
        )
    return params


@pytest.mark.parametrize("row", _params())
def test_corpus_file(row: dict[str, Any]) -> None:
    result = scan_file(str(CORPUS / row["file"]), Policy())
    assert not result.errors, f"internal errors: {result.errors}"
    worst = result.max_severity
    summary = [(f.rule_id, f.severity.label, f.title) for f in result.findings]
    if row["label"] == "malicious":
        assert worst is not None and worst >= Severity.HIGH, (
            f"malicious ({row['technique']}) not flagged at high+: {summary}"
        )
    else:
        assert worst is None or worst < Severity.HIGH, (
            f"benign file flagged at high+ ({row['technique']}): {summary}"
        )
