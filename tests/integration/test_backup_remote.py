"""Backups kept in an S3 bucket as well (backup/remote.py), against a real store
(SeaweedFS): a complete backup is copied there with its manifest last, a restore of one
that is only in the bucket fetches it with every checksum checked, a damaged copy is
refused, and the bucket keeps as many as the folder."""

from __future__ import annotations

import io
import os
import secrets
import shutil

import pytest
from minio import Minio

from backup import manifest, remote, run
from backup.manifest import BackupError, Manifest
from backup.settings import BackupSettings
from harness.stack import start_s3

pytestmark = pytest.mark.integration

ACCESS, SECRET = "chbk" + secrets.token_hex(4), secrets.token_hex(20)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    proc, port = start_s3(tmp_path_factory.mktemp("s3"), ACCESS, SECRET)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.stop()


def _settings(tmp_path, address: str, keep: int = 7) -> BackupSettings:
    return BackupSettings(
        backup_dir=str(tmp_path / "backups"),
        keep=keep,
        remote=f"s3://offsite-{secrets.token_hex(3)}/classhub/nightly",
        remote_endpoint=f"http://{address}",
        remote_access_key=ACCESS,
        remote_secret_key=SECRET,
    )


def _a_backup(settings: BackupSettings, name: str) -> str:
    """A complete backup folder as classhub-backup makes one: files and their manifest."""
    folder = os.path.join(settings.backup_dir, name)
    os.makedirs(os.path.join(folder, "homes"), mode=0o700)
    with open(os.path.join(folder, "homes", "ch-home-ann.tar.gz"), "wb") as f:
        f.write(os.urandom(3 << 20))
    with open(os.path.join(folder, "postgres.dump"), "wb") as f:
        f.write(b"a dump of " + name.encode())
    m = Manifest(name=name, created=0.0, deployment="ch")
    run._record_files(folder, m)
    manifest.write(folder, m)
    return folder


def test_a_backup_goes_to_the_bucket_and_comes_back_with_every_checksum(store, tmp_path):
    settings = _settings(tmp_path, store)
    bucket = remote.Remote.from_settings(settings)
    folder = _a_backup(settings, "20261207T010000Z")
    assert remote.push(bucket, folder, settings.keep, 30) == 3
    assert remote.names(bucket, 30) == ["20261207T010000Z"]
    before = {
        rel: manifest.file_digest(os.path.join(folder, rel))
        for rel in ("homes/ch-home-ann.tar.gz", "postgres.dump")
    }
    shutil.rmtree(folder)  # the machine lost it
    again = run.locate(settings, "latest")
    assert again == folder
    for rel, digest in before.items():
        assert manifest.file_digest(os.path.join(again, rel)) == digest
    assert manifest.read(again).name == "20261207T010000Z"


def test_a_damaged_copy_in_the_bucket_is_refused_and_kept_apart(store, tmp_path):
    settings = _settings(tmp_path, store)
    bucket = remote.Remote.from_settings(settings)
    folder = _a_backup(settings, "20261207T020000Z")
    remote.push(bucket, folder, settings.keep, 30)
    shutil.rmtree(folder)
    client = Minio(store, ACCESS, SECRET, secure=False)
    client.put_object(
        bucket.bucket, bucket.key("20261207T020000Z", "postgres.dump"), io.BytesIO(b"x"), 1
    )
    with pytest.raises(BackupError, match="damaged"):
        run.locate(settings, "20261207T020000Z")
    assert not os.path.exists(folder)  # never taken for a complete backup
    assert os.path.isdir(folder + manifest.PARTIAL)


def test_the_bucket_keeps_as_many_as_the_folder_and_lists_only_complete_ones(store, tmp_path):
    settings = _settings(tmp_path, store, keep=2)
    bucket = remote.Remote.from_settings(settings)
    for hour in ("03", "04", "05"):
        remote.push(bucket, _a_backup(settings, f"20261207T{hour}0000Z"), settings.keep, 30)
    assert remote.names(bucket, 30) == ["20261207T040000Z", "20261207T050000Z"]
    client = Minio(store, ACCESS, SECRET, secure=False)
    assert not list(
        client.list_objects(bucket.bucket, prefix=bucket.key("20261207T030000Z"), recursive=True)
    )
    # a copy that stopped before its manifest is not a backup
    client.put_object(
        bucket.bucket, bucket.key("20261207T060000Z", "postgres.dump"), io.BytesIO(b"x"), 1
    )
    assert remote.names(bucket, 30) == ["20261207T040000Z", "20261207T050000Z"]


def test_a_remote_that_is_not_a_bucket_address_is_refused_with_the_fix(tmp_path):
    from traitlets import TraitError

    with pytest.raises(TraitError, match="s3://bucket/folder"):
        BackupSettings(backup_dir=str(tmp_path), remote="https://example.org/x")
    settings = BackupSettings(backup_dir=str(tmp_path), remote="s3://b/x")
    with pytest.raises(BackupError, match="CLASSHUB_BACKUP_REMOTE_ENDPOINT"):
        remote.Remote.from_settings(settings)
