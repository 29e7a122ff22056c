"""Joining a class with its join code (ClassesApp.join_codes on, CLASSHUB_JOIN_CODES=1),
against the real hub, classes service and nx-27017: the teacher sees and replaces the
code, a student joins with it, a wrong code says so without naming any class, wrong
guesses are limited per account, teachers and other classes' codes give nothing away;
and with the setting off (the default) nobody joins."""

import pytest

from harness.classes import TEST_SERVICE_ENV, Person, assert_error, members, wait_healthy
from harness.stack import Stack, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    env = {**TEST_SERVICE_ENV, "CLASSHUB_JOIN_CODES": "1"}
    new = Stack(tmp_path_factory.mktemp("join-codes"), with_classes=True, env=env)
    for s in running_stack(new):
        wait_healthy(s)
        yield s


@pytest.fixture(scope="module")
def world(stack):
    people = {
        name: Person(stack, name, role)
        for name, role in (
            ("admin", "admin"),
            ("tina", "teacher"),
            ("tom", "teacher"),
            ("sam", "student"),
            ("eve", "student"),
            ("joe", "student"),
        )
    }
    for code, teacher in (("bio", "tina"), ("chem", "tom")):
        r = people["admin"].post(
            "api/classes", {"code": code, "name": code.title(), "teachers": [teacher]}
        )
        assert r.status_code == 201, r.text
    return people


def join_code(person, code):
    r = person.post(f"api/classes/{code}/join-code", {})
    assert r.status_code == 200, r.text
    return r.json()["join_code"]


def test_a_student_joins_with_the_code_the_teacher_sees(stack, world):
    code = join_code(world["tina"], "bio")
    assert world["tina"].get("api/classes/bio").json()["join_code"] == code
    r = world["sam"].post("api/join", {"join_code": code.lower()})
    assert r.status_code == 201, r.text
    assert r.json()["code"] == "bio" and r.json()["joined"] is True
    assert "sam" in members(stack, "class-bio")
    again = world["sam"].post("api/join", {"join_code": code})
    assert again.status_code == 200 and again.json()["joined"] is False
    # the student's view of the class never shows the code
    assert "join_code" not in world["sam"].get("api/classes/bio").json()


def test_a_new_code_replaces_the_old_one(stack, world):
    old = join_code(world["tina"], "bio")
    new = join_code(world["tina"], "bio")
    assert old != new
    assert_error(world["joe"].post("api/join", {"join_code": old}), 400, "not valid")
    assert world["joe"].post("api/join", {"join_code": new}).status_code == 201


def test_only_the_class_teachers_see_or_replace_the_code(stack, world):
    assert_error(world["tom"].post("api/classes/bio/join-code", {}), 403)
    assert_error(world["sam"].post("api/classes/bio/join-code", {}), 403)
    assert world["tom"].get("api/classes/bio").status_code in (403, 404)


def test_a_teacher_cannot_join_as_a_student(stack, world):
    code = join_code(world["tina"], "bio")
    r = world["tom"].post("api/join", {"join_code": code})
    assert_error(r, 403, "Only students")
    assert "tom" not in members(stack, "class-bio")


def test_wrong_codes_are_refused_alike_and_limited(stack, world):
    messages = set()
    for guess in ("AAAA-BBBB-CC", "nonsense", "ABCD-EFGH-JK", {"$ne": None}):
        r = world["eve"].post("api/join", {"join_code": guess})
        if isinstance(guess, dict):
            assert r.status_code == 400  # not text: never a query
            continue
        messages.add(assert_error(r, 400)["message"])
    assert len(messages) == 1  # one answer, naming no class
    assert "bio" not in messages.pop().lower()
    statuses = [
        world["eve"].post("api/join", {"join_code": "ZZZZ-ZZZZ-ZZ"}).status_code for _ in range(10)
    ]
    assert statuses[-1] == 429, statuses
    # even the right code waits now: guessing cannot go on
    code = join_code(world["tom"], "chem")
    r = world["eve"].post("api/join", {"join_code": code})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "eve" not in members(stack, "class-chem")
    # another student is not held back by eve's guesses (same address, below its limit)
    assert world["joe"].post("api/join", {"join_code": code}).status_code == 201
