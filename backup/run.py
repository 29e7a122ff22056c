"""A whole backup, a whole restore, and the restore of one home: the steps in order.

Each function takes the settings (:class:`backup.settings.BackupSettings`) and a logger;
what it did goes to the log, what went wrong is raised as :class:`BackupError` (a
message an admin can act on) or returned as a list of problems.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from common import clock
from common.naming import object_name
from hub.stores.postgres import HUB
from spawner import homesync

from . import homes, manifest, mongo, postgres, remote, s3, swarm
from .manifest import BackupError, Manifest

log = logging.getLogger("classhub.backup")


def _private_dir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def _store(settings) -> s3.Store | None:
    if not settings.s3_endpoint:
        return None
    if not (settings.s3_access_key and settings.s3_secret_key):
        raise BackupError(
            "the S3 store needs the administrator keys: set CLASSHUB_BACKUP_S3_ACCESS_KEY and "
            "CLASSHUB_BACKUP_S3_SECRET_KEY (make backup takes them from .run/classhub.env)"
        )
    return s3.Store(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key)


def _record_files(directory: str, m: Manifest) -> None:
    for folder, _, files in os.walk(directory):
        for name in sorted(files):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, directory)
            if rel == manifest.MANIFEST:
                continue
            os.chmod(path, 0o600)
            size, digest = manifest.file_digest(path)
            m.add_file(rel, size, digest)
        os.chmod(folder, 0o700)


# ----- backup


def backup(
    settings, parts: Iterable[str] = manifest.PARTS, include: Iterable[tuple[str, str]] = ()
) -> tuple[str, Manifest]:
    """One backup of every part asked for into ``<backup_dir>/<name>``; returns its path
    and manifest. A part that is not configured is left out (the manifest's warnings say
    so); a home that cannot be archived is a warning too, the others go on. ``include``:
    ``(name, path)`` of files or folders kept beside the data in ``config/`` (the
    deployment's settings and secrets, the hub's state)."""
    parts = set(parts)
    old_umask = os.umask(0o077)
    try:
        _private_dir(settings.backup_dir)
        started = clock.now()
        name = manifest.backup_name(started)
        final = os.path.join(settings.backup_dir, name)
        work = final + manifest.PARTIAL
        if os.path.lexists(final) or os.path.lexists(work):
            raise BackupError(f"{final} exists already: wait a second and run it again")
        os.mkdir(work, 0o700)
        try:
            return _backup_into(settings, parts, include, name, started, work, final)
        except BaseException:
            log.error(
                "the backup did not finish; what it wrote is in %s (delete it when you have "
                "looked at it)",
                work,
            )
            raise
    finally:
        os.umask(old_umask)


def _backup_into(settings, parts, include, name, started, work, final) -> tuple[str, Manifest]:
    m = Manifest(name=name, created=started, deployment=settings.deployment)
    t0 = time.monotonic()
    saves: list[dict] = []
    if "homes" in parts and settings.hub_url:
        # a Swarm: every home into the store first (backup/swarm.py), before the hub's
        # database is read, so that the database in the backup knows they are there
        if "s3" not in parts:
            raise BackupError(
                "on a Swarm the homes are backed up with the S3 store: --only s3,homes"
            )
        saves = swarm.save_every_home(settings.hub_url, settings.hub_token, settings.timeout)

    if "postgres" in parts:
        if settings.pg_url:
            server = postgres.Server.from_url(settings.pg_url)
            folder = os.path.join(work, "postgres")
            os.mkdir(folder, 0o700)
            dbs = {}
            for db in postgres.databases(server):
                target = os.path.join(folder, f"{db}.dump")
                dbs[db] = postgres.dump(server, db, target, settings.timeout)
                log.info("PostgreSQL %s: %d tables and sequences", db, len(dbs[db]["fingerprint"]))
            m.parts["postgres"] = {"databases": dbs}
        else:
            m.warnings.append("PostgreSQL left out: CLASSHUB_BACKUP_PG_URL is not set")

    if "mongo" in parts:
        if settings.mongo_url:
            folder = os.path.join(work, "mongo")
            os.mkdir(folder, 0o700)
            m.parts["mongo"] = mongo.dump(settings.mongo_url, folder, settings.timeout)
            log.info(
                "MongoDB: %d collections (%s)",
                len(m.parts["mongo"]["fingerprint"]),
                m.parts["mongo"]["consistency"],
            )
        else:
            m.warnings.append("MongoDB left out: CLASSHUB_BACKUP_MONGO_URL is not set")

    if "s3" in parts:
        store = _store(settings)
        if store is not None:
            folder = os.path.join(work, "s3")
            os.mkdir(folder, 0o700)
            m.parts["s3"] = s3.dump(store, folder, settings.timeout)
            objects = sum(f["count"] for f in m.parts["s3"]["fingerprint"].values())
            log.info("S3: %d buckets, %d objects", len(m.parts["s3"]["buckets"]), objects)
        else:
            m.warnings.append("the S3 store left out: CLASSHUB_BACKUP_S3_ENDPOINT is not set")

    if "homes" in parts:
        if settings.hub_url:
            store = _store(settings)
            s3_dir = os.path.join(work, "s3")
            fetched: list[dict] = []

            def fetch(volume: str) -> dict | None:
                entry = swarm.fetch_newest(
                    store,
                    settings.homes_bucket,
                    volume,
                    os.path.join(s3_dir, "objects"),
                    settings.timeout,
                )
                if entry is not None:
                    fetched.append(entry)
                return entry

            m.parts["homes"] = swarm.homes_part(
                s3.read_index(s3_dir),
                settings.homes_bucket,
                settings.deployment,
                saves,
                fetch,
                m.warnings,
            )
            if fetched:  # the S3 part carries them too, as if its listing had seen them
                m.parts["s3"]["fingerprint"][settings.homes_bucket] = s3.add_to_index(
                    s3_dir, settings.homes_bucket, fetched
                )
            log.info("homes: %d in the store's copy", len(m.parts["homes"]["homes"]))
        elif settings.homes_root:
            m.parts["homes"] = _backup_homes(settings, work, m)
        else:
            m.warnings.append("student homes left out: CLASSHUB_HOMES_DIR is not set")

    for name, path in include:
        _include(work, name, path, m)
    _record_files(work, m)
    m.finished = clock.now()
    manifest.write(work, m)
    os.rename(work, final)
    total = sum(f["size"] for f in m.files.values())
    log.info(
        "backup %s done in %.1f s: %d files, %.1f MiB",
        final,
        time.monotonic() - t0,
        len(m.files),
        total / (1 << 20),
    )
    for warning in m.warnings:
        log.warning("%s", warning)
    for gone in manifest.to_prune(os.listdir(settings.backup_dir), settings.keep):
        shutil.rmtree(os.path.join(settings.backup_dir, gone))
        log.info("deleted the old backup %s (keeping %d)", gone, settings.keep)
    return final, m


def _include(work: str, name: str, path: str, m: Manifest) -> None:
    if not name or "/" in name or name.startswith("."):
        raise BackupError(f"{name!r} is not a name for an included file")
    folder = os.path.join(work, "config")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    if os.path.isdir(path):
        homes.archive(path, os.path.join(folder, f"{name}.tar.gz"))
    elif os.path.isfile(path):
        shutil.copyfile(path, os.path.join(folder, name))
    else:
        m.warnings.append(f"{path} left out: it does not exist")
        return
    m.parts.setdefault("config", {"included": []})["included"].append(name)


def _backup_homes(settings, work: str, m: Manifest) -> dict:
    root = settings.homes_root
    if not os.path.isdir(root):
        raise BackupError(f"the homes filesystem is not at {root} (CLASSHUB_HOMES_DIR)")
    for name in homes.remove_leftover_snapshots(root):
        log.info("deleted the snapshot %s an interrupted backup left", name)
    folder = os.path.join(work, "homes")
    os.mkdir(folder, 0o700)
    done = []
    for volume in homes.home_volumes(root):
        rel = f"homes/{volume}.tar.gz"
        try:
            archived = homes.backup_home(root, volume, os.path.join(work, rel))
        except (OSError, BackupError) as e:
            m.warnings.append(f"home {volume} NOT backed up: {e}")
            log.error("home %s not backed up: %s", volume, e)
            try:
                os.unlink(os.path.join(work, rel))
            except FileNotFoundError:
                pass
            continue
        done.append(
            {
                "volume": volume,
                "suffix": manifest.home_suffix(volume, settings.deployment),
                "file": rel,
                "fingerprint": archived.fingerprint,
            }
        )
    log.info("homes: %d archived", len(done))
    return {"prefix": settings.deployment, "homes": done}


# ----- checks


def verify_files(directory: str, m: Manifest, only: Iterable[str] = ()) -> list[str]:
    """The manifest's checksums against the files (all, or ``only`` these)."""
    wanted = list(only) or list(m.files)
    found = {}
    for rel in wanted:
        path = os.path.join(directory, rel)
        found[rel] = manifest.file_digest(path) if os.path.isfile(path) else None
    problems = manifest.check_files(m, found, only=wanted)
    mode = stat.S_IMODE(os.stat(directory).st_mode)
    if mode & 0o077:
        problems.append(f"{directory} is readable by others (mode {mode:o}); chmod 700 it")
    return problems


