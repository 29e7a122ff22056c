"""One session per person under the ``takeover`` policy; logout, an admin ending a
session, idle expiry and Redis going away, through the hub and ``refresh_user``."""

import asyncio

from jupyterhub import orm

from tests.hub.conftest import ADMIN, ADMIN_PASSWORD, HUB, hub_user, mint, new_name, stale

pytestmark = HUB


def session_key(name: str) -> str:
    return f"classhub:session:{name}"


def session_token(app, name: str, session_id: str | None) -> str:
    """An API token of ``name`` tagged with a browser session, as the hub's OAuth
    tokens for that browser are (``session_id=None``: a token an admin issued)."""
    return orm.APIToken.new(user=hub_user(app, name), session_id=session_id, note="hub tier")


async def with_token(b, token: str, path: str = "/user"):
    return await b.request("GET", "hub/api" + path, headers={"Authorization": f"token {token}"})


async def test_a_new_sign_in_takes_over_and_the_old_browser_is_out(app, browser):
    name, old, new = new_name(), browser(), browser()
    assert (await old.login_token(mint(name))).status_code == 302
    old_session = old.cookie("jupyterhub-session-id")
    assert (await new.login_token(mint(name))).status_code == 302
    assert await new.whoami() == name
    assert await old.whoami() is None
    home = await old.request("GET", "hub/home")
    assert home.status_code == 302 and "/hub/login" in home.headers["Location"]
    live, _ = await app.authenticator.sessions.get(name)
    assert live.session_id == new.cookie("jupyterhub-session-id") != old_session


def committed_cookie_id(app, name: str) -> str:
    """``name``'s cookie id as another connection to the hub's database sees it: only
    what has been committed."""
    import sqlite3

    path = app.db.get_bind().url.database
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT cookie_id FROM users WHERE name = ?", (name,)).fetchone()[0]


async def test_a_new_sign_in_has_a_new_cookie_id_committed_before_it_answers(app, browser):
    """The new cookie id (it ends every other browser's hub cookie) is stored with the
    sign-in's own commit, for a new person and a returning one alike."""
    name, old, new = new_name(), browser(), browser()
    assert (await old.login_token(mint(name))).status_code == 302
    first = committed_cookie_id(app, name)
    assert await old.whoami() == name
    assert (await new.login_token(mint(name))).status_code == 302
    second = committed_cookie_id(app, name)
    assert second != first
    assert await new.whoami() == name
    # the old browser's hub cookie names the old id: refused, even with a live session
    stale_copy = browser()
    stale_copy.session.cookies.update(old.session.cookies)
    stale_copy.session.cookies.set(
        "jupyterhub-session-id", new.cookie("jupyterhub-session-id"), path="/hub/"
    )
    assert await stale_copy.whoami() is None
    assert committed_cookie_id(app, name) == second


async def test_takeover_revokes_the_old_sessions_tokens_at_once(app, browser):
    name, old = new_name(), browser()
    await old.login_token(mint(name))
    old_token = session_token(app, name, old.cookie("jupyterhub-session-id"))
    issued = session_token(app, name, None)  # not a browser's: not the session's
    assert (await with_token(browser(), old_token)).status_code == 200
    await browser().login_token(mint(name))
    r = await with_token(browser(), old_token)
    assert r.status_code == 403
    assert orm.APIToken.find(app.db, old_token) is None  # deleted, not only refused
    r = await with_token(browser(), issued)
    assert r.status_code == 200 and r.json()["name"] == name


async def test_parallel_sign_ins_leave_exactly_one_session(app, browser):
    name = new_name()
    browsers = [browser() for _ in range(12)]
    results = await asyncio.gather(*(b.login_token(mint(name)) for b in browsers))
    assert [r.status_code for r in results] == [302] * len(browsers)
    who = await asyncio.gather(*(b.whoami() for b in browsers))
    assert who.count(name) == 1, who
    winner = browsers[who.index(name)]
    live, _ = await app.authenticator.sessions.get(name)
    assert live.session_id == winner.cookie("jupyterhub-session-id")


async def test_logout_ends_the_session_and_every_copy_of_the_cookie(app, browser):
    name, b = new_name(), browser()
    await b.login_token(mint(name))
    copy = browser()
    copy.session.cookies.update(b.session.cookies)  # a copied (stolen) cookie jar
    assert await copy.whoami() == name
    token = session_token(app, name, b.cookie("jupyterhub-session-id"))
    r = await b.logout()
    assert r.status_code == 302
    assert await b.whoami() is None
    assert await copy.whoami() is None
    assert await app.fake_redis.exists(session_key(name)) == 0
    assert orm.APIToken.find(app.db, token) is None


