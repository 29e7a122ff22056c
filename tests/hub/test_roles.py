"""Roles in the hub's database: each classhub role's hub roles and scopes, admin-made
accounts, and the per-class ``teacher-<code>`` roles that ``refresh_user`` keeps in step
with the class rosters (the hub groups ``teachers-<code>`` and ``class-<code>``)."""

import pytest_asyncio
from jupyterhub import orm

from authenticator.roles import STUDENT_SCOPES
from tests.hub.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    HUB,
    Browser,
    hub_user,
    mint,
    new_name,
    role_names,
    stale,
)

pytestmark = HUB


async def signed_in(browser, name, role="student"):
    b = browser()
    assert (await b.login_token(mint(name, role=role))).status_code == 302
    return b


def scopes_of(app, role: str) -> set[str]:
    app.db.expire_all()
    return set(orm.Role.find(app.db, role).scopes)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin_token(app):
    """An API token of the first admin, as the classes service's own token would be
    used to manage groups (the admin holds every scope the service's role has)."""
    b = Browser(app.url)
    assert (await b.login_password(ADMIN, ADMIN_PASSWORD)).status_code == 302
    return orm.APIToken.new(user=hub_user(app, ADMIN), note="hub tier groups")


async def hub_api(app, token, method, path, **kwargs):
    return await Browser(app.url).request(
        method, "hub/api" + path, headers={"Authorization": f"token {token}"}, **kwargs
    )


# ----- the three classhub roles -----


async def test_each_classhub_role_has_its_hub_roles(app, browser):
    student, teacher, admin = new_name("s"), new_name("t"), new_name("a")
    for name, role in ((student, "student"), (teacher, "teacher"), (admin, "admin")):
        await signed_in(browser, name, role)
    assert role_names(app, student) == {"user", "classhub-student"}
    assert role_names(app, teacher) == {"user", "classhub-teacher"}
    assert role_names(app, admin) == {"user", "admin"}
    assert [hub_user(app, n).admin for n in (student, teacher, admin)] == [False, False, True]
    # the redefined default role: a student's rights, and no API tokens
    assert scopes_of(app, "user") == set(STUDENT_SCOPES)
    assert scopes_of(app, "classhub-student") == set(STUDENT_SCOPES)
    assert not any(s.split("!")[0] == "tokens" for s in scopes_of(app, "user"))


async def test_a_student_holds_only_their_own_scopes(app, browser):
    name = new_name("s")
    b = await signed_in(browser, name)
    me = await b.api("GET", "/user")
    assert me.status_code == 200
    scopes = set(me.json()["scopes"])
    assert f"servers!user={name}" in scopes and f"access:servers!user={name}" in scopes
    assert "access:services!service=classes" in scopes
    assert not {s for s in scopes if s.startswith(("tokens", "admin", "list:users", "groups"))}
    assert (await b.api("POST", f"/users/{name}/tokens", json={"note": "mine"})).status_code == 403
    assert (await b.api("GET", "/users")).status_code == 403
    assert (await b.api("GET", "/classhub/accounts")).status_code == 403
    assert (await b.api("POST", "/classhub/accounts", json={"username": "x"})).status_code == 403
    home = await b.request("GET", "hub/home")
    assert home.status_code == 200 and "/hub/token" not in home.text


async def test_a_sign_in_with_another_role_replaces_the_roles(app, browser):
    name = new_name()
    await signed_in(browser, name, "student")
    await signed_in(browser, name, "teacher")
    assert role_names(app, name) == {"user", "classhub-teacher"}
    await signed_in(browser, name, "admin")
    assert role_names(app, name) == {"user", "admin"} and hub_user(app, name).admin
    await signed_in(browser, name, "student")
    assert role_names(app, name) == {"user", "classhub-student"}
    assert hub_user(app, name).admin is False


