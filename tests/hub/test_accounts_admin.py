"""The Accounts page's actions through the hub's API (MockHub, memory account store):
search and paging, reset password, disable and enable, role change, delete; each one
audited, admin only, XSRF-protected, 4xx on bad input and 503 with the store down."""

import pytest_asyncio

from tests.hub.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    HUB,
    hub_user,
    mint,
    new_name,
    role_names,
)

pytestmark = HUB

PASSWORD = "a-long-password-1"


@pytest_asyncio.fixture(loop_scope="module")
async def admin(browser):
    b = browser()
    assert (await b.login_password(ADMIN, ADMIN_PASSWORD)).status_code == 302
    return b


async def make(admin, name, role="student", password=PASSWORD):
    r = await admin.api(
        "POST", "/classhub/accounts", json={"username": name, "role": role, "password": password}
    )
    assert r.status_code == 201, r.text


async def signed_in(browser, name, password=PASSWORD):
    b = browser()
    assert (await b.login_password(name, password)).status_code == 302
    assert await b.whoami() == name
    return b


def audited(app, name):
    return [
        (actor, action) for actor, action, who in app.authenticator.accounts.audit if who == name
    ]


async def test_search_is_server_side_and_paged(app, admin):
    tag = new_name("find")
    names = sorted(f"{tag}-{i:02d}" for i in range(7))
    for name in names:
        await make(admin, name)
    r = await admin.api("GET", "/classhub/accounts", params={"q": tag.upper(), "limit": 3})
    body = r.json()
    assert r.status_code == 200 and body["total"] == 7
    assert [a["username"] for a in body["accounts"]] == names[:3]
    r = await admin.api("GET", "/classhub/accounts", params={"q": tag, "offset": 6, "limit": 3})
    assert [a["username"] for a in r.json()["accounts"]] == names[6:]
    r = await admin.api("GET", "/classhub/accounts", params={"q": "no-such-" + tag})
    assert r.json() == {"accounts": [], "total": 0, "offset": 0, "limit": 50, "q": "no-such-" + tag}
    # a LIKE wildcard is a literal character
    r = await admin.api("GET", "/classhub/accounts", params={"q": "%"})
    assert r.json()["total"] == 0


async def test_search_refuses_bad_paging(admin):
    for params, words in (
        ({"limit": "0"}, "between 1 and"),
        ({"limit": "100000"}, "between 1 and"),
        ({"offset": "-3"}, "negative"),
        ({"offset": "x"}, "whole numbers"),
        ({"q": "y" * 200}, "too long"),
    ):
        r = await admin.api("GET", "/classhub/accounts", params=params)
        assert r.status_code == 400 and words in r.json()["message"], (params, r.text)


async def test_reset_password_generated_once_ends_the_session(app, admin, browser):
    name = new_name("s")
    await make(admin, name)
    b = await signed_in(browser, name)
    r = await admin.api("PATCH", f"/classhub/accounts/{name}", json={"generate_password": True})
    assert r.status_code == 200, r.text
    new = r.json()["password"]
    assert len(new) == 16
    assert await b.whoami() is None  # the live session ended
    assert (await browser().login_password(name, PASSWORD)).status_code == 403
    await signed_in(browser, name, new)
    # set by the admin: not echoed back
    r = await admin.api("PATCH", f"/classhub/accounts/{name}", json={"password": "another-pass-2"})
    assert r.status_code == 200 and "password" not in r.json()
    await signed_in(browser, name, "another-pass-2")
    assert audited(app, name)[-2:] == [(ADMIN, "password"), (ADMIN, "password")]


async def test_disable_stops_every_sign_in_at_once_and_enable_undoes_it(app, admin, browser):
    name = new_name("s")
    await make(admin, name)
    b = await signed_in(browser, name)
    r = await admin.api("PATCH", f"/classhub/accounts/{name}", json={"disabled": True})
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert await b.whoami() is None
    assert (await browser().login_password(name, PASSWORD)).status_code == 403
    # nor with a portal's token for the same name
    r = await browser().login_token(mint(name))
    assert r.status_code == 403 and "disabled" in r.text
    r = await admin.api("PATCH", f"/classhub/accounts/{name}", json={"disabled": False})
    assert r.status_code == 200 and r.json()["disabled"] is False
    await signed_in(browser, name)
    c = browser()
    assert (await c.login_token(mint(name))).status_code == 302
    assert audited(app, name)[-2:] == [(ADMIN, "disable"), (ADMIN, "enable")]


async def test_role_change_sets_the_hub_roles_now(app, admin, browser):
    name = new_name("t")
    await make(admin, name, "student")
    b = await signed_in(browser, name)
    r = await admin.api("PATCH", f"/classhub/accounts/{name}", json={"role": "teacher"})
    assert r.status_code == 200 and r.json()["role"] == "teacher"
    assert role_names(app, name) == {"user", "classhub-teacher"}
    assert await b.whoami() is None
    r = await admin.api("PATCH", f"/classhub/accounts/{name}", json={"role": "admin"})
    assert role_names(app, name) == {"user", "admin"} and hub_user(app, name).admin
    r = await admin.api("PATCH", f"/classhub/accounts/{name}", json={"role": "student"})
    assert role_names(app, name) == {"user", "classhub-student"} and not hub_user(app, name).admin
    assert [a for _, a in audited(app, name)][-3:] == ["role", "role", "role"]


