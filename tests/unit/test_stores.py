"""The store set-up's pure parts: the hub's environment, the S3 identities, MongoDB's user
commands (against a fake; tests/integration/test_store_identities.py runs them against
classhub-mongo)."""

from __future__ import annotations

import json

import pytest
from pymongo.errors import OperationFailure

from hub.stores import hubenv, mongo, postgres, s3
from services.base import names

pytestmark = pytest.mark.unit

STACK_ENV = {
    "POSTGRES_PASSWORD": "pg-super",
    "REDIS_PASSWORD": "redis-pw",
    "MONGO_ROOT_PASSWORD": "mongo-root",
    "S3_ADMIN_ACCESS_KEY": "admin-ak",
    "S3_ADMIN_SECRET_KEY": "admin-sk",
    "CLASSHUB_PG_HUB_PASSWORD": "hubpw",
    "CLASSHUB_PG_ACCOUNTS_PASSWORD": "accpw",
    "CLASSHUB_PG_GRADES_PASSWORD": "grpw",
    "CLASSHUB_MONGO_CLASSES_PASSWORD": "clpw",
    "CLASSHUB_MONGO_FILES_PASSWORD": "fipw",
    "CLASSHUB_S3_FILES_ACCESS_KEY": "files-ak",
    "CLASSHUB_S3_FILES_SECRET_KEY": "files-sk",
    "CLASSHUB_S3_GRADES_ACCESS_KEY": "grades-ak",
    "CLASSHUB_S3_GRADES_SECRET_KEY": "grades-sk",
    "CLASSHUB_JWT_SECRET": "jwt",
    "CLASSHUB_MEM_LIMIT": "2G",  # an admin's own setting
    # an earlier version's
    "CLASSHUB_DB_URL": "postgresql+psycopg://classhub:pg-super@127.0.0.1:15432/jupyterhub",
    "CLASSHUB_MONGO_URL": "mongodb://127.0.0.1:17017/classhub",
    "CLASSHUB_S3_ACCESS_KEY": "old-ak",
    "CLASSHUB_S3_SECRET_KEY": "old-sk",
}


def test_hub_environment_has_component_urls_and_no_store_admin_secret():
    env = hubenv.hub_environment(STACK_ENV)
    assert env["CLASSHUB_DB_URL"] == (
        "postgresql+psycopg://classhub_hub:hubpw@127.0.0.1:15432/jupyterhub"
    )
    assert env["CLASSHUB_ACCOUNTS_DB_URL"].startswith("postgresql+psycopg://classhub_auth:accpw@")
    assert env["CLASSHUB_GRADES_DB_URL"].startswith("postgresql+psycopg://classhub_grades:grpw@")
    assert env["CLASSHUB_CLASSES_MONGO_URL"] == (
        "mongodb://classhub_classes:clpw@127.0.0.1:17017/classhub?authSource=admin"
    )
    assert env["CLASSHUB_FILES_MONGO_URL"] == (
        "mongodb://classhub_files:fipw@127.0.0.1:17017/classhub_files?authSource=admin"
    )
    assert env["CLASSHUB_S3_FILES_ACCESS_KEY"] == "files-ak"
    assert env["CLASSHUB_MEM_LIMIT"] == "2G" and env["CLASSHUB_JWT_SECRET"] == "jwt"
    text = hubenv.format_env_file(env)
    for secret in ("pg-super", "mongo-root", "admin-ak", "admin-sk", "old-ak", "old-sk"):
        assert secret not in text
    for name in ("POSTGRES_PASSWORD", "CLASSHUB_MONGO_URL=", "CLASSHUB_PG_HUB_PASSWORD"):
        assert name not in text
    assert hubenv.read_env_file(text) == env


def test_hub_environment_needs_the_mongo_users_passwords():
    # MongoDB always has users now (offline too: classhub-mongo); no URL without one
    env = {k: v for k, v in STACK_ENV.items() if k != "CLASSHUB_MONGO_FILES_PASSWORD"}
    with pytest.raises(ValueError, match="CLASSHUB_MONGO_FILES_PASSWORD"):
        hubenv.hub_environment(env, mongo_address="db:27017")


def test_hub_environment_names_what_is_missing():
    env = {k: v for k, v in STACK_ENV.items() if k != "CLASSHUB_PG_GRADES_PASSWORD"}
    with pytest.raises(ValueError, match="CLASSHUB_PG_GRADES_PASSWORD"):
        hubenv.hub_environment(env)


def test_env_file_reading_is_compose_like():
    assert hubenv.read_env_file("# c\n\nA=1\nB=x=y\nA=2\nnot a line\n") == {"A": "2", "B": "x=y"}
    with pytest.raises(ValueError):
        hubenv.format_env_file({"A": "two\nlines"})


