"""The restore drill: a deployment with data in every store and in a student's home is
backed up while it runs (the student's server running too), restored into a fresh
deployment, and every table, collection, bucket and home compared by checksum; then one
student's home is restored from that backup, refused while their server runs.

Both deployments are real (harness ``Stack``: PostgreSQL, nx-27017 behind classhub-mongo,
SeaweedFS, the btrfs homes filesystem, the hub, Traefik and student containers), and the
backups are made and restored with the ``classhub-backup`` command, its settings in its
environment as ``make backup`` passes them.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import bson
import pymongo
import pytest
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from minio import Minio

from backup import manifest
from harness.files import files_stack
from harness.stack import Stack

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "classhub-backup")
HOME_SCRIPT = r"""
set -e
cd /home/jovyan
mkdir -p work/deep
printf '{"cells": [], "v": 1}' > notebook.ipynb
head -c 1048576 /dev/urandom > work/deep/random.bin
printf 'secret notes' > work/private.txt
chmod 600 work/private.txt
printf 'to be deleted' > doomed.txt
ln -s work/deep shortcut
"""
CHANGE_SCRIPT = r"""
set -e
cd /home/jovyan
printf '{"cells": [], "v": 2}' > notebook.ipynb
rm doomed.txt
printf 'made after the backup' > new.txt
"""
EXTRA_BUCKET = "classhub-drill-extra"


def settings_env(stack: Stack, backup_dir: Path) -> dict[str, str]:
    """What scripts/backup.sh puts into classhub-backup's environment, for ``stack``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLASSHUB_")}
    env.update(
        CLASSHUB_BACKUP_DIR=str(backup_dir),
        CLASSHUB_BACKUP_PG_URL=stack.pg_admin_url,
        CLASSHUB_BACKUP_MONGO_URL=stack.mongo_root_url,
        CLASSHUB_BACKUP_S3_ENDPOINT=f"http://127.0.0.1:{stack.s3_port}",
        CLASSHUB_BACKUP_S3_ACCESS_KEY=stack.s3_access_key,
        CLASSHUB_BACKUP_S3_SECRET_KEY=stack.s3_secret_key,
        CLASSHUB_HOMES_DIR=str(stack.homes_dir),
        CLASSHUB_CONTAINER_PREFIX=stack.prefix,
        CLASSHUB_HOME_QUOTA=stack.home_quota,
    )
    return env


def secrets_of(stack: Stack) -> list[str]:
    return [
        stack.pg_admin_password,
        stack.mongo_root_password,
        stack.s3_access_key,
        stack.s3_secret_key,
    ]


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def assert_no_secret(stack: Stack, done: subprocess.CompletedProcess) -> None:
    for secret in secrets_of(stack):
        assert secret not in done.stdout + done.stderr


def s3_admin(stack: Stack) -> Minio:
    return Minio(
        f"127.0.0.1:{stack.s3_port}",
        access_key=stack.s3_access_key,
        secret_key=stack.s3_secret_key,
        secure=False,
        region="us-east-1",
    )


def server_container(stack: Stack, user: str):
    found = [c for c in stack.containers(all=False) if c.labels.get("classhub.user") == user]
    assert len(found) == 1, found
    return found[0]


def as_student(container, script: str) -> str:
    code, out = container.exec_run(["sh", "-c", script], user="1000")
    assert code == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


BIG = os.urandom(3 << 20)
S3_OBJECTS = {
    "drill/a.txt": b"hello",
    "drill/\u00fcn\u00efcode name (1).ipynb": b'{"cells": []}',
    "drill/same-1": b"shared content",
    "drill/same-2": b"shared content",
    "drill/big.bin": BIG,
}


