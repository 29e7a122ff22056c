"""The Swarm spawner's pure parts (spawner/swarm.py) and the home sync scripts
(spawner/homesync.py), the scripts run for real against a local HTTP server."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from docker.types import Mount

from common.routing import traefik_rule
from spawner import homesync
from spawner.labels import traefik_labels
from spawner.swarm import (
    MAX_SERVICE_NAME,
    SwarmClassroomSpawner,
    hardened_container,
    service_name,
    service_spec,
    swarm_labels,
    task_address,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("user", ["alice", "a" * 200, "é" * 80, "x`y"])
@pytest.mark.parametrize("server", ["", "cls", "c" * 60])
def test_service_names_are_dns_labels_and_distinct(user, server):
    name = service_name("classhub", user, server)
    assert len(name) <= MAX_SERVICE_NAME
    assert name[0].isalnum() and all(c.isalnum() or c == "-" for c in name)
    assert service_name("classhub", user, server + "x") != name


def test_swarm_labels_use_the_swarm_providers_network_label():
    spec = "/user/bob%60%29/"
    labels = swarm_labels(
        traefik_labels(routespec=spec, port=8888, network="net", entrypoint="web"), "net"
    )
    assert labels["traefik.swarm.network"] == "net"
    assert "traefik.docker.network" not in labels
    assert [v for k, v in labels.items() if k.endswith(".rule")] == [traefik_rule(spec)]


def _spec(**changes):
    container = hardened_container(
        image="sha256:" + "a" * 64,
        command=None,
        args=["jupyterhub-singleuser"],
        env={"A": "1"},
        labels={},
        mounts=[Mount("/home/jovyan", "home-vol", type="volume")],
        health={"test": ["CMD", "/x"], "interval": 200_000_000},
        tmpfs_size="64m",
    )
    kwargs = dict(
        name="classhub-srv-alice-1",
        container=container,
        labels={"traefik.enable": "true"},
        network="classhub-students",
        mem_limit=512 << 20,
        cpu_limit=1.5,
        pids_limit=256,
        reserve_memory=True,
        constraints=["node.role==worker"],
        spread=["node.labels.zone"],
    )
    kwargs.update(changes)
    return service_spec(**kwargs)


def test_service_spec_is_hardened_dnsrr_and_reserves_memory():
    spec = _spec()
    assert spec["endpoint_spec"]["Mode"] == "dnsrr"
    task = spec["task_template"]
    c = task["ContainerSpec"]
    assert c["CapabilityDrop"] == ["ALL"]
    assert c["ReadOnly"] is True and c["Init"] is True
    assert c["User"] == "1000:100"
    tmpfs = {m["Target"]: m for m in c["Mounts"] if m["Type"] == "tmpfs"}
    assert tmpfs["/tmp"]["TmpfsOptions"]["SizeBytes"] == 64 << 20
    assert "/run" in tmpfs
    assert [m["Source"] for m in c["Mounts"] if m["Type"] == "volume"] == ["home-vol"]
    res = task["Resources"]
    assert res["Limits"] == {"MemoryBytes": 512 << 20, "NanoCPUs": 1_500_000_000, "Pids": 256}
    assert res["Reservations"]["MemoryBytes"] == 512 << 20
    assert task["Placement"]["Constraints"] == ["node.role==worker"]
    assert task["Placement"]["Preferences"] == [
        {"Spread": {"SpreadDescriptor": "node.labels.zone"}}
    ]
    assert task["RestartPolicy"]["Condition"] == "on-failure"
    assert task["Networks"] == [{"Target": "classhub-students"}]


def test_without_reservation_and_one_shot():
    spec = _spec(reserve_memory=False, one_shot=True, network="", spread=[])
    task = spec["task_template"]
    assert "Reservations" not in task["Resources"] or not task["Resources"]["Reservations"]
    assert task["RestartPolicy"]["Condition"] == "none"
    assert not task.get("Networks")


def test_gate_address_is_a_service_name():
    spawner = SwarmClassroomSpawner(owner_gate_url="http://gate:8082/check")
    assert spawner.owner_gate_url == "http://gate:8082/check"
    with pytest.raises(Exception, match="gate as Traefik"):
        SwarmClassroomSpawner(owner_gate_url="http://evil.example:80/?x=`")


def test_homes_s3_url_is_checked():
    with pytest.raises(Exception, match="must be an S3 address"):
        SwarmClassroomSpawner(homes_s3_url="s3:8333")
    assert SwarmClassroomSpawner(homes_s3_url="http://s3:8333/").homes_s3_url == "http://s3:8333"


def test_object_keys_round_trip():
    key = homesync.object_key("homes", "classhub-home-alice-abc", 3)
    assert key == "homes/classhub-home-alice-abc/3.tar.gz"
    assert homesync.generation_of("homes", key) == ("classhub-home-alice-abc", 3)
    assert homesync.generation_of("homes", "homes/x/../y/1.tar.gz") is None
    with pytest.raises(ValueError):
        homesync.object_key("homes", "../x", 1)
    with pytest.raises(ValueError):
        homesync.object_key("homes", "x", 0)


# ----- the in-container scripts, for real, against a local HTTP server


class _Store(BaseHTTPRequestHandler):
    objects: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802
        body = self.objects.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):  # noqa: N802
        self.objects[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def store():
    _Store.objects = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Store)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Store.objects
    server.shutdown()
    server.server_close()


def _run(script, home, env, *args):
    return subprocess.run(
        [sys.executable, "-I", "-c", script, *args],
        env={"HOME": str(home), "PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_save_then_restore_on_another_node(store, tmp_path):
    url, objects = store
    old, new = tmp_path / "old-node", tmp_path / "new-node"
    old.mkdir()
    new.mkdir()
    (old / "work").mkdir()
    (old / "work" / "nb.ipynb").write_text("my notebook")
    os.symlink("/etc/passwd", old / "link")
    (new / "stale.txt").write_text("from an older copy")
    saved = _run(
        homesync.SAVE,
        old,
        {
            "CLASSHUB_HOME_SAVE_URL": url + "/h/2",
            "CLASSHUB_HOME_GENERATION": "2",
            "CLASSHUB_HOME_LIMIT": str(1 << 20),
        },
    )
    assert saved.returncode == 0, saved.stderr
    assert (old / homesync.MARKER).read_text() == "2"
    assert not (old / homesync.PACK).exists()
    restored = _run(
        homesync.RESTORE,
        new,
        {"CLASSHUB_HOME_RESTORE_URL": url + "/h/2", "CLASSHUB_HOME_GENERATION": "2"},
        "sh",
        "-c",
        "echo started",
    )
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.strip() == "started"
    assert (new / "work" / "nb.ipynb").read_text() == "my notebook"
    assert os.readlink(new / "link") == "/etc/passwd"  # a link, never followed
    assert not (new / "stale.txt").exists()
    assert (new / homesync.MARKER).read_text() == "2"


def test_restore_keeps_a_home_that_already_has_the_generation(store, tmp_path):
    url, objects = store
    (tmp_path / homesync.MARKER).write_text("5")
    (tmp_path / "newer.txt").write_text("kept")
    done = _run(
        homesync.RESTORE,
        tmp_path,
        {"CLASSHUB_HOME_RESTORE_URL": url + "/missing", "CLASSHUB_HOME_GENERATION": "5"},
        "true",
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "newer.txt").read_text() == "kept"


def test_restore_skips_members_outside_the_home(store, tmp_path):
    url, objects = store
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("../escape.txt", "/abs.txt", "ok.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))
    objects["/evil"] = buf.getvalue()
    home = tmp_path / "home"
    home.mkdir()
    done = _run(
        homesync.RESTORE,
        home,
        {"CLASSHUB_HOME_RESTORE_URL": url + "/evil", "CLASSHUB_HOME_GENERATION": "1"},
        "true",
    )
    assert done.returncode == 0, done.stderr
    assert (home / "ok.txt").read_text() == "hi"
    assert not (tmp_path / "escape.txt").exists()


def test_save_refuses_a_home_over_the_limit(store, tmp_path):
    url, objects = store
    (tmp_path / "big").write_bytes(os.urandom(200_000))
    done = _run(
        homesync.SAVE,
        tmp_path,
        {
            "CLASSHUB_HOME_SAVE_URL": url + "/h/1",
            "CLASSHUB_HOME_GENERATION": "1",
            "CLASSHUB_HOME_LIMIT": "100000",
        },
    )
    assert done.returncode != 0
    assert "over the limit" in done.stderr
    assert objects == {}
    assert not (tmp_path / homesync.MARKER).exists()
    assert not (tmp_path / homesync.PACK).exists()


def test_a_tasks_address_on_the_students_network():
    """What Traefik's Swarm provider routes to (a dnsrr service: the task's own address),
    so the spawner reports the same and the proxy finds its route."""
    task = {
        "NetworksAttachments": [
            {"Network": {"Spec": {"Name": "ingress"}}, "Addresses": ["10.0.0.3/24"]},
            {"Network": {"Spec": {"Name": "classhub-students"}}, "Addresses": ["10.215.1.7/24"]},
        ]
    }
    assert task_address(task, "classhub-students") == "10.215.1.7"
    assert task_address(task, "other") is None
    assert task_address({}, "classhub-students") is None


@pytest.mark.parametrize("answer", ["BucketAlreadyOwnedByYou", "BucketAlreadyExists"])
def test_a_bucket_made_meanwhile_is_there_not_a_failure(monkeypatch, answer):
    """Several servers stopping at once each save a home and each make the bucket when it
    is missing: the ones that lose the race get "already owned" from S3, and their homes
    must still be saved."""
    from minio.error import S3Error

    from spawner import homesync

    class Racing:
        made = 0

        def bucket_exists(self, bucket):
            return False

        def make_bucket(self, bucket):
            raise S3Error(None, answer, "made meanwhile", "/" + bucket, "r", "h", bucket)

    place = homesync.S3Place("http://s3:8333", "a", "s", "homes-bucket")
    monkeypatch.setattr(homesync.S3Place, "client", lambda self: Racing())
    homesync.ensure_bucket(place)  # no error

    class Refused(Racing):
        def make_bucket(self, bucket):
            raise S3Error(None, "AccessDenied", "no", "/" + bucket, "r", "h", bucket)

    monkeypatch.setattr(homesync.S3Place, "client", lambda self: Refused())
    with pytest.raises(S3Error):
        homesync.ensure_bucket(place)


# ----- a home that could not be saved keeps its student on its node


def _syncing_spawner() -> SwarmClassroomSpawner:
    """A Swarm spawner of one student whose homes are carried through S3."""
    return SwarmClassroomSpawner(
        user=_Student(),
        homes_sync=True,
        homes_s3_url="http://s3:8333",
        homes_s3_access_key="a",
        homes_s3_secret_key="s",
    )


def _pinned_spawner(monkeypatch, *, node_info, saves):
    """A Swarm spawner whose Docker calls and home saves are stand-ins: ``node_info`` is
    what ``inspect_node`` answers, ``saves`` the results of successive saves."""
    spawner = _syncing_spawner()
    calls = []

    async def docker(method, *args, **kwargs):
        calls.append((method, args, kwargs))
        if method == "inspect_node":
            return node_info
        if method == "create_service":
            return {"ID": "svc"}
        raise AssertionError(method)

    results = list(saves)

    async def save(node):
        calls.append(("save", (node,), {}))
        return results.pop(0)

    async def in_pool(fn, *args):
        return fn(*args)

    monkeypatch.setattr(spawner, "docker", docker)
    monkeypatch.setattr(spawner, "_save_home", save)
    monkeypatch.setattr(spawner, "_in_pool", in_pool)
    monkeypatch.setattr(spawner, "_progress", lambda *a: None)
    monkeypatch.setattr(homesync, "latest_generation", lambda place, volume: 4)
    monkeypatch.setattr(homesync, "presign", lambda place, method, volume, gen: f"{method} {gen}")
    return spawner, calls


READY = {"Spec": {"Availability": "active"}, "Status": {"State": "ready"}}


class _Student:
    name = "x"


def test_the_node_of_an_unsaved_home_outlives_the_stop_in_the_state():
    spawner = SwarmClassroomSpawner(user=_Student(), homes_sync=True)
    spawner.home_node = "node-a"
    spawner.clear_state()  # what JupyterHub does after every stop
    assert spawner.get_state()["home_node"] == "node-a"
    other = SwarmClassroomSpawner(user=_Student(), homes_sync=True)
    other.load_state(spawner.get_state())
    assert other.home_node == "node-a"
    other.home_node = ""
    assert "home_node" not in other.get_state()


async def test_a_home_saved_at_the_next_start_is_restored_anywhere(monkeypatch):
    spawner, calls = _pinned_spawner(monkeypatch, node_info=READY, saves=[True])
    spawner.home_node = "node-a"
    assert await spawner._prepare_home() is False
    assert ("save", ("node-a",), {}) in calls
    assert spawner.home_node == ""
    assert spawner._restore_env == {
        "CLASSHUB_HOME_RESTORE_URL": "GET 4",
        "CLASSHUB_HOME_GENERATION": "4",
    }


async def test_a_home_still_unsaved_starts_on_its_node_without_an_older_copy(monkeypatch):
    spawner, calls = _pinned_spawner(monkeypatch, node_info=READY, saves=[False])
    spawner.home_node = "node-a"
    assert await spawner._prepare_home() is False
    assert spawner.home_node == "node-a" and spawner._restore_env is None
    monkeypatch.setattr(spawner, "get_command", _async(["jupyterhub-singleuser"]))
    monkeypatch.setattr(spawner, "get_env", lambda: {})
    monkeypatch.setattr(spawner, "_labels", lambda: {})
    monkeypatch.setattr(type(spawner), "proxy_spec", "/user/x/", raising=False)
    await spawner.create_object()
    (create,) = [c for c in calls if c[0] == "create_service"]
    constraints = create[2]["task_template"]["Placement"]["Constraints"]
    assert "node.id==node-a" in constraints


@pytest.mark.parametrize(
    "info",
    [
        {},
        {"Spec": {"Availability": "drain"}, "Status": {"State": "ready"}},
        {"Spec": {"Availability": "active"}, "Status": {"State": "down"}},
    ],
)
async def test_a_home_on_a_node_out_of_service_stops_the_start_with_a_message(monkeypatch, info):
    spawner, calls = _pinned_spawner(monkeypatch, node_info=info, saves=[])
    spawner.home_node = "node-a"
    with pytest.raises(Exception, match="out of service") as failed:
        await spawner._prepare_home()
    assert "administrator" in str(failed.value)
    assert not [c for c in calls if c[0] == "save"]
    assert spawner.home_node == "node-a"


@pytest.mark.parametrize("saved, pinned", [(True, ""), (False, "node-a")])
async def test_the_stop_pins_the_home_only_when_its_save_failed(monkeypatch, saved, pinned):
    from spawner.spawner import ClassroomSpawner

    spawner, calls = _pinned_spawner(monkeypatch, node_info=READY, saves=[saved])
    monkeypatch.setattr(spawner, "_task", _async({"NodeID": "node-a"}))
    monkeypatch.setattr(spawner, "_scale_to_zero", _async(None))
    monkeypatch.setattr(ClassroomSpawner, "stop", lambda self, now=False: _async(None)())
    await spawner.stop()
    assert spawner.home_node == pinned


def _async(value):
    async def fn(*args, **kwargs):
        return value

    return fn


@pytest.mark.parametrize("fault", ["docker", "store"])
async def test_a_save_that_fails_midway_reports_it_never_raises(monkeypatch, fault):
    """The stop (and the next start's second try) count on the save's answer: Docker's API
    failing, or the store failing after the upload, is "not saved", not an exception."""
    from docker.errors import APIError
    from minio.error import S3Error

    spawner = _syncing_spawner()
    spawner._image_id = "sha256:abc"

    async def docker(method, *args, **kwargs):
        if method == "create_service" and fault == "docker":
            raise APIError("the engine refused")
        if method == "tasks":
            return [{"Status": {"State": "complete"}}]
        return {}

    def accept(*args):
        raise S3Error(None, "InternalError", "down", "/b", "r", "h", "b")

    async def in_pool(fn, *args):
        return fn(*args)

    monkeypatch.setattr(spawner, "docker", docker)
    monkeypatch.setattr(spawner, "_in_pool", in_pool)
    monkeypatch.setattr(homesync, "ensure_bucket", lambda place: None)
    monkeypatch.setattr(homesync, "latest_generation", lambda place, volume: 2)
    monkeypatch.setattr(homesync, "presign", lambda place, method, volume, gen: "url")
    monkeypatch.setattr(homesync, "accept", accept)
    assert await spawner._save_home("node-a") == 0


# ----- where a home is, for the services' helper services (hub/homes_api.py)


def _locating_spawner(monkeypatch, *, task=None, generation=4, node_info=READY, load=None):
    """A Swarm spawner whose Docker calls are stand-ins: ``task`` is its server's newest
    task (None: stopped), ``generation`` the newest saved copy, ``load`` what the one-shot
    restore answers ``(state, why, node)``."""
    spawner = _syncing_spawner()
    spawner._image_id = "sha256:abc"
    calls = []

    async def docker(method, *args, **kwargs):
        calls.append((method, args, kwargs))
        if method == "inspect_node":
            return node_info
        raise AssertionError(method)

    async def one_shot(suffix, command, env, constraints, timeout):
        calls.append(("one_shot", (suffix, env, constraints), {}))
        return load or ("complete", "", "node-b")

    async def in_pool(fn, *args):
        return fn(*args)

    monkeypatch.setattr(spawner, "docker", docker)
    monkeypatch.setattr(spawner, "_task", _async(task))
    monkeypatch.setattr(spawner, "_one_shot", one_shot)
    monkeypatch.setattr(spawner, "_in_pool", in_pool)
    monkeypatch.setattr(homesync, "latest_generation", lambda place, volume: generation)
    monkeypatch.setattr(homesync, "presign", lambda place, method, volume, gen: f"{method} {gen}")
    return spawner, calls


RUNNING = {"DesiredState": "running", "NodeID": "node-r", "Status": {"State": "running"}}


@pytest.mark.parametrize("write", [False, True])
async def test_a_running_servers_home_is_on_its_tasks_node_and_never_pinned(monkeypatch, write):
    spawner, calls = _locating_spawner(monkeypatch, task=RUNNING)
    assert await spawner.locate_home(write=write) == "node-r"
    assert spawner.home_node == ""  # its stop saves it as always
    assert not [c for c in calls if c[0] == "one_shot"]


@pytest.mark.parametrize(
    "desired, state",
    [
        ("running", "preparing"),  # starting
        ("running", "failed"),  # crashed, the hub has not noticed yet
        ("shutdown", "running"),  # stopping
    ],
)
async def test_a_server_starting_stopping_or_crashed_is_busy_not_brought_from_the_store(
    monkeypatch, desired, state
):
    """Its newest files are on its task's node: never an older copy from the store."""
    from spawner.swarm import HomeBusy

    task = {"DesiredState": desired, "NodeID": "n", "Status": {"State": state}}
    spawner, calls = _locating_spawner(monkeypatch, task=task)
    with pytest.raises(HomeBusy) as busy:
        await spawner.locate_home(write=True)
    assert busy.value.status_code == 409 and "try again" in str(busy.value)
    assert spawner.home_node == "" and not [c for c in calls if c[0] == "one_shot"]


async def test_a_write_to_a_running_server_keeps_its_home_pinned_if_it_stops_meanwhile(
    monkeypatch,
):
    """The helper may write after the stop's save: the next start saves it again from
    that node (or runs beside the helper) instead of restoring the copy without it."""
    from spawner.spawner import ClassroomSpawner

    spawner, _ = _locating_spawner(monkeypatch, task=RUNNING)
    assert await spawner.locate_home(write=True) == "node-r"
    assert spawner.home_node == ""  # running: not pinned while it runs
    monkeypatch.setattr(spawner, "_task", _async({"NodeID": "node-r"}))
    monkeypatch.setattr(spawner, "_scale_to_zero", _async(None))
    monkeypatch.setattr(spawner, "_save_home", _async(True))
    monkeypatch.setattr(ClassroomSpawner, "stop", lambda self, now=False: _async(None)())
    await spawner.stop()
    assert spawner.home_node == "node-r"  # saved, but a write may still land there
    spawner._write_lease_until = 0.0
    await spawner.stop()
    assert spawner.home_node == ""  # no write under way: free to move


async def test_a_locate_waits_for_a_start_of_the_same_server_and_the_other_way(monkeypatch):
    """A start never runs from the store's copy while a locate brings that copy onto a
    node for a helper to write into: the two take turns."""
    import asyncio

    from spawner.spawner import ClassroomSpawner

    spawner, _ = _locating_spawner(monkeypatch)
    release, order = asyncio.Event(), []

    async def slow_start(self):
        order.append("start begins")
        await release.wait()
        order.append("start ends")
        return ("10.0.0.9", 8888)

    monkeypatch.setattr(ClassroomSpawner, "start", slow_start)
    starting = asyncio.ensure_future(spawner.start())
    await asyncio.sleep(0.01)
    locating = asyncio.ensure_future(spawner.locate_home(write=True))
    await asyncio.sleep(0.05)
    assert order == ["start begins"] and not locating.done()
    release.set()
    assert await starting == ("10.0.0.9", 8888)
    assert await locating == "node-b" and order == ["start begins", "start ends"]


async def test_a_home_never_made_is_on_no_node(monkeypatch):
    spawner, calls = _locating_spawner(monkeypatch, generation=0)
    assert await spawner.locate_home(write=True) == ""
    assert spawner.home_node == "" and not [c for c in calls if c[0] == "one_shot"]


async def test_a_stopped_home_is_brought_from_the_store_once_per_generation(monkeypatch):
    spawner, calls = _locating_spawner(monkeypatch)
    assert await spawner.locate_home(write=False) == "node-b"
    (load,) = [c for c in calls if c[0] == "one_shot"]
    suffix, env, constraints = load[1]
    assert suffix == "load" and constraints == spawner.swarm_constraints
    assert env == {"CLASSHUB_HOME_RESTORE_URL": "GET 4", "CLASSHUB_HOME_GENERATION": "4"}
    assert spawner.home_node == ""  # a read changes nothing: the next start restores anywhere
    assert await spawner.locate_home(write=False) == "node-b"
    assert len([c for c in calls if c[0] == "one_shot"]) == 1


async def test_a_write_pins_the_home_so_the_next_start_saves_it_first(monkeypatch):
    spawner, _ = _locating_spawner(monkeypatch)
    assert await spawner.locate_home(write=True) == "node-b"
    assert spawner.home_node == "node-b" and spawner.get_state()["home_node"] == "node-b"
    # within the write lease the next start runs beside the helper, without a save
    saves = []

    async def save(node):
        saves.append(node)
        return True

    monkeypatch.setattr(spawner, "_save_home", save)
    monkeypatch.setattr(spawner, "_progress", lambda *a: None)
    await spawner._prepare_home()
    assert saves == [] and spawner.home_node == "node-b"
    # after it, the start saves the home from there first and may then run anywhere
    spawner._write_lease_until = 0.0
    await spawner._prepare_home()
    assert saves == ["node-b"] and spawner.home_node == ""


async def test_a_pinned_home_is_located_on_its_node_or_refused_when_out_of_service(monkeypatch):
    from spawner.swarm import HomeUnreachable

    spawner, calls = _locating_spawner(monkeypatch)
    spawner.home_node = "node-a"
    assert await spawner.locate_home(write=False) == "node-a"
    spawner, _ = _locating_spawner(monkeypatch, node_info={"Spec": {"Availability": "drain"}})
    spawner.home_node = "node-a"
    with pytest.raises(HomeUnreachable, match="drained or down") as refused:
        await spawner.locate_home(write=True)
    assert refused.value.status_code == 503


async def test_a_failed_load_is_unreachable_with_a_message(monkeypatch):
    from spawner.swarm import HomeUnreachable

    spawner, _ = _locating_spawner(monkeypatch, load=("failed", "no space", "node-b"))
    with pytest.raises(HomeUnreachable, match="try again"):
        await spawner.locate_home(write=True)
    assert spawner.home_node == ""


async def test_the_store_down_while_locating_is_unreachable_not_a_crash(monkeypatch):
    from minio.error import S3Error

    from spawner.swarm import HomeUnreachable

    spawner, _ = _locating_spawner(monkeypatch)

    def down(place, volume):
        raise S3Error(None, "InternalError", "down", "/b", "r", "h", "b")

    monkeypatch.setattr(homesync, "latest_generation", down)
    with pytest.raises(HomeUnreachable, match="could not be reached"):
        await spawner.locate_home(write=False)
