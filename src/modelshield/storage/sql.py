"""SQL storage through SQLAlchemy Core: connecting, migrating, insert-only tables, retries.

SQLite (a plain path or ``sqlite:///...``) runs in WAL mode with ``synchronous=NORMAL`` (a
killed process loses nothing committed, and readers never block the writer) and a busy timeout
(a writer waits for another instead of failing at once); PostgreSQL by URL
(``postgresql://...`` uses psycopg 3). Schemas are created and upgraded by numbered
migrations, each store with its own meta table (``key``/``value``, the ``schema_version`` row
among them): :func:`migrate` runs them in one transaction under a lock (an advisory lock on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so that processes starting together migrate once.
Tables named in :func:`insert_only` refuse ``UPDATE`` and ``DELETE`` (and, on PostgreSQL,
``TRUNCATE``) by trigger.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from modelshield.core.errors import ConfigError, MissingExtraError, ServiceError

T = TypeVar("T")

Migration = tuple[int, str, Callable[[sa.Connection], None]]
"""A schema step: its version number, what it adds, and the function that applies it."""

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""The type of an autoincrementing row id: BIGINT, INTEGER on SQLite (its rowid alias)."""


def meta_table(metadata: sa.MetaData, name: str) -> sa.Table:
    """A store's meta table: ``key``/``value`` rows, ``schema_version`` among them."""
    return sa.Table(
        name,
        metadata,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def normalise_url(url: str) -> str:
    """A database URL or a plain path (SQLite); ``postgresql://`` uses psycopg 3."""
    if "://" not in url:
        return f"sqlite:///{url}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def display_url(url: str) -> str:
    """The URL without its password, for messages and reports."""
    try:
        return sa.engine.make_url(normalise_url(url)).render_as_string(hide_password=True)
    except Exception:
        return "<database>"


def connect(url: str, *, timeout: float = 5.0) -> sa.Engine:
    """An engine for ``url``; SQLite in WAL mode, waiting up to ``timeout`` seconds for another
    writer (its busy timeout)."""
    full = normalise_url(url)
    try:
        if full.startswith("sqlite"):
            engine = sa.create_engine(
                full, connect_args={"timeout": timeout, "check_same_thread": False}
            )

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

            return engine
        if full.startswith("postgresql"):
            return sa.create_engine(
                full, connect_args={"connect_timeout": max(1, int(timeout))}, pool_pre_ping=True
            )
        return sa.create_engine(full)
    except ImportError as e:
        if full.startswith("postgresql"):
            feature = f"the database {display_url(url)}"
            raise MissingExtraError(feature, "postgres", "psycopg") from e
        raise ConfigError(f"cannot use the database {display_url(url)}: {e}") from e
    except sa.exc.ArgumentError as e:
        raise ConfigError(f"cannot use the database {display_url(url)}: {e}") from e


def lock_for_writing(conn: sa.Connection, key: int) -> None:
    """Start the transaction of ``conn`` holding the database's write lock: an advisory lock
    ``key`` on PostgreSQL (released at commit), ``BEGIN IMMEDIATE`` on SQLite (waiting up to
    the busy timeout for another writer). Call it first in ``engine.begin()``."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({int(key)})")
    elif conn.dialect.name == "sqlite":
        # pysqlite opens a transaction only before DML; opening it here makes the whole
        # block (DDL included) one transaction, and takes the write lock before any read.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def insert_only(conn: sa.Connection, tables: Iterable[sa.Table], function: str) -> None:
    """Triggers that refuse ``UPDATE`` and ``DELETE`` on ``tables`` (and ``TRUNCATE`` on
    PostgreSQL, through the trigger function named ``function``)."""
    tables = list(tables)
    if conn.dialect.name == "sqlite":
        for table in tables:
            for op in ("UPDATE", "DELETE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER IF NOT EXISTS {table.name}_no_{op.lower()} BEFORE {op} ON "
                    f"{table.name} BEGIN SELECT RAISE(ABORT, '{table.name} is insert-only'); END"
                )
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION '%% is insert-only', TG_TABLE_NAME; END; $$ LANGUAGE plpgsql"
        )
        for table in tables:
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table.name}_insert_only BEFORE UPDATE OR DELETE ON "
                f"{table.name} FOR EACH ROW EXECUTE FUNCTION {function}()"
            )
            conn.exec_driver_sql(
                f"CREATE TRIGGER {table.name}_no_truncate BEFORE TRUNCATE ON {table.name} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )


def schema_version(conn: sa.Connection, meta: sa.Table) -> int:
    """The schema version a meta table records (0: none)."""
    found = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return int(found) if found is not None else 0


def migrate(
    engine: sa.Engine,
    meta: sa.Table,
    migrations: Sequence[Migration],
    *,
    lock_key: int,
    what: str,
) -> int:
    """Bring a store's schema up to its last migration, in one transaction under the write
    lock; return the version found before. ``meta`` is the store's ``key``/``value`` table;
    ``what`` names the store in the error raised when the schema is newer than this
    modelshield."""
    latest = migrations[-1][0]

    def step() -> int:
        with engine.begin() as conn:
            lock_for_writing(conn, lock_key)
            meta.create(conn, checkfirst=True)
            before = schema_version(conn, meta)
            if before > latest:
                raise ServiceError(
                    f"{what}'s schema is version {before}, newer than this modelshield "
                    f"({latest}): upgrade modelshield"
                )
            for version, _what, apply in migrations:
                if version > before:
                    apply(conn)
            if before == 0:
                conn.execute(meta.insert().values(key="schema_version", value=str(latest)))
            elif before != latest:
                conn.execute(
                    meta.update().where(meta.c.key == "schema_version").values(value=str(latest))
                )
        return before

    return retry_locked(engine, step)


def is_locked(error: BaseException) -> bool:
    """Whether ``error`` says that another writer holds a SQLite database."""
    text = str(getattr(error, "orig", error)).lower()
    return "database is locked" in text or "database is busy" in text


def retry_locked(engine: sa.Engine, work: Callable[[], T], *, deadline_s: float = 60.0) -> T:
    """Run ``work`` (one whole transaction), again while a SQLite database stays locked by
    another writer past its busy timeout, with a random back-off, for up to ``deadline_s``
    seconds. Other errors, and every error on other databases, are raised at once."""
    if engine.dialect.name != "sqlite":
        return work()
    end = time.monotonic() + deadline_s
    pause = 0.05
    while True:
        try:
            return work()
        except sa.exc.OperationalError as e:
            if not is_locked(e) or time.monotonic() + pause > end:
                raise
        time.sleep(pause * (0.5 + random.random()))  # jitter: writers back off apart
        pause = min(pause * 2, 1.0)
