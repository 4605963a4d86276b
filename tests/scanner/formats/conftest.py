"""Helpers for the format tests: scan a file or a buffer, look at findings by rule."""

from __future__ import annotations

from pathlib import Path

from modelshield.core.findings import FileResult, Finding
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.scanner import engine

TEMPLATES = Path(__file__).parent / "chat_templates"

#: A protocol-4 pickle that calls ``os.system('id')`` when loaded.
EVIL_PICKLE = (
    b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
    b"\x8c\x02id\x94\x85\x94R\x94."
)


def scan(path: Path | str, **limits: int) -> FileResult:
    """Scan one file with the default policy (or some limits changed); errors fail the test."""
    policy = Policy(limits=Limits(**limits)) if limits else Policy()
    result = engine.scan_file(str(path), policy)
    assert result.errors == (), [e.message for e in result.errors]
    return result


def scan_bytes(tmp_path: Path, data: bytes, name: str = "sample", **limits: int) -> FileResult:
    """Write ``data`` under a neutral name and scan it (formats are detected by content)."""
    path = tmp_path / name
    path.write_bytes(data)
    return scan(path, **limits)


def rules(result: FileResult) -> set[str]:
    """The rule ids of a result."""
    return {f.rule_id for f in result.findings}


def of(result: FileResult, rule: str) -> list[Finding]:
    """The findings of one rule."""
    return [f for f in result.findings if f.rule_id == rule]


def published_templates() -> dict[str, str]:
    """The published chat templates kept as fixtures, by file name."""
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(TEMPLATES.glob("*.jinja"))}
