"""Sign-in through the hub's own handlers: tokens, passwords, refusals, auth state.

The same hub as production (JupyterHub's login and logout handlers with classhub's
subclasses, the JWTAuthenticator, the session store's Lua scripts) on MockHub, with the
``takeover`` policy (the default).
"""

import time
from urllib.parse import quote

import jwt
import pytest

from tests.hub.conftest import ADMIN, ADMIN_PASSWORD, HUB, JWT_SECRET, hub_user, mint, new_name

pytestmark = HUB


# ----- token sign-in -----


async def test_a_posted_token_signs_in_with_the_hubs_cookies(app, browser):
    name, b = new_name(), browser()
    r = await b.login_token(mint(name))
    assert r.status_code == 302, r.text
    assert r.headers["Location"].startswith("/hub/")
    assert {"jupyterhub-hub-login", "jupyterhub-session-id"} <= {c.name for c in b.session.cookies}
    assert await b.whoami() == name
    # the browser's session is the live one in Redis
    live = await app.authenticator.sessions.get(name)
    assert live[0].session_id == b.cookie("jupyterhub-session-id")
    assert live[0].method == "jwt" and live[0].address == "127.0.0.1"


async def test_a_bearer_header_signs_in(app, browser):
    name, b = new_name(), browser()
    r = await b.request("GET", "hub/login", headers={"Authorization": "Bearer " + mint(name)})
    assert r.status_code == 302, r.text
    assert await b.whoami() == name


async def test_a_token_is_accepted_once(app, browser):
    token = mint(new_name())
    assert (await browser().login_token(token)).status_code == 302
    r = await browser().login_token(token)
    assert r.status_code == 401
    assert "already used" in r.text


@pytest.mark.parametrize(
    "claims, key, status, words",
    [
        ({"aud": "another-service"}, JWT_SECRET, 401, "wrong audience"),
        ({"iss": "someone-else"}, JWT_SECRET, 401, "issuer this hub does not trust"),
        ({"exp": int(time.time()) - 120}, JWT_SECRET, 401, "expired"),
        ({"role": "wizard"}, JWT_SECRET, 401, "role must be one of"),
        ({}, "another-secret-of-at-least-thirty-two-bytes", 401, "signature is not valid"),
        ({"jti": None}, JWT_SECRET, 401, "missing the required"),
    ],
)
async def test_bad_tokens_are_refused_with_the_reason(app, browser, claims, key, status, words):
    name, b = new_name(), browser()
    r = await b.login_token(mint(name, key=key, **claims))
    assert r.status_code == status, r.text
    assert "Sign-in token refused" in r.text and words in r.text
    assert await b.whoami() is None
    assert hub_user(app, name) is None  # no user is created for a refused token


async def test_an_unsigned_token_is_refused(app, browser):
    token = jwt.encode({"sub": new_name(), "iss": "classhub", "aud": "classhub"}, None, "none")
    r = await browser().login_token(token)
    assert r.status_code == 401


async def test_a_token_in_the_address_is_refused_before_it_is_read(app, browser):
    name, b = new_name(), browser()
    r = await b.request("GET", "hub/login?next=%2Fhub%2F&t=" + mint(name))
    assert r.status_code == 400
    assert "not accepted in web addresses" in r.text
    assert hub_user(app, name) is None
    r = await b.request("POST", "hub/login?token=x", data={"token": mint(name)})
    assert r.status_code == 400


async def test_usernames_are_normalised_without_collisions(app, browser):
    suffix = new_name("")
    upper, b = f"Ann.{suffix}@A.example", browser()
    assert (await b.login_token(mint(upper))).status_code == 302
    assert await b.whoami() == upper.lower()
    other = browser()
    assert (await other.login_token(mint(f"ann.{suffix}@b.example"))).status_code == 302
    assert await other.whoami() == f"ann.{suffix}@b.example"
    assert await b.whoami() == upper.lower()  # a different person: no takeover


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
async def test_next_never_leaves_the_hub(app, browser, next_url):
    r = await browser().request(
        "POST", "hub/login?next=" + quote(next_url, safe=""), data={"token": mint(new_name())}
    )
    assert r.status_code == 302
    location = r.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location


async def test_a_safe_next_is_followed(app, browser):
    r = await browser().request(
        "POST", "hub/login?next=" + quote("/hub/home"), data={"token": mint(new_name())}
    )
    assert r.status_code == 302 and r.headers["Location"] == "/hub/home"


# ----- password sign-in -----


async def test_the_first_admin_signs_in_with_the_standard_form(app, browser):
    b = browser()
    r = await b.login_password(ADMIN, ADMIN_PASSWORD)
    assert r.status_code == 302, r.text
    assert await b.whoami() == ADMIN
    assert hub_user(app, ADMIN).admin is True
    live, _ = await app.authenticator.sessions.get(ADMIN)
    assert live.method == "password"
    await b.logout()


async def test_the_login_page_offers_both_forms(app, browser):
    page = await browser().request("GET", "hub/login")
    assert page.status_code == 200
    assert 'name="password"' in page.text and 'id="token-login"' in page.text


async def test_a_password_form_without_xsrf_is_refused(app, browser):
    b = browser()
    r = await b.request("POST", "hub/login", data={"username": ADMIN, "password": ADMIN_PASSWORD})
    assert r.status_code == 403
    assert await b.whoami() is None


async def test_wrong_password_unknown_user_and_disabled_account_are_refused(app, browser):
    name = new_name()
    await app.authenticator.accounts.create(name, "right-password-1", "student")
    for user, password in ((name, "wrong-password"), (new_name(), "right-password-1")):
        b = browser()
        r = await b.login_password(user, password)
        assert r.status_code == 403, (user, r.status_code)
        assert "Invalid username or password" in r.text
        assert await b.whoami() is None
    await app.authenticator.accounts.set_disabled(name, True)
    assert (await browser().login_password(name, "right-password-1")).status_code == 403
    await app.authenticator.accounts.set_disabled(name, False)
    b = browser()
    assert (await b.login_password(name, "right-password-1")).status_code == 302
    assert await b.whoami() == name


async def test_password_sign_in_needs_the_account_store(app, browser):
    """The account database down: a 503 saying so, for token sign-in too (it cannot
    tell whether an admin disabled the account); both work again once it is back."""
    app.authenticator.accounts.down = True
    name = new_name()
    try:
        r = await browser().login_password(ADMIN, ADMIN_PASSWORD)
        assert r.status_code == 503
        assert "account database cannot be reached" in r.text
        r = await browser().login_token(mint(name))
        assert r.status_code == 503 and "account database cannot be reached" in r.text
    finally:
        app.authenticator.accounts.down = False
    b = browser()
    assert (await b.login_token(mint(name))).status_code == 302
    assert await b.whoami() == name


# ----- what a sign-in stores -----


async def test_auth_state_holds_the_claims_encrypted(app, browser):
    name = new_name()
    token = mint(name, role="teacher", email="t@x.example")
    assert (await browser().login_token(token)).status_code == 302
    orm_user = hub_user(app, name)
    assert orm_user.encrypted_auth_state
    assert b"t@x.example" not in orm_user.encrypted_auth_state
    state = await app.users[orm_user.id].get_auth_state()
    assert state["method"] == "jwt" and state["role"] == "teacher"
    assert state["claims"]["email"] == "t@x.example"


async def test_token_sign_in_without_a_role_claim_is_a_student(app, browser):
    name = new_name()
    assert (await browser().login_token(mint(name, role=None))).status_code == 302
    roles = {r.name for r in hub_user(app, name).roles}
    assert roles == {"user", "classhub-student"}
