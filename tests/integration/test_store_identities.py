"""Least privilege in S3 and MongoDB (an identity per component in the
data stores): each service's S3 identity
works under its own prefixes and is refused (403) everywhere else, on the bucket and on the
IAM API (real SeaweedFS, the identities file `make up` writes); MongoDB's set-up (real
classhub-mongo, which has users) makes a user per service and moves the files service's
collections to its own database, where only that user reaches them. (Each MongoDB refusal
is in test_mongo_auth.py.)"""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import secrets
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest
import requests
from minio import Minio
from minio.commonconfig import CopySource
from minio.credentials import Credentials
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.signer import sign_v4_s3
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from common.blocking import BlockingCalls
from common.errors import Unavailable
from harness.stack import VENV_BIN, start_mongo, start_s3
from hub.stores import mongo as mongo_stores
from hub.stores import s3 as s3_stores
from hub.stores.s3 import Keys
from services.base.s3 import ObjectStore

pytestmark = pytest.mark.integration

BUCKET = s3_stores.DEFAULT_BUCKET
ADMIN = Keys("chadmin" + secrets.token_hex(4), secrets.token_hex(20))
FILES = Keys("chfiles" + secrets.token_hex(4), secrets.token_hex(20))
GRADES = Keys("chgrades" + secrets.token_hex(4), secrets.token_hex(20))
#: the classes service's helper jobs on a Swarm (its look into a student's home)
CLASSES = Keys("chclasses" + secrets.token_hex(4), secrets.token_hex(20))
#: a key under each prefix, and whose it is
KEYS = {
    "users/ann/notes.txt": "files",
    "classes/bio/material/a.txt": "files",
    "classes/bio/assignments/hw-1/start.ipynb": "files",
    "staging/0123abcd": "files",
    "pushes/bio/p1.zip": "files",
    "submissions/bio/hw-1/ann/1/answer.ipynb": "grades",
    # the jobs of each service's helper services on a Swarm (services/base/swarmhomes.py)
    "helpers/files/run1/job1/job.json": "files",
    "helpers/grades/run1/job1/out/0.zip": "grades",
    "helpers/classes/run1/job1/out/0.bin": "classes",
}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("s3")
    ids = s3_stores.identities(BUCKET, admin=ADMIN, files=FILES, grades=GRADES, classes=CLASSES)
    proc, port = start_s3(workdir, ADMIN.access_key, ADMIN.secret_key, identities=ids)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.stop()


def client(address: str, keys: Keys) -> Minio:
    return Minio(address, keys.access_key, keys.secret_key, secure=False, region="us-east-1")


def refused(fn) -> None:
    with pytest.raises(S3Error) as e:
        fn()
    assert e.value.code == "AccessDenied", e.value.code


def put(c: Minio, key: str, data: bytes = b"data"):
    return c.put_object(BUCKET, key, io.BytesIO(data), len(data))


def iam(address: str, keys: Keys, body: str) -> requests.Response:
    """A signed IAM API call (SeaweedFS serves it on the S3 port)."""
    url = f"http://{address}/"
    data = body.encode()
    sha = hashlib.sha256(data).hexdigest()
    now = datetime.datetime.now(datetime.UTC)
    headers = {
        "Host": address,
        "Content-Type": "application/x-www-form-urlencoded",
        "x-amz-content-sha256": sha,
        "x-amz-date": now.strftime("%Y%m%dT%H%M%SZ"),
    }
    headers = sign_v4_s3(
        method="POST",
        url=urlsplit(url),
        region="us-east-1",
        headers=headers,
        credentials=Credentials(keys.access_key, keys.secret_key),
        content_sha256=sha,
        date=now,
    )
    return requests.post(url, data=data, headers=dict(headers), timeout=10)


def test_the_set_up_creates_the_bucket_once(s3):
    assert s3_stores.ensure_bucket(f"http://{s3}", ADMIN, BUCKET) is True
    assert s3_stores.ensure_bucket(f"http://{s3}", ADMIN, BUCKET) is False
    # the services' own identities may not
    for keys in (FILES, GRADES, CLASSES):
        refused(lambda k=keys: client(s3, k).make_bucket("planted-bucket"))