def test_s3_identities_scope_each_service_to_its_prefixes():
    doc = s3.identities(
        "bkt",
        admin=s3.Keys("a", "as"),
        files=s3.Keys("f", "fs"),
        grades=s3.Keys("g", "gs"),
    )
    by_name = {i["name"]: i for i in doc["identities"]}
    assert by_name["admin"]["actions"] == ["Admin", "Read", "Write", "List", "Tagging"]
    assert by_name["grades"]["actions"] == [
        "Read:bkt/submissions/*",
        "Write:bkt/submissions/*",
        "List:bkt/submissions/*",
        # the jobs of its helper services on a Swarm (services/base/swarmhomes.py)
        "Read:bkt/helpers/grades/*",
        "Write:bkt/helpers/grades/*",
        "List:bkt/helpers/grades/*",
    ]
    files = by_name["files"]["actions"]
    assert "Write:bkt/helpers/files/*" in files and "Write:bkt/helpers/grades/*" not in files
    assert len(files) == 15 and all(":bkt/" in a and a.endswith("/*") for a in files)
    assert by_name["files"]["credentials"] == [{"accessKey": "f", "secretKey": "fs"}]
    with pytest.raises(ValueError, match="of its own"):
        s3.identities(
            "bkt", admin=s3.Keys("a", "x"), files=s3.Keys("a", "y"), grades=s3.Keys("g", "z")
        )
    with pytest.raises(ValueError):
        s3.scoped_actions("bkt", ["users"])  # not a folder


def test_s3_prefixes_cover_every_key_the_services_make():
    keys = {
        "files": [
            names.user_key("ann", "a.txt"),
            names.material_key("bio", "a.txt"),
            names.assignments_prefix("bio") + "hw-1/a.txt",
            "staging/abc",
            "pushes/bio/p.zip",
        ],
        "grades": [names.submission_key("bio", "hw-1", "ann", 1, "a.txt")],
    }
    for service, prefixes in (("files", s3.FILES_PREFIXES), ("grades", s3.GRADES_PREFIXES)):
        for key in keys[service]:
            assert key.startswith(prefixes), key
    # and no prefix of one service lies inside the other's
    for a in s3.FILES_PREFIXES:
        for b in s3.GRADES_PREFIXES:
            assert not a.startswith(b) and not b.startswith(a)


def test_scram_verifier_has_postgres_form():
    v = postgres.scram_verifier("secret-password", salt=b"0123456789abcdef")
    method, rest = v.split("$", 1)
    assert method == "SCRAM-SHA-256" and rest.startswith("4096:")
    with pytest.raises(postgres.SetupError):
        postgres.scram_verifier("with space")


class FakeAdmin:
    def __init__(self, server):
        self.server = server

    def command(self, name, *args, **kwargs):
        return self.server.command(self.client, name, *args, **kwargs)


class FakeMongo:
    """What the set-up asks of a real MongoDB with authentication on."""

    def __init__(self, users=None):
        self.users = dict(users or {})  # name -> (pwd, roles)
        self.calls = []

    def client_factory(self, address, timeout, **auth):
        server = self

        class Client:
            def __init__(self):
                self.auth = auth
                self.admin = FakeAdmin(server)
                self.admin.client = self

            def close(self):
                pass

            def __getitem__(self, name):
                raise AssertionError("no data access in this test")

        return Client()

    def command(self, client, name, *args, **kwargs):
        self.calls.append((name, client.auth.get("username")))
        user = client.auth.get("username")
        if name == "buildInfo":
            return {"version": "7.0.12"}
        if user is not None and self.users.get(user, (None,))[0] != client.auth.get("password"):
            raise OperationFailure("Authentication failed.", code=18)
        if name == "connectionStatus":
            return {"ok": 1}
        if name == "createUser":
            if user is None and self.users:  # the localhost exception ends with the first user
                raise OperationFailure("command createUser requires authentication", code=13)
            self.users[args[0]] = (kwargs["pwd"], kwargs["roles"])
            return {"ok": 1}
        if name == "updateUser":
            self.users[args[0]] = (kwargs["pwd"], kwargs["roles"])
            return {"ok": 1}
        if name == "usersInfo":
            wanted = args[0]
            if wanted == 1:
                return {"users": [{"user": u} for u in self.users]}
            return {"users": [{"user": wanted["user"]}] if wanted["user"] in self.users else []}
        raise AssertionError(name)


PASSWORDS = {"classes": "classes-pw", "files": "files-pw"}


def run_bootstrap(monkeypatch, fake, root="root-pw"):
    monkeypatch.setattr(mongo, "_client", fake.client_factory)
    monkeypatch.setattr(mongo, "MOVED", ())
    return mongo.bootstrap("db:27017", root_password=root, passwords=PASSWORDS)


def test_mongo_users_on_a_deployment_from_before_authentication(monkeypatch):
    fake = FakeMongo()  # no users at all: only the localhost exception lets one in
    done = run_bootstrap(monkeypatch, fake)
    assert fake.users["root"] == ("root-pw", [{"role": "root", "db": "admin"}])
    assert fake.users["classhub_classes"] == (
        "classes-pw",
        [{"role": "readWrite", "db": "classhub"}],
    )
    assert fake.users["classhub_files"] == (
        "files-pw",
        [{"role": "readWrite", "db": "classhub_files"}],
    )
    assert done == [
        "created the user root (the deployment had no users)",
        "created user classhub_classes (readWrite on classhub)",
        "created user classhub_files (readWrite on classhub_files)",
    ]
    # the users are made while signed in as root, never without a user
    made = [who for name, who in fake.calls if name == "createUser"]
    assert made == [None, "root", "root"]


