"""AccountStore and classhub-user against a real, throw-away PostgreSQL 15 (no hub)."""

import asyncio
import os
import secrets
import shutil
import subprocess
import time

import psycopg
import pytest
from argon2 import PasswordHasher

from authenticator.account_rules import AccountError, AccountExists, AccountNotFound
from authenticator.accounts import AccountStore
from common.errors import StoreUnavailable
from common.postgres import pg_conninfo
from harness.stack import PG_BIN, VENV_BIN, free_port, start_postgres, wait_for

pytestmark = pytest.mark.integration

PW = "correct horse battery"
CLI = str(VENV_BIN / "classhub-user")


class Postgres:
    def __init__(self, proc, port, url):
        self.proc, self.port, self.url = proc, port, url

    def admin_url(self, db="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def fresh_db(self) -> str:
        """The SQLAlchemy-style URL of a new, empty database."""
        name = "t_" + secrets.token_hex(4)
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def pg_ctl(self, *args):
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(PG_BIN / "pg_ctl"),
                *args,
                "-D",
                str(self.proc.data_dir / "pgdata"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def stop(self):
        """Fast shutdown: open sessions are cut, as when the database container stops."""
        self.pg_ctl("stop", "-m", "fast", "-w")
        self.proc.proc.wait(10)

    def start(self):
        self.proc.start()

        def ready():
            with psycopg.connect(self.admin_url(), connect_timeout=2):
                return True

        wait_for(ready, 30, what="postgres restarted")


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    proc, port, url = start_postgres(tmp_path_factory.mktemp("pg"))
    try:
        yield Postgres(proc, port, url)
    finally:
        try:
            Postgres(proc, port, url).pg_ctl("stop", "-m", "fast", "-w")
        except subprocess.SubprocessError:
            pass
        proc.stop()
        shutil.rmtree(proc.data_dir, ignore_errors=True)


@pytest.fixture
async def store(pg):
    s = AccountStore(pg.fresh_db())
    await s.open()
    yield s
    await s.close()


async def rows(store, sql, params=()):
    async with store.db.connection() as conn:
        return await (await conn.execute(sql, params)).fetchall()


def test_dsn_forms():
    plain = AccountStore(
        "postgresql+psycopg://u:p%40ss@db:5433/hub?sslmode=disable", timeout=3
    ).db.conninfo
    d = psycopg.conninfo.conninfo_to_dict(plain)
    assert d == {
        "user": "u",
        "password": "p@ss",
        "host": "db",
        "port": "5433",
        "dbname": "hub",
        "sslmode": "disable",
        "connect_timeout": "3",
        "application_name": "classhub-accounts",
    }
    assert "connect_timeout=9" in pg_conninfo("postgres://h/db?connect_timeout=9")
    assert "dbname=x" in pg_conninfo("host=h dbname=x")
    for bad in ("sqlite:////srv/jupyterhub.sqlite", "", "postgresql://u:secret@h/db?bogus=1"):
        with pytest.raises(ValueError) as e:
            AccountStore(bad)
        assert "secret" not in str(e.value)


# ----------------------------------------------------------------------------- migrations


async def test_migrations_from_empty_twice_and_concurrently(pg):
    url = pg.fresh_db()
    with psycopg.connect(pg_conninfo(url)) as conn:
        conn.execute("CREATE TABLE public.users (id int)")  # the hub's own tables stay alone
        conn.commit()
    stores = [AccountStore(url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))  # three sessions race for the lock
    try:
        assert await rows(
            stores[0], "SELECT version, name FROM classhub_auth.schema_migrations"
        ) == [(1, "accounts"), (2, "account_audit")]
        await stores[0].close()
        await stores[0].open()  # again: nothing to do
        assert len(await rows(stores[1], "SELECT * FROM classhub_auth.schema_migrations")) == 2
        tables = await rows(
            stores[1],
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema IN ('public', 'classhub_auth') ORDER BY 1, 2",
        )
        assert tables == [
            ("classhub_auth", "account_audit"),
            ("classhub_auth", "accounts"),
            ("classhub_auth", "schema_migrations"),
            ("public", "users"),
        ]
        with pytest.raises(psycopg.errors.CheckViolation):
            await rows(
                stores[1],
                "INSERT INTO classhub_auth.accounts (username, password_hash, role)"
                " VALUES ('x', '$argon2id$x', 'root')",
            )
    finally:
        for s in stores:
            await s.close()
    # two processes on another empty database
    url = pg.fresh_db()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLASSHUB_")}
    env["CLASSHUB_ACCOUNTS_DB_URL"] = url
    procs = [subprocess.Popen([CLI, "list"], env=env, stderr=subprocess.PIPE) for _ in range(2)]
    assert [p.wait(60) for p in procs] == [0, 0], [p.stderr.read() for p in procs]
    with psycopg.connect(pg_conninfo(url)) as conn:
        (count,) = conn.execute("SELECT count(*) FROM classhub_auth.schema_migrations").fetchone()
    assert count == 2


# ----------------------------------------------------------------------------- accounts


async def test_create_verify_and_refusals(store):
    created = await store.create(" Alice ", PW, "teacher")
    assert (created.username, created.role, created.disabled) == ("alice", "teacher", False)
    assert await store.verify("ALICE", PW) == created
    assert await store.get("alice") == created
    assert await store.list() == [created]
    for name, password in [
        ("alice", PW + "!"),
        ("alice", ""),
        ("alice", "x" * 5000),
        ("bob", PW),  # unknown
        ("a/b", PW),  # cannot exist
        ("", PW),
    ]:
        assert await store.verify(name, password) is None
    (stored,) = await rows(store, "SELECT password_hash FROM classhub_auth.accounts")
    assert stored[0].startswith("$argon2id$") and PW not in stored[0]


async def test_unknown_user_costs_a_verification_too(store):
    await store.create("alice", PW)
    await store.verify("nobody", PW)  # first call makes the dummy hash
    t0 = time.perf_counter()
    await store.verify("nobody", PW)
    unknown = time.perf_counter() - t0
    t0 = time.perf_counter()
    await store.verify("alice", PW + "x")
    wrong = time.perf_counter() - t0
    assert unknown > 0.4 * wrong, (unknown, wrong)


async def test_disabled_account_cannot_sign_in(store):
    await store.create("bob", PW)
    await store.set_disabled("Bob", True)
    assert (await store.get("bob")).disabled
    assert await store.verify("bob", PW) is None
    await store.set_disabled("bob", False)
    assert (await store.verify("bob", PW)).username == "bob"


async def test_old_hash_parameters_are_upgraded_at_sign_in(store):
    store.hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    await store.create("carol", PW)
    store.hasher = PasswordHasher()
    (old,) = await rows(store, "SELECT password_hash FROM classhub_auth.accounts")
    assert "m=8192,t=1,p=1" in old[0]
    assert await store.verify("carol", PW + "x") is None
    assert await rows(store, "SELECT password_hash FROM classhub_auth.accounts") == [old]
    assert (await store.verify("carol", PW)).username == "carol"
    (new,) = await rows(store, "SELECT password_hash FROM classhub_auth.accounts")
    assert new != old and not store.hasher.check_needs_rehash(new[0])
    assert await store.verify("carol", PW)


async def test_duplicates_and_if_missing(store):
    first = await store.create("dave", PW, "admin")
    with pytest.raises(AccountExists, match="dave already exists"):
        await store.create("DAVE", "another password")
    again = await store.create("dave", "another password", "student", if_missing=True)
    assert again == first  # unchanged: role and password
    assert await store.verify("dave", PW) and not await store.verify("dave", "another password")
    fresh = await store.create("erin", PW, if_missing=True)
    assert fresh.username == "erin" and fresh.role == "student"


async def test_bad_input_is_refused_with_clear_messages(store):
    cases = [
        (store.create("bad name", PW), "invalid username: the username contains a space"),
        (store.create("frank", "short"), "at least 10 characters"),
        (store.create("frank", "x" * 1025), "at most 1024 characters"),
        (store.create("frank", PW, "root"), "unknown role 'root'"),
        (store.get("a:b"), "invalid username: the username contains a colon"),
    ]
    for coro, message in cases:
        with pytest.raises(AccountError, match=message):
            await coro
    assert await store.list() == []


async def test_password_role_delete_and_not_found(store):
    await store.create("gina", PW)
    await store.set_password("gina", "a brand new password")
    assert await store.verify("gina", PW) is None
    assert await store.verify("gina", "a brand new password")
    await store.set_role("gina", "Teacher")
    assert (await store.get("gina")).role == "teacher"
    ((changed, updated),) = await rows(
        store, "SELECT password_changed_at, updated_at FROM classhub_auth.accounts"
    )
    assert changed is not None and updated >= changed
    for coro in (
        store.set_password("nobody", "a brand new password"),
        store.set_role("nobody", "admin"),
        store.set_disabled("nobody", True),
        store.delete("nobody"),
    ):
        with pytest.raises(AccountNotFound, match="no account named nobody"):
            await coro
    await store.delete("GINA")
    assert await store.get("gina") is None
    assert await store.verify("gina", "a brand new password") is None


# ----------------------------------------------------------------------------- CSV import


async def test_import_is_all_or_nothing(store):
    await store.create("taken", PW)
    text = "\n".join(
        [
            "username,password,role",
            "new1,,student",  # 2 fine
            f"taken,{PW},",  # 3 exists
            "bad name,,",  # 4
            "new2,short,",  # 5
            "new3,,boss",  # 6
            "NEW1,,",  # 7 duplicate of line 2
            "new4,,,x",  # 8 malformed
        ]
    )
    report = await store.import_csv(text)
    assert not report.applied and report.total == 7
    assert [(r.line, r.status) for r in report.rows] == [
        (3, "exists"),
        (4, "error"),
        (5, "error"),
        (6, "error"),
        (7, "error"),
        (8, "error"),
    ]
    assert all(r.password is None for r in report.rows)
    assert [a.username for a in await store.list()] == ["taken"]  # nothing written
    # the existing account alone blocks it, unless skipped
    only_taken = "username,password\nnew1,\ntaken,\n"
    blocked = await store.import_csv(only_taken)
    assert not blocked.applied and [(r.line, r.status) for r in blocked.rows] == [(3, "exists")]
    assert [a.username for a in await store.list()] == ["taken"]
    done = await store.import_csv(only_taken, skip_existing=True)
    assert done.applied and [(r.username, r.status) for r in done.rows] == [
        ("new1", "created"),
        ("taken", "exists"),
    ]
    assert await store.verify("new1", done.rows[0].password)
    assert await store.verify("taken", PW)  # untouched


async def test_import_success(store):
    text = f"\ufeffUsername,Password,Role\r\nAnna,{PW},teacher\r\nben,,\r\n\r\ncleo,,admin\r\n"
    report = await store.import_csv(text, default_role="student")
    assert report.applied, report.rows
    assert [(r.line, r.username, r.status) for r in report.rows] == [
        (2, "anna", "created"),
        (3, "ben", "created"),
        (5, "cleo", "created"),
    ]
    assert report.rows[0].password is None and report.rows[1].password
    assert {(a.username, a.role) for a in await store.list()} == {
        ("anna", "teacher"),
        ("ben", "student"),
        ("cleo", "admin"),
    }
    assert await store.verify("anna", PW)
    assert await store.verify("ben", report.rows[1].password)
    assert await store.verify("cleo", report.rows[2].password)
    with pytest.raises(AccountError, match="header"):
        await store.import_csv("ann,,\n")


# ----------------------------------------------------------------------------- CLI


def cli(url, *args, stdin=None, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("CLASSHUB_")}
    e.update(env if env is not None else {"CLASSHUB_ACCOUNTS_DB_URL": url})
    return subprocess.run(
        [CLI, *args], input=stdin, env=e, capture_output=True, text=True, timeout=60
    )


async def test_cli(pg, tmp_path):
    url = pg.fresh_db()
    # exactly what scripts/up.sh does, twice
    r = cli(url, "add", "admin", "--admin", "--if-missing")
    assert r.returncode == 0, r.stderr
    admin_pw = r.stdout.strip()
    assert len(r.stdout.splitlines()) == 1 and len(admin_pw) >= 16
    r = cli(url, "add", "admin", "--admin", "--if-missing")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    # tests/e2e: add NAME (password is the last stdout line), remove NAME
    r = cli(url, "add", "e2e-x")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip().splitlines()[-1]) >= 16
    r = cli(url, "add", "Teach", "--role", "teacher", "--password-stdin", stdin=PW + "\n")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    assert cli(url, "add", "teach").returncode == 2  # exists
    assert cli(url, "add", "x", "--admin", "--role", "student").returncode == 2  # argparse
    r = cli(url, "add", "Bad Name")
    assert r.returncode == 2 and "invalid username" in r.stderr
    r = cli(url, "add", "shorty", "--password-stdin", stdin="short\n")
    assert r.returncode == 2 and "at least 10" in r.stderr
    r = cli(url, "passwd", "teach", "--password-stdin", stdin="a new teacher password\n")
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    r = cli(url, "disable", "e2e-x")
    assert r.returncode == 0, r.stderr
    r = cli(url, "list")
    assert r.returncode == 0, r.stderr
    listed = [line.split("\t")[:3] for line in r.stdout.splitlines()]
    assert listed == [
        ["admin", "admin", "active"],
        ["e2e-x", "student", "disabled"],
        ["teach", "teacher", "active"],
    ]
    csv_file = tmp_path / "class.csv"
    csv_file.write_bytes(b"\xef\xbb\xbfusername,role\r\nstud1,\r\nbad name,\r\n")
    r = cli(url, "import", str(csv_file))
    assert r.returncode == 1 and "line 3\tbad name\terror" in r.stdout
    assert "nothing was written" in r.stderr
    csv_file.write_text("username,role\nstud1,\nteach,\n")
    r = cli(url, "import", str(csv_file), "--skip-existing", "--default-role", "teacher")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("line 2\tstud1\tcreated\t") and "password: " in r.stdout
    stud_pw = r.stdout.split("password: ")[1].split()[0]
    assert cli(url, "remove", "E2E-X").returncode == 0
    r = cli(url, "remove", "e2e-x")
    assert r.returncode == 2 and "no account named e2e-x" in r.stderr

    async with AccountStore(url) as s:
        assert (await s.verify("admin", admin_pw)).role == "admin"
        assert await s.verify("teach", "a new teacher password")
        assert (await s.verify("stud1", stud_pw)).role == "teacher"
        assert await s.get("e2e-x") is None


def test_cli_database_errors(pg):
    r = cli(None, "list", env={})
    assert r.returncode == 2 and "CLASSHUB_ACCOUNTS_DB_URL" in r.stderr
    r = cli(None, "list", env={"CLASSHUB_DB_URL": "sqlite:///x.sqlite"})
    assert r.returncode == 2 and "must be PostgreSQL" in r.stderr
    r = cli(None, "list", env={"CLASSHUB_DB_URL": pg.fresh_db()})  # the fallback
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    dead = f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/x"
    t0 = time.monotonic()
    r = cli(None, "--timeout", "1", "list", env={"CLASSHUB_ACCOUNTS_DB_URL": dead})
    assert r.returncode == 3 and "unreachable" in r.stderr and "refused" in r.stderr
    assert "s3cret" not in r.stderr and time.monotonic() - t0 < 15


# ----------------------------------------------------------------------------- outage (last:
# it stops the module's server)


async def test_postgres_down_then_back(pg):
    url = pg.fresh_db()
    store = AccountStore(url, timeout=2.0)
    await store.open()
    try:
        await store.create("henry", PW)
        pg.stop()
        for call in (lambda: store.verify("henry", PW), lambda: store.list()):
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailable) as e:
                await call()
            assert time.monotonic() - t0 < 2.0 + 1.5  # the pool's wait, not more
            assert "unreachable" in str(e.value) and e.value.detail
        cold = AccountStore(url, timeout=1.0)
        with pytest.raises(StoreUnavailable):
            await cold.open()  # and open() may be retried later
        pg.start()
        await cold.open()
        await cold.close()
        deadline = time.monotonic() + 20
        while True:  # the same store object, not re-created
            try:
                account = await store.verify("henry", PW)
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the pool did not reconnect"
        assert account.username == "henry"
        await store.create("ivy", PW)
        assert [a.username for a in await store.list()] == ["henry", "ivy"]
    finally:
        await store.close()


