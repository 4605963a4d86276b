"""The decision log's database: tables, migrations, the hash chain and its verification.

SQLite (WAL, ``synchronous=NORMAL``: a killed process loses nothing committed) by default,
PostgreSQL by URL (``postgresql+psycopg://...``), through SQLAlchemy Core. The schema is
created and upgraded by numbered migrations (:data:`MIGRATIONS`), recorded in
``guard_meta``, under a lock (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so
that replicas starting together migrate once: the storage layer shared with the gate's
governance database (:mod:`modelshield.storage.sql`).

Every table but ``guard_meta`` is insert-only: a trigger refuses ``UPDATE`` and ``DELETE``
(and, on PostgreSQL, ``TRUNCATE``). Decisions are also hash-chained: each writer process
(one *chain*, registered in ``guard_chains``) numbers its records 1, 2, 3... and stores with
each the SHA-256 of the previous record's hash and the record's own content, so that
:func:`verify` finds an edited row (its hash no longer matches), a deleted one (a gap in the
numbers, or a broken link) and rows moved between chains. Removing the *last* records of a
chain leaves a shorter valid chain: compare the heads with the ones the service logs
(``GET /admin/status`` and the shutdown log line) to catch that.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import msgspec
import sqlalchemy as sa
from msgspec import Struct

from modelshield.storage import sql

metadata = sa.MetaData()

guard_meta = sql.meta_table(metadata, "guard_meta")

chains = sa.Table(
    "guard_chains",
    metadata,
    sa.Column("chain", sa.String(36), primary_key=True),
    sa.Column("replica", sa.String(200), nullable=False),
    sa.Column("started_us", sa.BigInteger, nullable=False),
)

decisions = sa.Table(
    "guard_decisions",
    metadata,
    sa.Column("id", sql.ID, primary_key=True, autoincrement=True),
    sa.Column("chain", sa.String(36), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("request_id", sa.String(36), nullable=False),
    sa.Column("client", sa.String(200), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("scores", sa.Text, nullable=False),
    sa.Column("prediction", sa.Text, nullable=False),
    sa.Column("features", sa.Text, nullable=True),
    sa.Column("latency_us", sa.BigInteger, nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("chain", "seq", name="uq_guard_decisions_chain_seq"),
    sa.Index("ix_guard_decisions_ts", "ts_us"),
    sa.Index("ix_guard_decisions_request", "request_id"),
)

feedback = sa.Table(
    "guard_feedback",
    metadata,
    sa.Column("id", sql.ID, primary_key=True, autoincrement=True),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("request_id", sa.String(36), nullable=False),
    sa.Column("idx", sa.Integer, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("client", sa.String(200), nullable=False),
    sa.Index("ix_guard_feedback_request", "request_id"),
)

window_counts = sa.Table(
    "guard_window_counts",
    metadata,
    sa.Column("id", sql.ID, primary_key=True, autoincrement=True),
    sa.Column("window_us", sa.BigInteger, nullable=False),
    sa.Column("replica", sa.String(200), nullable=False),
    sa.Column("feature", sa.String(200), nullable=False),
    sa.Column("bin", sa.Integer, nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Index("ix_guard_window_counts_window", "window_us"),
)

alerts = sa.Table(
    "guard_alerts",
    metadata,
    sa.Column("id", sql.ID, primary_key=True, autoincrement=True),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_guard_alerts_ts", "ts_us"),
)

references = sa.Table(
    "guard_references",
    metadata,
    sa.Column("id", sql.ID, primary_key=True, autoincrement=True),
    sa.Column("ts_us", sa.BigInteger, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)

INSERT_ONLY = (chains, decisions, feedback, window_counts, alerts, references)
"""Tables a trigger keeps insert-only."""

DECISION_FIELDS = (
    "chain",
    "seq",
    "ts_us",
    "request_id",
    "client",
    "status",
    "decision",
    "reasons",
    "scores",
    "prediction",
    "features",
    "latency_us",
    "request_hash",
)
"""The fields a decision's hash covers, in order (then the previous hash)."""


def genesis(chain: str) -> str:
    """The ``prev_hash`` of a chain's first record."""
    return hashlib.sha256(f"modelshield-guard-chain:{chain}".encode()).hexdigest()


_HASHED = operator.itemgetter(*DECISION_FIELDS)


def row_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """The hash of one decision row (its :data:`DECISION_FIELDS` and the previous hash)."""
    body = msgspec.json.encode([prev_hash, *_HASHED(row)])
    return hashlib.sha256(body).hexdigest()


# ---- connecting and migrating ---------------------------------------------------------------
# The engine, the migration runner and the triggers are the shared storage layer's
# (modelshield.storage.sql), which the gate's governance database uses too.

normalise_url = sql.normalise_url
display_url = sql.display_url
connect = sql.connect


def _migration_1(conn: sa.Connection) -> None:
    metadata.create_all(conn, checkfirst=True)
    sql.insert_only(conn, INSERT_ONLY, "modelshield_guard_insert_only")


