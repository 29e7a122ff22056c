"""Autograding through the real deployment: the hub, Traefik, PostgreSQL, SeaweedFS, a
real student container and real sealed grading containers. A teacher attaches tests
(bad input refused with 4xx, outsiders refused), the student submits, the version is
graded by the service's own workers and the student sees the visible tests' results only
(never a hidden one, never a test's code); the teacher sees every test; the teacher's
points for a question override the tests'; "Grade all" counts versions and grades none
twice."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest
import requests

from harness.classes import Person, assert_error
from harness.files import files_stack
from harness.stack import wait_for
from tests.integration.test_autograde_queue import SOURCE, student
from tests.integration.test_grades_loop import iso

pytestmark = pytest.mark.integration

GRADES = "/services/grades/"
CODE = "auto7"
OTHER = "else7"
OTHER_IMAGE = "classhub/datascience:latest"
A = f"api/classes/{CODE}/assignments"
ENV = {
    "CLASSHUB_AUTOGRADE_CONCURRENCY": "1",
    "CLASSHUB_AUTOGRADE_MEM_LIMIT": "256M",
    "CLASSHUB_AUTOGRADE_TIMEOUT": "150",
    "CLASSHUB_AUTOGRADE_CELL_TIMEOUT": "30",
    "CLASSHUB_AUTOGRADE_POLL": "1",
    # a second image a class may run (and be graded in); never started by these tests
    "CLASSHUB_ALLOWED_IMAGES": f"classhub/singleuser:latest,{OTHER_IMAGE}",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    for stack in files_stack(tmp_path_factory.mktemp("autograde-api"), env=ENV):
        health = stack.url + GRADES + "health"
        wait_for(lambda h=health: requests.get(h, timeout=5).ok, 60, what="grades")
        yield stack


@pytest.fixture(scope="module")
def people(stack):
    stack.enroll("tia7", CODE, teacher=True)
    stack.enroll("sam7", CODE)
    stack.enroll("sue7", CODE)
    stack.enroll("otto7", OTHER, teacher=True)
    return {
        name: Person(stack, name, role, service=GRADES)
        for name, role in (("tia7", "teacher"), ("sam7", "student"), ("sue7", "student"),
                           ("otto7", "teacher"))
    }  # fmt: skip


def put(person, path, body):
    return person.call("PUT", path, json=body)


def graded(person, submission_id, timeout=240):
    """The version's autograde answer once its job is done (or failed)."""
    deadline = time.monotonic() + timeout
    while True:
        r = person.get(f"api/submissions/{submission_id}/autograde")
        assert r.status_code == 200, r.text
        if r.json()["state"] in ("done", "failed"):
            return r.json()
        assert time.monotonic() < deadline, r.json()
        time.sleep(1)


