"""Per-user origins (CLASSHUB_SERVERS_DOMAIN): each user's servers on a host of their own,
the hub and services on theirs, tried against a real hub, Traefik and student containers.

Names under ``*.localhost`` reach Traefik on loopback (harness.stack.LocalhostResolver),
as they do in browsers.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import pytest
import requests

from harness.classes import Person, authorize, wait_healthy
from harness.stack import Stack, running_stack
from hub.origins import user_host

pytestmark = pytest.mark.integration

SERVERS = "classhub-servers.localhost"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    new = Stack(tmp_path_factory.mktemp("origins"), servers_domain=SERVERS, with_classes=True)
    for stack in running_stack(new):
        wait_healthy(stack)
        yield stack


def new_user() -> str:
    return "o" + secrets.token_hex(4)


def signed_in(stack, user):
    browser = stack.browser()
    assert stack.login_token(browser, stack.mint(user)).status_code == 302
    return browser


def from_jupyter_server(response: requests.Response) -> bool:
    """Whether the answer came from a single-user server (jupyter-server's JSON status)."""
    try:
        return "started" in response.json() and "kernels" in response.json()
    except ValueError:
        return False


def test_a_server_is_served_on_its_users_host_only(stack):
    user = new_user()
    browser = signed_in(stack, user)
    stack.spawn(user)
    own = stack.server_url(user)
    assert urlsplit(own).hostname == user_host(user, SERVERS) != urlsplit(stack.url).hostname

    # the owner opens it on their own host, through the OAuth flow across the two hosts
    lab = browser.get(own + "lab", timeout=60)
    assert lab.status_code == 200 and urlsplit(lab.url).hostname == urlsplit(own).hostname
    status = browser.get(own + "api/status", timeout=15, allow_redirects=False)
    assert status.status_code == 200 and from_jupyter_server(status)

    # the same path on the hub's host never reaches the container: the hub answers there
    on_hub = browser.get(stack.url + f"/user/{user}/api/status", timeout=15, allow_redirects=False)
    assert not from_jupyter_server(on_hub), on_hub.text[:300]
    assert on_hub.status_code in (302, 303, 404), on_hub.status_code
    if on_hub.status_code in (302, 303):
        target = urlsplit(on_hub.headers["Location"])
        assert target.hostname in (None, urlsplit(stack.url).hostname, urlsplit(own).hostname)

    # nor on another user's host
    other = f"http://{user_host(new_user(), SERVERS)}:{stack.web_port}/user/{user}/api/status"
    elsewhere = browser.get(other, timeout=15, allow_redirects=False)
    assert not from_jupyter_server(elsewhere), elsewhere.text[:300]
    stack.stop(user)


def test_the_route_of_a_server_matches_its_host(stack):
    user = new_user()
    stack.enroll(user, "lab1")
    stack.spawn(user, "lab1")
    routers = requests.get(stack.traefik_api + "/api/http/routers", timeout=5).json()
    rules = [r["rule"] for r in routers if f"/user/{user}/lab1/" in r.get("rule", "")]
    assert rules == [f'Host("{user_host(user, SERVERS)}") && PathPrefix("/user/{user}/lab1/")']
    # the hub's view of its routes is Traefik's, host included
    r = stack.api("GET", "/proxy")
    assert r.status_code == 200
    assert f"{user_host(user, SERVERS)}/user/{user}/lab1/" in r.json()
    stack.stop(user, "lab1")


def test_the_hub_and_its_api_stay_on_the_hub_host(stack):
    user = new_user()
    browser = signed_in(stack, user)
    assert stack.whoami(browser) == user
    home = browser.get(stack.url + "/hub/home", timeout=15, allow_redirects=False)
    assert home.status_code == 200
    # no cookie of the hub is ever sent to a user's host (JupyterHub gives its session-id
    # cookie the hub's domain, so the servers domain must not lie under the hub's host)
    server_host = user_host(user, SERVERS)
    assert list(browser.cookies)
    for cookie in browser.cookies:
        domain = cookie.domain.lstrip(".")
        assert not (server_host == domain or server_host.endswith("." + domain)), cookie


def test_a_teacher_opens_their_students_server_on_the_students_host(stack):
    c = "o" + secrets.token_hex(3)
    teacher, student = new_user(), new_user()
    signed_in(stack, student)  # a student's hub role comes with their first sign-in
    stack.enroll(teacher, c, teacher=True)
    stack.enroll(student, c)
    browser = stack.browser()
    assert stack.login_token(browser, stack.mint(teacher, role="teacher")).status_code == 302
    stack.spawn(student, c)
    url = stack.server_url(student, c)
    lab = browser.get(url + "lab", timeout=60)
    if "/oauth2/authorize" in lab.url:
        lab = authorize(browser, lab)  # the hub asks before opening someone else's server
    assert lab.status_code == 200 and urlsplit(lab.url).hostname == user_host(student, SERVERS)
    assert from_jupyter_server(browser.get(url + "api/status", timeout=15))
    stack.stop(student, c)


def test_the_classes_service_links_each_server_on_its_users_host(stack):
    student = new_user()
    teacher = Person(stack, new_user(), "teacher")
    admin = Person(stack, "admin", "admin")
    c = "o" + secrets.token_hex(3)
    r = admin.post("api/classes", {"code": c, "name": "Origins", "teachers": [teacher.name]})
    assert r.status_code == 201, r.text
    signed_in(stack, student)  # teachers enrol people whose hub role is student
    r = teacher.post(f"api/classes/{c}/students", {"username": student})
    assert r.status_code == 201, r.text
    # the service itself is on the hub's host
    assert urlsplit(
        teacher.browser.get(stack.url + "/services/classes/", timeout=15).url
    ).hostname == ("classhub.localhost")
    mine = Person(stack, student, "student").get("api/classes").json()["classes"]
    (entry,) = [x for x in mine if x["code"] == c]
    assert entry["server"]["url"] == stack.server_url(student, c)
