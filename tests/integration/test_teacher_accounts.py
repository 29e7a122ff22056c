"""Teachers create student accounts for their classes (the classes service, with the
hub's narrow custom scope), against the real hub, PostgreSQL, Redis and nx-27017; and every
attack: a teacher creating a teacher or an admin, taking over an existing account,
resetting an admin's, a teacher's or another class's student's password, enrolling an
existing teacher, acting on a class they do not teach; a student trying any of it; the
classes service's scope reaching only student accounts."""

import secrets
from urllib.parse import quote

import pytest
import requests

from harness.classes import SERVICE, Person, assert_error, classes_stack, members

pytestmark = pytest.mark.integration

PASSWORD = "a-long-password-1"


def new_name(prefix: str = "u") -> str:
    return prefix + secrets.token_hex(4)


#: a service holding only the classes service's custom scope, to attack the hub's
#: student-account API directly with that power
SCOPED_TOKEN = secrets.token_hex(32)
EXTRA = f"""
c.JupyterHub.services.append({{"name": "scoped", "api_token": {SCOPED_TOKEN!r}}})
c.JupyterHub.load_roles.append(
    {{"name": "scoped", "scopes": ["custom:classhub:student-accounts"], "services": ["scoped"]}}
)
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from classes_stack(tmp_path_factory.mktemp("teacher-accounts"), extra_config=EXTRA)


@pytest.fixture(scope="module")
def world(stack):
    """bio (teacher tina, student sam) and chem (teacher tom, student sid); an admin."""
    people = {
        "admin": Person(stack, "admin", "admin"),
        "tina": Person(stack, "tina", "teacher"),
        "tom": Person(stack, "tom", "teacher"),
        "sam": Person(stack, "sam", "student"),
        "sid": Person(stack, "sid", "student"),
    }
    admin = people["admin"]
    for code, teacher, student in (("bio", "tina", "sam"), ("chem", "tom", "sid")):
        r = admin.post("api/classes", {"code": code, "name": code.title(), "teachers": [teacher]})
        assert r.status_code == 201, r.text
        r = admin.post(f"api/classes/{code}/students", {"username": student})
        assert r.status_code == 201, r.text
    return people


def signs_in(stack, name, password) -> bool:
    return stack.login_password(stack.browser(), name, password).status_code == 302


def audit(stack, name):
    return stack.psql(
        "SELECT actor || ' ' || action FROM classhub_auth.account_audit"
        " WHERE username = %s ORDER BY id",
        name,
    )


def test_a_teacher_creates_a_student_enrolled_in_their_class(stack, world):
    name = new_name("new")
    r = world["tina"].post("api/classes/bio/accounts", {"username": name})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["role"] == "student" and body["enrolled"] == [name]
    assert body["hub_sync"] == "done"
    assert name in members(stack, "class-bio")
    assert "classhub-student" in stack.user_model(name)["roles"]
    assert signs_in(stack, name, body["password"])
    assert audit(stack, name) == ["tina via classes create"]
    roster = world["tina"].get("api/classes/bio/students").json()["students"]
    assert name in roster


def test_a_teacher_imports_students_from_a_csv_file(stack, world):
    a, b = new_name("csv"), new_name("csv")
    text = f"username,password\n{a},\n{b},{PASSWORD}\n"
    r = world["tina"].post("api/classes/bio/accounts", {"csv": text})
    assert r.status_code == 201, r.text
    rows = {row["username"]: row for row in r.json()["rows"]}
    assert set(r.json()["enrolled"]) == {a, b}
    assert members(stack, "class-bio") >= {a, b}
    assert signs_in(stack, a, rows[a]["password"]) and signs_in(stack, b, PASSWORD)


def test_a_teacher_resets_their_students_password(stack, world):
    name = new_name("rs")
    r = world["tina"].post("api/classes/bio/accounts", {"username": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    b = stack.browser()
    assert stack.login_password(b, name, PASSWORD).status_code == 302
    r = world["tina"].post(f"api/classes/bio/students/{name}/password", {})
    assert r.status_code == 200, r.text
    new = r.json()["password"]
    assert stack.whoami(b) is None  # their session ended
    assert not signs_in(stack, name, PASSWORD) and signs_in(stack, name, new)
    assert audit(stack, name)[-1] == "tina via classes password"


# ----- the attacks


@pytest.mark.parametrize("role", ["teacher", "admin"])
def test_a_teacher_cannot_create_teachers_or_admins(stack, world, role):
    name = new_name("x")
    r = world["tina"].post("api/classes/bio/accounts", {"csv": f"username,role\n{name},{role}\n"})
    assert_error(r, 400, "student accounts only")
    assert stack.api("GET", f"/users/{name}").status_code == 404
    # no other field makes one: the role is not a field at all
    r = world["tina"].post("api/classes/bio/accounts", {"username": name, "role": role})
    assert r.status_code == 400
    assert stack.api("GET", f"/users/{name}").status_code == 404


def test_a_teacher_cannot_take_over_an_existing_account(stack, world):
    for victim in ("admin", "tom", "sid"):
        r = world["tina"].post(
            "api/classes/bio/accounts", {"username": victim, "password": "taken-over-123"}
        )
        assert_error(r, 409, "already exists")
        r = world["tina"].post(
            "api/classes/bio/accounts", {"csv": f"username,password\n{victim},taken-over-123\n"}
        )
        assert r.status_code == 400
        assert not signs_in(stack, victim, "taken-over-123")
    assert "tom" not in members(stack, "class-bio") and "admin" not in members(stack, "class-bio")


def test_a_teacher_cannot_create_for_a_class_they_do_not_teach(stack, world):
    name = new_name("x")
    r = world["tina"].post("api/classes/chem/accounts", {"username": name})
    assert_error(r, 403)
    r = world["sam"].post("api/classes/bio/accounts", {"username": name})
    assert_error(r, 403)
    assert stack.api("GET", f"/users/{name}").status_code == 404


def test_a_teacher_cannot_reset_other_peoples_passwords(stack, world):
    # another class's student, the admin, another teacher: not on tina's roster
    for victim in ("sid", "admin", "tom"):
        r = world["tina"].post(f"api/classes/bio/students/{victim}/password", {})
        assert_error(r, 404, "not on the roster")
    # in another class through that class's address
    r = world["tina"].post("api/classes/chem/students/sid/password", {})
    assert_error(r, 403)
    # a student cannot either
    r = world["sam"].post("api/classes/bio/students/sam/password", {"password": "mine-now-1234"})
    assert_error(r, 403)


def test_a_teacher_on_a_roster_is_still_out_of_reach(stack, world):
    """An admin enrols teacher tom in bio as a student: tina cannot reset his password
    (the hub refuses anything but a student account, whatever the roster says)."""
    r = world["admin"].post("api/classes/bio/students", {"username": "tom"})
    assert r.status_code == 201, r.text
    try:
        r = world["tina"].post("api/classes/bio/students/tom/password", {"password": "gotcha-1234"})
        assert_error(r, 409, "no local student account")
        assert not signs_in(stack, "tom", "gotcha-1234")
        # nor enrol an existing teacher herself
        r = world["tina"].post("api/classes/bio/students", {"username": "tina"})
        assert_error(r, 403, "Teachers can enrol only students")
    finally:
        world["admin"].delete("api/classes/bio/students/tom")


def test_the_hub_api_for_student_accounts_is_refused_to_people(stack, world):
    """Only the classes service's token holds the custom scope: a teacher's browser (or an
    admin's) calling the hub's student-account API directly is refused."""
    for who in ("tina", "admin"):
        b = world[who].browser
        r = stack.browser_api(
            b, "POST", "/classhub/student-accounts", json={"username": new_name("x"), "by": who}
        )
        assert r.status_code == 403, (who, r.status_code)
        r = stack.browser_api(
            b,
            "PATCH",
            "/classhub/student-accounts/sam",
            json={"generate_password": True, "by": who},
        )
        assert r.status_code == 403, (who, r.status_code)


def test_joining_with_a_code_is_off_by_default(stack, world):
    r = world["sam"].post("api/join", {"join_code": "ABCD-EFGH-JK"})
    assert_error(r, 404, "switched off")
    assert world["tina"].get("api/classes/bio").json()["join_code"] is None


def test_a_portal_token_cannot_enter_an_account_a_teacher_made(stack, world):
    """A teacher could take the name of someone who has not signed in through the portal
    yet; that person's token sign-in is refused rather than sharing the account."""
    name = new_name("pre")
    r = world["tina"].post("api/classes/bio/accounts", {"username": name, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = stack.login_token(stack.browser(), stack.mint(name, role="teacher"))
    assert r.status_code == 403 and "A teacher created a local account" in r.text
    assert "classhub-student" in stack.user_model(name)["roles"]
    assert signs_in(stack, name, PASSWORD)


def test_the_custom_scope_reaches_only_student_accounts(stack, world):
    """With the classes service's power itself (a token holding only its custom scope):
    no teacher or admin account, no existing account, no other API."""

    def call(method, path, body):
        return requests.request(
            method,
            f"{stack.url}/hub/api{path}",
            headers={"Authorization": f"token {SCOPED_TOKEN}"},
            json=body,
            timeout=30,
        )

    local_teacher = new_name("lt")
    r = stack.api(
        "POST",
        "/classhub/accounts",
        json={"username": local_teacher, "role": "teacher", "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    name = new_name("ok")
    r = call("POST", "/classhub/student-accounts", {"username": name, "by": "tina"})
    assert r.status_code == 201 and r.json()["role"] == "student"
    for body, status in (
        ({"csv": f"username,role\n{new_name('x')},teacher\n", "by": "tina"}, 400),
        ({"csv": f"username,role\n{new_name('x')},admin\n", "by": "tina"}, 400),
        ({"username": "admin", "password": "taken-over-123", "by": "tina"}, 409),
        ({"username": "tom", "password": "taken-over-123", "by": "tina"}, 409),
        ({"username": local_teacher, "password": "taken-over-123", "by": "tina"}, 409),
        ({"username": new_name("x")}, 400),  # no "by": no audit actor, no account
    ):
        r = call("POST", "/classhub/student-accounts", body)
        assert r.status_code == status, (body, r.status_code, r.text)
    for victim in ("admin", "tom", local_teacher, "nobody-" + name):
        r = call(
            "PATCH",
            f"/classhub/student-accounts/{victim}",
            {"password": "taken-over-123", "by": "tina"},
        )
        assert r.status_code == 409, (victim, r.status_code)
    assert not signs_in(stack, "admin", "taken-over-123")
    assert not signs_in(stack, local_teacher, "taken-over-123")
    # nothing beyond it: the admin API, roles, other users
    for method, path, body in (
        ("GET", "/classhub/accounts", None),
        ("POST", "/classhub/accounts", {"username": new_name("x"), "role": "admin"}),
        ("PATCH", f"/classhub/accounts/{name}", {"role": "admin"}),
        ("DELETE", f"/classhub/accounts/{local_teacher}", None),
        ("GET", "/users", None),
    ):
        r = call(method, path, body)
        assert r.status_code in (403, 404), (method, path, r.status_code)
    assert "classhub-student" in stack.user_model(name)["roles"]


# ----- the class page in Chromium


def test_the_class_page_creates_a_student_and_resets_their_password(
    stack, world, chromium, tmp_path
):
    name = new_name("ui")
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: d.accept())  # "Give ... a new password?"
    try:
        page.goto(f"{stack.url}/hub/login?next={quote(SERVICE, safe='')}")
        page.fill("#token_input", stack.mint("tina", "teacher"))
        page.click("#token_submit")
        page.wait_for_url(f"**{SERVICE}")
        page.goto(f"{stack.url}{SERVICE}classes/bio")
        page.fill("#new-student-username", name)
        page.click("#create-student button[type=submit]")
        page.wait_for_selector(f"#roster tr[data-user='{name}']")
        assert "added them to the roster" in page.inner_text("#action-alert")
        cells = page.eval_on_selector_all(
            "#accounts-report tbody tr td", "cells => cells.map(c => c.textContent)"
        )
        assert cells[1:3] == [name, "created"] and len(cells[3]) == 16
        assert signs_in(stack, name, cells[3])
        page.click(f"#roster tr[data-user='{name}'] [data-action=password]")
        page.wait_for_selector("#action-alert:has-text('New password for')")
        new = page.inner_text("#action-alert").split(": ", 1)[1].split(" ", 1)[0]
        assert not signs_in(stack, name, cells[3]) and signs_in(stack, name, new)
        assert not problems, problems
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print("screenshot:", tmp_path / "failure.png", problems)
        raise
    finally:
        context.close()
