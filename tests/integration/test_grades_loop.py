"""The grades service's whole loop against the real hub, Traefik, PostgreSQL, SeaweedFS and
real student containers: create, work, submit, collect (running and stopped servers, the
stopped ones never started for it), grade, return (feedback into running and stopped
servers' homes), export; deadlines, extensions and access rules."""

import csv
import io
import shutil
import time

import pytest
import requests

from harness.classes import Person, assert_error
from harness.files import files_stack
from harness.stack import start_postgres, wait_for

pytestmark = pytest.mark.integration

GRADES = "/services/grades/"
CODE = "chem5"


@pytest.fixture(scope="module")
def grades_pg(tmp_path_factory):
    """A PostgreSQL of the grades' own (not the hub's), so a test can stop it alone."""
    proc, port, url = start_postgres(tmp_path_factory.mktemp("grades-pg"))
    yield proc, port, url
    proc.stop()
    shutil.rmtree(proc.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, grades_pg):
    env = {"CLASSHUB_GRADES_DB_URL": grades_pg[2], "CLASSHUB_GRADES_DB_TIMEOUT": "2"}
    for stack in files_stack(tmp_path_factory.mktemp("grades"), env=env):
        health = stack.url + GRADES + "health"
        wait_for(lambda h=health: requests.get(h, timeout=5).ok, 60, what="grades")
        yield stack


def who(stack, name, role="student"):
    return Person(stack, name, role, service=GRADES)


def iso(seconds_from_now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + seconds_from_now))


def feedback_delivered(db_url: str, submission_id: int) -> bool:
    import psycopg

    with psycopg.connect(db_url.replace("+psycopg", ""), connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT feedback_delivered_at FROM classhub_grades.grades WHERE submission_id = %s",
            (submission_id,),
        ).fetchone()
    return bool(row and row[0])


