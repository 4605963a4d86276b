"""Helpers shared by subcommands: report options, finding the policy file, colour, output."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from modelshield.core.findings import Report
    from modelshield.core.policy import Policy

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


def resolve_policy(explicit: str | None, cwd: Path | None = None) -> tuple[Policy, str | None]:
    """The policy in force and where it came from (None: the built-in defaults).

    An explicit ``--policy`` file wins; else ``modelshield.toml`` in the current directory;
    else the ``[tool.modelshield]`` table of ``pyproject.toml`` when it has one.
    """
    from modelshield.core.errors import ConfigError
    from modelshield.core.policy import Policy

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
            return Policy.from_mapping(table, source=shown, root=here, file=pyproject), shown
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
) -> int:
    """Render ``report`` as ``args`` ask (format, output, quiet), write it, return the exit code.

    A report written to a file (``--output``) is followed by one line on standard error naming
    the file and the exit code, unless ``--quiet``.
    """
    import sys

    from modelshield.report import Invocation, render

    text = render(
        report,
        args.format,
        policy=policy,
        invocation=Invocation(policy_source=policy_source),
        color=args.output is None and use_color(sys.stdout),
        quiet=args.quiet,
    )
    write_output(text, args.output, sys.stdout)
    code = policy.exit_code(report)
    if args.output is not None and not args.quiet:
        print(
            f"modelshield: report written to {args.output} (exit code {int(code)})",
            file=sys.stderr,
        )
    return int(code)
