"""Class operations against the real hub, Docker and the classes service on nx-27017:
start all and stop all servers of a class (the teacher's, through the service's own hub
scopes), copying a class for a new term, deleting an archived class."""

import secrets

import pytest

from harness.classes import Person, assert_error, classes_stack, group, members
from harness.stack import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from classes_stack(tmp_path_factory.mktemp("class-ops"))


@pytest.fixture(scope="module")
def people(stack):
    people = {
        "admin": Person(stack, "admin", "admin"),
        "tina": Person(stack, "tina", "teacher"),
        "otto": Person(stack, "otto", "teacher"),
    }
    for student in ("sa", "sb"):  # signed in once: the hub knows them as students
        people[student] = Person(stack, student, "student")
    return people


def new_code() -> str:
    return "k" + secrets.token_hex(3)


def make_class(people, code, **extra) -> None:
    r = people["admin"].post(
        "api/classes", {"code": code, "name": code.upper(), "teachers": ["tina"], **extra}
    )
    assert r.status_code == 201, r.text


def test_start_all_and_stop_all(stack, people):
    code = new_code()
    make_class(people, code)
    tina = people["tina"]
    for name in ("sa", "sb"):
        assert tina.post(f"api/classes/{code}/students", {"username": name}).status_code == 201
    # an admin put a teacher on the roster: out of the class teacher's reach
    r = people["admin"].post(f"api/classes/{code}/students", {"username": "otto"})
    assert r.status_code == 201, r.text

    # another class's teacher may not
    r = people["otto"].post(f"api/classes/{code}/servers", {"action": "start"})
    assert_error(r, 403)

    r = tina.post(f"api/classes/{code}/servers", {"action": "start"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert sorted(answer["done"]) == ["sa", "sb"] and answer["failed"] == {}
    assert list(answer["skipped"]) == ["otto"] and "otto is a teacher" in answer["skipped"]["otto"]
    for name in ("sa", "sb"):
        assert stack.wait_ready(name, code, timeout=180)["ready"]
    assert stack.server_model("otto", code) is None

    # again: nothing more to start
    r = tina.post(f"api/classes/{code}/servers", {"action": "start"})
    assert r.status_code == 200 and sorted(r.json()["unchanged"]) == ["sa", "sb"]

    r = tina.post(f"api/classes/{code}/servers", {"action": "stop"})
    assert r.status_code == 200, r.text
    assert sorted(r.json()["done"]) == ["sa", "sb"]
    for name in ("sa", "sb"):
        wait_for(lambda n=name: stack.server_model(n, code) is None, 60, what=f"{name} stopped")

    r = tina.post(f"api/classes/{code}/servers", {"action": "restart"})
    assert_error(r, 400, "start")


def test_start_all_refused_for_an_archived_class(stack, people):
    code = new_code()
    make_class(people, code)
    assert people["tina"].patch(f"api/classes/{code}", {"archived": True}).status_code == 200
    r = people["tina"].post(f"api/classes/{code}/servers", {"action": "start"})
    assert_error(r, 409, "archived")


def test_copy_a_class_for_a_new_term(stack, people):
    code, copy = new_code(), new_code()
    make_class(people, code, term="2026", environment={"cpu_limit": 0.5, "mem_limit": "300M"})
    assert (
        people["tina"].post(f"api/classes/{code}/students", {"username": "sa"}).status_code == 201
    )
    original = people["admin"].get(f"api/classes/{code}").json()

    r = people["tina"].post(f"api/classes/{code}/copy", {"code": copy})
    assert_error(r, 403)

    r = people["admin"].post(f"api/classes/{code}/copy", {"code": copy, "term": "2027"})
    assert r.status_code == 201, r.text
    made = people["admin"].get(f"api/classes/{copy}").json()
    assert made["term"] == "2027" and made["name"] == original["name"]
    assert made["teachers"] == ["tina"] and made["environment"] == original["environment"]
    assert made["students"] == [] and made["archived"] is False
    # the hub groups: the teacher is the copy's teacher, nobody is its student
    assert members(stack, f"teachers-{copy}") == {"tina"}
    assert members(stack, f"class-{copy}") == set()
    # the original is unchanged
    assert people["admin"].get(f"api/classes/{code}").json()["students"] == ["sa"]

    r = people["admin"].post(f"api/classes/{code}/copy", {"code": copy})
    assert_error(r, 409, "exists already")


def test_delete_an_archived_class(stack, people):
    code = new_code()
    make_class(people, code)
    admin, tina = people["admin"], people["tina"]
    assert tina.post(f"api/classes/{code}/students", {"username": "sa"}).status_code == 201
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
    r = stack.api("POST", stack.server_path("sa", code))
    if r.status_code < 400:
        wait_for(lambda: stack.server_model("sa", code) is None, 30, what="spawn refused")
        r = stack.api("POST", stack.server_path("sa", code))
    assert 400 <= r.status_code < 500, r.text
