"""MongoDB: every application database, in ``mongodump``'s layout, with pymongo.

``mongodump`` is not installable on every machine classhub runs on (and the offline
stack's stand-in, nx-27017, has none), so the dump is made over the wire protocol:
``mongo/<database>/<collection>.bson`` holds the documents one after the other, as
``mongodump`` writes them, and ``<collection>.metadata.json`` the indexes, so
``mongorestore`` can read such a backup as well.

Consistency: when the server offers snapshot reads (a replica set), every collection is
read in one snapshot session, the same instant for all. A standalone server (the
stack's ``mongo``, and nx-27017) has none: then each collection is read in one query,
and the manifest says ``"consistency": "per collection"``. classhub writes a class and
its roster in single documents, so a copy consistent per document loses nothing that
belongs together.

The databases ``admin``, ``local`` and ``config`` are not backed up: the users in
``admin`` belong to a deployment (``make up`` makes them, with its own passwords).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import bson
from bson import json_util
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError

from .manifest import BackupError

SYSTEM_DATABASES = ("admin", "local", "config")
#: index options a restore passes on (what classhub's services use, and the usual ones)
INDEX_OPTIONS = ("unique", "sparse", "expireAfterSeconds", "partialFilterExpression", "collation")
BATCH = 500


def connect(url: str, timeout: float) -> MongoClient:
    ms = int(timeout * 1000)
    return MongoClient(
        url,
        connect=False,
        serverSelectionTimeoutMS=min(ms, 15000),
        connectTimeoutMS=min(ms, 15000),
        socketTimeoutMS=ms,
        appname="classhub-backup",
    )


def application_databases(client: MongoClient) -> list[str]:
    return sorted(n for n in client.list_database_names() if n not in SYSTEM_DATABASES)


def collections(db) -> list[str]:
    return sorted(n for n in db.list_collection_names() if not n.startswith("system."))


def index_specs(coll) -> list[dict]:
    """The collection's indexes but ``_id``'s, as ``{"name", "key": [[field, dir]], ...}``."""
    specs = []
    for name, info in sorted(coll.index_information().items()):
        if name == "_id_":
            continue
        spec = {"name": name, "key": [[k, v] for k, v in info["key"]]}
        for option in INDEX_OPTIONS:
            if option in info:
                spec[option] = info[option]
        specs.append(spec)
    return specs


class Fingerprint:
    """The fingerprint of one collection: its documents (as BSON, in a fixed order, so
    the order a server returns them in does not matter) and its indexes."""

    def __init__(self):
        self.documents: list[bytes] = []

    def add(self, raw: bytes) -> None:
        self.documents.append(hashlib.sha256(raw).digest())

    def result(self, indexes: list[dict]) -> dict:
        h = hashlib.sha256()
        for digest in sorted(self.documents):
            h.update(digest)
        h.update(json_util.dumps(indexes, sort_keys=True).encode())
        return {"count": len(self.documents), "sha256": h.hexdigest()}


def _documents(coll, session) -> Iterator[bytes]:
    raw = coll.with_options(codec_options=bson.CodecOptions(document_class=RawBSONDocument))
    for doc in raw.find({}, session=session, batch_size=BATCH):
        yield doc.raw


def _snapshot_session(client: MongoClient, names: list[str]):
    """A snapshot session when the server really has them (a replica set), else None.

    The first read of a snapshot session fixes its time (``atClusterTime`` in the
    answer). A standalone MongoDB refuses the read; nx-27017 answers it without a
    time, reading no snapshot at all: both count as "no snapshots"."""
    probe = next((client[db][coll] for db in names for coll in collections(client[db])), None)
    if probe is None:
        return None
    try:
        session = client.start_session(snapshot=True)
    except (ConfigurationError, OperationFailure):
        return None
    try:
        probe.find_one({}, session=session)
    except (ConfigurationError, OperationFailure):
        session.end_session()
        return None
    if getattr(session, "_snapshot_time", None) is None:
        session.end_session()
        return None
    return session


def dump(url: str, target: str, timeout: float) -> dict:
    """Every application database into ``target/<db>/``; ``{"fingerprint", "consistency",
    "databases"}``."""
    client = connect(url, timeout)
    try:
        names = application_databases(client)
        session = _snapshot_session(client, names)
        fingerprint: dict[str, dict] = {}
        for db_name in names:
            db = client[db_name]
            folder = os.path.join(target, db_name)
            os.makedirs(folder, mode=0o700, exist_ok=True)
            for coll_name in collections(db):
                coll = db[coll_name]
                fp = Fingerprint()
                path = os.path.join(folder, f"{coll_name}.bson")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    for raw in _documents(coll, session):
                        f.write(raw)
                        fp.add(raw)
                indexes = index_specs(coll)
                meta = {"collectionName": coll_name, "type": "collection", "indexes": indexes}
                fd = os.open(
                    os.path.join(folder, f"{coll_name}.metadata.json"),
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                    0o600,
                )
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(json_util.dumps(meta, json_options=json_util.CANONICAL_JSON_OPTIONS))
                fingerprint[f"{db_name}.{coll_name}"] = fp.result(indexes)
        if session is not None:
            session.end_session()
        return {
            "fingerprint": fingerprint,
            "consistency": "snapshot" if session is not None else "per collection",
            "databases": names,
        }
    except PyMongoError as e:
        raise BackupError(f"MongoDB could not be read: {e}") from None
    finally:
        client.close()


def current_fingerprint(url: str, timeout: float, databases: list[str] | None = None) -> dict:
    client = connect(url, timeout)
    try:
        out = {}
        names = application_databases(client) if databases is None else databases
        for db_name in names:
            db = client[db_name]
            for coll_name in collections(db):
                fp = Fingerprint()
                for raw in _documents(db[coll_name], None):
                    fp.add(raw)
                out[f"{db_name}.{coll_name}"] = fp.result(index_specs(db[coll_name]))
        return out
    finally:
        client.close()


def restore(url: str, source: str, timeout: float) -> list[str]:
    """Make each backed-up database hold exactly the backup's collections: each is
    dropped, its indexes made again and its documents inserted; collections the backup
    does not have are dropped. Returns what was done, one line per collection."""
    client = connect(url, timeout)
    done = []
    try:
        for db_name in sorted(os.listdir(source)):
            folder = os.path.join(source, db_name)
            if not os.path.isdir(folder):
                continue
            db = client[db_name]
            wanted = sorted(f[: -len(".bson")] for f in os.listdir(folder) if f.endswith(".bson"))
            for extra in sorted(set(collections(db)) - set(wanted)):
                db.drop_collection(extra)
                done.append(f"{db_name}.{extra}: dropped (not in the backup)")
            for coll_name in wanted:
                db.drop_collection(coll_name)
                coll = db[coll_name]
                meta_path = os.path.join(folder, f"{coll_name}.metadata.json")
                indexes = []
                if os.path.exists(meta_path):
                    with open(meta_path, encoding="utf-8") as f:
                        indexes = json_util.loads(f.read()).get("indexes") or []
                db.create_collection(coll_name)
                for spec in indexes:
                    options = {k: spec[k] for k in INDEX_OPTIONS if k in spec}
                    coll.create_index([tuple(k) for k in spec["key"]], name=spec["name"], **options)
                count = 0
                batch: list = []
                with open(os.path.join(folder, f"{coll_name}.bson"), "rb") as f:
                    for doc in read_bson(f):
                        batch.append(doc)
                        if len(batch) >= BATCH:
                            coll.insert_many(batch, ordered=True)
                            count += len(batch)
                            batch = []
                if batch:
                    coll.insert_many(batch, ordered=True)
                    count += len(batch)
                done.append(f"{db_name}.{coll_name}: {count} documents")
        return done
    except PyMongoError as e:
        raise BackupError(f"restoring MongoDB failed: {e}") from None
    finally:
        client.close()


def read_bson(f) -> Iterator[RawBSONDocument]:
    """The documents of a ``.bson`` file as they are (no re-encoding: an Int64 stays one)."""
    while head := f.read(4):
        if len(head) < 4:
            raise BackupError(f"{f.name} ends in the middle of a document (damaged)")
        size = int.from_bytes(head, "little")
        body = f.read(size - 4)
        if size < 5 or len(body) != size - 4:
            raise BackupError(f"{f.name} ends in the middle of a document (damaged)")
        yield RawBSONDocument(head + body)
