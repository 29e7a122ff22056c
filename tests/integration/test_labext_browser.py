"""classhub's JupyterLab extension in Chromium, in a real student's class server (the
classhub/singleuser image) behind the real hub, Traefik, the owner gate, the grades
service, PostgreSQL and SeaweedFS, on one shared origin:

* the tab title and the top bar name the class and whose server it is;
* the Class panel lists the assignment with its due date; a notebook of the assignment
  with a change typed but not saved is handed in with **Submit**: the panel saves it
  first, the grades service takes the folder, the panel lists what was taken, and the
  notebook stored in the handed-in version holds what was on the screen;
* the server stopped through the hub's API while the page is open: a dialog says the
  server was stopped and offers the unsaved notebook, which downloads with the typed text;
* a sign-in elsewhere (the takeover policy) ends the session: the dialog says so; signing
  out in another tab: the dialog says that;
* returned feedback is rendered as Markdown in the panel, sanitised (no script runs), and
  the class material is listed with the teacher's new version beside the student's.

On failure each test saves a screenshot and prints the page's errors."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from urllib.parse import quote

import pytest

from harness.browser import explain_failure, watch_page
from harness.classes import Person

pytestmark = pytest.mark.integration

GRADES = "/services/grades/"
CODE = "bio7"
CLASS_NAME = "Biology 7"
SLUG = "hw1"
NOTEBOOK = f"{CODE}/assignments/{SLUG}/work.ipynb"


def notebook(source: str) -> bytes:
    return json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "cells": [
                {
                    "cell_type": "code",
                    "id": "c1",
                    "metadata": {},
                    "execution_count": None,
                    "outputs": [],
                    "source": source,
                }
            ],
        }
    ).encode()


def iso(seconds_from_now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + seconds_from_now))


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


@pytest.fixture(scope="module")
def assignment(stack):
    """Class bio7 ("Biology 7") with teacher tom and students ana, bob, cat; assignment hw1,
    released, due in a day."""
    for student in ("ana", "bob", "cat"):
        stack.enroll(student, CODE, name=CLASS_NAME)
    stack.enroll("tom", CODE, teacher=True, name=CLASS_NAME)
    tom = Person(stack, "tom", "teacher", service=GRADES)
    r = tom.post(
        f"api/classes/{CODE}/assignments",
        json={
            "slug": SLUG,
            "title": "Homework 1",
            "max_points": 10,
            "release_at": iso(-60),
            "due_at": iso(86400),
            "late_policy": "accept",
        },
    )
    assert r.status_code == 201, r.text
    return tom


@contextmanager
def lab(stack, chromium, tmp_path, user: str, files: dict[str, bytes] | None = None):
    """``user``'s class server started with the assignment's notebook (and ``files``), and
    a browser signed in with a token on that notebook in JupyterLab."""
    stack.spawn(user, CODE)
    stack.write_home(user, CODE, NOTEBOOK, notebook("x = 1"))
    for path, data in (files or {}).items():
        stack.write_home(user, CODE, path, data)
    context = chromium.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    watch_page(page)
    try:
        target = f"/user/{user}/{CODE}/lab/tree/{NOTEBOOK}"
        page.goto(f"{stack.url}/hub/login?next={quote(target, safe='')}")
        page.fill("#token_input", stack.mint(user))
        page.click("#token_submit")
        page.wait_for_url(f"**/user/{user}/{CODE}/lab**", timeout=120_000)
        page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=120_000)
        # the notebook's loading spinner gone (it takes the clicks while it is there)
        page.wait_for_selector(".jp-NotebookPanel .jp-Spinner", state="hidden")
        yield page
    except Exception:
        explain_failure(page, tmp_path / f"failure-{user}.png")
        raise
    finally:
        context.close()


def type_unsaved(page, text: str) -> None:
    """Type ``text`` at the end of the notebook's first cell, leaving it unsaved."""
    page.click(".jp-Notebook .jp-Cell .cm-content")
    page.keyboard.press("Control+End")
    page.keyboard.type(text)
    page.wait_for_selector(".jp-mod-dirty")  # the tab marks unsaved changes


def open_class_panel(page):
    page.click("li[data-id='classhub-class-panel']")
    return page.wait_for_selector(f".classhub-assignment[data-slug='{SLUG}']")