def locate(settings, wanted: str) -> str:
    """The folder of the backup ``wanted`` (a path, a name, or ``latest``), among this
    machine's and, with ``remote``, the bucket's; one only in the bucket is fetched first."""
    if os.sep in wanted:  # a path
        if not os.path.isfile(os.path.join(wanted, manifest.MANIFEST)):
            raise BackupError(f"{wanted} is not a complete backup (it has no manifest.json)")
        return os.path.abspath(wanted)
    here = os.listdir(settings.backup_dir) if os.path.isdir(settings.backup_dir) else []
    bucket = remote.Remote.from_settings(settings)
    there = remote.names(bucket, settings.timeout) if bucket else []
    if not here and not there:
        raise BackupError(f"there are no backups in {settings.backup_dir} (CLASSHUB_BACKUP_DIR)")
    name = manifest.choose([*here, *there], wanted)
    if name in manifest.complete_backups(here):
        return os.path.join(settings.backup_dir, name)
    _private_dir(settings.backup_dir)
    return remote.pull(bucket, name, settings.backup_dir, settings.timeout)


# ----- homes in use


def homes_in_use(volumes: Iterable[str], docker_client) -> dict[str, list[str]]:
    """``{volume: [running container names]}`` for the volumes a running container
    mounts (a student's server, or a service's helper container)."""
    busy = {}
    for volume in volumes:
        running = docker_client.containers.list(filters={"volume": volume})
        if running:
            busy[volume] = sorted(c.name for c in running)
    return busy


