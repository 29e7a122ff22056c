"""A teacher reaches exactly the class servers of their classes'
students, tried as an attacker would, against the real hub, classes service, Docker and
Traefik. The deployment has per-user origins (CLASSHUB_SERVERS_DOMAIN), where teachers
open their students' servers; on one shared origin the owner gate keeps every browser but
the owner's out (tests/integration/test_owner_gate.py).

A teacher of ``alg`` tries to enrol the admin and another teacher (refused), to start and
open an enrolled student's default server and their server of another class, the admin's
and another teacher's servers (all refused), opens their own student's ``alg`` server
(allowed), and loses it within seconds of the student leaving the roster, also with a
live browser session and through the student's running server."""

import pytest

from harness.classes import (
    Person,
    assert_error,
    authorize,
    classes_stack,
    members,
)
from harness.stack import wait_for

pytestmark = pytest.mark.integration

#: the hub answers 404 where a filtered scope does not cover the resource (so existence
#: does not leak), 403 where the caller holds no such scope at all
REFUSED = (403, 404)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from classes_stack(
        tmp_path_factory.mktemp("teacher-reach"), servers_domain="classhub-servers.localhost"
    )


@pytest.fixture(scope="module")
def people(stack):
    people = {
        "admin": Person(stack, "admin", "admin"),
        "tina": Person(stack, "tina", "teacher"),  # teaches alg
        "tom": Person(stack, "tom", "teacher"),  # teaches bio
        "sam": Person(stack, "sam", "student"),  # in alg and bio
        "sid": Person(stack, "sid", "student"),  # in alg, leaves it
    }
    admin = people["admin"]
    for code, teacher in (("alg", "tina"), ("bio", "tom")):
        r = admin.post("api/classes", {"code": code, "name": code.title(), "teachers": [teacher]})
        assert r.status_code == 201, r.text
    for code, student, teacher in (("alg", "sam", "tina"), ("alg", "sid", "tina")):
        r = people[teacher].post(f"api/classes/{code}/students", {"username": student})
        assert r.status_code == 201, r.text
    assert people["tom"].post("api/classes/bio/students", {"username": "sam"}).status_code == 201
    return people


def hub_api(stack, person, method, path):
    """A hub API call with the person's browser session (cookie and XSRF token)."""
    return stack.browser_api(person.browser, method, path)


def open_server(stack, person, user, server=""):
    """Open JupyterLab of ``user``'s server through Traefik, as the person's browser
    would: OAuth with the hub, confirming the hub's "allow access" page when it asks.
    Returns the last answer (JupyterLab's page, or the hub's refusal)."""
    page = person.browser.get(stack.server_url(user, server) + "lab", timeout=60)
    if "/oauth2/authorize" in page.url and page.status_code == 200:
        page = authorize(person.browser, page)
    return page


def server_status(stack, person, user, server=""):
    """``api/status`` of the server with the browser's cookies (after :func:`open_server`)."""
    return person.browser.get(
        stack.server_url(user, server) + "api/status", timeout=30, allow_redirects=False
    )


def test_teachers_enrol_only_students(stack, people):
    tina, admin = people["tina"], people["admin"]
    assert_error(
        tina.post("api/classes/alg/students", {"username": "admin"}),
        403,
        "Teachers can enrol only students: admin is an administrator",
    )
    assert_error(
        tina.post("api/classes/alg/students", {"username": "tom"}),
        403,
        "Teachers can enrol only students: tom is a teacher",
    )
    r = tina.post("api/classes/alg/import", {"csv": "username\nadmin\ntom\n"})
    assert r.status_code == 400, r.text
    assert [row["status"] for row in r.json()["rows"]] == ["not_a_student"] * 2
    assert members(stack, "class-alg") == {"sam", "sid"}
    # an admin may enrol anyone; the class's teacher then still cannot touch their servers
    for name in ("admin", "tom"):
        assert admin.post("api/classes/alg/students", {"username": name}).status_code == 201
        assert_error(tina.post(f"api/classes/alg/servers/{name}"), 403, "only their students'")
    assert members(stack, "class-alg") == {"sam", "sid", "admin", "tom"}


