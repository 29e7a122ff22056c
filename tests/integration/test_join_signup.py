"""Signing up with a class's join code (CLASSHUB_JOIN_CODES=1 and
CLASSHUB_JOIN_CODE_SIGNUP=1), against the real hub, the authenticator's local accounts on
PostgreSQL, the classes service and nx-27017: a visitor without an account makes a student
account on the code's roster and signs in with it; wrong codes, taken names, archived
classes and requests without the page's XSRF token get nothing; sign-ups and wrong codes
are limited per address (429 with Retry-After). In Chromium: from the hub's login page to
My classes. With the setting off (the other join-code tests' stack) the page says so."""

from __future__ import annotations

import re
import secrets

import pytest
import requests

from harness.classes import TEST_SERVICE_ENV, Person, assert_error, members, wait_healthy
from harness.stack import Stack, running_stack

pytestmark = pytest.mark.integration

SERVICE = "/services/classes/"
PASSWORD = "a long enough password 1"
PER_ADDRESS = 8  # sign-ups one address may try per hour here (the tests above use 5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    env = {
        **TEST_SERVICE_ENV,
        "CLASSHUB_JOIN_CODES": "1",
        "CLASSHUB_JOIN_CODE_SIGNUP": "1",
        "CLASSHUB_SIGNUPS_PER_ADDRESS": str(PER_ADDRESS),
    }
    new = Stack(tmp_path_factory.mktemp("join-signup"), with_classes=True, env=env)
    for s in running_stack(new):
        wait_healthy(s)
        yield s


@pytest.fixture(scope="module")
def world(stack):
    admin = Person(stack, "admin", "admin")
    tina = Person(stack, "tina", "teacher")
    codes = {}
    for code in ("bio", "old"):
        r = admin.post("api/classes", {"code": code, "name": code.title(), "teachers": ["tina"]})
        assert r.status_code == 201, r.text
        r = tina.post(f"api/classes/{code}/join-code", {})
        assert r.status_code == 200, r.text
        codes[code] = r.json()["join_code"]
    assert tina.patch("api/classes/old", {"archived": True}).status_code == 200
    return {"admin": admin, "tina": tina, "codes": codes}


class Visitor:
    """A browser without an account on the sign-up page (its cookies and XSRF token)."""

    def __init__(self, stack):
        self.stack = stack
        self.session = requests.Session()
        r = self.session.get(stack.url + SERVICE + "signup", timeout=30)
        assert r.status_code == 200 and 'id="signup"' in r.text, r.text[:500]
        self.xsrf = re.search(r'name="classhub-xsrf" content="([^"]+)"', r.text).group(1)

    def sign_up(self, join_code, username, password=PASSWORD, xsrf=None):
        return self.session.post(
            self.stack.url + SERVICE + "api/signup",
            json={"join_code": join_code, "username": username, "password": password},
            headers={"X-XSRFToken": self.xsrf if xsrf is None else xsrf},
            timeout=30,
            allow_redirects=False,
        )


def new_name() -> str:
    return "su" + secrets.token_hex(3)


def test_a_visitor_signs_up_with_a_join_code_and_signs_in(stack, world):
    visitor = Visitor(stack)
    name = new_name()
    r = visitor.sign_up(world["codes"]["bio"].lower().replace("-", " "), name)
    assert r.status_code == 201, r.text
    assert r.json()["code"] == "bio" and r.json()["username"] == name
    assert name in world["tina"].get("api/classes/bio/students").json()["students"]
    assert name in members(stack, "class-bio")
    # a student account: signs in with the password, and is a student
    b = stack.browser()
    assert stack.login_password(b, name, PASSWORD).status_code == 302
    assert stack.api("GET", f"/users/{name}").json()["admin"] is False
    assert "classhub-student" in stack.api("GET", f"/users/{name}").json()["roles"]

    # a taken name: the account that exists is not touched
    assert_error(visitor.sign_up(world["codes"]["bio"], name, "another password 123"), 409)
    assert stack.login_password(stack.browser(), name, PASSWORD).status_code == 302
    assert_error(visitor.sign_up(world["codes"]["bio"], "tina"), 409, "taken")


def test_nothing_without_a_valid_code_or_the_pages_token(stack, world):
    visitor = Visitor(stack)
    name = new_name()
    # a wrong code, an archived class's code: the same answer, naming no class
    wrong = assert_error(visitor.sign_up("ABCD-EFGH-JK", name), 400)
    archived = assert_error(visitor.sign_up(world["codes"]["old"], name), 400)
    assert wrong["message"] == archived["message"] and "bio" not in wrong["message"]
    # no XSRF token of the page (a cross-site form): refused
    r = visitor.sign_up(world["codes"]["bio"], name, xsrf="forged")
    assert r.status_code == 403, r.text
    r = requests.post(
        stack.url + SERVICE + "api/signup",
        json={"join_code": world["codes"]["bio"], "username": name, "password": PASSWORD},
        timeout=30,
    )
    assert r.status_code == 403, r.text
    # bad input
    assert_error(visitor.sign_up(world["codes"]["bio"], "Bad Name!"), 400)
    assert_error(visitor.sign_up(world["codes"]["bio"], new_name(), password=""), 400)
    assert_error(visitor.sign_up(world["codes"]["bio"], new_name(), password="short"), 400)
    assert stack.api("GET", f"/users/{name}").status_code == 404


def test_in_chromium_from_the_login_page_to_my_classes(stack, world, chromium, tmp_path):
    from playwright.sync_api import expect

    name = new_name()
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(f"{stack.url}/hub/login")
        page.click("#signup-link a")
        page.wait_for_url("**/services/classes/signup")
        page.fill("#signup-code", world["codes"]["bio"])
        page.fill("#signup-username", name)
        page.fill("#signup-password", PASSWORD)
        page.fill("#signup-password2", PASSWORD + "x")
        page.click("#signup [type=submit]")
        expect(page.locator("#action-alert")).to_contain_text("The two passwords differ")
        page.fill("#signup-password2", PASSWORD)
        page.click("#signup [type=submit]")
        alert = page.locator("#action-alert")
        expect(alert).to_contain_text(f"Welcome, {name}: you are in Bio")
        alert.get_by_role("link", name="Sign in").click()
        page.wait_for_url("**/hub/login**")
        page.fill("#username_input", name)
        page.fill("#password_input", PASSWORD)
        page.click("#login_submit")
        page.wait_for_url(f"**{SERVICE}")
        expect(page.locator("#taking")).to_contain_text("Bio")
        assert problems == []
    except Exception:
        page.screenshot(path=str(tmp_path / "signup.png"), full_page=True)
        raise
    finally:
        context.close()


def test_sign_ups_and_wrong_codes_are_limited_per_address(stack, world):
    # run last: the address (loopback) is then out of sign-ups for an hour
    visitor = Visitor(stack)
    made = 0
    while True:
        r = visitor.sign_up(world["codes"]["bio"], new_name())
        if r.status_code != 201:
            break
        made += 1
        assert made <= PER_ADDRESS, "the limit per address did not hold"
    body = assert_error(r, 429, "Too many sign-ups")
    assert int(r.headers["Retry-After"]) > 0, body
    # even a right code, from this address, now waits; nobody was made meanwhile
    name = new_name()
    assert visitor.sign_up(world["codes"]["bio"], name).status_code == 429
    assert stack.api("GET", f"/users/{name}").status_code == 404