async def test_an_admin_made_account_has_its_hub_roles_before_signing_in(app, browser):
    admin = browser()
    assert (await admin.login_password(ADMIN, ADMIN_PASSWORD)).status_code == 302
    name = new_name("t")
    r = await admin.api("POST", "/classhub/accounts", json={"username": name, "role": "teacher"})
    assert r.status_code == 201, r.text
    password = r.json()["password"]  # generated, shown once
    assert role_names(app, name) == {"user", "classhub-teacher"}
    # the person signs in; an admin changes the role: hub roles now, session ended
    b = browser()
    assert (await b.login_password(name, password)).status_code == 302
    r = await admin.api("PATCH", f"/classhub/accounts/{name}", json={"role": "student"})
    assert r.status_code == 200 and r.json()["role"] == "student"
    assert role_names(app, name) == {"user", "classhub-student"}
    assert await b.whoami() is None
    r = await admin.api("PATCH", f"/classhub/accounts/{ADMIN}", json={"role": "student"})
    assert r.status_code == 400 and "cannot demote your own" in r.json()["message"]
    assert role_names(app, ADMIN) >= {"admin"}


async def test_a_csv_import_is_all_or_nothing_and_sets_the_hub_roles(app, browser):
    admin = browser()
    assert (await admin.login_password(ADMIN, ADMIN_PASSWORD)).status_code == 302
    good, teacher = new_name("s"), new_name("t")
    bad = f"username,password,role\n{good},,student\nbad/name,,student\nx,,wizard\n"
    r = await admin.api("POST", "/classhub/accounts/import", json={"csv": bad})
    assert r.status_code == 400 and r.json()["applied"] is False
    assert {row["line"] for row in r.json()["rows"] if row["status"] == "error"} == {3, 4}
    assert await app.authenticator.accounts.get(good) is None and hub_user(app, good) is None
    ok = f"username,password,role\n{good},,student\n{teacher},a-long-password-1,teacher\n"
    r = await admin.api("POST", "/classhub/accounts/import", json={"csv": ok})
    assert r.status_code == 201, r.text
    rows = {row["username"]: row for row in r.json()["rows"]}
    assert role_names(app, good) == {"user", "classhub-student"}
    assert role_names(app, teacher) == {"user", "classhub-teacher"}
    b = browser()
    assert (await b.login_password(good, rows[good]["password"])).status_code == 302
    assert await b.whoami() == good


# ----- teacher-<code> -----


async def set_members(app, token, group, names):
    """Make hub group ``group`` hold exactly ``names`` (as the classes service's sync)."""
    r = await hub_api(app, token, "GET", f"/groups/{group}")
    if r.status_code == 404:
        r = await hub_api(app, token, "POST", f"/groups/{group}", json={})
        assert r.status_code == 201, r.text
        current = set()
    else:
        current = set(r.json()["users"])
    if current - set(names):
        body = {"users": sorted(current - set(names))}
        r = await hub_api(app, token, "DELETE", f"/groups/{group}/users", json=body)
        assert r.status_code == 200, r.text
    if set(names) - current:
        body = {"users": sorted(set(names) - current)}
        r = await hub_api(app, token, "POST", f"/groups/{group}/users", json=body)
        assert r.status_code == 200, r.text


def class_scopes(*pairs):
    out = set()
    for student, code in pairs:
        out |= {f"servers!server={student}/{code}", f"access:servers!server={student}/{code}"}
    return out


