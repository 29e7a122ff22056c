"""The files service's pages in headless Chromium, against the real hub, Traefik,
SeaweedFS (S3) and nx-27017: a student's "My files" (upload with sizes, download, rename,
delete, a refused over-size upload), a class's material page (a teacher unpacks a zip as a
folder; a student of the class reads it without any control to change it; a student of
another class gets the 404 page), and pushes (scheduled in the teacher's time zone and
cancelled; pushed now with every student's server stopped: each student is waiting).

No student server is started here. On failure each test saves a screenshot and prints
its path and the pages' console errors."""

from __future__ import annotations

import datetime
import io
import zipfile
from contextlib import contextmanager
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from harness.classes import Person
from harness.files import FILES, listing, person, upload

pytestmark = pytest.mark.integration

MATERIAL = FILES + "classes/{code}/material"
#: the teacher's browser runs in this time zone (schedules are converted from it)
TEACHER_ZONE = "Europe/Paris"


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


@pytest.fixture(scope="module")
def people(stack):
    """bio16 (teacher tia16; sam16, sue16), geo16 (teacher tia16; sam16, sue16), chem16 (ola16)."""
    for code in ("bio16", "geo16"):
        stack.enroll("tia16", code, teacher=True)
        stack.enroll("sam16", code)
        stack.enroll("sue16", code)
    stack.enroll("ola16", "chem16")


@pytest.fixture
def sign_in(stack, people, chromium):
    """``sign_in(name, role, **context)``: a new browser signed in with a token, on "My
    files". Confirmation dialogs are accepted; console errors are kept in
    ``page.problems``."""
    contexts = []

    def open_as(name: str, role: str, **options):
        context = chromium.new_context(accept_downloads=True, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.problems = []
        page.on("dialog", lambda dialog: dialog.accept())  # "Delete ...?", "Cancel ...?"
        page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
        page.on(
            "console",
            lambda m: page.problems.append(f"console: {m.text}") if m.type == "error" else None,
        )
        page.goto(f"{stack.url}/hub/login?next={quote(FILES, safe='')}")
        page.fill("#token_input", stack.mint(name, role))
        page.click("#token_submit")
        page.wait_for_url(f"**{FILES}")
        page.wait_for_selector("#files-section")
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
            for problem in getattr(page, "problems", []):
                print(f"page {i}:", problem)
        raise
    for page in pages:
        # no inline script or style sneaked past the pages' CSP, no script error
        bad = [p for p in page.problems if "Content Security Policy" in p or "page error" in p]
        assert not bad, bad


def rows(page, selector: str = "#files tbody tr", key: str = "path") -> list[str]:
    return page.eval_on_selector_all(selector, f"rows => rows.map(r => r.dataset.{key})")


def file_row(path: str) -> str:
    return f'#files tr[data-kind=file][data-path="{path}"]'


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_a_student_uploads_downloads_renames_and_deletes_their_files(stack, sign_in, tmp_path):
    sam = sign_in("sam16", "student")
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"hello files")
    one, two = tmp_path / "a.py", tmp_path / "b.csv"
    one.write_bytes(b"print(1)\n")
    two.write_bytes(b"x,y\n" * 300)
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * ((1 << 20) + 1))
    with screenshots(tmp_path, sam):
        assert sam.is_visible("#files-empty") and sam.is_hidden("#files")
        assert (
            sam.inner_text("#used-text") == "0 bytes" and sam.inner_text("#quota-text") == "2.0 MB"
        )
        assert sam.get_attribute("#class-links a[data-code=bio16]", "href") == (
            MATERIAL.format(code="bio16")
        )

        sam.set_input_files("#upload-input", str(notes))
        sam.click("#upload-files button[type=submit]")
        sam.wait_for_selector(file_row("notes.txt"))
        assert "Uploaded notes.txt" in sam.inner_text("#action-alert")
        assert sam.inner_text(f"{file_row('notes.txt')} [data-field=size]") == "11 bytes"
        assert sam.inner_text("#used-text") == "11 bytes"

        with sam.expect_download() as download:
            sam.click(f"{file_row('notes.txt')} a.btn[data-action=download]")
        assert download.value.suggested_filename == "notes.txt"
        assert open(download.value.path(), "rb").read() == b"hello files"

        # several files at once, into a folder
        sam.set_input_files("#upload-input", [str(one), str(two)])
        sam.fill("#upload-folder", "week 1")
        sam.click("#upload-files button[type=submit]")
        sam.wait_for_selector(file_row("week 1/b.csv"))
        assert "Uploaded 2 files" in sam.inner_text("#action-alert")
        assert rows(sam) == ["week 1", "week 1/a.py", "week 1/b.csv", "notes.txt"]
        assert sam.inner_text(
            '#files tr[data-kind=folder][data-path="week 1"] [data-field=size]'
        ) == ("1.2 KB · 2 files")

        sam.click(f"{file_row('notes.txt')} [data-action=rename]")
        sam.fill(f"{file_row('notes.txt')} [data-field=rename-input]", "week 1/notes.txt")
        sam.click(f"{file_row('notes.txt')} [data-field=rename-form] button[type=submit]")
        sam.wait_for_selector(file_row("week 1/notes.txt"))
        assert "Renamed notes.txt to week 1/notes.txt" in sam.inner_text("#action-alert")
        assert rows(sam) == ["week 1", "week 1/a.py", "week 1/b.csv", "week 1/notes.txt"]

        sam.click(f"{file_row('week 1/notes.txt')} [data-action=delete]")
        sam.wait_for_selector(file_row("week 1/notes.txt"), state="detached")
        sam.click('#files tr[data-kind=folder][data-path="week 1"] [data-action=delete]')
        sam.wait_for_selector("#files-empty", state="visible")
        assert "Deleted the folder week 1 (2 files)" in sam.inner_text("#action-alert")

        # too large: refused before anything is stored, with the API's message
        sam.set_input_files("#upload-input", str(big))
        sam.click("#upload-files button[type=submit]")
        sam.wait_for_selector("#action-alert.alert-danger")
        assert "files may be at most 1.0 MB" in sam.inner_text("#action-alert")
        assert sam.is_hidden("#files") and rows(sam) == []
        assert sam.is_hidden("#upload-progress")

        # the hub's navigation leads here
        sam.goto(f"{stack.url}/hub/home")
        assert sam.get_attribute("#nav-files", "href") == FILES
    assert listing(person(stack, "sam16"), "me")["files"] == []


