"""PostgreSQL: ``pg_dump`` of each database inside one exported snapshot, and back.

The backup opens a read-only ``REPEATABLE READ`` transaction, exports its snapshot, takes
the fingerprint of every table and sequence in it and runs ``pg_dump --snapshot`` in that
same snapshot: the dump and its fingerprint are the same instant of the database, however
much the stack writes meanwhile.

The restore replaces the schemas of the dump (``DROP SCHEMA ... CASCADE``, then the
dump's own statements) in one transaction (``psql --single-transaction``): a failure
leaves the database as it was. The roles that own the schemas (``classhub_hub``,
``classhub_auth``, ``classhub_grades``) are not in a dump: ``make up`` (``classhub-stores
postgres``) makes them in every deployment, each with that deployment's own password.

Connection details reach ``pg_dump``, ``pg_restore`` and ``psql`` in their environment
(``PGPASSWORD``), never on a command line.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql

from .manifest import BackupError

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
TOOLS = "/usr/bin"


@dataclass(frozen=True)
class Server:
    """Where the PostgreSQL server is and its superuser (from a ``postgresql://`` URL)."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def from_url(cls, url: str) -> Server:
        parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://", 1))
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise BackupError(
                "the PostgreSQL URL must look like postgresql://USER:PASSWORD@HOST:PORT/DB"
            )
        return cls(
            host=parts.hostname,
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            database=(parts.path or "/").lstrip("/") or "postgres",
        )

    def env(self, database: str) -> dict[str, str]:
        """The environment of a client tool for ``database`` (the password in it)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(
            PGHOST=self.host,
            PGPORT=str(self.port),
            PGUSER=self.user,
            PGDATABASE=database,
            PGCONNECT_TIMEOUT="10",
            PGAPPNAME="classhub-backup",
        )
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def connect(self, database: str, **kwargs) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=database,
            connect_timeout=10,
            application_name="classhub-backup",
            **kwargs,
        )


def _snapshot_connection(server: Server, database: str) -> psycopg.Connection:
    """A connection whose transaction (begun by the first statement) is a read-only
    ``REPEATABLE READ`` one: every statement in it sees the same snapshot."""
    conn = server.connect(database, autocommit=False)
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    return conn


def databases(server: Server) -> list[str]:
    """The databases worth a backup: all but the templates and ``postgres``."""
    with server.connect(server.database) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres'"
            " ORDER BY datname"
        ).fetchall()
    return [r[0] for r in rows]


def _relations(conn) -> list[tuple[str, str, str]]:
    return conn.execute(
        """SELECT n.nspname, c.relname, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND n.nspname NOT LIKE 'pg\\_%'
           ORDER BY 1, 2"""
    ).fetchall()


def fingerprint(conn) -> dict[str, dict]:
    """``{"schema.table": {"count", "sha256"}}`` of every table (its rows as text, in a
    fixed order) and sequence (its position), as the connection's transaction sees them."""
    out = {}
    for schema, name, kind in _relations(conn):
        table = sql.Identifier(schema, name)
        h = hashlib.sha256()
        count = 0
        if kind == "S":
            row = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(table))
            value = row.fetchone()
            h.update(repr(tuple(value)).encode())
            count = 1
        else:
            query = sql.SQL('SELECT t::text FROM {} t ORDER BY (t::text) COLLATE "C"').format(table)
            with conn.cursor(name=f"fp_{count}_{len(out)}") as cur:
                cur.itersize = 2000
                cur.execute(query)
                for (text,) in cur:
                    h.update(text.encode("utf-8", "surrogateescape"))
                    h.update(b"\n")
                    count += 1
        out[f"{schema}.{name}"] = {"count": count, "sha256": h.hexdigest()}
    return out


def schemas_of(fp: dict[str, dict]) -> list[str]:
    """The schemas a fingerprint covers."""
    return sorted({name.split(".", 1)[0] for name in fp})


