"""The swarm tier, whole stack: deploy/swarm/stack.yml deployed by scripts/swarm/deploy.sh.

A manager and two workers (harness/swarm.py, their own run id); deploy.sh copies the images
onto them, deploys the stack and sets up the stores' identities with one-shot services.
Then, as a student, through Traefik on the manager's public port: sign in with a JWT,
start the default server through the hub API (it runs on a worker), start a kernel and run
``1+1`` over its websocket. From inside that server: Traefik's API answers 403 and the hub's
port is not reachable. The Sessions page shows the client's own address (Traefik's
X-Real-Ip, trusted from the core network). The hub, the gate, Traefik and the data
services run on the manager. Then ten students' servers started at once through the hub
spread over both workers; one worker drained (its students' servers stopped through the
hub, which saves their homes to S3), they start on the other with their files.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from harness.kernel import execute_request
from harness.stack import mint_token
from harness.swarm import SwarmNodes, deploy_stack, env_value, stack_env
from tests.swarm import submit_flow

pytestmark = pytest.mark.swarm

ROOT = Path(__file__).resolve().parents[2]
STACK = "classhub"
STUDENT = "swarmstudent"
MANAGER_SERVICES = ("traefik", "hub", "gate", "postgres", "redis", "mongo", "s3")


@pytest.fixture(scope="module")
def swarm():
    base = os.environ.get("CLASSHUB_SWARM_RUN_ID")
    nodes = SwarmNodes(workers=2, run_id=(base + "k")[:6] if base else None)
    nodes.start()
    try:
        yield nodes
    finally:
        if os.environ.get("CLASSHUB_SWARM_KEEP"):
            # while developing: look at it, then `scripts/swarm/nodes.sh down <id>`
            print(f"kept the Swarm {nodes.id}")
        else:
            nodes.close()


def service_logs(swarm: SwarmNodes) -> str:
    """The last lines of every stack service's log (stdout and stderr: JupyterHub logs to
    stderr)."""
    out = []
    for name in MANAGER_SERVICES:
        done = subprocess.run(
            ["docker", "-H", swarm.sock("m"), "service", "logs", "--no-task-ids", "--tail", "80"]
            + [f"{STACK}_{name}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=60,
            check=False,
        )
        out.append(f"===== {STACK}_{name} =====\n{done.stdout}")
    return "\n".join(out)


class Deployment:
    """The deployed stack; ``logs()`` is what tests/conftest.py shows with a failure of a
    test that takes the ``stack`` fixture."""

    def __init__(self, swarm: SwarmNodes, url: str, jwt_secret: str, env: dict, run_dir: Path):
        self.swarm, self.url, self.jwt_secret = swarm, url, jwt_secret
        self.env, self.run_dir = env, run_dir

    def logs(self) -> str:
        return service_logs(self.swarm)


def deploy(env: dict) -> None:
    started = time.monotonic()
    done = deploy_stack(env)
    print(f"deploy.sh: exit {done.returncode} after {time.monotonic() - started:.0f} s")
    print(done.stderr[-3000:])
    if done.returncode != 0:
        pytest.fail(f"deploy.sh failed:\n{done.stdout[-6000:]}\n{done.stderr[-6000:]}")
    assert "classhub is up on the Swarm" in done.stdout


@pytest.fixture(scope="module")
def stack(swarm, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    env = stack_env(swarm, run_dir)
    deploy(env)
    yield Deployment(
        swarm,
        f"http://{swarm.env['CHSW_ADDR_M']}:8000",
        env_value(run_dir / "classhub.env", "CLASSHUB_JWT_SECRET"),
        env,
        run_dir,
    )
    if os.environ.get("CLASSHUB_SWARM_SHOW_LOGS"):
        print(service_logs(swarm))


def task_nodes(swarm: SwarmNodes, service: str) -> set[str]:
    ids = {v: k for k, v in swarm.node_ids().items()}
    out = swarm.docker(
        "m", "service", "ps", service, "--filter", "desired-state=running", "--format", "{{.ID}}"
    )
    nodes = set()
    for task in out.split():
        nodes.add(ids[swarm.docker("m", "inspect", "--format", "{{.NodeID}}", task)])
    return nodes


def signed_in(stack, name: str, role: str = "student"):
    """A browser signed in as ``name`` with a JWT, and a function calling the hub API as
    that browser does."""
    browser = requests.Session()
    token = mint_token(name, role, key=stack.jwt_secret)
    r = browser.post(
        stack.url + "/hub/login", data={"token": token}, allow_redirects=False, timeout=60
    )
    assert r.status_code == 302, (r.status_code, r.text[:500])
    xsrf = next((c.value for c in browser.cookies if c.name == "_xsrf"), "")

    def api(method, path, **kwargs):
        return browser.request(
            method,
            stack.url + "/hub/api" + path,
            headers={"X-XSRFToken": xsrf},
            timeout=60,
            allow_redirects=False,
            **kwargs,
        )

    return browser, api


def wait_for_servers(swarm, apis: dict, *, running: bool, timeout: float = 420) -> None:
    """Wait until each person's default server is ready (``running``) or gone."""
    deadline = time.monotonic() + timeout
    waiting = set(apis)
    while waiting:
        for name in sorted(waiting):
            server = apis[name]("GET", f"/users/{name}").json().get("servers", {}).get("")
            if running and server and server.get("ready"):
                waiting.discard(name)
            elif running and (not server or not server.get("pending")):
                pytest.fail(f"{name}'s server did not start: {server}\n{service_logs(swarm)}")
            elif not running and not server:
                waiting.discard(name)
        if waiting and time.monotonic() > deadline:
            pytest.fail(f"still waiting for {sorted(waiting)}\n{service_logs(swarm)}")
        time.sleep(1)


