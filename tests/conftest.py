"""Shared fixtures: the public labelled corpus beside the project, and a scratch directory."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import settings

# Property tests run the same examples on every run of the suite ("ci", the default), so that a
# run of `make test` is reproducible; `pytest --hypothesis-profile=explore` searches further
# with fresh random examples (run it when changing a parser).
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=1_000)
settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "public"
ADVISORIES = SHARED / "advisories"


T = TypeVar("T")


def traced_peak(run: Callable[[], T]) -> tuple[T, int]:
    """``run()``'s result and the peak of Python memory allocated while it ran."""
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def corpus_rows() -> list[dict[str, Any]]:
    """The corpus manifest rows, or [] when the corpus is absent."""
    manifest = CORPUS / "manifest.jsonl"
    if not manifest.is_file():
        return []
    return [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The public corpus folder; skips (with the reason) where it is absent."""
    if not (CORPUS / "manifest.jsonl").is_file():
        pytest.skip(f"public corpus not found at {CORPUS} (it lives in ../shared beside the repo)")
    return CORPUS


@pytest.fixture(scope="session")
def advisories_dir() -> Path:
    """The offline PyPA advisory snapshot; skips (with the reason) where it is absent."""
    if not (ADVISORIES / "pypa" / "vulns").is_dir():
        pytest.skip(f"advisory snapshot not found at {ADVISORIES}")
    return ADVISORIES
