"""A student plants a trusted notebook whose output calls the hub's and the services' APIs
with the session of whoever views it; a teacher and an admin view it in headless Chromium.
Nothing may happen on their behalf.

Each test starts its own deployment (harness/stack.py: real hub, Traefik, Redis,
PostgreSQL, nx-27017, student containers), never the stack `make up` started:

* per-user origins (``CLASSHUB_SERVERS_DOMAIN``, ``*.localhost`` names, which Chromium
  resolves to loopback): the teacher and the admin open the student's JupyterLab on the
  student's own host; the payload runs there (the test waits until it has reported) and
  every call it makes to the hub's host fails;
* one shared origin: the owner gate answers instead of the student's server, so the
  payload never reaches their browser at all; the classes service's read-only view shows
  the notebook, and nothing of it runs there either.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest

from harness.browser import CHROMIUM, CHROMIUM_ARGS
from harness.classes import Person, wait_healthy
from harness.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

SERVERS = "classhub-servers.localhost"
VICTIM = "victim" + secrets.token_hex(2)
#: the attribute the payload writes its results to, on the page's root element
DONE = "document.documentElement.getAttribute('data-payload')"

# The payload: every call a page with the viewer's session could make against the hub and
# the classes service, with the hub's absolute address and with a path on the page's own
# origin. Each result is recorded; when all are done they are put on the page.
PAYLOAD = """
(async () => {
  const hub = HUB, teacher = VIEWER, code = CODE, victim = VICTIM_NAME;
  const results = {};
  async function attempt(name, url, options) {
    try {
      const r = await fetch(url, Object.assign({credentials: "include"}, options));
      results[name] = r.type === "opaque" ? "opaque" : r.status;
    } catch (e) { results[name] = "blocked"; }
  }
  const json = {"Content-Type": "application/json"};
  for (const base of [hub, ""]) {
    const tag = base ? "hub:" : "own:";
    await attempt(tag + "token", base + "/hub/api/users/" + teacher + "/tokens",
                  {method: "POST", headers: json, body: "{}"});
    await attempt(tag + "spawn", base + "/hub/api/users/" + victim + "/servers/" + code,
                  {method: "POST"});
    await attempt(tag + "enrol", base + "/services/classes/api/classes/" + code + "/students",
                  {method: "POST", headers: json, body: JSON.stringify({username: victim})});
    await attempt(tag + "read", base + "/hub/api/users", {});
    // the kinds of request a form can send, without a preflight
    await attempt(tag + "form-token", base + "/hub/api/users/" + teacher + "/tokens",
                  {method: "POST", mode: "no-cors", body: new URLSearchParams({note: "x"})});
    await attempt(tag + "form-enrol", base + "/services/classes/api/classes/" + code + "/students",
                  {method: "POST", mode: "no-cors", body: new URLSearchParams({username: victim})});
  }
  document.documentElement.setAttribute("data-payload", JSON.stringify(results));
})();
"""


def payload(stack, viewer: str, code: str) -> str:
    return (
        PAYLOAD.replace("HUB", json.dumps(stack.url))
        .replace("VIEWER", json.dumps(viewer))
        .replace("CODE", json.dumps(code))
        .replace("VICTIM_NAME", json.dumps(VICTIM))
    )


def notebook(script: str) -> dict:
    """A notebook whose outputs carry the payload three ways: a JavaScript output, a
    <script> in an HTML output, and an HTML element with an event handler."""
    html = f"<b>results</b><script>{script}</script><img src=x onerror='{script}'>"
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "cells": [
            {
                "cell_type": "code",
                "id": "c1",
                "execution_count": 1,
                "metadata": {},
                "source": "print('my homework')",
                "outputs": [
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"application/javascript": script, "text/plain": "js"},
                    },
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {"text/html": html, "text/plain": "html"},
                    },
                ],
            }
        ],
    }


def plant(stack, student: str, code: str, nb: dict) -> str:
    """Write the notebook into the student's class server and trust it, as the student
    would in a terminal there (uid 1000 in their container)."""
    (container,) = [
        c
        for c in stack.containers(all=False)
        if c.labels.get("classhub.user") == student and c.labels.get("classhub.server") == code
    ]
    data = json.dumps(nb)
    path = "/home/jovyan/homework.ipynb"
    script = f"cat > {path} <<'EOF'\n{data}\nEOF\njupyter trust {path}"
    result = container.exec_run(["bash", "-c", script], user="1000:100")
    assert result.exit_code == 0, result.output
    return "homework.ipynb"


def class_world(stack):
    c = "x" + secrets.token_hex(3)
    teacher, student = "t" + secrets.token_hex(3), "s" + secrets.token_hex(3)
    admin = Person(stack, "admin", "admin")
    for name in (teacher, VICTIM):
        stack.create_user(name)
    Person(stack, student, "student")  # signs in once: a student's hub role comes with it
    r = admin.post("api/classes", {"code": c, "name": "Attack", "teachers": [teacher]})
    assert r.status_code == 201, r.text
    r = admin.post(f"api/classes/{c}/students", {"username": student})
    assert r.status_code == 201, r.text
    return c, teacher, student


def api_tokens(stack, user: str) -> list[dict]:
    """``user``'s tokens made through the token API: the hub notes them "Requested via
    api ..." (the payload's JSON request names no note) or with the note sent ("x", the
    payload's form). The OAuth tokens of signing in and of opening a server have neither."""
    tokens = stack.api("GET", f"/users/{user}/tokens").json()["api_tokens"]
    return [t for t in tokens if (t.get("note") or "").startswith(("Requested via api", "x"))]


