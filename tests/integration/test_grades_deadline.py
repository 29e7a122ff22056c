"""Deadlines a teacher can trust, against the real hub, Traefik, PostgreSQL,
SeaweedFS, real student containers and the homes helper containers:

* the deadline is a snapshot: at the deadline the grades service takes every student's
  folder by itself, from a running and a stopped server alike (no Submit pressed), and a
  student without a home is recorded as missing with the reason;
* the scenario deadline snapshots exist for: handed in on time, graded 9.5 and returned; after the
  deadline the teacher presses Collect now while the student re-ran a cell and saved: a
  late version is recorded, but the grade 9.5 and the counting version stay, and the
  gradebook and the student's page still show 9.5;
* an extension granted after the deadline re-times the versions already taken;
* the teacher chooses the version that counts, waives and overrides the penalty (in the
  audit log);
* the student's and the teacher's answers agree, case by case;
* questions from a notebook, graded per question, summed, in the gradebook and its CSV;
* words and details: "not handed in yet" before a deadline, Submit says what was taken,
  students download their own versions.
"""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime

import pytest
import requests

from harness.classes import Person, assert_error
from harness.files import files_stack
from harness.stack import wait_for

pytestmark = pytest.mark.integration

GRADES = "/services/grades/"
CODE = "dl13"
A = f"api/classes/{CODE}/assignments"
#: seconds from the teacher moving the due date forward (once the on-time work is in) to it
LEAD = 4


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    env = {"CLASSHUB_GRADES_DEADLINE_INTERVAL": "1", "CLASSHUB_GRADES_DEADLINE_RETRY": "3"}
    for stack in files_stack(tmp_path_factory.mktemp("grades-deadline"), env=env):
        health = stack.url + GRADES + "health"
        wait_for(lambda h=health: requests.get(h, timeout=5).ok, 60, what="grades")
        yield stack


def iso(seconds_from_now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + seconds_from_now))


def notebook(*sources: str) -> bytes:
    cells = [
        {"cell_type": "code", "source": s, "metadata": {}, "outputs": [], "execution_count": 1}
        for s in sources
    ]
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}).encode()


def student_standing(person, slug):
    r = person.get(A)
    assert r.status_code == 200, r.text
    (found,) = [a for a in r.json()["assignments"] if a["slug"] == slug]
    return found


def teacher_row(teacher, slug, user):
    r = teacher.get(f"{A}/{slug}/submissions")
    assert r.status_code == 200, r.text
    (row,) = [x for x in r.json()["students"] if x["user"] == user]
    return row


def grade(teacher, submission_id, points, feedback="", revision=0, **extra):
    r = teacher.call(
        "PUT",
        f"api/submissions/{submission_id}/grade",
        json={"points": points, "feedback": feedback, "expected_revision": revision, **extra},
    )
    assert r.status_code == 200, r.text
    return r.json()


def audit(stack, action):
    return stack.psql(
        "SELECT row_to_json(x) FROM (SELECT actor, username, old, new FROM"
        " classhub_grades.audit_log WHERE action = %s ORDER BY id) x",
        action,
    )