@pytest.fixture(scope="module")
def student(swarm, stack):
    """A student signed in with a JWT, their default server started through the hub API."""
    browser, api = signed_in(stack, STUDENT)

    started = time.monotonic()
    r = api("POST", f"/users/{STUDENT}/server")
    assert r.status_code in (201, 202), (r.status_code, r.text[:500], service_logs(swarm))
    deadline = time.monotonic() + 300
    while True:
        model = api("GET", f"/users/{STUDENT}").json()
        server = model.get("servers", {}).get("", {})
        if server.get("ready"):
            break
        if not server.get("pending") or time.monotonic() > deadline:
            pytest.fail(f"the server did not start: {model}\n{service_logs(swarm)}")
        time.sleep(1)
    print(f"spawn through the hub: ready after {time.monotonic() - started:.1f} s")
    # JupyterLab as a browser opens it: the owner gate lets the student's session through,
    # the server signs them in with the hub's OAuth (the server's calls to the hub go
    # through Traefik's students entrypoint)
    r = browser.get(stack.url + f"/user/{STUDENT}/lab", timeout=120)
    assert r.status_code == 200, (r.status_code, r.url, r.text[:500])
    assert r.url.endswith(f"/user/{STUDENT}/lab")
    return {"browser": browser, "url": stack.url, "api": api}


def student_service(swarm: SwarmNodes, student: str = STUDENT) -> str:
    out = swarm.docker(
        "m",
        "service",
        "ls",
        "--filter",
        "label=classhub.deployment=classhub",
        "--format",
        "{{.Name}}",
    )
    names = [n for n in out.split() if student in n]
    assert len(names) == 1, out
    return names[0]


def in_server(swarm: SwarmNodes, script: str, student: str = STUDENT) -> str:
    service = student_service(swarm, student)
    (node,) = task_nodes(swarm, service)
    container = swarm.docker(
        node, "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={service}"
    ).split()[0]
    return swarm.docker(node, "exec", container, "python3", "-I", "-c", script, timeout=60)


