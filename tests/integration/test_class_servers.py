"""Class servers: the class environment from the hub's groups, enrolment enforced, and a
teacher's rights over exactly their classes' servers. Real hub, Docker and Traefik."""

import secrets
from urllib.parse import quote

import pytest

from harness.stack import wait_for

pytestmark = pytest.mark.integration


def code() -> str:
    return "c" + secrets.token_hex(3)


def test_enrolled_student_gets_the_class_environment(stack):
    c, student = code(), "st" + secrets.token_hex(3)
    stack.enroll(student, c, mem_limit="300M", cpu_limit=0.5)
    stack.spawn(student, c)
    container = stack.server_container(student, c)
    host = container.attrs["HostConfig"]
    assert host["Memory"] == 300 * 1024 * 1024
    assert host["CpuQuota"] / host["CpuPeriod"] == 0.5
    assert stack.user_get(f"/user/{student}/{c}/api/status").status_code == 200
    stack.stop(student, c)


@pytest.mark.parametrize(
    "case, message",
    [
        ("not-enrolled", "not enrolled"),
        ("no-class", "no class with the code"),
        ("archived", "archived"),
        ("options", "take no options"),
    ],
)
def test_class_servers_refused_with_a_clear_message(stack, case, message):
    c, user = code(), "x" + secrets.token_hex(3)
    stack.create_user(user)
    kwargs = {}
    if case == "not-enrolled":
        stack.make_class(c)
    elif case == "archived":
        stack.enroll(user, c, archived=True)
    elif case == "options":
        stack.enroll(user, c)
        kwargs["json"] = {"image": "evil/image", "mem_limit": "64G"}
    r = stack.api("POST", stack.server_path(user, c), **kwargs)
    if r.status_code < 400:  # the failure arrives through the progress stream instead
        wait_for(lambda: stack.server_model(user, c) is None, 30, what="spawn failed")
        r = stack.api("POST", stack.server_path(user, c), **kwargs)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert message in r.json()["message"]
    assert not [x for x in stack.containers() if x.labels.get("classhub.user") == user]


def test_teacher_opens_starts_and_stops_only_their_students_servers(stack):
    mine, other = code(), code()
    teacher, student, stranger = (f"{p}{secrets.token_hex(3)}" for p in ("te", "st", "sx"))
    stack.enroll(teacher, mine, teacher=True)
    stack.enroll(student, mine)
    stack.enroll(stranger, other)
    for name in (student, stranger):  # the hub knows a student's role from their sign-in
        assert stack.login_token(stack.browser(), stack.mint(name)).status_code == 302
    b = stack.browser()
    assert stack.login_token(b, stack.mint(teacher, role="teacher")).status_code == 302
    roles = stack.user_model(teacher)["roles"]
    assert f"teacher-{mine}" in roles and f"teacher-{other}" not in roles

    # start the student's class server; on this one-origin hub the owner gate keeps the
    # teacher's browser out of it (tests/integration/test_origins.py opens it on its own
    # origin)
    r = stack.browser_api(b, "POST", f"/users/{student}/servers/{mine}")
    assert r.status_code in (201, 202), r.text
    stack.wait_ready(student, mine)
    lab = b.get(stack.url + f"/user/{student}/{mine}/lab", timeout=60)
    assert lab.status_code == 403 and "This server is not yours" in lab.text, lab.url
    # the state of the student's class server (not the student's user model)
    r = stack.browser_api(b, "GET", f"/users/{quote(student)}/servers/{mine}")
    assert r.status_code == 200 and r.json()["ready"], r.text

    # nothing outside their class: another class's student, or the student's own default
    # (the hub answers 404 for people one may not see, so their existence does not leak)
    r = stack.browser_api(b, "POST", f"/users/{stranger}/servers/{other}")
    assert r.status_code in (403, 404)
    assert stack.browser_api(b, "GET", f"/users/{stranger}").status_code in (403, 404)
    stack.spawn(stranger, other)
    r = b.get(stack.url + f"/user/{stranger}/{other}/lab", timeout=30)
    assert r.status_code == 403 or "/lab" not in r.url, (r.status_code, r.url)

    # stop the student's server
    r = stack.browser_api(b, "DELETE", f"/users/{student}/servers/{mine}")
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: stack.server_model(student, mine) is None, 60, what="stopped")
    stack.stop(stranger, other)


def test_a_teacher_gains_a_class_without_signing_in_again(stack):
    c, teacher, student = code(), "tn" + secrets.token_hex(3), "sn" + secrets.token_hex(3)
    assert stack.login_token(stack.browser(), stack.mint(student)).status_code == 302
    stack.enroll(student, c)
    b = stack.browser()
    stack.login_token(b, stack.mint(teacher, role="teacher"))
    assert not [r for r in stack.user_model(teacher)["roles"] if r.startswith("teacher-")]
    stack.enroll(teacher, c, teacher=True)

    def has_role():
        stack.whoami(b)  # any request refreshes (at most once a second)
        return f"teacher-{c}" in stack.user_model(teacher)["roles"]

    wait_for(has_role, 10, interval=0.5, what="class role granted")
