"""The swarm tier (``make test-swarm``): SwarmClassroomSpawner on a real three-node Swarm.

A manager and two workers, each its own ``dockerd`` in its own network namespace
(harness/swarm.py), SeaweedFS on the host's address on the nodes' bridge as the store that
carries homes between nodes. The real spawner class starts real services (JupyterHub's own
``User`` and ORM objects around it, in memory): ten servers spread over both workers, never
on the manager; each task hardened; then one worker is drained the way the admin guide says
(its servers stopped, which saves their homes; the node drained; the servers started
again) and every moved student finds their file.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from pathlib import Path

import pytest
import requests
import yaml
from jupyterhub import orm
from jupyterhub.objects import Hub, Server
from jupyterhub.user import User

from harness.stack import start_s3
from harness.swarm import GATE_COOKIE, SwarmNodes, hub_api_stub
from spawner.swarm import SwarmClassroomSpawner

pytestmark = pytest.mark.swarm

IMAGE = "classhub/singleuser:latest"
NETWORK = "classhub-students"
PREFIX = "classhub"
STACK = Path(__file__).resolve().parents[2] / "deploy" / "swarm" / "stack.yml"
USERS = [f"student{i}" for i in range(10)]


@pytest.fixture(scope="module")
def loop():
    """One event loop for the module: the spawners' start queue belongs to it."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    reuse = os.environ.get("CLASSHUB_SWARM_REUSE")
    if reuse:
        # while developing: a Swarm made by `scripts/swarm/nodes.sh up ID` and loaded with
        # the images, kept up between runs (nodes.sh down ID removes it)
        yield SwarmNodes(workers=2, run_id=reuse).attach()
        return
    nodes = SwarmNodes(workers=2, run_id=os.environ.get("CLASSHUB_SWARM_RUN_ID"))
    nodes.start()
    try:
        nodes.load(IMAGE)
        nodes.load("classhub/traefik:latest", nodes=("m",))
        yield nodes
    finally:
        nodes.close()


@pytest.fixture(scope="module")
def s3(swarm, tmp_path_factory):
    """SeaweedFS on the bridge; ``s3["stop"]()`` and ``s3["start"]()`` take it down and
    bring it back at the same address with its data (the store down while homes save)."""
    key, secret = "swarm-" + secrets.token_hex(4), secrets.token_hex(16)
    workdir = tmp_path_factory.mktemp("s3")
    proc, port = start_s3(workdir, key, secret, host=swarm.host_addr)
    state = {"proc": proc}

    def stop():
        state["proc"].stop()

    def start():
        state["proc"], _ = start_s3(workdir, key, secret, port=port, host=swarm.host_addr)

    try:
        yield {
            "url": f"http://{swarm.host_addr}:{port}",
            "key": key,
            "secret": secret,
            "stop": stop,
            "start": start,
        }
    finally:
        state["proc"].stop()


@pytest.fixture(scope="module")
def traefik(swarm, tmp_path_factory):
    """deploy/swarm/stack.yml's Traefik and student network, deployed as the stack
    (the hub, the gate and the data services of the file are not part of this tier)."""
    stack = yaml.safe_load(STACK.read_text())
    traefik = stack["services"]["traefik"]
    traefik["networks"] = ["students"]
    # the manager node's own engine: a bind of /var/run/docker.sock would be the machine's
    socket = swarm.sock("m").removeprefix("unix://")
    traefik["volumes"] = [
        v.replace("${CLASSHUB_DOCKER_SOCKET:-/var/run/docker.sock}", socket)
        for v in traefik["volumes"]
    ]
    assert any(v.startswith(socket + ":") for v in traefik["volumes"])
    trimmed = {
        "version": stack["version"],
        "services": {"traefik": traefik},
        "networks": {"students": stack["networks"]["students"]},
        "volumes": {"traefik-dynamic": None},
        # its API entrypoint's middleware (the API answers only the core network)
        "configs": {"traefik-internal": {"file": str(STACK.parent / "traefik-internal.yml")}},
    }
    path = tmp_path_factory.mktemp("stack") / "stack.yml"
    path.write_text(yaml.safe_dump(trimmed))
    swarm.deploy(path, "classhub")
    yield f"http://{swarm.env['CHSW_ADDR_M']}:8000"


