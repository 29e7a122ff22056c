"""The grades service's pages in headless Chromium, against the real hub, Traefik,
PostgreSQL, SeaweedFS and a real student container: a teacher creates and edits an
assignment in the editor (dates typed in a Europe/Paris browser are stored as the same
instants), a student sees their countdown and submits with a double click (one version),
a student without a running server gets the API's message, the teacher sees the
submission on time, downloads it, grades it while a second grader's stale save is refused
(409), grants and revokes an extension, returns the grade, and the student reads it with
its feedback; the gradebook shows the points and its CSV link downloads the file.

One student server is started. On failure each test saves a screenshot and prints its
path and the pages' console errors."""

from __future__ import annotations

import datetime
import io
import zipfile
from contextlib import contextmanager
from zoneinfo import ZoneInfo

import pytest

from harness.browser import signed_in_page
from harness.classes import Person

pytestmark = pytest.mark.integration

GRADES = "/services/grades/"
CODE = "chem515"
PAGE = GRADES + f"classes/{CODE}"
#: the teacher's browser runs in this time zone (dates are typed and shown in it)
TEACHER_ZONE = "Europe/Paris"
STUDENT_ZONE = "America/New_York"


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


@pytest.fixture(scope="module")
def people(stack):
    """chem515: teachers tom15 and tina15 (in browsers) and ted15 (API checks only: one session
    per person, so a browser's own person never signs in a second time while it is open);
    students ana15 and bob15. zed15 takes another class."""
    stack.enroll("tom15", CODE, teacher=True)
    stack.enroll("tina15", CODE, teacher=True)
    stack.enroll("ted15", CODE, teacher=True)
    stack.enroll("ana15", CODE)
    stack.enroll("bob15", CODE)
    stack.enroll("zed15", "other515")


@pytest.fixture
def sign_in(stack, people, chromium):
    """``sign_in(name, role, **context)``: a new browser signed in with a token, on the
    "Grades" page. Confirmation dialogs are accepted; console errors are kept in
    ``page.problems``."""
    contexts = []

    def open_as(name: str, role: str, **options):
        page = signed_in_page(chromium, stack, name, role, GRADES, accept_downloads=True, **options)
        contexts.append(page.context)
        page.on("dialog", lambda dialog: dialog.accept())
        page.on(
            "console",
            lambda m: page.problems.append(f"console: {m.text}") if m.type == "error" else None,
        )
        page.wait_for_selector("h1:has-text('Grades')")
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


@pytest.fixture(scope="module")
def ted(stack, people) -> Person:
    """A teacher of the class signed in at the grades API (never in a browser)."""
    return Person(stack, "ted15", "teacher", service=GRADES)


def api(stack, name, role="student") -> Person:
    """``name`` signed in at the grades API: only while no browser of theirs is open
    (a new sign-in ends the person's other session)."""
    return Person(stack, name, role, service=GRADES)


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def local_input(moment: datetime.datetime) -> str:
    """A datetime-local input's value for ``moment`` (aware, in the browser's zone)."""
    return moment.strftime("%Y-%m-%dT%H:%M")


