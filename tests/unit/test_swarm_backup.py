"""The Swarm spawner's part in backups (spawner/swarm.py ``save_home_now``,
``adopt_restored_home``; spawner/homesync.py staging keys), with stand-ins for Docker and
the store. The store's side for real: tests/integration/test_swarm_home_restore.py."""

from __future__ import annotations

import asyncio

import pytest

from spawner import homesync
from spawner.swarm import HomeBusy, HomeUnreachable, RestoreRefused, SwarmClassroomSpawner

pytestmark = pytest.mark.unit

RUNNING = {"DesiredState": "running", "NodeID": "node-r", "Status": {"State": "running"}}
READY = {"Spec": {"Availability": "active"}, "Status": {"State": "ready"}}
DRAINED = {"Spec": {"Availability": "drain"}, "Status": {"State": "ready"}}


class _Student:
    name = "x"


def _async(value):
    async def fn(*args, **kwargs):
        return value

    return fn


def _spawner(monkeypatch, *, task=None, node_info=READY, generation=4, saves=(5,)):
    spawner = SwarmClassroomSpawner(
        user=_Student(),
        homes_sync=True,
        homes_s3_url="http://s3:8333",
        homes_s3_access_key="a",
        homes_s3_secret_key="s",
    )
    calls = []
    results = list(saves)

    async def docker(method, *args, **kwargs):
        calls.append((method, args))
        if method == "inspect_node":
            return node_info
        raise AssertionError(method)

    async def save(node):
        calls.append(("save", (node,)))
        return results.pop(0)

    async def in_pool(fn, *args):
        return fn(*args)

    monkeypatch.setattr(spawner, "docker", docker)
    monkeypatch.setattr(spawner, "_task", _async(task))
    monkeypatch.setattr(spawner, "_save_home", save)
    monkeypatch.setattr(spawner, "_in_pool", in_pool)
    monkeypatch.setattr(homesync, "latest_generation", lambda place, volume: generation)
    return spawner, calls


async def test_a_running_servers_home_is_saved_from_its_node_and_stays_unpinned(monkeypatch):
    spawner, calls = _spawner(monkeypatch, task=RUNNING)
    assert await spawner.save_home_now() == {
        "where": "running",
        "generation": 5,
        "saved": True,
        "error": "",
    }
    assert ("save", ("node-r",)) in calls and spawner.home_node == ""


async def test_a_home_pinned_to_a_node_is_saved_from_there_and_then_free_to_move(monkeypatch):
    spawner, calls = _spawner(monkeypatch)
    spawner.home_node = "node-p"
    answer = await spawner.save_home_now()
    assert answer["where"] == "node" and answer["saved"] and answer["generation"] == 5
    assert ("save", ("node-p",)) in calls
    assert spawner.home_node == ""  # the store holds its newest files now


async def test_a_pinned_home_a_helper_may_still_write_stays_pinned(monkeypatch):
    import time

    spawner, _ = _spawner(monkeypatch)
    spawner.home_node = "node-p"
    spawner._write_lease_until = time.monotonic() + 60
    assert (await spawner.save_home_now())["saved"]
    assert spawner.home_node == "node-p"  # the next start saves it again from there


async def test_a_stopped_home_in_the_store_needs_no_save(monkeypatch):
    spawner, calls = _spawner(monkeypatch, generation=7)
    assert await spawner.save_home_now() == {
        "where": "store",
        "generation": 7,
        "saved": True,
        "error": "",
    }
    assert not [c for c in calls if c[0] == "save"]


@pytest.mark.parametrize(
    "case, expected",
    [
        ("starting", "starting or stopping"),
        ("drained", "drained or down"),
        ("failed save", "did not finish"),
        ("never", "never saved"),
    ],
)
async def test_a_home_not_saved_says_why_and_never_raises(monkeypatch, case, expected):
    task = {"DesiredState": "running", "NodeID": "n", "Status": {"State": "preparing"}}
    spawner, _ = _spawner(
        monkeypatch,
        task=task if case == "starting" else (RUNNING if case == "failed save" else None),
        node_info=DRAINED if case == "drained" else READY,
        saves=(0,),
        generation=0 if case == "never" else 4,
    )
    if case == "drained":
        spawner.home_node = "node-p"
    answer = await spawner.save_home_now()
    assert not answer["saved"] and expected in answer["error"], answer
    if case == "drained":
        assert spawner.home_node == "node-p"


