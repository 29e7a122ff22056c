"""The review page in headless Chromium: a student hands in a notebook
whose Markdown holds a ``<script>``, whose outputs are JavaScript and HTML with event
handlers, each a payload that would mark the page it runs in, its parent page, call a
listener of the test's own and ask the hub for a token with the teacher's session. The
teacher opens it rendered, then the changes between two versions, moves to the next and
previous student without a reload (buttons and keys) and grades beside the notebook.
Nothing of the payload runs; what is harmless is there to read.

The test starts its own deployment (harness/stack.py: real hub, Traefik, PostgreSQL,
SeaweedFS, nx-27017, student containers), never the stack `make up` started.
"""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest
import requests

from harness.browser import CHROMIUM, CHROMIUM_ARGS, Listener
from harness.classes import Person
from harness.files import files_stack
from harness.stack import wait_for
from tests.integration.test_grades_loop import iso

pytestmark = pytest.mark.e2e

GRADES = "/services/grades/"
CODE = "chem5"
TEACHER = "tom"


def payload(listener: Listener) -> str:
    """What the student's notebook would run: mark its own page and its parent's, call the
    listener, ask the hub for a token with the viewer's session."""
    return (
        "(function(){"
        "try{document.documentElement.setAttribute('data-pwned','frame')}catch(e){}"
        "try{parent.document.body.setAttribute('data-pwned','parent')}catch(e){}"
        f"try{{new Image().src='http://127.0.0.1:{listener.port}/beacon'}}catch(e){{}}"
        f"try{{fetch('http://127.0.0.1:{listener.port}/fetch',{{mode:'no-cors'}})}}catch(e){{}}"
        f"try{{fetch('/hub/api/users/{TEACHER}/tokens',{{method:'POST',credentials:'include',"
        "body:'{}'})}catch(e){}"
        "})()"
    )


def notebook(script: str, answer: str) -> bytes:
    html = (
        f'<b>measured table</b><img src=x onerror="{script}">'
        f"<div id='hover' onmouseover=\"{script}\">hover here</div>"
        f"<svg onload=\"{script}\"><circle r='5'/></svg>"
    )
    return json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {},
            "cells": [
                {
                    "cell_type": "markdown",
                    "id": "intro",
                    "metadata": {},
                    "source": f"# The pendulum\n<script>{script}</script>\nPeriod *measured*.",
                },
                {
                    "cell_type": "code",
                    "id": "calc",
                    "execution_count": 1,
                    "metadata": {},
                    "source": f"answer = {answer}\nprint('answer is', answer)",
                    "outputs": [
                        {
                            "output_type": "stream",
                            "name": "stdout",
                            "text": f"answer is {answer}\n",
                        },
                        {
                            "output_type": "display_data",
                            "metadata": {},
                            "data": {"application/javascript": script, "text/plain": "<JS>"},
                        },
                        {
                            "output_type": "display_data",
                            "metadata": {},
                            "data": {"text/html": html, "text/plain": "<HTML>"},
                        },
                    ],
                },
            ],
        }
    ).encode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    for stack in files_stack(tmp_path_factory.mktemp("review-e2e")):
        health = stack.url + GRADES + "health"
        wait_for(lambda h=health: requests.get(h, timeout=5).ok, 60, what="grades")
        yield stack


@pytest.fixture(scope="module")
def listener():
    found = Listener()
    yield found
    found.close()


DATA_CSV = b"t,x\n0,1\n1,3\n"