def test_submit_is_graded_and_the_student_sees_the_visible_tests_only(stack, people):
    tia, sam, sue, otto = (people[n] for n in ("tia7", "sam7", "sue7", "otto7"))
    r = tia.post(A, json={"slug": "sq", "title": "Squares", "max_points": 5,
                          "release_at": iso(-3600), "due_at": iso(3600)})  # fmt: skip
    assert r.status_code == 201, r.text
    r = put(tia, f"{A}/sq/questions", {"questions": [
        {"label": "Square", "points": 2}, {"label": "Negatives", "points": 3}]})  # fmt: skip
    assert r.status_code == 200, r.text
    path = f"{A}/sq/autograde"
    good = {"notebook_path": "square.ipynb", "source": SOURCE, "on_submit": True}
    # bad input: 400 with a sentence; who may not: 403 (a student), 404 (outsiders)
    for body, text in (
        ({"notebook_path": "square.ipynb"}, "Send the source notebook"),
        ({**good, "notebook_path": "../x.ipynb"}, "inside the assignment's folder"),
        ({**good, "notebook_path": "square.py"}, "ending in .ipynb"),
        ({**good, "image": "evil/image:latest"}, "not an image classhub grades in"),
        ({**good, "source": {"cells": []}}, "no test cells"),
        ({**good, "source": "notebook"}, "JSON object"),
        ({**good, "on_submit": "yes"}, "true or false"),
        ({**good, "extra": 1}, "extra"),
    ):
        assert_error(put(tia, path, body), 400, text)
    assert_error(put(sam, path, good), 403)
    assert_error(put(otto, path, good), 404)
    assert_error(otto.get(path), 404)
    assert_error(sam.post(f"{path}/run", json={}), 403)
    r = put(tia, path, good)
    assert r.status_code == 200, r.text
    config = r.json()["config"]
    assert config["on_submit"] is True and config["show_hidden"] is False
    assert [t["id"] for t in config["tests"]] == ["visible", "hidden"]
    assert "square(-2)" not in r.text  # a test's code never leaves the service

    stack.spawn("sam7", CODE)
    stack.write_home("sam7", CODE, f"{CODE}/assignments/sq/square.ipynb", student())
    r = sam.post(f"{A}/sq/submit")
    assert r.status_code == 201, r.text
    sid = r.json()["id"]

    mine = graded(sam, sid)
    assert mine["state"] == "done" and mine["reason"] is None
    tests = mine["result"]["tests"]
    assert [(t["id"], t["status"], t["score"]) for t in tests] == [("visible", "pass", 2.0)]
    assert "flags" not in tests[0] and "flags" not in mine["result"]
    assert "hidden" not in json.dumps(mine) and "square(-2)" not in json.dumps(mine)
    # the teacher sees both, the hidden one failed (abs(x) * x)
    full = tia.get(f"api/submissions/{sid}/autograde").json()
    assert [(t["id"], t["status"]) for t in full["result"]["tests"]] == [
        ("visible", "pass"),
        ("hidden", "fail"),
    ]
    assert full["result"]["hidden"] == 1
    # another student and an outsider learn nothing of it
    assert_error(sue.get(f"api/submissions/{sid}/autograde"), 404)
    assert_error(otto.get(f"api/submissions/{sid}/autograde"), 404)

    # the gradebook's points: the questions' auto points, the grade their sum
    view = tia.get(f"api/submissions/{sid}").json()
    assert view["grade"]["points"] == 2.0 and view["grade"]["graded_by"] == "autograde"
    assert view["grade"]["questions"] == {
        "q1": {"points": 2.0, "source": "auto"},
        "q2": {"points": 0.0, "source": "auto"},
    }
    assert sam.get(f"api/submissions/{sid}").json()["grade"] is None  # not returned yet
    # the teacher's points win over the tests'
    r = put(tia, f"api/submissions/{sid}/grade",
            {"questions": {"q2": 1.5}, "expected_revision": view["grade"]["revision"]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["grade"]["points"] == 3.5
    # "Grade all": the counting version is graded already with these tests: nothing queued
    r = tia.post(f"{path}/run", json={})
    assert r.status_code == 200, r.text
    assert (r.json()["queued"], r.json()["versions"]) == (0, 1)
    assert r.json()["progress"] == {"queued": 0, "running": 0, "done": 1, "failed": 0, "total": 1}
    gb = tia.get(f"api/classes/{CODE}/gradebook").json()
    assert "3.5" in json.dumps(gb)
    # the exported gradebook: a column per test, the counting version's scores
    r = tia.get(f"api/classes/{CODE}/gradebook.csv")
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header, sam_row = rows[0], next(row for row in rows if row[0] == "sam7")
    at = header.index("Squares: test visible (2)")
    assert header[at + 1] == "Squares: test hidden (3)"
    assert sam_row[at : at + 2] == ["2", "0"], (header, sam_row)
    # the teacher opts in: the student now sees the hidden test's result too
    assert put(tia, path, {"notebook_path": "square.ipynb", "show_hidden": True}).ok
    shown = sam.get(f"api/submissions/{sid}/autograde").json()
    assert [t["id"] for t in shown["result"]["tests"]] == ["visible", "hidden"]

    # sue deletes the visible test cell and ends her answer cell with sys.exit(0): the
    # teacher sees the deleted cell flagged, and both see which cell stopped and why
    cells = [dict(c) for c in SOURCE["cells"]]
    cells[1] = {**cells[1], "source": "import sys\nsys.exit(0)"}
    del cells[2]
    stack.spawn("sue7", CODE)
    stack.write_home(
        "sue7",
        CODE,
        f"{CODE}/assignments/sq/square.ipynb",
        json.dumps({**SOURCE, "cells": cells}).encode(),
    )
    r = sue.post(f"{A}/sq/submit")
    assert r.status_code == 201, r.text
    hers = graded(sue, r.json()["id"])
    stopped = [{"label": "cell 2 (answer)", "status": "error", "error": "SystemExit: 0"}]
    assert hers["result"]["cells"] == stopped, hers
    assert hers["result"]["score"] == 0
    assert "cell_flags" not in hers["result"]  # the teacher's, not the student's
    full = tia.get(f"api/submissions/{r.json()['id']}/autograde").json()["result"]
    assert full["cells"] == stopped
    assert [(f["grade_id"], f["kind"]) for f in full["cell_flags"]] == [("visible", "deleted")]
    assert all(t["status"] != "pass" for t in full["tests"]), full["tests"]


def test_an_assignment_is_graded_in_its_class_image_unless_the_teacher_chooses(stack, people):
    stack.enroll("tia7", "ds7", teacher=True, image=OTHER_IMAGE)
    tia = people["tia7"]
    a = "api/classes/ds7/assignments"
    r = tia.post(a, json={"slug": "sq", "title": "Squares", "max_points": 5})
    assert r.status_code == 201, r.text
    path = f"{a}/sq/autograde"
    r = tia.get(path)
    assert r.status_code == 200, r.text
    assert r.json()["default_image"] == OTHER_IMAGE, r.json()["images"]
    assert r.json()["config"] is None
    # no image chosen: the class's
    r = put(tia, path, {"notebook_path": "square.ipynb", "source": SOURCE})
    assert r.status_code == 200, r.text
    assert r.json()["config"]["image"] == OTHER_IMAGE
    # the teacher's choice wins, and stays when the set-up changes without one
    r = put(tia, path, {"notebook_path": "square.ipynb", "image": "classhub/singleuser:latest"})
    assert r.json()["config"]["image"] == "classhub/singleuser:latest"
    r = put(tia, path, {"notebook_path": "square.ipynb", "on_submit": True})
    assert r.json()["config"]["image"] == "classhub/singleuser:latest"
    # a class whose image classhub does not grade in: the service's default
    stack.enroll("tia7", "odd7", teacher=True, image="someone/else:1")
    r = tia.post("api/classes/odd7/assignments", json={"slug": "x", "title": "X", "max_points": 1})
    assert r.status_code == 201, r.text
    r = tia.get("api/classes/odd7/assignments/x/autograde")
    assert r.json()["default_image"] == "classhub/singleuser:latest"


def browser_as(stack, chromium, name, role):
    from harness.browser import signed_in_page

    page = signed_in_page(chromium, stack, name, role, GRADES, timeout=30_000)
    page.goto(f"{stack.url}{GRADES}classes/{CODE}")
    return page


def test_the_pages_show_progress_results_and_take_a_pytest_file(stack, people, chromium):
    """After the test above (the last of the module: browsers end the API sessions): the
    teacher's box (progress, a pytest file, Grade all), the review page beside the
    notebook, and the student's card."""
    from playwright.sync_api import expect

    # sam hands in a second version with grading on Submit switched off, and the teacher
    # lets the first one count: sam's card shows the counting version's tests (below)
    tia, sam_api = people["tia7"], people["sam7"]
    assert put(tia, f"{A}/sq/autograde", {"notebook_path": "square.ipynb", "on_submit": False}).ok
    stack.write_home("sam7", CODE, f"{CODE}/assignments/sq/square.ipynb", student("return x**2"))
    r = sam_api.post(f"{A}/sq/submit")
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2
    versions = tia.get(f"{A}/sq/students/sam7/submissions").json()["submissions"]
    first = next(v for v in versions if v["version"] == 1)
    r = tia.call(
        "PUT", f"{A}/sq/students/sam7/counts", json={"submission_id": first["id"], "reason": "v1"}
    )
    assert r.status_code == 200, r.text

    tom = browser_as(stack, chromium, "tia7", "teacher")  # ends tia7's API session: last
    try:
        tom.click("#assignments tr[data-slug=sq] [data-action=edit]")
    except Exception:
        print(tom.url, tom.inner_text("body")[:3000], tom.problems)
        raise
    expect(tom.locator("#autograde-box")).to_be_visible()
    expect(tom.locator("#autograde-progress")).to_contain_text("2 done")
    expect(tom.locator("#autograde-tests")).to_contain_text("hidden (3, hidden)")
    assert tom.input_value("#autograde-path") == "square.ipynb"
    extra = b"def test_zero():\n    assert square(0) == 0\n"
    tom.set_input_files(
        "#autograde-files",
        files=[{"name": "test_extra.py", "mimeType": "text/x-python", "buffer": extra}],
    )
    tom.fill("#autograde-files-points", "1")
    tom.click("#autograde-save")
    expect(tom.locator("#autograde-tests")).to_contain_text("test_extra.py::test_zero")
    tom.click("#autograde-run")  # new tests: the counting version is graded again
    expect(tom.locator("#action-alert")).to_contain_text("2 of 2 counting versions queued")
    expect(tom.locator("#autograde-progress")).to_contain_text("2 done", timeout=240_000)
    # the review page: the tests beside the notebook, the hidden one too
    tom.goto(f"{stack.url}{GRADES}classes/{CODE}/assignments/sq/review")
    expect(tom.locator("#autograde-result")).to_be_visible()
    expect(tom.locator("#autograde-result-tests")).to_contain_text("✗ hidden")
    expect(tom.locator("#autograde-result-tests")).to_contain_text("✓ test_extra.py::test_zero")
    expect(tom.locator("#autograde-result-cells")).to_be_hidden()  # sam's cells all ran
    # the next student, sue: the cell that stopped and the deleted test cell
    tom.keyboard.press("j")
    expect(tom.locator("#autograde-result-cells")).to_contain_text(
        "cell 2 (answer) stopped: SystemExit: 0"
    )
    expect(tom.locator("#autograde-result-flags")).to_contain_text("visible: The test cell")
    assert not tom.problems, tom.problems

    sam = browser_as(stack, chromium, "sam7", "student")
    box = sam.locator("#assignments article[data-slug=sq] [data-field=autograde-box]")
    expect(box).to_be_visible()
    expect(box).to_contain_text("✓ visible")
    # version 2, the newest, was not graded: the box shows version 1, which counts
    expect(box.locator("[data-field=autograde-version]")).to_have_text("1")
    expect(box).to_contain_text("test_zero")  # shown to students (the default visibility)
    assert not sam.problems, sam.problems
