"""The public labelled corpus as a regression gate.

Every malicious file must be flagged at high or critical; no benign file may be flagged at high
or critical, and no file may produce an internal error. Files of formats that no scanner in
modelshield covers yet are strict expected failures that name the format, so that the day
support lands the xfail turns into a failure and must be removed.

``metadata_policy`` samples hold strings that no loader executes (commands, script tags and
credentials in safetensors metadata or JSON configs): they must fail the default policy
(``fail_on``, medium), not reach high. One of them holds nothing but URLs, which are data and
are not reported; it stays a strict expected failure with that reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelshield.core.findings import Severity
from modelshield.core.policy import Policy
from modelshield.scanner.engine import scan_file
from tests.conftest import CORPUS, corpus_rows

# Formats (manifest "format" or "category") without a scanner yet, with what is missing.
NOT_COVERED: dict[str, str] = {}

# Files whose label the scanner disagrees with on purpose, with the reason.
DISAGREE: dict[str, str] = {
    "files/modelaudit/samples/safetensors/suspicious_url.safetensors": "URLs in metadata are "
    "data (model cards and LoRA metadata are full of them); nothing in the file runs or leaks",
}

# Categories whose malicious files need only fail the default policy (see the docstring).
POLICY_ONLY = frozenset({"metadata_policy"})


def _params() -> list[Any]:
    params = []
    for row in corpus_rows():
        marks = []
        if row["label"] == "malicious":
            gap = NOT_COVERED.get(row["category"]) or NOT_COVERED.get(row["format"])
            gap = gap or DISAGREE.get(row["file"])
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
        needed = Policy().fail_on if row["category"] in POLICY_ONLY else Severity.HIGH
        assert worst is not None and worst >= needed, (
            f"malicious ({row['technique']}) not flagged at {needed.label}+: {summary}"
        )
    else:
        assert worst is None or worst < Severity.HIGH, (
            f"benign file flagged at high+ ({row['technique']}): {summary}"
        )
