"""Fixtures for the end-to-end tier: the stack that `make up` started."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

import docker
import pytest
import requests

from spawner.naming import object_name
from tests.harness import wait_for

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / ".run"


def read_env() -> dict[str, str]:
    env = {}
    for line in (RUN / "classhub.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            env[k] = v
    return env


def compose(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    files = ["-f", "docker-compose.yml"]
    if (RUN / "mode").read_text().strip() == "offline":
        files += ["-f", "docker-compose.offline.yml"]
    return subprocess.run(
        ["docker-compose", "--env-file", str(RUN / "classhub.env"), *files, *args],
        cwd=REPO,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "classhub"},
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
    )


class Deployment:
    def __init__(self):
        self.env = read_env()
        self.url = f"http://127.0.0.1:{self.env.get('CLASSHUB_HTTP_PORT', '8000')}"

    def server(self, api: requests.Session, name: str) -> dict | None:
        """The hub's model of ``name``'s default server, ``None`` when it is not running."""
        r = api.get(f"{self.url}/hub/api/users/{name}", timeout=10)
        return r.json().get("servers", {}).get("")

    def wait_ready(self, api: requests.Session, name: str, timeout: float = 120) -> dict:
        def ready():
            model = self.server(api, name)
            return model if model and model.get("ready") else None

        return wait_for(ready, timeout, interval=0.2, what=f"{name}'s server ready")

    @staticmethod
    def student_containers(name: str, include_stopped: bool = False) -> list:
        """The containers of ``name`` in this deployment (running ones unless asked)."""
        client = docker.from_env()
        try:
            return [
                c
                for c in client.containers.list(
                    all=include_stopped, filters={"label": "classhub.deployment=classhub"}
                )
                if c.labels.get("classhub.user") == name
            ]
        finally:
            client.close()

    def admin(self) -> requests.Session:
        """A browser signed in as the first admin (password from .run/classhub.env)."""
        s = self.login(self.env["CLASSHUB_ADMIN_USER"], self.env["CLASSHUB_ADMIN_PASSWORD"])
        s.headers["X-XSRFToken"] = xsrf(s)
        return s

    def add_account(self, name: str, role: str = "student") -> str:
        """Create a local account through the admin API; returns its generated password."""
        r = self.admin().post(
            f"{self.url}/hub/api/classhub/accounts",
            json={"username": name, "role": role},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        return r.json()["password"]

    def remove_account(self, name: str) -> None:
        admin = self.admin()
        admin.delete(f"{self.url}/hub/api/classhub/accounts/{name}", timeout=30)
        admin.delete(f"{self.url}/hub/api/users/{name}", timeout=60)

    def login(self, name: str, password: str) -> requests.Session:
        s = requests.Session()
        s.get(self.url + "/hub/login", timeout=10)
        r = s.post(
            self.url + "/hub/login",
            data={"username": name, "password": password, "_xsrf": xsrf(s)},
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code == 302, (r.status_code, r.text[:300])
        return s

    def token(self, name: str) -> str:
        """An API token for ``name``, issued by the admin (students hold no tokens scope)."""
        r = self.admin().post(
            f"{self.url}/hub/api/users/{name}/tokens",
            json={"note": "e2e", "expires_in": 3600},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return r.json()["token"]


def xsrf(session: requests.Session) -> str:
    return next((c.value for c in session.cookies if c.name == "_xsrf"), "")


@pytest.fixture(scope="session")
def deployment():
    if not (RUN / "classhub.env").exists():
        pytest.fail("no .run/classhub.env: start the stack with `make up` first")
    d = Deployment()
    r = requests.get(d.url + "/hub/health", timeout=10)
    assert r.status_code == 200, "the stack is not healthy: run `make up`"
    return d


@pytest.fixture
def account(deployment, request):
    """A fresh local account: (name, password, api-token session helper)."""
    name = "e2e-" + re.sub(r"[^a-z0-9]", "", request.node.name.lower())[:20] + secrets.token_hex(2)
    password = deployment.add_account(name)
    deployment.login(name, password)
    token = deployment.token(name)
    api = requests.Session()
    api.headers["Authorization"] = f"token {token}"
    yield name, password, api
    # stop the server and remove the account; the home volume is removed too
    api.delete(f"{deployment.url}/hub/api/users/{name}/server", timeout=60)
    deployment.remove_account(name)
    for c in deployment.student_containers(name, include_stopped=True):
        c.remove(force=True)
    client = docker.from_env()
    try:
        client.volumes.get(object_name("classhub", "home", name, "")).remove(force=True)
    except docker.errors.NotFound:
        pass
    client.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and call.when == "call" and "deployment" in item.fixturenames:
        r = compose("logs", "--no-color", "--tail=80", "hub", "traefik")
        print("\n===== stack logs (test failed) =====\n" + r.stdout + r.stderr)
    return report