def test_the_hub_gate_traefik_and_data_services_run_on_the_manager(swarm, stack):
    for name in MANAGER_SERVICES:
        assert task_nodes(swarm, f"{STACK}_{name}") == {"m"}, name
    # the stores' set-up services are gone, with the administrator credentials they had
    left = swarm.docker("m", "service", "ls", "-q", "--filter", "label=classhub.setup=true")
    assert not left


def test_a_students_server_runs_on_a_worker(swarm, stack, student):
    assert task_nodes(swarm, student_service(swarm)) <= {"w1", "w2"}
    assert len(task_nodes(swarm, student_service(swarm))) == 1


def cookies_for(browser: requests.Session, path: str) -> dict[str, str]:
    return {c.name: c.value for c in browser.cookies if path.startswith(c.path or "/")}


async def run_one_plus_one(url: str, base: str, browser: requests.Session) -> str:
    cookies = cookies_for(browser, base)
    r = browser.post(
        url + base + "api/kernels",
        headers={"X-XSRFToken": cookies.get("_xsrf", "")},
        json={"name": "python3"},
        timeout=60,
    )
    assert r.status_code == 201, (r.status_code, r.text[:500])
    conn = await websocket_connect(
        HTTPRequest(
            url.replace("http://", "ws://") + f"{base}api/kernels/{r.json()['id']}/channels",
            headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())},
            connect_timeout=20,
            request_timeout=60,
        )
    )
    try:
        msg_id, message = execute_request("1+1")
        conn.write_message(message)
        while True:
            raw = await asyncio.wait_for(conn.read_message(), 60)
            assert raw is not None, "the kernel's websocket closed before answering"
            msg = json.loads(raw)
            if (
                msg.get("parent_header", {}).get("msg_id") == msg_id
                and msg["msg_type"] == "execute_result"
            ):
                return msg["content"]["data"]["text/plain"]
    finally:
        conn.close()


def test_a_kernel_runs_one_plus_one_through_traefik(stack, student):
    base = f"/user/{STUDENT}/"
    # without the student's session, the owner gate stops the request at Traefik
    r = requests.get(student["url"] + base + "api/status", allow_redirects=False, timeout=30)
    assert r.status_code == 302 and "/hub/login" in r.headers["Location"]
    started = time.monotonic()
    result = asyncio.run(run_one_plus_one(student["url"], base, student["browser"]))
    print(f"kernel started and 1+1 answered in {time.monotonic() - started:.1f} s")
    assert result == "2"


def test_the_sessions_page_shows_the_clients_address_not_traefiks(stack, student):
    """In the stack Traefik reaches the hub over the core network from an address Docker
    picks: the hub believes its X-Real-Ip (CLASSHUB_TRUSTED_PROXIES, a network), so the
    login limits and the Sessions page see the client, not Traefik."""
    _, admin = signed_in(stack, "swarmadmin", "admin")
    r = admin("GET", "/classhub/sessions")
    assert r.status_code == 200, (r.status_code, r.text[:500])
    sessions = {s["user"]: s for s in r.json()["sessions"]}
    host = stack.url.split("//", 1)[1].rsplit(":", 1)[0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host, 9))
        ours = probe.getsockname()[0]
    assert sessions[STUDENT]["address"] == ours, sessions[STUDENT]
    assert sessions["swarmadmin"]["address"] == ours, sessions["swarmadmin"]


CONNECT = """
import socket, sys, urllib.error, urllib.request
what = sys.argv[1] if len(sys.argv) > 1 else ""
def reach(host, port):
    try:
        socket.create_connection((host, port), timeout=5).close()
        return "open"
    except OSError as e:
        return type(e).__name__
try:
    urllib.request.urlopen("http://traefik:8099/api/http/routers", timeout=10)
    api = "200"
except urllib.error.HTTPError as e:
    api = str(e.code)
except OSError as e:
    api = type(e).__name__
print(api, reach("hub", 8081), reach("{core}", 8081), reach("traefik", 8081))
"""


