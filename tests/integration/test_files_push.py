"""Material pushes into real student servers (Docker, the single-user image's extension),
through the real hub, Traefik, SeaweedFS and nx-27017."""

import re
import time

import pytest

from harness.classes import assert_error
from harness.files import person, upload
from harness.stack import wait_for

pytestmark = pytest.mark.integration

CODE = "phys4"


#: a conflict copy's name: no spaces, no quotes (``sheet.teacher-2026-12-06.txt``)
COPY_NAME = re.compile(r"^sheet\.teacher-\d{4}-\d{2}-\d{2}\.txt$")


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


def listdir(stack, user, path, code=CODE):
    ran = stack.server_container(user, code).exec_run(
        ["ls", "-1A", f"/home/jovyan/{path}"], user="1000"
    )
    return sorted(ran[1].decode().splitlines()) if ran[0] == 0 else None


def push(teacher, body=None, code=CODE):
    r = teacher.post(f"api/classes/{code}/pushes", json=body or {})
    assert r.status_code == 202, r.text
    return r.json()


def wait_push(teacher, push_id, status="done", code=CODE):
    def finished():
        r = teacher.get(f"api/classes/{code}/pushes/{push_id}")
        return r.json() if r.json()["status"] == status else None

    return wait_for(finished, 60, interval=0.3, what=f"push {push_id} {status}")


def by_user(report):
    return {s["user"]: s for s in report["students"]}


def test_push_to_running_and_stopped_students_keeps_their_work(stack):
    stack.enroll("tom4", CODE, teacher=True)
    for s in ("ada4", "bea4", "cal4"):
        stack.enroll(s, CODE)
    tom = person(stack, "tom4", "teacher")
    upload(tom, f"class/{CODE}", "sheet.txt", b"v1 of the sheet")
    upload(tom, f"class/{CODE}", "data/table.csv", b"a,b\n1,2\n")
    stack.spawn("ada4", CODE)
    stack.spawn("bea4", CODE)

    first = wait_push(tom, push(tom)["id"])
    students = by_user(first)
    assert set(students) == {"ada4", "bea4", "cal4"}
    for s in ("ada4", "bea4"):
        assert students[s]["status"] == "delivered", students[s]
        assert sorted(students[s]["report"]["added"]) == ["data/table.csv", "sheet.txt"]
        assert stack.read_home(s, CODE, f"{CODE}/material/sheet.txt") == b"v1 of the sheet"
    assert students["cal4"]["status"] == "waiting"

    # cal4 starts later and gets the push then (the service looks every second here)
    stack.spawn("cal4", CODE)
    wait_for(
        lambda: stack.read_home("cal4", CODE, f"{CODE}/material/data/table.csv") == b"a,b\n1,2\n",
        60,
        interval=0.5,
        what="the waiting push delivered at the server's start",
    )
    wait_for(
        lambda: (
            by_user(tom.get(f"api/classes/{CODE}/pushes/{first['id']}").json())["cal4"]["status"]
            == "delivered"
        ),
        30,
        what="the late delivery recorded",
    )

    # ada4 edits the sheet; the teacher publishes v2 of it: ada4's work stays, v2 lands beside
    stack.write_home("ada4", CODE, f"{CODE}/material/sheet.txt", b"ada's answers")
    time.sleep(1.1)  # a new minute-label is not needed: labels only name the copy
    upload(tom, f"class/{CODE}", "sheet.txt", b"v2 of the sheet")
    second = wait_push(tom, push(tom)["id"])
    students = by_user(second)
    ada = students["ada4"]["report"]
    assert [c["path"] for c in ada["conflicts"]] == ["sheet.txt"]
    saved_as = ada["conflicts"][0]["saved_as"]
    assert COPY_NAME.match(saved_as), saved_as
    assert ada["skipped"] == ["data/table.csv"]
    assert stack.read_home("ada4", CODE, f"{CODE}/material/sheet.txt") == b"ada's answers"
    assert stack.read_home("ada4", CODE, f"{CODE}/material/{saved_as}") == b"v2 of the sheet"
    # bea4 did not touch the sheet: updated in place
    assert students["bea4"]["report"]["updated"] == ["sheet.txt"]
    assert stack.read_home("bea4", CODE, f"{CODE}/material/sheet.txt") == b"v2 of the sheet"

    # running the push again duplicates nothing
    rerun = tom.post(f"api/classes/{CODE}/pushes/{second['id']}/run")
    assert rerun.status_code == 200, rerun.text
    assert listdir(stack, "ada4", f"{CODE}/material") == sorted(["data", "sheet.txt", saved_as])


