"""Least privilege at run time (an identity per component in the
data stores), on a whole deployment: the hub and
each service hold only their own store credentials (read from the running processes), and
each credential a service holds is refused outside its own data (PostgreSQL, S3, and
MongoDB: classhub-mongo with a user per service, as offline)."""

from __future__ import annotations

import io
from pathlib import Path

import psycopg
import pytest
from minio import Minio
from minio.error import S3Error
from psycopg import errors
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from hub.stores import postgres as roles
from hub.stores.s3 import DEFAULT_BUCKET

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def service_env(stack, service: str) -> dict[str, str]:
    """The environment of the hub's managed service ``services.<service>``."""
    return environ(stack.service_pid(service))


def test_each_process_holds_only_its_own_store_credentials(stack):
    admin_secrets = [
        stack.pg_admin_password,
        stack.s3_access_key,
        stack.s3_secret_key,
        stack.mongo_root_password,
    ]
    pg = stack.pg_passwords
    mongo = stack.mongo_passwords
    files_keys = [stack.s3_files_keys.access_key, stack.s3_files_keys.secret_key]
    grades_keys = [stack.s3_grades_keys.access_key, stack.s3_grades_keys.secret_key]
    hub = " ".join(environ(stack.hub.proc.pid).values())
    for secret in admin_secrets:
        assert secret not in hub
    assert "classhub_hub:" in environ(stack.hub.proc.pid)["CLASSHUB_DB_URL"]

    grades = service_env(stack, "grades")
    assert grades["CLASSHUB_GRADES_DB_URL"].startswith("postgresql+psycopg://classhub_grades:")
    assert [grades["CLASSHUB_S3_ACCESS_KEY"], grades["CLASSHUB_S3_SECRET_KEY"]] == grades_keys
    files = service_env(stack, "files")
    assert [files["CLASSHUB_S3_ACCESS_KEY"], files["CLASSHUB_S3_SECRET_KEY"]] == files_keys
    # each service signs in to MongoDB as its own user, on its own database
    assert files["CLASSHUB_MONGO_URL"] == (
        f"mongodb://classhub_files:{mongo['files']}@127.0.0.1:{stack.mongo_port}"
        "/classhub_files?authSource=admin"
    )
    classes = service_env(stack, "classes")
    assert classes["CLASSHUB_MONGO_URL"] == (
        f"mongodb://classhub_classes:{mongo['classes']}@127.0.0.1:{stack.mongo_port}"
        "/classhub?authSource=admin"
    )
    others = {
        "grades": [*admin_secrets, pg["hub"], pg["accounts"], *files_keys, *mongo.values()],
        "files": [*admin_secrets, *pg.values(), *grades_keys, mongo["classes"]],
        "classes": [*admin_secrets, *pg.values(), *files_keys, *grades_keys, mongo["files"]],
    }
    for name, env in (("grades", grades), ("files", files), ("classes", classes)):
        text = " ".join(env.values())
        for secret in others[name]:
            assert secret not in text, name


def test_a_services_own_credentials_are_refused_elsewhere(stack):
    grades = service_env(stack, "grades")
    url = grades["CLASSHUB_GRADES_DB_URL"].replace("+psycopg", "")
    # the grades service's database role: its own schema yes, the accounts' hashes no
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SELECT count(*) FROM classhub_grades.assignments")
        for statement in (
            "SELECT username, password_hash FROM classhub_auth.accounts",
            "SELECT name FROM classhub_hub.users",
            "SELECT token FROM classhub_hub.api_tokens",
            "UPDATE classhub_auth.accounts SET role = 'admin'",
            "CREATE ROLE planted SUPERUSER",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
    # the hub's own role reads JupyterHub's tables, not the accounts
    stack.create_user("store-ann")
    with psycopg.connect(
        stack.pg_url(roles.HUB).replace("+psycopg", ""), autocommit=True, connect_timeout=5
    ) as conn:
        assert conn.execute("SELECT name FROM users WHERE name = 'store-ann'").fetchone()
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM classhub_auth.accounts")

    # the files service's S3 identity: a submission (the grades service's) is refused
    admin = Minio(
        f"127.0.0.1:{stack.s3_port}",
        stack.s3_access_key,
        stack.s3_secret_key,
        secure=False,
        region="us-east-1",
    )
    admin.put_object(DEFAULT_BUCKET, "submissions/x/hw/ann/1/a.txt", io.BytesIO(b"work"), 4)
    files = service_env(stack, "files")
    mine = Minio(
        f"127.0.0.1:{stack.s3_port}",
        files["CLASSHUB_S3_ACCESS_KEY"],
        files["CLASSHUB_S3_SECRET_KEY"],
        secure=False,
        region="us-east-1",
    )
    with pytest.raises(S3Error) as e:
        mine.get_object(DEFAULT_BUCKET, "submissions/x/hw/ann/1/a.txt").read()
    assert e.value.code == "AccessDenied"
    with pytest.raises(S3Error) as e:
        mine.remove_bucket(DEFAULT_BUCKET)
    assert e.value.code == "AccessDenied"

    # each service's MongoDB user, from its running process: its own database yes, the
    # other service's, the list of every database and user management no
    for module, own, other in (
        ("classes", "classhub", "classhub_files"),
        ("files", "classhub_files", "classhub"),
    ):
        c = MongoClient(
            service_env(stack, module)["CLASSHUB_MONGO_URL"], serverSelectionTimeoutMS=5000
        )
        try:
            c[own].list_collection_names()
            assert c.list_database_names() == [own]
            for attempt in (
                lambda c=c, o=other: c[o].list_collection_names(),
                lambda c=c, o=other: c[o].anything.insert_one({"planted": True}),
                lambda c=c: c.admin.command("usersInfo", 1),
                lambda c=c: c.admin.command(
                    "createUser", "planted", pwd="p" * 16, roles=[{"role": "root", "db": "admin"}]
                ),
                lambda c=c: c.admin.command("listDatabases", authorizedDatabases=False),
            ):
                with pytest.raises(OperationFailure) as e:
                    attempt()
                assert e.value.code == 13, e.value.details
        finally:
            c.close()