@pytest.fixture(scope="module")
def hw(stack):
    """Assignment ``hw`` (late penalty 20 %), due in an hour when it is made, moved by the
    teacher to LEAD seconds ahead once the on-time work is in, and its deadline passed with
    every snapshot taken: ann handed in on time (graded 9.5 and returned), fay too (graded 8,
    returned); bob worked in his running server and never pressed Submit; cat worked and
    stopped her server; eve worked in her running server; dan never started the class (no
    home)."""
    stack.enroll("tdl", CODE, teacher=True)
    names = ("ann", "bob", "cat", "dan", "eve", "fay")
    for name in names:
        stack.enroll(name, CODE)
    people = {n: Person(stack, n, service=GRADES) for n in names}
    people["tdl"] = Person(stack, "tdl", "teacher", service=GRADES)
    for name in ("ann", "bob", "cat", "eve", "fay"):
        stack.spawn(name, CODE)
    for name in ("bob", "cat", "eve"):
        stack.write_home(
            name, CODE, f"{CODE}/assignments/hw/work.ipynb", notebook(f"# {name}'s work")
        )
    stack.stop("cat", CODE)

    tdl = people["tdl"]
    r = tdl.post(
        A,
        json={
            "slug": "hw",
            "title": "Homework",
            "max_points": 10,
            "release_at": iso(-3600),
            "due_at": iso(3600),
            "late_policy": "accept",
            "late_penalty_percent": 20,
        },
    )
    assert r.status_code == 201, r.text

    # before the deadline: nothing handed in is "not handed in yet", never "missing"
    row = teacher_row(tdl, "hw", "bob")
    assert row["status"] == "not_handed_in_yet" and row["standing"]["state"] == "not_handed_in_yet"
    assert student_standing(people["bob"], "hw")["standing"]["state"] == "not_handed_in_yet"

    handed_in = {}
    for name, points in (("ann", 9.5), ("fay", 8)):
        stack.write_home(
            name, CODE, f"{CODE}/assignments/hw/work.ipynb", notebook("x = 1", "print(x)")
        )
        r = people[name].post(f"{A}/hw/submit")
        assert r.status_code == 201, r.text
        handed_in[name] = r.json()
        grade(tdl, r.json()["id"], points, "Well done.")
        assert tdl.post(f"api/submissions/{r.json()['id']}/return").status_code == 200
    assert stack.server_model("dan", CODE) is None

    # the teacher brings the deadline forward; it passes; the service takes every snapshot
    # by itself
    revision = tdl.get(f"{A}/hw").json()["revision"]
    r = tdl.call("PATCH", f"{A}/hw", json={"due_at": iso(LEAD), "revision": revision})
    assert r.status_code == 200, r.text
    due = r.json()["due_at"]
    deadline = time.time() + LEAD

    def all_taken():
        states = {}
        for name in names:
            snap = teacher_row(tdl, "hw", name)["standing"]["deadline_snapshot"]
            states[name] = snap and snap["state"]
        return states if "pending" not in states.values() and None not in states.values() else None

    wait_for(lambda: time.time() > deadline, LEAD + 5, interval=0.5, what="the deadline")
    states = wait_for(all_taken, 120, interval=1, what="every deadline snapshot")
    return {"people": people, "due": due, "handed_in": handed_in, "states": states}


def test_the_deadline_takes_running_and_stopped_servers_and_records_who_has_nothing(stack, hw):
    tdl = hw["people"]["tdl"]
    assert hw["states"] == {
        "ann": "unchanged",  # her on-time version already holds the folder
        "fay": "unchanged",
        "bob": "taken",  # running, never pressed Submit
        "cat": "taken",  # stopped
        "eve": "taken",
        "dan": "missing",  # never started the class
    }
    for name in ("bob", "cat"):
        row = teacher_row(tdl, "hw", name)
        (version,) = [row["counting"]]
        assert row["status"] == "on_time" and row["versions"] == 1
        assert (version["kind"], version["deadline_for"], version["on_time"]) == (
            "deadline",
            hw["due"],
            True,
        )
        assert version["files"] == 1 and version["collected_by"] is None
        snap = row["standing"]["deadline_snapshot"]
        assert snap["submission_id"] == version["id"]
        # as times, not text: "...:02.926327Z" sorts before "...:02Z" as a string
        assert datetime.fromisoformat(snap["taken_at"]) >= datetime.fromisoformat(hw["due"])
    assert stack.server_model("cat", CODE) is None  # never started for it
    dan = teacher_row(tdl, "hw", "dan")
    assert dan["status"] == "missing" and "no home folder" in dan["standing"]["missing_reason"]
    # the student sees the same reason, and "missing" only now that the deadline passed
    mine = student_standing(hw["people"]["dan"], "hw")["standing"]
    assert mine["state"] == "missing" and "no home folder" in mine["missing_reason"]
    # ann's Submit stays her version 1: nothing new was recorded for her
    ann = teacher_row(tdl, "hw", "ann")
    assert ann["versions"] == 1 and ann["counting"]["id"] == hw["handed_in"]["ann"]["id"]
    # each snapshot is in the audit log, by the service, with how late it was taken
    taken = [e for e in audit(stack, "deadline.snapshot") if e["username"] in ("bob", "cat")]
    assert len(taken) == 2 and all(e["actor"] == "grades-service" for e in taken)
    # the issue's promise: within 60 s of the deadline (seconds here, not minutes)
    assert all(0 <= e["new"]["seconds_after_deadline"] <= 60 for e in taken), taken


