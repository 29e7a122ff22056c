"""Versioned SQL migrations for the ``classhub_auth`` schema.

The files ``authenticator/migrations/NNNN_name.sql`` are applied in version order, all in
one transaction under a PostgreSQL advisory lock, and recorded in
``classhub_auth.schema_migrations``. Running it again, or from two processes at once, is
safe: the second waits for the lock and then finds nothing left to do. A migration file
must not contain BEGIN/COMMIT and, once released, must never be edited (add a new one).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

from psycopg import AsyncConnection

log = logging.getLogger(__name__)

SCHEMA = "classhub_auth"
#: pg_advisory_xact_lock key; the bytes of "classhub" read as a big-endian integer
LOCK_KEY = int.from_bytes(b"classhub", "big")
#: statement_timeout while migrating (waiting for another process's lock included)
MIGRATION_TIMEOUT_MS = 60_000
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The migrations shipped with the package, in version order (checked: 1, 2, 3, ...)."""
    found = []
    for entry in (resources.files("authenticator") / "migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        m = _FILE_RE.match(entry.name)
        if not m:
            raise RuntimeError(f"migration file {entry.name} is not named NNNN_name.sql")
        found.append(Migration(int(m[1]), m[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration versions must be 1, 2, 3, ... without gaps: {versions}")
    return found


async def apply_migrations(conn: AsyncConnection) -> list[int]:
    """Bring the schema up to date on ``conn`` (autocommit); returns the versions applied."""
    migrations = load_migrations()
    applied_now = []
    async with conn.transaction():
        await conn.execute(
            "SELECT set_config('statement_timeout', %s, true)", (str(MIGRATION_TIMEOUT_MS),)
        )
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute(f"SELECT version FROM {SCHEMA}.schema_migrations")  # noqa: S608
        done = {row[0] for row in await cur.fetchall()}
        if done and max(done) > len(migrations):
            log.warning(
                "the database schema %s is at version %d, newer than this code (%d)",
                SCHEMA,
                max(done),
                len(migrations),
            )
        for m in migrations:
            if m.version in done:
                continue
            log.info("applying migration %04d_%s to %s", m.version, m.name, SCHEMA)
            await conn.execute(m.sql)
            await conn.execute(
                f"INSERT INTO {SCHEMA}.schema_migrations (version, name) VALUES (%s, %s)",  # noqa: S608
                (m.version, m.name),
            )
            applied_now.append(m.version)
    return applied_now