def put_data(stack: Stack) -> None:
    """Something in every store: the hub's tables, MongoDB, two buckets, alice's home."""
    stack.enroll("alice", "py101")
    stack.enroll("tina", "py101", teacher=True)
    client = pymongo.MongoClient(stack.mongo_root_url, serverSelectionTimeoutMS=5000)
    try:
        drill = client["classhub"]["backup_drill"]
        drill.create_index("n", unique=True, name="n_unique")
        drill.insert_many(
            [
                {
                    "n": bson.Int64(i),
                    "small": i,
                    "when": datetime.datetime(2026, 12, 6, 19, i, tzinfo=datetime.UTC),
                    "blob": bson.Binary(os.urandom(32)),
                    "nested": {"list": [1, "two", {"three": 3.0}]},
                }
                for i in range(50)
            ]
        )
    finally:
        client.close()
    s3 = s3_admin(stack)
    for key, data in S3_OBJECTS.items():
        s3.put_object("classhub-files", key, io.BytesIO(data), len(data))
    s3.make_bucket(EXTRA_BUCKET)
    s3.put_object(
        EXTRA_BUCKET,
        "meta.txt",
        io.BytesIO(b"with metadata"),
        13,
        content_type="text/plain",
        metadata={"origin": "drill"},
    )
    stack.spawn("alice")
    as_student(server_container(stack, "alice"), HOME_SCRIPT)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    yield from files_stack(tmp_path_factory.mktemp("backup-source"))


@pytest.fixture(scope="module")
def backup(source, tmp_path_factory):
    """A backup of ``source`` taken while it runs (alice's server running)."""
    put_data(source)
    backup_dir = tmp_path_factory.mktemp("backups") / "classhub"
    env = settings_env(source, backup_dir)
    done = cli(env, "backup")
    assert done.returncode == 0, done.stderr
    assert_no_secret(source, done)
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.parent == backup_dir and manifest.NAME.match(path.name)
    return path, env


def test_backup_holds_every_part_readable_only_by_root(source, backup):
    path, env = backup
    m = manifest.read(str(path))
    assert set(m.parts) == {"postgres", "mongo", "s3", "homes"}
    assert m.warnings == []
    tables = m.parts["postgres"]["databases"]["jupyterhub"]["fingerprint"]
    assert tables["classhub_hub.users"]["count"] >= 2  # alice and tina (and the admin)
    assert "classhub_grades.schema_migrations" in tables or any(
        t.startswith("classhub_grades.") for t in tables
    )
    assert m.parts["mongo"]["fingerprint"]["classhub.backup_drill"]["count"] == 50
    assert m.parts["s3"]["fingerprint"]["classhub-files"]["count"] >= len(S3_OBJECTS)
    assert m.parts["s3"]["fingerprint"][EXTRA_BUCKET]["count"] == 1
    # the same content under two keys is stored once
    objects = os.listdir(path / "s3" / "objects")
    assert len(objects) == len(set(objects))
    volumes = [h["volume"] for h in m.homes()]
    assert source.docker.containers.list(filters={"volume": volumes[0]})  # taken while running
    assert any("-home-alice-" in v for v in volumes)
    # root only: the folders 0700, every file 0600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    for folder, _, files in os.walk(path):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode) == 0o600, name
    # no snapshot left on the homes filesystem
    assert not [n for n in os.listdir(source.homes_dir) if n.startswith(".backup-")]
    done = cli(env, "verify", path.name)
    assert done.returncode == 0, done.stderr
    assert "every checksum matches" in done.stderr


def raw_document(stack: Stack, query: dict) -> bytes:
    """A document of the drill collection as the server sends it (types and field order)."""
    client = pymongo.MongoClient(stack.mongo_root_url, serverSelectionTimeoutMS=5000)
    try:
        options = CodecOptions(document_class=RawBSONDocument)
        db = client.get_database("classhub", codec_options=options)
        return db["backup_drill"].find_one(query).raw
    finally:
        client.close()


