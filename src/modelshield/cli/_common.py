"""Helpers shared by subcommands: report options, finding the policy file, colour, output."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from modelshield.core.findings import Report
    from modelshield.core.policy import Policy
    from modelshield.scanner.discovery import Discovery

POLICY_FILE = "modelshield.toml"
"""The policy file looked for in the current directory."""

PYPROJECT = "pyproject.toml"
"""Where a ``[tool.modelshield]`` table is looked for when there is no policy file."""


def add_report_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that ends in a report: --format, --output, --fail-on and
    --policy."""
    add_output_options(parser)
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="policy file (default: ./modelshield.toml, else [tool.modelshield] in "
        "./pyproject.toml, else built-in defaults)",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """--format, --output and --fail-on (for a command that declares its own --policy)."""
    from modelshield.core.findings import Severity
    from modelshield.report import OutputFormat

    parser.add_argument(
        "-f",
        "--format",
        type=OutputFormat,
        choices=list(OutputFormat),
        default=OutputFormat.TEXT,
        help="report format (default: text)",
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout"
    )
    parser.add_argument(
        "--fail-on",
        choices=[s.label for s in sorted(Severity, reverse=True)],
        help="exit 1 when a finding is at or above this severity "
        "(default: the policy's fail_on, which is medium)",
    )
    add_extra_outputs(parser)


EXTRA_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("sarif", "SARIF 2.1.0 (GitHub code scanning)"),
    ("junit", "JUnit XML (the test report of CI systems)"),
    ("json", "the documented JSON document"),
    ("html", "a self-contained HTML page"),
)
"""Reports written to files beside the main one, in the same run (``--sarif FILE``...)."""


def add_extra_outputs(parser: argparse.ArgumentParser) -> None:
    """``--sarif``, ``--junit``, ``--json``, ``--html`` (each a file) and ``--verbose``."""
    group = parser.add_argument_group("more reports from the same run")
    for name, what in EXTRA_OUTPUTS:
        group.add_argument(
            f"--{name}",
            metavar="FILE",
            dest=f"{name}_output",
            help=f"also write {what} to FILE",
        )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="text: each finding with its explanation and evidence, repeated findings one by "
        "one, every path left out",
    )


def add_discovery_options(parser: argparse.ArgumentParser) -> None:
    """``--exclude GLOB`` (repeatable) and ``--no-gitignore``."""
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out paths matching this .gitignore-style pattern when searching "
        "directories, relative to the current directory (repeatable; adds to the policy's "
        "exclude)",
    )
    parser.add_argument(
        "--no-gitignore",
        action="store_true",
        help="also read what .gitignore files ignore (by default, inside a git work tree, "
        "ignored files that git does not track are left out)",
    )


def discovery(args: argparse.Namespace, policy: Policy) -> Discovery:
    """What the search of directories leaves out: the policy's settings and the options."""
    from modelshield.scanner.discovery import Discovery

    return Discovery.from_policy(
        policy, args.exclude, gitignore=False if args.no_gitignore else None
    )


