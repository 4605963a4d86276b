"""``modelshield audit``: known vulnerabilities in the software a model needs."""

from __future__ import annotations

import argparse

from modelshield.cli._common import (
    add_discovery_options,
    add_report_options,
    check_outputs,
    discovery,
    emit_report,
    resolve_policy,
)
from modelshield.cli._sources import (
    add_ignore_option,
    add_input_options,
    add_source_options,
    apply_input_options,
    choose_source,
    split_ignores,
)
from modelshield.core.findings import Severity


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``audit`` parser."""
    parser = subparsers.add_parser(
        "audit",
        help="audit the dependencies of a model or project for known vulnerabilities",
        description="Find known vulnerabilities (OSV advisories) in the dependencies that "
        "requirements files, pyproject.toml, lock files (uv, Poetry, Pipenv, pylock), conda "
        "and MLflow files declare, in the dependencies model files imply (the libraries their "
        "pickles import and the versions they were saved with), and in the current "
        "environment (--env). Advisories come from the OSV API, or offline from a database "
        "directory (--db, or --offline after `modelshield db update`).",
        epilog="Exit codes: 0 no findings at or above --fail-on, 1 findings at or above it, "
        "2 error (a file could not be read or fully read, the vulnerability source failed or "
        "is not a usable database, or a usage error).",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="dependency files, model files, or directories to search for them",
    )
    parser.add_argument(
        "--env", action="store_true", help="also audit the distributions installed here"
    )
    add_source_options(parser, api_by_default=True)
    add_input_options(parser)
    add_report_options(parser)
    add_discovery_options(parser)
    add_ignore_option(parser)
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="text format: list only inputs with findings or errors",
    )


def run(args: argparse.Namespace) -> int:
    """Audit, render, write, and return the exit code."""
    from datetime import date

    from msgspec.structs import replace

    from modelshield.audit import audit_paths
    from modelshield.core.errors import ConfigError
    from modelshield.gate.policy_check import expired_ignores

    if not args.paths and not args.env:
        raise ConfigError("nothing to audit: name files or directories, or pass --env")
    check_outputs(args)
    policy, policy_source = resolve_policy(args.policy)
    if args.fail_on is not None:
        policy = policy.with_fail_on(Severity.parse(args.fail_on))
    policy, advisory_ids = split_ignores(args.ignore, policy, today=date.today())
    policy = apply_input_options(args, policy)
    source = choose_source(args, policy)
    raw = audit_paths(
        args.paths,
        source=source,
        policy=policy,
        include_environment=args.env,
        ignore=advisory_ids,
        discovery=discovery(args, policy),
    )
    report = policy.apply(raw)
    expired = expired_ignores(policy, date.today())
    if expired is not None:
        report = replace(report, results=(*report.results, expired))
    return emit_report(report, args, policy, policy_source)
