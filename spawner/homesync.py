"""Homes that follow their student across Swarm nodes: synced through the S3 store.

A Swarm node keeps a student's home in a local Docker volume. This machine's kernel has no
NFS (neither client nor server: ``/proc/filesystems`` lists no ``nfs``), so homes are not
on shared storage; the S3 store carries them between nodes instead:

- **stop**: after the student's service is removed, a one-shot service on the node that ran
  it packs the home into ``<prefix>/<home volume>/<generation>.tar.gz`` through a presigned
  PUT URL (no S3 key ever enters a container) and writes the generation into the home
  (``.classhub-home-generation``). The hub then checks the object's size against the home's
  limit, makes it the current generation and deletes the older ones. A failed or oversized
  save leaves the previous generation current.
- **start**: the student's container first runs :data:`RESTORE` with a presigned GET URL of
  the current generation. A home whose marker already names that generation (the same node
  as last time) is used as it is; any other is emptied and unpacked from the store.

Each generation is a new key, so a save never overwrites the copy a restore may be reading,
and the hub decides which copy counts. The URLs grant one object each for a few minutes.

Pure helpers and the in-container scripts first; the blocking S3 calls (the ``minio`` SDK)
run in the spawner's thread pool.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from common.s3 import make_bucket

#: the file in a home that names the generation it holds
MARKER = ".classhub-home-generation"
#: where a save packs the home before the upload (inside the home: no other disk is
#: writable in a hardened container), left out of the archive and removed afterwards
PACK = ".classhub-home-pack.tar.gz"

#: Run in the student's own container before its server (``python3 -I -c RESTORE CMD...``):
#: make the home hold generation ``CLASSHUB_HOME_GENERATION``, then exec the server. Its
#: worst case is the student's own home: it runs as the student, with their rights.
RESTORE = r"""
import os, shutil, sys, tarfile, urllib.error, urllib.request
home = os.environ.get("HOME", "/home/jovyan")
url = os.environ.pop("CLASSHUB_HOME_RESTORE_URL", "")
gen = os.environ.pop("CLASSHUB_HOME_GENERATION", "0")
marker = os.path.join(home, ".classhub-home-generation")
try:
    with open(marker) as f:
        local = f.read().strip()
except OSError:
    local = ""
if url and gen != "0" and local != gen:
    print("classhub: restoring home generation", gen, file=sys.stderr, flush=True)
    with urllib.request.urlopen(url, timeout=120) as resp:
        for name in os.listdir(home):
            path = os.path.join(home, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        with tarfile.open(fileobj=resp, mode="r|gz") as tar:
            for member in tar:
                name = member.name
                if name.startswith("/") or ".." in name.split("/"):
                    continue
                if not (member.isfile() or member.isdir() or member.issym()):
                    continue
                tar.extract(member, home, set_attrs=False)
    with open(marker, "w") as f:
        f.write(gen)
os.execvp(sys.argv[1], sys.argv[1:])
"""

#: Run in the one-shot save service (``python3 -I -c SAVE``), the home mounted at $HOME:
#: mark it with the new generation, pack it, refuse it when over the limit, upload it.
SAVE = r"""
import io, os, sys, tarfile, urllib.request
home = os.environ.get("HOME", "/home/jovyan")
url = os.environ["CLASSHUB_HOME_SAVE_URL"]
gen = os.environ["CLASSHUB_HOME_GENERATION"]
limit = int(os.environ["CLASSHUB_HOME_LIMIT"])
marker = ".classhub-home-generation"
pack = os.path.join(home, ".classhub-home-pack.tar.gz")
try:
    with tarfile.open(pack, "w:gz", compresslevel=1) as tar:
        for name in sorted(os.listdir(home)):
            if name not in (marker, ".classhub-home-pack.tar.gz"):
                tar.add(os.path.join(home, name), arcname=name)
        info = tarfile.TarInfo(marker)
        info.size = len(gen.encode())
        tar.addfile(info, io.BytesIO(gen.encode()))
    size = os.path.getsize(pack)
    if size > limit:
        sys.exit(f"classhub: home archive of {size} bytes is over the limit of {limit}")
    with open(pack, "rb") as body:
        req = urllib.request.Request(url, data=body, method="PUT")
        req.add_header("Content-Length", str(size))
        req.add_header("Content-Type", "application/gzip")
        with urllib.request.urlopen(req, timeout=600) as resp:
            resp.read()
    # only now: a home whose save failed keeps its old marker, so this node still counts
    # it newer than nothing and never replaces it with an older copy
    with open(os.path.join(home, marker), "w") as f:
        f.write(gen)
    print("classhub: saved home generation", gen, size, "bytes", flush=True)
finally:
    try:
        os.unlink(pack)
    except OSError:
        pass
"""

_KEY_RE = re.compile(r"^(?P<volume>[A-Za-z0-9][A-Za-z0-9_.-]*)/(?P<gen>[0-9]+)\.tar\.gz$")


def object_key(prefix: str, volume: str, generation: int) -> str:
    """The S3 key of one saved generation of a home volume."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", volume):
        raise ValueError(f"{volume!r} is not a home volume name")
    if generation < 1:
        raise ValueError("generations start at 1")
    return f"{prefix.strip('/')}/{volume}/{int(generation)}.tar.gz"


def generation_of(prefix: str, key: str) -> tuple[str, int] | None:
    """``(volume, generation)`` of a key :func:`object_key` made, else None."""
    head = prefix.strip("/") + "/"
    if not key.startswith(head):
        return None
    m = _KEY_RE.match(key[len(head) :])
    return (m.group("volume"), int(m.group("gen"))) if m else None