def test_the_traefik_api_and_the_hub_port_are_closed_to_a_students_server(swarm, stack, student):
    hub_task = swarm.docker(
        "m",
        "ps",
        "-q",
        "--filter",
        f"label=com.docker.swarm.service.name={STACK}_hub",
    ).split()[0]
    nets = json.loads(
        swarm.docker("m", "inspect", "--format", "{{json .NetworkSettings.Networks}}", hub_task)
    )
    core = nets[f"{STACK}_core"]["IPAddress"]
    assert core.startswith("10.217.0.")
    api, hub_by_name, hub_core, traefik_students = in_server(
        swarm, CONNECT.replace("{core}", core)
    ).split()
    # Traefik's API: only the core network and loopback (the middleware classhub-internal)
    assert api == "403"
    # the hub listens on its core address only: not on the students network...
    assert hub_by_name in ("ConnectionRefusedError", "TimeoutError", "timeout")
    # ...and the core network is not reachable from there
    assert hub_core != "open"
    # the way to the hub API a server needs: Traefik's students entrypoint
    assert traefik_students == "open"


def test_stopping_the_server_saves_the_home_through_the_homes_identity(swarm, stack, student):
    """The stop saves the home from the worker into the S3 store, signed by the hub's own
    S3 identity for homes (keys homes/ only; the bucket made by deploy.sh); runs before the
    crowd's tests, which drain a worker."""
    service = student_service(swarm)
    r = student["api"]("DELETE", f"/users/{STUDENT}/server")
    assert r.status_code in (202, 204), (r.status_code, r.text[:500])
    deadline = time.monotonic() + 180
    while student["api"]("GET", f"/users/{STUDENT}").json().get("servers", {}).get(""):
        assert time.monotonic() < deadline, "the server did not stop"
        time.sleep(1)
    left = swarm.docker("m", "service", "ls", "-q", "--filter", f"name={service}")
    assert not left
    assert f"Saved the home of {STUDENT}" in stack.logs()


CROWD = [f"swarmcrowd{k}" for k in range(10)]


SUBMITTER = "swarmsubmitter"


