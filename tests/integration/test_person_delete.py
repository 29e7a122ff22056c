"""Deleting a person against the real hub, Docker, btrfs homes and the classes service on
nx-27017: the Accounts page's **Delete** takes them off every roster (the classes service's
``DELETE api/people/<name>``) and, after a second confirmation, removes their home volumes
through the hub's admin-only ``DELETE /hub/api/classhub/homes/<name>``. A teacher, whose
scopes let them remove a student's class server (which runs ``Spawner.delete_forever``),
cannot remove a home either way."""

from __future__ import annotations

import secrets

import pytest

from common.naming import object_name
from harness.classes import Person, members
from harness.stack import wait_for

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password 1"


@pytest.fixture(scope="module")
def stack(files_stack_for_module):
    return files_stack_for_module  # the worker's shared stack (conftest.py)


def new_name(prefix: str) -> str:
    return prefix + secrets.token_hex(3)


def home_exists(stack, user: str, server: str) -> bool:
    name = object_name(stack.prefix, "home", user, server)
    return any(v.name == name for v in stack.volumes()) or (stack.homes_dir / name).exists()


@pytest.fixture(scope="module")
def world(stack):
    """Class ``code`` taught by tina; student ``sam`` (a local account, enrolled) whose
    class server ran once and stopped: his class home exists."""
    code = new_name("dl")
    admin = Person(stack, "admin", "admin")
    tina = Person(stack, "tina", "teacher")
    r = admin.post("api/classes", {"code": code, "name": code.upper(), "teachers": ["tina"]})
    assert r.status_code == 201, r.text
    return {"code": code, "admin": admin, "tina": tina}


def student_with_home(stack, world, *, local: bool = False) -> str:
    name = new_name("st")
    if local:
        b = stack.browser()
        assert stack.login_token(b, stack.mint(new_name("adm"), role="admin")).status_code == 302
        r = stack.browser_api(
            b,
            "POST",
            "/classhub/accounts",
            json={"username": name, "role": "student", "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        assert stack.login_password(stack.browser(), name, PASSWORD).status_code == 302
    else:
        Person(stack, name, "student")
    code = world["code"]
    r = world["tina"].post(f"api/classes/{code}/students", {"username": name})
    assert r.status_code == 201, r.text
    stack.spawn(name, code)
    assert stack.wait_ready(name, code, timeout=180)["ready"]
    r = stack.api("DELETE", stack.server_path(name, code))
    assert r.status_code in (202, 204), r.text
    wait_for(lambda: stack.server_model(name, code) is None, 60, what="server stopped")
    assert home_exists(stack, name, code)
    return name


def test_a_teacher_cannot_remove_a_students_home(stack, world):
    code, tina = world["code"], world["tina"]
    sam = student_with_home(stack, world)
    # the admin-only path: refused to the teacher, whatever she confirms
    r = stack.browser_api(tina.browser, "DELETE", f"/classhub/homes/{sam}?confirm={sam}")
    assert r.status_code == 403, r.text
    # removing the student's class server (her scope allows it; JupyterHub then runs
    # Spawner.delete_forever): the server goes, the home stays
    r = stack.browser_api(
        tina.browser, "DELETE", f"/users/{sam}/servers/{code}", json={"remove": True}
    )
    assert r.status_code in (202, 204, 403, 404), r.text
    assert home_exists(stack, sam, code)
    # an admin without the confirmation: refused, nothing removed
    admin_browser = stack.browser()
    assert stack.login_token(admin_browser, stack.mint("admin", role="admin")).status_code == 302
    r = stack.browser_api(admin_browser, "DELETE", f"/classhub/homes/{sam}")
    assert r.status_code == 400 and "confirm" in r.text, r.text
    r = stack.browser_api(admin_browser, "DELETE", f"/classhub/homes/{sam}?confirm=other")
    assert r.status_code == 400, r.text
    assert home_exists(stack, sam, code)
    # the admin, confirmed: gone, and the class's other homes are not touched
    r = stack.browser_api(admin_browser, "DELETE", f"/classhub/homes/{sam}?confirm={sam}")
    assert r.status_code == 200, r.text
    assert r.json()["removed"] == [object_name(stack.prefix, "home", sam, code)]
    assert not home_exists(stack, sam, code)
    r = stack.browser_api(admin_browser, "DELETE", "/classhub/homes/nobody?confirm=nobody")
    assert r.status_code == 404, r.text


def test_in_chromium_the_accounts_page_deletes_a_person_everywhere(stack, world, chromium):
    from playwright.sync_api import expect

    from harness.browser import signed_in_page

    code = world["code"]
    sue = student_with_home(stack, world, local=True)
    keep = student_with_home(stack, world)  # another student of the class: untouched
    assert sue in members(stack, f"class-{code}")
    page = signed_in_page(chromium, stack, new_name("adm"), "admin", "/hub/classhub/accounts")
    try:
        page.fill("#account-search", sue)
        page.click("#search-accounts [type=submit]")
        row = page.locator(f'#accounts-table tr[data-key="{sue}"]')
        expect(row).to_have_count(1)
        page.on("dialog", lambda d: d.accept())  # delete? and remove the homes? both yes
        row.locator('[data-action="delete"]').click()
        alert = page.locator("#action-alert")
        expect(alert).to_contain_text(f"{sue} was deleted", timeout=60_000)
        expect(alert).to_contain_text("taken off 1 class(es)")
        expect(alert).to_contain_text("1 home folder(s) removed")
        assert page.problems == []
    finally:
        page.context.close()
    roster = world["tina"].get(f"api/classes/{code}/students").json()["students"]
    assert sue not in roster and keep in roster
    assert sue not in members(stack, f"class-{code}")
    assert not home_exists(stack, sue, code)
    assert home_exists(stack, keep, code)
    assert stack.api("GET", f"/users/{sue}").status_code == 404