async def test_docker_down_is_a_home_not_saved_not_a_crash(monkeypatch):
    from docker.errors import APIError

    spawner, _ = _spawner(monkeypatch)

    async def task():
        raise APIError("the engine is gone")

    monkeypatch.setattr(spawner, "_task", task)
    answer = await spawner.save_home_now()
    assert not answer["saved"] and "not reached" in answer["error"]


async def test_a_backups_save_waits_for_a_start_of_the_same_server(monkeypatch):
    """A start never restores the store's copy while a backup saves a newer one."""
    from spawner.spawner import ClassroomSpawner

    spawner, calls = _spawner(monkeypatch)
    spawner.home_node = "node-p"
    release, order = asyncio.Event(), []

    async def slow_start(self):
        order.append("start")
        await release.wait()
        return ("10.0.0.9", 8888)

    monkeypatch.setattr(ClassroomSpawner, "start", slow_start)
    starting = asyncio.ensure_future(spawner.start())
    await asyncio.sleep(0.01)
    saving = asyncio.ensure_future(spawner.save_home_now())
    await asyncio.sleep(0.05)
    assert not saving.done() and not [c for c in calls if c[0] == "save"]
    release.set()
    await starting
    assert (await saving)["saved"]


# ----- a restore: the archive a backup staged becomes the newest generation


def _restoring(monkeypatch, *, task=None, adopted=(6, 1000)):
    spawner, calls = _spawner(monkeypatch, task=task)
    adopts = []

    def adopt(place, volume, staged, limit):
        adopts.append((volume, staged, limit))
        return adopted

    monkeypatch.setattr(homesync, "adopt", adopt)
    key = homesync.staged_key("homes", spawner.home_volume, "tok12345")
    return spawner, key, adopts


async def test_a_restore_becomes_the_newest_generation_and_unpins_the_home(monkeypatch):
    spawner, key, adopts = _restoring(monkeypatch)
    spawner.home_node, spawner._loaded = "node-p", (4, "node-b")
    assert await spawner.adopt_restored_home(key) == 6
    from spawner.swarm import homesync_limit

    assert adopts == [(spawner.home_volume, key, homesync_limit(spawner.home_quota))]
    # the next start restores generation 6 wherever it runs
    assert spawner.home_node == "" and spawner._loaded is None


async def test_a_restore_into_a_running_server_is_refused_and_changes_nothing(monkeypatch):
    spawner, key, adopts = _restoring(monkeypatch, task=RUNNING)
    with pytest.raises(HomeBusy) as busy:
        await spawner.adopt_restored_home(key)
    assert busy.value.status_code == 409 and "stop it first" in str(busy.value)
    assert adopts == []


@pytest.mark.parametrize(
    "key",
    [
        "homes/other-volume/1.tar.gz",
        "homes/.restore/chub-home-someone-else/tok12345.tar.gz",
        "submissions/x.tar.gz",
        "homes/.restore/{volume}/../1.tar.gz",
    ],
)
async def test_a_restore_takes_only_this_homes_staged_keys(monkeypatch, key):
    spawner, _, adopts = _restoring(monkeypatch)
    with pytest.raises(RestoreRefused) as refused:
        await spawner.adopt_restored_home(key.format(volume=spawner.home_volume))
    assert refused.value.status_code == 400 and adopts == []


@pytest.mark.parametrize(
    "adopted, expected", [((0, -1), "Nothing was staged"), ((0, 9 << 30), "over its limit")]
)
async def test_a_restore_not_adopted_says_why(monkeypatch, adopted, expected):
    spawner, key, _ = _restoring(monkeypatch, adopted=adopted)
    spawner.home_node = "node-p"
    with pytest.raises(RestoreRefused) as refused:
        await spawner.adopt_restored_home(key)
    assert expected in str(refused.value)
    assert spawner.home_node == "node-p"  # nothing changed


