"""The stack's life cycle: hub restarts keep servers; `make down` + `make up` lose nothing.

Runs after test_stack.py (file order): it takes the whole stack down and up again.
"""

import subprocess

import pytest
import requests

from harness.stack import wait_for

pytestmark = pytest.mark.e2e


def test_restart_and_down_up_keep_everything(deployment, account):
    name, _, api = account
    base = f"{deployment.url}/user/{name}/"
    api.post(f"{deployment.url}/hub/api/users/{name}/server", timeout=120)
    deployment.wait_ready(api, name)
    r = api.put(
        base + "api/contents/kept.txt",
        json={"type": "file", "format": "text", "content": "survives"},
        timeout=10,
    )
    assert r.status_code in (200, 201), r.text
    (before,) = deployment.student_containers(name)

    # 1. restarting the hub keeps the running server, its container and its route
    r = deployment.compose("restart", "hub")
    assert r.returncode == 0, r.stderr
    wait_for(
        lambda: requests.get(deployment.url + "/hub/health", timeout=3).ok,
        120,
        interval=0.5,
        what="hub back",
    )
    assert deployment.server(api, name)["ready"]
    assert [c.id for c in deployment.student_containers(name)] == [before.id]
    assert api.get(base + "api/contents/kept.txt", timeout=10).json()["content"] == "survives"

    # 2. make down + make up: accounts, tokens, the hub database and home folders survive
    down = deployment.stack.down()
    assert down.returncode == 0, down.stderr
    assert deployment.student_containers(name) == []
    with pytest.raises(requests.ConnectionError):
        requests.get(deployment.url + "/hub/health", timeout=3)
    up = deployment.stack.up()
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    # the same API token still works: the hub database was kept
    assert api.get(f"{deployment.url}/hub/api/user", timeout=10).json()["name"] == name
    wait_for(
        lambda: deployment.server(api, name) is None,
        60,
        interval=0.5,
        what="hub noticed the stopped server",
    )
    api.post(f"{deployment.url}/hub/api/users/{name}/server", timeout=120)
    deployment.wait_ready(api, name)
    assert api.get(base + "api/contents/kept.txt", timeout=10).json()["content"] == "survives"


def test_data_services_come_back_after_their_containers_restart(deployment, account):
    """What a host reboot does to the stack: every data service's container restarts in place
    (same writable layer, same volumes). Each must come back healthy by itself, and the hub
    and the classes service must work again without anyone touching them."""
    name, _, api = account
    services = ["postgres", "redis", "mongo", "s3"]
    r = deployment.compose("restart", *services)
    assert r.returncode == 0, r.stderr

    def healthy():
        out = deployment.compose("ps", "-q", *services).stdout.split()
        states = [
            subprocess.run(
                ["docker", "inspect", "-f", "{{.State.Health.Status}}", cid],
                capture_output=True,
                text=True,
            ).stdout.strip()
            for cid in out
        ]
        return len(states) == len(services) and all(s == "healthy" for s in states)

    wait_for(healthy, 120, interval=1, what="data services healthy after a restart")
    wait_for(
        lambda: api.get(f"{deployment.url}/hub/api/user", timeout=5).ok,
        60,
        interval=0.5,
        what="hub answering after its data services restarted",
    )
    wait_for(
        lambda: (
            api.get(f"{deployment.url}/services/classes/api/classes", timeout=5).status_code == 200
        ),
        60,
        interval=0.5,
        what="classes service reading MongoDB again",
    )
