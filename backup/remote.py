"""Backups kept in an S3 bucket as well (``CLASSHUB_BACKUP_REMOTE=s3://bucket/prefix``).

After a backup is complete in ``CLASSHUB_BACKUP_DIR`` it is copied to
``<prefix>/<name>/<file>`` in the bucket of another store than the stack's (its own
endpoint and keys: a backup in the store it backs up does not survive that store), the
manifest last, so a backup in the bucket is complete once its ``manifest.json`` is there.
``list`` shows the bucket's backups too; a restore of a backup that is not on this machine
fetches it first (into ``CLASSHUB_BACKUP_DIR``, every checksum checked against its
manifest before anything is restored). The bucket keeps as many as the folder
(``CLASSHUB_BACKUP_KEEP``). The SDK calls block: the command line runs them one by one.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from urllib.parse import urlsplit

from minio.error import S3Error

from . import manifest
from .manifest import BackupError
from .s3 import Store

log = logging.getLogger("classhub.backup")


@dataclass(frozen=True)
class Remote:
    store: Store
    bucket: str
    prefix: str  # "" or "some/folder" (no slash at either end)

    @classmethod
    def from_settings(cls, settings) -> Remote | None:
        if not settings.remote:
            return None
        parts = urlsplit(settings.remote)
        bucket, prefix = parts.netloc, parts.path.strip("/")
        if parts.scheme != "s3" or not bucket:
            raise BackupError(
                f"CLASSHUB_BACKUP_REMOTE must look like s3://bucket/folder, not {settings.remote!r}"
            )
        if not (settings.remote_endpoint and settings.remote_access_key):
            raise BackupError(
                "CLASSHUB_BACKUP_REMOTE needs its store: CLASSHUB_BACKUP_REMOTE_ENDPOINT, "
                "CLASSHUB_BACKUP_REMOTE_ACCESS_KEY and CLASSHUB_BACKUP_REMOTE_SECRET_KEY"
            )
        store = Store(
            settings.remote_endpoint, settings.remote_access_key, settings.remote_secret_key
        )
        return cls(store, bucket, prefix)

    def key(self, name: str, relpath: str = "") -> str:
        head = f"{self.prefix}/{name}" if self.prefix else name
        return f"{head}/{relpath}" if relpath else head + "/"


def names(remote: Remote, timeout: float) -> list[str]:
    """The complete backups in the bucket (those whose manifest is there), oldest first."""
    client, http = remote.store.client(timeout)
    try:
        top = remote.prefix + "/" if remote.prefix else ""
        found = []
        for obj in client.list_objects(remote.bucket, prefix=top):
            name = obj.object_name[len(top) :].rstrip("/")
            if obj.is_dir and manifest.NAME.match(name):
                found.append(name)
        complete = []
        for name in found:
            try:
                client.stat_object(remote.bucket, remote.key(name, manifest.MANIFEST))
            except S3Error as e:
                if e.code != "NoSuchKey":
                    raise
                continue
            complete.append(name)
        return sorted(complete)
    finally:
        http.clear()


def push(remote: Remote, directory: str, keep: int, timeout: float) -> int:
    """Copy the complete backup in ``directory`` into the bucket (the manifest last), then
    delete the bucket's backups beyond the newest ``keep``; how many files were copied."""
    m = manifest.read(directory)
    client, http = remote.store.client(timeout)
    try:
        if not client.bucket_exists(remote.bucket):
            client.make_bucket(remote.bucket)
        for relpath in sorted(m.files):
            client.fput_object(
                remote.bucket, remote.key(m.name, relpath), os.path.join(directory, relpath)
            )
        client.fput_object(
            remote.bucket,
            remote.key(m.name, manifest.MANIFEST),
            os.path.join(directory, manifest.MANIFEST),
            content_type="application/json",
        )
    finally:
        http.clear()
    if keep > 0:
        for old in manifest.to_prune(names(remote, timeout), keep):
            delete(remote, old, timeout)
            log.info(
                "deleted the old backup %s from s3://%s (keeping %d)", old, remote.bucket, keep
            )
    return len(m.files) + 1


def delete(remote: Remote, name: str, timeout: float) -> None:
    client, http = remote.store.client(timeout)
    try:
        # the manifest first: a half-deleted backup is an incomplete one, never listed
        client.remove_object(remote.bucket, remote.key(name, manifest.MANIFEST))
        for obj in client.list_objects(remote.bucket, prefix=remote.key(name), recursive=True):
            client.remove_object(remote.bucket, obj.object_name)
    finally:
        http.clear()


def pull(remote: Remote, name: str, backup_dir: str, timeout: float) -> str:
    """Fetch the bucket's backup ``name`` into ``backup_dir/<name>`` (through a
    ``.partial`` folder, every file checked against the manifest); its path."""
    final = os.path.join(backup_dir, name)
    work = final + manifest.PARTIAL
    if os.path.lexists(work):
        shutil.rmtree(work)
    os.makedirs(work, mode=0o700)
    client, http = remote.store.client(timeout)
    try:
        client.fget_object(
            remote.bucket,
            remote.key(name, manifest.MANIFEST),
            os.path.join(work, manifest.MANIFEST),
        )
        m = manifest.read(work)
        for relpath in sorted(m.files):
            target = os.path.join(work, relpath)
            if not os.path.realpath(target).startswith(os.path.realpath(work) + os.sep):
                raise BackupError(f"the manifest of {name} names a file outside it: {relpath!r}")
            os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
            client.fget_object(remote.bucket, remote.key(name, relpath), target)
    except S3Error as e:
        raise BackupError(
            f"backup {name} could not be fetched from s3://{remote.bucket}: {e.code}"
        ) from None
    finally:
        http.clear()
    found = {rel: manifest.file_digest(os.path.join(work, rel)) for rel in m.files}
    problems = manifest.check_files(m, found)
    if problems:
        raise BackupError(
            f"backup {name} in the bucket is damaged (kept in {work}):\n  " + "\n  ".join(problems)
        )
    os.rename(work, final)
    log.info("fetched backup %s from s3://%s (%d files)", name, remote.bucket, len(m.files))
    return final
