"""The S3 store: every object of every bucket, with the ``minio`` SDK and the store's
administrator identity.

Objects are stored once per content, ``s3/objects/<sha256>``, and ``s3/index.json`` lists
each bucket's objects (key, size, checksum, content type, user metadata): keys may hold
any character, and one content shared by many keys (a material pushed to a class) is
kept once. Each object is read whole with one GET, so it is consistent; an object
deleted between the listing and its GET is left out (the manifest counts them). Bucket
policies and the store's identities are not in the backup: ``make up`` writes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import urllib3
from minio import Minio
from minio.error import S3Error

from .manifest import BackupError

INDEX = "index.json"


@dataclass(frozen=True)
class Store:
    endpoint: str
    access_key: str
    secret_key: str

    def client(self, timeout: float) -> tuple[Minio, urllib3.PoolManager]:
        scheme, _, host = self.endpoint.partition("://")
        if scheme not in ("http", "https") or not host:
            raise BackupError(f"the S3 endpoint must be http(s)://host:port, got {self.endpoint!r}")
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10, read=timeout),
            retries=urllib3.Retry(
                total=3, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504)
            ),
        )
        client = Minio(
            host.rstrip("/"),
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=scheme == "https",
            region="us-east-1",
            http_client=http,
        )
        return client, http


def bucket_fingerprint(objects: Iterable[dict]) -> dict:
    """``{"count", "bytes", "sha256"}`` of a bucket from its objects' keys, sizes and
    content checksums (in key order)."""
    h = hashlib.sha256()
    count = total = 0
    for obj in sorted(objects, key=lambda o: o["key"]):
        count += 1
        total += obj["size"]
        h.update(f"{obj['key']}\0{obj['size']}\0{obj['sha256']}\n".encode())
    return {"count": count, "bytes": total, "sha256": h.hexdigest()}


def _metadata(headers) -> dict[str, str]:
    return {
        k[len("x-amz-meta-") :]: v
        for k, v in headers.items()
        if k.lower().startswith("x-amz-meta-")
    }


def download(client: Minio, bucket: str, key: str, folder: str) -> dict | None:
    """The object into ``folder/<sha256>`` (kept once); its index entry, or None when it
    was deleted meanwhile."""
    temp = os.path.join(folder, f".part-{secrets.token_hex(6)}")
    try:
        response = client.get_object(bucket, key)
    except S3Error as e:
        if e.code == "NoSuchKey":
            return None
        raise
    h = hashlib.sha256()
    size = 0
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            for block in response.stream(1 << 20):
                h.update(block)
                f.write(block)
                size += len(block)
        entry = {
            "key": key,
            "size": size,
            "sha256": h.hexdigest(),
            "content_type": response.headers.get("Content-Type", "application/octet-stream"),
            "metadata": _metadata(response.headers),
        }
    finally:
        response.close()
        response.release_conn()
    final = os.path.join(folder, entry["sha256"])
    if os.path.exists(final):
        os.unlink(temp)
    else:
        os.replace(temp, final)
    return entry


def dump(store: Store, target: str, timeout: float) -> dict:
    """Every bucket's objects into ``target``; ``{"fingerprint", "buckets", "vanished"}``."""
    client, http = store.client(timeout)
    objects_dir = os.path.join(target, "objects")
    os.makedirs(objects_dir, mode=0o700, exist_ok=True)
    index: dict[str, list[dict]] = {}
    vanished = 0
    try:
        for bucket in sorted(b.name for b in client.list_buckets()):
            entries = []
            for obj in client.list_objects(bucket, recursive=True):
                if obj.is_dir:
                    continue
                entry = download(client, bucket, obj.object_name, objects_dir)
                if entry is None:
                    vanished += 1
                else:
                    entries.append(entry)
            index[bucket] = sorted(entries, key=lambda e: e["key"])
    except (S3Error, urllib3.exceptions.HTTPError) as e:
        raise BackupError(f"the S3 store could not be read: {e}") from None
    finally:
        http.clear()
    fd = os.open(os.path.join(target, INDEX), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"buckets": index}, f, indent=1)
    return {
        "fingerprint": {b: bucket_fingerprint(e) for b, e in index.items()},
        "buckets": sorted(index),
        "vanished": vanished,
    }


def add_to_index(target: str, bucket: str, entries: list[dict]) -> dict:
    """Add ``entries`` (objects read into ``target/objects`` after the dump) to the
    bucket's list in the dump's index; the bucket's new fingerprint."""
    path = os.path.join(target, INDEX)
    with open(path, encoding="utf-8") as f:
        index = json.load(f)["buckets"]
    known = {e["key"] for e in index.get(bucket, [])}
    merged = index.get(bucket, []) + [e for e in entries if e["key"] not in known]
    index[bucket] = sorted(merged, key=lambda e: e["key"])
    temp = path + ".new"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"buckets": index}, f, indent=1)
    os.replace(temp, path)
    return bucket_fingerprint(index[bucket])


def read_index(source: str) -> dict[str, list[dict]]:
    with open(os.path.join(source, INDEX), encoding="utf-8") as f:
        return json.load(f)["buckets"]


def restore(store: Store, source: str, timeout: float) -> list[str]:
    """Make each backed-up bucket hold exactly its objects in the backup (made if
    missing; objects the backup does not have are deleted)."""
    client, http = store.client(timeout)
    done = []
    try:
        for bucket, entries in sorted(read_index(source).items()):
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
            keys = {e["key"] for e in entries}
            extra = [
                o.object_name
                for o in client.list_objects(bucket, recursive=True)
                if not o.is_dir and o.object_name not in keys
            ]
            for key in extra:
                client.remove_object(bucket, key)
            for e in entries:
                path = os.path.join(source, "objects", e["sha256"])
                with open(path, "rb") as f:
                    client.put_object(
                        bucket,
                        e["key"],
                        f,
                        e["size"],
                        content_type=e.get("content_type") or "application/octet-stream",
                        metadata=e.get("metadata") or None,
                    )
            done.append(f"{bucket}: {len(entries)} objects, {len(extra)} removed")
        return done
    except (S3Error, urllib3.exceptions.HTTPError) as e:
        raise BackupError(f"restoring the S3 store failed: {e}") from None
    finally:
        http.clear()


def digest(client: Minio, bucket: str, key: str) -> tuple[int, str]:
    """``(size, sha256)`` of one object, read whole."""
    response = client.get_object(bucket, key)
    h = hashlib.sha256()
    size = 0
    try:
        for block in response.stream(1 << 20):
            h.update(block)
            size += len(block)
    finally:
        response.close()
        response.release_conn()
    return size, h.hexdigest()


def current_fingerprint(store: Store, timeout: float, buckets: Iterable[str] | None = None) -> dict:
    """The fingerprint of the store as it is now (every object read and hashed)."""
    client, http = store.client(timeout)
    out = {}
    try:
        names = sorted(b.name for b in client.list_buckets()) if buckets is None else buckets
        for bucket in names:
            if not client.bucket_exists(bucket):
                continue
            entries = []
            for obj in client.list_objects(bucket, recursive=True):
                if obj.is_dir:
                    continue
                size, sha256 = digest(client, bucket, obj.object_name)
                entries.append({"key": obj.object_name, "size": size, "sha256": sha256})
            out[bucket] = bucket_fingerprint(entries)
        return out
    finally:
        http.clear()