def nothing_happened(stack, viewer: str, code: str, tokens_before: list) -> None:
    tokens = api_tokens(stack, viewer)
    assert [t["id"] for t in tokens] == [t["id"] for t in tokens_before], tokens
    assert stack.server_model(VICTIM, code) is None
    roster = stack.api("GET", f"/groups/class-{code}").json()["users"]
    assert VICTIM not in roster


def sign_in(page, stack, token: str) -> None:
    page.goto(stack.url + "/hub/login")
    page.fill("#token_input", token)
    page.click("#token_submit")
    # signed in: off the login page, to where the hub lands this person (My classes)
    page.wait_for_url(lambda url: "/hub/login" not in url, timeout=30_000)


def open_notebook(page, url: str) -> None:
    page.goto(url)
    for _ in range(3):  # the hub asks before opening someone else's server
        button = page.locator("form button[type=submit], input[type=submit]")
        if "/oauth2/authorize" in page.url and button.count():
            button.first.click()
            page.wait_for_load_state()
        else:
            break


@pytest.fixture(scope="module")
def origins_stack(tmp_path_factory):
    new = Stack(tmp_path_factory.mktemp("origins-e2e"), servers_domain=SERVERS, with_classes=True)
    for stack in running_stack(new):
        wait_healthy(stack)
        yield stack


@pytest.fixture(scope="module")
def gate_stack(tmp_path_factory):
    new = Stack(tmp_path_factory.mktemp("gate-e2e"), with_classes=True)
    for stack in running_stack(new):
        wait_healthy(stack)
        yield stack


@pytest.mark.parametrize("role", ["teacher", "admin"])
def test_a_planted_notebook_acts_for_nobody_on_per_user_origins(origins_stack, role, tmp_path):
    from playwright.sync_api import sync_playwright

    stack = origins_stack
    code, teacher, student = class_world(stack)
    viewer = teacher if role == "teacher" else "admin"
    stack.spawn(student, code)
    name = plant(stack, student, code, notebook(payload(stack, viewer, code)))
    tokens_before = api_tokens(stack, viewer)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        try:
            sign_in(page, stack, stack.mint(viewer, role=role))
            open_notebook(page, stack.server_url(student, code) + f"lab/tree/{name}")
            page.wait_for_function(DONE, timeout=120_000)
            results = json.loads(page.evaluate(DONE))
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            raise
        finally:
            browser.close()
    # it really ran in the viewer's browser, and every call failed
    assert set(results) >= {"hub:token", "hub:spawn", "hub:enrol", "own:token"}, results
    for attempt, outcome in results.items():
        assert outcome in ("blocked", "opaque") or outcome >= 400, (attempt, outcome)
    time.sleep(1)  # anything the no-cors requests triggered has landed by now
    nothing_happened(stack, viewer, code, tokens_before)
    stack.stop(student, code)


@pytest.mark.parametrize("role", ["teacher", "admin"])
def test_a_planted_notebook_never_reaches_a_viewer_on_one_origin(gate_stack, role, tmp_path):
    from playwright.sync_api import sync_playwright

    stack = gate_stack
    code, teacher, student = class_world(stack)
    viewer = teacher if role == "teacher" else "admin"
    stack.spawn(student, code)
    name = plant(stack, student, code, notebook(payload(stack, viewer, code)))
    tokens_before = api_tokens(stack, viewer)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        try:
            sign_in(page, stack, stack.mint(viewer, role=role))
            for path in (f"lab/tree/{name}", f"files/{name}", f"notebooks/{name}", "lab"):
                response = page.goto(stack.server_url(student, code) + path)
                assert response.status == 403, (path, response.status)
                assert "This server is not yours" in page.content()
            page.wait_for_timeout(3000)
            assert page.evaluate(DONE) is None
            # the read-only view of the classes service shows the notebook; nothing runs
            view = (
                f"{stack.url}/services/classes/classes/{code}/students/{student}/work/file"
                f"?path={name}"
            )
            response = page.goto(view)
            assert response.status == 200, response.status
            assert "sandbox" in response.headers["content-security-policy"]
            assert "my homework" in page.content()
            page.wait_for_timeout(3000)
            assert page.evaluate(DONE) is None
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"))
            raise
        finally:
            browser.close()
    nothing_happened(stack, viewer, code, tokens_before)
    stack.stop(student, code)