def test_the_issue_scenario_a_late_collect_keeps_the_grade_and_the_counting_version(stack, hw):
    people, tdl = hw["people"], hw["people"]["tdl"]
    ann = people["ann"]
    first = hw["handed_in"]["ann"]
    # after the deadline ann re-runs a cell and saves; the teacher presses Collect now
    stack.write_home(
        "ann", CODE, f"{CODE}/assignments/hw/work.ipynb", notebook("x = 2", "print(x)")
    )
    r = tdl.post(f"{A}/hw/collect", timeout=300)
    assert r.status_code == 200, r.text
    results = {x["user"]: x for x in r.json()["students"]}
    assert results["ann"]["status"] == "collected" and results["ann"]["duplicate"] is False
    assert (results["ann"]["version"], results["ann"]["late"], results["ann"]["counts"]) == (
        2,
        True,
        False,
    )
    assert results["ann"]["counting_version"] == 1
    # the others did not change their folders: nothing new after the deadline
    for name in ("bob", "cat", "eve", "fay"):
        assert results[name]["duplicate"] is True, results[name]
    assert results["dan"]["status"] == "failed"
    # the grade and the counting version stay, on every page
    row = teacher_row(tdl, "hw", "ann")
    assert (row["versions"], row["status"], row["counting"]["id"]) == (2, "on_time", first["id"])
    assert row["latest"]["version"] == 2 and row["latest"]["late"] is True
    assert row["latest"]["grade"] is None  # the grade stays with version 1
    assert (row["standing"]["final_points"], row["standing"]["state"]) == (9.5, "graded")
    book = tdl.get(f"api/classes/{CODE}/gradebook").json()
    slugs = [a["slug"] for a in book["assignments"]]
    (cells,) = [s["cells"] for s in book["students"] if s["user"] == "ann"]
    assert cells[slugs.index("hw")] == {"state": "graded", "points": 9.5, "late": False}
    mine = student_standing(ann, "hw")
    assert (
        mine["standing"]["final_points"] == 9.5 and mine["standing"]["counting_id"] == first["id"]
    )
    assert [v["counts"] for v in mine["submissions"]] == [False, True]
    # pressed again: still nothing new
    again = {x["user"]: x for x in tdl.post(f"{A}/hw/collect", timeout=300).json()["students"]}
    assert again["ann"]["duplicate"] is True and again["ann"]["version"] == 2


def test_an_extension_granted_after_the_deadline_re_times_the_versions(stack, hw):
    people, tdl = hw["people"], hw["people"]["tdl"]
    eve = people["eve"]
    stack.write_home("eve", CODE, f"{CODE}/assignments/hw/work.ipynb", notebook("# eve, later"))
    r = eve.post(f"{A}/hw/submit")
    assert r.status_code == 201 and r.json()["late"] is True, r.text
    late = r.json()
    assert late["counts"] is False  # her deadline snapshot counts
    r = tdl.call(
        "PUT", f"{A}/hw/extensions/eve", json={"due_at": iso(20), "reason": "ill last week"}
    )
    assert r.status_code == 200, r.text
    row = teacher_row(tdl, "hw", "eve")
    assert (row["counting"]["id"], row["counting"]["late"], row["status"]) == (
        late["id"],
        False,
        "on_time",
    )
    assert all(
        v["on_time"] for v in tdl.get(f"{A}/hw/students/eve/submissions").json()["submissions"]
    )
    mine = student_standing(eve, "hw")
    assert mine["extended"] is True and mine["standing"]["counting_id"] == late["id"]
    assert mine["standing"]["deadline_passed"] is False
    # her deadline snapshot is taken again at her new deadline: the folder is what she
    # handed in, so nothing new
    assert row["standing"]["deadline_snapshot"]["state"] == "pending"

    def retaken():
        snap = teacher_row(tdl, "hw", "eve")["standing"]["deadline_snapshot"]
        return snap if snap["state"] != "pending" else None

    snap = wait_for(retaken, 120, interval=1, what="eve's snapshot at her new deadline")
    assert (snap["state"], snap["submission_id"]) == ("unchanged", late["id"])


