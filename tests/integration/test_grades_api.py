"""The grades API's listings and switches against the real hub, Traefik, PostgreSQL,
SeaweedFS and one real student container: the extensions of an assignment, every version
of one student, archiving and unarchiving, the download link as a redirect, and an
admin's Grades page listing every class. Each route is tried by the people who must not
use it (a student of the class, a student and a teacher of another class) and with bad
input (unknown → 404, malformed → 400)."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import quote

import pytest
import requests

from harness.classes import Person, assert_error
from harness.stack import wait_for
from tests.integration.test_grades_loop import iso

pytestmark = pytest.mark.integration

GRADES = "/services/grades/"
CODE = "chem514"
OTHER = "other514"
A = f"api/classes/{CODE}/assignments"


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


@pytest.fixture(scope="module")
def people(stack):
    """chem514: teacher tia14, students sam14 (with a running server) and sue14 (no work);
    other514: teacher otto14 and student zoe14; and an admin who takes and teaches nothing."""
    stack.enroll("tia14", CODE, teacher=True)
    stack.enroll("sam14", CODE)
    stack.enroll("sue14", CODE)
    stack.enroll("otto14", OTHER, teacher=True)
    stack.enroll("zoe14", OTHER)
    return {
        "tia14": Person(stack, "tia14", "teacher", service=GRADES),
        "sam14": Person(stack, "sam14", service=GRADES),
        "sue14": Person(stack, "sue14", service=GRADES),
        "otto14": Person(stack, "otto14", "teacher", service=GRADES),
        "zoe14": Person(stack, "zoe14", service=GRADES),
        "admin": Person(stack, "admin", "admin", service=GRADES),
    }


@pytest.fixture(scope="module")
def hw(stack, people):
    """Assignment ``hw`` (open for an hour) with three versions by sam14: v1 to v3."""
    r = people["tia14"].post(
        A,
        json={
            "slug": "hw",
            "title": "Homework",
            "max_points": 10,
            "release_at": iso(-3600),
            "due_at": iso(3600),
        },
    )
    assert r.status_code == 201, r.text
    stack.spawn("sam14", CODE)
    ids = []
    for n in (1, 2, 3):
        stack.write_home(
            "sam14", CODE, f"{CODE}/assignments/hw/answer.py", f"print({n})\n".encode()
        )
        r = people["sam14"].post(f"{A}/hw/submit")
        assert r.status_code == 201 and r.json()["version"] == n, r.text
        ids.append(r.json()["id"])
    return ids


def outsiders(people):
    """Who gets 404 from every route of chem514: a student and a teacher of another class."""
    return [people["zoe14"], people["otto14"]]


def test_a_teacher_lists_the_extensions_of_an_assignment(people, hw):
    tia, sam = people["tia14"], people["sam14"]
    r = tia.get(f"{A}/hw/extensions")
    assert r.status_code == 200, r.text
    assert r.json() == {"assignment": "hw", "extensions": []}
    due = iso(7 * 86400)
    r = tia.call("PUT", f"{A}/hw/extensions/sue14", json={"due_at": due, "reason": "ill"})
    assert r.status_code == 200, r.text
    granted = r.json()
    listed = tia.get(f"{A}/hw/extensions").json()["extensions"]
    assert listed == [granted]
    (ext,) = listed
    assert ext["user"] == "sue14" and ext["reason"] == "ill" and ext["granted_by"] == "tia14"
    assert ext["due_at"].startswith(due[:16]) and ext["granted_at"].endswith("Z")

    # the access boundary: students of the class are refused, others learn nothing
    assert_error(sam.get(f"{A}/hw/extensions"), 403)
    assert_error(people["sue14"].get(f"{A}/hw/extensions"), 403)  # even their own
    for who in outsiders(people):
        assert_error(who.get(f"{A}/hw/extensions"), 404)
    # bad input
    assert_error(tia.get(f"{A}/nope/extensions"), 404)
    assert_error(tia.get(f"{A}/Bad!Slug/extensions"), 400)
    assert_error(tia.get("api/classes/nosuchclass/assignments/hw/extensions"), 404)

    assert tia.delete(f"{A}/hw/extensions/sue14").status_code == 204
    assert tia.get(f"{A}/hw/extensions").json()["extensions"] == []


def test_every_version_of_a_student_newest_first(people, hw):
    tia, sam, sue = people["tia14"], people["sam14"], people["sue14"]
    r = tia.get(f"{A}/hw/students/sam14/submissions")
    assert r.status_code == 200, r.text
    versions = r.json()["submissions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert [v["id"] for v in versions] == hw[::-1]
    for v in versions:
        assert v["user"] == "sam14" and v["late"] is False and v["grade"] is None
        assert len(v["sha256"]) == 64 and v["bytes"] > 0 and v["submitted_at"].endswith("Z")
    assert len({v["sha256"] for v in versions}) == 3  # three different contents

    # a grade on an older version: the teacher sees it at once, sam14 once it is returned
    r = tia.call(
        "PUT", f"api/submissions/{hw[1]}/grade", json={"points": 7, "expected_revision": 0}
    )
    assert r.status_code == 200, r.text
    seen = tia.get(f"{A}/hw/students/sam14/submissions").json()["submissions"]
    assert seen[1]["grade"]["points"] == 7 and seen[1]["grade"]["returned_at"] is None
    mine = sam.get(f"{A}/hw/students/sam14/submissions")
    assert mine.status_code == 200, mine.text
    assert [v["version"] for v in mine.json()["submissions"]] == [3, 2, 1]
    assert all(v["grade"] is None for v in mine.json()["submissions"])
    assert tia.post(f"api/submissions/{hw[1]}/return").status_code == 200
    mine = sam.get(f"{A}/hw/students/sam14/submissions").json()["submissions"]
    assert mine[1]["grade"]["points"] == 7 and mine[0]["grade"] is None

    # a student of the class with nothing handed in: an empty list, not an error
    assert tia.get(f"{A}/hw/students/sue14/submissions").json()["submissions"] == []
    assert sue.get(f"{A}/hw/students/sue14/submissions").json()["submissions"] == []

    # the access boundary
    assert_error(sue.get(f"{A}/hw/students/sam14/submissions"), 404)
    assert_error(sam.get(f"{A}/hw/students/sue14/submissions"), 404)
    for who in outsiders(people):
        assert_error(who.get(f"{A}/hw/students/sam14/submissions"), 404)
    # bad input
    assert_error(tia.get(f"{A}/hw/students/nobody/submissions"), 404)
    assert_error(tia.get(f"{A}/hw/students/zoe14/submissions"), 404)  # of another class
    assert_error(tia.get(f"{A}/hw/students/Bad%20User!/submissions"), 400)
    assert_error(tia.get(f"{A}/nope/students/sam14/submissions"), 404)
    assert_error(tia.get(f"{A}/Bad!Slug/students/sam14/submissions"), 400)


def test_a_download_link_may_redirect_to_the_snapshot(people, hw):
    tia, sam = people["tia14"], people["sam14"]
    r = tia.get(f"api/submissions/{hw[0]}/download?redirect=1")
    assert r.status_code == 302, r.text
    assert r.headers["Cache-Control"] == "no-store"
    got = requests.get(r.headers["Location"], timeout=30)
    assert got.status_code == 200, got.text
    assert zipfile.ZipFile(io.BytesIO(got.content)).read("answer.py") == b"print(1)\n"
    # without redirect=1 it is the JSON answer, as before
    assert "url" in tia.get(f"api/submissions/{hw[0]}/download").json()
    # the owner may; nobody else but the teachers
    r = sam.get(f"api/submissions/{hw[2]}/download?redirect=1")
    assert r.status_code == 302, r.text
    got = requests.get(r.headers["Location"], timeout=30)
    assert zipfile.ZipFile(io.BytesIO(got.content)).read("answer.py") == b"print(3)\n"
    assert_error(people["sue14"].get(f"api/submissions/{hw[0]}/download?redirect=1"), 404)
    for who in outsiders(people):
        assert_error(who.get(f"api/submissions/{hw[0]}/download?redirect=1"), 404)
    assert_error(tia.get("api/submissions/987654321/download?redirect=1"), 404)
    assert_error(tia.get(f"api/submissions/{2**63}/download?redirect=1"), 404)


def test_archiving_hides_an_assignment_from_students_and_refuses_submissions(stack, people, hw):
    tia, sam = people["tia14"], people["sam14"]
    r = tia.post(f"{A}/hw/archive")
    assert r.status_code == 200 and r.json()["archived"] is True, r.text
    assert tia.post(f"{A}/hw/archive").json()["archived"] is True  # twice: no harm

    # students: gone from their list and their routes; Submit says why it is refused
    assert "hw" not in [a["slug"] for a in sam.get(A).json()["assignments"]]
    assert_error(sam.get(f"{A}/hw"), 404)
    assert_error(sam.get(f"{A}/hw/students/sam14/submissions"), 404)
    assert_error(sam.post(f"{A}/hw/submit"), 409, "archived")
    # teachers: still listed (marked), no collecting, the versions and grades stay
    listed = {a["slug"]: a for a in tia.get(A).json()["assignments"]}
    assert listed["hw"]["archived"] is True
    assert_error(tia.post(f"{A}/hw/collect"), 409, "archived")
    assert len(tia.get(f"{A}/hw/students/sam14/submissions").json()["submissions"]) == 3
    # the gradebook keeps it (grades earned stay), marked archived; so does the CSV
    book = tia.get(f"api/classes/{CODE}/gradebook").json()
    (column,) = [a for a in book["assignments"] if a["slug"] == "hw"]
    assert column["archived"] is True
    csv_text = tia.get(f"api/classes/{CODE}/gradebook.csv").content.decode("utf-8-sig")
    assert "Homework (10)" in csv_text.splitlines()[0]

    # the access boundary and bad input
    for action in ("archive", "unarchive"):
        assert_error(sam.post(f"{A}/hw/{action}"), 403)
        for who in outsiders(people):
            assert_error(who.post(f"{A}/hw/{action}"), 404)
        assert_error(tia.post(f"{A}/nope/{action}"), 404)
        assert_error(tia.post(f"{A}/Bad!Slug/{action}"), 400)

    # unarchived: back for students, who may submit again
    r = tia.post(f"{A}/hw/unarchive")
    assert r.status_code == 200 and r.json()["archived"] is False, r.text
    assert "hw" in [a["slug"] for a in sam.get(A).json()["assignments"]]
    stack.write_home("sam14", CODE, f"{CODE}/assignments/hw/answer.py", b"print(4)\n")
    r = sam.post(f"{A}/hw/submit")
    assert r.status_code == 201 and r.json()["version"] == 4, r.text


def test_an_admins_grades_page_lists_every_class(people):
    # the admin teaches and takes nothing: the list comes from the hub's groups, which
    # the service may list (list:groups)
    r = people["admin"].get("", headers={"Accept": "text/html"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html"), r.text
    assert "All classes" in r.text
    for code in (CODE, OTHER):
        assert f'data-code="{code}"' in r.text
    # a teacher sees only their own class
    r = people["otto14"].get("", headers={"Accept": "text/html"})
    assert f'data-code="{OTHER}"' in r.text and f'data-code="{CODE}"' not in r.text


def test_the_teacher_page_archives_and_lists_every_version_with_download_links(
    stack, people, hw, tmp_path
):
    """In Chromium, as tom14 (a teacher who never uses the API here: one session each)."""
    from playwright.sync_api import expect, sync_playwright

    from harness.browser import CHROMIUM, CHROMIUM_ARGS

    stack.enroll("tom14", CODE, teacher=True)
    tia = people["tia14"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(accept_downloads=True).new_page()
        page.set_default_timeout(20_000)
        problems = []
        page.on("dialog", lambda dialog: dialog.accept())
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        try:
            page.goto(f"{stack.url}/hub/login?next={quote(GRADES, safe='')}")
            page.fill("#token_input", stack.mint("tom14", "teacher"))
            page.click("#token_submit")
            page.wait_for_url(f"**{GRADES}")
            page.goto(stack.url + GRADES + f"classes/{CODE}")
            row = "#assignments tr[data-slug=hw]"

            # archive, then unarchive, with the row's button
            expect(page.locator(f"{row} [data-action=archive]")).to_have_text("Archive")
            page.click(f"{row} [data-action=archive]")
            expect(page.locator(f"{row} [data-action=archive]")).to_have_text("Unarchive")
            expect(page.locator(f"{row} [data-field=state]")).to_have_text("archived")
            assert tia.get(f"{A}/hw").json()["archived"] is True
            expect(page.locator("#gradebook th[data-slug=hw]")).to_contain_text(
                "Homework (archived)"
            )
            page.click(f"{row} [data-action=archive]")
            expect(page.locator(f"{row} [data-action=archive]")).to_have_text("Archive")
            assert tia.get(f"{A}/hw").json()["archived"] is False

            # every version of sam14 under the open submission, newest first, each a link
            page.click(f"{row} [data-action=open]")
            page.click("#submissions tr[data-user=sam14] [data-action=grade]")
            versions = page.locator("#grading-versions li")
            count = len(tia.get(f"{A}/hw/students/sam14/submissions").json()["submissions"])
            expect(versions).to_have_count(count)
            expect(page.locator("#grading-versions-count")).to_have_text(str(count))
            page.click("#grading-versions-box summary")
            assert versions.nth(0).locator("[data-field=version]").inner_text() == str(count)
            assert "7 / 10" in versions.nth(count - 2).inner_text()  # version 2's grade
            with page.expect_download() as download:
                versions.nth(count - 1).locator("[data-field=download]").click()
            with open(download.value.path(), "rb") as f:
                first = zipfile.ZipFile(io.BytesIO(f.read()))
            assert first.read("answer.py") == b"print(1)\n"
            assert not problems, problems
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print("screenshot:", tmp_path / "failure.png", problems)
            raise
        finally:
            browser.close()


def test_the_gradebook_answer_is_reused_until_what_it_shows_changes(stack, people, hw):
    """The service keeps the gradebook it built (GradesApp.gradebook_cache_classes) only
    while PostgreSQL's gradebook generation and the roster are unchanged: a grade, a new
    version and a new student each show at the next read."""
    tia = people["tia14"]
    book = f"api/classes/{CODE}/gradebook"

    def cell(body, user):
        row = next(r for r in body["students"] if r["user"] == user)
        return row["cells"][[a["slug"] for a in body["assignments"]].index("hw")]

    first = tia.get(book).json()
    assert tia.get(book).json() == first  # the same answer again
    # sam14's latest version (earlier tests may have added versions to hw's three)
    versions = tia.get(f"{A}/hw/students/sam14/submissions").json()["submissions"]
    latest, grade = versions[0]["id"], versions[0]["grade"]
    r = tia.call(
        "PUT",
        f"api/submissions/{latest}/grade",
        json={"points": 9, "expected_revision": grade["revision"] if grade else 0},
    )
    assert r.status_code == 200, r.text
    graded = tia.get(book).json()
    assert cell(graded, "sam14") == {"state": "graded", "points": 9.0, "late": False}
    # a grade changed straight in the database (a restore, an admin's SQL) shows too
    assert stack.psql(
        "UPDATE classhub_grades.grades SET points = 4 WHERE submission_id = %s"
        " RETURNING submission_id",
        latest,
    ) == [latest]
    assert cell(tia.get(book).json(), "sam14")["points"] == 4.0
    # a new student of the class: a new row (the roster is read from the hub's cached
    # answer, a few seconds old at most)
    stack.enroll("sid", CODE)
    wait_for(
        lambda: any(r["user"] == "sid" for r in tia.get(book).json()["students"]),
        15,
        what="the new student's row",
    )


def test_an_assignment_is_deleted_only_without_submissions(stack, people, hw):
    tia, sam = people["tia14"], people["sam14"]
    # hw has sam14's versions: refused, with what to do instead
    assert_error(tia.delete(f"{A}/hw"), 409, "Archive it instead")
    assert tia.get(f"{A}/hw").status_code == 200
    assert len(tia.get(f"{A}/hw/students/sam14/submissions").json()["submissions"]) >= 3

    r = tia.post(A, json={"slug": "draft", "title": "Draft", "max_points": 5, "due_at": iso(3600)})
    assert r.status_code == 201, r.text
    r = tia.call("PUT", f"{A}/draft/extensions/sue14", json={"due_at": iso(7200), "reason": "ill"})
    assert r.status_code in (200, 201), r.text
    # the access boundary
    assert_error(sam.delete(f"{A}/draft"), 403)
    for who in outsiders(people):
        assert_error(who.delete(f"{A}/draft"), 404)
    assert_error(tia.delete(f"{A}/nope"), 404)

    r = tia.delete(f"{A}/draft")
    assert r.status_code == 204, r.text
    assert_error(tia.get(f"{A}/draft"), 404)
    assert "draft" not in [a["slug"] for a in tia.get(A).json()["assignments"]]
    # the same folder name can be used again
    r = tia.post(A, json={"slug": "draft", "title": "Draft again", "max_points": 5})
    assert r.status_code == 201, r.text
    assert tia.get(f"{A}/draft/extensions").json()["extensions"] == []
