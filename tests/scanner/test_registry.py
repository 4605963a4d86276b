"""The format table: complete, its handlers real, its extensions shared with the audit."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from modelshield.audit import InputKind
from modelshield.audit.discover import kind_of
from modelshield.scanner import registry
from modelshield.scanner.registry import FORMATS, Format, handler_for, model_extension

SCANNER = Path(registry.__file__).parent


def test_every_format_has_exactly_one_row() -> None:
    rows = [spec.format for spec in FORMATS]
    assert sorted(rows) == sorted(Format)


@pytest.mark.parametrize("spec", FORMATS, ids=lambda s: s.format.value)
def test_every_named_handler_exists_and_is_callable(spec: registry.FormatSpec) -> None:
    handler = handler_for(spec.format)
    assert (handler is None) == (spec.handler is None)
    if handler is not None:
        assert callable(handler)
        assert list(inspect.signature(handler).parameters) == ["ctx", "data", "location"]


def test_magic_numbers_are_unambiguous_in_table_order() -> None:
    seen: list[bytes] = []
    for spec in FORMATS:
        for magic in spec.magic:
            # A magic that starts with an earlier one would never be reached.
            assert not any(magic.startswith(earlier) for earlier in seen), magic
            seen.append(magic)


def test_format_modules_never_import_the_engine() -> None:
    """Imports point one way: engine -> registry -> (by name) formats -> context, rules."""
    for path in [*sorted((SCANNER / "formats").glob("*.py")), SCANNER / "context.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module != "modelshield.scanner.engine", path.name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("model.pt", ".pt"),
        ("MODEL.PKL", ".pkl"),
        ("model.joblib.xz", ".joblib"),
        ("clf.pkl.gz", ".pkl"),
        ("weights.npy", ".npy"),
        ("notes.txt", None),
        ("archive.tar.gz", None),
        ("model", None),
    ],
)
def test_model_extension_looks_through_compression(name: str, expected: str | None) -> None:
    assert model_extension(name) == expected


def test_the_audit_finds_models_by_the_scanners_extension_list() -> None:
    for ext in registry.MODEL_EXTENSIONS:
        assert kind_of(f"model{ext}", explicit=False) is InputKind.MODEL, ext
    assert kind_of("model.joblib.gz", explicit=False) is InputKind.MODEL
    assert kind_of("README.md", explicit=False) is None
