"""Where people land after sign-in, and the ``next`` address, through the hub's own
handlers (JupyterHub's login handler with classhub's, ``default_url`` and the landing
page, hub/landing.py). The spawn itself (a real class server) is in
tests/integration/test_landing.py."""

from urllib.parse import quote

import pytest
import pytest_asyncio

from tests.hub.conftest import ADMIN, ADMIN_PASSWORD, HUB, hub_user, mint, new_name

pytestmark = HUB

LANDING = "/hub/classhub/landing"


@pytest_asyncio.fixture(loop_scope="module")
async def admin(browser):
    b = browser()
    r = await b.login_password(ADMIN, ADMIN_PASSWORD)
    assert r.status_code == 302, r.text
    return b


async def enrol(admin, user: str, *codes: str, archived: tuple[str, ...] = ()) -> None:
    """Make ``user`` a student of classes ``codes`` (groups ``class-<code>``)."""
    r = await admin.api("POST", f"/users/{user}")
    assert r.status_code in (201, 409), r.text
    for code in codes:
        group = f"class-{code}"
        r = await admin.api("POST", f"/groups/{group}")
        assert r.status_code in (201, 409), r.text
        props = {
            "classhub": {"code": code, "name": code, "image": "x", "archived": code in archived}
        }
        r = await admin.api("PUT", f"/groups/{group}/properties", json=props)
        assert r.status_code == 200, r.text
        r = await admin.api("POST", f"/groups/{group}/users", json={"users": [user]})
        assert r.status_code == 200, r.text


async def land(b) -> str:
    r = await b.request("GET", LANDING.lstrip("/"))
    assert r.status_code == 302, r.text
    return r.headers["Location"]


async def test_sign_in_without_next_goes_to_the_landing_page(browser):
    r = await browser().login_token(mint(new_name()))
    assert r.status_code == 302 and r.headers["Location"] == LANDING


async def test_a_student_with_one_class_lands_in_its_server(admin, browser):
    name, code = new_name("s"), new_name("c")
    await enrol(admin, name, code)
    b = browser()
    assert (await b.login_token(mint(name))).headers["Location"] == LANDING
    # the hub's spawn page of the class server: it starts it and opens its JupyterLab
    assert await land(b) == f"/hub/spawn/{name}/{code}"


async def test_a_student_with_several_classes_lands_on_my_classes(admin, browser):
    name = new_name("s")
    await enrol(admin, name, new_name("c"), new_name("c"))
    b = browser()
    await b.login_token(mint(name))
    assert await land(b) == "/services/classes/"


async def test_an_archived_class_does_not_count(admin, browser):
    name, live, old = new_name("s"), new_name("c"), new_name("c")
    await enrol(admin, name, live, old, archived=(old,))
    b = browser()
    await b.login_token(mint(name))
    assert await land(b) == f"/hub/spawn/{name}/{live}"


@pytest.mark.parametrize("role", ["teacher", "admin"])
async def test_teachers_and_admins_land_on_my_classes(admin, browser, role):
    name = new_name("t")
    await enrol(admin, name, new_name("c"))  # a class of their own as a student, even
    b = browser()
    await b.login_token(mint(name, role=role))
    assert await land(b) == "/services/classes/"


async def test_the_landing_page_asks_who_you_are(browser):
    r = await browser().request("GET", LANDING.lstrip("/"))
    assert r.status_code == 302 and "/hub/login" in r.headers["Location"]


CLASS_PAGE = "/services/classes/classes/bio?tab=roster"


async def test_next_survives_token_sign_in(browser):
    r = await browser().request(
        "POST", "hub/login?next=" + quote(CLASS_PAGE, safe=""), data={"token": mint(new_name())}
    )
    assert r.status_code == 302 and r.headers["Location"] == CLASS_PAGE


async def test_next_survives_password_sign_in(admin, browser):
    name, password = new_name("p"), "a-long-enough-password-1"
    r = await admin.api(
        "POST",
        "/classhub/accounts",
        json={"username": name, "role": "student", "password": password},
    )
    assert r.status_code in (200, 201), r.text
    b = browser()
    page = await b.request("GET", "hub/login?next=" + quote(CLASS_PAGE, safe=""))
    assert page.status_code == 200
    r = await b.request(
        "POST",
        "hub/login?next=" + quote(CLASS_PAGE, safe=""),
        data={"username": name, "password": password, "_xsrf": b.cookie("_xsrf") or ""},
    )
    assert r.status_code == 302 and r.headers["Location"] == CLASS_PAGE


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/x", "///evil.example/x"]
)
async def test_an_off_site_next_lands_on_the_landing_page(browser, next_url):
    r = await browser().request(
        "POST", "hub/login?next=" + quote(next_url, safe=""), data={"token": mint(new_name())}
    )
    assert r.status_code == 302 and r.headers["Location"] == LANDING


async def test_the_home_page_offers_a_student_no_server_they_may_not_start(admin, browser):
    name = new_name("s")
    await enrol(admin, name, new_name("c"))
    b = browser()
    await b.login_token(mint(name))
    home = await b.request("GET", "hub/home")
    assert home.status_code == 200
    assert "Start My Server" not in home.text and 'id="start"' not in home.text
    assert "Add New Server" not in home.text
    assert 'id="classhub-class-servers-note"' in home.text


async def test_the_home_page_offers_a_teacher_their_own_server(browser):
    b = browser()
    await b.login_token(mint(new_name("t"), role="teacher"))
    home = await b.request("GET", "hub/home")
    assert home.status_code == 200 and 'id="start"' in home.text
    assert "Add New Server" not in home.text  # named servers are class servers


async def test_the_home_page_says_why_a_class_server_cannot_start(admin, browser, app):
    """A class server the student may not start any more (archived, or a class they
    left) shows the reason instead of a start button that ends on a 403 page."""
    name, live, old, left = new_name("s"), new_name("c"), new_name("c"), new_name("c")
    await enrol(admin, name, live, old, left, archived=(old,))
    r = await admin.api("DELETE", f"/groups/class-{left}/users", json={"users": [name]})
    assert r.status_code == 200, r.text
    user = app.users[hub_user(app, name)]
    for code in (live, old, left):
        user._new_orm_spawner(code, code)  # a server they had (stopped now)
    app.db.commit()
    b = browser()
    await b.login_token(mint(name))
    home = await b.request("GET", "hub/home")
    assert home.status_code == 200
    assert f'id="start-{live}"' in home.text
    for code in (old, left):
        assert f'id="start-{code}"' not in home.text
    assert "is archived: its servers cannot start" in home.text
    assert "You are not enrolled in" in home.text
