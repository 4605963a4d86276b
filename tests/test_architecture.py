"""The direction of imports that ARCHITECTURE.md describes, checked over src/ with ``ast``.

Every import counts: at module level, inside functions (a lazy import is still a dependency)
and under ``if TYPE_CHECKING:`` (annotations only), except where a rule says otherwise. A rule
that fails names the importing module, the line and the import, so that the fix is either to
move the code or, when the design changed on purpose, to change ARCHITECTURE.md and this file
together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "modelshield"


class Import(NamedTuple):
    """One import of a modelshield module by another."""

    importer: str
    """The importing module, dotted."""
    target: str
    """The imported module, dotted (``from pkg import sub`` names ``pkg.sub``)."""
    line: int
    """Where, in the importer."""
    type_only: bool
    """Under ``if TYPE_CHECKING:``: needed by annotations only, never run."""
    top_level: bool
    """Run when the importer is imported (not inside a function)."""

    def __str__(self) -> str:
        kind = " (type-checking only)" if self.type_only else ""
        return f"{self.importer}:{self.line} imports {self.target}{kind}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = importer.split(".")
        if not is_package:
            base.pop()
        base = base[: len(base) - node.level + 1]
        module = ".".join([*base, *([node.module] if node.module else [])])
    else:
        module = node.module or ""
    known = modules()
    # `from pkg import sub` imports the submodule; `from module import name` the module.
    subs = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in known]
    return subs if len(subs) == len(node.names) else [module, *subs]


def _walk(
    nodes: Iterable[ast.AST], importer: str, is_package: bool, type_only: bool, top_level: bool
) -> Iterator[Import]:
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target in _targets(node, importer, is_package):
                if target == PACKAGE or target.startswith(f"{PACKAGE}."):
                    yield Import(importer, target, node.lineno, type_only, top_level)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _walk(node.body, importer, is_package, True, top_level)
            yield from _walk(node.orelse, importer, is_package, type_only, top_level)
        else:
            inner = top_level and not isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            yield from _walk(ast.iter_child_nodes(node), importer, is_package, type_only, inner)


@cache
def all_imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        found.extend(_walk(tree.body, name, path.name == "__init__.py", False, True))
    return tuple(found)


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(f"{prefix}.")


def violations(
    importers: str | tuple[str, ...],
    forbidden: tuple[str, ...],
    *,
    allow_type_only: bool = False,
    exempt: tuple[str, ...] = (),
) -> list[str]:
    """Imports by modules under ``importers`` of modules under ``forbidden``."""
    importers = (importers,) if isinstance(importers, str) else importers
    return [
        str(imp)
        for imp in all_imports()
        if any(_under(imp.importer, p) for p in importers)
        and not any(_under(imp.importer, e) for e in exempt)
        and any(_under(imp.target, f) for f in forbidden)
        and not (allow_type_only and imp.type_only)
    ]


M = PACKAGE
PILLARS = (
    f"{M}.scanner",
    f"{M}.audit",
    f"{M}.integrity",
    f"{M}.bom",
    f"{M}.assess",
    f"{M}.guard",
    f"{M}.gate",
)

# (importing modules, modules they must never import, why): the layers of ARCHITECTURE.md.
LAYERS: list[tuple[str, tuple[str, ...], str]] = [
    (
        f"{M}.core",
        (*PILLARS, f"{M}.storage", f"{M}.report", f"{M}.cli", f"{M}.docs"),
        "core is the bottom",
    ),
    (
        f"{M}.storage",
        (*PILLARS, f"{M}.loaders", f"{M}.report", f"{M}.cli", f"{M}.docs"),
        "storage serves the guard and the gate and imports core only",
    ),
    (
        f"{M}.gate",
        (f"{M}.guard",),
        "the gate shares the guard's storage layer (storage), never the guard",
    ),
    *(
        (
            f"{M}.{low}",
            (f"{M}.storage",),
            "only the pillars that keep records over time use the database layer",
        )
        for low in ("scanner", "audit", "integrity", "assess", "loaders")
    ),
    (f"{M}.scanner", (f"{M}.audit", f"{M}.integrity", f"{M}.bom"), "the scanner is a leaf pillar"),
    (f"{M}.integrity", (f"{M}.scanner", f"{M}.audit", f"{M}.bom"), "integrity needs core only"),
    (f"{M}.audit", (f"{M}.integrity", f"{M}.bom"), "the audit builds on core and the scanner"),
    (
        f"{M}.assess",
        (f"{M}.audit", f"{M}.integrity", f"{M}.bom"),
        "the assessment builds on core, the scanner and the loaders",
    ),
    (f"{M}.loaders", (f"{M}.assess", f"{M}.audit"), "loaders serve the pillars above them"),
    (
        f"{M}.scanner",
        (f"{M}.gate", f"{M}.assess", f"{M}.loaders"),
        "the gate runs the pillars; no pillar runs the gate",
    ),
    (f"{M}.audit", (f"{M}.gate",), "the gate runs the pillars; no pillar runs the gate"),
    (f"{M}.integrity", (f"{M}.gate",), "the gate runs the pillars; no pillar runs the gate"),
    (f"{M}.assess", (f"{M}.gate",), "the gate runs the pillars; no pillar runs the gate"),
    (f"{M}.bom", (f"{M}.gate",), "the gate runs the pillars; no pillar runs the gate"),
    (f"{M}.gate", (f"{M}.bom",), "the gate runs the pillars that end in a Report"),
    (f"{M}.report", PILLARS, "reporters read a Report; they never scan"),
    (
        f"{M}.guard",
        (f"{M}.audit", f"{M}.integrity", f"{M}.bom", f"{M}.report"),
        "the guard builds on core, the loaders and the assessment's model adapters",
    ),
    (f"{M}.assess", (f"{M}.guard",), "the assessment never imports the guard"),
    (f"{M}.docs", (*PILLARS, f"{M}.report"), "docs reads the rule catalogue only"),
]


@pytest.mark.parametrize(("importer", "forbidden", "why"), LAYERS, ids=[x[0] for x in LAYERS])
def test_layers_point_down(importer: str, forbidden: tuple[str, ...], why: str) -> None:
    assert not violations(importer, (*forbidden, f"{M}.cli")), why


def test_nothing_but_the_entry_point_imports_the_cli() -> None:
    found = violations(M, (f"{M}.cli",), exempt=(f"{M}.cli", f"{M}.__main__"))
    assert not found


def test_no_pillar_renders_reports() -> None:
    """A pillar returns a Report; rendering and printing are the CLI's and the caller's."""
    assert not violations(PILLARS, (f"{M}.report",))


SCANNER = f"{M}.scanner"


def test_the_engine_is_the_top_of_the_scanner() -> None:
    """engine -> context -> detect/registry; nothing in the scanner imports the engine."""
    assert not violations(SCANNER, (f"{SCANNER}.engine",), exempt=(f"{SCANNER}.engine",))


def test_the_pickle_analyser_never_imports_handlers_or_the_engine() -> None:
    forbidden = (f"{SCANNER}.formats", f"{SCANNER}.engine")
    assert not violations(f"{SCANNER}.pickle", forbidden)


def test_handlers_are_reached_through_the_registry_only() -> None:
    """Only formats/* import formats/* (to share hygiene helpers); everyone else reaches a
    handler through ``registry.handler_for``, which imports it by name on first use."""
    assert not violations(M, (f"{SCANNER}.formats",), exempt=(f"{SCANNER}.formats",))


def test_the_registry_names_handlers_that_exist() -> None:
    from modelshield.scanner.registry import FORMATS

    for spec in FORMATS:
        if spec.handler is not None:
            module, _, function = spec.handler.partition(":")
            assert f"{SCANNER}.formats.{module}" in modules(), spec.handler
            assert function


def test_the_registry_and_context_point_back_only_for_annotations() -> None:
    """registry -> context is for the Handler protocol's annotations only; at run time the
    arrow is context -> registry."""
    low = (f"{SCANNER}.registry", f"{SCANNER}.detect", f"{SCANNER}.memio", f"{SCANNER}.zipreader")
    assert not violations(low, (f"{SCANNER}.context",), allow_type_only=True)


@pytest.mark.parametrize(
    "rules_module",
    [
        f"{SCANNER}.rules",
        f"{SCANNER}.pickle.rules",
        f"{M}.audit.rules",
        f"{M}.integrity.rules",
        f"{M}.assess.rules",
        f"{M}.gate.rules",
    ],
)
def test_rules_modules_import_core_only(rules_module: str) -> None:
    """The catalogue can be loaded (docs, --ignore checks) without loading any analyser."""
    assert rules_module in modules()
    others = [
        str(imp)
        for imp in all_imports()
        if imp.importer == rules_module and not _under(imp.target, f"{M}.core")
    ]
    assert not others


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _import_time_edges(imports: Iterable[Import]) -> dict[str, set[str]]:
    """What importing each module imports, as Python runs it: the target, and every package
    above the target that is not already above the importer (importing ``a.b.c`` runs
    ``a/b/__init__.py`` first)."""
    edges: dict[str, set[str]] = {}
    for imp in imports:
        parts = imp.target.split(".")
        for n in range(2, len(parts) + 1):
            target = ".".join(parts[:n])
            if target != imp.importer and not imp.importer.startswith(f"{target}."):
                edges.setdefault(imp.importer, set()).add(target)
    return edges


def test_the_scanner_has_no_import_cycle() -> None:
    """Imports that run when a scanner module is imported form no cycle: the arrows point one
    way, so no import has to be made lazy to break a cycle."""
    run_at_import = [
        imp
        for imp in all_imports()
        if imp.top_level
        and not imp.type_only
        and _under(imp.importer, SCANNER)
        and _under(imp.target, SCANNER)
    ]
    assert _cycles(_import_time_edges(run_at_import)) == []


#: Function-level imports between scanner modules that would close a cycle at import time,
#: each with its reason. Add none: point the arrows one way instead.
KNOWN_CYCLE_BREAKERS = {
    # scanner/pickle/__init__.py imports the analyser, which imports context, which imports
    # detect: detect may read the opcode table only once all of them are loaded.
    (f"{SCANNER}.detect", f"{SCANNER}.pickle.opcodes"),
}


def test_no_lazy_import_hides_a_cycle_in_the_scanner() -> None:
    """Made top-level, a function-level import between scanner modules must not close a cycle;
    the ones that would are listed above with their reason, and the list only shrinks."""
    inside = [
        imp
        for imp in all_imports()
        if not imp.type_only and _under(imp.importer, SCANNER) and _under(imp.target, SCANNER)
    ]
    at_import = [imp for imp in inside if imp.top_level]
    hiding = set()
    for imp in inside:
        if imp.top_level:
            continue
        if _cycles(_import_time_edges([*at_import, imp._replace(top_level=True)])):
            hiding.add((imp.importer, imp.target))
    assert hiding <= KNOWN_CYCLE_BREAKERS


# ---- the checker itself --------------------------------------------------------------------


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = """
from typing import TYPE_CHECKING
import modelshield.core.findings
from modelshield.scanner import registry
from . import context
from .pickle import rules as pickle_rules

if TYPE_CHECKING:
    from modelshield.report import OutputFormat

def later():
    from modelshield.cli import main
"""
    tree = ast.parse(source)
    found = {
        (i.target, i.type_only, i.top_level)
        for i in _walk(tree.body, "modelshield.scanner.engine", False, False, True)
    }
    assert found == {
        ("modelshield.core.findings", False, True),
        ("modelshield.scanner.registry", False, True),
        ("modelshield.scanner.context", False, True),
        ("modelshield.scanner.pickle.rules", False, True),
        ("modelshield.report", True, True),
        ("modelshield.cli", False, False),
    }


def test_the_checker_reads_the_real_tree() -> None:
    assert f"{SCANNER}.engine" in modules()
    engine = {i.target for i in all_imports() if i.importer == f"{SCANNER}.engine"}
    assert {f"{SCANNER}.context", f"{SCANNER}.registry"} <= engine
    # A deliberate violation is caught: the CLI imports the engine (CLI -> scanner is allowed;
    # the reverse direction would be reported).
    assert violations(f"{M}.cli", (f"{SCANNER}.engine",))


def test_the_assessment_loads_pickled_models_only_through_the_loaders() -> None:
    """No module of the assessment imports a deserialiser; pickles go through
    ``modelshield.loaders`` (which scans first)."""
    for name, path in modules().items():
        if not _under(name, f"{M}.assess"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                for target in names:
                    assert target.split(".")[0] not in {
                        "pickle",
                        "joblib",
                        "cloudpickle",
                        "dill",
                    }, (name, target)
    assert any(
        imp.target.startswith(f"{M}.loaders")
        for imp in all_imports()
        if _under(imp.importer, f"{M}.assess")
    )
