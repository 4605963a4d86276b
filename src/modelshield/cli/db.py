"""``modelshield db``: manage the offline vulnerability database."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelshield.audit.sources.osv_db import DatabaseStatus


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``db`` parser and its ``update`` and ``status`` subcommands."""
    parser = subparsers.add_parser(
        "db",
        help="download the offline vulnerability database, or show what one holds",
        description="Manage the OSV database that `modelshield audit --offline` reads.",
    )
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION")
    update = actions.add_parser(
        "update",
        help="download OSV's PyPI export and compile its index",
        description="Download every PyPI advisory OSV publishes (one ZIP of JSON records, "
        "CC-BY 4.0), check that it is a usable database, and compile the index that offline "
        "audits read.",
        epilog="Exit codes: 0 updated, 2 error (the download failed, or it is not a usable "
        "OSV database; the previous database, if any, is kept).",
    )
    update.add_argument(
        "--dest",
        metavar="DIR",
        help="where to store it (default: osv-db under the cache directory, where "
        "`audit --offline` looks)",
    )
    update.add_argument("--url", metavar="URL", help="download from a mirror of the export")
    update.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="network timeout"
    )
    status = actions.add_parser(
        "status",
        help="show what an offline database holds, how recent it is, and where it came from",
        description="Show an offline OSV database's advisory count, its newest modification "
        "date, where it came from (as `db update` recorded it), and whether an audit would "
        "use it.",
        epilog="Exit codes: 0 usable, 2 missing or not usable by an audit.",
    )
    status.add_argument(
        "--db",
        metavar="PATH",
        help="the database (default: the one `modelshield db update` downloaded)",
    )
    for action in (update, status):
        action.add_argument(
            "--cache-dir",
            metavar="DIR",
            help="cache directory (default: $MODELSHIELD_CACHE_DIR or ~/.cache/modelshield)",
        )
        action.add_argument(
            "--policy",
            metavar="FILE",
            help="policy file, for [audit] max_unreadable_share and max_database_age_days "
            "(default: ./modelshield.toml, else [tool.modelshield] in ./pyproject.toml)",
        )


def run(args: argparse.Namespace) -> int:
    """Run the chosen action and return the exit code."""
    from modelshield.cli._common import resolve_policy
    from modelshield.core.errors import ConfigError

    if args.db_command not in ("update", "status"):
        raise ConfigError("choose an action: modelshield db update, or modelshield db status")
    policy, _ = resolve_policy(args.policy)
    if args.db_command == "status":
        return _status(args, policy.audit.max_unreadable_share, policy.audit.max_database_age_days)
    return _update(args, policy.audit.max_unreadable_share)


def _update(args: argparse.Namespace, share: float) -> int:
    from modelshield.audit.cache import default_cache_dir, default_database_dir
    from modelshield.audit.sources.osv_db import OfflineDatabase
    from modelshield.audit.sources.osv_update import DEFAULT_EXPORT_URL, download_database
    from modelshield.core.errors import ConfigError

    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    dest = Path(args.dest) if args.dest else default_database_dir(cache)
    started = time.monotonic()
    result = download_database(
        dest, args.url or DEFAULT_EXPORT_URL, timeout=args.timeout, max_unreadable_share=share
    )
    downloaded = time.monotonic() - started
    db = OfflineDatabase(dest, cache_dir=cache, max_unreadable_share=share)
    count = db.record_count()
    db.close()
    print(
        f"Stored {result.records} OSV records ({result.size} bytes) in {result.path} "
        f"in {downloaded:.1f}s; index of {count} advisories ready "
        f"({time.monotonic() - started - downloaded:.1f}s).\n"
        "Data: OSV.dev and its sources (PyPA advisory database, GitHub), CC-BY 4.0.",
        file=sys.stdout,
    )
    return 0


def _status(args: argparse.Namespace, share: float, max_age: float) -> int:
    from modelshield.audit.cache import default_cache_dir, default_database_dir
    from modelshield.audit.sources.osv_db import OfflineDatabase

    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    path = Path(args.db) if args.db else default_database_dir(cache)
    db = OfflineDatabase(path, cache_dir=cache, max_unreadable_share=share)
    try:
        status = db.status()
    finally:
        db.close()
    print(describe_status(status, max_age), file=sys.stdout)
    return 2 if status.problem else 0


def describe_status(status: DatabaseStatus, max_age_days: float) -> str:
    """``db status``'s text: what the database holds, its age, origin and usability."""
    from datetime import UTC, datetime

    stats = status.stats
    lines = [
        f"OSV database: {status.path} ({status.kind})",
        f"  advisories: {stats.records} OSV records, {stats.pypi_records} for PyPI; "
        f"{stats.unreadable} of {stats.documents} records or files unreadable",
    ]
    if stats.newest_modified:
        age = ""
        try:
            stamp = datetime.fromisoformat(stats.newest_modified)
            stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
            days = (datetime.now(UTC) - stamp).total_seconds() / 86400
            stale = max_age_days > 0 and days > max_age_days
            age = f" ({days:.0f} days ago{'; older than the policy allows' if stale else ''})"
        except ValueError:
            pass
        lines.append(f"  newest advisory modified: {stats.newest_modified}{age}")
    origin = status.origin
    if origin:
        lines.append(
            f"  origin: downloaded from {origin.get('url', '?')} on "
            f"{origin.get('downloaded', '?')} ({origin.get('size', '?')} bytes, "
            f"sha256 {origin.get('sha256', '?')})"
        )
    else:
        lines.append("  origin: a local directory or file (not downloaded by `db update`)")
    lines.append(f"  index: {status.index}")
    lines.append(f"  usable: {'no: ' + status.problem if status.problem else 'yes'}")
    return "\n".join(lines)