def test_mongo_users_again_updates_passwords_and_roles(monkeypatch):
    fake = FakeMongo(
        {
            "root": ("root-pw", []),
            "classhub_classes": ("old", [{"role": "root", "db": "admin"}]),
        }
    )
    done = run_bootstrap(monkeypatch, fake)
    assert fake.users["classhub_classes"] == (
        "classes-pw",
        [{"role": "readWrite", "db": "classhub"}],
    )
    assert done == ["created user classhub_files (readWrite on classhub_files)"]


def test_mongo_wrong_root_password_is_a_clear_error(monkeypatch):
    fake = FakeMongo({"root": ("the-real-one", [])})
    with pytest.raises(mongo.SetupError, match="MONGO_ROOT_PASSWORD"):
        run_bootstrap(monkeypatch, fake)


def test_mongo_service_url_quotes_the_password():
    url = mongo.service_url(mongo.FILES, "h:1", "p@ss/word")
    assert url == "mongodb://classhub_files:p%40ss%2Fword@h:1/classhub_files?authSource=admin"


def test_apply_env_gives_each_component_its_own_store_identity():
    from traitlets.config import Config

    from hub.config import apply_env
    from services.config import apply_env as apply_services_env

    env = hubenv.hub_environment(STACK_ENV)
    env.update(CLASSHUB_HUB_IP="10.1.1.1", CLASSHUB_S3_ENDPOINT="http://127.0.0.1:18333")
    c = Config()
    apply_env(c, env, gateway_lookup=lambda name: "10.1.1.1")
    apply_services_env(c, env)
    assert c.JupyterHub.db_url.startswith("postgresql+psycopg://classhub_hub:")
    from authenticator.settings import AUTH_TABLE

    # the authenticator reads its own database URL from the hub's environment
    accounts_db_url = AUTH_TABLE.get("accounts_db_url").read(environ=env)
    assert accounts_db_url.startswith("postgresql+psycopg://classhub_auth:")
    services = {s["name"]: s["environment"] for s in c.JupyterHub.services}
    assert services["classes"]["CLASSHUB_MONGO_URL"] == env["CLASSHUB_CLASSES_MONGO_URL"]
    assert services["files"]["CLASSHUB_MONGO_URL"] == env["CLASSHUB_FILES_MONGO_URL"]
    assert services["grades"]["CLASSHUB_GRADES_DB_URL"].startswith(
        "postgresql+psycopg://classhub_grades:"
    )
    assert (
        services["files"]["CLASSHUB_S3_ACCESS_KEY"],
        services["files"]["CLASSHUB_S3_SECRET_KEY"],
    ) == (
        "files-ak",
        "files-sk",
    )
    assert services["grades"]["CLASSHUB_S3_ACCESS_KEY"] == "grades-ak"
    for name, service_env in services.items():
        text = " ".join(service_env.values())
        for secret in ("pg-super", "mongo-root", "admin-sk", "old-sk", "accpw", "hubpw"):
            assert secret not in text, name


def test_a_swarm_stacks_homes_identity_reaches_only_the_homes_prefix(tmp_path):
    doc = s3.identities(
        "bkt",
        admin=s3.Keys("a", "as"),
        files=s3.Keys("f", "fs"),
        grades=s3.Keys("g", "gs"),
        homes=s3.Keys("h", "hs"),
    )
    by_name = {i["name"]: i for i in doc["identities"]}
    assert by_name["homes"]["actions"] == [
        "Read:bkt/homes/*",
        "Write:bkt/homes/*",
        "List:bkt/homes/*",
    ]
    # without its keys (one machine) there is no such identity
    env = {
        "S3_ADMIN_ACCESS_KEY": "a",
        "S3_ADMIN_SECRET_KEY": "as",
        "CLASSHUB_S3_FILES_ACCESS_KEY": "f",
        "CLASSHUB_S3_FILES_SECRET_KEY": "fs",
        "CLASSHUB_S3_GRADES_ACCESS_KEY": "g",
        "CLASSHUB_S3_GRADES_SECRET_KEY": "gs",
    }
    out = tmp_path / "s3.json"
    from hub.stores import cli

    for extra, expected in (
        ({}, ["admin", "files", "grades"]),
        (
            {"CLASSHUB_SWARM_HOMES_S3_ACCESS_KEY": "h", "CLASSHUB_SWARM_HOMES_S3_SECRET_KEY": "hs"},
            ["admin", "files", "grades", "homes"],
        ),
    ):
        (tmp_path / "env").write_text("".join(f"{k}={v}\n" for k, v in {**env, **extra}.items()))
        assert cli.main(["--env-file", str(tmp_path / "env"), "s3-config", "--out", str(out)]) == 0
        assert [i["name"] for i in json.loads(out.read_text())["identities"]] == expected
