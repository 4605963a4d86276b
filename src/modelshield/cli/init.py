"""``modelshield init``: write a commented starter policy for the project (never over one)."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``init`` parser."""
    parser = subparsers.add_parser(
        "init",
        help="write a commented starter policy (modelshield.toml) for the project",
        description="Look at what the project holds (model files, MLflow models, dependency "
        "and lock files, an integrity manifest, data files) and write a commented "
        "modelshield.toml that names them. An existing policy is never overwritten.",
        epilog="Exit codes: 0 written, 2 a policy already exists or it could not be written.",
    )
    parser.add_argument(
        "project",
        nargs="?",
        default=".",
        metavar="PROJECT_DIR",
        help="the project (default: the current directory)",
    )
    parser.add_argument(
        "--print",
        action="store_true",
        dest="print_only",
        help="print the policy instead of writing it",
    )


def run(args: argparse.Namespace) -> int:
    """Write (or print) the starter policy and return the exit code."""
    import os
    import tomllib
    from pathlib import Path

    from modelshield.cli._common import POLICY_FILE, PYPROJECT
    from modelshield.core.errors import ConfigError
    from modelshield.core.policy import Policy
    from modelshield.gate.init import starter_policy, survey

    project = Path(args.project)
    if not project.is_dir():
        raise ConfigError(f"{args.project}: not a directory")
    target = project / POLICY_FILE
    if not args.print_only:
        if target.exists():
            raise ConfigError(f"{target} already exists; modelshield init never overwrites it")
        pyproject = project / PYPROJECT
        if pyproject.is_file():
            try:
                table = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                table = {}
            if "modelshield" in table.get("tool", {}):
                raise ConfigError(
                    f"{pyproject} already holds the policy ([tool.modelshield]); a "
                    f"{POLICY_FILE} would take its place"
                )
    found = survey(str(project))
    text = starter_policy(found)
    Policy.from_mapping(tomllib.loads(text), source="the starter policy")  # it must load
    if args.print_only:
        sys.stdout.write(text)
        return 0
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise ConfigError(
            f"{target} already exists; modelshield init never overwrites it"
        ) from None
    except OSError as e:
        raise ConfigError(f"cannot write {target}: {e.strerror or e}") from e
    with open(fd, "w", encoding="utf-8") as fh:  # noqa: PTH123 (an fd)
        fh.write(text)
    models = ", ".join(found.model_paths) or "none found: the whole project is scanned"
    print(f"wrote {target} (models: {models}); review it, then run `modelshield ci`")
    return 0
