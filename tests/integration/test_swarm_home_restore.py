"""A Swarm home's restore against a real store (SeaweedFS with the identities `make up`
writes): ``classhub-backup`` stages the archive with the administrator keys, and the hub,
with only its ``homes`` identity (keys ``homes/`` of one bucket), makes it the newest
saved copy (spawner/homesync.py ``adopt``). The hub's API is a stand-in that calls
``adopt`` as SwarmClassroomSpawner does; the real hub and spawner: tests/swarm."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from minio import Minio

from backup import swarm
from backup.manifest import BackupError
from backup.s3 import Store
from harness.stack import start_s3
from hub.stores import s3 as s3_stores
from hub.stores.s3 import Keys
from spawner import homesync

pytestmark = pytest.mark.integration

BUCKET = s3_stores.DEFAULT_BUCKET
ADMIN = Keys("chadmin" + secrets.token_hex(4), secrets.token_hex(20))
HOMES = Keys("chhomes" + secrets.token_hex(4), secrets.token_hex(20))
VOLUME = "ch-home-ann-0123456789"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    ids = s3_stores.identities(
        BUCKET,
        admin=ADMIN,
        files=Keys("chf" + secrets.token_hex(4), secrets.token_hex(20)),
        grades=Keys("chg" + secrets.token_hex(4), secrets.token_hex(20)),
        homes=HOMES,
    )
    proc, port = start_s3(
        tmp_path_factory.mktemp("s3"), ADMIN.access_key, ADMIN.secret_key, identities=ids
    )
    try:
        admin = Minio(f"127.0.0.1:{port}", ADMIN.access_key, ADMIN.secret_key, secure=False)
        admin.make_bucket(BUCKET)
        yield f"http://127.0.0.1:{port}", admin
    finally:
        proc.stop()


def _place(url: str) -> homesync.S3Place:
    return homesync.S3Place(url, HOMES.access_key, HOMES.secret_key, BUCKET)


def _put(admin: Minio, key: str, data: bytes) -> None:
    admin.put_object(BUCKET, key, io.BytesIO(data), len(data))


def _keys(admin: Minio, prefix: str) -> set[str]:
    return {o.object_name for o in admin.list_objects(BUCKET, prefix=prefix, recursive=True)}


def test_the_hubs_homes_identity_adopts_a_staged_archive_as_the_newest_copy(store):
    url, admin = store
    _put(admin, homesync.object_key("homes", VOLUME, 3), b"old copy")
    staged = homesync.staged_key("homes", VOLUME, secrets.token_hex(8))
    _put(admin, staged, b"the backup's copy")
    generation, size = homesync.adopt(_place(url), VOLUME, staged, limit=1 << 20)
    assert (generation, size) == (4, len(b"the backup's copy"))
    assert _keys(admin, f"homes/{VOLUME}/") == {f"homes/{VOLUME}/4.tar.gz"}
    assert _keys(admin, "homes/.restore/") == set()
    body = admin.get_object(BUCKET, f"homes/{VOLUME}/4.tar.gz").read()
    assert body == b"the backup's copy"
    assert homesync.latest_generation(_place(url), VOLUME) == 4


def test_an_archive_over_the_limit_or_missing_is_not_adopted_and_nothing_changes(store):
    url, admin = store
    volume = VOLUME + "x"
    _put(admin, homesync.object_key("homes", volume, 1), b"kept")
    staged = homesync.staged_key("homes", volume, secrets.token_hex(8))
    _put(admin, staged, b"x" * 100)
    assert homesync.adopt(_place(url), volume, staged, limit=50) == (0, 100)
    assert _keys(admin, f"homes/{volume}/") == {f"homes/{volume}/1.tar.gz"}
    assert _keys(admin, f"homes/.restore/{volume}/") == set()  # deleted, not left behind
    assert homesync.adopt(_place(url), volume, staged, limit=50) == (0, -1)


class _Hub(BaseHTTPRequestHandler):
    """The hub's restore API as SwarmClassroomSpawner answers it (adopt with the homes
    identity), or a refusal when ``refuse`` is set."""

    url = ""
    refuse = ""

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.refuse:
            status, answer = 409, {"status": 409, "message": self.refuse}
        else:
            generation, _ = homesync.adopt(_place(self.url), VOLUME, body["key"], 1 << 20)
            status, answer = 200, {"generation": generation}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def hub(store):
    _Hub.url, _Hub.refuse = store[0], ""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hub/api"
    server.shutdown()
    server.server_close()


def _backup_with(tmp_path, data: bytes) -> dict:
    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / "s3" / "objects").mkdir(parents=True)
    (tmp_path / "s3" / "objects" / sha).write_bytes(data)
    return {
        "volume": VOLUME,
        "suffix": "home-ann-0123456789",
        "file": f"s3/objects/{sha}",
        "key": f"homes/{VOLUME}/2.tar.gz",
        "fingerprint": swarm.archive_fingerprint(len(data), sha),
    }


def test_classhub_backup_restores_one_home_through_the_store_and_the_hub(store, hub, tmp_path):
    url, admin = store
    admin_store = Store(url, ADMIN.access_key, ADMIN.secret_key)
    data = b"an archive of ann's home from last night"
    home = _backup_with(tmp_path, data)
    before = homesync.latest_generation(_place(url), VOLUME)
    done = swarm.restore_one_home(
        admin_store, BUCKET, hub, "tok", str(tmp_path), home, VOLUME, "ann", "bio", 30
    )
    assert done["generation"] == before + 1
    now = swarm.current_fingerprints(admin_store, BUCKET, [VOLUME], 30)
    assert now == {VOLUME: home["fingerprint"]}


def test_a_refused_restore_leaves_no_staged_copy_and_a_damaged_archive_none_at_all(
    store, hub, tmp_path
):
    url, admin = store
    admin_store = Store(url, ADMIN.access_key, ADMIN.secret_key)
    home = _backup_with(tmp_path, b"another archive")
    before = homesync.latest_generation(_place(url), VOLUME)
    _Hub.refuse = "The class server of ann is running: stop it first"
    with pytest.raises(BackupError, match="stop it first"):
        swarm.restore_one_home(
            admin_store, BUCKET, hub, "tok", str(tmp_path), home, VOLUME, "ann", "bio", 30
        )
    assert _keys(admin, "homes/.restore/") == set()
    (tmp_path / home["file"]).write_bytes(b"another archivE")
    with pytest.raises(BackupError, match="damaged"):
        swarm.restore_one_home(
            admin_store, BUCKET, hub, "tok", str(tmp_path), home, VOLUME, "ann", "bio", 30
        )
    assert _keys(admin, "homes/.restore/") == set()
    assert homesync.latest_generation(_place(url), VOLUME) == before


def test_a_whole_restore_numbers_each_home_past_any_copy_a_worker_may_hold(store):
    """A worker may keep a home's volume marked with any generation the store (this one,
    or the one a fresh stack replaced) had reached: the backup's copy moves past them all,
    so the next start restores the backup's files instead of keeping the worker's."""
    url, admin = store
    admin_store = Store(url, ADMIN.access_key, ADMIN.secret_key)
    worked_on, fresh = VOLUME + "w", VOLUME + "f"
    _put(admin, homesync.object_key("homes", worked_on, 5), b"live")
    before = swarm.latest_generations(admin_store, BUCKET, 30)
    assert before.get(worked_on) == 5 and fresh not in before
    # the restore put the backup's copies back: generation 3 of one, 2 of the other
    admin.remove_object(BUCKET, homesync.object_key("homes", worked_on, 5))
    for volume, generation in ((worked_on, 3), (fresh, 2)):
        _put(admin, homesync.object_key("homes", volume, generation), b"backup " + volume.encode())
    now = 1_800_000_000.5
    done = swarm.renumber_restored(admin_store, BUCKET, {worked_on: 3, fresh: 2}, before, now, 30)
    assert done == [
        f"home {fresh}: the backup's copy is now saved copy {2 + 1_800_000_000}",
        f"home {worked_on}: the backup's copy is now saved copy {5 + 1_800_000_000}",
    ]
    assert _keys(admin, f"homes/{worked_on}/") == {f"homes/{worked_on}/1800000005.tar.gz"}
    assert admin.get_object(BUCKET, f"homes/{worked_on}/1800000005.tar.gz").read() == (
        b"backup " + worked_on.encode()
    )
    assert homesync.latest_generation(_place(url), fresh) == 1_800_000_002


def test_a_whole_restore_unties_stopped_homes_from_their_nodes(tmp_path):
    """A restored hub must not send a start to the node a home was tied to when the
    backup was taken (the node may be gone: a fresh Swarm has other node IDs)."""
    import psycopg

    from backup import postgres as backup_pg
    from harness.stack import start_postgres
    from hub.stores.postgres import HUB

    proc, _, url = start_postgres(tmp_path / "pg")
    url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {HUB.schema}")
            conn.execute(f"CREATE TABLE {HUB.schema}.spawners (id int, state text)")
            conn.execute(
                f"INSERT INTO {HUB.schema}.spawners VALUES (1, %s), (2, %s), (3, NULL), (4, '')",
                ('{"home_node": "n1", "image": "x"}', '{"image": "y"}'),
            )
        server = backup_pg.Server.from_url(url)
        database = server.database
        assert backup_pg.forget_home_nodes(server, database, HUB.schema) == 1
        with psycopg.connect(url) as conn:
            rows = dict(conn.execute(f"SELECT id, state FROM {HUB.schema}.spawners").fetchall())
        assert json.loads(rows[1]) == {"image": "x"}
        assert json.loads(rows[2]) == {"image": "y"} and rows[3] is None and rows[4] == ""
        assert backup_pg.forget_home_nodes(server, database, "no_such_schema") == 0
    finally:
        proc.stop()


def test_an_adoption_that_fails_halfway_leaves_no_new_copy(store, monkeypatch):
    """The copy is made, then the store fails: the copy goes again, so a half-done restore
    never counts as the home's newest."""
    url, admin = store
    volume = VOLUME + "h"
    _put(admin, homesync.object_key("homes", volume, 1), b"kept")
    staged = homesync.staged_key("homes", volume, secrets.token_hex(8))
    _put(admin, staged, b"the backup's")

    def fails(*args):
        raise OSError("the store went away")

    monkeypatch.setattr(homesync, "accept", fails)
    with pytest.raises(OSError):
        homesync.adopt(_place(url), volume, staged, limit=1 << 20)
    assert _keys(admin, f"homes/{volume}/") == {f"homes/{volume}/1.tar.gz"}
    # the staged copy is the caller's to remove (classhub-backup does, on any failure)
    assert _keys(admin, f"homes/.restore/{volume}/") == {staged}
    admin.remove_object(BUCKET, staged)


def test_a_restore_removes_what_an_interrupted_one_left_staged(store, hub, tmp_path):
    url, admin = store
    admin_store = Store(url, ADMIN.access_key, ADMIN.secret_key)
    left = homesync.staged_key("homes", VOLUME, "leftover" + secrets.token_hex(4))
    _put(admin, left, b"an interrupted restore's")
    home = _backup_with(tmp_path, b"tonight's archive")
    swarm.restore_one_home(
        admin_store, BUCKET, hub, "tok", str(tmp_path), home, VOLUME, "ann", "bio", 30
    )
    assert _keys(admin, f"homes/.restore/{VOLUME}/") == set(), left
