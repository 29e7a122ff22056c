"""Where people land after sign-in, against the real hub, Traefik, Docker and the classes
service, with students' personal servers off (production's default): a student of one
class lands in that class's JupyterLab, started for them through the hub's spawn page; a
student of several classes lands on My classes (both in Chromium); a student's default
server is refused (API 403, no button); the ``next`` address survives token and password
sign-in."""

from __future__ import annotations

import secrets
from contextlib import contextmanager
from urllib.parse import quote

import pytest

from harness.browser import explain_failure, watch_page
from harness.classes import TEST_SERVICE_ENV, Person, wait_healthy
from harness.stack import Stack, running_stack, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    env = {**TEST_SERVICE_ENV, "CLASSHUB_STUDENT_DEFAULT_SERVER": "0"}
    new = Stack(tmp_path_factory.mktemp("landing"), with_classes=True, env=env)
    for s in running_stack(new):
        wait_healthy(s)
        yield s


@pytest.fixture(scope="module")
def admin(stack):
    return Person(stack, "admin", "admin")


def name(prefix: str) -> str:
    return prefix + secrets.token_hex(3)


def make_class(admin, student: str, *codes: str) -> None:
    for code in codes:
        r = admin.post("api/classes", {"code": code, "name": code.upper(), "term": "2026"})
        assert r.status_code == 201, r.text
        r = admin.post(f"api/classes/{code}/students", {"username": student})
        assert r.status_code == 201, r.text


@contextmanager
def page_of(chromium, tmp_path):
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    watch_page(page)
    try:
        yield page
    except Exception:
        explain_failure(page, tmp_path / "failure.png")
        raise
    finally:
        context.close()


def sign_in_with_token(stack, page, user: str, role: str = "student", next_url: str = ""):
    query = f"?next={quote(next_url, safe='')}" if next_url else ""
    page.goto(f"{stack.url}/hub/login{query}")
    page.fill("#token_input", stack.mint(user, role))
    page.click("#token_submit")


def test_a_student_of_one_class_lands_in_its_jupyterlab(stack, admin, chromium, tmp_path):
    student, code = name("s"), name("c")
    stack.create_user(student)
    make_class(admin, student, code)
    with page_of(chromium, tmp_path) as page:
        sign_in_with_token(stack, page, student)
        # the hub's spawn page starts the class server, then JupyterLab opens
        page.wait_for_url(f"**/user/{student}/{code}/lab**", timeout=120_000)
        page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    model = stack.server_model(student, code)
    assert model is not None and model["ready"]
    # the class's server only: no personal server was started
    assert stack.server_model(student) is None
    stack.stop(student, code)


def test_a_student_of_several_classes_lands_on_my_classes(stack, admin, chromium, tmp_path):
    student = name("s")
    stack.create_user(student)
    codes = [name("c"), name("c")]
    make_class(admin, student, *codes)
    with page_of(chromium, tmp_path) as page:
        sign_in_with_token(stack, page, student)
        page.wait_for_url("**/services/classes/")
        for code in codes:
            page.wait_for_selector(f"text={code.upper()}")
    assert stack.user_model(student)["servers"] == {}


def test_a_students_default_server_is_refused_and_not_offered(stack, admin):
    student = name("s")
    b = stack.browser()
    assert stack.login_token(b, stack.mint(student)).status_code == 302
    r = stack.browser_api(b, "POST", f"/users/{student}/server")
    if r.status_code < 400:  # the failure arrives through the progress stream instead
        wait_for(lambda: stack.server_model(student) is None, 30, what="spawn refused")
        r = stack.browser_api(b, "POST", f"/users/{student}/server")
    assert r.status_code == 403, r.text
    assert "no personal server" in r.json()["message"]
    assert not [x for x in stack.containers() if x.labels.get("classhub.user") == student]
    home = b.get(stack.url + "/hub/home", timeout=15)
    assert home.status_code == 200
    assert 'id="start"' not in home.text and "Start My Server" not in home.text
    assert "Add New Server" not in home.text
    # a teacher may have one: their home page offers it
    t = stack.browser()
    assert stack.login_token(t, stack.mint(name("t"), "teacher")).status_code == 302
    assert 'id="start"' in t.get(stack.url + "/hub/home", timeout=15).text


def test_next_survives_token_sign_in(stack, admin):
    student, code = name("s"), name("c")
    stack.create_user(student)
    make_class(admin, student, code)
    target = f"/services/classes/classes/{code}"
    r = stack.browser().post(
        stack.url + "/hub/login?next=" + quote(target, safe=""),
        data={"token": stack.mint(student)},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302 and r.headers["Location"] == target
    # without next: the landing page, which sends this student into their class
    b = stack.browser()
    r = stack.login_token(b, stack.mint(student))
    assert r.headers["Location"] == "/hub/classhub/landing"
    r = b.get(stack.url + r.headers["Location"], allow_redirects=False, timeout=15)
    assert r.status_code == 302 and r.headers["Location"] == f"/hub/spawn/{student}/{code}"


def test_next_survives_password_sign_in(stack, admin):
    user, password = name("p"), secrets.token_urlsafe(12)
    r = stack.api(
        "POST",
        "/classhub/accounts",
        json={"username": user, "role": "teacher", "password": password},
    )
    assert r.status_code == 201, r.text
    code = name("c")
    r = admin.post("api/classes", {"code": code, "name": "P", "term": "2026", "teachers": [user]})
    assert r.status_code == 201, r.text
    target = f"/services/classes/classes/{code}"
    b = stack.browser()
    page = b.get(stack.url + "/hub/login?next=" + quote(target, safe=""), timeout=30)
    assert page.status_code == 200
    xsrf = next(c.value for c in b.cookies if c.name == "_xsrf")
    r = b.post(
        stack.url + "/hub/login?next=" + quote(target, safe=""),
        data={"username": user, "password": password, "_xsrf": xsrf},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302 and r.headers["Location"] == target
    # and an off-site next is ignored: the landing page (a teacher: My classes)
    b = stack.browser()
    page = b.get(stack.url + "/hub/login", timeout=30)
    xsrf = next(c.value for c in b.cookies if c.name == "_xsrf")
    r = b.post(
        stack.url + "/hub/login?next=" + quote("https://evil.example/", safe=""),
        data={"username": user, "password": password, "_xsrf": xsrf},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302 and r.headers["Location"] == "/hub/classhub/landing"
    r = b.get(stack.url + "/hub/classhub/landing", allow_redirects=False, timeout=15)
    assert r.headers["Location"] == "/services/classes/"