@pytest.fixture(scope="module")
def world(stack, listener):
    """Assignment ``lab``: ann hands in two versions of a hostile notebook, ben one,
    graded 7 by ted (a second teacher, through the API); cat hands in nothing."""
    stack.enroll(TEACHER, CODE, teacher=True)
    stack.enroll("ted", CODE, teacher=True)
    for student in ("ann", "ben", "cat"):
        stack.enroll(student, CODE)
    ted = Person(stack, "ted", "teacher", service=GRADES)
    r = ted.post(
        f"api/classes/{CODE}/assignments",
        json={"slug": "lab", "title": "Lab", "max_points": 10, "due_at": iso(7200)},
    )
    assert r.status_code == 201, r.text
    script = payload(listener)
    ids = {}
    for student, answers in (("ann", ("41", "42")), ("ben", ("7",))):
        stack.spawn(student, CODE)
        person = Person(stack, student, service=GRADES)
        if student == "ann":  # a file beside the notebook: listed and downloadable
            stack.write_home(student, CODE, f"{CODE}/assignments/lab/data.csv", DATA_CSV)
        for answer in answers:
            stack.write_home(
                student, CODE, f"{CODE}/assignments/lab/work.ipynb", notebook(script, answer)
            )
            r = person.post(f"api/classes/{CODE}/assignments/lab/submit")
            assert r.status_code == 201, r.text
            ids[(student, answer)] = r.json()["id"]
    r = ted.call(
        "PUT",
        f"api/submissions/{ids[('ben', '7')]}/grade",
        json={"points": 7, "feedback": "Check the units.", "expected_revision": 0},
    )
    assert r.status_code == 200, r.text
    return {"ids": ids, "ted": ted}


def hub_tokens(stack, user: str) -> list[str]:
    tokens = stack.api("GET", f"/users/{user}/tokens").json()["api_tokens"]
    return sorted(t["id"] for t in tokens if (t.get("note") or "").startswith("Requested via api"))


def nothing_ran(page, frame, listener, stack, tokens_before, hover=False) -> None:
    assert frame.locator("html").get_attribute("data-pwned") is None
    assert page.locator("body").get_attribute("data-pwned") is None
    if hover:  # the element with an onmouseover handler (of the rendered notebook)
        frame.get_by_text("hover here").hover()
    page.wait_for_timeout(1500)  # anything triggered has landed by now
    assert frame.locator("html").get_attribute("data-pwned") is None
    assert page.locator("body").get_attribute("data-pwned") is None
    assert listener.hits == []
    assert hub_tokens(stack, TEACHER) == tokens_before