def dump(server: Server, database: str, target: str, timeout: float) -> dict:
    """``pg_dump -Fc`` of ``database`` into ``target`` (0600) and the fingerprint of the
    same snapshot: ``{"fingerprint": ..., "schemas": [...]}``."""
    with _snapshot_connection(server, database) as conn:
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        fp = fingerprint(conn)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        done = subprocess.run(
            [
                os.path.join(TOOLS, "pg_dump"),
                "--format=custom",
                f"--snapshot={snapshot}",
                f"--file={target}",
                "--no-password",
            ],
            env=server.env(database),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        conn.rollback()
    if done.returncode != 0:
        raise BackupError(f"pg_dump of {database} failed: {done.stderr.strip()[-2000:]}")
    return {"fingerprint": fp, "schemas": schemas_of(fp)}


def restore(server: Server, database: str, source: str, relations: list[str], timeout: float):
    """Replace the schemas of ``relations`` (``schema.name``, the dump's fingerprint) in
    ``database`` with the dump ``source``, in one transaction (in ``public``, which every
    database has, just those tables and sequences). The database is made first if it does
    not exist."""
    with server.connect(server.database, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    script = subprocess.run(
        [os.path.join(TOOLS, "pg_restore"), "--file=-", source],
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if script.returncode != 0:
        raise BackupError(
            f"pg_restore could not read {source}: {script.stderr.decode(errors='replace')[-2000:]}"
        )
    prologue = drop_statements(relations).encode() + b"\n"
    done = subprocess.run(
        [
            os.path.join(TOOLS, "psql"),
            "--no-psqlrc",
            "--quiet",
            "--single-transaction",
            "--set=ON_ERROR_STOP=1",
            "--no-password",
            "--file=-",
        ],
        input=prologue + script.stdout,
        env=server.env(database),
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(
            f"restoring {database} failed, nothing was changed: "
            f"{done.stderr.decode(errors='replace').strip()[-2000:]}"
        )


def drop_statements(relations: list[str]) -> str:
    """The SQL that clears the way for a dump of ``relations`` (``schema.name``): each
    schema but ``public`` dropped with everything in it, and in ``public`` just those
    tables and sequences."""
    drops = []
    for schema in schemas_of({name: {} for name in relations}):
        if schema != "public":
            drops.append(f"DROP SCHEMA IF EXISTS {_quoted(schema)} CASCADE;")
    public = [name.partition(".")[2] for name in relations if name.startswith("public.")]
    if public:
        if any("$" in n for n in public):
            raise BackupError("a table in the schema public has a '$' in its name; drop it by hand")
        names = ", ".join("'" + n.replace("'", "''") + "'" for n in public)
        # each name a quoted literal, and no '$' that could end the block
        block = (
            "DO $$BEGIN EXECUTE coalesce((SELECT string_agg(format('DROP %s IF EXISTS "
            "public.%I CASCADE', CASE relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, "
            "relname), '; ') FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relkind IN ('r', 'S') AND relname IN (NAMES)), 'SELECT 1'); END$$;"
        )
        drops.append(block.replace("NAMES", names))
    return "\n".join(drops)


def forget_servers(server: Server, database: str, schema: str) -> int:
    """Mark every server in JupyterHub's restored tables (in ``schema``) as stopped: a
    server that ran when the backup was taken does not run after a restore, and a hub
    that believed it did would look for its container (the container of another
    deployment on the same engine, when a backup is restored into a second one). Returns
    how many there were; 0 when the database has no JupyterHub tables."""
    with server.connect(database) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s"
            " AND tablename IN ('spawners', 'servers')",
            (schema,),
        ).fetchone()[0]
        if found != 2:
            return 0
        spawners = sql.Identifier(schema, "spawners")
        servers = sql.Identifier(schema, "servers")
        ids = [
            row[0]
            for row in conn.execute(
                sql.SQL("SELECT server_id FROM {} WHERE server_id IS NOT NULL").format(spawners)
            ).fetchall()
        ]
        if not ids:
            return 0
        conn.execute(
            sql.SQL(
                "UPDATE {} SET server_id = NULL, state = '{{}}' WHERE server_id IS NOT NULL"
            ).format(spawners)
        )
        conn.execute(sql.SQL("DELETE FROM {} WHERE id = ANY(%s)").format(servers), (ids,))
    return len(ids)


def forget_home_nodes(server: Server, database: str, schema: str) -> int:
    """On a Swarm: forget the node each stopped server's home was tied to in JupyterHub's
    restored tables (``home_node`` in a spawner's state: its newest files were on that
    node when the backup was taken, and the backup holds what the store had). After a
    restore the home is what the backup holds; the node may be gone. Returns how many."""
    with server.connect(database) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename = 'spawners'",
            (schema,),
        ).fetchone()[0]
        if not found:
            return 0
        spawners = sql.Identifier(schema, "spawners")
        return conn.execute(
            sql.SQL(
                "UPDATE {} SET state = (state::jsonb - 'home_node')::text"
                " WHERE state IS NOT NULL AND state <> '' AND state::jsonb ? 'home_node'"
            ).format(spawners)
        ).rowcount


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def current_fingerprint(server: Server, database: str) -> dict[str, dict]:
    with _snapshot_connection(server, database) as conn:
        try:
            return fingerprint(conn)
        finally:
            conn.rollback()
