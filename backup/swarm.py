"""Student homes of a Swarm stack in a backup, and the restore of one.

On a Swarm a home is not on one homes filesystem: a stopped home's newest files are its
saved copy in the S3 store (``homes/<volume>/<generation>.tar.gz``, spawner/homesync.py),
a running server's are in a volume on its worker. So a backup:

1. asks the hub to save every home whose newest files are on a worker into the store now
   (hub/backup_api.py ``swarm-homes-save``), before anything else is read, so that the
   hub's database in the backup already knows those homes are in the store;
2. backs the store up with the rest (the S3 part: every object, homes included);
3. lists each home's newest archive in the backup's S3 objects as the homes part (one
   removed from the store between the listing and its read, a server stopping at that
   moment, is fetched again as it is now).

A running server's home is saved while the student works: each file as it is when it is
read (on one machine a btrfs snapshot fixes the whole home at one instant). A home that
cannot be saved (its node drained, the store down) is a warning; the backup then holds
its last saved copy.

A home's restore puts its archive from the backup beside its saved copies in the store
(:func:`spawner.homesync.staged_key`, with the store's administrator keys) and asks the
hub to make it the newest one (``swarm-homes/<user>/<server>/restore``): the next start
restores it on whichever worker runs it. Refused while the server runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import urllib.error
import urllib.request
from urllib.parse import quote

from spawner import homesync

from . import manifest, s3
from .manifest import BackupError

log = logging.getLogger("classhub.backup")

#: the homes' keys in their bucket (spawner/homesync.py S3Place.prefix)
PREFIX = "homes"


# ----- the hub's backup API


def hub_call(hub_url: str, token: str, path: str, body: dict, timeout: float) -> dict:
    """POST ``body`` to the hub's API at ``path``; its JSON answer. The hub's refusal is a
    :class:`BackupError` with the hub's own words."""
    if not hub_url.startswith(("http://", "https://")):
        raise BackupError(f"the hub's API must be an http(s) URL, not {hub_url!r}")
    request = urllib.request.Request(  # noqa: S310 (http(s) only: checked above)
        hub_url.rstrip("/") + "/" + path.lstrip("/"),
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read()[:4096]).get("message", "")
        except (ValueError, AttributeError):
            message = ""
        raise BackupError(f"the hub answered {e.code}: {message or e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise BackupError(f"the hub's API at {hub_url} cannot be reached: {e}") from None


def save_every_home(hub_url: str, token: str, timeout: float) -> list[dict]:
    """Every home into the store now (the hub saves them); one entry per home it tried,
    with ``saved`` and ``error``."""
    answer = hub_call(hub_url, token, "classhub/swarm-homes-save", {}, timeout)
    homes = answer.get("homes", [])
    log.info(
        "homes saved into the store by the hub: %d, not saved: %d",
        answer.get("saved", 0),
        answer.get("failed", 0),
    )
    return homes


# ----- the homes part of a backup


def newest_archives(index: dict[str, list[dict]], bucket: str) -> dict[str, dict]:
    """``{volume: index entry}`` of the newest generation of each home in the backup's S3
    index (pure)."""
    newest: dict[str, tuple[int, dict]] = {}
    for entry in index.get(bucket, []):
        found = homesync.generation_of(PREFIX, entry["key"])
        if found is None:
            continue
        volume, generation = found
        if volume not in newest or generation > newest[volume][0]:
            newest[volume] = (generation, entry)
    return {volume: entry for volume, (_, entry) in newest.items()}


def archive_fingerprint(size: int, sha256: str) -> dict:
    """A Swarm home's fingerprint: its archive's (a restore puts that archive back whole)."""
    return {"count": 1, "bytes": size, "sha256": sha256}


def homes_part(
    index: dict[str, list[dict]],
    bucket: str,
    deployment: str,
    saves: list[dict],
    fetch,
    warnings: list[str],
) -> dict:
    """The homes part of a Swarm backup from its S3 index; ``fetch(volume)`` reads a
    home's newest copy from the store now into the backup's objects (an index entry, or
    None) for a home the hub saved that the S3 part missed."""
    archives = newest_archives(index, bucket)
    for save in saves:
        if not save.get("saved"):
            warnings.append(
                f"home {save.get('volume')} of {save.get('user')} NOT saved for this backup "
                f"({save.get('error') or 'unknown'}): the backup holds its last saved copy"
                + ("" if save.get("volume") in archives else " (none)")
            )
        elif save.get("volume") and save["volume"] not in archives:
            entry = fetch(save["volume"])
            if entry is None:
                warnings.append(f"home {save['volume']} NOT backed up: it left the store")
            else:
                archives[save["volume"]] = entry
    homes = []
    for volume, entry in sorted(archives.items()):
        homes.append(
            {
                "volume": volume,
                "suffix": manifest.home_suffix(volume, deployment),
                "file": f"s3/objects/{entry['sha256']}",
                "key": entry["key"],
                "fingerprint": archive_fingerprint(entry["size"], entry["sha256"]),
            }
        )
    return {"prefix": deployment, "mode": "swarm", "bucket": bucket, "homes": homes}


def fetch_newest(store: s3.Store, bucket: str, volume: str, objects_dir: str, timeout: float):
    """The newest saved copy of ``volume`` into ``objects_dir`` (by its checksum); its
    index entry, or None when the store has none."""
    client, http = store.client(timeout)
    try:
        keys = [
            o.object_name
            for o in client.list_objects(bucket, prefix=f"{PREFIX}/{volume}/", recursive=True)
        ]
        found = [homesync.generation_of(PREFIX, k) for k in keys]
        generations = [g for v, g in filter(None, found) if v == volume]
        if not generations:
            return None
        key = homesync.object_key(PREFIX, volume, max(generations))
        return s3.download(client, bucket, key, objects_dir)
    finally:
        http.clear()


# ----- the restore of one home


def restore_one_home(
    store: s3.Store,
    bucket: str,
    hub_url: str,
    token: str,
    directory: str,
    home: dict,
    volume: str,
    user: str,
    server: str,
    timeout: float,
) -> dict:
    """Put ``home``'s archive from the backup in ``directory`` into the store's ``bucket``
    beside ``volume``'s saved copies and have the hub make it the newest. The staged copy is
    removed again when the hub refuses. ``{"volume", "generation", "fingerprint"}``."""
    path = os.path.join(directory, home["file"])
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    size = os.path.getsize(path)
    if archive_fingerprint(size, h.hexdigest()) != home["fingerprint"]:
        raise BackupError(f"the archive of {home['volume']} in the backup is damaged")
    key = homesync.staged_key(PREFIX, volume, secrets.token_hex(12))
    client, http = store.client(timeout)
    try:
        # what an interrupted restore of this home left staged
        staging = f"{PREFIX}/{homesync.STAGING}/{volume}/"
        for old in client.list_objects(bucket, prefix=staging, recursive=True):
            client.remove_object(bucket, old.object_name)
        with open(path, "rb") as f:
            client.put_object(bucket, key, f, size, content_type="application/gzip")
        try:
            answer = hub_call(
                hub_url,
                token,
                f"classhub/swarm-homes/{quote(user, safe='')}/{quote(server, safe='')}/restore",
                {"key": key},
                timeout,
            )
        except BaseException:
            # refused, or no answer: never leave it staged (the hub removes what it adopts)
            client.remove_object(bucket, key)
            raise
    finally:
        http.clear()
    return {
        "volume": volume,
        "generation": answer.get("generation"),
        "fingerprint": home["fingerprint"],
    }


def current_fingerprints(store: s3.Store, bucket: str, volumes: list[str], timeout: float):
    """``{volume: fingerprint}`` of the newest saved copy of each of ``volumes`` now."""
    client, http = store.client(timeout)
    out = {}
    try:
        for volume in volumes:
            keys = [
                o
                for o in client.list_objects(bucket, prefix=f"{PREFIX}/{volume}/", recursive=True)
                if homesync.generation_of(PREFIX, o.object_name)
            ]
            if not keys:
                continue
            newest = max(keys, key=lambda o: homesync.generation_of(PREFIX, o.object_name)[1])
            out[volume] = archive_fingerprint(*s3.digest(client, bucket, newest.object_name))
        return out
    finally:
        http.clear()


# ----- a whole restore


def latest_generations(store: s3.Store, bucket: str, timeout: float) -> dict[str, int]:
    """``{volume: newest generation}`` of every home in the store now."""
    from minio.error import S3Error

    client, http = store.client(timeout)
    out: dict[str, int] = {}
    try:
        for obj in client.list_objects(bucket, prefix=PREFIX + "/", recursive=True):
            found = homesync.generation_of(PREFIX, obj.object_name)
            if found and found[1] > out.get(found[0], 0):
                out[found[0]] = found[1]
    except S3Error as e:
        if e.code != "NoSuchBucket":
            raise
    finally:
        http.clear()
    return out


def renumber_restored(
    store: s3.Store,
    bucket: str,
    restored: dict[str, int],
    before: dict[str, int],
    now: float,
    timeout: float,
) -> list[str]:
    """After a whole restore: move each home's restored copy (``restored``: volume → its
    generation) to a number no copy of that home ever had: the newest the store had before
    the restore (``before``) or the backup's, whichever is larger, plus the Unix time
    ``now``. A worker may still hold the home's volume from before (of this stack, or of
    the one a fresh stack replaces), marked with a generation and holding files newer than
    the backup; a start compares only the numbers, and would keep those files instead of
    restoring the backup's. (Saves add 1 and take more than a second each, and each
    restore adds the time it runs at: no number a worker saw can reach the new one.)
    Lines for the log."""
    from minio.commonconfig import CopySource

    client, http = store.client(timeout)
    done = []
    try:
        for volume, generation in sorted(restored.items()):
            fresh = max(before.get(volume, 0), generation) + int(now)
            old_key = homesync.object_key(PREFIX, volume, generation)
            client.copy_object(
                bucket, homesync.object_key(PREFIX, volume, fresh), CopySource(bucket, old_key)
            )
            client.remove_object(bucket, old_key)
            done.append(f"home {volume}: the backup's copy is now saved copy {fresh}")
    finally:
        http.clear()
    return done
