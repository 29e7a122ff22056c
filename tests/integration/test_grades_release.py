"""Releases of assignments' starting files, driven by ``release_at``, against the real hub,
Traefik, PostgreSQL, SeaweedFS, nx-27017 and a real student container: an assignment
scheduled a few seconds ahead is neither visible nor pushed before its time, and its
starting files land in a running student's ``~/<code>/assignments/<slug>`` after it,
exactly once; "Release again now" pushes files added since without overwriting a student's
edit; an assignment without starting files pushes nothing. The files service's release
path refuses students, teachers who ask for what only services may, unlisted services
and services without the hub scope. The teacher's page shows the state and its "Release
again now" button works (headless Chromium)."""

from __future__ import annotations

import copy
import json
import os
import secrets
import signal
import time

import pytest
import requests

from harness.classes import Person, assert_error
from harness.files import FILES, TEST_FILES_ENV, put_to_store, upload
from harness.stack import Stack, running_stack, wait_for

pytestmark = pytest.mark.integration

GRADES = "/services/grades/"
CODE = "geo7"
INTRUDER_TOKEN = secrets.token_hex(32)
# a service the hub lets open the files service, but that the files service does not list
EXTRA_CONFIG = f"""
c.JupyterHub.services.append({{"name": "intruder", "api_token": {INTRUDER_TOKEN!r}}})
c.JupyterHub.load_roles.append({{
    "name": "intruder",
    "scopes": ["access:services!service=files"],
    "services": ["intruder"],
}})
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    new = Stack(
        tmp_path_factory.mktemp("release"),
        with_files=True,
        env={
            **TEST_FILES_ENV,
            "CLASSHUB_GRADES_RELEASE_RETRY": "2",
            "CLASSHUB_FILES_TIMEOUT": "3",
        },
        extra_config=EXTRA_CONFIG,
    )
    for stack in running_stack(new):
        for service in (FILES, GRADES):
            health = stack.url + service + "health"
            wait_for(lambda h=health: requests.get(h, timeout=5).ok, 90, what=service)
        stack.enroll("tara7", CODE, teacher=True)
        stack.enroll("tim7", CODE, teacher=True)  # in a browser
        stack.enroll("sam7", CODE)
        stack.enroll("sue7", CODE)
        stack.enroll("olaf7", "other7")
        yield stack


def grades(stack, name, role="student") -> Person:
    return Person(stack, name, role, service=GRADES)


def also_files(stack, who: Person) -> Person:
    """The same browser signed in at the files service too (one hub session per person)."""
    r = who.browser.get(stack.url + FILES, timeout=30)
    assert r.status_code == 200 and r.json()["name"] == who.name, r.text
    other = copy.copy(who)
    other.service = FILES
    return other


def as_service(stack, token, method, path, **kwargs) -> requests.Response:
    return requests.request(
        method,
        stack.url + FILES + path,
        headers={"Authorization": f"token {token}"},
        timeout=30,
        allow_redirects=False,
        **kwargs,
    )


def iso(seconds_from_now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + seconds_from_now))


def release_pushes(teacher_files: Person, slug: str) -> list[dict]:
    r = teacher_files.get(f"api/classes/{CODE}/pushes?releases=1")
    assert r.status_code == 200, r.text
    return [p for p in r.json()["pushes"] if p["assignment"] == slug]


@pytest.fixture(scope="module")
def tara(stack):
    return grades(stack, "tara7", "teacher")


@pytest.fixture(scope="module")
def tara_files(stack, tara):
    return also_files(stack, tara)


def test_release_at_pushes_the_starting_files_once_at_its_time(stack, tara, tara_files):
    sam = grades(stack, "sam7")
    stack.spawn("sam7", CODE)
    upload(tara_files, f"class/{CODE}/assignments", "hw1/start.py", b"print('start')\n")
    upload(tara_files, f"class/{CODE}/assignments", "hw1/data/table.csv", b"a,b\n1,2\n")
    body = {"slug": "hw1", "title": "Homework 1", "max_points": 10, "release_at": iso(12)}
    r = tara.post(f"api/classes/{CODE}/assignments", json=body)
    assert r.status_code == 201, r.text

    # before its time: not visible, not pushed, the page says when
    state = tara.get(f"api/classes/{CODE}/assignments/hw1/release").json()
    assert state["release"]["state"] == "scheduled"
    assert [f["path"] for f in state["starting_files"]] == ["data/table.csv", "start.py"]
    assert state["release"]["upload_url"] == f"{FILES}classes/{CODE}/assignments/hw1"
    assert "hw1" not in [
        a["slug"] for a in sam.get(f"api/classes/{CODE}/assignments").json()["assignments"]
    ]
    assert stack.read_home("sam7", CODE, f"{CODE}/assignments/hw1/start.py") is None
    assert release_pushes(tara_files, "hw1") == []

    # after it: in sam's running server, without anyone doing anything
    wait_for(
        lambda: (
            stack.read_home("sam7", CODE, f"{CODE}/assignments/hw1/start.py") == b"print('start')\n"
        ),
        90,
        interval=0.5,
        what="the starting files in sam's server",
    )
    assert stack.read_home("sam7", CODE, f"{CODE}/assignments/hw1/data/table.csv") == b"a,b\n1,2\n"
    assert "hw1" in [
        a["slug"] for a in sam.get(f"api/classes/{CODE}/assignments").json()["assignments"]
    ]
    time.sleep(4)  # a few more rounds of the service's loop
    (push,) = release_pushes(tara_files, "hw1")  # exactly once
    assert push["created_by"] == "grades" and push["id"].endswith("-1")
    state = tara.get(f"api/classes/{CODE}/assignments/hw1/release").json()
    assert state["release"]["state"] == "released" and state["release"]["files"] == 2
    assert state["release"]["push_id"] == push["id"]
    assert state["release"]["push_url"] == f"{FILES}classes/{CODE}/material#push={push['id']}"
    listed = tara.get(f"api/classes/{CODE}/assignments").json()["assignments"]
    assert next(a for a in listed if a["slug"] == "hw1")["release"]["state"] == "released"
    # sue never started the class: no home yet, the push waits for its first start
    report = tara_files.get(f"api/classes/{CODE}/pushes/{push['id']}").json()
    statuses = {s["user"]: s["status"] for s in report["students"]}
    assert statuses == {"sam7": "delivered", "sue7": "waiting"}


def test_release_again_pushes_new_files_and_keeps_the_students_edits(stack, tara, tara_files):
    stack.write_home("sam7", CODE, f"{CODE}/assignments/hw1/start.py", b"print('mine')\n")
    upload(tara_files, f"class/{CODE}/assignments", "hw1/hint.md", b"# hint\n")
    upload(tara_files, f"class/{CODE}/assignments", "hw1/start.py", b"print('v2')\n")
    r = tara.post(f"api/classes/{CODE}/assignments/hw1/release")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["outcome"] == "pushed" and answer["release"]["state"] == "released"
    assert answer["release"]["push_id"].endswith("-2") and answer["release"]["files"] == 3
    wait_for(
        lambda: stack.read_home("sam7", CODE, f"{CODE}/assignments/hw1/hint.md") == b"# hint\n",
        60,
        interval=0.5,
        what="the file added since, in sam's server",
    )
    assert stack.read_home("sam7", CODE, f"{CODE}/assignments/hw1/start.py") == b"print('mine')\n"
    assert len(release_pushes(tara_files, "hw1")) == 2


def test_release_now_before_its_date_and_an_assignment_without_files(stack, tara, tara_files):
    body = {"slug": "hw2", "title": "Homework 2", "max_points": 5, "release_at": iso(86400)}
    assert tara.post(f"api/classes/{CODE}/assignments", json=body).status_code == 201
    upload(tara_files, f"class/{CODE}/assignments", "hw2/q.txt", b"question\n")
    r = tara.post(f"api/classes/{CODE}/assignments/hw2/release")
    assert r.status_code == 200 and r.json()["outcome"] == "pushed", r.text
    assert abs(time.time() - _ts(r.json()["release"]["release_at"])) < 30  # release_at = now
    wait_for(
        lambda: stack.read_home("sam7", CODE, f"{CODE}/assignments/hw2/q.txt") == b"question\n",
        60,
        interval=0.5,
        what="hw2 released now",
    )

    # no starting files: no push, and the page says so
    body = {"slug": "essay", "title": "Essay", "max_points": 5}
    assert tara.post(f"api/classes/{CODE}/assignments", json=body).status_code == 201

    def empty():
        state = tara.get(f"api/classes/{CODE}/assignments/essay/release").json()
        return state if state["release"]["state"] == "no_files" else None

    state = wait_for(empty, 30, interval=0.5, what="the essay released without files")
    assert state["starting_files"] == [] and state["release"]["push_id"] is None
    assert release_pushes(tara_files, "essay") == []


def test_files_service_down_the_release_waits_and_is_made_once_back(stack, tara, tara_files):
    upload(tara_files, f"class/{CODE}/assignments", "hw3/a.txt", b"a\n")
    pid = stack.service_pid("files")
    os.kill(pid, signal.SIGSTOP)  # it answers nothing: every call runs out of time
    try:
        body = {"slug": "hw3", "title": "Homework 3", "max_points": 5}
        assert tara.post(f"api/classes/{CODE}/assignments", json=body).status_code == 201

        def failed():
            state = tara.get(f"api/classes/{CODE}/assignments/hw3/release").json()
            return state if state["release"]["state"] == "failed" else None

        state = wait_for(failed, 60, interval=1, what="the release failed while files is down")
        assert "files service is unreachable" in state["release"]["error"]
        assert state["starting_files"] is None and "unreachable" in state["files_error"]
        listed = tara.get(f"api/classes/{CODE}/assignments").json()["assignments"]
        assert next(a for a in listed if a["slug"] == "hw3")["release"]["state"] == "failed"
    finally:
        os.kill(pid, signal.SIGCONT)

    def released():
        state = tara.get(f"api/classes/{CODE}/assignments/hw3/release").json()
        return state if state["release"]["state"] == "released" else None

    state = wait_for(released, 60, interval=1, what="the release made once files is back")
    assert state["release"]["error"] is None and state["starting_files"][0]["path"] == "a.txt"
    wait_for(
        lambda: stack.read_home("sam7", CODE, f"{CODE}/assignments/hw3/a.txt") == b"a\n",
        60,
        interval=0.5,
        what="hw3's starting file in sam's server",
    )
    time.sleep(4)
    assert len(release_pushes(tara_files, "hw3")) == 1


def _ts(text: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_starting_files_are_uploaded_from_the_assignment_editor(stack, tara, tara_files):
    body = {"slug": "hw4", "title": "Homework 4", "max_points": 5, "release_at": iso(86400)}
    assert tara.post(f"api/classes/{CODE}/assignments", json=body).status_code == 201
    path = f"api/classes/{CODE}/assignments/hw4/starting-files"
    data = b'{"cells": [], "nbformat": 4}'
    r = tara.post(path, json={"path": "start.ipynb", "size": len(data)})
    assert r.status_code == 200, r.text
    signed = r.json()
    assert set(signed) == {"id", "method", "url", "headers"}
    assert signed["url"].startswith(stack.url)  # signed for the browser's address
    stored = put_to_store(signed, data)
    assert stored.status_code == 200, stored.text
    r = tara.post(f"{path}/{signed['id']}")
    assert r.status_code == 200 and r.json() == {"path": "hw4/start.ipynb", "size": len(data)}
    state = tara.get(f"api/classes/{CODE}/assignments/hw4/release").json()
    assert [f["path"] for f in state["starting_files"]] == ["start.ipynb"]
    assert state["release"]["state"] == "scheduled" and state["push"] is None
    # the same bytes in the files service's teachers-only area
    listed = tara_files.get(f"api/files/class/{CODE}/assignments?folder=hw4").json()["files"]
    assert [f["path"] for f in listed] == ["hw4/start.ipynb"]

    # what the files service refuses reaches the teacher as it is, never a 500 or a 502
    assert_error(tara.post(path, json={"path": "big.bin", "size": 5 << 20}), 413)
    assert_error(tara.post(path, json={"path": "../escape.txt", "size": 1}), 400)
    assert_error(tara.post(path, json={"path": "x.txt", "size": -1}), 400)
    assert_error(tara.post(path, json={"path": "x.txt"}), 400)
    assert_error(tara.post(f"{path}/{'ab' * 12}"), 404)
    # students and outsiders cannot
    sam, olaf = grades(stack, "sam7"), grades(stack, "olaf7")
    assert_error(sam.post(path, json={"path": "x.txt", "size": 1}), 403)
    assert_error(olaf.post(path, json={"path": "x.txt", "size": 1}), 404)
    assert_error(sam.post(f"{path}/{signed['id']}"), 403)
    assert_error(tara.post(f"api/classes/{CODE}/assignments/nope/starting-files", json={}), 404)
    # another service may not use the files service's upload path, even for an assignment
    upload_body = {
        "path": "hw4/evil.txt",
        "size": 1,
        "for": "tara7",
        "host": "example.org",
        "secure": False,
    }
    uploads = f"api/files/class/{CODE}/assignments/uploads"
    r = as_service(stack, INTRUDER_TOKEN, "POST", uploads, json=upload_body)
    assert_error(r, 403, "release_services")


def test_release_routes_refuse_what_they_must(stack, tara):
    sam, olaf = grades(stack, "sam7"), grades(stack, "olaf7")
    assert_error(sam.post(f"api/classes/{CODE}/assignments/hw1/release"), 403)
    assert_error(sam.get(f"api/classes/{CODE}/assignments/hw1/release"), 403)
    assert_error(olaf.post(f"api/classes/{CODE}/assignments/hw1/release"), 404)
    assert_error(olaf.get(f"api/classes/{CODE}/assignments/hw1/release"), 404)
    assert_error(tara.post(f"api/classes/{CODE}/assignments/nope/release"), 404)
    assert_error(tara.get(f"api/classes/{CODE}/assignments/Bad..Slug/release"), 400)
    assert_error(tara.post(f"api/classes/{CODE}/assignments/hw1/release", json={"at": "x"}), 400)
    assert_error(tara.post("api/classes/nope7/assignments/hw1/release"), 404)


def test_the_files_release_path_is_for_the_listed_service_only(stack, tara, tara_files):
    push_id = tara_files.get(f"api/classes/{CODE}/pushes?releases=1").json()["pushes"][0]["id"]
    release = {"assignment": "hw1", "release_id": "release-" + "ab" * 16 + "-9"}
    # a student: no release, no starting files, no push
    sue_files = also_files(stack, grades(stack, "sue7"))
    assert_error(sue_files.post(f"api/classes/{CODE}/pushes", json={"assignment": "hw1"}), 403)
    assert_error(sue_files.get(f"api/files/class/{CODE}/assignments"), 404)
    assert_error(sue_files.get(f"api/classes/{CODE}/pushes/{push_id}"), 403)
    # a teacher may not choose a push id (only a release service may)
    assert_error(tara_files.post(f"api/classes/{CODE}/pushes", json=release), 400)
    # a service the hub lets in, but not in FilesApp.release_services
    for method, path, body in [
        ("GET", f"api/files/class/{CODE}/assignments", None),
        ("POST", f"api/classes/{CODE}/pushes", release),
        ("POST", f"api/classes/{CODE}/pushes", {}),  # refused before the body is read
        ("GET", f"api/classes/{CODE}/pushes/{push_id}", None),
    ]:
        r = as_service(stack, INTRUDER_TOKEN, method, path, json=body)
        assert_error(r, 403, "release_services")
        # and a service without the hub's access:services!service=files
        assert_error(as_service(stack, stack.token, method, path, json=body), 403)
    # the rest of the files service is for people
    for method, path in [
        ("GET", "api/files/me"),
        ("GET", f"api/files/class/{CODE}"),
        ("GET", f"api/classes/{CODE}/pushes"),
        ("POST", f"api/files/class/{CODE}/assignments/uploads"),
    ]:
        assert_error(as_service(stack, INTRUDER_TOKEN, method, path, json={}), 403)
    assert release["release_id"] not in [p["id"] for p in release_pushes(tara_files, "hw1")]


# ----------------------------------------------------------------------------- the pages


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    from harness.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_the_teacher_page_shows_the_release_and_releases_again(stack, chromium, tara, tmp_path):
    from urllib.parse import quote

    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems = []
    page.on("dialog", lambda dialog: dialog.accept())
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    try:
        page.goto(f"{stack.url}/hub/login?next={quote(GRADES, safe='')}")
        page.fill("#token_input", stack.mint("tim7", "teacher"))
        page.click("#token_submit")
        page.wait_for_url(f"**{GRADES}")
        page.goto(f"{stack.url}{GRADES}classes/{CODE}")
        row = page.locator("#assignments tr[data-slug=hw1]")
        row.wait_for()
        assert "released" in row.inner_text()
        row.locator("[data-action=edit]").click()
        page.wait_for_selector("#release-state:has-text('Released at')")
        files = page.inner_text("#starting-files")
        assert "start.py" in files and "hint.md" in files and "data/table.csv" in files
        assert page.inner_text("#release-now") == "Release again now"
        link = page.get_attribute("#starting-files-link", "href")
        assert link == f"{FILES}classes/{CODE}/assignments/hw1"
        push_link = page.get_attribute("#release-push-link", "href")
        assert push_link.startswith(f"{FILES}classes/{CODE}/material#push=release-")

        page.click("#release-now")
        page.wait_for_selector("#action-alert:has-text('being pushed to every student')")
        page.wait_for_selector("#release-state:has-text('Released at')")
        state = tara.get(f"api/classes/{CODE}/assignments/hw1/release").json()["release"]
        assert state["push_id"].endswith("-3") and state["state"] == "released"
        assert page.get_attribute("#release-push-link", "href").endswith(state["push_id"])

        # the push's report on the files service's page
        page.click("#release-push-link")
        page.wait_for_selector("#push-report:not([hidden]) #report-students tr[data-user=sam7]")
        # but the material push history does not list releases
        page.wait_for_selector("#pushes-empty:has-text('No pushes yet.')")
        assert page.locator(f"#pushes tr[data-push='{state['push_id']}']").count() == 0
        assert page.is_hidden("#status-alert")

        # the starting files' page: upload one more file into the assignment's folder
        page.goto(stack.url + link)
        page.wait_for_selector("#files tr[data-path='hw1/start.py']")
        page.set_input_files(
            "#upload-input",
            files=[{"name": "more.txt", "mimeType": "text/plain", "buffer": b"more\n"}],
        )
        page.click("#upload-files [type=submit]")
        page.wait_for_selector("#files tr[data-path='hw1/more.txt']")
        names = [
            f["path"]
            for f in tara.get(f"api/classes/{CODE}/assignments/hw1/release").json()[
                "starting_files"
            ]
        ]
        assert "more.txt" in names
        bad = [p for p in problems if "Content Security Policy" in p or "page error" in p]
        assert not bad, bad
    except Exception:
        path = tmp_path / "release-page.png"
        page.screenshot(path=str(path), full_page=True)
        print("screenshot:", path, page.url, problems)
        raise
    finally:
        context.close()


#: a starting notebook whose level-2 headings are the questions
Q5 = json.dumps(
    {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "id": "a", "metadata": {}, "source": "## Part A (3 points)"},
            {
                "cell_type": "code",
                "id": "b",
                "metadata": {},
                "outputs": [],
                "execution_count": None,
                "source": "x = 1",
            },
            {"cell_type": "markdown", "id": "c", "metadata": {}, "source": "## Part B (2 points)"},
        ],
    }
).encode()


def test_the_editor_uploads_starting_files_and_says_what_students_have(
    stack, chromium, tara, tmp_path
):
    from urllib.parse import quote

    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems = []
    page.on("dialog", lambda dialog: dialog.accept())
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    try:
        page.goto(f"{stack.url}/hub/login?next={quote(GRADES, safe='')}")
        page.fill("#token_input", stack.mint("tim7", "teacher"))
        page.click("#token_submit")
        page.wait_for_url(f"**{GRADES}")
        page.goto(f"{stack.url}{GRADES}classes/{CODE}")
        page.wait_for_selector("#assignments tr[data-slug=hw1]")
        # create an assignment released tomorrow: the editor stays on it and says what next
        page.fill("#assignment-slug", "hw5")
        page.fill("#assignment-title", "Homework 5")
        tomorrow = time.strftime("%Y-%m-%dT09:00", time.localtime(time.time() + 86400))
        page.fill("#assignment-release", tomorrow)
        page.click("#assignment-save")
        page.wait_for_selector("#editor-next:not([hidden]):has-text('upload the starting files')")
        page.wait_for_selector("#release-state:has-text('Scheduled for')")
        assert page.inner_text("#release-students") == "Students have nothing of it yet."
        assert not page.is_hidden("#release-box")

        # upload two starting files from the editor itself
        page.set_input_files(
            "#starting-files-input",
            files=[
                {"name": "start5.py", "mimeType": "text/x-python", "buffer": b"print(5)\n"},
                {"name": "notes5.md", "mimeType": "text/markdown", "buffer": b"# five\n"},
                {"name": "q5.ipynb", "mimeType": "application/x-ipynb+json", "buffer": Q5},
            ],
        )
        page.click("#starting-files-upload")
        page.wait_for_selector("#action-alert:has-text('Uploaded 3 starting files')")
        page.wait_for_selector("#starting-files:has-text('start5.py')")
        assert "notes5.md" in page.inner_text("#starting-files")

        # questions imported from the starting notebook, read through the files service
        page.wait_for_selector("#questions-notebook option[value='q5.ipynb']", state="attached")
        page.select_option("#questions-notebook", "q5.ipynb")
        page.select_option("#questions-by", "heading")
        page.click("#questions-import")
        page.wait_for_selector("#action-alert:has-text('Imported 2 questions')")
        labels = page.eval_on_selector_all(
            "#questions tbody tr [data-field=label]", "inputs => inputs.map(i => i.value)"
        )
        points = page.eval_on_selector_all(
            "#questions tbody tr [data-field=points]", "inputs => inputs.map(i => i.value)"
        )
        assert [label.split(" (")[0] for label in labels] == ["Part A", "Part B"], labels
        assert points == ["3", "2"], points

        # release now: the counts say who has them (sam7 runs; sue7 never started)
        page.click("#release-now")
        page.wait_for_selector("#release-students:has-text('1 delivered')", timeout=60_000)
        text = page.inner_text("#release-students")
        assert "1 waiting" in text, text
        assert page.get_attribute("#release-students", "data-delivered") == "1"
        assert stack.read_home("sam7", CODE, f"{CODE}/assignments/hw5/start5.py") == b"print(5)\n"
        assert not problems, problems
    except Exception:
        path = tmp_path / "editor-page.png"
        page.screenshot(path=str(path), full_page=True)
        print("screenshot:", path, page.url, problems)
        raise
    finally:
        context.close()
