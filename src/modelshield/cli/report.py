"""``modelshield report``: what changed across every model in a time window, from the
governance database that ``modelshield ci --record`` fills."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` parser."""
    parser = subparsers.add_parser(
        "report",
        help="what changed across every model over time, from the runs `ci --record` kept",
        description="Read the governance database that `modelshield ci --record` fills and "
        "show, across every model, what changed in a time window: new findings and fixed ones "
        "(by fingerprint), models that started failing or passing, models never seen before "
        "and models removed, and the trend of each assessment metric. Each model's latest run "
        "in the window is compared with its last run before the window (or, for a project "
        "with no earlier run, its first run in the window). The runtime guard's own summary "
        "is `modelshield guard report`. Needs the db extra.",
        epilog="Exit codes: 0 the report was written, 2 error (a bad time, a database that "
        "cannot be read or is not a governance database).",
    )
    parser.add_argument(
        "--since",
        default="30d",
        metavar="WHEN",
        help="start of the window: a duration ago (30d, 12h, 2w) or an ISO date or time "
        "(2026-11-01, 2026-11-01T08:00:00Z); default: %(default)s",
    )
    parser.add_argument(
        "--until", metavar="WHEN", help="end of the window (same forms; default: now)"
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="the governance database: a SQLite file or a postgresql:// URL (default: the "
        "policy's [governance] db, else .modelshield/governance.db beside the policy or in "
        "the current directory)",
    )
    parser.add_argument(
        "--policy", metavar="FILE", help="policy file (default: the one in the current directory)"
    )
    parser.add_argument("--project", metavar="NAME", help="only this project's runs")
    parser.add_argument(
        "-f",
        "--format",
        choices=["text", "json", "html"],
        default="text",
        help="text for a terminal, json for tools, html for people (default: text)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE")


def run(args: argparse.Namespace) -> int:
    """Read the database and write the report."""
    import os
    import time

    from modelshield.cli._common import resolve_policy, write_output
    from modelshield.cli._governance import DEFAULT_FILE, need_sqlalchemy, policy_db
    from modelshield.core.errors import ConfigError
    from modelshield.core.timespec import parse_time

    now = time.time()
    since = parse_time(args.since, now, default=now - 30 * 86400)
    until = parse_time(args.until, now, default=now + 1)
    if until <= since:
        raise ConfigError(f"--until ({args.until}) is not after --since ({args.since})")
    if args.output is not None and os.path.isdir(args.output):  # noqa: PTH112
        raise ConfigError(f"cannot write the report to {args.output}: it is a directory")
    url = args.db
    if url is None:
        policy, _label = resolve_policy(args.policy)
        url = policy_db(policy)
        if url is None:
            base = policy.root if policy.root is not None else os.getcwd()  # noqa: PTH109
            url = os.path.join(base, DEFAULT_FILE)  # noqa: PTH118
    need_sqlalchemy("modelshield report")
    import sqlalchemy as sa

    from modelshield.core.errors import ServiceError
    from modelshield.gate import governance

    engine = governance.open_for_reading(url)
    try:
        document = governance.changes(
            engine, int(since * 1_000_000), int(until * 1_000_000), project=args.project
        )
    except sa.exc.SQLAlchemyError as e:
        raise ServiceError(f"cannot read the governance database {url}: {e}") from e
    finally:
        engine.dispose()
    if args.format == "json":
        import json

        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    else:
        from modelshield.report.governance import render_html, render_text

        text = render_html(document) if args.format == "html" else render_text(document)
    write_output(text, args.output, sys.stdout)
    return 0
