"""Copying a class for a new term with its material and assignments, against the real hub,
Traefik, the classes service (nx-27017), the files service (SeaweedFS) and the grades
service (PostgreSQL): the classes service makes the class, then the class page's script
asks the files service (material, starting files) and the grades service (assignments) as
the same person, and each checks that person's rights on both classes itself. Tried by
people who must not (a teacher of only one of the classes, a student of the old one), and
in Chromium from the class page."""

from __future__ import annotations

import secrets

import pytest

from harness.classes import Person, assert_error
from harness.files import FILES, download, upload
from harness.stack import wait_for

pytestmark = pytest.mark.integration

CLASSES = "/services/classes/"
GRADES = "/services/grades/"


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


def new_code() -> str:
    return "cp" + secrets.token_hex(3)


@pytest.fixture(scope="module")
def old(stack):
    """Class ``old`` taught by tina with a student, two material files, a starting file,
    an assignment with questions and a due date, an archived one, and a submission-free
    roster; otto teaches another class only."""
    code = new_code()
    admin = Person(stack, "admin", "admin", service=CLASSES)
    Person(stack, "otto", "teacher", service=CLASSES)  # hub users: signed in once
    Person(stack, "sam", "student", service=CLASSES)
    tina_classes = Person(stack, "tina", "teacher", service=CLASSES)
    for made, teacher in ((code, "tina"), ("otto1", "otto")):
        r = admin.post("api/classes", {"code": made, "name": made.upper(), "teachers": [teacher]})
        assert r.status_code == 201, r.text
    r = tina_classes.post(f"api/classes/{code}/students", {"username": "sam"})
    assert r.status_code == 201, r.text
    tina_files = Person(stack, "tina", "teacher", service=FILES)
    upload(tina_files, f"class/{code}", "week1/intro.ipynb", b'{"cells": []}')
    upload(tina_files, f"class/{code}", "data.csv", b"x,y\n1,2\n")
    upload(tina_files, f"class/{code}/assignments", "lab1/start.ipynb", b"start")
    tina = Person(stack, "tina", "teacher", service=GRADES)
    r = tina.post(
        f"api/classes/{code}/assignments",
        json={
            "slug": "lab1",
            "title": "Lab 1",
            "max_points": 10,
            "due_at": "2026-12-20T12:00:00+00:00",
            "late_policy": "accept",
            "late_penalty_percent": 10,
            "starting_files": ["start.ipynb"],
        },
    )
    assert r.status_code == 201, r.text
    r = tina.call(
        "PUT",
        f"api/classes/{code}/assignments/lab1/questions",
        json={"questions": [{"label": "Q1", "points": 4}, {"label": "Q2", "points": 6}]},
    )
    assert r.status_code == 200, r.text
    r = tina.post(
        f"api/classes/{code}/assignments", json={"slug": "old", "title": "Old", "max_points": 1}
    )
    assert r.status_code == 201, r.text
    assert tina.post(f"api/classes/{code}/assignments/old/archive").status_code == 200
    return code


def copy_class(stack, old: str) -> str:
    """The classes service's part, as an admin: the new class (same teachers, no students)."""
    new = new_code()
    admin = Person(stack, "admin", "admin", service=CLASSES)
    r = admin.post(f"api/classes/{old}/copy", {"code": new, "term": "2027"})
    assert r.status_code == 201, r.text
    assert r.json()["hub_sync"] != "pending", r.json()
    return new


def test_the_files_and_assignments_are_copied_by_whoever_teaches_both(stack, old):
    new = copy_class(stack, old)
    tina_files = Person(stack, "tina", "teacher", service=FILES)
    tina = Person(stack, "tina", "teacher", service=GRADES)

    r = tina_files.post(f"api/classes/{new}/copy", json={"from": old})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["material"] == {"copied": 2, "skipped": 0, "bytes": 21}, out
    assert out["assignments"]["copied"] == 1, out
    assert download(tina_files, f"class/{new}", "week1/intro.ipynb") == b'{"cells": []}'
    assert download(tina_files, f"class/{new}/assignments", "lab1/start.ipynb") == b"start"
    # again: nothing twice, nothing lost
    r = tina_files.post(f"api/classes/{new}/copy", json={"from": old})
    assert r.status_code == 200 and r.json()["material"]["skipped"] == 2, r.text

    r = tina.post(f"api/classes/{new}/copy-assignments", json={"from": old})
    assert r.status_code == 200, r.text
    assert r.json()["copied"] == ["lab1"] and r.json()["skipped"] == [], r.text
    lab = tina.get(f"api/classes/{new}/assignments/lab1").json()
    assert lab["title"] == "Lab 1" and float(lab["max_points"]) == 10
    assert lab["due_at"] is None and lab["release_at"] is None and lab["archived"] is True
    assert float(lab["late_penalty_percent"]) == 10 and lab["late_policy"] == "accept"
    questions = tina.get(f"api/classes/{new}/assignments/lab1/questions").json()["questions"]
    assert [(q["label"], float(q["points"])) for q in questions] == [("Q1", 4), ("Q2", 6)]
    slugs = [a["slug"] for a in tina.get(f"api/classes/{new}/assignments").json()["assignments"]]
    assert slugs == ["lab1"]  # the archived one is not copied
    r = tina.post(f"api/classes/{new}/copy-assignments", json={"from": old})
    assert r.status_code == 200 and r.json()["skipped"] == ["lab1"], r.text
    # the new class's students see nothing of it (archived), there are none anyway
    assert tina.get(f"api/classes/{new}/assignments/lab1/submissions").json()["students"] == []
    # the old class is unchanged
    assert tina.get(f"api/classes/{old}/assignments/lab1").json()["due_at"] is not None