def test_a_teacher_reviews_hostile_notebooks_and_nothing_runs(stack, world, listener, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    tokens_before = hub_tokens(stack, TEACHER)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context().new_page()
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(f"{stack.url}/hub/login?next={quote(GRADES, safe='')}")
            page.fill("#token_input", stack.mint(TEACHER, "teacher"))
            page.click("#token_submit")
            page.wait_for_url(f"**{GRADES}")
            page.goto(f"{stack.url}{GRADES}classes/{CODE}/assignments/lab/review")

            # ann's counting version (the latest) rendered in the sandboxed frame
            expect(page.locator("#grading-user")).to_have_text("ann")
            expect(page.locator("#grading-version")).to_have_text("2")
            assert page.get_attribute("#viewer", "sandbox") == ""
            frame = page.frame_locator("#viewer")
            expect(frame.locator("h1")).to_have_text("The pendulum")
            expect(frame.locator("body")).to_contain_text("answer is 42")
            expect(frame.locator("b")).to_have_text("measured table")
            expect(frame.locator("body")).to_contain_text("hover here")
            expect(frame.locator("body")).to_contain_text("<JS>")  # the script's text form
            nothing_ran(page, frame, listener, stack, tokens_before, hover=True)
            assert frame.locator("script").count() == 0

            # the version's other files are listed and download as they were handed in
            expect(page.locator("#files tbody tr")).to_have_count(2)
            paths = page.eval_on_selector_all(
                "#files tbody tr [data-field=path]", "cells => cells.map(c => c.textContent)"
            )
            assert sorted(paths) == ["data.csv", "work.ipynb"], paths
            with page.expect_download() as download:
                page.click("#files tbody tr[data-path='data.csv'] [data-action=download]")
            assert download.value.suggested_filename == "data.csv"
            assert open(download.value.path(), "rb").read() == DATA_CSV

            # the changes since version 1, in the same frame: the script only as text
            page.select_option("#compare-select", str(world["ids"][("ann", "41")]))
            expect(frame.locator("body")).to_contain_text("From version 1 to version 2")
            expect(frame.locator(".l.del").first).to_contain_text("answer = 41")
            expect(frame.locator(".l.ins").first).to_contain_text("answer = 42")
            expect(frame.locator("body")).to_contain_text("<script>")
            nothing_ran(page, frame, listener, stack, tokens_before)
            page.select_option("#compare-select", "")

            # next and previous student without a reload; the form follows
            page.evaluate("window.__sameDocument = 'yes'")
            page.click("#next-student")
            expect(page.locator("#grading-user")).to_have_text("ben")
            expect(page.locator("#grade-points")).to_have_value("7")
            expect(page.locator("#grade-feedback")).to_have_value("Check the units.")
            expect(frame.locator("body")).to_contain_text("answer is 7")
            expect(page.locator("#student-position")).to_have_text("2 of 2")
            page.locator("body").click(position={"x": 5, "y": 5})
            page.keyboard.press("k")
            expect(page.locator("#grading-user")).to_have_text("ann")
            expect(page.locator("#grade-points")).to_have_value("")
            page.keyboard.press("j")
            expect(page.locator("#grading-user")).to_have_text("ben")
            assert page.evaluate("window.__sameDocument") == "yes"
            assert "user=ben" in page.url

            # grading beside the notebook: ted's grade is revision 1
            page.fill("#grade-points", "8.5")
            page.fill("#grade-feedback", "Better.")
            page.click("#grade-save")
            expect(page.locator("#action-alert")).to_contain_text("Saved the grade of ben")
            page.click("#grade-return")
            expect(page.locator("#action-alert")).to_contain_text("Returned the grade to ben")
            assert page.evaluate("window.__sameDocument") == "yes"
            nothing_ran(page, frame, listener, stack, tokens_before)
            assert not errors, errors
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            print("screenshot:", tmp_path / "failure.png")
            raise
        finally:
            browser.close()
    saved = world["ted"].get(f"api/submissions/{world['ids'][('ben', '7')]}").json()
    assert saved["grade"]["points"] == 8.5 and saved["grade"]["feedback"] == "Better."
    assert saved["grade"]["returned_at"] is not None
    time.sleep(1)
    assert listener.hits == []


def test_a_student_sees_their_own_versions_rendered_and_only_theirs(stack, world, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context().new_page()
        page.set_default_timeout(30_000)
        try:
            page.goto(f"{stack.url}/hub/login?next={quote(GRADES, safe='')}")
            page.fill("#token_input", stack.mint("ann", "student"))
            page.click("#token_submit")
            page.wait_for_url(f"**{GRADES}")
            page.goto(f"{stack.url}{GRADES}classes/{CODE}")
            link = page.locator("#assignments article[data-slug=lab] [data-action=review]")
            expect(link).to_be_visible()
            link.click()
            page.wait_for_url("**/assignments/lab/review**")
            expect(page.locator("#grading-version")).to_have_text("2")
            frame = page.frame_locator("#viewer")
            expect(frame.locator("body")).to_contain_text("answer is 42")
            assert page.locator("#grading").count() == 0  # no grading for a student
            assert page.locator("#student-select").count() == 0
            # another student's version, asked for by its address: refused
            ben = world["ids"][("ben", "7")]
            r = page.request.get(f"{stack.url}{GRADES}api/submissions/{ben}/files")
            assert r.status == 404
            r = page.request.get(f"{stack.url}{GRADES}api/submissions/{ben}/render/work.ipynb")
            assert r.status == 404
            assert frame.locator("html").get_attribute("data-pwned") is None
        except Exception:
            page.screenshot(path=str(tmp_path / "student.png"), full_page=True)
            print("screenshot:", tmp_path / "student.png")
            raise
        finally:
            browser.close()


def test_a_teacher_chooses_the_version_and_grades_per_question_beside_the_notebook(
    stack, world, tmp_path
):
    """Assignment ``quiz`` has two questions; ann hands in two versions. On the review
    page the teacher sees version 2 count (the last on time), makes version 1 count
    (the grades page's route), and grades it per question: the points are their sum and
    the grade is version 1's, as the API and the student's standing say."""
    from playwright.sync_api import expect, sync_playwright

    ted = world["ted"]
    quiz = f"api/classes/{CODE}/assignments/quiz"
    r = ted.post(
        f"api/classes/{CODE}/assignments",
        json={"slug": "quiz", "title": "Quiz", "max_points": 10, "due_at": iso(7200)},
    )
    assert r.status_code == 201, r.text
    r = ted.call(
        "PUT",
        f"{quiz}/questions",
        json={"questions": [{"label": "Q1", "points": 4}, {"label": "Q2", "points": 6}]},
    )
    assert r.status_code == 200, r.text
    ann = Person(stack, "ann", service=GRADES)
    ids = []
    for answer in ("1", "2"):
        stack.write_home("ann", CODE, f"{CODE}/assignments/quiz/q.ipynb", notebook("1", answer))
        r = ann.post(f"{quiz}/submit")
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context().new_page()
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(f"{stack.url}/hub/login?next={quote(GRADES, safe='')}")
            page.fill("#token_input", stack.mint(TEACHER, "teacher"))
            page.click("#token_submit")
            page.wait_for_url(f"**{GRADES}")
            page.goto(f"{stack.url}{GRADES}classes/{CODE}/assignments/quiz/review?user=ann")
            expect(page.locator("#grading-version")).to_have_text("2")
            expect(page.locator("#grading-counting")).to_have_text(
                "Version 2 counts (the last on time)."
            )
            expect(page.locator("#count-this")).to_be_hidden()
            frame = page.frame_locator("#viewer")
            expect(frame.locator("body")).to_contain_text("answer is 2")

            # version 1, made to count (with a reason, as on the grades page)
            page.select_option("#version-select", str(ids[0]))
            expect(frame.locator("body")).to_contain_text("answer is 1")
            expect(page.locator("#grading-info")).to_contain_text("not the version that counts")
            page.once("dialog", lambda d: d.accept("version 2 was saved by mistake"))
            page.click("#count-this")
            expect(page.locator("#action-alert")).to_contain_text("ann: version 1 counts now")
            expect(page.locator("#grading-counting")).to_have_text(
                "Version 1 counts (chosen by a teacher)."
            )
            expect(page.locator("#grading-info")).to_contain_text(", the version that counts")
            expect(page.locator("#count-default")).to_be_visible()

            # per question: the points are their sum (read-only)
            inputs = page.locator("#grade-questions input[data-question]")
            expect(inputs).to_have_count(2)
            assert page.locator("#grade-points").get_attribute("readonly") is not None
            inputs.nth(0).fill("3")
            inputs.nth(1).fill("5.5")
            expect(page.locator("#grade-points")).to_have_value("8.5")
            page.fill("#grade-feedback", "Q2: units.")
            page.click("#grade-save")
            expect(page.locator("#action-alert")).to_contain_text("Saved the grade of ann")
            assert not errors, errors
        except Exception:
            page.screenshot(path=str(tmp_path / "questions.png"), full_page=True)
            print("screenshot:", tmp_path / "questions.png")
            raise
        finally:
            browser.close()
    data = ted.get(f"{quiz}/students/ann/submissions").json()
    assert data["standing"]["counting_id"] == ids[0] and data["standing"]["why"] == "chosen"
    assert data["standing"]["points"] == 8.5
    v1 = next(v for v in data["submissions"] if v["id"] == ids[0])
    v2 = next(v for v in data["submissions"] if v["id"] == ids[1])
    assert sorted(q["points"] for q in v1["grade"]["questions"].values()) == [3, 5.5]
    assert v2["grade"] is None  # the grade is version 1's