def test_a_student_submits_from_a_server_on_a_worker(swarm, stack):
    """Sign-in → spawn → write → submit: an admin makes a class for a teacher, who enrols a
    student and sets an assignment; the student's class server starts through the hub on a
    worker, a file goes into the assignment folder through the contents API, the student
    submits (the grades service's helper runs as a one-shot service on that worker), and
    the teacher reads the file back from the stored version. Then, with the server
    stopped (its home only in the store): a collect reads the home and returned feedback
    is written into it (the hub brings it onto a node first), and the next start finds
    the feedback beside the student's file."""
    code, slug, name, data = "swarmlab", "hw1", "answer.py", b"print(6 * 7)\n"
    path = f"{code}/assignments/{slug}/{name}"
    admin_browser, _ = signed_in(stack, "swarmadmin", "admin")
    teacher_browser, _ = signed_in(stack, "swarmteacher", "teacher")
    browser, api = signed_in(stack, SUBMITTER)  # signed in once: a student of this hub
    made = submit_flow.make_class_with_assignment(
        stack, admin_browser, teacher_browser, "swarmteacher", SUBMITTER, code, slug
    )
    submit_flow.start_class_server(stack, api, SUBMITTER, code)
    assert task_nodes(swarm, student_service(swarm, SUBMITTER)) <= {"w1", "w2"}
    submit_flow.open_server(stack, browser, SUBMITTER, code)
    submit_flow.write_into_server(stack, browser, SUBMITTER, code, path, data)

    student_grades = submit_flow.service_client(stack, browser, "grades")
    started = time.monotonic()
    version = submit_flow.submit(student_grades, code, slug)
    print(f"submit through a helper service on the worker: {time.monotonic() - started:.1f} s")
    assert version["version"] == 1 and version["duplicate"] is False, version
    assert version["taken"]["files"] == 1, version["taken"]

    row = submit_flow.submissions(made["grades"], code, slug)[SUBMITTER]
    assert row["latest"]["id"] == version["id"], row
    assert submit_flow.submission_files(made["grades"], version["id"]) == {name: data}

    # the server stops (its home saved into the store from the worker) ...
    submit_flow.stop_class_server(stack, api, SUBMITTER, code)
    teacher = made["grades"]
    # ... a collect reads the stopped home (the hub brings it from the store onto a node)
    started = time.monotonic()
    collected = submit_flow.collect(teacher, code, slug)[SUBMITTER]
    print(f"collect of a stopped home (brought from the store): {time.monotonic() - started:.1f} s")
    assert collected["status"] == "collected" and collected["duplicate"] is True, collected
    # ... and returned feedback is written into it there
    submit_flow.grade(teacher, version["id"], points=9, feedback="Well done: 42.")
    started = time.monotonic()
    returned = submit_flow.return_grade(teacher, version["id"])
    print(f"feedback into the stopped home: {time.monotonic() - started:.1f} s")
    assert returned["feedback_files_delivered"] >= 1, returned
    # the next start finds the feedback, wherever the hub places the server
    submit_flow.start_class_server(stack, api, SUBMITTER, code)
    feedback = f"{code}/feedback/{slug}/feedback.md"
    read = f"import os; print(open(os.path.join(os.environ['HOME'], {feedback!r})).read())"
    assert "Well done: 42." in in_server(swarm, read, SUBMITTER)
    assert in_server(swarm, check_answer(path), SUBMITTER) == hashlib.sha256(data).hexdigest()
    submit_flow.stop_class_server(stack, api, SUBMITTER, code)
    # the teacher looks into the stopped home (the classes service's helper service runs
    # on the node that holds it; its job through the classes service's own S3 keys)
    started = time.monotonic()
    folder = made["classes"](
        "GET",
        f"classes/{code}/students/{SUBMITTER}/work",
        params={"path": f"{code}/assignments/{slug}"},
    )
    assert folder.status_code == 200 and name in folder.text, folder.text[:2000]
    look = made["classes"](
        "GET",
        f"classes/{code}/students/{SUBMITTER}/work/file",
        params={"path": path, "download": "1"},
    )
    print(f"a teacher's look into the stopped home: {time.monotonic() - started:.1f} s")
    assert look.status_code == 200 and look.content == data, (look.status_code, look.text[:500])


def check_answer(path: str) -> str:
    """A script printing the sha256 of ``~/<path>``, for :func:`in_server`."""
    return (
        "import hashlib, os; print(hashlib.sha256(open(os.path.join(os.environ['HOME'], "
        f"{path!r}), 'rb').read()).hexdigest())"
    )


@pytest.fixture(scope="module")
def crowd(swarm, stack):
    """Ten students signed in with JWTs, their servers started at once through the hub."""
    apis = {name: signed_in(stack, name)[1] for name in CROWD}
    started = time.monotonic()
    for name, api in apis.items():
        r = api("POST", f"/users/{name}/server")
        assert r.status_code in (201, 202), (name, r.status_code, r.text[:500])
    wait_for_servers(swarm, apis, running=True)
    print(f"10 servers through the hub: all ready after {time.monotonic() - started:.1f} s")
    return apis


def placement(swarm) -> dict[str, str]:
    placed = {}
    for name in CROWD:
        (node,) = task_nodes(swarm, student_service(swarm, name))
        placed[name] = node
    return placed


def test_ten_servers_started_through_the_hub_spread_over_both_workers(swarm, crowd):
    placed = placement(swarm)
    counts = {n: list(placed.values()).count(n) for n in ("m", "w1", "w2")}
    print("servers per node:", counts)
    assert counts["m"] == 0
    assert counts["w1"] >= 3 and counts["w2"] >= 3, placed


