"""The classes service on a test stack, and a person signed in through the hub (for the
integration tests and the benchmarks).

``classes_stack`` starts the whole stack with the classes service (nx-27017 + the real
hub, which runs ``python -m services.classes``); :class:`Person` signs someone in at the
hub and then through OAuth at the service, like a browser, and calls the API with the
service's cookie and XSRF token.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import requests

from harness.stack import Stack, running_stack, wait_for

SERVICE = "/services/classes/"

#: test settings: idle timeouts from 2 s (the files that test culling add
#: ``CULL_EVERY_SECOND``: a round every second costs each idle stack 2% of a core)
TEST_SERVICE_ENV = {
    "CLASSHUB_MIN_IDLE_TIMEOUT": "2",
    "CLASSHUB_RECONCILE_INTERVAL": "0",
    "CLASSHUB_MONGO_TIMEOUT": "1.5",
    "CLASSHUB_MAX_MEM_LIMIT": "2G",
}


CULL_EVERY_SECOND = {"CLASSHUB_CULL_INTERVAL": "1"}


def classes_stack(workdir: Path, extra_config: str = "", env: dict | None = None, **kwargs):
    new = Stack(
        workdir,
        with_classes=True,
        extra_config=extra_config,
        env={**TEST_SERVICE_ENV, **(env or {})},
        **kwargs,
    )
    for stack in running_stack(new):
        wait_healthy(stack)
        yield stack


def health(stack: Stack, timeout: float = 5) -> requests.Response:
    return requests.get(stack.url + SERVICE + "health", timeout=timeout)


def wait_healthy(stack: Stack, timeout: float = 60) -> None:
    wait_for(lambda: health(stack).status_code == 200, timeout, what="classes service healthy")


def service_pid(stack: Stack) -> int:
    """The pid of ``python -m services.classes``, a child of this stack's hub."""
    return stack.service_pid("classes")


def signal_service(stack: Stack, sig: signal.Signals) -> int:
    pid = service_pid(stack)
    os.kill(pid, sig)
    return pid


class Person:
    """Someone signed in at the hub and at a service (the classes service unless
    ``service`` says otherwise), with cookies, like a browser."""

    def __init__(self, stack: Stack, name: str, role: str = "student", service: str = SERVICE):
        self.stack, self.name, self.role, self.service = stack, name, role, service
        self.browser = stack.browser()
        r = stack.login_token(self.browser, stack.mint(name, role))
        assert r.status_code == 302, r.text
        r = self.browser.get(stack.url + service, timeout=30)  # OAuth dance with the service
        assert r.status_code == 200, r.text
        assert r.json()["name"] == name

    def xsrf(self) -> str:
        return next(
            c.value for c in self.browser.cookies if c.name == "_xsrf" and c.path == self.service
        )

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        # as a page's fetch() sends it: the service checks XSRF on every cookie request
        headers = {
            "X-XSRFToken": self.xsrf(),
            "Sec-Fetch-Mode": "cors",
            **kwargs.pop("headers", {}),
        }
        return self.browser.request(
            method,
            self.stack.url + self.service + path,
            headers=headers,
            timeout=kwargs.pop("timeout", 30),
            allow_redirects=False,
            **kwargs,
        )

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.call("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.call("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


def authorize(browser, page):
    """Press "Authorize" on the hub's OAuth confirmation page, as a teacher would."""
    import re

    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
    scopes = re.findall(r'<input[^>]*name="scopes"[^>]*value="([^"]*)"', page.text)
    data = [(k, v) for k, v in fields.items() if k != "scopes"] + [("scopes", x) for x in scopes]
    return browser.post(page.url, data=data, timeout=60)


def group(stack: Stack, name: str) -> dict | None:
    r = stack.api("GET", f"/groups/{name}")
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.json()


def members(stack: Stack, name: str) -> set[str] | None:
    g = group(stack, name)
    return None if g is None else set(g["users"])


def assert_error(r: requests.Response, status: int, text: str = "") -> dict:
    """``r`` is the service's JSON error ``{"status", "message"}`` with ``status``."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    body = r.json()
    assert body["status"] == status and isinstance(body["message"], str), body
    assert "Traceback" not in body["message"]
    if text:
        assert text in body["message"], body["message"]
    return body