def test_the_teacher_chooses_the_version_and_waives_or_overrides_the_penalty(stack, hw):
    people, tdl = hw["people"], hw["people"]["tdl"]
    fay = people["fay"]
    stack.write_home("fay", CODE, f"{CODE}/assignments/hw/work.ipynb", notebook("# fay, better"))
    r = fay.post(f"{A}/hw/submit")
    assert r.status_code == 201 and r.json()["late"] is True, r.text
    better = r.json()
    grade(tdl, better["id"], 10, "Much better.")
    base = f"{A}/hw/students/fay"
    # choose it: it counts, late, with the assignment's 20 %
    assert_error(
        tdl.call("PUT", f"{base}/counts", json={"submission_id": hw["handed_in"]["ann"]["id"]}), 404
    )
    assert_error(fay.call("PUT", f"{base}/counts", json={"submission_id": better["id"]}), 403)
    r = tdl.call("PUT", f"{base}/counts", json={"submission_id": better["id"], "reason": "asked"})
    assert r.status_code == 200, r.text
    standing = r.json()["standing"]
    assert (
        standing["counting_id"],
        standing["why"],
        standing["late"],
        standing["final_points"],
    ) == (
        better["id"],
        "chosen",
        True,
        8.0,
    )
    # waive the penalty (a reason is required), then override it
    assert_error(tdl.call("PUT", f"{base}/penalty", json={"penalty_percent": 0}), 400)
    assert_error(
        tdl.call("PUT", f"{base}/penalty", json={"penalty_percent": 101, "reason": "x"}), 400
    )
    r = tdl.call("PUT", f"{base}/penalty", json={"penalty_percent": 0, "reason": "doctor's note"})
    assert r.status_code == 200 and r.json()["standing"]["final_points"] == 10, r.text
    assert r.json()["standing"]["penalty_source"] == "waived"
    r = tdl.call("PUT", f"{base}/penalty", json={"penalty_percent": 5, "reason": "one day"})
    assert (
        r.json()["standing"]["final_points"] == 9.5
        and r.json()["standing"]["penalty_source"] == "override"
    )
    assert [
        (e["actor"], e["new"]["penalty_percent"], e["new"]["reason"])
        for e in audit(stack, "penalty.waive")
    ] == [("tdl", "0.00", "doctor's note")]
    assert [(e["username"], e["new"]["reason"]) for e in audit(stack, "penalty.override")] == [
        ("fay", "one day")
    ]
    assert [e["new"]["reason"] for e in audit(stack, "version.choose")] == ["asked"]
    # returned: fay sees 9.5 for the version that counts; the gradebook says the same
    assert tdl.post(f"api/submissions/{better['id']}/return").status_code == 200
    mine = student_standing(fay, "hw")["standing"]
    assert (mine["counting_id"], mine["final_points"], mine["penalty_source"]) == (
        better["id"],
        9.5,
        "override",
    )
    # back to the default rule: her on-time version counts again (graded 8)
    r = tdl.call("PUT", f"{base}/counts", json={"submission_id": None})
    assert r.json()["standing"]["counting_id"] == hw["handed_in"]["fay"]["id"]
    assert r.json()["standing"]["final_points"] == 8


