"""The stack's life cycle: hub restarts keep servers; `make down` + `make up` lose nothing.

Runs after test_stack.py (file order): it takes the whole stack down and up again.
"""

import os
import subprocess
import time

import docker
import pytest
import requests

from tests.e2e.conftest import REPO, compose

pytestmark = pytest.mark.e2e


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(what)


def server(deployment, api, name):
    return api.get(f"{deployment.url}/hub/api/users/{name}", timeout=10).json()["servers"].get("")


def student_container(name):
    client = docker.from_env()
    try:
        return [
            c
            for c in client.containers.list(filters={"label": "classhub.deployment=classhub"})
            if c.labels.get("classhub.user") == name
        ]
    finally:
        client.close()


def test_restart_and_down_up_keep_everything(deployment, account):
    name, _, api = account
    base = f"{deployment.url}/user/{name}/"
    api.post(f"{deployment.url}/hub/api/users/{name}/server", timeout=120)
    wait(lambda: (server(deployment, api, name) or {}).get("ready"), 120, "server ready")
    r = api.put(
        base + "api/contents/kept.txt",
        json={"type": "file", "format": "text", "content": "survives"},
        timeout=10,
    )
    assert r.status_code in (200, 201), r.text
    (before,) = student_container(name)

    # 1. restarting the hub keeps the running server, its container and its route
    r = compose("restart", "hub")
    assert r.returncode == 0, r.stderr
    wait(lambda: requests.get(deployment.url + "/hub/health", timeout=3).ok, 120, "hub back")
    assert server(deployment, api, name)["ready"]
    assert [c.id for c in student_container(name)] == [before.id]
    assert api.get(base + "api/contents/kept.txt", timeout=10).json()["content"] == "survives"

    # 2. make down + make up: accounts, tokens, the hub database and home folders survive
    env = {**os.environ, "CLASSHUB_SKIP_BUILD": "1"}
    down = subprocess.run(
        ["bash", "scripts/down.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert down.returncode == 0, down.stderr
    assert student_container(name) == []
    with pytest.raises(requests.ConnectionError):
        requests.get(deployment.url + "/hub/health", timeout=3)
    up = subprocess.run(
        ["bash", "scripts/up.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    # the same API token still works: the hub database was kept
    assert api.get(f"{deployment.url}/hub/api/user", timeout=10).json()["name"] == name
    wait(lambda: server(deployment, api, name) is None, 60, "hub noticed the stopped server")
    api.post(f"{deployment.url}/hub/api/users/{name}/server", timeout=120)
    wait(lambda: (server(deployment, api, name) or {}).get("ready"), 120, "server ready again")
    assert api.get(base + "api/contents/kept.txt", timeout=10).json()["content"] == "survives"
