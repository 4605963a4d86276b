"""``modelshield audit``: known vulnerabilities in the software a model needs."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from modelshield.cli._common import resolve_policy, use_color, write_output
from modelshield.core.findings import Severity
from modelshield.report import OutputFormat

if TYPE_CHECKING:
    from modelshield.audit.interface import VulnerabilitySource

OSV_URL_ENV = "MODELSHIELD_OSV_URL"
"""Environment variable naming another OSV API (a mirror or a local server)."""


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
        "2 error (a file could not be read, the vulnerability source failed, or a usage error).",
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
    source = parser.add_argument_group("vulnerability source (default: the OSV API)")
    source.add_argument(
        "--db",
        metavar="PATH",
        help="offline OSV database: a directory of OSV .json/.yaml files (PyPA advisory "
        "database layout or OSV exports) or an OSV export .zip",
    )
    source.add_argument(
        "--offline",
        action="store_true",
        help="never use the network: use --db, else the database `modelshield db update` "
        "downloaded",
    )
    source.add_argument(
        "--osv-url",
        metavar="URL",
        help=f"OSV API base URL (default: ${OSV_URL_ENV} or https://api.osv.dev)",
    )
    source.add_argument(
        "--timeout", type=float, default=15.0, metavar="SECONDS", help="per-request timeout"
    )
    source.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="cache for the compiled database index and API answers "
        "(default: $MODELSHIELD_CACHE_DIR or ~/.cache/modelshield)",
    )
    source.add_argument("--no-cache", action="store_true", help="neither read nor write caches")
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
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="policy file (default: ./modelshield.toml, else [tool.modelshield] in "
        "./pyproject.toml, else built-in defaults)",
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="ID",
        help="drop an advisory by any of its ids (PYSEC-..., GHSA-..., CVE-...), or a rule id "
        "(AUDIT-...); repeatable",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="text format: list only inputs with findings or errors",
    )


def choose_source(args: argparse.Namespace) -> VulnerabilitySource:
    """The vulnerability source the options select; raises ConfigError/AuditServiceError."""
    from modelshield.audit.cache import default_cache_dir, default_database_dir
    from modelshield.audit.interface import AuditServiceError
    from modelshield.audit.osv_db import OfflineDatabase
    from modelshield.core.errors import ConfigError

    if args.db is not None and args.osv_url is not None:
        raise ConfigError("--db and --osv-url select two sources; pass one of them")
    if args.offline and args.osv_url is not None:
        raise ConfigError("--offline and --osv-url contradict each other")
    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    cache: Path | None = None
    if not args.no_cache:
        cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    if args.db is not None:
        return OfflineDatabase(args.db, cache_dir=cache)
    if args.offline:
        where = default_database_dir(Path(args.cache_dir) if args.cache_dir else None)
        if not where.is_dir() or not any(where.iterdir()):
            raise AuditServiceError(
                f"offline audit needs a vulnerability database, and there is none at {where}",
                "Run `modelshield db update` once while online, or pass --db PATH "
                "(a directory of OSV files or an OSV export .zip).",
            )
        return OfflineDatabase(where, cache_dir=cache)
    from modelshield.audit.osv_api import DEFAULT_URL, OsvApi  # only online runs need HTTP

    url = args.osv_url or os.environ.get(OSV_URL_ENV) or DEFAULT_URL
    return OsvApi(url, cache_dir=cache, timeout=args.timeout)


def run(args: argparse.Namespace) -> int:
    """Audit, render, write, and return the exit code."""
    from modelshield.audit import audit_paths, rules
    from modelshield.core.errors import ConfigError
    from modelshield.report import Invocation, render

    if not args.paths and not args.env:
        raise ConfigError("nothing to audit: name files or directories, or pass --env")
    policy, policy_source = resolve_policy(args.policy)
    if args.fail_on is not None:
        policy = policy.with_fail_on(Severity.parse(args.fail_on))
    # An --ignore value is a rule id when the audit has such a rule, else an advisory id. The
    # policy file's `ignore` list may name advisories too: ids never collide with rule ids.
    rule_ids = frozenset(i for i in args.ignore if i in rules.AUDIT_RULE_IDS)
    advisory_ids = [i for i in args.ignore if i not in rules.AUDIT_RULE_IDS]
    advisory_ids += sorted(policy.ignore - rules.AUDIT_RULE_IDS)
    if rule_ids:
        policy = replace(policy, ignore=policy.ignore | rule_ids)
    source = choose_source(args)
    raw = audit_paths(
        args.paths,
        source=source,
        policy=policy,
        include_environment=args.env,
        ignore=advisory_ids,
    )
    report = policy.apply(raw)
    color = args.output is None and use_color(sys.stdout)
    text = render(
        report,
        args.format,
        policy=policy,
        invocation=Invocation(policy_source=policy_source),
        color=color,
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