def outputs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The ``(format, file)`` pairs the command line asks for, the main ``--output`` first."""
    found = []
    main = getattr(args, "output", None)
    if main is not None:
        found.append((str(args.format), main))
    for name, _ in EXTRA_OUTPUTS:
        path = getattr(args, f"{name}_output", None)
        if path is not None:
            found.append((name, path))
    return found


def check_outputs(args: argparse.Namespace) -> None:
    """Fail before any work when a report could not be written: a file named twice, a
    directory, or a folder that does not exist or is not writable."""
    from modelshield.core.errors import ConfigError

    seen: dict[str, str] = {}
    for fmt, path in outputs(args):
        key = os.path.abspath(path)  # noqa: PTH100 (a str)
        if key in seen:
            raise ConfigError(f"{path} is named for two reports ({seen[key]} and {fmt})")
        seen[key] = fmt
        target = Path(path)
        if target.is_dir():
            raise ConfigError(f"cannot write the {fmt} report to {path}: it is a directory")
        folder = target.parent if str(target.parent) else Path()
        if not folder.is_dir():
            raise ConfigError(f"cannot write the {fmt} report to {path}: {folder} does not exist")
        if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
            raise ConfigError(f"cannot write the {fmt} report to {path}: permission denied")


def resolve_policy(explicit: str | None, cwd: Path | None = None) -> tuple[Policy, str | None]:
    """The policy in force and where it came from (None: the built-in defaults).

    An explicit ``--policy`` file wins; else ``modelshield.toml`` in the current directory;
    else the ``[tool.modelshield]`` table of ``pyproject.toml`` when it has one.
    """
    from modelshield.core.errors import ConfigError
    from modelshield.core.policy import Policy, with_line

    if explicit is not None:
        return Policy.from_file(explicit), explicit
    here = Path.cwd() if cwd is None else cwd
    own = here / POLICY_FILE
    if own.is_file():
        return Policy.from_file(own), POLICY_FILE
    pyproject = here / PYPROJECT
    try:
        raw = pyproject.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raw = b""
    except OSError as e:
        raise ConfigError(f"cannot read {pyproject} to look for [tool.modelshield]: {e}") from e
    # Every TOML spelling of the table ([tool.modelshield], dotted or inline keys) names it, so
    # a file without the word cannot hold a policy and is not parsed (tomllib costs start-up).
    if b"modelshield" in raw:
        import tomllib

        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            # A broken file might hold the policy the user meant; never fall back silently.
            raise ConfigError(f"cannot read {pyproject} to look for [tool.modelshield]: {e}") from e
        table = data.get("tool", {}).get("modelshield")
        if table is not None:
            if not isinstance(table, dict):
                raise ConfigError(f"{PYPROJECT}: [tool.modelshield] must be a table")
            shown = f"{PYPROJECT} [tool.modelshield]"
            try:
                policy = Policy.from_mapping(table, source=shown, root=here, file=pyproject)
            except ConfigError as e:
                text = raw.decode("utf-8")
                raise with_line(e, shown, text, pyproject=True, name=PYPROJECT) from None
            return policy, shown
    return Policy(), None


def use_color(stream: TextIO) -> bool:
    """Colour only on a terminal, never when ``NO_COLOR`` is set; ``FORCE_COLOR`` forces it."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def write_output(text: str, path: str | None, stream: TextIO) -> None:
    """Write ``text`` to ``path``, or to ``stream`` when there is no path."""
    if path is None:
        stream.write(text)
        stream.flush()
        return
    from modelshield.core.errors import ConfigError

    try:
        Path(path).write_text(text, encoding="utf-8", errors="backslashreplace")
    except OSError as e:
        raise ConfigError(f"cannot write the report to {path}: {e.strerror or e}") from e


def emit_report(
    report: Report,
    args: argparse.Namespace,
    policy: Policy,
    policy_source: str | None,
    *,
    source_root: str | None = None,
    code: int | None = None,
) -> int:
    """Render ``report`` as ``args`` ask (format, output, quiet, verbose, and the reports
    ``--sarif``, ``--junit``, ``--json``, ``--html`` name), write them, return the exit code
    (``code`` when given, else the policy's).

    A report written to a file is followed by one line on standard error naming the file and
    the exit code, unless ``--quiet``.
    """
    import sys

    from modelshield.report import Invocation, OutputFormat, render

    verbose = bool(getattr(args, "verbose", False))
    invocation = Invocation(policy_source=policy_source, source_root=source_root, verbose=verbose)
    exit_code = int(policy.exit_code(report)) if code is None else code
    text = render(
        report,
        args.format,
        policy=policy,
        invocation=invocation,
        color=args.output is None and use_color(sys.stdout),
        quiet=args.quiet,
    )
    write_output(text, args.output, sys.stdout)
    written = [args.output] if args.output is not None else []
    for name, path in outputs(args):
        if path == args.output:
            continue
        write_output(
            render(report, OutputFormat(name), policy=policy, invocation=invocation),
            path,
            sys.stdout,
        )
        written.append(path)
    if written and not args.quiet:
        names = ", ".join(written)
        what = "report" if len(written) == 1 else "reports"
        print(f"modelshield: {what} written to {names} (exit code {exit_code})", file=sys.stderr)
    return exit_code