def test_a_drained_workers_students_start_on_the_other_node_with_their_files(swarm, crowd):
    """Drain a worker as the admin guide says (its students' servers stopped through the
    hub first, which saves their homes to S3): started again through the hub, they run on
    the other worker with their files; the others never stopped."""
    for name in CROWD:
        in_server(swarm, PROOF.format(text=f"work of {name}"), name)
    placed = placement(swarm)
    moved = sorted(n for n, node in placed.items() if node == "w1")
    stayed = sorted(n for n, node in placed.items() if node == "w2")
    assert moved and stayed
    for name in moved:
        r = crowd[name]("DELETE", f"/users/{name}/server")
        assert r.status_code in (202, 204), (name, r.status_code, r.text[:500])
    wait_for_servers(swarm, {n: crowd[n] for n in moved}, running=False, timeout=240)
    swarm.docker("m", "node", "update", "--availability", "drain", swarm.node_ids()["w1"])
    for name in moved:
        r = crowd[name]("POST", f"/users/{name}/server")
        assert r.status_code in (201, 202), (name, r.status_code, r.text[:500])
    wait_for_servers(swarm, {n: crowd[n] for n in moved}, running=True)
    after = placement(swarm)
    assert {after[n] for n in CROWD} == {"w2"}, after
    for name in CROWD:
        assert in_server(swarm, READ_PROOF, name) == f"work of {name}", name


PROOF = "import os; open(os.path.join(os.environ['HOME'], 'proof.txt'), 'w').write({text!r})"
READ_PROOF = "import os; print(open(os.path.join(os.environ['HOME'], 'proof.txt')).read())"


# ----- backups of the Swarm stack (scripts/swarm/backup.sh; last: it replaces the stack)

DRILL, LEFTOVER = CROWD[0], CROWD[1]
WRITE = "import os; open(os.path.join(os.environ['HOME'], {name!r}), 'w').write({text!r})"
READ = "import os; print(open(os.path.join(os.environ['HOME'], {name!r})).read())"