def _docker():
    import docker

    return docker.from_env(timeout=30)


def target_volume(home: dict, deployment: str) -> str:
    """The home's volume name in the deployment being restored into."""
    suffix = home.get("suffix") or home["volume"]
    return f"{deployment}-{suffix}" if suffix.startswith("home-") else home["volume"]


# ----- whole restore


@dataclass
class Restored:
    done: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def restore(
    settings, directory: str, parts: Iterable[str] = manifest.PARTS, *, verify: bool = True
) -> Restored:
    """Restore every part asked for from the backup in ``directory`` (the hub and the
    services stopped, student servers stopped), then compare every fingerprint."""
    parts = set(parts)
    m = manifest.read(directory)
    problems = verify_files(directory, m)
    if problems:
        raise BackupError(
            "the backup is damaged, nothing was restored:\n  " + "\n  ".join(problems)
        )
    out = Restored()
    home_list = m.homes() if "homes" in parts and "homes" in m.parts else []
    on_swarm = m.parts.get("homes", {}).get("mode") == "swarm"
    if on_swarm and ("s3" in parts) != ("homes" in parts):
        # the store's part carries the homes' saved copies; the homes' part renumbers them
        # past what the workers hold and unties them from nodes: one without the other
        # could let a worker's older files win over the restored ones
        raise BackupError(
            "on a Swarm the S3 store and the homes are restored together: --only s3,homes"
        )
    if home_list and not on_swarm:
        if not settings.homes_root:
            raise BackupError("the backup has homes, but CLASSHUB_HOMES_DIR is not set")
        client = _docker()
        try:
            busy = homes_in_use([target_volume(h, settings.deployment) for h in home_list], client)
        finally:
            client.close()
        if busy:
            lines = [f"{v} (used by {', '.join(c)})" for v, c in sorted(busy.items())]
            raise BackupError(
                "student servers are running; stop them all (make down stops the stack "
                "and every server) and run the restore again. Homes in use:\n  "
                + "\n  ".join(lines)
            )

    server = postgres.Server.from_url(settings.pg_url) if settings.pg_url else None
    if "postgres" in parts and "postgres" in m.parts:
        if server is None:
            raise BackupError("the backup has PostgreSQL, but CLASSHUB_BACKUP_PG_URL is not set")
        for db, info in sorted(m.parts["postgres"]["databases"].items()):
            source = os.path.join(directory, "postgres", f"{db}.dump")
            postgres.restore(server, db, source, sorted(info["fingerprint"]), settings.timeout)
            out.done.append(f"PostgreSQL {db}: restored")
            log.info("PostgreSQL %s restored", db)
    if "mongo" in parts and "mongo" in m.parts:
        if not settings.mongo_url:
            raise BackupError("the backup has MongoDB, but CLASSHUB_BACKUP_MONGO_URL is not set")
        lines = mongo.restore(
            settings.mongo_url, os.path.join(directory, "mongo"), settings.timeout
        )
        out.done += [f"MongoDB {line}" for line in lines]
        log.info("MongoDB restored: %d collections", len(lines))
    store = _store(settings)
    live_before: dict[str, int] = {}
    if on_swarm and home_list and store is not None:
        live_before = swarm.latest_generations(store, settings.homes_bucket, settings.timeout)
    if "s3" in parts and "s3" in m.parts:
        if store is None:
            raise BackupError(
                "the backup has the S3 store, but CLASSHUB_BACKUP_S3_ENDPOINT is not set"
            )
        lines = s3.restore(store, os.path.join(directory, "s3"), settings.timeout)
        out.done += [f"S3 {line}" for line in lines]
        log.info("S3 restored: %s", "; ".join(lines))
    swarm_homes = home_list if on_swarm else []
    if swarm_homes:
        home_list = []
    for home in home_list:
        volume = target_volume(home, settings.deployment)
        quota = _quota(settings, volume)
        homes.restore_home(
            settings.homes_root, volume, os.path.join(directory, home["file"]), quota
        )
        out.done.append(f"home {volume}: restored")
    if home_list:
        log.info("homes restored: %d", len(home_list))
    if verify:
        # a Swarm's homes after the S3 part's comparison: the copies put under another
        # deployment's names are no objects of the backup's
        out.problems = compare(settings, m, set(parts) - {"homes"} if swarm_homes else parts)
    swarm_moves = _restore_swarm_homes(settings, store, directory, swarm_homes)
    out.done += swarm_moves
    if verify and swarm_homes:
        out.problems += compare(settings, m, {"homes"})
    # after the comparison: what follows changes the restored data on purpose
    if swarm_homes:
        restored = {
            target_volume(h, settings.deployment): homesync.generation_of(swarm.PREFIX, h["key"])[1]
            for h in swarm_homes
        }
        out.done += swarm.renumber_restored(
            store, settings.homes_bucket, restored, live_before, clock.now(), settings.timeout
        )
    if server is not None and "postgres" in parts and "postgres" in m.parts:
        # after the comparison: what follows changes the restored hub tables on purpose
        for db in sorted(m.parts["postgres"]["databases"]):
            n = postgres.forget_servers(server, db, HUB.schema)
            if n:
                out.done.append(f"PostgreSQL {db}: {n} servers of the backup's time marked stopped")
                log.info("%d servers that ran when the backup was taken marked stopped", n)
    if swarm_homes and server is not None:
        # the hub's database, restored or not: a home tied to a node would be saved from
        # there over the restored copy at its next start
        n = postgres.forget_home_nodes(server, server.database, HUB.schema)
        if n:
            out.done.append(f"PostgreSQL: {n} homes no longer tied to a node")
    return out


