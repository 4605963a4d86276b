"""Options shared by the subcommands that consult a vulnerability source (``audit``, ``bom``).

Both take the same ``--db``, ``--offline``, ``--osv-url``, ``--timeout``, ``--cache-dir`` and
``--no-cache`` options, the same ``--ignore`` values, and the same options on how inputs are
read (``--python-version``, ``--platform``, ``--allow-include``, ``--expand-env``), which
override the policy's ``[audit]`` table. They differ in one thing: ``audit``
exists to check vulnerabilities, so without an option it asks the OSV API; ``bom`` describes a
model and only checks vulnerabilities when asked, so without an option it uses no source and
sends nothing over the network (``--osv-api`` asks for the API explicitly).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from msgspec.structs import replace

if TYPE_CHECKING:
    from datetime import date

    from modelshield.audit.interface import VulnerabilitySource
    from modelshield.core.policy import Policy

OSV_URL_ENV = "MODELSHIELD_OSV_URL"
"""Environment variable naming another OSV API (a mirror or a local server)."""


def add_source_options(parser: argparse.ArgumentParser, *, api_by_default: bool) -> None:
    """Add the vulnerability-source options to ``parser``.

    ``api_by_default``: whether no option means the OSV API (``audit``) or no source at all
    (``bom``, which then also gets ``--osv-api`` to ask for the API with its default URL).
    """
    if api_by_default:
        title = "vulnerability source (default: the OSV API)"
    else:
        title = "vulnerability source (default: none; nothing is checked or sent anywhere)"
    group = parser.add_argument_group(title)
    group.add_argument(
        "--db",
        metavar="PATH",
        help="offline OSV database: a directory of OSV .json/.yaml files (PyPA advisory "
        "database layout or OSV exports) or an OSV export .zip",
    )
    group.add_argument(
        "--offline",
        action="store_true",
        help="never use the network: use --db, else the database `modelshield db update` "
        "downloaded",
    )
    if not api_by_default:
        group.add_argument(
            "--osv-api",
            action="store_true",
            help="check vulnerabilities with the OSV API (at --osv-url, else "
            f"${OSV_URL_ENV}, else https://api.osv.dev): sends the dependencies' names and "
            "versions over the network",
        )
    group.add_argument(
        "--osv-url",
        metavar="URL",
        help=f"OSV API base URL (default: ${OSV_URL_ENV} or https://api.osv.dev)"
        + ("" if api_by_default else "; implies --osv-api"),
    )
    group.add_argument(
        "--timeout", type=float, default=15.0, metavar="SECONDS", help="per-request timeout"
    )
    group.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="cache for the compiled database index and API answers "
        "(default: $MODELSHIELD_CACHE_DIR or ~/.cache/modelshield)",
    )
    group.add_argument("--no-cache", action="store_true", help="neither read nor write caches")


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """Add the options on how dependency inputs are read (they override ``[audit]``)."""
    group = parser.add_argument_group(
        "dependency inputs (default: every dependency, whatever its environment marker)"
    )
    group.add_argument(
        "--python-version",
        metavar="X.Y[.Z]",
        help="evaluate environment markers for this Python, as where the model will run; a "
        "dependency whose marker is false is left out and listed as excluded",
    )
    group.add_argument(
        "--platform",
        choices=["linux", "macos", "windows"],
        help="evaluate environment markers for this platform (as --python-version)",
    )
    group.add_argument(
        "--allow-include",
        action="append",
        default=[],
        metavar="DIR",
        help="let requirements files include (-r, -c) files under DIR, outside the audited "
        "tree (refused by default); repeatable",
    )
    group.add_argument(
        "--expand-env",
        action="append",
        default=[],
        metavar="NAME",
        help="expand ${NAME} in requirements files from the environment (never by default: "
        "the value would appear in reports); repeatable",
    )


def apply_input_options(args: argparse.Namespace, policy: Policy) -> Policy:
    """The policy with the input options of the command line in its ``[audit]`` table."""
    from modelshield.core.errors import ConfigError
    from modelshield.core.policy import PYTHON_VERSION

    settings = policy.audit
    if args.python_version is not None:
        if not PYTHON_VERSION.match(args.python_version):
            raise ConfigError("--python-version must look like 3.11 or 3.11.4")
        settings = replace(settings, python_version=args.python_version)
    if args.platform is not None:
        settings = replace(settings, platform=args.platform)
    if args.allow_include:
        settings = replace(settings, allow_includes=(*settings.allow_includes, *args.allow_include))
    if args.expand_env:
        settings = replace(settings, expand_env=(*settings.expand_env, *args.expand_env))
    return replace(policy, audit=settings)


def add_ignore_option(parser: argparse.ArgumentParser, rules: str = "AUDIT-...") -> None:
    """Add ``--ignore ID`` (an advisory id or a rule id, repeatable); ``rules`` shows which."""
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="ID",
        help="drop an advisory by any of its ids (PYSEC-..., GHSA-..., CVE-...), or a rule id "
        f"({rules}); repeatable",
    )


def split_ignores(
    values: list[str],
    policy: Policy,
    rule_ids: frozenset[str] | None = None,
    *,
    today: date | None = None,
) -> tuple[Policy, list[str]]:
    """The policy with the rule ids among ``values`` ignored, and the advisory ids to drop.

    A value is a rule id when it is in ``rule_ids`` (default: the audit's rules), else an
    advisory id. The policy file's ``ignore`` list may name advisories too: advisory ids never
    collide with rule ids. With ``today``, the ``[[audit.ignore]]`` entries that have not
    expired are added (an expired one no longer applies).
    """
    if rule_ids is None:
        from modelshield.audit.rules import AUDIT_RULE_IDS

        rule_ids = AUDIT_RULE_IDS
    rules = frozenset(i for i in values if i in rule_ids)
    advisory_ids = [i for i in values if i not in rule_ids]
    advisory_ids += sorted(policy.ignore - rule_ids)
    if today is not None:
        advisory_ids += policy.audit.active_ignores(today)
    if rules:
        policy = replace(policy, ignore=policy.ignore | rules)
    return policy, advisory_ids


def choose_source(args: argparse.Namespace, policy: Policy) -> VulnerabilitySource:
    """``audit``'s source: the one the options name, else the OSV API.

    Raises ConfigError for contradictory options, AuditServiceError when ``--offline`` has no
    database to use.
    """
    return requested_source(args, policy) or _osv_api(args)


def requested_source(args: argparse.Namespace, policy: Policy) -> VulnerabilitySource | None:
    """The source the options name, or None when they name none (``bom``'s default).

    The OSV API counts as named only through ``--osv-api`` or ``--osv-url``: the
    ``$MODELSHIELD_OSV_URL`` variable says where the API is, not that it should be used.
    """
    from modelshield.audit.cache import default_database_dir
    from modelshield.audit.interface import AuditServiceError
    from modelshield.audit.sources.osv_db import OfflineDatabase
    from modelshield.core.errors import ConfigError

    wants_api = args.osv_url is not None or getattr(args, "osv_api", False)
    api_option = "--osv-url" if args.osv_url is not None else "--osv-api"
    if args.db is not None and wants_api:
        raise ConfigError(f"--db and {api_option} select two sources; pass one of them")
    if args.offline and wants_api:
        raise ConfigError(f"--offline and {api_option} contradict each other")
    if args.timeout <= 0:
        raise ConfigError("--timeout must be positive")
    cache = _cache_dir(args)
    share = policy.audit.max_unreadable_share
    if args.db is not None:
        return OfflineDatabase(
            args.db, cache_dir=cache, limits=policy.limits, max_unreadable_share=share
        )
    if args.offline:
        where = default_database_dir(Path(args.cache_dir) if args.cache_dir else None)
        if not where.is_dir() or not any(where.iterdir()):
            raise AuditServiceError(
                f"offline audit needs a vulnerability database, and there is none at {where}",
                "Run `modelshield db update` once while online, or pass --db PATH "
                "(a directory of OSV files or an OSV export .zip).",
            )
        return OfflineDatabase(
            where, cache_dir=cache, limits=policy.limits, max_unreadable_share=share
        )
    return _osv_api(args) if wants_api else None


def _cache_dir(args: argparse.Namespace) -> Path | None:
    from modelshield.audit.cache import default_cache_dir

    if args.no_cache:
        return None
    return Path(args.cache_dir) if args.cache_dir else default_cache_dir()


def _osv_api(args: argparse.Namespace) -> VulnerabilitySource:
    from modelshield.audit.sources.osv_api import DEFAULT_URL, OsvApi  # only online runs need HTTP

    url = args.osv_url or os.environ.get(OSV_URL_ENV) or DEFAULT_URL
    return OsvApi(url, cache_dir=_cache_dir(args), timeout=args.timeout)