@pytest.fixture(scope="module")
def hub_url(swarm):
    with hub_api_stub(swarm.host_addr) as url:
        yield url


@pytest.fixture(scope="module")
def make_spawner(swarm, s3, hub_url, traefik):
    os.environ["DOCKER_HOST"] = swarm.sock("m")
    db = orm.new_session_factory("sqlite://")()
    users = {}

    def make(name: str) -> SwarmClassroomSpawner:
        if name not in users:
            orm_user = orm.User(name=name, admin=True)
            db.add(orm_user)
            db.commit()
            users[name] = User(orm_user, {})
        user = users[name]
        spawner = user._new_spawner(
            "",
            spawner_class=SwarmClassroomSpawner,
            hub=Hub(),
            hub_connect_url=hub_url,
            owner_gate_url=hub_url + "/check",
            oauth_client_id=f"jupyterhub-user-{name}",
            api_token=secrets.token_hex(16),
            network_name=NETWORK,
            prefix=PREFIX,
            route_name_prefix=PREFIX,
            image=IMAGE,
            mem_limit="256M",
            swarm_constraints=["node.labels.classhub.role==students"],
            homes_sync=True,
            homes_s3_url=s3["url"],
            homes_s3_access_key=s3["key"],
            homes_s3_secret_key=s3["secret"],
            homes_s3_bucket="swarm-homes",
            ready_timeout=240,
            start_concurrency=3,
        )
        # what User.spawn gives a spawner: the server's base URL (JUPYTERHUB_SERVICE_PREFIX)
        orm_server = orm.Server(base_url=user.url)
        db.add(orm_server)
        db.commit()
        spawner.server = Server(orm_server=orm_server)
        return spawner

    yield make
    os.environ.pop("DOCKER_HOST", None)


def task_of(swarm: SwarmNodes, spawner) -> dict:
    out = swarm.docker(
        "m",
        "service",
        "ps",
        spawner.object_name,
        "--filter",
        "desired-state=running",
        "--format",
        "{{json .}}",
        "--no-trunc",
    )
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(rows) == 1, rows
    return rows[0]


def node_of(swarm: SwarmNodes, spawner) -> str:
    ids = {v: k for k, v in swarm.node_ids().items()}
    task_id = task_of(swarm, spawner)["ID"]
    node_id = swarm.docker("m", "inspect", "--format", "{{.NodeID}}", task_id)
    return ids[node_id]


def container_of(swarm: SwarmNodes, node: str, spawner) -> str:
    out = swarm.docker(
        node, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={spawner.object_name}"
    )
    assert out, f"no container of {spawner.object_name} on {node}"
    return out.splitlines()[0]


def in_server(swarm: SwarmNodes, spawner, script: str) -> str:
    node = node_of(swarm, spawner)
    return swarm.docker(node, "exec", container_of(swarm, node, spawner), "sh", "-c", script)


@pytest.fixture(scope="module")
def running(swarm, make_spawner, loop):
    spawners = {name: make_spawner(name) for name in USERS}

    async def start_all():
        return await asyncio.gather(*(s.start() for s in spawners.values()))

    results = loop.run_until_complete(start_all())
    assert all(port == 8888 for _, port in results), results
    return spawners


def test_ten_servers_spread_over_both_workers_never_the_manager(swarm, running):
    placed = {name: node_of(swarm, s) for name, s in running.items()}
    counts = {n: list(placed.values()).count(n) for n in ("m", "w1", "w2")}
    print("servers per node:", counts)
    assert counts["m"] == 0
    assert counts["w1"] >= 3 and counts["w2"] >= 3, placed


