"""The Accounts page's actions against the real hub, PostgreSQL, Redis and Docker: search,
reset password, disable and enable, role change, delete (servers stop, the hub user goes,
the home volume stays), the audit log in PostgreSQL, and the attacks (a student or a
teacher calling the admin API, a request without the XSRF token). The page itself in
Chromium: search, then disable one row."""

from __future__ import annotations

import secrets
from urllib.parse import quote

import pytest

from harness.stack import wait_for

pytestmark = pytest.mark.integration

PASSWORD = "a-long-password-1"


def new_name(prefix: str = "u") -> str:
    return prefix + secrets.token_hex(4)


@pytest.fixture(scope="module")
def admin(stack):
    """A signed-in admin's browser (the page's cookies and XSRF token)."""
    name = new_name("adm")
    b = stack.browser()
    assert stack.login_token(b, stack.mint(name, role="admin")).status_code == 302
    b.admin_name = name
    return b


def make(stack, admin, name, role="student"):
    r = stack.browser_api(
        admin,
        "POST",
        "/classhub/accounts",
        json={"username": name, "role": role, "password": PASSWORD},
    )
    assert r.status_code == 201, r.text


def change(stack, admin, name, body):
    return stack.browser_api(admin, "PATCH", f"/classhub/accounts/{quote(name)}", json=body)


def password_session(stack, name, password=PASSWORD):
    b = stack.browser()
    r = stack.login_password(b, name, password)
    return b if r.status_code == 302 else None


def audit(stack, name) -> list[tuple[str, str]]:
    rows = stack.psql(
        "SELECT actor || ' ' || action FROM classhub_auth.account_audit"
        " WHERE username = %s ORDER BY id",
        name,
    )
    return [tuple(r.split(" ", 1)) for r in rows]


def test_search_pages_through_postgresql(stack, admin):
    tag = new_name("srch")
    names = sorted(f"{tag}_{i}" for i in range(5))
    for name in names:
        make(stack, admin, name)
    make(stack, admin, tag + "x1")  # "_" is a literal, not LIKE's any-character
    r = stack.browser_api(
        admin, "GET", "/classhub/accounts", params={"q": tag.upper() + "_", "limit": 2}
    )
    body = r.json()
    assert r.status_code == 200 and body["total"] == 5
    assert [a["username"] for a in body["accounts"]] == names[:2]
    r = stack.browser_api(
        admin, "GET", "/classhub/accounts", params={"q": tag + "_", "offset": 4, "limit": 2}
    )
    assert [a["username"] for a in r.json()["accounts"]] == names[4:]
    r = stack.browser_api(admin, "GET", "/classhub/accounts", params={"limit": "0"})
    assert r.status_code == 400 and "between 1 and" in r.json()["message"]


def test_reset_password_ends_the_session_and_is_audited(stack, admin):
    name = new_name("s")
    make(stack, admin, name)
    b = password_session(stack, name)
    assert b is not None and stack.whoami(b) == name
    r = change(stack, admin, name, {"generate_password": True})
    assert r.status_code == 200, r.text
    new = r.json()["password"]
    assert stack.whoami(b) is None
    assert password_session(stack, name) is None
    assert stack.whoami(password_session(stack, name, new)) == name
    assert audit(stack, name) == [(admin.admin_name, "create"), (admin.admin_name, "password")]


def test_disable_refuses_every_sign_in_and_enable_restores_it(stack, admin):
    name = new_name("s")
    make(stack, admin, name)
    b = password_session(stack, name)
    assert change(stack, admin, name, {"disabled": True}).json()["disabled"] is True
    assert stack.whoami(b) is None
    assert password_session(stack, name) is None
    r = stack.login_token(stack.browser(), stack.mint(name))
    assert r.status_code == 403 and "disabled" in r.text
    assert change(stack, admin, name, {"disabled": False}).status_code == 200
    assert password_session(stack, name) is not None
    assert stack.login_token(stack.browser(), stack.mint(name)).status_code == 302
    assert [a for _, a in audit(stack, name)] == ["create", "disable", "enable"]


def test_role_change_gives_the_hub_roles_now(stack, admin):
    name = new_name("t")
    make(stack, admin, name)
    assert change(stack, admin, name, {"role": "teacher"}).status_code == 200
    assert "classhub-teacher" in stack.user_model(name)["roles"]
    assert change(stack, admin, name, {"role": "admin"}).status_code == 200
    assert stack.user_model(name)["admin"] is True
    assert change(stack, admin, name, {"role": "student"}).status_code == 200
    model = stack.user_model(name)
    assert model["admin"] is False and "classhub-student" in model["roles"]
    assert audit(stack, name)[-1] == (admin.admin_name, "role")