def card(slug: str) -> str:
    return f"#assignments article[data-slug={slug}]"


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_a_teacher_creates_and_edits_an_assignment_in_the_editor(stack, sign_in, ted, tmp_path):
    tom = sign_in("tom15", "teacher", timezone_id=TEACHER_ZONE)
    zone = ZoneInfo(TEACHER_ZONE)
    now = datetime.datetime.now(zone).replace(second=0, microsecond=0)
    release = now - datetime.timedelta(hours=1)
    due = datetime.datetime.combine(
        now.date() + datetime.timedelta(days=3), datetime.time(23, 30), zone
    )
    with screenshots(tmp_path, tom):
        tom.click(f"#teaching a[data-code={CODE}]")
        tom.wait_for_url(f"**{PAGE}")
        tom.wait_for_selector("#assignments-empty:has-text('No assignments yet')")
        assert tom.inner_text("#editor-section .time-zone") == TEACHER_ZONE
        tom.fill("#assignment-slug", "lab1")
        tom.fill("#assignment-title", "Lab 1")
        tom.fill("#assignment-instructions", "Measure g.\nWrite answer.py.")
        tom.fill("#assignment-max", "10")
        tom.fill("#assignment-release", local_input(release))
        tom.fill("#assignment-due", local_input(due))
        tom.select_option("#assignment-policy", "accept")
        tom.fill("#assignment-penalty", "10")
        tom.click("#assignment-save")
        tom.wait_for_selector("#assignments tr[data-slug=lab1]")
        assert "Created Lab 1 (lab1)" in tom.inner_text("#action-alert")
        row = tom.inner_text("#assignments tr[data-slug=lab1]")
        assert "released" in row and "10% penalty" in row

        # the instants typed in Paris are stored as the same instants (in UTC)
        stored = ted.get(f"api/classes/{CODE}/assignments/lab1").json()
        assert stored["due_at"].endswith("Z") and utc(stored["due_at"]) == due
        assert utc(stored["release_at"]) == release
        assert stored["late_policy"] == "accept" and stored["late_penalty_percent"] == 10

        # editing: the form is filled in Paris time again; the title changes
        tom.click("#assignments tr[data-slug=lab1] [data-action=edit]")
        assert tom.input_value("#assignment-due") == local_input(due)
        assert tom.is_disabled("#assignment-slug")
        tom.fill("#assignment-title", "Lab 1: the pendulum")
        tom.click("#assignment-save")
        tom.wait_for_selector("#assignments tr[data-slug=lab1]:has-text('the pendulum')")
        assert tom.is_hidden("#assignment-cancel")
    edited = ted.get(f"api/classes/{CODE}/assignments/lab1").json()
    assert edited["title"] == "Lab 1: the pendulum" and utc(edited["due_at"]) == due
    assert edited["revision"] == stored["revision"] + 1


def test_the_teacher_deletes_an_assignment_nobody_handed_in_for(stack, sign_in, ted, tmp_path):
    r = ted.post(
        f"api/classes/{CODE}/assignments",
        json={"slug": "draft9", "title": "Draft", "max_points": 5},
    )
    assert r.status_code == 201, r.text
    tom = sign_in("tom15", "teacher")  # confirmation dialogs are accepted
    with screenshots(tmp_path, tom):
        tom.goto(stack.url + PAGE)
        tom.click("#assignments tr[data-slug=draft9] [data-action=delete]")
        tom.wait_for_selector("#assignments tr[data-slug=draft9]", state="detached")
        assert "Deleted Draft." in tom.inner_text("#action-alert")
    assert ted.get(f"api/classes/{CODE}/assignments/draft9").status_code == 404


def test_a_student_sees_the_countdown_and_a_double_click_submits_once(
    stack, sign_in, ted, tmp_path
):
    stack.spawn("ana15", CODE)
    stack.write_home("ana15", CODE, f"{CODE}/assignments/lab1/answer.py", b"print(9.81)\n")
    ana = sign_in("ana15", "student", timezone_id=STUDENT_ZONE)
    zed = sign_in("zed15", "student")
    submits = []
    ana.on(
        "request",
        lambda r: submits.append(r.url) if r.method == "POST" and "/submit" in r.url else None,
    )
    with screenshots(tmp_path, ana, zed):
        assert ana.get_attribute(f"#taking a[data-code={CODE}]", "href") == PAGE
        ana.goto(stack.url + PAGE)
        ana.wait_for_selector(card("lab1"))
        assert ana.locator("#assignment-form").count() == 0  # no editor for students
        due = ted.get(f"api/classes/{CODE}/assignments/lab1").json()["due_at"]
        assert ana.get_attribute(f"{card('lab1')} time[data-field=due]", "datetime") == due
        assert "10% penalty" in ana.inner_text(f"{card('lab1')} [data-field=policy]")
        assert "Write answer.py." in ana.inner_text(f"{card('lab1')} [data-field=instructions]")
        countdown = f"{card('lab1')} [data-field=countdown]"
        first = ana.inner_text(countdown)
        assert first.endswith(" left") and "day" in first, first
        ana.wait_for_function(
            "([sel, old]) => document.querySelector(sel).textContent !== old",
            arg=[countdown, first],
        )

        # two clicks in the same instant: the button is disabled by the first
        ana.eval_on_selector(
            f"{card('lab1')} [data-action=submit]", "b => { b.click(); b.click(); }"
        )
        ana.wait_for_selector(f"{card('lab1')} [data-field=result]:has-text('version 1')")
        assert "Handed in: version 1, on time." in ana.inner_text(
            f"{card('lab1')} [data-field=result]"
        )
        ana.wait_for_selector(f"{card('lab1')} tr[data-version='1']")
        assert len(submits) == 1, submits
        assert ana.is_hidden(f"{card('lab1')} [data-field=grade-box]")

        # someone outside the class gets the 404 page
        r = zed.goto(stack.url + PAGE)
        assert r.status == 404 and r.headers["content-type"].startswith("text/html")
        assert "There is no class 'chem515' among your classes" in zed.inner_text("#error-message")
    subs = ted.get(f"api/classes/{CODE}/assignments/lab1/submissions").json()["students"]
    (mine,) = [x for x in subs if x["user"] == "ana15"]
    assert mine["versions"] == 1 and mine["latest"]["version"] == 1, mine