def _restore_swarm_homes(settings, store, directory: str, home_list: list[dict]) -> list[str]:
    """After the S3 part (which put back every home's saved copies under their keys): a
    home of a deployment with another prefix goes to its key under this deployment's
    name too."""
    if not home_list:
        return []
    from spawner import homesync

    client, http = store.client(settings.timeout)
    done = []
    try:
        for home in home_list:
            volume = target_volume(home, settings.deployment)
            _, generation = homesync.generation_of(swarm.PREFIX, home["key"])
            key = homesync.object_key(swarm.PREFIX, volume, generation)
            if key == home["key"] and _has_object(client, settings.homes_bucket, key):
                continue
            path = os.path.join(directory, home["file"])
            with open(path, "rb") as f:
                client.put_object(
                    settings.homes_bucket, key, f, os.path.getsize(path), "application/gzip"
                )
            done.append(f"home {volume}: restored into the store")
    finally:
        http.clear()
    log.info("homes restored: %d saved copies in the store", len(home_list))
    return done


def _has_object(client, bucket: str, key: str) -> bool:
    from minio.error import S3Error

    try:
        client.stat_object(bucket, key)
    except S3Error as e:
        if e.code in ("NoSuchKey", "NoSuchBucket"):
            return False
        raise
    return True


def _quota(settings, volume: str) -> int:
    """The limit of a restored home: the deployment's (the spawner sets it again at every
    start), or the home's own if that is larger."""
    from spawner import homes as spawner_homes

    existing = homes.home_limit(settings.homes_root, volume) or 0
    return max(existing, spawner_homes.parse_size(settings.home_quota))