async def test_each_service_works_under_its_own_prefixes(s3):
    s3_stores.ensure_bucket(f"http://{s3}", ADMIN, BUCKET)
    blocking = BlockingCalls(threads=4, timeout=60, name="s3-test")
    stores = {
        name: ObjectStore(
            endpoint=f"http://{s3}",
            access_key=k.access_key,
            secret_key=k.secret_key,
            bucket=BUCKET,
            blocking=blocking,
            probe_prefix=probe,
        )
        for name, k, probe in (
            ("files", FILES, "staging/"),
            ("grades", GRADES, "submissions/"),
            ("classes", CLASSES, "helpers/classes/"),
        )
    }
    try:
        for store in stores.values():
            await store.ping()  # the health check with the service's own identity
        await stores["files"].ensure_bucket()
        for key, owner in KEYS.items():
            store = stores[owner]
            await store.put_bytes(key, b"mine", "application/octet-stream")
            assert b"".join(store.iter_object(key)) == b"mine"
            folder = key.rsplit("/", 1)[0] + "/"
            assert [o.key for o in await store.list(folder)] == [key]
        # server-side copy and delete within its prefixes; a presigned download of its own
        await stores["files"].copy("users/ann/notes.txt", "users/ann/copy.txt")
        await stores["files"].remove(["users/ann/copy.txt"])
        url = stores["grades"].presign_get(
            host=s3,
            secure=False,
            key="submissions/bio/hw-1/ann/1/answer.ipynb",
            filename="a.ipynb",
            expires=60,
        )
        assert requests.get(url, timeout=10).content == b"mine"
        # a larger upload goes in parts (multipart): allowed under its prefixes too
        big = os.urandom(12 << 20)
        client(s3, FILES).put_object(
            BUCKET, "users/ann/big.bin", io.BytesIO(big), -1, part_size=5 << 20
        )
        assert b"".join(stores["files"].iter_object("users/ann/big.bin")) == big
    finally:
        for store in stores.values():
            store.close()
        blocking.close()


def test_each_service_is_refused_outside_its_prefixes(s3):
    s3_stores.ensure_bucket(f"http://{s3}", ADMIN, BUCKET)
    admin = client(s3, ADMIN)
    for key in KEYS:
        put(admin, key, b"theirs")
    for name, keys in (("files", FILES), ("grades", GRADES), ("classes", CLASSES)):
        c = client(s3, keys)
        for key, owner in KEYS.items():
            if owner == name:
                continue
            refused(lambda k=key, c=c: c.get_object(BUCKET, k).read())
            refused(lambda k=key, c=c: c.stat_object(BUCKET, k))
            refused(lambda k=key, c=c: put(c, k, b"planted"))
            refused(lambda k=key, c=c: c.remove_object(BUCKET, k))
            refused(lambda k=key, c=c: list(c.list_objects(BUCKET, prefix=k.split("/")[0] + "/")))
            # copying it into its own prefix is reading it
            mine = next(k for k, o in KEYS.items() if o == name)
            refused(
                lambda k=key, m=mine, c=c: c.copy_object(BUCKET, m + ".copy", CopySource(BUCKET, k))
            )
            # a bulk delete reports each refusal
            errors = list(c.remove_objects(BUCKET, [DeleteObject(key)]))
            assert [e.code for e in errors] == ["AccessDenied"]
            # a URL it presigns for another's key is refused by the store
            url = c.presigned_get_object(BUCKET, key)
            assert requests.get(url, timeout=10).status_code == 403
        # the whole bucket, keys outside every prefix, the bucket itself
        refused(lambda c=c: list(c.list_objects(BUCKET, recursive=True)))
        refused(lambda c=c: put(c, "toplevel.txt"))
        refused(lambda c=c: c.bucket_exists(BUCKET))
        refused(lambda c=c: c.remove_bucket(BUCKET))
        refused(lambda c=c: c.make_bucket("another-bucket"))
        refused(
            lambda c=c: c.set_bucket_policy(
                BUCKET,
                '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
                '"Action":"s3:GetObject","Resource":"arn:aws:s3:::' + BUCKET + '/*"}]}',
            )
        )
        # nor see or change identities (SeaweedFS's IAM API on the same port)
        for body in (
            "Action=ListUsers&Version=2010-05-08",
            "Action=ListAccessKeys&UserName=admin&Version=2010-05-08",
            "Action=CreateUser&UserName=planted&Version=2010-05-08",
            f"Action=CreateAccessKey&UserName={name}&Version=2010-05-08",
            "Action=PutUserPolicy&UserName=files&PolicyName=p&PolicyDocument=%7B%7D"
            "&Version=2010-05-08",
        ):
            r = iam(s3, keys, body)
            assert r.status_code == 403 and "AccessDenied" in r.text, (body, r.text)
    # nothing was changed: every key still holds what the admin wrote
    for key in KEYS:
        assert admin.get_object(BUCKET, key).read() == b"theirs"
    assert not any(o.object_name == "toplevel.txt" for o in admin.list_objects(BUCKET))


async def test_a_service_with_a_wrong_identity_reports_503(s3):
    blocking = BlockingCalls(threads=1, timeout=30, name="s3-test")
    store = ObjectStore(
        endpoint=f"http://{s3}",
        access_key=GRADES.access_key,
        secret_key=GRADES.secret_key,
        bucket=BUCKET,
        blocking=blocking,
        probe_prefix="staging/",  # the files service's prefix: not the grades identity's
    )
    try:
        with pytest.raises(Unavailable, match="refused the service's credentials"):
            await store.ping()
    finally:
        store.close()
        blocking.close()