def test_a_student_whose_server_is_not_running_gets_the_apis_message(stack, sign_in, tmp_path):
    bob = sign_in("bob15", "student")
    with screenshots(tmp_path, bob):
        bob.goto(stack.url + PAGE)
        bob.click(f"{card('lab1')} [data-action=submit]")
        result = f"{card('lab1')} [data-field=result].text-danger"
        bob.wait_for_selector(result)
        assert bob.is_enabled(f"{card('lab1')} [data-action=submit]")
        shown = bob.inner_text(result)
    answer = api(stack, "bob15").post(f"api/classes/{CODE}/assignments/lab1/submit")
    assert answer.status_code == 409 and shown == answer.json()["message"], (shown, answer.text)


def open_submissions(stack, page, slug="lab1"):
    page.goto(stack.url + PAGE)
    page.click(f"#assignments tr[data-slug={slug}] [data-action=open]")
    page.wait_for_selector("#submissions tr[data-user=ana15][data-status=on_time]")


def test_the_teacher_grades_a_stale_save_is_refused_and_the_student_reads_the_grade(
    stack, sign_in, tmp_path
):
    tom = sign_in("tom15", "teacher", timezone_id=TEACHER_ZONE)
    tina = sign_in("tina15", "teacher")
    with screenshots(tmp_path, tom, tina):
        open_submissions(stack, tom)
        # bob15 has handed in nothing, and his due date is still to come: not "missing"
        assert (
            tom.get_attribute("#submissions tr[data-user=bob15]", "data-status")
            == "not_handed_in_yet"
        )
        # and the count line says no "0 missing" while nobody's deadline has passed
        assert "1 on time · 0 late · 1 not handed in yet (2 students)" in tom.inner_text(
            "#submission-counts"
        )

        # the snapshot as it was handed in
        with tom.expect_download() as download:
            tom.click("#submissions tr[data-user=ana15] a[data-action=download]")
        zipped = zipfile.ZipFile(io.BytesIO(open(download.value.path(), "rb").read()))
        assert zipped.read("answer.py") == b"print(9.81)\n"

        # tina15 opens the grading form before tom15 saves: her save is stale
        open_submissions(stack, tina)
        tina.click("#submissions tr[data-user=ana15] [data-action=grade]")
        tom.click("#submissions tr[data-user=ana15] [data-action=grade]")
        assert tom.inner_text("#grading-user") == "ana15" and tom.is_disabled("#grade-return")
        tom.fill("#grade-points", "8")
        tom.fill("#grade-feedback", "Good work.\nMind the units.")
        tom.click("#grade-save")
        tom.wait_for_selector("#action-alert:has-text('Saved the grade of ana15: 8 points')")
        assert "8 / 10 · not returned" in tom.inner_text(
            "#submissions tr[data-user=ana15] [data-field=grade]"
        )
        tina.fill("#grade-points", "5")
        tina.click("#grade-save")
        tina.wait_for_selector("#action-alert.alert-danger")
        refused = tina.inner_text("#action-alert")
        assert "graded meanwhile by tom15" in refused and "reload" in refused, refused
        tina.click("#grade-reload")
        expect(tina.locator("#grade-points")).to_have_value("8")
        expect(tina.locator("#grade-feedback")).to_have_value("Good work.\nMind the units.")

        # an extension for bob15, granted in Paris time, then revoked
        later = datetime.datetime.combine(
            datetime.date.today() + datetime.timedelta(days=5),
            datetime.time(12, 0),
            ZoneInfo(TEACHER_ZONE),
        )
        tom.select_option("#extension-user", "bob15")
        tom.fill("#extension-due", local_input(later))
        tom.fill("#extension-reason", "ill")
        tom.click("#extension-form button[type=submit]")
        tom.wait_for_selector("#extensions tr[data-user=bob15]")
        bobs = api(stack, "bob15").get(f"api/classes/{CODE}/assignments").json()["assignments"]
        assert bobs[0]["extended"] is True and utc(bobs[0]["your_due_at"]) == later
        tom.reload()  # the page shows the extensions it finds
        tom.click("#assignments tr[data-slug=lab1] [data-action=open]")
        tom.wait_for_selector("#extensions tr[data-user=bob15]:has-text('ill')")
        tom.click("#extensions tr[data-user=bob15] [data-action=revoke]")
        tom.wait_for_selector("#extensions-empty:visible")
        bobs = api(stack, "bob15").get(f"api/classes/{CODE}/assignments").json()["assignments"]
        assert bobs[0]["extended"] is False

        # return the grade
        tom.wait_for_selector("#submissions tr[data-user=ana15][data-status=on_time]")
        tom.click("#submissions tr[data-user=ana15] [data-action=grade]")
        tom.click("#grade-return")
        tom.wait_for_selector("#action-alert:has-text('Returned the grade to ana15')")
        assert "returned on" in tom.inner_text("#grade-status")
        assert tom.is_disabled("#grade-return")

    ana = sign_in("ana15", "student")
    with screenshots(tmp_path, ana):
        ana.goto(stack.url + PAGE)
        ana.wait_for_selector(f"{card('lab1')} [data-field=grade-box]:visible")
        assert "8 / 10 for version 1" in ana.inner_text(f"{card('lab1')} [data-field=grade]")
        assert ana.inner_text(f"{card('lab1')} [data-field=feedback]") == (
            "Good work.\nMind the units."
        )
        assert ana.inner_text(f"{card('lab1')} tr[data-version='1'] [data-field=grade]") == "8 / 10"