MIGRATIONS: tuple[sql.Migration, ...] = (
    (1, "decision log, chains, feedback, window counts, alerts, references", _migration_1),
)
"""Schema migrations, applied in order; each runs in one transaction."""

SCHEMA_VERSION = MIGRATIONS[-1][0]
"""The schema this version of modelshield writes."""

_LOCK_KEY = 0x6D736764  # "msgd"


def migrate(engine: sa.Engine) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`; return the version found before."""
    return sql.migrate(engine, guard_meta, MIGRATIONS, lock_key=_LOCK_KEY, what="the decision log")


# ---- verification -------------------------------------------------------------------------


class ChainProblem(Struct, frozen=True):
    """One break in a chain."""

    chain: str
    """The chain (writer process)."""
    seq: int
    """The record number where the break is."""
    kind: str
    """``edited`` (the hash does not match the content), ``missing`` (numbers skipped: rows
    deleted), ``relinked`` (the previous-hash link does not match: rows deleted or replaced),
    ``unregistered`` (a chain nobody started)."""
    message: str
    """What was found."""


class Verification(Struct, frozen=True):
    """The result of :func:`verify`."""

    records: int
    """Decision records checked."""
    chains: int
    """Chains checked."""
    heads: dict[str, tuple[int, str]]
    """Each chain's last record number and hash."""
    problems: tuple[ChainProblem, ...]
    """Every break found (empty: intact)."""


def verify(engine: sa.Engine, *, max_problems: int = 1_000) -> Verification:
    """Recompute every chain of the decision log; report each break."""
    problems: list[ChainProblem] = []
    heads: dict[str, tuple[int, str]] = {}
    records = 0
    with engine.connect() as conn:
        registered = {r[0] for r in conn.execute(sa.select(chains.c.chain))}
        columns = [decisions.c[k] for k in (*DECISION_FIELDS, "prev_hash", "hash")]
        query = sa.select(*columns).order_by(decisions.c.chain, decisions.c.seq)
        result = conn.execution_options(yield_per=5_000).execute(query)
        chain: str | None = None
        expected_seq = 1
        prev = ""
        for row in result.mappings():
            records += 1
            if row["chain"] != chain or chain is None:
                chain = str(row["chain"])
                expected_seq, prev = 1, genesis(chain)
                if chain not in registered:
                    problems.append(
                        ChainProblem(chain, row["seq"], "unregistered", "chain never started")
                    )
            seq = int(row["seq"])
            if seq != expected_seq:
                problems.append(
                    ChainProblem(
                        chain,
                        seq,
                        "missing",
                        f"records {expected_seq}..{seq - 1} are missing (deleted)",
                    )
                )
            elif row["prev_hash"] != prev:
                problems.append(
                    ChainProblem(chain, seq, "relinked", "the link to the previous record is wrong")
                )
            if row_hash(row["prev_hash"], dict(row)) != row["hash"]:
                problems.append(
                    ChainProblem(chain, seq, "edited", "the content does not match its hash")
                )
            prev = row["hash"]
            expected_seq = seq + 1
            heads[chain] = (seq, row["hash"])
            if len(problems) >= max_problems:
                break
    return Verification(records, len(heads), heads, tuple(problems))


def iter_rows(engine: sa.Engine, query: sa.Select[Any]) -> Iterator[sa.RowMapping]:
    """Rows of ``query``, streamed."""
    with engine.connect() as conn:
        yield from conn.execution_options(yield_per=5_000).execute(query).mappings()


_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
_DECISION_COLUMNS = [c.name for c in decisions.columns if c.name != "id"]
_DECISION_VALUES = operator.itemgetter(*_DECISION_COLUMNS)
INSERT_CHUNK = 64
"""Decision rows per ``INSERT`` statement (64 x 15 parameters: under SQLite's oldest limit of
999 bound parameters)."""


def insert_many(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows in the caller's transaction (nothing when ``rows`` is empty). Decisions, the
    writer's hot loop, go to the driver's cursor as multi-row ``INSERT ... VALUES (...), (...)``
    statements of :data:`INSERT_CHUNK` rows: far cheaper per row than SQLAlchemy's parameter
    processing, and one statement (one release of the interpreter lock by the driver) per
    chunk instead of one per row, so that the writer thread does not keep taking the lock back
    from the request path."""
    if not rows:
        return
    mark = _PLACEHOLDERS.get(conn.dialect.paramstyle)
    if table is decisions and mark is not None:
        head = f"INSERT INTO {table.name} ({', '.join(_DECISION_COLUMNS)}) VALUES "
        one = f"({', '.join([mark] * len(_DECISION_COLUMNS))})"
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for i in range(0, len(rows), INSERT_CHUNK):
                chunk = rows[i : i + INSERT_CHUNK]
                params: list[Any] = []
                for r in chunk:
                    params.extend(_DECISION_VALUES(r))
                cursor.execute(head + ", ".join([one] * len(chunk)), params)
        finally:
            cursor.close()
        return
    conn.execute(table.insert(), list(rows))
