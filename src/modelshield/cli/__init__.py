"""The ``modelshield`` command line: a thin layer that parses, calls the library and exits.

Subcommand contract
-------------------
Each subcommand is a module ``modelshield.cli.<name>`` listed in :data:`SUBCOMMANDS` that
exposes two functions::

    def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        '''Add the subcommand's parser (named <name>) and its options.'''

    def run(args: argparse.Namespace) -> int:
        '''Do the work and return the exit code (a modelshield.ExitCode).'''

Rules for those modules:

* import only the standard library at module level; import modelshield's library, rich and
  anything heavy inside ``run`` (every subcommand module is imported to build ``--help``,
  and ``modelshield scan one.pkl`` must start fast);
* never print from the library: ``run`` renders with :mod:`modelshield.report` and writes;
* raise :class:`~modelshield.core.errors.ModelshieldError` (or a subclass) for a user's
  mistake: :func:`main` prints its ``diagnostics()`` on stderr and exits with 2;
* exit codes are :class:`~modelshield.core.policy.ExitCode`: 0 clean, 1 findings at or above
  the threshold, 2 errors (usage errors included, which argparse reports itself).

A module that is listed but not present yet is skipped, so subcommands can land one by one.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

from modelshield._version import __version__

SUBCOMMANDS: tuple[str, ...] = (
    "scan",
    "audit",
    "assess",
    "guard",
    "manifest",
    "bom",
    "db",
    "ci",
    "init",
    "report",
)
"""Subcommand modules, in the order ``--help`` lists them."""

_USAGE_ERROR = 2


def load_subcommands(only: str | None = None) -> dict[str, ModuleType]:
    """The subcommand modules that exist, by name (just ``only`` when it is given)."""
    modules: dict[str, ModuleType] = {}
    for name in SUBCOMMANDS:
        if only is not None and name != only:
            continue
        qualified = f"{__name__}.{name}"
        if importlib.util.find_spec(qualified) is None:
            continue
        modules[name] = importlib.import_module(qualified)
    return modules


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, sized like ``shutil.get_terminal_size()`` without importing
    ``shutil`` (and the compression modules it imports) on every run: argparse builds a
    formatter for each option it adds, and the default one imports ``shutil`` to find the width.
    """

    def __init__(self, prog: str) -> None:
        import os

        try:
            columns = int(os.environ["COLUMNS"])
        except (KeyError, ValueError):
            columns = 0
        if columns <= 0:
            stream = sys.__stdout__
            try:
                columns = os.get_terminal_size(stream.fileno()).columns if stream else 0
            except (AttributeError, ValueError, OSError):
                columns = 0
        super().__init__(prog, width=(columns or 80) - 2)  # what argparse computes with shutil


class _ArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose sub-parsers (of any depth) use :class:`_HelpFormatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser(modules: dict[str, ModuleType] | None = None) -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per available subcommand."""
    parser = _ArgumentParser(
        prog="modelshield",
        description="Security for the ML model lifecycle: scan model files without loading "
        "them, audit their dependencies, gate CI.",
        epilog="Exit codes: 0 clean, 1 findings at or above the threshold, 2 error.",
    )
    parser.add_argument("--version", action="version", version=f"modelshield {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (load_subcommands() if modules is None else modules).values():
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit code (the console script exits with it)."""
    # Start-up time: import only the subcommand named on the command line; --help, a typo
    # or no command at all build the full parser.
    words = list(sys.argv[1:] if argv is None else argv)
    first = next((w for w in words if not w.startswith("-")), None)
    chosen = first if first in SUBCOMMANDS and "--version" not in words else None
    modules = load_subcommands(chosen)
    if chosen is not None and not modules:
        modules = load_subcommands()
    parser = build_parser(modules)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return _USAGE_ERROR
    _tolerate_any_text()
    from modelshield.core.errors import ModelshieldError

    try:
        code: int = modules[args.command].run(args)
    except ModelshieldError as e:
        print(f"modelshield: error: {e.diagnostics()}", file=sys.stderr)
        return _USAGE_ERROR
    except KeyboardInterrupt:
        print("modelshield: interrupted", file=sys.stderr)
        return 130
    return int(code)


def console() -> NoReturn:
    """The ``modelshield`` script and ``python -m modelshield``: run :func:`main` and exit.

    Two garbage-collector settings for a short-lived process (not in :func:`main`, which
    library callers and tests run in their own process): a young generation of 50,000
    objects instead of 700, so that start-up, whose objects all live to the end, is not
    walked over and over (cycles are still collected); and a final freeze, which spares the
    interpreter's last collection a walk over everything the run made (memory is released as
    the process exits either way). Together about 7% of a cached offline audit's instructions.
    """
    import gc

    gc.set_threshold(50_000, 10, 10)
    code = main()
    gc.freeze()
    sys.exit(code)


def _tolerate_any_text() -> None:
    """Never crash on output: names from the file system may not be encodable."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
