"""Least privilege in PostgreSQL (an identity per component in the
data stores): a role per component, each owning
only its schema, made by `classhub-stores postgres` on a fresh database and on a database
that an earlier classhub made as the superuser (the upgrade). Real PostgreSQL 15."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import errors

from authenticator.accounts import AccountStore
from common import pgmigrate
from harness.stack import VENV_BIN, start_postgres
from hub.stores import hubenv
from hub.stores import postgres as roles
from services.grades import rules
from services.grades.store import GradesStore

pytestmark = pytest.mark.integration

PASSWORD = "an old account password"
DUE = datetime(2030, 5, 1, 12, tzinfo=UTC)


class Cluster:
    def __init__(self, tmp_path):
        self.admin_password = secrets.token_hex(16)
        self.proc, self.port, url = start_postgres(tmp_path, password=self.admin_password)
        self.admin_url = url.replace("+psycopg", "")
        self.passwords = {c.name: secrets.token_hex(16) for c in roles.COMPONENTS}

    def url(self, component: roles.Component, password: str | None = None) -> str:
        return hubenv.pg_url(
            component,
            password or self.passwords[component.name],
            f"127.0.0.1:{self.port}",
            "jupyterhub",
        )

    def plain(self, component: roles.Component, **kw) -> psycopg.Connection:
        return psycopg.connect(
            self.url(component).replace("+psycopg", ""), autocommit=True, connect_timeout=5, **kw
        )

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5)

    def set_up(self) -> subprocess.CompletedProcess:
        """`classhub-stores postgres`, as `make up` runs it (secrets in the environment)."""
        env = {
            **os.environ,
            "POSTGRES_PASSWORD": self.admin_password,
            **{c.password_env: self.passwords[c.name] for c in roles.COMPONENTS},
        }
        return subprocess.run(
            [
                str(VENV_BIN / "classhub-stores"),
                "postgres",
                "--port",
                str(self.port),
                "--admin-user",
                "postgres",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def close(self):
        self.proc.stop()
        shutil.rmtree(self.proc.data_dir, ignore_errors=True)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path / "pg")
    try:
        yield c
    finally:
        c.close()


def fields(slug="hw-1"):
    return rules.parse_assignment(
        {"slug": slug, "title": "Homework", "max_points": 10, "due_at": DUE.isoformat()}
    )


def hub_session(url: str):
    from jupyterhub import orm

    return orm.new_session_factory(url)()


async def build_old_database(cluster: Cluster) -> None:
    """What an earlier classhub left: every component ran its migrations as the superuser,
    JupyterHub's tables in public."""
    from jupyterhub import orm

    su = cluster.admin_url.replace("postgresql://", "postgresql+psycopg://")
    db = hub_session(su)
    db.add(orm.User(name="olduser"))
    db.commit()
    db.close()
    async with AccountStore(cluster.admin_url) as accounts:
        await accounts.create("alice", PASSWORD, "student")
    grades = GradesStore(cluster.admin_url)
    await grades.open()
    try:
        await grades.create_assignment("bio", fields(), actor="tia")
    finally:
        await grades.close()
    with cluster.admin() as conn:
        public = {
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert {"users", "alembic_version", "api_tokens"} <= public
        owners = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT tableowner FROM pg_tables"
                " WHERE schemaname IN ('public', 'classhub_auth', 'classhub_grades')"
            )
        }
        assert owners == {"postgres"}


def owned_elsewhere(conn) -> list:
    """Objects in a component's schema not owned by its role (should be none)."""
    return conn.execute(
        "SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname IN ('classhub_hub', 'classhub_auth', 'classhub_grades')"
        " AND pg_get_userbyid(c.relowner) <> n.nspname"
        " UNION ALL SELECT n.nspname, p.proname, pg_get_userbyid(p.proowner) FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname IN ('classhub_hub', 'classhub_auth', 'classhub_grades')"
        " AND pg_get_userbyid(p.proowner) <> n.nspname"
        " UNION ALL SELECT nspname, '(schema)', pg_get_userbyid(nspowner) FROM pg_namespace"
        " WHERE nspname IN ('classhub_hub', 'classhub_auth', 'classhub_grades')"
        " AND pg_get_userbyid(nspowner) <> nspname"
    ).fetchall()


#: one table of each component's, read as another component must never read it
TABLES = {
    "hub": "classhub_hub.users",
    "accounts": "classhub_auth.accounts",
    "grades": "classhub_grades.assignments",
}


def assert_refused(conn, statement: str) -> None:
    with pytest.raises((errors.InsufficientPrivilege, errors.UndefinedTable)) as e:
        conn.execute(statement)
    # a missing table would prove nothing: only "permission denied" counts
    assert isinstance(e.value, errors.InsufficientPrivilege), f"{statement}: {e.value}"


