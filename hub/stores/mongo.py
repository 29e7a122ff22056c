"""A MongoDB user per service, each limited to its own database.

| user               | database         | service                                      |
|--------------------|------------------|----------------------------------------------|
| ``classhub_classes`` | ``classhub``       | classes (collection ``classes``)               |
| ``classhub_files``   | ``classhub_files`` | files (``material_pushes``, ``material_deliveries``) |

Each user has the built-in role ``readWrite`` on its database and nothing else, and is
kept in the ``admin`` database (``authSource=admin``). :func:`bootstrap` runs as the root
user and is idempotent:

- On a deployment from before authentication (the data volume has no users), MongoDB
  still accepts, from localhost only, the creation of the first user: the set-up makes the
  root user that way (``scripts/up.sh`` runs it in the MongoDB container's network
  namespace for this reason), then signs in as root.
- It creates the service users, or sets their password and roles again.
- Earlier versions kept the files service's collections in ``classhub``; they move to
  ``classhub_files`` (copied by ``_id``, checked, then the old collection dropped), so the
  classes user cannot read the pushes, nor the files user the classes.

The offline stack and the tests run ``classhub-mongo`` (:mod:`hub.stores.mongoauth`,
nx-27017 behind SCRAM-SHA-256 and these roles) instead of the official image; the set-up
is the same for both. A bare nx-27017 (no authentication: it answers ``createUser`` and
``saslStart`` with ``ok`` and does nothing) is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from pymongo import MongoClient
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError

log = logging.getLogger(__name__)

ROOT_USER = "root"


@dataclass(frozen=True)
class ServiceUser:
    service: str  # classes, files
    user: str
    database: str
    password_env: str


CLASSES = ServiceUser("classes", "classhub_classes", "classhub", "CLASSHUB_MONGO_CLASSES_PASSWORD")
FILES = ServiceUser("files", "classhub_files", "classhub_files", "CLASSHUB_MONGO_FILES_PASSWORD")
USERS = (CLASSES, FILES)

#: collections that earlier versions kept in another database: (service, old db, names)
MOVED = ((FILES, "classhub", ("material_pushes", "material_deliveries")),)

_AUTH_FAILED = 18  # AuthenticationFailed


class SetupError(RuntimeError):
    """The set-up cannot go on; the message says what to fix."""


def service_url(u: ServiceUser, address: str, password: str) -> str:
    """The URL a service connects with: its own user (``password``) and database."""
    return (
        f"mongodb://{quote(u.user, safe='')}:{quote(password, safe='')}@{address}/"
        f"{u.database}?authSource=admin"
    )


def _client(address: str, timeout: float, **auth) -> MongoClient:
    ms = int(timeout * 1000)
    return MongoClient(
        f"mongodb://{address}/",
        connect=False,
        serverSelectionTimeoutMS=ms,
        connectTimeoutMS=ms,
        socketTimeoutMS=ms,
        appname="classhub-stores",
        **auth,
    )


def _root_client(address: str, root_password: str, timeout: float) -> tuple[MongoClient, bool]:
    """Signed in as root, and whether root was created: on a server that has no user yet
    (the localhost exception)."""
    plain = _client(address, timeout)
    try:
        process = plain.admin.command("buildInfo").get("process", "")
    except OperationFailure:  # a server that wants a user even for this: a real MongoDB
        process = ""
    finally:
        plain.close()
    if "nx_27017" in str(process):
        raise SetupError(
            "this MongoDB server is a bare nx-27017, which has no authentication or users: "
            "run classhub-mongo --auth instead (the offline image classhub/mongo does since "
            "this version: rebuild it with images/build.sh mongo)"
        )
    auth = {"username": ROOT_USER, "password": root_password, "authSource": "admin"}
    client = _client(address, timeout, **auth)
    try:
        client.admin.command("connectionStatus")
        return client, False
    except OperationFailure as e:
        client.close()
        if e.code != _AUTH_FAILED:
            raise
    except PyMongoError:
        client.close()
        raise
    except Exception as e:  # noqa: BLE001 - a server that does not speak SCRAM
        client.close()
        raise SetupError(
            f"this MongoDB server does not sign in with SCRAM ({type(e).__name__})"
        ) from None
    # no root yet: a deployment from before authentication (the localhost exception)
    plain = _client(address, timeout)
    try:
        plain.admin.command(
            "createUser", ROOT_USER, pwd=root_password, roles=[{"role": "root", "db": "admin"}]
        )
    except OperationFailure as e:
        raise SetupError(
            "MongoDB refused the root password and would not create the root user "
            f"({e.code}: {e.details.get('errmsg', '') if e.details else ''}). The root user "
            "exists with another password (MONGO_ROOT_PASSWORD in .run/classhub.env must be "
            "the one the data was made with), or this connection is not from localhost."
        ) from None
    finally:
        plain.close()
    client = _client(address, timeout, **auth)
    client.admin.command("connectionStatus")
    return client, True


def _ensure_user(admin, u: ServiceUser, password: str) -> str | None:
    roles = [{"role": "readWrite", "db": u.database}]
    found = admin.command("usersInfo", {"user": u.user, "db": "admin"}).get("users")
    if found:
        admin.command("updateUser", u.user, pwd=password, roles=roles)
        return None
    admin.command("createUser", u.user, pwd=password, roles=roles)
    return f"created user {u.user} (readWrite on {u.database})"


def move_collection(client: MongoClient, old_db: str, new_db: str, name: str) -> int:
    """Copy ``old_db.name`` into ``new_db.name`` (documents already there, by ``_id``, are
    kept), check that every ``_id`` arrived, then drop the old collection. Returns the
    documents copied. Safe to run again after an interruption."""
    old, new = client[old_db][name], client[new_db][name]
    if name not in client[old_db].list_collection_names():
        return 0
    copied = 0
    batch: list[dict] = []

    def flush():
        nonlocal copied
        if not batch:
            return
        try:
            copied += len(new.insert_many(batch, ordered=False).inserted_ids)
        except BulkWriteError as e:
            bad = [w for w in e.details.get("writeErrors", []) if w.get("code") != 11000]
            if bad:
                raise
            copied += e.details.get("nInserted", 0)
        batch.clear()

    for doc in old.find({}):
        batch.append(doc)
        if len(batch) >= 500:
            flush()
    flush()
    ids = [d["_id"] for d in old.find({}, {"_id": 1})]
    present = {d["_id"] for d in new.find({"_id": {"$in": ids}}, {"_id": 1})} if ids else set()
    if len(present) != len(set(ids)):
        raise SetupError(
            f"moving {old_db}.{name} to {new_db}: {len(set(ids)) - len(present)} documents "
            "did not arrive; nothing was dropped, run the set-up again"
        )
    old.drop()
    return copied


def bootstrap(
    address: str,
    *,
    root_password: str,
    passwords: Mapping[str, str],
    timeout: float = 10.0,
) -> list[str]:
    """Set MongoDB at ``address`` (``host:port``) up for the services; see the module's
    text. ``passwords`` maps classes and files to their users' passwords. Returns what it
    changed (no secrets)."""
    done: list[str] = []
    missing = [u.service for u in USERS if not passwords.get(u.service)]
    missing += [] if root_password else [ROOT_USER]
    if missing:
        raise SetupError(f"no MongoDB password for: {', '.join(missing)}")
    client, created = _root_client(address, root_password, timeout)
    if created:
        done.append(f"created the user {ROOT_USER} (the deployment had no users)")
    try:
        reply = client.admin.command("usersInfo", 1)
        if "users" not in reply:
            raise SetupError(
                "this MongoDB server has no user management (a bare nx-27017?); "
                "run classhub-mongo --auth"
            )
        for u in USERS:
            line = _ensure_user(client.admin, u, passwords[u.service])
            if line:
                done.append(line)
        for u, old_db, names in MOVED:
            for name in names:
                n = move_collection(client, old_db, u.database, name)
                if n:
                    done.append(f"moved {n} documents of {old_db}.{name} to {u.database}")
    except PyMongoError as e:
        raise SetupError(f"MongoDB set-up failed: {type(e).__name__}: {e}") from None
    finally:
        client.close()
    for line in done:
        log.info("mongo: %s", line)
    return done