def test_restore_drill_into_a_fresh_deployment(source, backup, tmp_path_factory):
    path, _ = backup
    for target in files_stack(tmp_path_factory.mktemp("backup-target")):
        env = settings_env(target, path.parent)
        # as make restore does: nothing writes while the stores are replaced
        target.stop_hub()
        done = cli(env, "restore", str(path))
        assert_no_secret(target, done)
        assert done.returncode == 0, done.stderr
        assert "every table, collection, bucket and home matches the backup" in done.stderr

        # the same checksums, counted again here without the tool's own comparison
        s3 = s3_admin(target)
        for key, data in S3_OBJECTS.items():
            assert s3.get_object("classhub-files", key).read() == data
        stat_ = s3.stat_object(EXTRA_BUCKET, "meta.txt")
        assert stat_.content_type == "text/plain"
        assert stat_.metadata.get("x-amz-meta-origin") == "drill"
        client = pymongo.MongoClient(target.mongo_root_url, serverSelectionTimeoutMS=5000)
        try:
            drill = client["classhub"]["backup_drill"]
            assert drill.count_documents({}) == 50
            # the unique index on n (nx-27017 names indexes its own way)
            indexes = drill.index_information().values()
            assert [i.get("unique") for i in indexes if i["key"] == [("n", 1)]] == [True]
        finally:
            client.close()
        assert raw_document(target, {"small": 7}) == raw_document(source, {"small": 7})
        m = manifest.read(str(path))
        home = next(h for h in m.homes() if "-home-alice-" in h["volume"])
        restored = target.homes_dir / f"{target.prefix}-{home['suffix']}"
        assert (restored / "notebook.ipynb").read_text() == '{"cells": [], "v": 1}'
        assert os.stat(restored / "work" / "private.txt").st_uid == 1000
        assert stat.S_IMODE(os.stat(restored / "work" / "private.txt").st_mode) == 0o600

        # the restored deployment works: alice is known, her server finds her home
        target.start_hub()
        assert target.user_model("alice")["name"] == "alice"
        assert "class-py101" in target.user_model("alice")["groups"]
        target.spawn("alice")
        container = server_container(target, "alice")
        out = as_student(
            container,
            "cat notebook.ipynb; cmp work/deep/random.bin work/deep/random.bin && touch ok",
        )
        assert '"v": 1' in out
        target.stop("alice")


def test_single_home_restore_refused_while_running_then_done(source, backup):
    path, env = backup
    container = server_container(source, "alice")
    as_student(container, CHANGE_SCRIPT)

    done = cli(env, "restore-home", path.name, "--user", "alice")
    assert done.returncode == 1
    assert "alice's server is running" in done.stderr and "Nothing was changed" in done.stderr
    assert '"v": 2' in as_student(container, "cat notebook.ipynb")

    for user, server, message in [
        ("nobody", "", "has no home of 'nobody' for their default server"),
        ("alice", "py101", "has no home of 'alice' for server 'py101'"),
    ]:
        done = cli(
            env, "restore-home", "latest", "--user", user, *(["--server", server] if server else [])
        )
        assert done.returncode == 1 and message in done.stderr, done.stderr

    source.stop("alice")
    done = cli(env, "restore-home", "latest", "--user", "alice")
    assert done.returncode == 0, done.stderr
    assert "checksums match" in done.stderr
    assert_no_secret(source, done)
    print(done.stderr)  # the time it took, for the report (speed is not asserted here)

    source.spawn("alice")
    container = server_container(source, "alice")
    out = as_student(container, "cat notebook.ipynb; ls; echo more >> notebook.ipynb")
    assert '"v": 1' in out and "doomed.txt" in out and "new.txt" not in out
    source.stop("alice")


def test_a_damaged_archive_is_refused(source, backup, tmp_path):
    path, env = backup
    copy = tmp_path / "copy" / path.name
    shutil.copytree(path, copy)
    os.chmod(copy.parent, 0o700)
    m = manifest.read(str(copy))
    home = next(h for h in m.homes() if "-home-alice-" in h["volume"])
    archive = copy / home["file"]
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    done = cli(env, "restore-home", str(copy), "--user", "alice")
    assert done.returncode == 1
    assert "damaged" in done.stderr
    done = cli(env, "verify", str(copy))
    assert done.returncode == 2 and "damaged" in done.stderr
    assert json.loads((copy / "manifest.json").read_text())["name"] == path.name
