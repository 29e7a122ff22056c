"""Fixtures for the end-to-end tier: a throwaway deployment of the whole compose stack.

The session's deployment is made by the project's own ``scripts/up.sh`` under a compose
project, a settings folder, ports, a student network and a homes filesystem of its own
(tests/e2e/throwaway.py), and removed at the end. A stack that `make up` started on this
machine is never touched.
"""

from __future__ import annotations

import os
import re
import secrets

import docker
import pytest
import requests

from common.naming import object_name
from harness.stack import TEST_PROJECT_PREFIX, wait_for
from tests.e2e.throwaway import REPO, Throwaway

__all__ = ["REPO", "Deployment"]


class Deployment:
    def __init__(self, stack: Throwaway):
        self.stack = stack
        self.env = stack.env
        self.prefix = self.env["CLASSHUB_CONTAINER_PREFIX"]
        self.url = f"http://127.0.0.1:{self.env['CLASSHUB_HTTP_PORT']}"

    def compose(self, *args: str, input: str | None = None):
        """docker-compose on this deployment's project (never the one `make up` started)."""
        return self.stack.compose(*args, input=input)

    def home_volume(self, name: str, server: str = "") -> str:
        return object_name(self.prefix, "home", name, server)

    def server(self, api: requests.Session, name: str) -> dict | None:
        """The hub's model of ``name``'s default server, ``None`` when it is not running."""
        r = api.get(f"{self.url}/hub/api/users/{name}", timeout=10)
        return r.json().get("servers", {}).get("")

    def wait_ready(self, api: requests.Session, name: str, timeout: float = 120) -> dict:
        def ready():
            model = self.server(api, name)
            return model if model and model.get("ready") else None

        return wait_for(ready, timeout, interval=0.2, what=f"{name}'s server ready")

    def student_containers(self, name: str, include_stopped: bool = False) -> list:
        """The containers of ``name`` in this deployment (running ones unless asked)."""
        client = docker.from_env()
        try:
            return [
                c
                for c in client.containers.list(
                    all=include_stopped, filters={"label": f"classhub.deployment={self.prefix}"}
                )
                if c.labels.get("classhub.user") == name
            ]
        finally:
            client.close()

    def admin(self) -> requests.Session:
        """A browser signed in as the first admin (password from the run's classhub.env)."""
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
def deployment(tmp_path_factory, production_before):
    stack = Throwaway(tmp_path_factory.mktemp("e2e-stack"))
    try:
        stack.create()
        d = Deployment(stack)
        r = requests.get(d.url + "/hub/health", timeout=10)
        assert r.status_code == 200, "the throwaway stack is not healthy"
        yield d
    finally:
        stack.destroy()


#: the production deployment's compose project and the label of its students' servers
#: (spawner/labels.py DEPLOYMENT_LABEL, value: the production CLASSHUB_CONTAINER_PREFIX)
PRODUCTION_PROJECT = "classhub"
STUDENT_LABEL = "classhub.deployment"
#: marks a stand-in of production, with the pytest worker that made it: each worker of the
#: tier makes and removes its own, and sees no other worker's (one worker ending removed
#: the stand-ins another worker's last check was about to look at)
STANDIN_LABEL = "classhub.e2e-standin"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def _seen(container) -> bool:
    """Whether this worker counts ``container``: everything but other workers' stand-ins and
    the test tiers' own throwaway projects (harness.stack.TEST_PROJECT_PREFIX), which start
    and end while this tier runs (the integration tier runs beside it in `make test`)."""
    project = container.labels.get("com.docker.compose.project", "")
    if project.startswith(TEST_PROJECT_PREFIX):
        return False
    return container.labels.get(STANDIN_LABEL, WORKER) == WORKER


def other_stacks() -> dict[str, tuple[str, str]]:
    """Every compose-made container on this machine, and every student server of the
    production deployment: id -> (project or "students", when it last started)."""
    client = docker.from_env()
    try:
        found = {
            c.id: (c.labels["com.docker.compose.project"], c.attrs["State"]["StartedAt"])
            for c in client.containers.list(
                all=True, filters={"label": "com.docker.compose.project"}
            )
            if _seen(c)
        }
        for c in client.containers.list(
            all=True, filters={"label": f"{STUDENT_LABEL}={PRODUCTION_PROJECT}"}
        ):
            if _seen(c):
                found.setdefault(c.id, ("students", c.attrs["State"]["StartedAt"]))
        return found
    finally:
        client.close()


def _real_production(client) -> bool:
    """Whether a stack that `make up` started runs here (its containers, not stand-ins)."""
    return any(
        STANDIN_LABEL not in c.labels
        for c in client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={PRODUCTION_PROJECT}"}
        )
    )


@pytest.fixture(scope="session")
def production_before():
    """What ran before the tier started (a stack that `make up` started, for one). On a
    machine without one (CI), stand-ins take its place, so the check after the tier tests
    something: a container of the production compose project (service ``hub``) and a
    student server of the production deployment, both sleeping; removed afterwards."""
    standins = []
    client = docker.from_env()
    try:
        if not _real_production(client):
            tag = secrets.token_hex(3)
            common = {
                "image": "classhub/hub:latest",
                "command": ["sleep", "infinity"],
                "healthcheck": {"test": ["NONE"]},
            }
            standins.append(
                client.containers.run(
                    name=f"e2e-standin-hub-{tag}",
                    labels={
                        "com.docker.compose.project": PRODUCTION_PROJECT,
                        "com.docker.compose.service": "hub",
                        "com.docker.compose.container-number": "1",
                        "com.docker.compose.oneoff": "False",
                        STANDIN_LABEL: WORKER,
                    },
                    network_mode="none",
                    detach=True,
                    **common,
                )
            )
            standins.append(
                client.containers.run(
                    name=f"e2e-standin-student-{tag}",
                    labels={
                        STUDENT_LABEL: PRODUCTION_PROJECT,
                        "classhub.managed": "1",
                        STANDIN_LABEL: WORKER,
                    },
                    network_mode="none",
                    detach=True,
                    **common,
                )
            )
        before = other_stacks()
        assert {c.id for c in standins} <= set(before)
        yield before
    finally:
        for c in standins:
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass
        client.close()


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
        client.volumes.get(deployment.home_volume(name)).remove(force=True)
    except docker.errors.NotFound:
        pass
    client.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and call.when == "call" and "deployment" in item.fixturenames:
        r = item.funcargs["deployment"].compose("logs", "--no-color", "--tail=80", "hub", "traefik")
        print("\n===== stack logs (test failed) =====\n" + r.stdout + r.stderr)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Groups for ``--dist loadgroup`` (the Makefile runs this tier on two workers): every
    test of the throwaway deployment on one worker, in file order (one deployment, made once,
    and the check that production is untouched after them); each file with a harness stack
    of its own as a group of its own, so that its module-scoped stack is made once."""
    for item in items:
        if "deployment" in item.fixturenames or "production_before" in item.fixturenames:
            group = "throwaway"
        else:
            group = item.module.__name__.rsplit(".", 1)[-1]
        item.add_marker(pytest.mark.xdist_group(group))