@dataclass(frozen=True)
class S3Place:
    """Where saved homes live: the store's address as the hub AND every node's containers
    reach it (presigned URLs are signed for this host), its keys and the bucket."""

    url: str
    access_key: str
    secret_key: str
    bucket: str
    prefix: str = "homes"

    def client(self):
        from urllib.parse import urlsplit

        from minio import Minio

        parts = urlsplit(self.url)
        return Minio(
            parts.netloc,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=parts.scheme == "https",
            region="us-east-1",
        )


# ----- blocking: run these in a thread pool


def ensure_bucket(place: S3Place) -> None:
    """Make the bucket when missing. An identity limited to the ``homes/`` keys of a
    bucket the deployment made (hub/stores/s3.py: ``homes``) may not ask: then it is
    there."""
    from minio.error import S3Error

    client = place.client()
    try:
        exists = client.bucket_exists(place.bucket)
    except S3Error as e:
        if e.code == "AccessDenied":
            return
        raise
    if not exists:
        make_bucket(client, place.bucket)  # several servers stopping at once all try


def presign(place: S3Place, method: str, volume: str, generation: int, minutes: int = 15) -> str:
    """A URL that GETs or PUTs one generation of one home, for ``minutes``."""
    client = place.client()
    key = object_key(place.prefix, volume, generation)
    expires = datetime.timedelta(minutes=minutes)
    if method == "GET":
        return client.presigned_get_object(place.bucket, key, expires=expires)
    if method == "PUT":
        return client.presigned_put_object(place.bucket, key, expires=expires)
    raise ValueError(method)


def saved_generations(place: S3Place, volume: str) -> dict[int, int]:
    """``{generation: size in bytes}`` of every saved copy of ``volume``."""
    from minio.error import S3Error

    client = place.client()
    out = {}
    prefix = f"{place.prefix.strip('/')}/{volume}/"
    try:
        objects = list(client.list_objects(place.bucket, prefix=prefix))
    except S3Error as e:
        if e.code == "NoSuchBucket":  # nothing was ever saved
            return out
        raise
    for obj in objects:
        found = generation_of(place.prefix, obj.object_name)
        if found and found[0] == volume:
            out[found[1]] = obj.size
    return out


def saved_volumes(place: S3Place) -> set[str]:
    """The home volumes with at least one saved copy (one listing of the homes' keys)."""
    from minio.error import S3Error

    client = place.client()
    try:
        objects = client.list_objects(
            place.bucket, prefix=place.prefix.strip("/") + "/", recursive=True
        )
        found = {generation_of(place.prefix, obj.object_name) for obj in objects}
    except S3Error as e:
        if e.code == "NoSuchBucket":
            return set()
        raise
    return {f[0] for f in found if f}


def accept(place: S3Place, volume: str, generation: int, limit: int) -> bool:
    """After a save: True when generation ``generation`` is there and within ``limit``
    (it becomes current and older copies are deleted); an oversized copy is deleted."""
    client = place.client()
    saved = saved_generations(place, volume)
    size = saved.get(generation)
    if size is None:
        return False
    if size > limit:
        client.remove_object(place.bucket, object_key(place.prefix, volume, generation))
        return False
    for older in saved:
        if older < generation:
            client.remove_object(place.bucket, object_key(place.prefix, volume, older))
    return True


def latest_generation(place: S3Place, volume: str) -> int:
    """The newest saved generation of ``volume`` (0: never saved)."""
    return max(saved_generations(place, volume), default=0)


#: where ``classhub-backup restore-home`` puts a home's archive from a backup for the hub
#: to adopt (:func:`adopt`); under the homes' prefix, so the hub's homes identity reaches
#: it, and never a generation's key (a volume name never starts with a dot)
STAGING = ".restore"


def staged_key(prefix: str, volume: str, token: str) -> str:
    """The key an archive of ``volume`` waits under before the hub adopts it."""
    object_key(prefix, volume, 1)  # checks the volume's name
    if not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", token):
        raise ValueError("a staging token is 8 to 64 letters, digits, _ or -")
    return f"{prefix.strip('/')}/{STAGING}/{volume}/{token}.tar.gz"


def is_staged_key(prefix: str, volume: str, key: str) -> bool:
    """Whether ``key`` is one :func:`staged_key` makes for ``volume``."""
    head = f"{prefix.strip('/')}/{STAGING}/{volume}/"
    return key.startswith(head) and bool(
        re.fullmatch(r"[A-Za-z0-9_-]{8,64}\.tar\.gz", key[len(head) :])
    )


def adopt(place: S3Place, volume: str, staged: str, limit: int) -> tuple[int, int]:
    """Make the archive at ``staged`` the newest generation of ``volume`` (a restore from
    a backup): copied to generation latest+1, which the next start restores; older
    generations and the staged copy are deleted. ``(generation, size)``; generation 0 when
    nothing was adopted: the staged archive is missing (size -1) or over ``limit`` (then
    deleted). Run it under the lock that orders the home's saves."""
    from minio.commonconfig import CopySource
    from minio.error import S3Error

    client = place.client()
    try:
        size = client.stat_object(place.bucket, staged).size
    except S3Error as e:
        if e.code in ("NoSuchKey", "NoSuchBucket"):
            return 0, -1
        raise
    if size > limit:
        client.remove_object(place.bucket, staged)
        return 0, size
    generation = latest_generation(place, volume) + 1
    key = object_key(place.prefix, volume, generation)
    client.copy_object(place.bucket, key, CopySource(place.bucket, staged))
    try:
        accepted = accept(place, volume, generation, limit)
    except BaseException:
        # not made current: the copy goes again, so no half-done restore counts as newest
        client.remove_object(place.bucket, key)
        raise
    client.remove_object(place.bucket, staged)
    return (generation if accepted else 0), size