def test_release_work_submit_collect_grade_return_export(stack, grades_pg):
    stack.enroll("tess5", CODE, teacher=True)
    for s in ("ami5", "ben5", "cat5"):
        stack.enroll(s, CODE)
    stack.enroll("out5", "other5")
    tess, ami, _ben, out = (
        who(stack, "tess5", "teacher"),
        who(stack, "ami5"),
        who(stack, "ben5"),
        who(stack, "out5"),
    )
    body = {
        "slug": "hw1",
        "title": "Homework 1",
        "max_points": 10,
        "release_at": iso(-3600),
        "due_at": iso(3600),
        "late_policy": "accept",
        "late_penalty_percent": 10,
    }
    r = tess.post(f"api/classes/{CODE}/assignments", json=body)
    assert r.status_code == 201, r.text
    assert_error(tess.post(f"api/classes/{CODE}/assignments", json=body), 409)
    assert_error(ami.post(f"api/classes/{CODE}/assignments", json={**body, "slug": "x"}), 403)
    assert_error(out.get(f"api/classes/{CODE}/assignments"), 404)

    # students see it with their own due date and a countdown
    seen = ami.get(f"api/classes/{CODE}/assignments").json()["assignments"]
    assert [a["slug"] for a in seen] == ["hw1"] and 3500 < seen[0]["seconds_left"] <= 3600

    # ami works in her running server and submits; a double click is the same submission
    stack.spawn("ami5", CODE)
    stack.write_home("ami5", CODE, f"{CODE}/assignments/hw1/answer.py", b"print(42)\n")
    first = ami.post(f"api/classes/{CODE}/assignments/hw1/submit")
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1 and first.json()["late"] is False
    again = ami.post(f"api/classes/{CODE}/assignments/hw1/submit")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["id"] == first.json()["id"]
    stack.write_home("ami5", CODE, f"{CODE}/assignments/hw1/answer.py", b"print(43)\n")
    second = ami.post(f"api/classes/{CODE}/assignments/hw1/submit")
    assert second.status_code == 201 and second.json()["version"] == 2, second.text

    # ben worked earlier; his server is stopped now: collecting takes his folder from his
    # home without starting the server
    stack.spawn("ben5", CODE)
    stack.write_home("ben5", CODE, f"{CODE}/assignments/hw1/notes.md", b"# ben\n")
    stack.stop("ben5", CODE)
    r = tess.post(f"api/classes/{CODE}/assignments/hw1/collect", timeout=300)
    assert r.status_code == 200, r.text
    results = {x["user"]: x for x in r.json()["students"]}
    assert results["ben5"]["status"] == "collected", results
    assert results["ami5"]["status"] == "collected" and results["ami5"]["duplicate"] is True
    assert results["cat5"]["status"] == "failed"  # never started: no folder to collect
    assert "no home folder" in results["cat5"]["message"]
    assert stack.server_model("ben5", CODE) is None  # never started for it
    assert not [c for c in stack.containers() if c.labels.get("classhub.user") == "ben5"]

    subs = tess.get(f"api/classes/{CODE}/assignments/hw1/submissions").json()
    status = {x["user"]: x["status"] for x in subs["students"]}
    assert status == {"ami5": "on_time", "ben5": "on_time", "cat5": "not_handed_in_yet"}
    ami_latest = next(x for x in subs["students"] if x["user"] == "ami5")["latest"]
    assert ami_latest["version"] == 2

    # the stored snapshot is the student's folder
    link = tess.get(f"api/submissions/{ami_latest['id']}/download").json()["url"]
    import zipfile

    zipped = zipfile.ZipFile(io.BytesIO(requests.get(link, timeout=30).content))
    assert zipped.read("answer.py") == b"print(43)\n"

    # grading: out of range refused, concurrent grading never loses a grade
    sub = ami_latest["id"]
    assert_error(
        tess.call(
            "PUT", f"api/submissions/{sub}/grade", json={"points": 11, "expected_revision": 0}
        ),
        400,
    )
    r = tess.call(
        "PUT",
        f"api/submissions/{sub}/grade",
        json={"points": 8, "feedback": "Good.", "expected_revision": 0},
    )
    assert r.status_code == 200, r.text
    assert_error(
        tess.call(
            "PUT", f"api/submissions/{sub}/grade", json={"points": 5, "expected_revision": 0}
        ),
        409,
    )
    assert_error(
        ami.call(
            "PUT", f"api/submissions/{sub}/grade", json={"points": 10, "expected_revision": 1}
        ),
        403,
    )
    # the student sees no grade before it is returned
    assert ami.get(f"api/submissions/{sub}").json()["grade"] is None
    assert tess.post(f"api/submissions/{sub}/return").status_code == 200
    mine = ami.get(f"api/submissions/{sub}").json()
    assert mine["grade"]["points"] == 8 and mine["grade"]["feedback"] == "Good."
    # the feedback lands in ami's running server at once
    feedback = stack.read_home("ami5", CODE, f"{CODE}/feedback/hw1/feedback.md")
    assert b"Points: 8" in feedback and b"Good." in feedback
    # ben's server is stopped: his feedback goes into his home all the same, at once
    ben_latest = next(x for x in subs["students"] if x["user"] == "ben5")["latest"]["id"]
    r = tess.call(
        "PUT",
        f"api/submissions/{ben_latest}/grade",
        json={"points": 6, "feedback": "Start earlier.", "expected_revision": 0},
    )
    assert r.status_code == 200, r.text
    assert tess.post(f"api/submissions/{ben_latest}/return").status_code == 200
    wait_for(
        lambda: feedback_delivered(grades_pg[2], ben_latest),
        30,
        what="ben's feedback delivered into his home while his server is stopped",
    )
    assert stack.server_model("ben5", CODE) is None
    stack.spawn("ben5", CODE)
    assert b"Start earlier." in stack.read_home("ben5", CODE, f"{CODE}/feedback/hw1/feedback.md")
    # nobody else's submission is visible to a student
    assert_error(ami.get(f"api/submissions/{ben_latest}"), 404)
    assert_error(out.get(f"api/submissions/{sub}"), 404)

    # the gradebook and its CSV
    book = tess.get(f"api/classes/{CODE}/gradebook").json()
    row = next(x for x in book["students"] if x["user"] == "ami5")
    assert row["earned"] == 8 and row["percent"] == 80
    r = tess.get(f"api/classes/{CODE}/gradebook.csv")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][0] == "Student" and "Homework 1" in rows[0][1]
    assert ["ami5", "8"] == rows[[r[0] for r in rows].index("ami5")][:2]
    assert_error(ami.get(f"api/classes/{CODE}/gradebook"), 403)


