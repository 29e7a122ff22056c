"""Versioned SQL migrations for the ``classhub_auth`` schema.

The files ``authenticator/migrations/NNNN_name.sql`` are applied in version order, all in
one transaction under a PostgreSQL advisory lock, and recorded in
``classhub_auth.schema_migrations``. Running it again, or from two processes at once, is
safe: the second waits for the lock and then finds nothing left to do. A migration file
must not contain BEGIN/COMMIT and, once released, must never be edited (add a new one).

The runner itself is :mod:`common.pgmigrate`, shared with the services.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from common import pgmigrate
from common.pgmigrate import MIGRATION_TIMEOUT_MS, Migration

__all__ = [
    "LOCK_KEY",
    "MIGRATION_TIMEOUT_MS",
    "SCHEMA",
    "Migration",
    "apply_migrations",
    "load_migrations",
]

SCHEMA = "classhub_auth"
#: pg_advisory_xact_lock key; the bytes of "classhub" read as a big-endian integer
LOCK_KEY = int.from_bytes(b"classhub", "big")


def load_migrations() -> list[Migration]:
    """The migrations shipped with the package, in version order (checked: 1, 2, 3, ...)."""
    return pgmigrate.load_migrations("authenticator")


async def apply_migrations(conn: AsyncConnection) -> list[int]:
    """Bring the schema up to date on ``conn`` (autocommit); returns the versions applied."""
    return await pgmigrate.apply_migrations(
        conn, schema=SCHEMA, migrations=load_migrations(), lock_key=LOCK_KEY
    )