def test_an_interrupted_push_is_finished_by_running_it_again(stack):
    tom = person(stack, "tom4", "teacher")
    upload(tom, f"class/{CODE}", "extra.txt", b"extra")
    done = wait_push(tom, push(tom)["id"])
    # as if the service had died half-way: one delivery lost, the push still "running"
    from pymongo import MongoClient

    db = MongoClient(stack.files_mongo_url).get_default_database()
    db.material_deliveries.delete_one({"_id": f"{done['id']}/bea4"})
    db.material_pushes.update_one({"_id": done["id"]}, {"$set": {"status": "running"}})
    r = tom.post(f"api/classes/{CODE}/pushes/{done['id']}/run")
    assert r.status_code == 200, r.text
    students = by_user(r.json())
    assert r.json()["status"] == "done"
    assert students["bea4"]["status"] == "delivered"
    assert students["bea4"]["report"]["skipped"] and not students["bea4"]["report"]["added"]
    assert all(s["status"] == "delivered" for s in students.values())
    listed = {p["id"]: p for p in tom.get(f"api/classes/{CODE}/pushes").json()["pushes"]}
    assert listed[done["id"]]["counts"] == {"delivered": 3}


def test_scheduled_pushes_run_at_their_time_and_can_be_cancelled(stack):
    tom = person(stack, "tom4", "teacher")
    upload(tom, f"class/{CODE}", "later.txt", b"later")
    month = time.strftime("%Y-%m-%dT09:00:00+01:00", time.gmtime(time.time() + 30 * 86400))
    far = push(tom, {"at": month})
    assert far["status"] == "scheduled" and far["at"] == month[:10] + "T08:00:00Z"
    assert_error(tom.post(f"api/classes/{CODE}/pushes", json={"at": "2099-01-01T00:00:00Z"}), 400)
    assert tom.delete(f"api/classes/{CODE}/pushes/{far['id']}").status_code == 204
    assert_error(tom.delete(f"api/classes/{CODE}/pushes/{far['id']}"), 409)
    soon = time.time() + 2
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(soon))
    scheduled = push(tom, {"at": stamp})
    assert scheduled["status"] == "scheduled"
    done = wait_push(tom, scheduled["id"])
    assert by_user(done)["ada4"]["report"]["added"] == ["later.txt"]
    assert stack.read_home("ada4", CODE, f"{CODE}/material/later.txt") == b"later"
    for bad in ("tomorrow", "2026-13-01T00:00:00Z", "2026-12-01T10:00:00", 5):
        assert_error(tom.post(f"api/classes/{CODE}/pushes", json={"at": bad}), 400)


def test_no_storage_credentials_in_a_student_container(stack):
    c = stack.server_container("ada4", CODE)
    env = " ".join(c.attrs["Config"]["Env"])
    code, printed = c.exec_run(["printenv"], user="1000")
    assert code == 0
    secrets = (stack.s3_secret_key, stack.s3_access_key, *stack.s3_files_keys.__dict__.values())
    for secret in (*secrets, *stack.s3_grades_keys.__dict__.values()):
        assert secret not in env and secret.encode() not in printed
    assert b"CLASSHUB_S3" not in printed and "CLASSHUB_S3" not in env
    # nor anywhere in the files a push delivered, or the extension's records
    code, out = c.exec_run(["grep", "-rl", stack.s3_secret_key, "/home/jovyan"], user="1000")
    assert code == 1, out  # grep: no match


def test_releasing_an_assignment_pushes_its_starting_files_into_its_folder(stack):
    tom, ada = person(stack, "tom4", "teacher"), person(stack, "ada4")
    upload(tom, f"class/{CODE}/assignments", "hw1/start.py", b"# write your answer here\n")
    # the starting files are the teachers' until the release
    assert_error(ada.get(f"api/files/class/{CODE}/assignments"), 404)
    assert_error(
        ada.post(f"api/files/class/{CODE}/assignments/uploads", json={"path": "x", "size": 1}), 404
    )
    assert_error(tom.post(f"api/classes/{CODE}/pushes", json={"assignment": "../hw1"}), 400)
    assert_error(tom.post(f"api/classes/{CODE}/pushes", json={"assignment": "nothing"}), 400)
    r = tom.post(f"api/classes/{CODE}/pushes", json={"assignment": "hw1"})
    assert r.status_code == 202, r.text
    assert r.json()["dest"] == f"{CODE}/assignments/hw1"
    done = wait_push(tom, r.json()["id"])
    assert by_user(done)["ada4"]["report"]["added"] == ["start.py"]
    assert (
        stack.read_home("ada4", CODE, f"{CODE}/assignments/hw1/start.py")
        == b"# write your answer here\n"
    )
    # the material folder did not get it
    assert "start.py" not in (listdir(stack, "ada4", f"{CODE}/material") or [])