def test_the_student_and_the_teacher_see_the_same(stack, hw):
    """One computation: for every case (on time and graded, late version collected,
    extension, chosen version, deadline snapshot ungraded, missing), the student's page,
    the teacher's list, one student's versions and the gradebook agree."""
    people, tdl = hw["people"], hw["people"]["tdl"]
    # one more case: bob's deadline version graded, not returned (he sees it ungraded)
    bob_version = teacher_row(tdl, "hw", "bob")["counting"]
    grade(tdl, bob_version["id"], 7)
    book = tdl.get(f"api/classes/{CODE}/gradebook").json()
    column = [a["slug"] for a in book["assignments"]].index("hw")
    cells = {s["user"]: s["cells"][column] for s in book["students"]}
    for name in ("ann", "bob", "cat", "dan", "eve", "fay"):
        theirs = student_standing(people[name], "hw")
        mine = theirs["standing"]
        teacher = teacher_row(tdl, "hw", name)["standing"]
        one = tdl.get(f"{A}/hw/students/{name}/submissions").json()
        own = people[name].get(f"{A}/hw/students/{name}/submissions").json()
        assert one["standing"] == teacher, name
        for key in (
            "counting_id",
            "counting_version",
            "late",
            "penalty_percent",
            "due_at",
            "deadline_passed",
            "why",
            "missing_reason",
        ):
            assert mine[key] == teacher[key] == own["standing"][key], (name, key)
        assert [v["id"] for v in theirs["submissions"]] == [v["id"] for v in one["submissions"]]
        assert [(v["on_time"], v["counts"]) for v in theirs["submissions"]] == [
            (v["on_time"], v["counts"]) for v in one["submissions"]
        ]
        cell = cells[name]
        assert cell["late"] == teacher["late"], name
        if teacher["returned"]:
            assert mine["final_points"] == teacher["final_points"] == cell["points"], name
            assert mine["state"] == teacher["state"] == cell["state"] == "graded", name
        elif teacher["state"] == "graded":  # graded, not returned: the student waits
            assert (mine["state"], mine["final_points"]) == ("handed_in", None), name
            assert cell["points"] == teacher["final_points"], name
        else:
            assert mine["state"] == teacher["state"], name
            expected = {"handed_in": "submitted", "missing": "missing"}[teacher["state"]]
            assert cell["state"] == expected, name
    assert cells["dan"]["state"] == "missing" and "no home folder" in cells["dan"]["reason"]