def fingerprints_now(settings, m: Manifest, parts: Iterable[str]) -> dict[str, dict]:
    """The fingerprints of the deployment as it is now, for the parts ``m`` has."""
    parts = set(parts)
    now: dict[str, dict] = {}
    if "postgres" in parts and "postgres" in m.parts and settings.pg_url:
        server = postgres.Server.from_url(settings.pg_url)
        for db in m.parts["postgres"]["databases"]:
            now[f"postgres:{db}"] = postgres.current_fingerprint(server, db)
    if "mongo" in parts and "mongo" in m.parts and settings.mongo_url:
        now["mongo"] = mongo.current_fingerprint(
            settings.mongo_url, settings.timeout, m.parts["mongo"].get("databases")
        )
    store = _store(settings)
    if "s3" in parts and "s3" in m.parts and store is not None:
        now["s3"] = s3.current_fingerprint(store, settings.timeout, m.parts["s3"]["buckets"])
    if "homes" in parts and m.parts.get("homes", {}).get("mode") == "swarm" and store:
        targets = {target_volume(h, settings.deployment): h for h in m.homes()}
        now_by_volume = swarm.current_fingerprints(
            store, settings.homes_bucket, sorted(targets), settings.timeout
        )
        now["homes"] = {targets[v].get("suffix") or v: fp for v, fp in now_by_volume.items()}
    elif "homes" in parts and "homes" in m.parts and settings.homes_root:
        found = {}
        for home in m.homes():
            volume = target_volume(home, settings.deployment)
            path = os.path.join(settings.homes_root, volume)
            if os.path.isdir(path):
                found[home.get("suffix") or volume] = homes.tree_fingerprint(path)
        now["homes"] = found
    return now


def expected_fingerprints(m: Manifest, parts: Iterable[str]) -> dict[str, dict]:
    parts = set(parts)
    out: dict[str, dict] = {}
    if "postgres" in parts and "postgres" in m.parts:
        for db, info in m.parts["postgres"]["databases"].items():
            out[f"postgres:{db}"] = info["fingerprint"]
    if "mongo" in parts and "mongo" in m.parts:
        out["mongo"] = m.parts["mongo"]["fingerprint"]
    if "s3" in parts and "s3" in m.parts:
        out["s3"] = m.parts["s3"]["fingerprint"]
    if "homes" in parts and "homes" in m.parts:
        out["homes"] = {h.get("suffix") or h["volume"]: h["fingerprint"] for h in m.homes()}
    return out