def test_a_teacher_reaches_only_their_students_class_servers(stack, people):
    tina = people["tina"]
    # the admin and tom are on alg's roster too (the test above): still out of reach
    if members(stack, "class-alg") != {"sam", "sid", "admin", "tom"}:
        pytest.skip("needs the roster of test_teachers_enrol_only_students")
    targets = [("sam", ""), ("sam", "bio"), ("admin", ""), ("admin", "alg"), ("tom", "")]
    for user, server in targets:
        path = stack.server_path(user, server)
        r = hub_api(stack, tina, "POST", path)
        assert r.status_code in REFUSED, (user, server, r.status_code, r.text)
        assert stack.server_model(user, server) is None, f"{user}/{server} was started"
    for user, server in [*targets, ("sam", "alg")]:
        stack.spawn(user, server)
    try:
        for user, server in targets:
            r = open_server(stack, tina, user, server)
            assert r.status_code == 403, (user, server, r.status_code, r.url)
            assert "/oauth2/authorize" in r.url, r.url  # the hub refused; the server never
            assert server_status(stack, tina, user, server).status_code == 403
            r = hub_api(stack, tina, "DELETE", stack.server_path(user, server))
            assert r.status_code in REFUSED, (user, server, r.status_code)
            assert stack.server_model(user, server)["ready"], f"{user}/{server} was stopped"
        # her own student's class server: start, open, stop
        r = open_server(stack, tina, "sam", "alg")
        assert r.status_code == 200 and r.url.endswith("/user/sam/alg/lab"), (r.status_code, r.url)
        r = server_status(stack, tina, "sam", "alg")
        assert r.status_code == 200 and "kernels" in r.text, r.status_code
        r = hub_api(stack, tina, "GET", "/users/sam/servers/alg")
        assert r.status_code == 200 and r.json()["ready"], r.text
        # ... and not the person behind it: no user model, no group
        assert hub_api(stack, tina, "GET", "/users/sam").status_code in REFUSED
        assert hub_api(stack, tina, "GET", "/groups/class-alg").status_code in REFUSED
        r = hub_api(stack, tina, "DELETE", stack.server_path("sam", "alg"))
        assert r.status_code in (202, 204), r.text
        wait_for(lambda: stack.server_model("sam", "alg") is None, 60, what="sam/alg stopped")
        # JupyterHub 6 lets start:servers rename a stopped server; not a class server
        r = stack.browser_api(tina.browser, "PATCH", "/users/sam/servers/alg", json={"name": "x"})
        assert r.status_code == 400 and "cannot be renamed" in r.text, r.text
        r = hub_api(stack, tina, "POST", stack.server_path("sam", "alg"))
        assert r.status_code in (201, 202), r.text
        stack.wait_ready("sam", "alg")
    finally:
        for user, server in [*targets, ("sam", "alg")]:
            if stack.server_model(user, server) is not None:
                stack.stop(user, server)


def test_leaving_the_roster_ends_the_teachers_access_within_seconds(stack, people):
    """A live browser session, the OAuth cookie of the running server, and the hub API:
    all refused a few seconds after the student leaves the class's hub group, without
    the teacher signing in again."""
    tina = people["tina"]
    stack.spawn("sid", "alg")
    try:
        r = open_server(stack, tina, "sid", "alg")
        assert r.status_code == 200 and r.url.endswith("/user/sid/alg/lab"), (r.status_code, r.url)
        assert server_status(stack, tina, "sid", "alg").status_code == 200
        # what the classes service's sync does when sid leaves the roster; the server is
        # left running, as when stopping it after the sync fails
        r = stack.api("DELETE", "/groups/class-alg/users", json={"users": ["sid"]})
        assert r.status_code == 200, r.text

        def refused():
            status = server_status(stack, tina, "sid", "alg").status_code
            return status if status != 200 else None

        status = wait_for(refused, 20, interval=0.5, what="tina refused on sid/alg")
        assert status == 403, status
        assert open_server(stack, tina, "sid", "alg").status_code == 403
        assert hub_api(stack, tina, "DELETE", "/users/sid/servers/alg").status_code in REFUSED
        assert stack.server_model("sid", "alg")["ready"]
    finally:
        stack.stop("sid", "alg")
    # the real thing, through the classes service: the hub API refuses her right after
    r = stack.api("POST", "/groups/class-alg/users", json={"users": ["sid"]})
    assert r.status_code == 200, r.text
    assert tina.delete("api/classes/alg/students/sid").status_code == 204
    wait_for(
        lambda: hub_api(stack, tina, "POST", "/users/sid/servers/alg").status_code in REFUSED,
        10,
        interval=0.5,
        what="tina refused to start sid/alg",
    )
    assert stack.server_model("sid", "alg") is None
