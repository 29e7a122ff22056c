"""A PostgreSQL role per classhub component, each owning only its schema.

| role and schema   | component                                            |
|-------------------|------------------------------------------------------|
| ``classhub_hub``    | JupyterHub's own tables (the hub, ``CLASSHUB_DB_URL``) |
| ``classhub_auth``   | local accounts (``authenticator/accounts.py``)         |
| ``classhub_grades`` | the grades service (``services/grades``)               |

Each role is named like its schema, so PostgreSQL's default ``search_path``
(``"$user", public``) already finds the component's tables; :func:`bootstrap` also sets it
to the schema alone. A role is no superuser, cannot create databases, roles or schemas, and
owns its schema and everything in it: the component keeps running its own migrations
(JupyterHub's alembic, :mod:`common.pgmigrate`) as that owner, and reads nothing
else (no privilege on another schema; no ``CREATE`` on ``public``).

:func:`bootstrap` runs as the superuser, in one transaction, and is idempotent. On a
database made by an earlier classhub, where every component used the superuser, it also
upgrades: JupyterHub's tables move from ``public`` to ``classhub_hub``, and every table,
sequence, view, function and type in a component's schema (``schema_migrations``
included) changes owner to the component's role. Nothing is copied or deleted.

Passwords are sent as SCRAM-SHA-256 verifiers computed here, so neither the server nor
its log ever sees them in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Component:
    name: str  # hub, accounts, grades
    role: str  # also its schema
    password_env: str  # where scripts/up.sh keeps its password

    @property
    def schema(self) -> str:
        return self.role


HUB = Component("hub", "classhub_hub", "CLASSHUB_PG_HUB_PASSWORD")
ACCOUNTS = Component("accounts", "classhub_auth", "CLASSHUB_PG_ACCOUNTS_PASSWORD")
GRADES = Component("grades", "classhub_grades", "CLASSHUB_PG_GRADES_PASSWORD")
COMPONENTS = (HUB, ACCOUNTS, GRADES)

#: what a statement of the set-up may wait for a lock (a running hub of an older version)
LOCK_TIMEOUT_MS = 60_000
STATEMENT_TIMEOUT_MS = 300_000
_ROLE_OPTIONS = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT"


class SetupError(RuntimeError):
    """The set-up cannot go on; the message says what to fix."""


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (what ``ALTER ROLE ... PASSWORD``
    accepts instead of the clear password). Only printable ASCII passwords: PostgreSQL
    applies SASLprep to the password at sign-in, which leaves those unchanged."""
    if not password or not all(32 < ord(ch) < 127 for ch in password):
        raise SetupError("a database password must be printable ASCII without spaces")
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def jupyterhub_tables() -> set[str]:
    """The tables JupyterHub makes (its ORM's, and alembic's version table)."""
    from jupyterhub.orm import Base

    return {*Base.metadata.tables, "alembic_version"}


def bootstrap(
    conn: psycopg.Connection,
    passwords: Mapping[str, str],
    *,
    hub_tables: Iterable[str] | None = None,
) -> list[str]:
    """Create or update the roles and schemas on ``conn`` (the superuser, connected to the
    classhub database, autocommit), upgrading an older database. ``passwords`` maps each
    component's name (hub, accounts, grades) to its role's password. Returns what it
    changed, one line each (no secrets)."""
    missing = [c.name for c in COMPONENTS if not passwords.get(c.name)]
    if missing:
        raise SetupError(f"no database password for: {', '.join(missing)}")
    me = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if not me or not me[0]:
        raise SetupError("the store set-up must connect as the PostgreSQL superuser")
    tables = set(jupyterhub_tables() if hub_tables is None else hub_tables)
    done: list[str] = []
    with conn.transaction():
        conn.execute(
            "SELECT set_config('lock_timeout', %s, true),"
            " set_config('statement_timeout', %s, true)",
            (str(LOCK_TIMEOUT_MS), str(STATEMENT_TIMEOUT_MS)),
        )
        database = conn.execute("SELECT current_database()").fetchone()[0]
        for c in COMPONENTS:
            done += _role(conn, c, passwords[c.name])
        done += _database_privileges(conn, database)
        for c in COMPONENTS:
            done += _schema(conn, c, database)
        done += _move_hub_tables(conn, tables)
        for c in COMPONENTS:
            done += _owners(conn, c)
    for line in done:
        log.info("postgres: %s", line)
    return done


def _exists(conn, query: str, *args) -> bool:
    return conn.execute(query, args).fetchone() is not None