def test_nobody_copies_what_they_do_not_teach(stack, old):
    new = copy_class(stack, old)
    otto_files = Person(stack, "otto", "teacher", service=FILES)
    otto = Person(stack, "otto", "teacher", service=GRADES)
    sam_files = Person(stack, "sam", service=FILES)
    sam = Person(stack, "sam", service=GRADES)
    # otto teaches otto1 only: not from tina's class into his, nor into hers
    assert_error(otto_files.post("api/classes/otto1/copy", json={"from": old}), 404)
    assert_error(otto_files.post(f"api/classes/{new}/copy", json={"from": "otto1"}), 404)
    assert_error(otto.post("api/classes/otto1/copy-assignments", json={"from": old}), 404)
    # a student of the old class may read its material, but copies nothing
    assert_error(sam_files.post(f"api/classes/{old}/copy", json={"from": old}), 400, "itself")
    assert_error(sam_files.post(f"api/classes/{new}/copy", json={"from": old}), 403, "teachers")
    assert_error(sam.post(f"api/classes/{new}/copy-assignments", json={"from": old}), 404)
    # bad input
    tina_files = Person(stack, "tina", "teacher", service=FILES)
    tina = Person(stack, "tina", "teacher", service=GRADES)
    assert_error(tina_files.post(f"api/classes/{old}/copy", json={"from": old}), 400, "itself")
    assert_error(tina_files.post(f"api/classes/{new}/copy", json={"from": "Bad Code!"}), 400)
    assert_error(tina.post(f"api/classes/{new}/copy-assignments", json={}), 400)
    assert_error(tina.post(f"api/classes/{new}/copy-assignments", json={"from": 3}), 400)
    # a cross-site request with tina's cookies but without her XSRF token
    r = tina_files.post(
        f"api/classes/{new}/copy", json={"from": old}, headers={"X-XSRFToken": "forged"}
    )
    assert r.status_code == 403, r.text
    assert tina_files.get(f"api/files/class/{new}").json()["files"] == []


def test_in_chromium_the_class_page_copies_everything(stack, old, chromium, tmp_path):
    from playwright.sync_api import expect

    from harness.browser import signed_in_page

    new = new_code()
    page = signed_in_page(chromium, stack, "admin", "admin", f"{CLASSES}classes/{old}")
    try:
        page.fill("#copy-code", new)
        page.fill("#copy-term", "2027")
        page.click("#copy-class [type=submit]")
        alert = page.locator("#action-alert")
        # the classes service's part, then the files and grades services' (the final text)
        expect(alert).to_contain_text("no students.", timeout=90_000)
        expect(alert).to_contain_text(f"Copied {old} to {new}")
        expect(alert).to_contain_text("2 material file(s)")
        expect(alert).to_contain_text("1 starting file(s)")
        expect(alert).to_contain_text("1 assignment(s)")
        assert "Not copied" not in alert.inner_text()
        assert page.problems == []
    except Exception:
        page.screenshot(path=str(tmp_path / "copy.png"), full_page=True)
        raise
    finally:
        page.context.close()
    tina = Person(stack, "tina", "teacher", service=GRADES)
    wait_for(
        lambda: tina.get(f"api/classes/{new}/assignments/lab1").status_code == 200,
        10,
        what="the copied assignment",
    )
    tina_files = Person(stack, "tina", "teacher", service=FILES)
    assert download(tina_files, f"class/{new}", "data.csv") == b"x,y\n1,2\n"


def test_only_a_same_origin_script_reads_a_services_home(stack, old):
    """The services' home lets a script's GET through with the cookie alone when the
    browser says it comes from the same origin (how the class page learns the files and
    grades services' XSRF tokens); from another site, the cookie counts for nothing."""
    for service in (FILES, GRADES, CLASSES):
        tina = Person(stack, "tina", "teacher", service=service)
        url = stack.url + service
        script = {"Accept": "application/json", "Sec-Fetch-Mode": "cors"}
        r = tina.browser.get(
            url, headers={**script, "Sec-Fetch-Site": "same-origin"}, allow_redirects=False
        )
        assert r.status_code == 200, (service, r.status_code, r.text[:300])
        assert r.json()["name"] == "tina" and r.json()["xsrf"]
        for site in ("cross-site", "same-site", "none"):
            r = tina.browser.get(
                url, headers={**script, "Sec-Fetch-Site": site}, allow_redirects=False
            )
            assert r.status_code == 302, (service, site, r.status_code)  # not signed in
    # the token read there is the one the files service checks on a change
    tina = Person(stack, "tina", "teacher", service=FILES)
    same = {"Accept": "application/json", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"}
    xsrf = tina.browser.get(stack.url + FILES, headers=same, allow_redirects=False).json()["xsrf"]
    r = tina.browser.post(
        f"{stack.url}{FILES}api/classes/{old}/copy",
        json={"from": old},
        headers={**same, "X-XSRFToken": xsrf},
        allow_redirects=False,
    )
    assert_error(r, 400, "itself")  # past the XSRF check: the copy's own rule answers