def test_submit_from_the_class_panel_hands_in_what_is_on_screen(
    stack, assignment, chromium, tmp_path
):
    typed = "\nanswer = 'typed on screen 4711'"
    with lab(stack, chromium, tmp_path, "ana") as page:
        # the class and whose server it is, in the title and the top bar
        bar = page.wait_for_selector("#classhub-top-bar")
        assert CLASS_NAME in bar.inner_text() and "your server" in bar.inner_text()
        assert page.title().startswith(f"{CLASS_NAME} | ")

        type_unsaved(page, typed)
        card = open_class_panel(page)
        assert "Homework 1" in card.inner_text()
        assert "Due " in card.inner_text() and "not handed in yet" in card.inner_text()

        card.query_selector(".classhub-submit").click()
        result = page.wait_for_selector(".classhub-result[data-kind='success']:has(ul)")
        shown = result.inner_text()
        assert "Handed in: version 1, on time" in shown, shown
        assert f"Saved first: {NOTEBOOK}" in shown, shown
        assert "work.ipynb" in shown
        problems = list(page.problems)
    assert not problems, problems

    # what the grades service stored is what was on the screen
    tom = assignment
    r = tom.get(f"api/classes/{CODE}/assignments/{SLUG}/students/ana/submissions")
    assert r.status_code == 200, r.text
    (version,) = r.json()["submissions"]
    assert version["version"] == 1 and version["files"] == 1
    r = tom.get(f"api/submissions/{version['id']}/files/work.ipynb")
    assert r.status_code == 200, r.text
    source = "".join(json.loads(r.content)["cells"][0]["source"])
    assert source == "x = 1" + typed


def test_a_stopped_server_says_so_and_offers_the_unsaved_notebook(
    stack, assignment, chromium, tmp_path
):
    typed = "\nunsaved = 'only in the browser 1234'"
    with lab(stack, chromium, tmp_path, "bob") as page:
        type_unsaved(page, typed)
        stack.stop("bob", CODE)  # as a teacher's or an admin's Stop does, through the hub
        # JupyterLab's own "Kernel died unexpectedly" is not shown instead
        dialog = page.wait_for_selector(".jp-Dialog:has-text('Your server was stopped')")
        assert page.locator(".jp-Dialog").count() == 1
        text = dialog.inner_text()
        assert "teacher or an administrator stopped it" in text, text
        assert NOTEBOOK in text, text
        with page.expect_download() as download:
            dialog.query_selector(".classhub-download").click()
        saved = download.value
        assert saved.suggested_filename == "work.ipynb"
        content = json.loads(open(saved.path(), "rb").read())
        assert "".join(content["cells"][0]["source"]) == "x = 1" + typed
        # the bar stays after the dialog is closed
        page.click(".jp-Dialog button:has-text('Stay on this page')")
        assert "Your server was stopped" in page.inner_text("#classhub-session-ended")


def test_a_sign_in_elsewhere_ends_the_session_with_a_dialog(stack, assignment, chromium, tmp_path):
    with lab(stack, chromium, tmp_path, "cat") as page:
        elsewhere = stack.browser("127.0.0.2")
        assert stack.login_token(elsewhere, stack.mint("cat")).status_code == 302
        dialog = page.wait_for_selector(".jp-Dialog:has-text('Your session has ended')")
        text = dialog.inner_text()
        assert "signed in in another browser" in text, text
        assert "Sign in again" in text
        assert page.locator(".jp-Dialog").count() == 1  # not "Kernel died" as well
    stack.stop("cat", CODE)


def test_the_class_panel_renders_feedback_as_markdown_and_lists_the_material(
    stack, assignment, chromium, tmp_path
):
    stack.enroll("dan", CODE, name=CLASS_NAME)
    feedback = (
        b"**Well done**, mind the units.\n\n- point one\n\n"
        b"<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>\n"
    )
    files = {
        f"{CODE}/feedback/{SLUG}/feedback.md": feedback,
        f"{CODE}/material/lesson1.ipynb": notebook("print(1)"),
        f"{CODE}/material/lesson1.teacher-2026-12-06.ipynb": notebook("print(2)"),
    }
    with lab(stack, chromium, tmp_path, "dan", files) as page:
        card = open_class_panel(page)
        box = card.wait_for_selector(".classhub-feedback")
        assert box.query_selector("strong").inner_text() == "Well done"
        assert box.query_selector("li").inner_text() == "point one"
        assert box.query_selector("script") is None
        page.wait_for_timeout(500)  # an onerror would have run by now
        assert page.evaluate("window.pwned") is None
        material = page.wait_for_selector(".classhub-material li button")
        names = page.eval_on_selector_all(
            ".classhub-material li", "items => items.map(li => li.textContent)"
        )
        assert any(n.startswith("lesson1.ipynb") for n in names), names
        teacher = [n for n in names if n.startswith("lesson1.teacher-2026-12-06.ipynb")]
        assert teacher and "your teacher's new version, beside yours" in teacher[0], names
        assert material is not None
    stack.stop("dan", CODE)


def test_signing_out_in_another_tab_says_so(stack, assignment, chromium, tmp_path):
    stack.enroll("eve", CODE, name=CLASS_NAME)
    with lab(stack, chromium, tmp_path, "eve") as page:
        other = page.context.new_page()
        other.goto(f"{stack.url}/hub/logout")
        dialog = page.wait_for_selector(".jp-Dialog:has-text('You are signed out')", timeout=60_000)
        assert "signed out (in this or another tab)" in dialog.inner_text()
        assert page.locator(".jp-Dialog").count() == 1
    stack.stop("eve", CODE)