async def admin_browser(browser):
    b = browser()
    assert (await b.login_password(ADMIN, ADMIN_PASSWORD)).status_code == 302
    return b


async def test_an_admin_lists_and_ends_a_session(app, browser):
    name, b = new_name(), browser("10.1.2.3")
    await b.login_token(mint(name))
    admin = await admin_browser(browser)
    r = await admin.api("GET", "/classhub/sessions")
    assert r.status_code == 200
    mine = [s for s in r.json()["sessions"] if s["user"] == name]
    assert len(mine) == 1 and "session_id" not in mine[0]
    assert mine[0]["method"] == "jwt" and mine[0]["address"] == "10.1.2.3"
    assert mine[0]["device"] == "Firefox on Linux"
    assert 0 < mine[0]["idle_expires_in"] <= 7200
    r = await admin.api("DELETE", f"/classhub/sessions/{name}")
    assert r.status_code == 204
    assert await b.whoami() is None
    r = await admin.api("DELETE", f"/classhub/sessions/{name}")
    assert r.status_code == 404 and "no active session" in r.json()["message"]
    page = await admin.request("GET", "hub/classhub/sessions")
    assert page.status_code == 200 and "Active sessions" in page.text
    assert await admin.whoami() == ADMIN  # ending someone else's session left the admin's


async def test_only_admins_see_or_end_sessions(app, browser):
    name, b = new_name(), browser()
    await b.login_token(mint(name, role="teacher"))
    victim, vb = new_name(), browser()
    await vb.login_token(mint(victim))
    assert (await b.api("GET", "/classhub/sessions")).status_code == 403
    assert (await b.api("DELETE", f"/classhub/sessions/{victim}")).status_code == 403
    assert (await b.request("GET", "hub/classhub/sessions")).status_code == 403
    assert await vb.whoami() == victim


async def test_an_idle_session_ends_and_activity_keeps_it(app, browser):
    name, b = new_name(), browser()
    await b.login_token(mint(name))
    redis = app.fake_redis
    await redis.pexpire(session_key(name), 1500)
    stale(app, name)
    assert await b.whoami() == name  # refresh_user saw activity: the idle time restarts
    assert await redis.pttl(session_key(name)) > 7000_000
    await redis.pexpire(session_key(name), 1)
    await asyncio.sleep(0.05)
    stale(app, name)
    assert await b.whoami() is None
    home = await b.request("GET", "hub/home")
    assert home.status_code == 302 and "/hub/login" in home.headers["Location"]


async def test_a_websocket_recheck_is_not_activity(app, browser):
    name, b = new_name(), browser()
    await b.login_token(mint(name))
    redis = app.fake_redis
    await redis.pexpire(session_key(name), 60_000)
    stale(app, name)
    r = await b.api("GET", "/user", headers={"X-Classhub-Recheck": "websocket"})
    assert r.status_code == 200 and r.json()["name"] == name
    assert await redis.pttl(session_key(name)) <= 60_000  # still live, not extended
    stale(app, name)
    assert await b.whoami() == name
    assert await redis.pttl(session_key(name)) > 60_000


async def test_a_session_token_stops_working_when_its_session_ends(app, browser):
    """refresh_user on API requests (auth_refresh_strict): a token of an ended browser
    session is refused, a token without a session keeps its owner's rights."""
    name, b = new_name(), browser()
    await b.login_token(mint(name))
    token = session_token(app, name, b.cookie("jupyterhub-session-id"))
    issued = session_token(app, name, None)
    await app.fake_redis.delete(session_key(name))  # ended outside this hub (expired)
    stale(app, name)
    assert (await with_token(browser(), token)).status_code == 403
    stale(app, name)
    r = await with_token(browser(), issued)
    assert r.status_code == 200 and r.json()["name"] == name


async def test_redis_down_fails_sign_in_closed_and_keeps_serving_the_signed_in(app, browser):
    name, signed = new_name(), browser()
    await signed.login_token(mint(name))
    server = app.fake_redis.connection_pool.connection_kwargs["server"]
    server.connected = False
    try:
        r = await browser().login_token(mint(new_name()))
        assert r.status_code == 503 and "session store cannot be reached" in r.text
        r = await browser().login_password(ADMIN, ADMIN_PASSWORD)
        assert r.status_code == 503
        stale(app, name)
        assert await signed.whoami() == name
    finally:
        server.connected = True
    again = browser()
    assert (await again.login_token(mint(new_name()))).status_code == 302
    assert await again.whoami() is not None
