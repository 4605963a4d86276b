"""The governance database as the command line names it: ``ci --record [URL]``, the
policy's ``[governance] db``, ``report --db URL``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa

    from modelshield.core.policy import Policy

DEFAULT_FILE = os.path.join(".modelshield", "governance.db")  # noqa: PTH118
"""The database of ``--record`` with no URL and no ``[governance] db``, in the project."""
RECORD_DEFAULT = ""
"""The value ``--record`` takes when it is given without a URL."""


def record_url(option: str | None, policy: Policy, root: str) -> str | None:
    """Where this ``ci`` run records (None: nowhere): ``--record URL`` (a path relative to the
    working directory), else the policy's ``[governance] db`` (a SQLite path relative to the
    policy file), else, with a bare ``--record``, ``.modelshield/governance.db`` in the
    project."""
    if option:
        return option
    configured = policy_db(policy)
    if configured is not None:
        return configured
    if option == RECORD_DEFAULT:
        folder = os.path.join(root, ".modelshield")  # noqa: PTH118
        os.makedirs(folder, exist_ok=True)  # noqa: PTH103
        return os.path.join(root, DEFAULT_FILE)  # noqa: PTH118
    return None


def policy_db(policy: Policy) -> str | None:
    """The policy's ``[governance] db``: a SQLite path or ``sqlite:///relative`` URL made
    relative to the policy file; None when it names none."""
    url = policy.governance.db
    if url is None:
        return None
    if "://" not in url:
        return policy.resolve(url)
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        path = url[len(prefix) :]
        if path and not path.startswith(":memory:"):
            return prefix + policy.resolve(path)
    return url


def need_sqlalchemy(feature: str) -> None:
    """Raise MissingExtraError naming the ``db`` extra when SQLAlchemy is not installed."""
    import importlib.util

    from modelshield.core.errors import MissingExtraError

    if importlib.util.find_spec("sqlalchemy") is None:
        raise MissingExtraError(feature, "db", "sqlalchemy")


def open_for_writing(url: str) -> sa.Engine:
    """The governance database, created or upgraded (errors name it)."""
    need_sqlalchemy("modelshield ci --record")
    from modelshield.gate import governance

    return governance.open_for_writing(url)