def run_backup(env: dict, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/swarm/backup.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    took = time.monotonic() - started
    print(f"backup.sh {args[0]}: exit {done.returncode} after {took:.1f} s")
    print(done.stderr[-2500:])
    return done, took


def remove_stack(swarm: SwarmNodes) -> None:
    """Everything of the stack gone from the manager: its services (the hub's students'
    servers too), containers, the stores' volumes and its networks. The workers keep their
    volumes of students' homes, as machines that survived a disaster would."""
    # the students' servers first: they are on the stack's students network
    servers = swarm.docker("m", "service", "ls", "-q", "--filter", "label=classhub.managed=true")
    if servers.split():
        swarm.docker("m", "service", "rm", *servers.split())
    namespace = f"label=com.docker.stack.namespace={STACK}"
    deadline = time.monotonic() + 240
    # `docker stack rm` fails on a network whose last tasks are still going; again until
    # nothing of the stack is left
    while True:
        try:
            swarm.docker("m", "stack", "rm", STACK)
        except RuntimeError as e:
            print(f"stack rm: {e}")
        left = swarm.docker("m", "network", "ls", "-q", "--filter", namespace).split()
        if not left and not swarm.docker("m", "ps", "-aq", "--filter", namespace).split():
            break
        assert time.monotonic() < deadline, "the stack's containers or networks did not go"
        time.sleep(2)
    for volume in swarm.docker("m", "volume", "ls", "-q", "--filter", namespace).split():
        swarm.docker("m", "volume", "rm", volume)


def test_a_backup_restores_one_home_and_a_fresh_stack_with_every_checksum(
    swarm, stack, crowd, tmp_path_factory
):
    """The restore drill on a Swarm: back up the running stack (every store; every home,
    ten of them in servers running on a worker), restore one student's home in under 60 s,
    then remove the stack with its stores' data, deploy a fresh one with the same settings,
    restore the backup into it and compare the checksums of everything. A worker's
    leftover volume of a home, with a file changed after the backup, does not win over
    the backup's copy."""
    backups = tmp_path_factory.mktemp("backups")
    env = {**stack.env, "CLASSHUB_BACKUP_DIR": str(backups)}
    in_server(swarm, WRITE.format(name="drill.txt", text="before the backup"), DRILL)
    # the worker drained above is back for the backup: the submitter's home is still tied
    # to it (feedback was written there within the write lease), and is saved from there
    w1 = swarm.node_ids()["w1"]
    swarm.docker("m", "node", "update", "--availability", "active", w1)
    done, took = run_backup(env, "backup")
    swarm.docker("m", "node", "update", "--availability", "drain", w1)
    assert done.returncode == 0, done.stderr[-4000:]
    (name,) = os.listdir(backups)
    m = json.loads((backups / name / "manifest.json").read_text())
    assert {"postgres", "mongo", "s3", "homes", "config"} <= set(m["parts"]), m["parts"].keys()
    assert m["parts"]["homes"]["mode"] == "swarm"
    suffixes = {h["suffix"] for h in m["parts"]["homes"]["homes"]}
    for person in [*CROWD, STUDENT, SUBMITTER]:
        assert any(s.startswith(f"home-{person}-") for s in suffixes), (person, suffixes)
    assert not [w for w in m["warnings"] if "NOT" in w], m["warnings"]
    assert m["parts"]["config"]["included"] == ["classhub.env", "hub-data"]

    # one home: refused while its server runs, restored in under 60 s once it is stopped
    in_server(swarm, WRITE.format(name="drill.txt", text="after the backup"), DRILL)
    done, _ = run_backup(env, "restore-home", "latest", "--user", DRILL)
    assert done.returncode == 1 and "stop it first" in done.stderr, done.stderr[-2000:]
    assert crowd[DRILL]("DELETE", f"/users/{DRILL}/server").status_code in (202, 204)
    wait_for_servers(swarm, {DRILL: crowd[DRILL]}, running=False, timeout=240)
    # (its time, target under 60 s, is bench/swarm_bench.py's to measure)
    done, _ = run_backup(env, "restore-home", "latest", "--user", DRILL)
    assert done.returncode == 0, done.stderr[-4000:]
    assert crowd[DRILL]("POST", f"/users/{DRILL}/server").status_code in (201, 202)
    wait_for_servers(swarm, {DRILL: crowd[DRILL]}, running=True)
    assert in_server(swarm, READ.format(name="drill.txt"), DRILL) == "before the backup"

    # a disaster: the stack and its stores' data gone; the workers keep their volumes, and
    # one of them has a home with a file changed after the backup
    in_server(swarm, PROOF.format(text="written after the backup"), LEFTOVER)
    remove_stack(swarm)
    deploy(stack.env)
    done, took = run_backup(env, "restore", "latest")
    assert done.returncode == 0, done.stderr[-4000:]
    assert "every table, collection, bucket and home matches the backup" in done.stderr
    deadline = time.monotonic() + 300
    while requests.get(stack.url + "/hub/health", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the hub did not come back after the restore"
        time.sleep(2)
    # students sign in again and find their files as the backup holds them
    _, api = signed_in(stack, LEFTOVER)
    assert api("POST", f"/users/{LEFTOVER}/server").status_code in (201, 202)
    wait_for_servers(swarm, {LEFTOVER: api}, running=True)
    assert in_server(swarm, READ_PROOF, LEFTOVER) == f"work of {LEFTOVER}"
    _, api = signed_in(stack, DRILL)
    assert api("POST", f"/users/{DRILL}/server").status_code in (201, 202)
    wait_for_servers(swarm, {DRILL: api}, running=True)
    assert in_server(swarm, READ.format(name="drill.txt"), DRILL) == "before the backup"