def test_each_task_is_hardened_and_routed_by_swarm_labels(swarm, running):
    spawner = running[USERS[0]]
    status = in_server(swarm, spawner, "grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status")
    assert "CapBnd:\t0000000000000000" in status
    assert "NoNewPrivs:\t1" in status
    assert "Read-only file system" in in_server(swarm, spawner, "touch /usr/x 2>&1 || true")
    assert in_server(swarm, spawner, "id -u") == "1000"
    service = swarm.docker("m", "service", "inspect", spawner.object_name, "--format", "{{json .}}")
    spec = json.loads(service)["Spec"]
    assert spec["EndpointSpec"]["Mode"] == "dnsrr"
    assert spec["TaskTemplate"]["Resources"]["Limits"]["Pids"] == spawner.pids_limit
    assert spec["TaskTemplate"]["Resources"]["Reservations"]["MemoryBytes"] == 256 << 20
    labels = spec["Labels"]
    assert labels["traefik.swarm.network"] == NETWORK
    rules = [v for k, v in labels.items() if k.endswith(".rule")]
    assert rules == ['PathPrefix("/user/student0/")']


def test_a_worker_without_the_memory_gets_no_new_server(swarm, running, make_spawner, loop):
    """Placement by free memory: each server reserves its memory limit, so once a worker's
    unreserved memory is smaller than a server's limit, new servers go to the other worker,
    though both run as many servers."""
    ids = swarm.node_ids()
    total = int(
        swarm.docker(
            "m", "node", "inspect", "--format", "{{.Description.Resources.MemoryBytes}}", ids["w1"]
        )
    )
    reserved = 0
    for task in swarm.docker(
        "m", "node", "ps", ids["w1"], "--filter", "desired-state=running", "-q"
    ).split():
        spec = json.loads(
            swarm.docker("m", "inspect", "--format", "{{json .Spec.Resources}}", task)
        )
        reserved += int(((spec or {}).get("Reservations") or {}).get("MemoryBytes") or 0)
    filler = f"chfill{secrets.token_hex(3)}"
    spawners = [make_spawner(f"roomless{i}") for i in range(3)]

    async def each(method: str):
        return await asyncio.gather(*(getattr(s, method)() for s in spawners))

    try:
        # all of w1's unreserved memory but 100 MiB, less than one server's 256 MiB
        swarm.docker(
            "m", "service", "create", "--detach", "--quiet", "--name", filler,
            "--constraint", f"node.id=={ids['w1']}", "--restart-condition", "none",
            "--reserve-memory", str(total - reserved - (100 << 20)),
            "--entrypoint", "sleep", IMAGE, "600",
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while "Running" not in swarm.docker(
            "m", "service", "ps", filler, "--format", "{{.CurrentState}}"
        ):
            assert time.monotonic() < deadline, swarm.docker(
                "m", "service", "ps", filler, "--no-trunc"
            )
            time.sleep(0.5)
        loop.run_until_complete(each("start"))
        placed = [node_of(swarm, s) for s in spawners]
        print("with w1 full of reservations, new servers on:", placed)
        assert placed == ["w2", "w2", "w2"], placed
    finally:
        try:
            loop.run_until_complete(each("stop"))
        finally:
            swarm.docker("m", "service", "rm", filler)


def test_traefiks_swarm_provider_routes_each_server_behind_the_gate(running, traefik):
    owner = {"Cookie": GATE_COOKIE}

    def reached(path, headers=None):
        try:
            return requests.get(traefik + path, headers=headers or {}, timeout=5)
        except requests.RequestException:
            return None

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        r = reached("/user/student0/api", owner)
        if r is not None and r.status_code == 200:
            break
        time.sleep(1)
    for name in USERS:
        r = reached(f"/user/{name}/api", owner)
        assert r is not None and r.status_code == 200, (name, r and r.status_code)
        assert "version" in r.json()
        # without the gate's yes, Traefik never forwards to the server
        assert reached(f"/user/{name}/api").status_code == 401
    # nobody's path, and a server's path with another user's name in front: no route
    assert reached("/user/nobody/api", owner).status_code == 404
    assert reached("/user/x/user/student0/api", owner).status_code == 404


def test_a_home_not_saved_with_the_store_down_starts_on_its_node_then_moves_again(
    swarm, make_spawner, s3, loop
):
    """The store is down when a server stops: its home is not saved, the hub remembers the
    node (home_node) and the next start runs there, with the newest files, instead of
    restoring an older copy elsewhere; once the store is back the next stop saves it and
    the home may move again."""
    spawner = make_spawner("pinned")
    loop.run_until_complete(spawner.start())
    in_server(swarm, spawner, "echo 'newest work' > $HOME/proof.txt")
    node = node_of(swarm, spawner)
    node_id = swarm.node_ids()[node]
    s3["stop"]()
    try:
        loop.run_until_complete(spawner.stop())
        assert spawner.home_node == node_id  # not saved: pinned to its node
        assert spawner.get_state()["home_node"] == node_id
        loop.run_until_complete(spawner.start())  # the store still down: starts there
        assert node_of(swarm, spawner) == node
        assert in_server(swarm, spawner, "cat $HOME/proof.txt") == "newest work"
    finally:
        s3["start"]()
    loop.run_until_complete(spawner.stop())  # the store back: saved, free to move
    assert spawner.home_node == ""
    assert "home_node" not in spawner.get_state()


def test_what_carrying_a_home_costs_at_stop_and_start(swarm, make_spawner, loop):
    """The cost of homes that follow their student (admin guide, "Homes that follow their
    student"), printed: a start with an empty home, the stop that saves a home of 100 MB of
    random bytes (they do not compress), and the start on the other worker that restores
    it; the file comes back whole."""
    spawner = make_spawner("mover")
    timings = {}

    def timed(what, coro):
        started = time.monotonic()
        loop.run_until_complete(coro)
        timings[what] = time.monotonic() - started

    timed("start, empty home", spawner.start())
    digest = in_server(
        swarm,
        spawner,
        "head -c 100M /dev/urandom > $HOME/big.bin && sha256sum $HOME/big.bin | cut -c1-64",
    )
    first = node_of(swarm, spawner)
    timed("stop, saving 100 MB", spawner.stop())
    assert spawner.home_node == ""  # saved
    other = "w2" if first == "w1" else "w1"
    spawner.swarm_constraints = [f"node.id=={swarm.node_ids()[other]}"]
    timed("start on the other worker, restoring 100 MB", spawner.start())
    assert node_of(swarm, spawner) == other
    assert in_server(swarm, spawner, "sha256sum $HOME/big.bin | cut -c1-64") == digest
    timed("stop, saving 100 MB again", spawner.stop())
    for what, seconds in timings.items():
        print(f"homes that follow: {what}: {seconds:.1f} s")


def test_drained_workers_servers_start_on_the_other_node_with_their_files(swarm, running, loop):
    for name, spawner in running.items():
        in_server(swarm, spawner, f"echo 'work of {name}' > $HOME/proof.txt")
    placed = {name: node_of(swarm, s) for name, s in running.items()}
    moved = sorted(n for n, node in placed.items() if node == "w1")
    stayed = sorted(n for n, node in placed.items() if node == "w2")
    assert moved and stayed

    async def stop_moved():
        await asyncio.gather(*(running[n].stop() for n in moved))

    loop.run_until_complete(stop_moved())
    w1 = swarm.node_ids()["w1"]
    swarm.docker("m", "node", "update", "--availability", "drain", w1)

    async def start_moved():
        await asyncio.gather(*(running[n].start() for n in moved))

    loop.run_until_complete(start_moved())
    for name in moved:
        assert node_of(swarm, running[name]) == "w2"
        assert in_server(swarm, running[name], "cat $HOME/proof.txt") == f"work of {name}"
    for name in stayed:
        assert in_server(swarm, running[name], "cat $HOME/proof.txt") == f"work of {name}"

    async def stop_all():
        await asyncio.gather(*(s.stop() for s in running.values()))

    loop.run_until_complete(stop_all())
    left = swarm.docker(
        "m", "service", "ls", "-q", "--filter", "label=classhub.deployment=classhub"
    )
    assert not left