def compare(settings, m: Manifest, parts: Iterable[str] = manifest.PARTS) -> list[str]:
    """Every difference between the backup's fingerprints and the deployment's now."""
    expected = expected_fingerprints(m, parts)
    now = fingerprints_now(settings, m, parts)
    problems = []
    for what in sorted(expected):
        problems += manifest.compare_fingerprints(expected[what], now.get(what, {}), what)
    return problems


# ----- one home


def home_suffix_for(user: str, server: str = "") -> tuple[str, str]:
    """``(suffix, readable)``: the suffix of ``user``'s home volume for ``server`` (as
    the spawner names it, without the deployment prefix) and the user's readable part."""
    full = object_name("x", "home", user, server)
    suffix = full[len("x-") :]
    readable = object_name("x", "home", user, "")[len("x-home-") :].rsplit("-", 1)[0]
    return suffix, readable


def restore_one_home(settings, directory: str, user: str, server: str = "") -> dict:
    """Restore ``user``'s home (of their ``server``: a class server's name, or empty for
    their default server) from the backup in ``directory``; refuses while a container
    uses it. Returns ``{"volume", "seconds", "fingerprint"}``."""
    t0 = time.monotonic()
    m = manifest.read(directory)
    on_swarm = m.parts.get("homes", {}).get("mode") == "swarm"
    if not on_swarm and not settings.homes_root:
        raise BackupError("CLASSHUB_HOMES_DIR is not set: where are the homes?")
    suffix, readable = home_suffix_for(user, server)
    home, others = manifest.select_homes(m, suffix, readable)
    if home is None:
        which = f"server {server!r}" if server else "their default server"
        hint = ""
        if others:
            hint = (
                " Homes of that user in this backup: "
                + ", ".join(h.get("suffix", h["volume"]) for h in others)
                + " (pass the class server's name: SERVER=...)."
            )
        raise BackupError(f"backup {m.name} has no home of {user!r} for {which}.{hint}")
    problems = verify_files(directory, m, only=[home["file"]])
    if problems:
        raise BackupError("the home's archive is damaged: " + "; ".join(problems))
    volume = target_volume(home, settings.deployment)
    if on_swarm:
        return _restore_one_swarm_home(settings, directory, home, volume, user, server, t0)
    client = _docker()
    try:
        busy = homes_in_use([volume], client)
    finally:
        client.close()
    if busy:
        raise BackupError(
            f"{user}'s server is running ({', '.join(busy[volume])}): stop it first (the hub's "
            "admin page, or the student's Stop), then run the restore again. Nothing was changed."
        )
    quota = _quota(settings, volume)
    path = homes.restore_home(
        settings.homes_root, volume, os.path.join(directory, home["file"]), quota
    )
    fingerprint = homes.tree_fingerprint(path)
    if fingerprint != home["fingerprint"]:
        raise BackupError(
            f"the restored home {volume} differs from the backup's fingerprint "
            f"({fingerprint['count']} entries, the backup had {home['fingerprint']['count']})"
        )
    return {"volume": volume, "seconds": time.monotonic() - t0, "fingerprint": fingerprint}


def _restore_one_swarm_home(settings, directory, home, volume, user, server, t0) -> dict:
    """The restore of one home on a Swarm (backup/swarm.py): through the store and the hub."""
    store = _store(settings)
    if store is None or not settings.hub_url:
        raise BackupError(
            "a Swarm's home is restored through the S3 store and the hub: run it with "
            "scripts/swarm/backup.sh restore-home (CLASSHUB_BACKUP_S3_ENDPOINT and "
            "CLASSHUB_BACKUP_HUB_URL are not set)"
        )
    done = swarm.restore_one_home(
        store,
        settings.homes_bucket,
        settings.hub_url,
        settings.hub_token,
        directory,
        home,
        volume,
        user,
        server,
        settings.timeout,
    )
    now = swarm.current_fingerprints(store, settings.homes_bucket, [volume], settings.timeout)
    if now.get(volume) != home["fingerprint"]:
        raise BackupError(
            f"the newest copy of {volume} in the store differs from the backup's archive "
            "after the restore (a save since? stop the server and run the restore again)"
        )
    return {**done, "seconds": time.monotonic() - t0}