def test_deadlines_extensions_and_late_policies(stack):
    tess, ami = who(stack, "tess5", "teacher"), who(stack, "ami5")
    r = tess.post(
        f"api/classes/{CODE}/assignments",
        json={
            "slug": "quiz",
            "title": "Quiz",
            "max_points": 5,
            "release_at": iso(-7200),
            "due_at": iso(-3600),
            "late_policy": "refuse",
        },
    )
    assert r.status_code == 201, r.text
    stack.write_home("ami5", CODE, f"{CODE}/assignments/quiz/q.txt", b"late")
    assert_error(ami.post(f"api/classes/{CODE}/assignments/quiz/submit"), 403)
    r = tess.call(
        "PUT",
        f"api/classes/{CODE}/assignments/quiz/extensions/ami5",
        json={"due_at": iso(600), "reason": "ill"},
    )
    assert r.status_code == 200, r.text
    r = ami.post(f"api/classes/{CODE}/assignments/quiz/submit")
    assert r.status_code == 201 and r.json()["late"] is False, r.text
    assert_error(
        tess.call(
            "PUT", f"api/classes/{CODE}/assignments/quiz/extensions/out5", json={"due_at": iso(600)}
        ),
        400,
    )
    for bad in ({"due_at": "tomorrow"}, {"due_at": "2026-12-01T10:00:00"}, {}):
        assert_error(
            tess.call("PUT", f"api/classes/{CODE}/assignments/quiz/extensions/ami5", json=bad), 400
        )
    # an unreleased assignment does not exist for students
    r = tess.post(
        f"api/classes/{CODE}/assignments",
        json={
            "slug": "later",
            "title": "Later",
            "max_points": 1,
            "release_at": iso(3600),
            "due_at": iso(7200),
        },
    )
    assert r.status_code == 201, r.text
    assert "later" not in [
        a["slug"] for a in ami.get(f"api/classes/{CODE}/assignments").json()["assignments"]
    ]
    assert_error(ami.post(f"api/classes/{CODE}/assignments/later/submit"), 404)


def test_postgresql_down_is_a_503_and_the_service_recovers(stack, grades_pg):
    tess = who(stack, "tess5", "teacher")
    proc = grades_pg[0]
    proc.stop()
    try:
        r = tess.get(f"api/classes/{CODE}/assignments")
        assert_error(r, 503, "grades database is unreachable")
        # a page says it in a page (the review page first reads the versions): no 500
        for page in (f"classes/{CODE}/assignments/hw1/review", f"classes/{CODE}"):
            r = tess.get(page, headers={"Sec-Fetch-Mode": "navigate", "Accept": "text/html"})
            assert r.status_code == 503, (page, r.status_code, r.text[:300])
            assert r.headers["Content-Type"].startswith("text/html"), r.headers
            assert "grades database is unreachable" in r.text, r.text[:2000]
        health = requests.get(stack.url + GRADES + "health", timeout=15)
        assert health.status_code == 503 and "postgresql" in health.json()["message"]
    finally:
        proc.start()
    wait_for(
        lambda: tess.get(f"api/classes/{CODE}/assignments").status_code == 200,
        60,
        interval=0.5,
        what="grades service back after PostgreSQL",
    )
    slugs = [a["slug"] for a in tess.get(f"api/classes/{CODE}/assignments").json()["assignments"]]
    assert "hw1" in slugs  # nothing was lost
