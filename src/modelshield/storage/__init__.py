"""Storage shared by the pillars that keep records over time: the runtime guard's decision
log and the gate's governance database.

:mod:`modelshield.storage.sql` holds what both need from a SQL database (SQLite by default,
PostgreSQL by URL, through SQLAlchemy Core): engines with the right SQLite settings, numbered
migrations recorded in a meta table and run under a lock, insert-only triggers, and retries
when another writer holds a SQLite file. It imports ``core`` only, and SQLAlchemy, which the
``db`` extra installs: import it lazily, only where a database is used.
"""
