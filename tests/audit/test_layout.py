"""The audit's layout (issue 13): records apart from the seam, no import circle, one word for
one thing, and no re-export layer."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import modelshield.audit as audit_package
from modelshield.audit import interface, match, records

AUDIT = Path(audit_package.__file__).parent


def audit_imports(path: Path) -> set[str]:
    """The ``modelshield.audit`` modules a file imports, at any level of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "modelshield.audit":
                found |= {f"modelshield.audit.{a.name}" for a in node.names}
            elif node.module.startswith("modelshield.audit."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("modelshield.audit.")}
    return found


def module_path(name: str) -> Path:
    rel = Path(*name.split(".")[2:])
    return AUDIT / f"{rel}.py" if (AUDIT / f"{rel}.py").is_file() else AUDIT / rel / "__init__.py"


def test_interface_holds_only_the_source_and_its_error() -> None:
    defined = {
        name
        for name, obj in vars(interface).items()
        if inspect.isclass(obj) and obj.__module__ == interface.__name__
    }
    assert defined == {"VulnerabilitySource", "AuditServiceError"}


def test_no_import_circle_among_the_matching_modules() -> None:
    core = {f"modelshield.audit.{m}" for m in ("interface", "records", "match", "intervals")}
    core.add("modelshield.audit.versions")
    graph = {m: audit_imports(module_path(m)) & core for m in core}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt}))
            for nxt in graph[start]
        )

    assert not [m for m in core if reaches(m, m, set())]
    assert graph["modelshield.audit.records"] == set()  # the records import no audit module


def test_the_records_keep_no_matcher_cache_and_match_reexports_nothing() -> None:
    slots = records.AffectedPackage.__slots__
    assert not [s for s in slots if "compiled" in s]
    assert not hasattr(match, "__getattr__") and not hasattr(match, "__all__")


def test_inputs_and_sources_are_apart() -> None:
    inputs = AUDIT / "inputs"
    sources = AUDIT / "sources"
    for folder, other in ((inputs, "sources"), (sources, "inputs")):
        for path in folder.glob("*.py"):
            assert not [i for i in audit_imports(path) if f".{other}" in i], path


def test_the_bom_parses_no_cvss_text() -> None:
    import modelshield.bom.cyclonedx as cyclonedx

    rating = inspect.getsource(cyclonedx._rating)
    assert "v.cvss" in rating
    assert not [w for w in ("re.", ".search(", ".match(", "Decimal(match") if w in rating]