def test_the_gradebook_shows_the_points_and_downloads_its_csv(stack, sign_in, tmp_path):
    tom = sign_in("tom15", "teacher")
    with screenshots(tmp_path, tom):
        tom.goto(stack.url + PAGE)
        cell = "#gradebook tr[data-user=ana15] td[data-slug=lab1]"
        tom.wait_for_selector(cell)
        assert tom.inner_text(cell) == "8"
        assert tom.inner_text("#gradebook tr[data-user=ana15] [data-field=total]") == "8 / 10"
        assert tom.inner_text("#gradebook tr[data-user=ana15] [data-field=percent]") == "80%"
        assert tom.inner_text("#gradebook tr[data-user=bob15] td[data-slug=lab1]") == "—"
        assert tom.inner_text("#gradebook tr[data-user=bob15] [data-field=total]") == "—"
        with tom.expect_download() as download:
            tom.click("#gradebook-csv")
        assert download.value.suggested_filename == f"gradebook-{CODE}.csv"
        data = open(download.value.path(), "rb").read()
        assert data.startswith(b"\xef\xbb\xbf")
        assert "ana15,8" in data.decode("utf-8-sig").replace("\r\n", "\n")

        # the hub's navigation leads to the grades
        tom.goto(f"{stack.url}/hub/home")
        assert tom.get_attribute("#nav-grades", "href") == GRADES

    # an admin opens any class by its code; a class that does not exist is the 404 page
    admin = sign_in("admin", "admin")
    with screenshots(tmp_path, admin):
        # the form is in the page once, and only in its content (not in its title)
        assert admin.title() == "Grades · classhub"
        assert admin.locator("#open-section").count() == 1
        assert admin.get_attribute("body", "data-page") == "home"
        admin.fill("#open-code", CODE)
        admin.click("#open-class button[type=submit]")
        admin.wait_for_url(f"**{PAGE}")
        admin.wait_for_selector("#gradebook tr[data-user=ana15]")
        r = admin.goto(stack.url + GRADES + "classes/nosuch")
        assert r.status == 404 and "There is no class 'nosuch'" in admin.inner_text(
            "#error-message"
        )
