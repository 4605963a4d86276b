"""Python source and ``.pth`` path-configuration files, recognised by content.

Python source (:func:`scan_python`) is parsed with :mod:`ast` and judged by
:mod:`modelshield.scanner.pysource`; what it reaches for is recorded in the result's metadata
(``python_reaches``, ``python_imports``, ``python_relative_imports``), which the repository
pass reads when a loader of the folder imports the file. A script that runs processes or code
is a medium ``PYTHON-DANGEROUS-CALL`` on its own; string constants are searched for hidden
pickles. Text that only looked like Python (a README with a code block) is reported as text.

A ``.pth`` file (:func:`scan_pth`) is read as :mod:`site` reads it at interpreter start-up:
every line starting with ``import`` and a space or tab is executed, every other line is a
path. The executed lines are analysed as Python (``PTH-CODE``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from modelshield.core.findings import Location, Severity
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.formats.unknown import loader_name, scan_ordinary
from modelshield.scanner.pysniff import pth_lines
from modelshield.scanner.registry import Format
from modelshield.scanner.rules import PTH_CODE, PYTHON_DANGEROUS_CALL

if TYPE_CHECKING:
    from modelshield.scanner.pysource import SourceFacts

#: Imports and relative imports listed in a result's metadata.
_LISTED = 50
#: ``.pth`` lines analysed per file (``site`` executes them all; a real file has a handful).
MAX_PTH_LINES = 1000


#: Names under which Python imports a file as a module whatever its content looks like.
PYTHON_SUFFIXES = (".py", ".pyw")


def scan_text(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Text: read as a pickle from byte 0 (the one way a model loader runs it), and as Python
    when it is named like a module (``__import__('os').system('id')`` holds no line that
    only Python writes, but ``import`` runs a ``.py`` file whatever its first lines are)."""
    scan_ordinary(ctx, data, location)
    name = loader_name(location)
    if name is not None and name.lower().endswith(PYTHON_SUFFIXES):
        _python(ctx, data, location, named=True)


def scan_python(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Analyse Python source; record what it reaches for; report dangerous calls."""
    _python(ctx, data, location, named=False)


def _python(ctx: ScanContext, data: memoryview, location: Location, *, named: bool) -> None:
    from modelshield.scanner.pysource import SourceFacts, analyse_source  # only when met

    source = _source(ctx, data, location, "Python source")
    if source is None:
        return
    facts = analyse_source(source, ctx.callables, filename=loader_name(location) or "<source>")
    if facts.problem is not None:
        # Not Python after all (a README with a code block): text, which no loader runs.
        if ctx.depth == 0 and not named:
            ctx.refined_format = Format.TEXT.value
        return
    if ctx.depth == 0:
        ctx.refined_format = Format.PYTHON.value
        _record(ctx, facts)
    high = [r for r in facts.reaches if r.severity >= Severity.HIGH]
    if high:
        calls = SourceFacts(reaches=tuple(high)).summary()
        ctx.add(
            PYTHON_DANGEROUS_CALL.finding(
                location,
                f"This Python source uses {calls}. It runs when someone runs or imports it; "
                "find out what it is for before running or loading anything beside it.",
                evidence={
                    "calls": calls,
                    "categories": ", ".join(sorted({r.category for r in high})),
                    "line": str(min(r.line for r in high)),
                },
            )
        )
    if facts.constants:
        from modelshield.scanner.metadata import check_hidden_pickle
    for value in facts.constants:
        raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
        check_hidden_pickle(ctx, raw, location, where="a string constant of this Python source")
    name = loader_name(location)
    if name is not None and name.lower().endswith(".pth"):
        _pth(ctx, source, location)


def scan_pth(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Analyse the lines of a ``.pth`` file that :mod:`site` executes."""
    source = _source(ctx, data, location, "path-configuration file")
    if source is not None:
        _pth(ctx, source, location)


def _source(ctx: ScanContext, data: memoryview, location: Location, what: str) -> bytes | None:
    limit = ctx.limits.max_source_bytes
    if len(data) > limit:
        raise LimitExceeded(
            "max_source_bytes",
            f"the {what} has {len(data)} bytes, above limits.max_source_bytes ({limit}); it was "
            "not parsed",
            location,
        )
    ctx.bytes_read += len(data)
    return bytes(data)


def _record(ctx: ScanContext, facts: SourceFacts) -> None:
    ctx.metadata["python_imports"] = ", ".join(facts.imports[:_LISTED])
    relative = ["." * level + name for level, name in facts.relative_imports[:_LISTED]]
    if relative:
        ctx.metadata["python_relative_imports"] = ", ".join(relative)
    if facts.reaches:
        ctx.metadata["python_reaches"] = facts.encode()


def _pth(ctx: ScanContext, source: bytes, location: Location) -> None:
    import ast

    from modelshield.scanner.pysource import Reach, SourceFacts, analyse_source, parse

    text = source.decode("utf-8-sig", "replace")
    executed: list[tuple[int, str]] = []
    for number, line, runs in pth_lines(text):
        if runs:
            executed.append((number, line))
            if len(executed) >= MAX_PTH_LINES:
                raise LimitExceeded(
                    "max_source_bytes",
                    f"the .pth file has more than {MAX_PTH_LINES} lines that run; the rest "
                    "was not analysed",
                    location,
                )
    if not executed:
        return
    reaches: list[Reach] = []
    statements = False
    third_party: list[str] = []
    unparsed: list[str] = []
    for number, line in executed:
        tree, problem = parse(line, "<pth>")
        if tree is None:
            unparsed.append(f"line {number}: {problem}")
            continue
        facts = analyse_source(line, ctx.callables)
        reaches += [Reach(r.name, r.category, number) for r in facts.reaches]
        statements |= any(not isinstance(n, ast.Import | ast.ImportFrom) for n in tree.body)
        third_party += [m for m in facts.imports if m.split(".")[0] not in sys.stdlib_module_names]
    name = loader_name(location) or ""
    # Text that merely reads as a .pth file (not named so) is low unless it reaches for
    # something: a .pth file that runs statements is medium.
    named = name.lower().endswith(".pth")
    if reaches:
        severity, does = Severity.HIGH, f"use {SourceFacts(reaches=tuple(reaches)).summary()}"
    elif statements or unparsed:
        severity = Severity.MEDIUM if named else Severity.LOW
        does = "run statements beyond imports" if statements else "cannot be parsed here"
    elif third_party:
        severity = Severity.LOW
        does = f"import {', '.join(sorted(set(third_party))[:5])} (their code runs)"
    else:
        return  # only standard-library imports: nothing runs that would not anyway
    shown = [f"{number}: {line.strip()[:160]}" for number, line in executed[:3]]
    ctx.add(
        PTH_CODE.finding(
            location,
            f"This reads as a Python path-configuration (.pth) file, and the lines that "
            f"Python's site module executes {does}. site runs them at every interpreter "
            "start-up once the file is in a site-packages directory; no model needs that.",
            severity=severity,
            evidence={
                "lines": " | ".join(shown),
                "executed_lines": str(len(executed)),
                "line": str(executed[0][0]),
            },
        )
    )