async def test_the_store_down_during_a_restore_is_503(monkeypatch):
    from minio.error import S3Error

    spawner, key, _ = _restoring(monkeypatch)

    def adopt(*args):
        raise S3Error(None, "InternalError", "down", "/b", "r", "h", "b")

    monkeypatch.setattr(homesync, "adopt", adopt)
    with pytest.raises(HomeUnreachable) as down:
        await spawner.adopt_restored_home(key)
    assert down.value.status_code == 503


def test_staged_keys_are_never_a_generation_and_name_one_home():
    key = homesync.staged_key("homes", "chub-home-ann", "abcdefgh1234")
    assert key == "homes/.restore/chub-home-ann/abcdefgh1234.tar.gz"
    assert homesync.generation_of("homes", key) is None
    assert homesync.is_staged_key("homes", "chub-home-ann", key)
    assert not homesync.is_staged_key("homes", "chub-home-an", key)
    with pytest.raises(ValueError):
        homesync.staged_key("homes", "../x", "abcdefgh")
    with pytest.raises(ValueError):
        homesync.staged_key("homes", "chub-home-ann", "a/b")


# ----- classhub-backup's side (backup/swarm.py)


def _entry(key: str, sha: str = "a" * 64, size: int = 10) -> dict:
    return {"key": key, "size": size, "sha256": sha}


def test_the_newest_archive_of_each_home_is_taken_from_the_backups_index():
    from backup import swarm

    index = {
        "classhub-files": [
            _entry("homes/ch-home-ann-1/3.tar.gz", "3" * 64),
            _entry("homes/ch-home-ann-1/12.tar.gz", "c" * 64),  # 12 > 3, not as text
            _entry("homes/ch-home-bob-2/1.tar.gz", "b" * 64),
            _entry("homes/.restore/ch-home-ann-1/abcdefgh.tar.gz"),  # staged: not a copy
            _entry("users/ann/notes.txt"),
            _entry("helpers/files/run/job.json"),
        ],
        "other": [_entry("homes/ch-home-zed-9/1.tar.gz")],
    }
    newest = swarm.newest_archives(index, "classhub-files")
    assert {v: e["key"] for v, e in newest.items()} == {
        "ch-home-ann-1": "homes/ch-home-ann-1/12.tar.gz",
        "ch-home-bob-2": "homes/ch-home-bob-2/1.tar.gz",
    }


def test_the_homes_part_lists_each_home_warns_of_unsaved_ones_and_fetches_a_missed_one():
    from backup import swarm

    index = {"b": [_entry("homes/ch-home-ann-1/4.tar.gz", "4" * 64, 40)]}
    saves = [
        {"user": "ann", "volume": "ch-home-ann-1", "saved": True, "error": ""},
        # saved by the hub, then gone from the store before the S3 part read it (a stop)
        {"user": "cat", "volume": "ch-home-cat-3", "saved": True, "error": ""},
        {"user": "dan", "volume": "ch-home-dan-4", "saved": False, "error": "a node drained"},
    ]
    fetched = []

    def fetch(volume):
        fetched.append(volume)
        return _entry(f"homes/{volume}/7.tar.gz", "7" * 64, 70)

    warnings: list[str] = []
    part = swarm.homes_part(index, "b", "ch", saves, fetch, warnings)
    assert fetched == ["ch-home-cat-3"]
    assert part["mode"] == "swarm" and part["bucket"] == "b" and part["prefix"] == "ch"
    assert part["homes"] == [
        {
            "volume": "ch-home-ann-1",
            "suffix": "home-ann-1",
            "file": "s3/objects/" + "4" * 64,
            "key": "homes/ch-home-ann-1/4.tar.gz",
            "fingerprint": {"count": 1, "bytes": 40, "sha256": "4" * 64},
        },
        {
            "volume": "ch-home-cat-3",
            "suffix": "home-cat-3",
            "file": "s3/objects/" + "7" * 64,
            "key": "homes/ch-home-cat-3/7.tar.gz",
            "fingerprint": {"count": 1, "bytes": 70, "sha256": "7" * 64},
        },
    ]
    (warning,) = warnings
    assert "ch-home-dan-4" in warning and "a node drained" in warning and "(none)" in warning


