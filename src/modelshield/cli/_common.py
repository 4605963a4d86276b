"""Helpers shared by subcommands: finding the policy file, colour, writing the output."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from modelshield.core.policy import Policy

POLICY_FILE = "modelshield.toml"
"""The policy file looked for in the current directory."""

PYPROJECT = "pyproject.toml"
"""Where a ``[tool.modelshield]`` table is looked for when there is no policy file."""


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
    if pyproject.is_file():
        import tomllib  # only when there is a pyproject.toml to look in

        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            # A broken file might hold the policy the user meant; never fall back silently.
            raise ConfigError(f"cannot read {pyproject} to look for [tool.modelshield]: {e}") from e
        table = data.get("tool", {}).get("modelshield")
        if table is not None:
            if not isinstance(table, dict):
                raise ConfigError(f"{PYPROJECT}: [tool.modelshield] must be a table")
            return Policy.from_mapping(table, source=f"{PYPROJECT} [tool.modelshield]"), (
                f"{PYPROJECT} [tool.modelshield]"
            )
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
