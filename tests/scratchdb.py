"""Emptying a scratch PostgreSQL database that holds an audit trail.

The trail refuses TRUNCATE (docs/audit.md), and Django's flush empties every table
with TRUNCATE. The suite and the benches run as the database's superuser, which may
turn triggers off for the flush's own transaction (session_replication_role, a
setting that an application role that is not a superuser cannot change).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def flush_past_the_trail_triggers() -> Iterator[None]:
    """While open, a flush on PostgreSQL runs with triggers off for its transaction."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    flush = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, **options):
        statements = flush(self, style, tables, **options)
        return ["SET LOCAL session_replication_role = replica", *statements] if statements else []

    DatabaseOperations.sql_flush = sql_flush
    try:
        yield
    finally:
        DatabaseOperations.sql_flush = flush