def test_identities_file_from_the_cli(tmp_path):
    env = {
        **os.environ,
        "S3_ADMIN_ACCESS_KEY": ADMIN.access_key,
        "S3_ADMIN_SECRET_KEY": ADMIN.secret_key,
        "CLASSHUB_S3_FILES_ACCESS_KEY": FILES.access_key,
        "CLASSHUB_S3_FILES_SECRET_KEY": FILES.secret_key,
        "CLASSHUB_S3_GRADES_ACCESS_KEY": GRADES.access_key,
        "CLASSHUB_S3_GRADES_SECRET_KEY": GRADES.secret_key,
    }
    out = tmp_path / "s3.json"
    r = subprocess.run(
        [str(VENV_BIN / "classhub-stores"), "s3-config", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert ADMIN.secret_key not in r.stdout + r.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    import json

    ids = {i["name"]: i for i in json.loads(out.read_text())["identities"]}
    assert ids["grades"]["actions"] == [
        f"Read:{BUCKET}/submissions/*",
        f"Write:{BUCKET}/submissions/*",
        f"List:{BUCKET}/submissions/*",
        # the jobs of its helper services on a Swarm (services/base/swarmhomes.py)
        f"Read:{BUCKET}/helpers/grades/*",
        f"Write:{BUCKET}/helpers/grades/*",
        f"List:{BUCKET}/helpers/grades/*",
    ]
    assert "Admin" not in str(ids["files"]["actions"])


# ----- MongoDB

MONGO_ROOT = "root-" + secrets.token_hex(8)
MONGO_PASSWORDS = {"classes": secrets.token_hex(12), "files": secrets.token_hex(12)}


@pytest.fixture
def mongo(tmp_path):
    # as the offline image starts it: root from MONGO_INITDB_ROOT_*, every command signed in
    env = {"MONGO_INITDB_ROOT_USERNAME": "root", "MONGO_INITDB_ROOT_PASSWORD": MONGO_ROOT}
    proc, port = start_mongo(tmp_path / "mongo", env=env)
    try:
        yield port
    finally:
        proc.stop()
        shutil.rmtree(tmp_path / "mongo", ignore_errors=True)


def mongo_env() -> dict:
    return {
        **os.environ,
        "MONGO_ROOT_PASSWORD": MONGO_ROOT,
        "CLASSHUB_MONGO_CLASSES_PASSWORD": MONGO_PASSWORDS["classes"],
        "CLASSHUB_MONGO_FILES_PASSWORD": MONGO_PASSWORDS["files"],
    }


def test_mongo_set_up_moves_the_files_collections_to_their_own_database(mongo):
    address = f"127.0.0.1:{mongo}"
    c = MongoClient(
        f"mongodb://root:{MONGO_ROOT}@{address}/?authSource=admin", serverSelectionTimeoutMS=5000
    )
    old = c["classhub"]
    old.classes.insert_one({"code": "bio", "name": "Biology"})
    old.material_pushes.insert_many([{"_id": f"p{i}", "code": "bio"} for i in range(700)])
    old.material_deliveries.insert_one({"_id": "p1/ann", "push": "p1", "user": "ann"})
    # as if an earlier run was interrupted half-way: one document already there
    c["classhub_files"].material_pushes.insert_one({"_id": "p3", "code": "bio"})
    r = subprocess.run(
        [str(VENV_BIN / "classhub-stores"), "mongo", "--address", address],
        env=mongo_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "created user classhub_classes (readWrite on classhub)" in r.stdout
    assert "created user classhub_files (readWrite on classhub_files)" in r.stdout
    assert "moved 699 documents of classhub.material_pushes to classhub_files" in r.stdout
    for secret in (MONGO_ROOT, *MONGO_PASSWORDS.values()):
        assert secret not in r.stdout + r.stderr
    new = c["classhub_files"]
    assert new.material_pushes.count_documents({}) == 700
    assert new.material_deliveries.find_one({"_id": "p1/ann"})["user"] == "ann"
    assert set(old.list_collection_names()) == {"classes"}
    assert old.classes.find_one({"code": "bio"})["name"] == "Biology"
    # the moved pushes are the files service's alone now
    users = {
        s: MongoClient(
            mongo_stores.service_url(u, address, MONGO_PASSWORDS[s]), serverSelectionTimeoutMS=5000
        )
        for s, u in (("classes", mongo_stores.CLASSES), ("files", mongo_stores.FILES))
    }
    assert users["files"].get_default_database().material_pushes.count_documents({}) == 700
    with pytest.raises(OperationFailure) as e:
        users["classes"]["classhub_files"].material_pushes.find_one()
    assert e.value.code == 13
    assert users["classes"].get_default_database().classes.count_documents({}) == 1
    # again: nothing to move, nothing lost, the users' passwords and roles set again
    assert (
        mongo_stores.bootstrap(address, root_password=MONGO_ROOT, passwords=MONGO_PASSWORDS) == []
    )
    assert new.material_pushes.count_documents({}) == 700
    for u in users.values():
        u.close()
    c.close()


def test_mongo_set_up_refuses_a_server_without_authentication(tmp_path):
    # a bare nx-27017 answers createUser and saslStart with ok and does nothing: the set-up
    # must not report users it could not make
    proc, port = start_mongo(tmp_path / "bare", bare=True)
    try:
        with pytest.raises(mongo_stores.SetupError, match="bare nx-27017"):
            mongo_stores.bootstrap(
                f"127.0.0.1:{port}",
                root_password="root-password",
                passwords={"classes": "a" * 20, "files": "b" * 20},
                timeout=3,
            )
    finally:
        proc.stop()
