"""One shared origin (no CLASSHUB_SERVERS_DOMAIN): Traefik asks the owner gate before it
forwards anything to a student's server, so a page a student serves never reaches another
person's browser on the hub's origin. Tried with a real hub, Traefik, Redis, gate and
student containers, as a teacher, an admin, a classmate and a stranger would."""

from __future__ import annotations

import secrets

import pytest
import requests

from harness.stack import wait_for

pytestmark = pytest.mark.integration

GATE_PAGE = "This server is not yours"


def code() -> str:
    return "g" + secrets.token_hex(3)


def from_server(r: requests.Response) -> bool:
    """The answer came from the student's jupyter-server (its JSON status)."""
    try:
        body = r.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "kernels" in body and "started" in body


def signed_in(stack, user, role="student"):
    b = stack.browser()
    assert stack.login_token(b, stack.mint(user, role=role)).status_code == 302
    return b


@pytest.fixture
def running(stack):
    """A student with a running class server, signed in; their teacher, signed in."""
    c = code()
    student, teacher = "gs" + secrets.token_hex(3), "gt" + secrets.token_hex(3)
    stack.enroll(teacher, c, teacher=True)
    stack.enroll(student, c)
    owner = signed_in(stack, student)
    teacher_browser = signed_in(stack, teacher, "teacher")
    stack.spawn(student, c)
    yield stack.url + f"/user/{student}/{c}/", owner, teacher_browser, student, c
    stack.stop(student, c)


def test_the_owner_opens_their_server(stack, running):
    url, owner, *_ = running
    lab = owner.get(url + "lab", timeout=60)
    assert lab.status_code == 200 and lab.url.startswith(url + "lab"), lab.url
    assert from_server(owner.get(url + "api/status", timeout=15))


def test_a_teacher_with_rights_on_the_server_is_stopped_at_the_gate(stack, running):
    url, _, teacher, *_ = running
    for path in ("lab", "api/status", "files/notebook.ipynb", "api/contents"):
        r = teacher.get(url + path, timeout=30, allow_redirects=False)
        assert r.status_code == 403 and GATE_PAGE in r.text, (path, r.status_code, r.text[:200])
        assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
    # following every redirect never ends in the student's server either
    r = teacher.get(url + "lab", timeout=30)
    assert not from_server(r) and GATE_PAGE in r.text


def test_an_admin_is_stopped_at_the_gate(stack, running):
    url = running[0]
    admin = stack.browser()
    assert stack.login_password(admin, "admin", stack.admin_password).status_code == 302
    r = admin.get(url + "api/status", timeout=30, allow_redirects=False)
    assert r.status_code == 403 and GATE_PAGE in r.text


def test_strangers_and_forged_cookies_never_reach_the_server(stack, running):
    url = running[0]
    anonymous = requests.get(url + "api/status", timeout=15, allow_redirects=False)
    assert anonymous.status_code == 302
    location = anonymous.headers["Location"].removeprefix(stack.url)
    assert location.startswith("/hub/login?next=/user/"), location
    classmate = signed_in(stack, "gc" + secrets.token_hex(3))
    r = classmate.get(url + "api/status", timeout=15, allow_redirects=False)
    assert r.status_code == 403 and not from_server(r)
    for cookie in (
        "jupyterhub-session-id=" + secrets.token_hex(16),
        "jupyterhub-session-id=x; jupyterhub-session-id=y",
        "jupyterhub-session-id=../../etc",
    ):
        r = requests.get(url + "api/status", headers={"Cookie": cookie}, timeout=15)
        assert not from_server(r), cookie


def test_an_ended_session_loses_the_server_at_once(stack, running):
    url, owner, _, student, _ = running
    assert owner.get(url + "lab", timeout=60).status_code == 200  # the OAuth round first
    assert from_server(owner.get(url + "api/status", timeout=15))
    r = stack.api("DELETE", f"/classhub/sessions/{student}")
    assert r.status_code == 204, r.text

    def refused():
        return not from_server(owner.get(url + "api/status", timeout=15, allow_redirects=False))

    wait_for(refused, 10, interval=0.2, what="the gate refuses the ended session")


def test_api_tokens_are_left_to_the_server(stack, running):
    url = running[0]
    # the test service's token carries access:servers: the server itself checks it
    r = requests.get(
        url + "api/status", headers={"Authorization": f"token {stack.token}"}, timeout=15
    )
    assert from_server(r)
    r = requests.get(url + "api/status", headers={"Authorization": "token nonsense"}, timeout=15)
    assert r.status_code in (401, 403) and not from_server(r)