def assert_least_privilege(cluster: Cluster) -> None:
    for c in roles.COMPONENTS:
        with cluster.plain(c) as conn:
            me = conn.execute(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles"
                " WHERE rolname = current_user"
            ).fetchone()
            assert me == (False, False, False, False), c
            assert conn.execute("SHOW search_path").fetchone()[0] == c.schema
            for other, table in TABLES.items():
                if other == c.name:
                    conn.execute(f"SELECT count(*) FROM {table}")
                    continue
                assert_refused(conn, f"SELECT * FROM {table}")
                assert_refused(conn, f"DELETE FROM {table}")
            for statement in (
                "CREATE TABLE public.planted (x int)",
                "CREATE SCHEMA planted",
                "CREATE ROLE planted LOGIN PASSWORD 'x'",
                f"ALTER ROLE {c.role} SUPERUSER",
                "CREATE DATABASE planted",
                "CREATE TEMPORARY TABLE planted (x int)",
                "COPY (SELECT 1) TO PROGRAM 'true'",
                "SELECT pg_read_file('/etc/passwd')",
            ):
                assert_refused(conn, statement)
            # nor into the other components' schemas
            for other in roles.COMPONENTS:
                if other != c:
                    assert_refused(conn, f"CREATE TABLE {other.schema}.planted (x int)")
        # only this database, only with its own password
        with pytest.raises(psycopg.OperationalError, match="permission denied|not permitted"):
            psycopg.connect(
                cluster.url(c).replace("+psycopg", "").replace("/jupyterhub", "/postgres"),
                connect_timeout=5,
            )
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(
                cluster.url(c, password="wrong-password").replace("+psycopg", ""),
                connect_timeout=5,
            )


async def assert_components_migrate(cluster: Cluster) -> None:
    """Each role migrates its own schema: a new migration of each component applies."""
    for c in (roles.ACCOUNTS, roles.GRADES):
        package = "authenticator" if c is roles.ACCOUNTS else "services.grades"
        shipped = pgmigrate.load_migrations(package)
        new = pgmigrate.Migration(
            len(shipped) + 1,
            "probe",
            f"CREATE TABLE {c.schema}.probe (x int); ALTER TABLE {c.schema}.schema_migrations"
            " ADD COLUMN probe int",
        )
        async with await psycopg.AsyncConnection.connect(
            cluster.url(c).replace("+psycopg", ""), autocommit=True
        ) as conn:
            applied = await pgmigrate.apply_migrations(
                conn, schema=c.schema, migrations=[*shipped, new], lock_key=hash(c.schema)
            )
        assert applied == [new.version]
    # JupyterHub's alembic migrations alter and add its tables: the hub's role may
    with cluster.plain(roles.HUB) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN probe int")
        conn.execute("CREATE TABLE probe (x int)")
        conn.execute("DROP TABLE probe")
        conn.execute("ALTER TABLE users DROP COLUMN probe")


async def test_upgrade_moves_superuser_tables_to_the_components_roles(cluster):
    await build_old_database(cluster)
    r = cluster.set_up()
    assert r.returncode == 0, r.stderr
    assert "moved 16 JupyterHub tables from public to classhub_hub" in r.stdout
    for secret in [cluster.admin_password, *cluster.passwords.values()]:
        assert secret not in r.stdout + r.stderr
    # again: nothing left to do, nothing lost
    again = cluster.set_up()
    assert again.returncode == 0 and again.stdout == "", again.stdout + again.stderr
    with cluster.admin() as conn:
        assert owned_elsewhere(conn) == []
        left = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert left.fetchall() == []
        # the column sequences moved and changed owner with their tables
        assert conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'S' AND n.nspname = 'public'"
        ).fetchone() == (0,)

    # each component, with its own role, sees its old data and keeps working
    from jupyterhub import orm

    db = hub_session(cluster.url(roles.HUB))  # JupyterHub's own revision check passes
    assert [u.name for u in db.query(orm.User)] == ["olduser"]
    db.add(orm.User(name="newuser"))
    db.commit()
    db.close()
    async with AccountStore(cluster.url(roles.ACCOUNTS)) as accounts:
        assert (await accounts.verify("alice", PASSWORD)).username == "alice"
        await accounts.create("bob", PASSWORD, "teacher")
    grades = GradesStore(cluster.url(roles.GRADES))
    await grades.open()
    try:
        assert [a.slug for a in await grades.list_assignments("bio")] == ["hw-1"]
        await grades.create_assignment("bio", fields("hw-2"), actor="tia")
    finally:
        await grades.close()
    await assert_components_migrate(cluster)
    assert_least_privilege(cluster)


async def test_fresh_database_components_make_their_tables_in_their_schemas(cluster):
    r = cluster.set_up()
    assert r.returncode == 0, r.stderr
    assert "created role classhub_hub" in r.stdout and "created schema classhub_grades" in r.stdout
    db = hub_session(cluster.url(roles.HUB))
    db.close()
    async with AccountStore(cluster.url(roles.ACCOUNTS)) as accounts:
        await accounts.create("alice", PASSWORD, "student")
    grades = GradesStore(cluster.url(roles.GRADES))
    await grades.open()
    await grades.close()
    with cluster.admin() as conn:
        assert owned_elsewhere(conn) == []
        assert conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone() == (0,)
        hub_tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'classhub_hub'"
            )
        }
        assert hub_tables == roles.jupyterhub_tables()
    await assert_components_migrate(cluster)
    assert_least_privilege(cluster)
    # the set-up again (every `make up`): same roles, the passwords set again
    assert cluster.set_up().returncode == 0
    with cluster.plain(roles.GRADES) as conn:
        assert conn.execute("SELECT count(*) FROM classhub_grades.assignments").fetchone() == (0,)


def test_set_up_refuses_a_role_that_is_no_superuser(cluster):
    cluster.set_up()
    with cluster.plain(roles.HUB) as conn:
        with pytest.raises(roles.SetupError, match="superuser"):
            roles.bootstrap(conn, cluster.passwords)
    # and the CLI says what is missing, without a traceback
    r = subprocess.run(
        [str(VENV_BIN / "classhub-stores"), "postgres", "--port", str(cluster.port)],
        env={k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES", "CLASSHUB"))},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "POSTGRES_PASSWORD" in r.stderr and "Traceback" not in r.stderr