def _hub(status: int, body: dict):
    """A stand-in hub answering every POST with ``status`` and ``body``; what it got."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    got = []

    class Hub(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            length = int(self.headers["Content-Length"])
            got.append(
                (self.path, self.headers["Authorization"], json.loads(self.rfile.read(length)))
            )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hub/api", got


def test_the_hub_is_asked_with_the_backup_token_and_its_refusal_is_its_own_words():
    from backup import swarm
    from backup.manifest import BackupError

    server, url, got = _hub(200, {"homes": [{"volume": "v", "saved": True}], "saved": 1})
    try:
        assert swarm.save_every_home(url, "tok", 10) == [{"volume": "v", "saved": True}]
        assert got == [("/hub/api/classhub/swarm-homes-save", "token tok", {})]
    finally:
        server.shutdown()
    server, url, _ = _hub(409, {"status": 409, "message": "stop it first"})
    try:
        with pytest.raises(BackupError, match="409: stop it first"):
            swarm.hub_call(url, "tok", "classhub/x", {}, 10)
    finally:
        server.shutdown()
    with pytest.raises(BackupError, match="cannot be reached"):
        swarm.hub_call(url, "tok", "classhub/x", {}, 2)  # nobody listens any more
    with pytest.raises(BackupError, match="http"):
        swarm.hub_call("file:///etc/passwd", "tok", "x", {}, 2)


async def test_a_backups_save_waits_for_a_stop_that_is_saving_the_same_home(monkeypatch):
    """The stop holds the home until its own save is done and home_node says where the
    newest files are: the backup then sees the home as the stop left it."""
    from spawner.spawner import ClassroomSpawner

    spawner, calls = _spawner(monkeypatch, task=RUNNING, saves=(0,))  # the stop's save fails
    release = asyncio.Event()

    async def slow_save(node):
        calls.append(("save", (node,)))
        await release.wait()
        return 0

    monkeypatch.setattr(spawner, "_save_home", slow_save)
    monkeypatch.setattr(spawner, "_scale_to_zero", _async(None))
    monkeypatch.setattr(ClassroomSpawner, "stop", lambda self, now=False: _async(None)())
    spawner.homes_sync = True
    stopping = asyncio.ensure_future(spawner.stop())
    await asyncio.sleep(0.01)
    monkeypatch.setattr(spawner, "_task", _async(None))  # the service is gone meanwhile
    saving = asyncio.ensure_future(spawner.save_home_now())
    await asyncio.sleep(0.05)
    assert not saving.done()  # not "in the store" while the stop still saves
    release.set()
    await stopping
    assert spawner.home_node == "node-r"  # the stop's save failed: pinned there
    answer = await saving
    assert answer["where"] == "node" and ("save", ("node-r",)) in calls[1:]


def test_a_swarm_backups_store_and_homes_are_restored_together(tmp_path):
    """Either without the other could let a worker's older files win over the restore."""
    from backup import manifest, run
    from backup.manifest import BackupError, Manifest
    from backup.settings import BackupSettings

    m = Manifest(name="20261207T010203Z", created=0.0, deployment="ch")
    m.parts = {"s3": {"buckets": [], "fingerprint": {}}, "homes": {"mode": "swarm", "homes": []}}
    manifest.write(str(tmp_path), m)
    settings = BackupSettings(backup_dir=str(tmp_path))
    for only in (["s3"], ["homes"], ["postgres", "homes"]):
        with pytest.raises(BackupError, match="--only s3,homes"):
            run.restore(settings, str(tmp_path), only)