def test_questions_sum_to_the_grade_and_appear_in_the_gradebook_and_csv(stack, hw):
    tdl, ann = hw["people"]["tdl"], hw["people"]["ann"]
    r = tdl.post(A, json={"slug": "lab", "title": "Lab", "max_points": 1})
    assert r.status_code == 201, r.text
    # the starting notebook's cells tagged "question", as the page sends them (no outputs)
    starting = {
        "cells": [
            {"cell_type": "markdown", "source": "# Lab", "metadata": {}},
            {
                "cell_type": "markdown",
                "source": "## The mean (4 points)",
                "metadata": {"tags": ["question"]},
            },
            {
                "cell_type": "code",
                "source": "# plot it",
                "metadata": {"tags": ["question"], "points": 6},
            },
        ]
    }
    r = tdl.post(f"{A}/lab/questions/import", json={"notebook": starting, "by": "tag"})
    assert r.status_code == 200, r.text
    proposed = r.json()["questions"]
    assert [(q["label"], q["points"]) for q in proposed] == [("The mean", 4), ("plot it", 6)]
    assert tdl.get(f"{A}/lab/questions").json()["questions"] == []  # nothing stored yet
    assert_error(ann.post(f"{A}/lab/questions/import", json={"notebook": starting}), 403)
    assert_error(tdl.post(f"{A}/lab/questions/import", json={"notebook": [1]}), 400)
    proposed[1]["label"] = "The plot"
    r = tdl.call("PUT", f"{A}/lab/questions", json={"questions": proposed})
    assert r.status_code == 200, r.text
    assert r.json()["assignment"]["max_points"] == 10
    assert [q["key"] for q in r.json()["questions"]] == ["q1", "q2"]

    stack.write_home("ann", CODE, f"{CODE}/assignments/lab/lab.ipynb", notebook("mean = 2"))
    r = ann.post(f"{A}/lab/submit")
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    assert_error(
        tdl.call(
            "PUT",
            f"api/submissions/{sid}/grade",
            json={"questions": {"q1": 3}, "expected_revision": 0},
        ),
        400,
    )  # q2 has no points yet
    assert_error(
        tdl.call(
            "PUT",
            f"api/submissions/{sid}/grade",
            json={"questions": {"q1": 5, "q2": 1}, "expected_revision": 0},
        ),
        400,
    )  # q1 is worth 4
    graded = tdl.call(
        "PUT",
        f"api/submissions/{sid}/grade",
        json={"questions": {"q1": 3.5, "q2": 5}, "feedback": "ok", "expected_revision": 0},
    )
    assert graded.status_code == 200, graded.text
    assert graded.json()["grade"]["points"] == 8.5
    assert graded.json()["grade"]["questions"] == {
        "q1": {"points": 3.5, "source": "manual"},
        "q2": {"points": 5, "source": "manual"},
    }
    book = tdl.get(f"api/classes/{CODE}/gradebook").json()
    (lab,) = [a for a in book["assignments"] if a["slug"] == "lab"]
    assert [(q["label"], q["points"]) for q in lab["questions"]] == [
        ("The mean", 4),
        ("The plot", 6),
    ]
    column = book["assignments"].index(lab)
    (cell,) = [s["cells"][column] for s in book["students"] if s["user"] == "ann"]
    assert (cell["points"], cell["questions"]) == (8.5, [3.5, 5])
    r = tdl.get(f"api/classes/{CODE}/gradebook.csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header = rows[0]
    at = header.index("Lab (10)")
    assert header[at + 1 : at + 3] == ["Lab: The mean (4)", "Lab: The plot (6)"]
    (ann_row,) = [x for x in rows if x[0] == "ann"]
    assert ann_row[at : at + 3] == ["8.5", "3.5", "5"]
    # the student sees the points per question once returned
    assert tdl.post(f"api/submissions/{sid}/return").status_code == 200
    mine = student_standing(ann, "lab")
    assert mine["standing"]["final_points"] == 8.5
    assert [q["label"] for q in mine["questions"]] == ["The mean", "The plot"]
    assert mine["submissions"][0]["grade"]["questions"]["q2"]["points"] == 5


def test_submit_says_what_was_taken_and_students_download_their_own_versions(stack, hw):
    people, tdl = hw["people"], hw["people"]["tdl"]
    r = tdl.post(A, json={"slug": "later", "title": "Later", "max_points": 5, "due_at": iso(3600)})
    assert r.status_code == 201, r.text
    bob, ann = people["bob"], people["ann"]
    assert student_standing(bob, "later")["standing"]["state"] == "not_handed_in_yet"
    assert teacher_row(tdl, "later", "bob")["status"] == "not_handed_in_yet"
    stack.write_home("bob", CODE, f"{CODE}/assignments/later/a.txt", b"one")
    stack.write_home(
        "bob", CODE, f"{CODE}/assignments/later/.ipynb_checkpoints/a-checkpoint.txt", b"x"
    )
    r = bob.post(f"{A}/later/submit")
    assert r.status_code == 201, r.text
    taken = r.json()["taken"]
    assert (taken["files"], taken["bytes"] > 0, taken["skipped_total"]) == (1, True, 1)
    assert taken["skipped"] == [{"path": ".ipynb_checkpoints/", "reason": "excluded"}]
    assert r.json()["on_time"] is True and r.json()["counts"] is True
    # every version of his own can be downloaded by him, no one else's
    for version in student_standing(bob, "hw")["submissions"]:
        link = bob.get(f"api/submissions/{version['id']}/download")
        assert link.status_code == 200, link.text
        assert requests.get(link.json()["url"], timeout=30).status_code == 200
    assert_error(ann.get(f"api/submissions/{r.json()['id']}/download"), 404)


def test_the_pages_show_the_version_that_counts_the_choices_and_the_questions(stack, hw, tmp_path):
    """In Chromium: the student's card says which version counts, with a download link per
    version; the teacher's list says missing with its reason, the grading view makes
    another version count and waives the penalty, the questions box and the gradebook
    show the questions. (dan and cat sign in here: they never use the API in this module
    after the fixture, and one session each.)"""
    from playwright.sync_api import expect, sync_playwright

    from harness.browser import CHROMIUM, CHROMIUM_ARGS

    stack.enroll("tpage", CODE, teacher=True)
    tdl = hw["people"]["tdl"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        problems: list[str] = []

        def open_as(name, role):
            page = browser.new_context(accept_downloads=True).new_page()
            page.set_default_timeout(20_000)
            page.on("dialog", lambda dialog: dialog.accept())
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on(
                "console",
                lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
            )
            page.goto(f"{stack.url}/hub/login?next={requests.utils.quote(GRADES, safe='')}")
            page.fill("#token_input", stack.mint(name, role))
            page.click("#token_submit")
            page.wait_for_url(f"**{GRADES}")
            page.goto(f"{stack.url}{GRADES}classes/{CODE}")
            return page

        pages = []
        try:
            # cat (stopped server, never pressed Submit): her deadline version counts
            cat = open_as("cat", "student")
            pages.append(cat)
            card = "#assignments article[data-slug=hw]"
            expect(cat.locator(f"{card} [data-field=status]")).to_contain_text(
                "Version 1 counts (on time"
            )
            row = cat.locator(f"{card} tr[data-version='1']")
            expect(row.locator("[data-field=counts]")).to_have_text("counts")
            expect(row.locator("[data-field=by]")).to_have_text("taken at the due date by classhub")
            assert (
                "what is saved on disk is what is handed in"
                in cat.inner_text("#saved-on-disk").lower()
            )
            with cat.expect_download() as download:
                row.locator("[data-field=download]").click()
            assert download.value.suggested_filename == "hw-cat-v1.zip"

            teacher = open_as("tpage", "teacher")
            pages.append(teacher)
            teacher.click("#assignments tr[data-slug=hw] [data-action=open]")
            dan = teacher.locator("#submissions tr[data-user=dan]")
            expect(dan).to_have_attribute("data-status", "missing")
            assert "no home folder" in dan.locator("[data-field=status]").get_attribute("title")
            # ann: version 1 counts (graded 9.5), version 2 is the late collect
            teacher.click("#submissions tr[data-user=ann] [data-action=grade]")
            expect(teacher.locator("#grading-version")).to_have_text("1")
            teacher.click("#grading-versions-box summary")
            versions = teacher.locator("#grading-versions li")
            expect(versions).to_have_count(2)
            expect(versions.nth(1)).to_have_attribute("data-counts", "true")
            expect(teacher.locator("#grading-counting")).to_contain_text("version 1 counts")
            versions.nth(0).locator("[data-action=count]").click()  # the prompt is accepted
            expect(teacher.locator("#grading-counting")).to_contain_text(
                "version 2 counts (chosen)"
            )
            assert tdl.get(f"{A}/hw/students/ann/submissions").json()["standing"]["why"] == "chosen"
            teacher.select_option("#penalty-mode", "waive")
            teacher.fill("#penalty-reason", "the collect was mine")
            teacher.click("#penalty-save")
            # "20% penalty" also contains "0% penalty": wait for the saved state itself
            expect(teacher.locator("#penalty-state")).to_contain_text(": 0% penalty")
            expect(teacher.locator("#penalty-state")).to_contain_text("Penalty set by tpage")
            assert audit(stack, "penalty.waive")[-1]["new"]["reason"] == "the collect was mine"
            teacher.click("#grading-default")
            expect(teacher.locator("#grading-counting")).to_contain_text(
                "version 1 counts (the last on time)"
            )
            # the questions of "lab": in its editor and as columns of the gradebook
            teacher.click("#assignments tr[data-slug=lab] [data-action=edit]")
            expect(teacher.locator("#questions tbody tr")).to_have_count(2)
            expect(
                teacher.locator("#questions tbody tr").nth(1).locator("[data-field=label]")
            ).to_have_value("The plot")
            assert teacher.locator("#assignment-max").get_attribute("readonly") is not None
            expect(teacher.locator("#gradebook th[data-question=q2]")).to_contain_text("The plot")
            cell = "#gradebook tr[data-user=ann] td[data-slug=lab][data-question=q1]"
            expect(teacher.locator(cell)).to_have_text("3.5")
            expect(teacher.locator("#gradebook tr[data-user=dan] td[data-slug=hw]")).to_have_text(
                "missing"
            )
            assert not [x for x in problems if "page error" in x or "Content Security" in x], (
                problems
            )
        except Exception:
            for i, page in enumerate(pages):
                page.screenshot(path=str(tmp_path / f"failure-{i}.png"), full_page=True)
            print("screenshots in", tmp_path, problems)
            raise
        finally:
            browser.close()