def test_material_a_teacher_unpacks_a_zip_and_students_of_the_class_only_read_it(
    stack, sign_in, tmp_path
):
    archive = tmp_path / "week1.zip"
    archive.write_bytes(zip_of({"intro.ipynb": b'{"cells": []}', "data/table.csv": b"a,b\n1,2\n"}))
    tia = sign_in("tia16", "teacher")
    with screenshots(tmp_path, tia):
        tia.goto(stack.url + MATERIAL.format(code="bio16"))
        assert tia.inner_text("#files-empty") == "There is no material yet. Upload files above."
        tia.set_input_files("#zip-input", str(archive))
        tia.click("#upload-zip button[type=submit]")
        tia.wait_for_selector(file_row("week1/intro.ipynb"))
        assert "Unpacked 2 files" in tia.inner_text("#action-alert")
        assert rows(tia) == ["week1", "week1/data", "week1/data/table.csv", "week1/intro.ipynb"]
        assert tia.is_visible(f"{file_row('week1/intro.ipynb')} [data-action=delete]")
        assert tia.is_visible("#push-now")

    sam = sign_in("sam16", "student")
    ola = sign_in("ola16", "student")
    with screenshots(tmp_path, sam, ola):
        r = sam.goto(stack.url + MATERIAL.format(code="bio16"))
        assert r.status == 200
        assert rows(sam) == ["week1", "week1/data", "week1/data/table.csv", "week1/intro.ipynb"]
        for control in (
            "#upload-section",
            "#push-section",
            "[data-action=rename]",
            "[data-action=delete]",
            "[data-field=rename-form]",
        ):
            assert sam.locator(control).count() == 0, control
        with sam.expect_download() as download:
            sam.click(f"{file_row('week1/data/table.csv')} a.btn[data-action=download]")
        assert open(download.value.path(), "rb").read() == b"a,b\n1,2\n"

        r = ola.goto(stack.url + MATERIAL.format(code="bio16"))
        assert r.status == 404 and r.headers["content-type"].startswith("text/html")
        assert "There is no class 'bio16' among your classes" in ola.inner_text("#error-message")
        assert "intro.ipynb" not in ola.content()
        r = ola.goto(stack.url + MATERIAL.format(code="Not_A_Code"))
        assert r.status == 400 and "class code" in ola.inner_text("#error-message")


