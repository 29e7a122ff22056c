"""classhub's JupyterLab extension in Chromium with per-user origins
(CLASSHUB_SERVERS_DOMAIN): the student's class server on a host of its own
(``<user>.classhub-servers.localhost``), the hub and the grades service on
``classhub.localhost``, behind the real hub, Traefik, PostgreSQL and SeaweedFS.

There the page is another site than the services, so the Class panel must not call the
grades service: it lists the assignment folders from disk, and **Submit** saves the
assignment's open documents, says so and opens the class's Grades page on the hub's host
in a new tab, where the student hands the folder in. Checked:

* JupyterLab opens on the student's own host; the Class panel names the class and "your
  server"; the assignment is listed by its folder name (from disk, not the grades
  service's title) and without an error;
* a notebook of the assignment with a change typed but not saved, then Submit: the
  message, the notebook on disk in the container holds what was on the screen, and a new
  tab opens the Grades page of the class on the hub's host (in a Chromium with its popup
  blocker on, as a student's is), where Submit hands in that version;
* the JupyterLab page never requested anything under ``/services/grades/`` on its own
  host, nor any ``/services/grades/api`` URL on any host;
* a save slower than the 5 s after a click in which Chromium lets a page open a tab: the
  Grades page opens all the same (the tab is opened by the click, then sent there).

On failure the test saves a screenshot of each tab and prints its errors; it fails on any
uncaught error of a page."""

from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import requests

from harness.browser import CHROMIUM, CHROMIUM_ARGS, signed_in_page, watch_page
from harness.files import TEST_FILES_ENV
from harness.stack import Stack, running_stack, wait_for
from hub.origins import user_host
from tests.integration.test_grades_pages import screenshots
from tests.integration.test_labext_browser import (
    CLASS_NAME,
    CODE,
    GRADES,
    NOTEBOOK,
    SLUG,
    assignment,
    notebook,
    open_class_panel,
    type_unsaved,
)
from tests.integration.test_origins import SERVERS

pytestmark = pytest.mark.integration
FIXTURES = (assignment,)  # the class bio7 and its assignment hw1 (test_labext_browser.py)

STUDENT = "ana"
WAIT = 60_000  # ms: a page behind the OAuth flow on a busy machine


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A stack of this file's own: per-user origins need their own hub settings; with the
    classes, files and grades services."""
    new = Stack(
        tmp_path_factory.mktemp("labext-origins"),
        servers_domain=SERVERS,
        with_files=True,
        env=TEST_FILES_ENV,
    )
    for stack in running_stack(new):
        health = stack.url + GRADES + "health"
        wait_for(lambda h=health: requests.get(h, timeout=5).ok, 60, what="grades service healthy")
        yield stack


@pytest.fixture(scope="module")
def browser():
    """Chromium with its popup blocker on, as in a student's browser (Playwright turns it
    off by default): the Grades tab must open from the click on Submit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            ignore_default_args=["--disable-popup-blocking"],
        )
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def lab_on_own_host(stack, browser, tmp_path, user: str):
    """``user``'s class server started with the assignment's notebook; a browser signed in
    at the hub, then on that notebook in JupyterLab on the user's own host. ``page.urls``
    lists every request the JupyterLab page made, from its first one on."""
    stack.spawn(user, CODE)
    stack.write_home(user, CODE, NOTEBOOK, notebook("x = 1"))
    page = signed_in_page(browser, stack, user, "student", "/hub/home")
    page.set_default_timeout(60_000)
    page.urls = []
    page.on("request", lambda request: page.urls.append(request.url))
    try:
        with screenshots(tmp_path, page):  # and no page error at the end
            page.goto(stack.server_url(user, CODE) + f"lab/tree/{NOTEBOOK}")
            page.wait_for_url(f"**/user/{user}/{CODE}/lab**", timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=120_000)
            # the notebook's loading spinner gone (it takes the clicks while it is there)
            page.wait_for_selector(".jp-NotebookPanel .jp-Spinner", state="hidden")
            yield page
    finally:
        page.context.close()


def on_disk(stack, user: str, path: str) -> bytes:
    data = stack.read_home(user, CODE, path)
    assert data is not None, f"{path} is not in {user}'s home"
    return data


