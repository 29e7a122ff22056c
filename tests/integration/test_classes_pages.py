"""The classes service's pages in headless Chromium, against the real hub, Docker, Traefik
and nx-27017: a student's "My classes" (exactly their classes, launch, JupyterLab, states
refreshed without reloading), a teacher's class page (roster, start/stop, opening a
student's server, CSV import with its per-row report), the 403 pages, the admin's
"Create class" form, settings and archiving, and the pages while MongoDB is down.

On failure each test saves a screenshot and prints its path."""

from __future__ import annotations

from contextlib import contextmanager
from urllib.parse import quote

import pytest

from harness.classes import (
    SERVICE,
    Person,
    members,
    wait_healthy,
)
from harness.stack import start_mongo

pytestmark = pytest.mark.integration

UNREACHABLE = "the classes database is unreachable; try again shortly"


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


@pytest.fixture(scope="module")
def api(stack):
    """The classes API as an admin (set-up and checks; never signed in in a browser):
    bio12 (teacher tina12; sam12, sue12), chem12 (teacher tom12; sam12), geo12 (teacher
    tom12; sid12)."""
    for name in ("tina12", "tom12"):
        stack.create_user(name)
    for name in (
        "sam12",
        "sue12",
        "sid12",
        "uma12",
        "ulf12",
    ):  # students: teachers enrol only those
        r = stack.api("POST", "/classhub/accounts", json={"username": name, "role": "student"})
        assert r.status_code == 201, r.text
    admin = Person(stack, "admin", "admin")
    for code, teacher, students in (
        ("bio12", "tina12", ["sam12", "sue12"]),
        ("chem12", "tom12", ["sam12"]),
        ("geo12", "tom12", ["sid12"]),
    ):
        r = admin.post(
            "api/classes",
            {"code": code, "name": code.title(), "term": "2026 autumn", "teachers": [teacher]},
        )
        assert r.status_code == 201, r.text
        for student in students:
            r = admin.post(f"api/classes/{code}/students", {"username": student})
            assert r.status_code == 201, r.text
    return admin


@pytest.fixture
def sign_in(stack, api, chromium):
    """``sign_in(name, role)``: a new browser signed in with a token, on "My classes".
    Any page of the test that fails is saved as a screenshot (path printed)."""
    contexts = []

    def open_as(name: str, role: str):
        context = chromium.new_context()
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("dialog", lambda dialog: dialog.accept())  # "Remove ...?", "Archive ...?"
        page.goto(f"{stack.url}/hub/login?next={quote(SERVICE, safe='')}")
        page.fill("#token_input", stack.mint(name, role))
        page.click("#token_submit")
        page.wait_for_url(f"**{SERVICE}")
        return page

    try:
        yield open_as
    finally:
        for context in contexts:
            context.close()


@contextmanager
def screenshots(tmp_path, *pages):
    try:
        yield
    except Exception:
        for i, page in enumerate(pages):
            path = tmp_path / f"failure-{i}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
                print("screenshot:", path, "url:", page.url)
            except Exception as e:  # noqa: BLE001 - the test's own error matters more
                print("no screenshot:", e)
        raise


def rows(page, selector: str, key: str) -> list[str]:
    return page.eval_on_selector_all(selector, f"rows => rows.map(r => r.dataset.{key})")