def test_delete_stops_the_servers_and_removes_the_hub_user_not_the_home(stack, admin):
    name = new_name("s")
    make(stack, admin, name)
    stack.spawn(name)
    assert [c for c in stack.containers() if c.labels.get("classhub.user") == name]
    volumes_before = {v.name for v in stack.volumes()}
    r = stack.browser_api(admin, "DELETE", f"/classhub/accounts/{name}")
    assert r.status_code == 204, r.text
    assert stack.api("GET", f"/users/{name}").status_code == 404
    assert not [c for c in stack.containers() if c.labels.get("classhub.user") == name]
    # home clean-up is the user-deletion work's (with its own confirmation): nothing gone
    assert {v.name for v in stack.volumes()} >= volumes_before
    assert password_session(stack, name) is None
    assert audit(stack, name)[-1] == (admin.admin_name, "delete")


def test_students_and_teachers_cannot_use_the_accounts_api(stack, admin):
    victim = new_name("s")
    make(stack, admin, victim)
    for role in ("student", "teacher"):
        b = stack.browser()
        assert stack.login_token(b, stack.mint(new_name(role[0]), role=role)).status_code == 302
        for method, path, body in (
            ("GET", "/classhub/accounts", None),
            ("POST", "/classhub/accounts", {"username": new_name("x"), "role": "admin"}),
            ("PATCH", f"/classhub/accounts/{victim}", {"generate_password": True}),
            ("PATCH", f"/classhub/accounts/{admin.admin_name}", {"disabled": True}),
            ("DELETE", f"/classhub/accounts/{victim}", None),
            ("GET", "/classhub/account-audit", None),
        ):
            r = stack.browser_api(b, method, path, json=body)
            assert r.status_code == 403, (role, method, path, r.status_code)
    assert password_session(stack, victim) is not None
    # the admin's cookies without the XSRF token (a forged cross-site request)
    r = stack.browser_api(
        admin,
        "PATCH",
        f"/classhub/accounts/{victim}",
        json={"disabled": True},
        headers={"X-XSRFToken": ""},
    )
    assert r.status_code == 403
    assert password_session(stack, victim) is not None


def test_the_audit_api_lists_the_changes(stack, admin):
    name = new_name("s")
    make(stack, admin, name)
    change(stack, admin, name, {"disabled": True})
    r = stack.browser_api(admin, "GET", "/classhub/account-audit", params={"username": name})
    assert r.status_code == 200
    entries = r.json()["entries"]
    assert [e["action"] for e in entries] == ["disable", "create"]
    assert {e["actor"] for e in entries} == {admin.admin_name}


# ----- the page in Chromium


def test_the_page_searches_and_disables_a_row(stack, admin, chromium, tmp_path):
    tag = new_name("pg")
    names = [f"{tag}-a", f"{tag}-b"]
    for name in names:
        make(stack, admin, name)
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(20_000)
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(f"{stack.url}/hub/login?next={quote('/hub/classhub/accounts', safe='')}")
        page.fill("#token_input", stack.mint(new_name("adm"), "admin"))
        page.click("#token_submit")
        page.wait_for_url("**/hub/classhub/accounts")
        page.fill("#account-search", tag)
        page.click("#search-accounts [type=submit]")
        page.wait_for_function(
            "n => document.querySelectorAll('#accounts-table tbody tr').length === n", arg=2
        )
        shown = page.eval_on_selector_all(
            "#accounts-table tbody tr", "rows => rows.map(r => r.dataset.key)"
        )
        assert shown == names
        assert page.inner_text("#accounts-count").strip() == "1–2 of 2"
        row = page.locator(f'#accounts-table tr[data-key="{names[1]}"]')
        page.once("dialog", lambda d: d.accept())
        row.locator('[data-action="disable"]').click()
        wait_for(
            lambda: row.locator('[data-field="status"]').inner_text() == "disabled",
            20,
            what="the row says disabled",
        )
        assert row.locator('[data-action="disable"]').inner_text() == "Enable"
        assert "disabled" in page.inner_text("#action-alert")
        assert password_session(stack, names[1]) is None
        assert password_session(stack, names[0]) is not None
        assert not problems, problems
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print("screenshot:", tmp_path / "failure.png", problems)
        raise
    finally:
        context.close()