def test_release_pushes_are_not_listed_as_material_pushes(stack):
    tom = person(stack, "tom4", "teacher")
    listed = tom.get(f"api/classes/{CODE}/pushes").json()["pushes"]
    assert listed and all(p["assignment"] is None for p in listed)
    releases = tom.get(f"api/classes/{CODE}/pushes?releases=1").json()["pushes"]
    assert [p["assignment"] for p in releases] == ["hw1"]


LESSON = "lesson1.ipynb"
RAN = b'{"cells": [{"outputs": ["the student ran it"]}]}'


def test_a_file_the_teacher_did_not_change_is_not_delivered_again(stack):
    code = "phys5"
    stack.enroll("tia5", code, teacher=True)
    stack.enroll("eve5", code)
    stack.enroll("fay5", code)
    tia = person(stack, "tia5", "teacher")
    upload(tia, f"class/{code}", LESSON, b'{"cells": []}')
    upload(tia, f"class/{code}", "notes.md", b"notes v1")
    stack.spawn("eve5", code)
    stack.spawn("fay5", code)
    first = by_user(wait_push(tia, push(tia, code=code)["id"], code=code))
    assert sorted(first["eve5"]["report"]["added"]) == [LESSON, "notes.md"]
    folder = f"{code}/material"

    # eve runs the notebook (its outputs change the file), fay deletes the notes; eve also
    # throws away the record in her home (she can: it is hers)
    stack.write_home("eve5", code, f"{folder}/{LESSON}", RAN)
    ran = stack.server_container("fay5", code).exec_run(
        ["rm", f"/home/jovyan/{folder}/notes.md"], user="1000"
    )
    assert ran[0] == 0
    ran = stack.server_container("eve5", code).exec_run(
        ["rm", "-rf", "/home/jovyan/.classhub/material"], user="1000"
    )
    assert ran[0] == 0

    # the teacher pushes again without changing anything: nothing is delivered
    again = by_user(wait_push(tia, push(tia, code=code)["id"], code=code))
    for user in ("eve5", "fay5"):
        report = again[user]["report"]
        assert sorted(report["skipped"]) == [LESSON, "notes.md"], report
        assert report["added"] == report["updated"] == report["conflicts"] == []
    assert listdir(stack, "eve5", folder, code=code) == sorted([LESSON, "notes.md"])
    assert stack.read_home("eve5", code, f"{folder}/{LESSON}") == RAN
    assert listdir(stack, "fay5", folder, code=code) == [LESSON]  # not brought back

    # the teacher changes the notebook: eve's run copy stays, the new one lands beside it
    # under a name without spaces or quotes; fay (untouched) gets it in place
    upload(tia, f"class/{code}", LESSON, b'{"cells": [], "v": 2}')
    changed = by_user(wait_push(tia, push(tia, code=code)["id"], code=code))
    eve = changed["eve5"]["report"]
    assert [c["path"] for c in eve["conflicts"]] == [LESSON]
    saved_as = eve["conflicts"][0]["saved_as"]
    assert re.fullmatch(r"lesson1\.teacher-\d{4}-\d{2}-\d{2}\.ipynb", saved_as), saved_as
    assert eve["skipped"] == ["notes.md"]
    assert stack.read_home("eve5", code, f"{folder}/{LESSON}") == RAN
    assert stack.read_home("eve5", code, f"{folder}/{saved_as}") == b'{"cells": [], "v": 2}'
    assert changed["fay5"]["report"]["updated"] == [LESSON]
    assert listdir(stack, "fay5", folder, code=code) == [LESSON]

    # and pushing that again delivers nothing: no second copy
    last = by_user(wait_push(tia, push(tia, code=code)["id"], code=code))
    assert sorted(last["eve5"]["report"]["skipped"]) == [LESSON, "notes.md"]
    assert listdir(stack, "eve5", folder, code=code) == sorted([LESSON, "notes.md", saved_as])