def wait_lab(page, user: str, code: str) -> None:
    page.wait_for_url(f"**/user/{user}/{code}/lab**", timeout=120_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
    assert "JupyterLab" in page.title()


def test_student_sees_their_classes_and_launches_one(stack, sign_in, tmp_path):
    page = sign_in("sam12", "student")
    with screenshots(tmp_path, page):
        assert rows(page, "#taking tbody tr", "code") == ["bio12", "chem12"]
        assert page.is_hidden("#teaching-section") and page.is_hidden("#create-class")
        bio = "#taking tr[data-code=bio12]"
        assert page.get_attribute(bio, "data-state") == "stopped"
        assert page.inner_text(f"{bio} [data-field=term]") == "2026 autumn"
        assert page.get_attribute(f"{bio} [data-action=launch]", "href") == "/hub/spawn/sam12/bio12"
        page.click(f"{bio} [data-action=launch]")
        wait_lab(page, "sam12", "bio12")

        page.goto(stack.url + SERVICE)
        page.wait_for_selector(f"{bio}[data-state=running]")
        assert page.is_hidden(f"{bio} [data-action=launch]")
        assert page.get_attribute(f"{bio} [data-action=open]", "href") == "/user/sam12/bio12/"
        assert page.get_attribute("#taking tr[data-code=chem12]", "data-state") == "stopped"
        page.click(f"{bio} [data-action=open]")
        wait_lab(page, "sam12", "bio12")

        # the page follows the server's state by itself: stopped behind its back
        page.goto(stack.url + SERVICE)
        page.wait_for_selector(f"{bio}[data-state=running]")
        stack.stop("sam12", "bio12")
        page.wait_for_selector(f"{bio}[data-state=stopped]", timeout=15_000)
        assert page.is_visible(f"{bio} [data-action=launch]")
        assert page.is_hidden("#status-alert") and page.is_hidden("#action-alert")

        # a class sam12 is not in: the hub refuses to start it and says why
        page.goto(f"{stack.url}/hub/spawn/sam12/geo12")
        page.wait_for_selector("text=You are not enrolled in Geo12 (geo12)")


def test_teacher_starts_opens_and_stops_a_students_server(stack, sign_in, tmp_path):
    page = sign_in("tina12", "teacher")
    with screenshots(tmp_path, page):
        assert rows(page, "#teaching tbody tr", "code") == ["bio12"]
        assert page.inner_text("#teaching tr[data-code=bio12] [data-field=students]") == "2"
        page.click("#teaching tr[data-code=bio12] a[data-field=link]")
        page.wait_for_url(f"**{SERVICE}classes/bio12")
        assert rows(page, "#roster tbody tr", "user") == ["sam12", "sue12"]
        sam = "#roster tr[data-user=sam12]"
        assert page.get_attribute(sam, "data-state") == "stopped"
        assert page.is_hidden(f"{sam} [data-action=open]")

        page.click(f"{sam} [data-action=start]")
        page.wait_for_selector(f"{sam}[data-state=running]", timeout=90_000)
        assert "sam12's server is" in page.inner_text("#action-alert")
        assert page.get_attribute("#roster tr[data-user=sue12]", "data-state") == "stopped"
        # one shared origin: only sam12 opens his server; the teacher views his work
        assert page.is_hidden(f"{sam} [data-action=open]")
        view = page.get_attribute(f"{sam} [data-action=view]", "href")
        assert view == f"{SERVICE}classes/bio12/students/sam12/work"
        with page.context.expect_page() as opened:
            page.click(f"{sam} [data-action=view]")
        work = opened.value
        with screenshots(tmp_path, work):
            work.wait_for_selector("#work-path")
            assert "sam12's work" in work.inner_text("h1")
        work.close()

        page.click(f"{sam} [data-action=stop]")
        page.wait_for_selector(f"{sam}[data-state=stopped]", timeout=60_000)
        assert page.is_enabled(f"{sam} [data-action=start]")


def test_teacher_imports_a_roster_with_a_per_row_report(stack, sign_in, tmp_path):
    page = sign_in("tina12", "teacher")
    page.goto(f"{stack.url}{SERVICE}classes/bio12")
    csv = tmp_path / "roster.csv"
    with screenshots(tmp_path, page):
        csv.write_text("username\numa12\nghost\nUma12\nbad name\n")
        page.set_input_files("#import-file", str(csv))
        page.click("#import-roster button[type=submit]")
        page.wait_for_selector("#import-report tbody tr[data-status=unknown_user]")
        assert "Nothing was imported" in page.inner_text("#action-alert")
        assert "alert-danger" in page.get_attribute("#action-alert", "class")
        report = page.eval_on_selector_all(
            "#import-report tbody tr",
            "rows => rows.map(r => [...r.cells].map(c => c.textContent))",
        )
        assert [(r[0], r[1]) for r in report] == [
            ("2", "uma12"),
            ("3", "ghost"),
            ("4", "uma12"),
            ("5", "bad name"),
        ]
        assert rows(page, "#import-report tbody tr", "status") == [
            "valid",
            "unknown_user",
            "duplicate",
            "malformed",
        ]
        assert "not a user of this hub" in report[1][3]
        assert members(stack, "class-bio12") == {"sam12", "sue12"}, "nothing applied"
        assert rows(page, "#roster tbody tr", "user") == ["sam12", "sue12"]

        csv.write_text("username\r\numa12\r\nulf12\r\nsam12\r\n")
        page.set_input_files("#import-file", str(csv))
        page.click("#import-roster button[type=submit]")
        page.wait_for_selector("#roster tr[data-user=ulf12]")
        assert "2 student(s) added" in page.inner_text("#action-alert")
        assert rows(page, "#import-report tbody tr", "status") == [
            "added",
            "added",
            "already_enrolled",
        ]
        assert members(stack, "class-bio12") == {"sam12", "sue12", "uma12", "ulf12"}

        # one by one: remove (confirmed) and add back, with the API's messages
        page.click("#roster tr[data-user=ulf12] [data-action=remove]")
        page.wait_for_selector("#roster tr[data-user=ulf12]", state="detached")
        page.fill("#add-username", "nobody-here")
        page.click("#add-student button[type=submit]")
        page.wait_for_selector("#action-alert.alert-danger:has-text('not a user of this hub')")
        page.fill("#add-username", "ulf12")
        page.click("#add-student button[type=submit]")
        page.wait_for_selector("#roster tr[data-user=ulf12]")
        assert page.inner_text("#roster-count") == "4"


def test_students_and_other_teachers_get_a_403_page(stack, sign_in, tmp_path):
    sam = sign_in("sam12", "student")
    tom = sign_in("tom12", "teacher")
    with screenshots(tmp_path, sam, tom):
        r = sam.goto(f"{stack.url}{SERVICE}classes/bio12")
        assert r.status == 403 and r.headers["content-type"].startswith("text/html")
        assert "Only the teachers of class 'bio12'" in sam.inner_text("#error-message")
        assert "sue12" not in sam.content() and sam.locator("#roster").count() == 0
        r = tom.goto(f"{stack.url}{SERVICE}classes/bio12")
        assert r.status == 403 and "Only the teachers" in tom.inner_text("#error-message")
        r = tom.goto(f"{stack.url}{SERVICE}classes/nope")
        assert r.status == 404 and "no class with the code 'nope'" in tom.inner_text("#error-page")
        r = tom.goto(f"{stack.url}{SERVICE}classes/Not_A_Code")
        assert r.status == 400 and "Invalid class code" in tom.inner_text("#error-page")
        r = tom.goto(f"{stack.url}{SERVICE}classes/geo12")
        assert r.status == 200 and rows(tom, "#roster tbody tr", "user") == ["sid12"]


def test_admin_creates_a_class_and_its_teacher_edits_and_archives_it(stack, api, sign_in, tmp_path):
    ada = sign_in("ada12", "admin")
    with screenshots(tmp_path, ada):
        # an admin sees every class of the hub: this file's, and those of the files before
        # it on the worker's shared stack
        ours = {"bio12", "chem12", "geo12", "art12"}
        listed = rows(ada, "#teaching tbody tr", "code")
        assert [code for code in listed if code in ours] == ["bio12", "chem12", "geo12"]
        ada.fill("#create-code", "art12")
        ada.fill("#create-name", "Art12 & <b>Design</b>")
        ada.fill("#create-term", "2027")
        ada.fill("#create-teachers", "tina12")
        ada.fill("#create-idle", "900")
        ada.click("#create-class button[type=submit]")
        ada.wait_for_selector("#teaching tr[data-code=art12]")
        assert "Created class art12" in ada.inner_text("#action-alert")
        assert ada.inner_text("#teaching tr[data-code=art12] [data-field=name]") == (
            "Art12 & <b>Design</b>"
        )
        ada.fill("#create-code", "art12")
        ada.fill("#create-name", "Again")
        ada.click("#create-class button[type=submit]")
        ada.wait_for_selector("#action-alert.alert-danger:has-text('exists already')")
    record = api.get("api/classes/art12").json()
    assert record["teachers"] == ["tina12"] and record["environment"]["idle_timeout"] == 900
    assert members(stack, "teachers-art12") == {"tina12"}

    tina = sign_in("tina12", "teacher")
    tina.goto(f"{stack.url}{SERVICE}classes/art12")
    with screenshots(tmp_path, tina):
        assert tina.locator("#settings-teachers").count() == 0, "admins assign teachers"
        tina.fill("#settings-idle", "1")
        tina.click("#class-settings button[type=submit]")
        tina.wait_for_selector("#action-alert.alert-danger:has-text('idle_timeout')")
        tina.fill("#settings-idle", "1200")
        tina.fill("#settings-name", "Art12 and Design")
        tina.click("#class-settings button[type=submit]")
        tina.wait_for_selector("#action-alert.alert-success:has-text('Settings saved')")
        assert tina.inner_text("#class-name") == "Art12 and Design"
        tina.click("#archive-button")
        tina.wait_for_selector("#archived-badge:visible")
        assert "Archived art12" in tina.inner_text("#action-alert")
    record = api.get("api/classes/art12").json()
    assert record["archived"] is True and record["environment"]["idle_timeout"] == 1200


def test_pages_show_a_mongodb_outage_and_recover(stack, sign_in, tmp_path):
    tina = sign_in("tina12", "teacher")
    tina.goto(f"{stack.url}{SERVICE}classes/bio12")
    sam = sign_in("sam12", "student")
    with screenshots(tmp_path, tina, sam):
        stack.mongo.stop()
        try:
            tina.wait_for_selector(f"#status-alert:has-text('{UNREACHABLE}')", timeout=15_000)
            tina.fill("#add-username", "uma12")
            tina.click("#add-student button[type=submit]")
            tina.wait_for_selector(f"#action-alert.alert-danger:has-text('{UNREACHABLE}')")
            r = sam.reload()
            assert r.status == 503
            assert UNREACHABLE in sam.inner_text("#error-message")
            assert "tries again by itself" in sam.inner_text("#error-page")
        finally:
            stack.processes.remove(stack.mongo)
            stack.mongo, _ = start_mongo(stack.workdir / "mongo", port=stack.mongo_port)
            stack.processes.append(stack.mongo)
        wait_healthy(stack, timeout=30)
        tina.wait_for_selector("#status-alert", state="hidden", timeout=15_000)
        sam.wait_for_selector("#taking tr[data-code=bio12]", timeout=30_000)  # reloaded itself
