"""Versioned SQL migrations for one PostgreSQL schema (any classhub component).

A package ships ``<package>/<directory>/NNNN_name.sql`` files. :func:`apply_migrations`
applies the missing ones in version order, all in one transaction under a PostgreSQL
advisory lock, and records each in ``<schema>.schema_migrations``. Running it again, or
from two processes at once, is safe: the second waits for the lock and then finds
nothing left to do. A migration file must not contain BEGIN/COMMIT, must name its
objects with the schema (``CREATE TABLE myschema.t ...``) and, once released, must never
be edited (add a new one).

Each schema should use a ``lock_key`` of its own (any 64-bit signed integer), so that
services sharing one database do not wait for each other's migrations.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from psycopg import AsyncConnection, errors, sql
from psycopg.rows import tuple_row

log = logging.getLogger(__name__)

#: statement_timeout while migrating (waiting for another process's lock included)
MIGRATION_TIMEOUT_MS = 60_000
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class MissingSchema(RuntimeError):
    """The schema is missing and the connected role may not create it."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def check_versions(migrations: Sequence[Migration]) -> None:
    """Raise RuntimeError unless the versions are 1, 2, 3, ... in order, without gaps."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migration versions must be 1, 2, 3, ... without gaps: {versions}")


def load_migrations(package: str, directory: str = "migrations") -> list[Migration]:
    """The migrations shipped in ``package``'s ``directory``, in version order (checked:
    1, 2, 3, ...). Other files than ``*.sql`` are ignored; a badly named ``.sql`` file is
    an error."""
    found = []
    for entry in (resources.files(package) / directory).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        m = _FILE_RE.match(entry.name)
        if not m:
            raise RuntimeError(f"migration file {entry.name} is not named NNNN_name.sql")
        found.append(Migration(int(m[1]), m[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    check_versions(found)
    return found


async def apply_migrations(
    conn: AsyncConnection,
    *,
    schema: str,
    migrations: Sequence[Migration],
    lock_key: int,
    timeout_ms: int = MIGRATION_TIMEOUT_MS,
) -> list[int]:
    """Bring ``schema`` up to date on ``conn`` (autocommit); returns the versions applied.

    Everything happens in one transaction: a failing migration leaves the database as it
    was. ``timeout_ms`` bounds each statement, the wait for the advisory lock included."""
    if not _SCHEMA_RE.match(schema):
        raise ValueError(f"not a plain schema name: {schema!r}")
    if not -(2**63) <= lock_key < 2**63:
        raise ValueError("lock_key must fit in a signed 64-bit integer")
    migrations = list(migrations)
    check_versions(migrations)
    ident = sql.Identifier(schema)
    table = sql.SQL("{}.schema_migrations").format(ident)
    applied_now = []
    async with conn.transaction():
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute("SELECT set_config('statement_timeout', %s, true)", (str(timeout_ms),))
        await cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        # Only when missing: CREATE SCHEMA needs CREATE on the database, even with IF NOT
        # EXISTS, and a component's own role has none (it owns its schema, made for it by
        # `classhub-stores postgres`; see hub/stores/postgres.py).
        await cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        if await cur.fetchone() is None:
            try:
                await cur.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
            except errors.InsufficientPrivilege:
                raise MissingSchema(
                    f"the schema {schema} does not exist and this database role may not create "
                    "it: run the stack's store set-up (`make up`, or `classhub-stores "
                    "postgres`) first"
                ) from None
        await cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(table)
        )
        await cur.execute(sql.SQL("SELECT version FROM {}").format(table))
        done = {row[0] for row in await cur.fetchall()}
        if done and max(done) > len(migrations):
            log.warning(
                "the database schema %s is at version %d, newer than this code (%d)",
                schema,
                max(done),
                len(migrations),
            )
        for m in migrations:
            if m.version in done:
                continue
            log.info("applying migration %04d_%s to %s", m.version, m.name, schema)
            await cur.execute(m.sql)
            await cur.execute(
                sql.SQL("INSERT INTO {} (version, name) VALUES (%s, %s)").format(table),
                (m.version, m.name),
            )
            applied_now.append(m.version)
    return applied_now
