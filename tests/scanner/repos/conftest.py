"""Helpers for the repository tests: write a folder, scan it as a directory, look at results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelshield.core.findings import FileResult, Finding, Report, Repository
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.scanner import engine


def write(folder: Path, files: dict[str, str | bytes | dict[str, Any] | list[Any]]) -> Path:
    """Create ``files`` under ``folder``: text, bytes, or JSON (written as transformers and
    MLflow write it, indented)."""
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    return folder


def scan_dir(folder: Path, policy: Policy | None = None, **limits: int) -> Report:
    """Scan a directory as the command line does (raw report, no policy applied)."""
    if policy is None:
        policy = Policy(limits=Limits(**limits)) if limits else Policy()
    return engine.scan_paths([folder], policy)


def result(report: Report, name: str) -> FileResult:
    """The result of the file whose path ends with ``/name``."""
    [found] = [r for r in report.results if r.path.replace("\\", "/").endswith("/" + name)]
    return found


def of(result: FileResult, rule: str) -> list[Finding]:
    """The findings of one rule."""
    return [f for f in result.findings if f.rule_id == rule]


def rules(report: Report) -> set[str]:
    """Every rule id of a report."""
    return {f.rule_id for f in report.findings}


def roles(repository: Repository) -> dict[str, str]:
    """File name below the repository -> role."""
    root = repository.path.rstrip("/")
    return {f.path[len(root) + 1 :].replace("\\", "/"): f.role for f in repository.files}
