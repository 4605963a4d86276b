"""Handlers for raw pickles and legacy (non-zip) PyTorch checkpoints."""

from __future__ import annotations

from modelshield.core.findings import Location
from modelshield.scanner.context import ScanContext
from modelshield.scanner.pickle.analyzer import analyze_pickles


def scan_pickle(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Analyse every pickle in the buffer (a legacy PyTorch layout is recognised by content)."""
    analyze_pickles(ctx, data, location)


def scan_torch_legacy(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Analyse a legacy PyTorch file: five pickles, then raw storages that are skipped."""
    analyze_pickles(ctx, data, location, torch_legacy=True)