async def test_delete_removes_the_account_and_the_hub_user(app, admin, browser):
    name = new_name("s")
    await make(admin, name)
    b = await signed_in(browser, name)
    assert hub_user(app, name) is not None
    r = await admin.api("DELETE", f"/classhub/accounts/{name}")
    assert r.status_code == 204, r.text
    assert await b.whoami() is None
    assert hub_user(app, name) is None
    assert await app.authenticator.accounts.get(name) is None
    assert (await browser().login_password(name, PASSWORD)).status_code == 403
    assert audited(app, name)[-1] == (ADMIN, "delete")
    r = await admin.api("DELETE", f"/classhub/accounts/{name}")
    assert r.status_code == 404


async def test_an_admin_cannot_lock_themself_out(admin):
    for method, body, words in (
        ("PATCH", {"disabled": True}, "cannot disable your own"),
        ("PATCH", {"role": "teacher"}, "cannot demote your own"),
        ("DELETE", None, "cannot delete your own"),
    ):
        r = await admin.api(method, f"/classhub/accounts/{ADMIN}", json=body)
        assert r.status_code == 400 and words in r.json()["message"]


async def test_bad_input_is_a_clear_4xx(admin):
    name = new_name("s")
    await make(admin, name)
    for body, status, words in (
        ({}, 400, "Nothing to change"),
        ({"disabled": "yes"}, 400, "true or false"),
        ({"generate_password": "yes"}, 400, "true or false"),
        ({"generate_password": True, "password": PASSWORD}, 400, "not both"),
        ({"password": "short"}, 400, "too short"),
        ({"role": "wizard"}, 400, "unknown role"),
        ({"role": 3}, 400, "must be a string"),
        ({"admin": True}, 400, "Unknown field"),
    ):
        r = await admin.api("PATCH", f"/classhub/accounts/{name}", json=body)
        assert r.status_code == status and words in r.json()["message"], (body, r.text)
    r = await admin.api("PATCH", "/classhub/accounts/nobody-" + name, json={"disabled": True})
    assert r.status_code == 404


async def test_only_admins_and_only_with_xsrf(app, admin, browser):
    name = new_name("s")
    await make(admin, name)
    student = await signed_in(browser, name)
    teacher = browser()
    assert (await teacher.login_token(mint(new_name("t"), role="teacher"))).status_code == 302
    for b in (student, teacher):
        for method, path, body in (
            ("GET", "/classhub/accounts", None),
            ("PATCH", f"/classhub/accounts/{name}", {"generate_password": True}),
            ("PATCH", f"/classhub/accounts/{ADMIN}", {"password": "taken-over-pass"}),
            ("DELETE", f"/classhub/accounts/{ADMIN}", None),
            ("GET", "/classhub/account-audit", None),
        ):
            r = await b.api(method, path, json=body)
            assert r.status_code == 403, (method, path, r.status_code)
    # the admin's own cookie without the XSRF token: refused, nothing changed
    r = await admin.api(
        "PATCH", f"/classhub/accounts/{name}", json={"disabled": True}, headers={"X-XSRFToken": ""}
    )
    assert r.status_code == 403
    assert (await app.authenticator.accounts.get(name)).disabled is False


async def test_the_store_down_is_a_503_and_recovers(app, admin):
    name = new_name("s")
    await make(admin, name)
    app.authenticator.accounts.down = True
    try:
        for method, path, body in (
            ("GET", "/classhub/accounts", None),
            ("PATCH", f"/classhub/accounts/{name}", {"disabled": True}),
            ("DELETE", f"/classhub/accounts/{name}", None),
        ):
            r = await admin.api(method, path, json=body)
            assert r.status_code == 503 and "account database" in r.json()["message"]
    finally:
        app.authenticator.accounts.down = False
    r = await admin.api("PATCH", f"/classhub/accounts/{name}", json={"disabled": True})
    assert r.status_code == 200
    assert hub_user(app, name) is not None  # the failed delete left the hub user alone


async def test_the_accounts_page_renders_for_admins_only(admin, browser):
    page = await admin.request("GET", "hub/classhub/accounts")
    assert page.status_code == 200
    assert 'id="account-search"' in page.text and 'id="account-row"' in page.text
    student = browser()
    assert (await student.login_token(mint(new_name("s")))).status_code == 302
    assert (await student.request("GET", "hub/classhub/accounts")).status_code == 403


async def test_a_teacher_made_account_signs_in_with_its_password_only(app, browser):
    """A portal token for the name of an account a teacher made is refused: the teacher
    knows its password, so a portal user with that name would share the account."""
    name = new_name("s")
    await app.authenticator.accounts.create(name, PASSWORD, "student", actor="tina via classes")
    r = await browser().login_token(mint(name))
    assert r.status_code == 403 and "A teacher created a local account" in r.text
    await signed_in(browser, name)
    # an admin-made account is the admin's word: the portal's token works for it
    other = new_name("s")
    await app.authenticator.accounts.create(other, PASSWORD, "student", actor=ADMIN)
    assert (await browser().login_token(mint(other))).status_code == 302
