"""The one web layer in headless Chromium, against the real hub, Traefik and the classes,
files and grades services: every page an admin, a teacher and a student can open (the
hub's pages and the services') shows the same navigation for that role, the brand name
and logo the deployment configured (CLASSHUB_BRAND_NAME / CLASSHUB_BRAND_LOGO), and a
message never covers the page's heading after the page scrolls, and dark mode is one
choice for the hub's pages and the services' alike."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import requests

from common.web.nav import ADMIN, STUDENT, TEACHER, nav_items
from harness.browser import signed_in_page
from harness.classes import Person
from harness.files import files_stack
from harness.stack import wait_for

pytestmark = pytest.mark.integration

BRAND = "Chemistry Lab"
LOGO = (
    b"<svg xmlns='http://www.w3.org/2000/svg' width='64' height='32'>"
    b"<rect width='64' height='32' fill='#0a6'/></svg>"
)
CODE = "web7"
SLUG = "week1"

#: every page of each role (paths below the deployment's URL)
PAGES = {
    STUDENT: [
        "/hub/home",
        "/services/classes/",
        "/services/files/",
        "/services/grades/",
        f"/services/grades/classes/{CODE}",
    ],
    TEACHER: [
        "/hub/home",
        "/services/classes/",
        f"/services/classes/classes/{CODE}",
        f"/services/classes/classes/{CODE}/students/stu/work",
        "/services/files/",
        f"/services/files/classes/{CODE}/material",
        f"/services/files/classes/{CODE}/assignments/{SLUG}",
        "/services/grades/",
        f"/services/grades/classes/{CODE}",
        f"/services/grades/classes/{CODE}/assignments/{SLUG}/review",
    ],
    ADMIN: [
        "/hub/home",
        "/hub/admin",
        "/hub/token",
        "/hub/classhub/sessions",
        "/hub/classhub/accounts",
        "/services/classes/",
        f"/services/classes/classes/{CODE}",
        "/services/files/",
        f"/services/files/classes/{CODE}/material",
        "/services/grades/",
        f"/services/grades/classes/{CODE}",
        f"/services/grades/classes/{CODE}/assignments/{SLUG}/review",
        f"/services/files/classes/{CODE}/assignments/{SLUG}",
        f"/services/classes/classes/{CODE}/students/stu/work",
        # an error page has the same header
        "/services/grades/classes/no-such-class",
    ],
}
PEOPLE = {STUDENT: "stu", TEACHER: "tea", ADMIN: "ada"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    logo = tmp_path_factory.mktemp("brand") / "logo.svg"
    logo.write_bytes(LOGO)
    env = {"CLASSHUB_BRAND_NAME": BRAND, "CLASSHUB_BRAND_LOGO": str(logo)}
    for stack in files_stack(tmp_path_factory.mktemp("web-layer"), env=env):
        health = stack.url + "/services/grades/health"
        wait_for(lambda h=health: requests.get(h, timeout=5).ok, 60, what="grades")
        yield stack


@pytest.fixture(scope="module")
def people(stack):
    r = stack.api("POST", "/classhub/accounts", json={"username": "stu", "role": "student"})
    assert r.status_code == 201, r.text
    stack.create_user("tea")
    admin = Person(stack, "admin", "admin")
    r = admin.post(
        "api/classes", {"code": CODE, "name": "Web", "term": "2026", "teachers": ["tea"]}
    )
    assert r.status_code == 201, r.text
    r = admin.post(f"api/classes/{CODE}/students", {"username": "stu"})
    assert r.status_code == 201, r.text
    # an assignment: its review, starting-files pages are on the list too
    grades = Person(stack, "tea", "teacher", service="/services/grades/")
    r = grades.post(
        f"api/classes/{CODE}/assignments", {"slug": SLUG, "title": "Week 1", "max_points": 10}
    )
    assert r.status_code == 201, r.text


@pytest.fixture
def sign_in(stack, people, chromium):
    """``sign_in(role, **context)``: a new browser of that role's person, signed in with
    a token (on the hub's home page); console and page errors in ``page.problems``."""
    contexts = []

    def open_as(role: str, **options):
        page = signed_in_page(chromium, stack, PEOPLE[role], role, "/hub/home", **options)
        contexts.append(page.context)
        return page

    try:
        yield open_as
    finally:
        for context in contexts:
            context.close()


@contextmanager
def screenshots(tmp_path, page):
    try:
        yield
    except Exception:
        path = tmp_path / "failure.png"
        page.screenshot(path=str(path), full_page=True)
        print("screenshot:", path, "url:", page.url, "problems:", page.problems)
        raise
    assert not page.problems, page.problems


def navigation(page) -> list[tuple[str, str, str]]:
    page.wait_for_selector("#classhub-nav a.nav-link")
    return page.eval_on_selector_all(
        "#classhub-nav a.nav-link",
        "links => links.map(a => [a.id, a.textContent.trim(), a.getAttribute('href')])",
    )


@pytest.mark.parametrize("role", [ADMIN, TEACHER, STUDENT])
def test_every_page_of_a_role_shows_the_same_navigation_and_brand(stack, sign_in, role, tmp_path):
    page = sign_in(role)
    expected = [[i.element_id, i.label, "/" + i.path] for i in nav_items(role)]
    with screenshots(tmp_path, page):
        seen = {}
        for path in PAGES[role]:
            page.goto(stack.url + path)
            seen[path] = navigation(page)
            assert page.inner_text("#classhub-brand").strip() == BRAND, path
            # the configured logo, loaded (the hub serves it at /hub/logo for every page)
            assert page.eval_on_selector("#classhub-logo", "img => img.naturalWidth") > 0, path
            assert page.get_attribute("#classhub-logo", "src") == "/hub/logo", path
            assert page.title().endswith(BRAND), (path, page.title())
            # the same dark-mode button and theme on every page (JupyterHub's darkmode.js)
            assert page.is_visible("#dark-theme-toggle"), path
            assert page.get_attribute("html", "data-bs-theme") in ("light", "dark"), path
        different = {path: nav for path, nav in seen.items() if nav != expected}
        assert not different, (expected, different)
        if role == ADMIN:
            assert [x[0] for x in expected][-3:] == ["nav-sessions", "nav-accounts", "nav-token"]
        else:
            assert "nav-grades" in [x[0] for x in expected]
            assert "nav-admin" not in [x[0] for x in expected]


def test_the_logo_is_the_configured_file(stack, people):
    r = requests.get(stack.url + "/hub/logo", timeout=10)
    assert r.status_code == 200
    assert r.content == LOGO


def test_a_message_never_covers_the_heading_when_the_page_scrolls(stack, sign_in, tmp_path):
    # a short window, so the grades page scrolls
    page = sign_in(TEACHER, viewport={"width": 1000, "height": 420})
    with screenshots(tmp_path, page):
        for path in (f"/services/grades/classes/{CODE}", f"/services/classes/classes/{CODE}"):
            page.goto(stack.url + path)
            page.wait_for_selector("h1")
            page.evaluate(
                "window.classhub.say('danger', 'A long message about what just happened, "
                "which takes the whole width of the page and more words to be sure.')"
            )
            page.wait_for_selector("#action-alert:not([hidden])")
            # scroll so the heading is near the top of the window (where a sticky message
            # bar would sit)
            page.evaluate(
                "window.scrollTo(0, document.querySelector('h1').getBoundingClientRect().top"
                " + window.scrollY - 5)"
            )
            assert page.evaluate("window.scrollY") > 0, "the page did not scroll"
            boxes = page.evaluate(
                """() => {
                  const r = (el) => { const b = el.getBoundingClientRect();
                    return {top: b.top, bottom: b.bottom, left: b.left, right: b.right}; };
                  return {h1: r(document.querySelector('h1')),
                          msg: r(document.getElementById('action-alert'))};
                }"""
            )
            h1, msg = boxes["h1"], boxes["msg"]
            overlap = not (
                msg["bottom"] <= h1["top"]
                or h1["bottom"] <= msg["top"]
                or msg["right"] <= h1["left"]
                or h1["right"] <= msg["left"]
            )
            assert not overlap, boxes
            # what is drawn at the heading's middle is the heading
            on_top = page.evaluate(
                """() => { const h = document.querySelector('h1');
                  const b = h.getBoundingClientRect();
                  const el = document.elementFromPoint(b.left + 5, (b.top + b.bottom) / 2);
                  return !!el && h.contains(el); }"""
            )
            assert on_top, boxes


def test_dark_mode_is_one_choice_for_the_hubs_and_the_services_pages(stack, sign_in, tmp_path):
    page = sign_in(STUDENT)

    def theme():
        return page.get_attribute("html", "data-bs-theme")

    with screenshots(tmp_path, page):
        page.goto(stack.url + "/hub/home")
        before = theme()
        after = "light" if before == "dark" else "dark"
        page.click("#dark-theme-toggle")  # on a hub page
        assert theme() == after
        page.goto(stack.url + "/services/grades/")
        page.wait_for_selector("#classhub-nav")
        assert theme() == after
        page.click("#dark-theme-toggle")  # on a service page
        assert theme() == before
        page.goto(stack.url + "/hub/home")
        assert theme() == before