async def test_teacher_roles_follow_the_class_rosters(app, browser, admin_token):
    code = new_name("c")
    teacher, other_teacher = new_name("t"), new_name("t")
    sam, sid, admin = new_name("s"), new_name("s"), new_name("a")
    tb = await signed_in(browser, teacher, "teacher")
    await signed_in(browser, other_teacher, "teacher")
    for name in (sam, sid):
        await signed_in(browser, name, "student")
    await signed_in(browser, admin, "admin")
    never = new_name("n")  # a member the hub knows no role of yet
    r = await hub_api(app, admin_token, "POST", f"/users/{never}", json={})
    assert r.status_code == 201, r.text
    await set_members(app, admin_token, f"teachers-{code}", [teacher])
    # only sam counts: an admin, a teacher and a person without a role are not students
    await set_members(app, admin_token, f"class-{code}", [sam, admin, other_teacher, never])

    # on the teacher's next request, without signing in again
    stale(app, teacher)
    assert await tb.whoami() == teacher
    assert role_names(app, teacher) == {"user", "classhub-teacher", f"teacher-{code}"}
    assert scopes_of(app, f"teacher-{code}") == class_scopes((sam, code))
    me = set((await tb.api("GET", "/user")).json()["scopes"])
    assert class_scopes((sam, code)) <= me
    assert not {s for s in me if f"={admin}/" in s or f"={other_teacher}/" in s}

    # a student joins, another leaves: the same role's scopes change
    await set_members(app, admin_token, f"class-{code}", [sid, admin])
    stale(app, teacher)
    assert await tb.whoami() == teacher
    assert scopes_of(app, f"teacher-{code}") == class_scopes((sid, code))

    # the teacher leaves the class: the role goes
    await set_members(app, admin_token, f"teachers-{code}", [])
    stale(app, teacher)
    assert await tb.whoami() == teacher
    assert role_names(app, teacher) == {"user", "classhub-teacher"}


async def test_a_teacher_signing_in_gets_the_class_roles_at_once(app, browser, admin_token):
    code, teacher, sam = new_name("c"), new_name("t"), new_name("s")
    await signed_in(browser, sam, "student")
    await signed_in(browser, teacher, "teacher")
    await set_members(app, admin_token, f"teachers-{code}", [teacher])
    await set_members(app, admin_token, f"class-{code}", [sam])
    await set_members(app, admin_token, f"teachers-{code}-empty", [teacher])  # no students
    tb = await signed_in(browser, teacher, "teacher")  # the sign-in itself (post-auth hook)
    assert role_names(app, teacher) == {"user", "classhub-teacher", f"teacher-{code}"}
    assert scopes_of(app, f"teacher-{code}") == class_scopes((sam, code))
    # a teacher reaches the class server, not the person behind it
    assert (await tb.api("GET", f"/users/{sam}")).status_code in (403, 404)
    assert (await tb.api("GET", f"/groups/class-{code}")).status_code in (403, 404)


async def test_a_student_in_a_teachers_group_gets_no_class_roles(app, browser, admin_token):
    """Only the classhub-teacher role turns teachers-<code> into rights."""
    code, student, sam = new_name("c"), new_name("s"), new_name("s")
    await signed_in(browser, sam, "student")
    sb = await signed_in(browser, student, "student")
    await set_members(app, admin_token, f"teachers-{code}", [student])
    await set_members(app, admin_token, f"class-{code}", [sam])
    stale(app, student)
    assert await sb.whoami() == student
    assert role_names(app, student) == {"user", "classhub-student"}
    assert orm.Role.find(app.db, f"teacher-{code}") is None


async def test_a_teacher_starts_and_stops_only_their_students_class_server(
    app, browser, admin_token
):
    """Through the hub's server API, with jupyterhub's MockSpawner (a small local
    process standing in for the student's container)."""
    code, teacher, sam = new_name("c"), new_name("t"), new_name("s")
    await signed_in(browser, sam, "student")
    await signed_in(browser, teacher, "teacher")
    await set_members(app, admin_token, f"teachers-{code}", [teacher])
    await set_members(app, admin_token, f"class-{code}", [sam])
    tb = await signed_in(browser, teacher, "teacher")
    for path in (f"/users/{sam}/server", f"/users/{sam}/servers/other"):
        r = await tb.api("POST", path)
        assert r.status_code in (403, 404), (path, r.status_code)
    assert not app.users[hub_user(app, sam).id].spawners.get("other")
    r = await tb.api("POST", f"/users/{sam}/servers/{code}")
    assert r.status_code in (201, 202), r.text
    spawner = app.users[hub_user(app, sam).id].spawners[code]
    await spawner._spawn_future if spawner._spawn_future else None
    assert spawner.ready
    r = await tb.api("DELETE", f"/users/{sam}/servers/{code}")
    assert r.status_code in (202, 204), r.text
    if spawner._stop_future:
        await spawner._stop_future
    assert not spawner.active