async def test_every_change_is_audited_in_its_transaction(store):
    await store.create("audited", PW, "student", actor="root")
    await store.set_password("audited", PW + "x", actor="root")
    await store.set_role("audited", "teacher", actor="root")
    await store.set_disabled("audited", True, actor="root")
    await store.set_disabled("audited", False)  # the command line's default actor
    assert await store.created_by("audited") == "root"
    # what a token sign-in checks, in one query: (disabled, creator)
    assert await store.standing("audited") == (False, "root")
    assert await store.standing("nobody-here") is None
    entries = await store.audit_log("audited")
    assert [(e.actor, e.action) for e in reversed(entries)] == [
        ("root", "create"),
        ("root", "password"),
        ("root", "role"),
        ("root", "disable"),
        ("classhub-user", "enable"),
    ]
    assert entries[2].detail == {"role": "teacher"}
    assert not any(PW in str(e.detail) for e in entries)  # never a password
    # a refused change writes no audit row
    with pytest.raises(AccountError):
        await store.set_role("audited", "wizard", actor="root")
    with pytest.raises(AccountNotFound):
        await store.delete("nobody-here", actor="root")
    assert await store.audit_log("nobody-here") == []
    assert len(await store.audit_log("audited")) == 5
    await store.delete("audited", actor="root")
    assert (await store.audit_log("audited"))[0].action == "delete"


async def test_search_pages_and_matches_literally(store):
    for name in ("srch_a", "srch_b", "srch_c", "srchxd"):
        await store.create(name, PW)
    page, total = await store.search("SRCH_", 0, 2)
    assert total == 3 and [a.username for a in page] == ["srch_a", "srch_b"]
    page, total = await store.search("srch_", 2, 2)
    assert total == 3 and [a.username for a in page] == ["srch_c"]
    assert await store.search("srch_", 10, 2) == ([], 3)
    assert (await store.search("%", 0, 10))[1] == 0
