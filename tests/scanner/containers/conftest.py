"""Fixtures for container tests: scanning helpers and recorders at the pickle seam.

The container handlers hand pickles to the pickle analyzer through two seams: the format
table's handler for ``Format.PICKLE`` (members found by content) and ``analyze_pickles`` (checkpoint
pickles, with persistent ids expected). ``pickle_calls`` replaces both with recorders, so that
these tests check exactly which bytes reach the analyzer, and under which location, whatever
the analyzer itself reports.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelshield.core.findings import FileResult, Location
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.scanner import engine, registry
from modelshield.scanner.context import ScanContext
from modelshield.scanner.registry import Format


def scan(path: Path | str, **limits: int) -> FileResult:
    """Scan one file with default policy, or with some limits changed.

    Hostile input must give findings, never internal errors: any error fails the test.
    """
    policy = Policy(limits=Limits(**limits)) if limits else Policy()
    result = engine.scan_file(str(path), policy)
    assert result.errors == (), [e.message for e in result.errors]
    return result


def rule_ids(result: FileResult) -> list[str]:
    """The rule ids of a result's findings, sorted."""
    return sorted(f.rule_id for f in result.findings)


@dataclass(frozen=True)
class PickleCall:
    """One buffer handed to the pickle analyzer."""

    location: Location
    data: bytes
    persistent_ids_expected: bool
    torchscript: bool = False


@pytest.fixture
def pickle_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[PickleCall]]:
    """Record every buffer routed to the pickle analyzer instead of analysing it."""
    calls: list[PickleCall] = []

    def handler(ctx: ScanContext, data: memoryview, location: Location) -> None:
        calls.append(PickleCall(location, bytes(data), False))

    def analyze_pickles(
        ctx: ScanContext,
        data: memoryview,
        location: Location,
        *,
        persistent_ids_expected: bool = False,
        max_streams: int | None = None,
        torchscript: bool = False,
    ) -> int:
        calls.append(PickleCall(location, bytes(data), persistent_ids_expected, torchscript))
        return 1

    monkeypatch.setitem(registry._HANDLERS, Format.PICKLE, handler)
    zip_module = importlib.import_module("modelshield.scanner.formats.archive_zip")
    monkeypatch.setattr(zip_module, "analyze_pickles", analyze_pickles)
    yield calls
