"""Class servers and faults, against the real hub, Docker and nx-27017: a teacher starts
and stops a student's class server, idle culling per class timeout, archiving stops
servers and keeps volumes; MongoDB down is a clear 503 and the service recovers by
itself; the hub keeps working while the service is down, and a restarted service puts
deleted class groups back."""

import signal
import time

import pytest
import requests

from harness.classes import (
    CULL_EVERY_SECOND,
    SERVICE,
    Person,
    assert_error,
    classes_stack,
    group,
    health,
    members,
    service_pid,
    signal_service,
    wait_healthy,
)
from harness.stack import start_mongo, wait_for

pytestmark = pytest.mark.integration

UNREACHABLE = "the classes database is unreachable; try again shortly"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from classes_stack(tmp_path_factory.mktemp("classes-servers"), env=CULL_EVERY_SECOND)


@pytest.fixture(scope="module")
def people(stack):
    people = {
        "admin": Person(stack, "admin", "admin"),
        "tina": Person(stack, "tina", "teacher"),
        "sam": Person(stack, "sam", "student"),
    }
    admin = people["admin"]
    for code, idle in (("lab", 3600), ("quick", 2)):
        r = admin.post(
            "api/classes",
            {
                "code": code,
                "name": code.title(),
                "teachers": ["tina"],
                "environment": {"idle_timeout": idle},
            },
        )
        assert r.status_code == 201, r.text
        r = people["tina"].post(f"api/classes/{code}/students", {"username": "sam"})
        assert r.status_code == 201, r.text
    return people


def state(person, code, user="sam"):
    servers = person.get(f"api/classes/{code}/servers").json()["servers"]
    return next(s for s in servers if s["username"] == user)


def wait_state(person, code, wanted, timeout=90, user="sam"):
    return wait_for(
        lambda: state(person, code, user)["state"] == wanted,
        timeout,
        interval=0.25,
        what=f"{user}/{code} {wanted}",
    )


def start(person, code, user="sam"):
    r = person.post(f"api/classes/{code}/servers/{user}")
    assert r.status_code in (200, 202), r.text
    return r.json()


def test_teacher_starts_and_stops_a_students_class_server(stack, people):
    tina, sam = people["tina"], people["sam"]
    assert start(tina, "lab")["state"] in ("pending", "running")
    wait_state(tina, "lab", "running")
    row = state(tina, "lab")
    assert row["url"] == "/user/sam/lab/" and row["last_activity"]
    mine = sam.get("api/classes").json()["classes"]
    assert {c["code"]: c["server"]["state"] for c in mine} == {"lab": "running", "quick": "stopped"}
    assert start(tina, "lab")["state"] == "running"  # starting twice is harmless
    r = tina.delete("api/classes/lab/servers/sam")
    assert r.status_code in (200, 202), r.text
    wait_state(tina, "lab", "stopped")
    assert stack.volumes(), "stopping a class server keeps its volume"


def test_idle_servers_are_culled_per_class_timeout(stack, people):
    tina = people["tina"]
    start(tina, "quick")
    start(tina, "lab")
    wait_state(tina, "lab", "running")
    # "quick" has a 2 s idle timeout and the culler runs every second
    wait_state(tina, "quick", "stopped", timeout=60)
    time.sleep(2)
    assert state(tina, "lab")["state"] == "running", "lab's 1 h timeout is not over"


def test_archiving_stops_servers_keeps_volumes_and_refuses_starts(stack, people):
    tina, sam = people["tina"], people["sam"]
    if state(tina, "lab")["state"] != "running":
        start(tina, "lab")
        wait_state(tina, "lab", "running")
    volumes = {v.name for v in stack.volumes()}
    r = tina.patch("api/classes/lab", {"archived": True})
    assert r.status_code == 200, r.text
    assert r.json()["stopped_servers"] == ["sam"]
    wait_state(tina, "lab", "stopped", timeout=60)
    assert {v.name for v in stack.volumes()} >= volumes
    assert group(stack, "class-lab")["properties"]["classhub"]["archived"] is True
    assert_error(tina.post("api/classes/lab/servers/sam"), 409, "archived")
    assert [
        c["archived"] for c in sam.get("api/classes").json()["classes"] if c["code"] == "lab"
    ] == [True]
    assert tina.patch("api/classes/lab", {"archived": False}).status_code == 200


def test_mongo_down_is_a_clear_503_and_the_service_recovers(stack, people):
    admin, tina = people["admin"], people["tina"]
    stack.mongo.stop()
    try:
        assert_error(admin.get("api/classes"), 503, UNREACHABLE)
        assert_error(tina.get("api/classes/lab/students"), 503, UNREACHABLE)
        assert_error(
            admin.post("api/classes", {"code": "outage", "name": "Outage"}), 503, UNREACHABLE
        )
        assert_error(tina.post("api/classes/lab/students", {"username": "admin"}), 503, UNREACHABLE)
        down = health(stack)
        assert down.status_code == 503
        assert down.json()["message"] == f"mongodb: {UNREACHABLE}"
        assert down.json()["checks"]["hub"] == {"ok": True}
        # the hub itself does not need MongoDB
        assert requests.get(stack.url + "/hub/health", timeout=5).status_code == 200
        assert stack.api("GET", "/users/sam").status_code == 200
    finally:
        stack.processes.remove(stack.mongo)
        stack.mongo, _ = start_mongo(stack.workdir / "mongo", port=stack.mongo_port)
        stack.processes.append(stack.mongo)
    wait_healthy(stack, timeout=30)  # no restart of the service
    assert [c["code"] for c in admin.get("api/classes").json()["classes"]] == ["lab", "quick"]
    assert admin.get("api/classes/outage").status_code == 404
    assert group(stack, "class-outage") is None
    assert tina.get("api/classes/lab/students").json()["students"] == ["sam"]


def test_hub_works_while_the_service_is_down_and_restart_reconciles(stack, people):
    # break the hub side of the classes behind the service's back
    assert stack.api("DELETE", "/groups/class-quick").status_code == 204
    r = stack.api("DELETE", "/groups/teachers-lab/users", json={"users": ["tina"]})
    assert r.status_code == 200
    assert stack.api("POST", "/groups/unrelated", json={"users": ["sam"]}).status_code == 201

    pid = signal_service(stack, signal.SIGTERM)
    wait_for(lambda: not _alive(pid), 20, what="classes service exits on SIGTERM")
    assert requests.get(stack.url + "/hub/health", timeout=5).status_code == 200
    assert stack.api("GET", "/users").status_code == 200
    browser = stack.browser()  # a sign-in at the hub still works
    assert stack.login_token(browser, stack.mint("sue", "student")).status_code == 302
    assert stack.whoami(browser) == "sue"
    r = requests.get(stack.url + SERVICE + "api/classes", timeout=10)
    assert r.status_code in (502, 503, 504)

    started = time.monotonic()
    stack.restart_hub()  # the hub starts its managed service again
    wait_healthy(stack)
    assert service_pid(stack) != pid
    wait_for(lambda: members(stack, "class-quick") == {"sam"}, 30, what="class-quick restored")
    assert group(stack, "class-quick")["properties"]["classhub"]["idle_timeout"] == 2
    assert members(stack, "teachers-lab") == {"tina"}
    assert members(stack, "unrelated") == {"sam"}, "groups of no class are left alone"
    assert time.monotonic() - started < 60


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
