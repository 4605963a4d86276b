"""``modelshield db``: manage the offline vulnerability database."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``db`` parser and its ``update`` subcommand."""
    parser = subparsers.add_parser(
        "db",
        help="download the offline vulnerability database",
        description="Manage the OSV database that `modelshield audit --offline` reads.",
    )
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION")
    update = actions.add_parser(
        "update",
        help="download OSV's PyPI export and compile its index",
        description="Download every PyPI advisory OSV publishes (one ZIP of JSON records, "
        "CC-BY 4.0) and compile the index that offline audits read.",
        epilog="Exit codes: 0 updated, 2 error (the download failed; the previous database, "
        "if any, is kept).",
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
    update.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="cache directory (default: $MODELSHIELD_CACHE_DIR or ~/.cache/modelshield)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the chosen action and return the exit code."""
    from modelshield.audit.cache import default_cache_dir, default_database_dir
    from modelshield.audit.sources.osv_db import OfflineDatabase
    from modelshield.audit.sources.osv_update import DEFAULT_EXPORT_URL, download_database
    from modelshield.core.errors import ConfigError

    if args.db_command != "update":
        raise ConfigError("choose an action: modelshield db update")
    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    dest = Path(args.dest) if args.dest else default_database_dir(cache)
    started = time.monotonic()
    result = download_database(dest, args.url or DEFAULT_EXPORT_URL, timeout=args.timeout)
    downloaded = time.monotonic() - started
    db = OfflineDatabase(dest, cache_dir=cache)
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