def test_submit_saves_and_opens_the_grades_page_on_the_hub_host(
    stack, assignment, browser, tmp_path
):
    from playwright.sync_api import expect

    typed = "\nanswer = 'typed on the own host 5813'"
    own_host = user_host(STUDENT, SERVERS)
    grades_page = f"{stack.url}{GRADES}classes/{CODE}"
    with lab_on_own_host(stack, browser, tmp_path, STUDENT) as page:
        assert urlsplit(page.url).hostname == own_host != stack.hub_host
        bar = page.wait_for_selector("#classhub-top-bar")
        assert CLASS_NAME in bar.inner_text() and "your server" in bar.inner_text()

        type_unsaved(page, typed)
        on_screen = page.inner_text(".jp-Notebook .jp-Cell .cm-content")
        assert on_screen == "x = 1" + typed, on_screen

        # the Class panel: the class, "your server", the assignment folder from disk
        open_class_panel(page)
        panel = page.locator("#classhub-class-panel")
        card = panel.locator(f".classhub-assignment[data-slug='{SLUG}']")
        expect(panel.locator("h2")).to_have_text(CLASS_NAME)
        expect(panel.locator(".classhub-who")).to_have_text(f"Class {CODE} · your server")
        # the folder's name: the grades service's title ("Homework 1") is not known here
        expect(card.locator("h4")).to_have_text(SLUG)
        expect(card.locator(".classhub-due")).to_have_count(0)  # nor the due date
        expect(panel.locator(".classhub-message")).to_be_hidden()  # no "did not answer"

        with page.context.expect_page() as opened:
            card.locator(".classhub-submit").click()
        expect(card.locator(".classhub-result")).to_have_text(
            f"Saved {NOTEBOOK}. Hand it in on the Grades page (opened in a new tab).", timeout=WAIT
        )

        # on disk in the container: what was on the screen
        saved = json.loads(on_disk(stack, STUDENT, NOTEBOOK))
        assert "".join(saved["cells"][0]["source"]) == on_screen

        # the new tab: the class's Grades page on the hub's host, signed in, with the
        # assignment; its Submit hands in the saved folder
        grades = watch_page(opened.value)
        with screenshots(tmp_path / "grades-tab", grades):
            card_there = grades.locator(f"article.assignment[data-slug='{SLUG}']")
            expect(card_there).to_contain_text("Homework 1", timeout=WAIT)
            assert grades.url == grades_page, grades.url
            card_there.locator("button[data-action='submit']").click()
            expect(card_there.locator("[data-field='result']")).to_contain_text(
                "Handed in: version 1, on time", timeout=WAIT
            )

        urls = list(page.urls)

    # the JupyterLab page called its own server (the listener heard it) and never the
    # grades service: not on its own host, and not its API anywhere
    assert any(
        urlsplit(u).hostname == own_host and urlsplit(u).path.endswith("/classhub/api/context")
        for u in urls
    ), urls
    on_own_host = [
        u for u in urls if urlsplit(u).hostname == own_host and GRADES in urlsplit(u).path
    ]
    assert not on_own_host, on_own_host
    api = [u for u in urls if f"{GRADES}api" in urlsplit(u).path]
    assert not api, api

    # what the grades service stored is what was on the screen
    r = assignment.get(f"api/classes/{CODE}/assignments/{SLUG}/students/{STUDENT}/submissions")
    assert r.status_code == 200, r.text
    (version,) = r.json()["submissions"]
    r = assignment.get(f"api/submissions/{version['id']}/files/work.ipynb")
    assert r.status_code == 200, r.text
    assert "".join(json.loads(r.content)["cells"][0]["source"]) == on_screen


def test_a_slow_save_still_opens_the_grades_page(stack, assignment, browser, tmp_path):
    """A save that takes longer than the few seconds after a click in which a browser lets
    a page open a tab (5 s in Chromium): the tab, opened by the click itself, still goes to
    the Grades page once the notebook is saved."""
    from playwright.sync_api import expect

    typed = "\nslow = 'saved after six seconds 2718'"
    with lab_on_own_host(stack, browser, tmp_path, "bob") as page:
        type_unsaved(page, typed)

        def slow_save(route):
            if route.request.method == "PUT":
                time.sleep(6)  # the slow server being simulated, not a wait for something
            route.continue_()

        page.route("**/api/contents/**", slow_save)
        open_class_panel(page)
        card = page.locator(f"#classhub-class-panel .classhub-assignment[data-slug='{SLUG}']")
        with page.context.expect_page() as opened:
            card.locator(".classhub-submit").click()
        expect(card.locator(".classhub-result")).to_have_text(
            f"Saved {NOTEBOOK}. Hand it in on the Grades page (opened in a new tab).", timeout=WAIT
        )
        saved = json.loads(on_disk(stack, "bob", NOTEBOOK))
        assert "".join(saved["cells"][0]["source"]) == "x = 1" + typed

        grades = watch_page(opened.value)
        with screenshots(tmp_path / "grades-tab", grades):
            expect(grades.locator(f"article.assignment[data-slug='{SLUG}']")).to_contain_text(
                "Homework 1", timeout=WAIT
            )
            assert grades.url == f"{stack.url}{GRADES}classes/{CODE}", grades.url


def test_a_teacher_in_a_students_server_sees_whose_it_is(stack, assignment, browser, tmp_path):
    """With per-user origins a teacher may open their student's server: the tab title and
    a highlighted top bar say whose server it is and who is looking, and the Class panel's
    Submit is off (only the student hands in their work)."""
    from playwright.sync_api import expect

    stack.enroll("flo", CODE, name=CLASS_NAME)  # a student of their own: no server yet
    # a student once signed in (the classhub-student role): teachers reach students only
    signed_in_page(browser, stack, "flo", "student", "/hub/home").context.close()
    stack.spawn("flo", CODE)
    stack.write_home("flo", CODE, NOTEBOOK, notebook("x = 2"))
    page = signed_in_page(browser, stack, "tom", "teacher", "/hub/home")
    page.set_default_timeout(60_000)
    try:
        with screenshots(tmp_path, page):
            page.goto(stack.server_url("flo", CODE) + "lab")
            # the hub asks before it opens someone else's server
            page.wait_for_url("**/oauth2/authorize**", timeout=WAIT)
            page.click("form button[type=submit], form input[type=submit]")
            page.wait_for_url(f"**/user/flo/{CODE}/lab**", timeout=120_000)
            assert urlsplit(page.url).hostname == user_host("flo", SERVERS)
            bar = page.wait_for_selector("#classhub-top-bar.classhub-not-yours")
            text = bar.inner_text()
            assert "flo's server" in text and "you are tom" in text, text
            expect(page).to_have_title(
                re.compile(rf"^flo's server · {re.escape(CLASS_NAME)} \| "), timeout=WAIT
            )
            open_class_panel(page)
            submit = page.locator(f".classhub-assignment[data-slug='{SLUG}'] .classhub-submit")
            expect(submit).to_be_disabled()
            assert submit.get_attribute("title") == "Only flo can hand in their work"
    finally:
        page.context.close()
        stack.stop("flo", CODE)