def test_a_teacher_schedules_and_cancels_a_push_then_pushes_to_stopped_servers(
    stack, sign_in, tmp_path
):
    upload(person(stack, "tia16", "teacher"), "class/geo16", "sheet.txt", b"exercise 1")
    tia = sign_in("tia16", "teacher", timezone_id=TEACHER_ZONE)
    tia.goto(stack.url + MATERIAL.format(code="geo16"))
    day = datetime.date.today() + datetime.timedelta(days=40)
    local = datetime.datetime.combine(day, datetime.time(9, 30), ZoneInfo(TEACHER_ZONE))
    with screenshots(tmp_path, tia):
        tia.wait_for_selector("#pushes-empty:has-text('No pushes yet')")
        tia.fill("#push-at", local.strftime("%Y-%m-%dT%H:%M"))
        tia.click("#schedule-push button[type=submit]")
        tia.wait_for_selector("#pushes tr[data-status=scheduled]")
        assert "The push is scheduled" in tia.inner_text("#action-alert")
        scheduled = tia.get_attribute("#pushes tr[data-status=scheduled]", "data-push")
        # read with the browser's own session: signing tia16 in again elsewhere would end it
        r = tia.context.request.get(f"{stack.url}{FILES}api/classes/geo16/pushes/{scheduled}")
        assert r.ok, r.text()
        at = r.json()["at"]
        assert datetime.datetime.fromisoformat(at.replace("Z", "+00:00")) == local

        tia.click(f"#pushes tr[data-push='{scheduled}'] [data-action=cancel]")
        tia.wait_for_selector(f"#pushes tr[data-push='{scheduled}'][data-status=cancelled]")
        assert tia.is_hidden(f"#pushes tr[data-push='{scheduled}'] [data-action=cancel]")

        tia.click("#push-now")
        tia.wait_for_selector("#push-report:visible")
        tia.wait_for_selector("#report-status:has-text('done')")
        tia.wait_for_selector("#report-students tr[data-user=sue16]")
        assert rows(tia, "#report-students tbody tr", "user") == ["sam16", "sue16"]
        assert rows(tia, "#report-students tbody tr", "status") == ["waiting", "waiting"]
        sam_row = tia.inner_text("#report-students tr[data-user=sam16]")
        assert "gets the files at the first start" in sam_row
        assert "2 waiting" in tia.inner_text("#report-summary")
        tia.wait_for_selector(
            "#pushes tr[data-status=done] [data-field=students]:has-text('2 waiting')"
        )

        # missing deliveries: it can run again (they have no home yet)
        tia.click("#report-run")
        tia.wait_for_selector("#action-alert:has-text('The push ran again: 2 waiting')")
        pushed = tia.get_attribute("#pushes tr[data-status=done]", "data-push")
    push = person(stack, "tia16", "teacher").get(f"api/classes/geo16/pushes/{pushed}").json()
    assert sorted((d["user"], d["status"]) for d in push["students"]) == [
        ("sam16", "waiting"),
        ("sue16", "waiting"),
    ]


def test_the_class_page_links_to_the_material(stack, people, chromium, tmp_path):
    admin = Person(stack, "admin", "admin")
    r = admin.post(
        "api/classes", {"code": "art16", "name": "Art16", "term": "2026", "teachers": ["tia16"]}
    )
    assert r.status_code == 201, r.text
    context = chromium.new_context()
    page = context.new_page()
    page.problems = []
    try:
        with screenshots(tmp_path, page):
            page.goto(
                f"{stack.url}/hub/login?next={quote('/services/classes/classes/art16', safe='')}"
            )
            page.fill("#token_input", stack.mint("tia16", "teacher"))
            page.click("#token_submit")
            page.wait_for_url("**/services/classes/classes/art16")
            page.click("#material-link")
            page.wait_for_url("**" + MATERIAL.format(code="art16"))
            page.wait_for_selector("#push-now")
            assert page.inner_text("#class-name") == "Art16"
    finally:
        context.close()
