"""Class operations against the real hub, Docker and the classes service on nx-27017:
start all and stop all servers of a class (the teacher's, through the service's own hub
scopes), copying a class for a new term, deleting an archived class."""

import secrets

import pytest

from harness.browser import signed_in_page
from harness.classes import Person, assert_error, group, members
from harness.stack import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


@pytest.fixture(scope="module")
def people(stack):
    people = {
        "admin": Person(stack, "admin", "admin"),
        "tina13": Person(stack, "tina13", "teacher"),
        "otto13": Person(stack, "otto13", "teacher"),
    }
    for student in ("sa13", "sb13"):  # signed in once: the hub knows them as students
        people[student] = Person(stack, student, "student")
    return people


def new_code() -> str:
    return "k" + secrets.token_hex(3)


def make_class(people, code, **extra) -> None:
    r = people["admin"].post(
        "api/classes", {"code": code, "name": code.upper(), "teachers": ["tina13"], **extra}
    )
    assert r.status_code == 201, r.text


def test_start_all_and_stop_all(stack, people):
    code = new_code()
    make_class(people, code)
    tina = people["tina13"]
    for name in ("sa13", "sb13"):
        assert tina.post(f"api/classes/{code}/students", {"username": name}).status_code == 201
    # an admin put a teacher on the roster: out of the class teacher's reach
    r = people["admin"].post(f"api/classes/{code}/students", {"username": "otto13"})
    assert r.status_code == 201, r.text

    # another class's teacher may not
    r = people["otto13"].post(f"api/classes/{code}/servers", {"action": "start"})
    assert_error(r, 403)

    r = tina.post(f"api/classes/{code}/servers", {"action": "start"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert sorted(answer["done"]) == ["sa13", "sb13"] and answer["failed"] == {}
    assert (
        list(answer["skipped"]) == ["otto13"]
        and "otto13 is a teacher" in answer["skipped"]["otto13"]
    )
    for name in ("sa13", "sb13"):
        assert stack.wait_ready(name, code, timeout=180)["ready"]
    assert stack.server_model("otto13", code) is None

    # again: nothing more to start
    r = tina.post(f"api/classes/{code}/servers", {"action": "start"})
    assert r.status_code == 200 and sorted(r.json()["unchanged"]) == ["sa13", "sb13"]

    r = tina.post(f"api/classes/{code}/servers", {"action": "stop"})
    assert r.status_code == 200, r.text
    assert sorted(r.json()["done"]) == ["sa13", "sb13"]
    for name in ("sa13", "sb13"):
        wait_for(lambda n=name: stack.server_model(n, code) is None, 60, what=f"{name} stopped")

    r = tina.post(f"api/classes/{code}/servers", {"action": "restart"})
    assert_error(r, 400, "start")


def test_start_all_refused_for_an_archived_class(stack, people):
    code = new_code()
    make_class(people, code)
    assert people["tina13"].patch(f"api/classes/{code}", {"archived": True}).status_code == 200
    r = people["tina13"].post(f"api/classes/{code}/servers", {"action": "start"})
    assert_error(r, 409, "archived")


def test_copy_a_class_for_a_new_term(stack, people):
    code, copy = new_code(), new_code()
    make_class(people, code, term="2026", environment={"cpu_limit": 0.5, "mem_limit": "300M"})
    assert (
        people["tina13"].post(f"api/classes/{code}/students", {"username": "sa13"}).status_code
        == 201
    )
    original = people["admin"].get(f"api/classes/{code}").json()

    r = people["tina13"].post(f"api/classes/{code}/copy", {"code": copy})
    assert_error(r, 403)

    r = people["admin"].post(f"api/classes/{code}/copy", {"code": copy, "term": "2027"})
    assert r.status_code == 201, r.text
    made = people["admin"].get(f"api/classes/{copy}").json()
    assert made["term"] == "2027" and made["name"] == original["name"]
    assert made["teachers"] == ["tina13"] and made["environment"] == original["environment"]
    assert made["students"] == [] and made["archived"] is False
    # the hub groups: the teacher is the copy's teacher, nobody is its student
    assert members(stack, f"teachers-{copy}") == {"tina13"}
    assert members(stack, f"class-{copy}") == set()
    # the original is unchanged
    assert people["admin"].get(f"api/classes/{code}").json()["students"] == ["sa13"]

    r = people["admin"].post(f"api/classes/{code}/copy", {"code": copy})
    assert_error(r, 409, "exists already")


def test_delete_an_archived_class(stack, people):
    code = new_code()
    make_class(people, code)
    admin, tina = people["admin"], people["tina13"]
    assert tina.post(f"api/classes/{code}/students", {"username": "sa13"}).status_code == 201
    assert group(stack, f"class-{code}") is not None

    assert_error(admin.delete(f"api/classes/{code}?confirm={code}"), 409, "not archived")
    assert tina.patch(f"api/classes/{code}", {"archived": True}).status_code == 200
    assert_error(tina.delete(f"api/classes/{code}?confirm={code}"), 403)
    assert_error(admin.delete(f"api/classes/{code}"), 400, "confirm")
    assert_error(admin.delete(f"api/classes/{code}?confirm=other"), 400, "confirm")

    r = admin.delete(f"api/classes/{code}?confirm={code}")
    assert r.status_code == 204, r.text
    assert_error(admin.get(f"api/classes/{code}"), 404)
    assert group(stack, f"class-{code}") is None and group(stack, f"teachers-{code}") is None
    # nobody can start its server any more
    r = stack.api("POST", stack.server_path("sa13", code))
    if r.status_code < 400:
        wait_for(lambda: stack.server_model("sa13", code) is None, 30, what="spawn refused")
        r = stack.api("POST", stack.server_path("sa13", code))
    assert 400 <= r.status_code < 500, r.text
    # its code is never given to a new class, nor to a copy: the grades and files services
    # keep the deleted class's work under it, and the new class's teachers would see it
    r = admin.post("api/classes", {"code": code, "name": "Again", "teachers": ["tina13"]})
    assert_error(r, 409, "belonged to a class that was deleted")
    other = new_code()
    make_class(people, other)
    assert_error(admin.post(f"api/classes/{other}/copy", {"code": code}), 409, "deleted")
    assert_error(admin.delete(f"api/classes/{code}?confirm={code}"), 404)


# ----- the class page in Chromium -----


@pytest.fixture
def open_as(stack, chromium, tmp_path):
    """``open_as(name, role, path)``: a new browser signed in with a token, on ``path``;
    a screenshot when the test fails, and no page errors."""
    pages = []

    def open_page(name: str, role: str, path: str):
        page = signed_in_page(chromium, stack, name, role, path, timeout=30_000)
        pages.append((page.context, page))
        return page

    try:
        yield open_page
    except Exception:
        for n, (_, page) in enumerate(pages):
            page.screenshot(path=str(tmp_path / f"page{n}.png"), full_page=True)
        raise
    finally:
        problems = [p for _, page in pages for p in page.problems]
        for context, _ in pages:
            context.close()
    assert not problems, problems


def test_the_class_page_starts_and_stops_all_copies_and_deletes(stack, people, open_as):
    code, copy = new_code(), new_code()
    make_class(people, code)
    assert (
        people["tina13"].post(f"api/classes/{code}/students", {"username": "sa13"}).status_code
        == 201
    )

    page = open_as("tina13", "teacher", f"/services/classes/classes/{code}")
    assert page.locator("#copy-section").count() == 0  # copying is for admins
    page.click("#start-all")
    page.wait_for_selector("#bulk-result:has-text('1 started')")
    stack.wait_ready("sa13", code, timeout=180)
    page.once("dialog", lambda d: d.accept())
    page.click("#stop-all")
    page.wait_for_selector("#bulk-result:has-text('1 stopped')")
    wait_for(lambda: stack.server_model("sa13", code) is None, 60, what="sa13 stopped")

    # (signing in in a browser ends the requests sessions of people[...]: one session each)
    admin = open_as("admin", "admin", f"/services/classes/classes/{code}")

    def get(path):
        return admin.context.request.get(f"{stack.url}/services/classes/{path}")

    admin.fill("#copy-code", copy)
    admin.fill("#copy-term", "2027")
    admin.click("#copy-class [type=submit]")
    admin.wait_for_selector(f"#action-alert:has-text('Copied {code} to {copy}')")
    made = get(f"api/classes/{copy}").json()
    assert made["term"] == "2027" and made["teachers"] == ["tina13"] and made["students"] == []

    # delete: only once archived, and only with the code typed
    assert admin.is_disabled("#delete-class")
    admin.once("dialog", lambda d: d.accept())
    admin.click("#archive-button")
    admin.wait_for_selector("#archived-badge:not([hidden])")
    admin.once("dialog", lambda d: d.accept("wrong"))
    admin.click("#delete-class")
    admin.wait_for_selector("#action-alert:has-text('Not deleted')")
    assert get(f"api/classes/{code}").status == 200
    admin.once("dialog", lambda d: d.accept(code))
    admin.click("#delete-class")
    admin.wait_for_selector(f"#action-alert:has-text('Deleted {code}.')")
    assert get(f"api/classes/{code}").status == 404


def test_a_person_is_taken_off_every_roster(stack, people):
    # fresh sign-ins (a browser test in this module took over the admin's and tina13's)
    people = {
        **people,
        "admin": Person(stack, "admin", "admin"),
        "tina13": Person(stack, "tina13", "teacher"),
    }
    first, second = new_code(), new_code()
    make_class(people, first)
    make_class(people, second)
    r = people["admin"].post(f"api/classes/{second}/students", {"username": "sb13"})
    assert r.status_code == 201, r.text
    r = people["admin"].post(f"api/classes/{first}/students", {"username": "sb13"})
    assert r.status_code == 201, r.text
    stack.spawn("sb13", first)

    assert_error(people["tina13"].delete("api/people/sb13"), 403)
    r = people["admin"].delete("api/people/sb13")
    assert r.status_code == 200, r.text
    assert {first, second} <= set(r.json()["classes"])  # and earlier tests' classes
    assert r.json()["stopped_servers"] == [first]
    for code in (first, second):
        assert "sb13" not in people["admin"].get(f"api/classes/{code}").json()["students"]
        assert "sb13" not in members(stack, f"class-{code}")
    wait_for(lambda: stack.server_model("sb13", first) is None, 60, what="sb13 stopped")
    # a teacher too: off the teacher lists and the teachers-<code> groups
    r = people["admin"].delete("api/people/tina13")
    assert r.status_code == 200 and first in r.json()["classes"]
    assert people["admin"].get(f"api/classes/{first}").json()["teachers"] == []
    assert members(stack, f"teachers-{first}") == set()