def _role(conn, c: Component, password: str) -> list[str]:
    verifier = sql.Literal(scram_verifier(password))
    ident = sql.Identifier(c.role)
    if _exists(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", c.role):
        conn.execute(
            sql.SQL("ALTER ROLE {} WITH " + _ROLE_OPTIONS + " PASSWORD {}").format(ident, verifier)
        )
        return []
    conn.execute(
        sql.SQL("CREATE ROLE {} WITH " + _ROLE_OPTIONS + " PASSWORD {}").format(ident, verifier)
    )
    return [f"created role {c.role}"]


def _database_privileges(conn, database: str) -> list[str]:
    db = sql.Identifier(database)
    # nobody but the owner creates anything in public (PostgreSQL 15 made this the default
    # for new databases; older ones, and restored dumps, may still grant it)
    conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    # the roles connect to this database only, and make no temporary tables
    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
    for c in COMPONENTS:
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, sql.Identifier(c.role))
        )
    others = conn.execute(
        "SELECT datname FROM pg_database WHERE datallowconn AND datname <> %s", (database,)
    ).fetchall()
    for (name,) in others:
        conn.execute(
            sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(name)
            )
        )
    return []


def _schema(conn, c: Component, database: str) -> list[str]:
    schema, role = sql.Identifier(c.schema), sql.Identifier(c.role)
    done = []
    if not _exists(conn, "SELECT 1 FROM pg_namespace WHERE nspname = %s", c.schema):
        conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(schema, role))
        done.append(f"created schema {c.schema}")
    elif not _exists(
        conn,
        "SELECT 1 FROM pg_namespace WHERE nspname = %s AND nspowner = %s::regrole",
        c.schema,
        c.role,
    ):
        conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(schema, role))
        done.append(f"schema {c.schema} now owned by {c.role}")
    conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema))
    conn.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(
            role, sql.Identifier(database), schema
        )
    )
    return done


def _move_hub_tables(conn, tables: set[str]) -> list[str]:
    """Tables of JupyterHub's that an earlier classhub made in ``public`` move to the hub's
    schema (with their indexes, constraints and column sequences)."""
    in_public = {
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        ).fetchall()
    }
    in_hub = {
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
            (HUB.schema,),
        ).fetchall()
    }
    move = sorted(tables & in_public)
    both = sorted(set(move) & in_hub)
    if both:
        raise SetupError(
            f"JupyterHub's tables {', '.join(both)} exist both in public and in {HUB.schema}; "
            "restore one of them from a backup before running the set-up again"
        )
    for name in move:
        conn.execute(
            sql.SQL("ALTER TABLE public.{} SET SCHEMA {}").format(
                sql.Identifier(name), sql.Identifier(HUB.schema)
            )
        )
    left = sorted(in_public - tables)
    if move and left:
        log.warning("postgres: tables left in public (not JupyterHub's): %s", ", ".join(left))
    return [f"moved {len(move)} JupyterHub tables from public to {HUB.schema}"] if move else []


def _owners(conn, c: Component) -> list[str]:
    """Everything in the component's schema belongs to its role."""
    role = sql.Identifier(c.role)
    changed = 0
    # tables (their indexes and column sequences follow), views, standalone sequences
    kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
    rows = conn.execute(
        "SELECT c.relname, c.relkind FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'S')"
        " AND c.relowner <> %s::regrole"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
        "   AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass"
        "   AND d.deptype IN ('a', 'i'))"
        " ORDER BY c.relkind DESC, c.relname",
        (c.schema, c.role),
    ).fetchall()
    for name, kind in rows:
        conn.execute(
            sql.SQL("ALTER {} {}.{} OWNER TO {}").format(
                sql.SQL(kinds[kind]), sql.Identifier(c.schema), sql.Identifier(name), role
            )
        )
        changed += 1
    # functions and procedures (the grades service's triggers)
    for (signature,) in conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = %s AND p.proowner <> %s::regrole",
        (c.schema, c.role),
    ).fetchall():
        conn.execute(sql.SQL("ALTER ROUTINE {} OWNER TO {}").format(sql.SQL(signature), role))
        changed += 1
    # types of their own: enums, composites, domains, ranges (not arrays, not row types)
    for name, typtype in conn.execute(
        "SELECT t.typname, t.typtype FROM pg_type t"
        " JOIN pg_namespace n ON n.oid = t.typnamespace"
        " LEFT JOIN pg_class r ON r.oid = t.typrelid"
        " WHERE n.nspname = %s AND t.typowner <> %s::regrole AND t.typelem = 0"
        " AND t.typtype IN ('e', 'c', 'd', 'r') AND (t.typrelid = 0 OR r.relkind = 'c')",
        (c.schema, c.role),
    ).fetchall():
        kind = "DOMAIN" if typtype == "d" else "TYPE"
        conn.execute(
            sql.SQL("ALTER {} {}.{} OWNER TO {}").format(
                sql.SQL(kind), sql.Identifier(c.schema), sql.Identifier(name), role
            )
        )
        changed += 1
    return [f"{changed} objects in {c.schema} now owned by {c.role}"] if changed else []


def connect_admin(conninfo: str, *, timeout: float = 10.0) -> psycopg.Connection:
    """An autocommit connection for :func:`bootstrap`; errors never echo the conninfo."""
    try:
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=max(1, round(timeout)))
    except psycopg.OperationalError as e:
        first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        raise SetupError(f"cannot connect to PostgreSQL as the superuser: {first}") from None
