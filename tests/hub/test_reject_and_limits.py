"""A hub with the ``reject`` policy, small login limits and a blocked user: a second
sign-in is refused with where and how, failed sign-ins lock an account only from the
guessing address, JupyterHub's block list turns a valid token away.

Each test signs in from its own client addresses (``X-Real-Ip``, believed from loopback as
from Traefik), so the per-address counts of one test never touch another's.
"""

import asyncio

import pytest

from tests.hub.conftest import HUB, hub_user, mint, new_name

pytestmark = HUB

PASSWORD = "right-password-1"


@pytest.fixture(scope="module")
def hub_settings():
    return {
        "session_policy": "reject",
        "login_failures_per_user": 3,
        "login_failures_per_address": 6,
        "login_slowdown_after": 4,
        "login_slowdown_step": 0.05,
        "login_slowdown_max": 0.1,
        "blocked_users": {"blocked-person"},
    }


async def account(app, role="student") -> str:
    name = new_name()
    await app.authenticator.accounts.create(name, PASSWORD, role)
    return name


# ----- reject -----


async def test_a_second_sign_in_is_refused_with_where_and_how(app, browser):
    name, first, second = new_name(), browser("10.2.0.1"), browser("10.2.0.2")
    assert (await first.login_token(mint(name))).status_code == 302
    r = await second.login_token(mint(name))
    assert r.status_code == 409
    for words in ("already signed in elsewhere", "Firefox on Linux at 10.2.0.1", "Sign out there"):
        assert words in r.text, words
    assert "ask an admin" in r.text and "120 minutes" in r.text
    assert await first.whoami() == name
    assert await second.whoami() is None
    # the same browser signing in again keeps its session
    session = first.cookie("jupyterhub-session-id")
    assert (await first.login_token(mint(name))).status_code == 302
    assert await first.whoami() == name
    assert first.cookie("jupyterhub-session-id") == session
    # once the first signs out, the other gets in
    await first.logout()
    assert (await second.login_token(mint(name))).status_code == 302
    assert await second.whoami() == name


async def test_parallel_sign_ins_under_reject_let_exactly_one_in(app, browser):
    name = new_name()
    browsers = [browser(f"10.3.0.{i}") for i in range(1, 13)]
    results = await asyncio.gather(*(b.login_token(mint(name)) for b in browsers))
    codes = [r.status_code for r in results]
    assert codes.count(302) == 1 and codes.count(409) == len(browsers) - 1, codes
    who = await asyncio.gather(*(b.whoami() for b in browsers))
    assert who.count(name) == 1


async def test_an_admin_ending_the_session_lets_the_person_in_elsewhere(app, browser):
    name, first, second = new_name(), browser("10.4.0.1"), browser("10.4.0.2")
    await first.login_token(mint(name))
    assert (await second.login_token(mint(name))).status_code == 409
    admin = browser("10.4.0.9")
    await app.authenticator.accounts.create("boss-" + name, PASSWORD, "admin")
    assert (await admin.login_password("boss-" + name, PASSWORD)).status_code == 302
    assert (await admin.api("DELETE", f"/classhub/sessions/{name}")).status_code == 204
    assert await first.whoami() is None
    assert (await second.login_token(mint(name))).status_code == 302


async def test_a_blocked_user_is_turned_away_with_a_valid_token(app, browser):
    b = browser("10.4.1.1")
    r = await b.login_token(mint("blocked-person"))
    assert r.status_code == 403
    assert "may not sign in to this hub" in r.text
    assert await b.whoami() is None
    assert await app.fake_redis.exists("classhub:session:blocked-person") == 0


# ----- login limits -----


async def test_failed_passwords_lock_the_account_only_from_that_address(app, browser):
    name, other = await account(app), await account(app)
    for _ in range(3):
        r = await browser("10.5.0.1").login_password(name, "wrong-password")
        assert r.status_code == 403
    r = await browser("10.5.0.1").login_password(name, PASSWORD)
    assert r.status_code == 429
    assert "Too many failed sign-ins for this account from this address" in r.text
    # another account from the same address, and the owner from another address
    assert (await browser("10.5.0.1").login_password(other, PASSWORD)).status_code == 302
    b = browser("10.5.0.2")
    assert (await b.login_password(name, PASSWORD)).status_code == 302
    assert await b.whoami() == name


async def test_a_guessing_address_is_refused_for_every_account(app, browser):
    names = [await account(app) for _ in range(3)]
    for name in names:  # 2 failures each: no account lock, 6 for the address
        for _ in range(2):
            r = await browser("10.6.0.1").login_password(name, "wrong-password")
            assert r.status_code == 403
    fresh = await account(app)
    r = await browser("10.6.0.1").login_password(fresh, PASSWORD)
    assert r.status_code == 429 and "from this address" in r.text
    r = await browser("10.6.0.1").login_token(mint(new_name()))
    assert r.status_code == 429
    assert (await browser("10.6.0.2").login_password(fresh, PASSWORD)).status_code == 302


async def test_refused_tokens_count_against_the_address(app, browser):
    for _ in range(6):
        r = await browser("10.7.0.1").login_token(mint(new_name(), aud="elsewhere"))
        assert r.status_code == 401
    name = new_name()
    r = await browser("10.7.0.1").login_token(mint(name))
    assert r.status_code == 429
    assert hub_user(app, name) is None
    assert (await browser("10.7.0.2").login_token(mint(name))).status_code == 302


async def test_a_success_clears_the_accounts_count_from_that_address(app, browser):
    name = await account(app)
    for _ in range(2):
        await browser("10.8.0.1").login_password(name, "wrong-password")
    b = browser("10.8.0.1")
    assert (await b.login_password(name, PASSWORD)).status_code == 302
    await b.logout()
    for _ in range(2):  # counted from zero again: 2 < 3, no lock
        assert (await browser("10.8.0.1").login_password(name, "nope-nope")).status_code == 403
    assert (await browser("10.8.0.1").login_password(name, PASSWORD)).status_code == 302


async def test_the_account_wide_slow_down_never_locks_the_owner_out(app, browser):
    """Failures from many addresses together slow the account's password checks down
    (``login_slowdown_*``), never lock it: the owner still signs in from a new address."""
    name = await account(app)
    for i in range(1, 5):  # one failure from each of four addresses: no lock anywhere
        r = await browser(f"10.9.0.{i}").login_password(name, "wrong-password")
        assert r.status_code == 403
    verdict = await app.authenticator.limiter.check(name, "10.9.9.9")
    assert verdict.retry_after == 0 and verdict.delay == pytest.approx(0.05)
    b = browser("10.9.9.9")
    assert (await b.login_password(name, PASSWORD)).status_code == 302
    assert await b.whoami() == name
