"""Sign-in against the real hub, Redis and PostgreSQL: tokens, attacks, one session, roles.

The shared ``stack`` runs the JWTAuthenticator with an HS256 secret and the default
``takeover`` policy. Attacks on an RS256 key and the ``reject`` policy are in
test_signin_reject.py.
"""

import base64
import json
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import quote, urlparse

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.stack import wait_for

pytestmark = pytest.mark.integration


def new_user() -> str:
    return "u" + secrets.token_hex(4)


def signed_in(stack, browser) -> str | None:
    return stack.whoami(browser)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ----- token sign-in -----


def test_token_form_post_signs_in_and_redirects_inside_the_hub(stack):
    user, b = new_user(), stack.browser()
    r = stack.login_token(b, stack.mint(user))
    assert r.status_code == 302, r.text
    assert r.headers["Location"].startswith("/")
    assert signed_in(stack, b) == user


def test_bearer_header_signs_in(stack):
    user, b = new_user(), stack.browser()
    r = b.get(
        stack.url + "/hub/login",
        headers={"Authorization": "Bearer " + stack.mint(user)},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302, r.text
    assert signed_in(stack, b) == user


class _Attacker(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _Attacker.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"keys": []}')

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def attacker_url():
    server = HTTPServer(("127.0.0.1", 0), _Attacker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json"
    server.shutdown()


def _attacker_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def attack_tokens(stack, attacker_url):
    """(name, token, expected status) for every attack on sign-in tokens that the tests try."""
    now = int(time.time())
    good = {
        "sub": "mallory",
        "role": "student",
        "iss": "classhub",
        "aud": "classhub",
        "iat": now,
        "exp": now + 300,
    }

    def claims(**changes):
        c = dict(good, jti=secrets.token_hex(8), **changes)
        return {k: v for k, v in c.items() if v is not None}

    secret = stack.jwt_secret
    attacker = _attacker_key()
    none_header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    none_token = f"{none_header}.{b64(json.dumps(claims()).encode())}."
    header_only = b64(b'{"alg":"HS256"}')
    return [
        ("alg none", none_token, 401),
        ("expired", jwt.encode(claims(iat=now - 400, exp=now - 200), secret, "HS256"), 401),
        ("nbf in the future", jwt.encode(claims(nbf=now + 600), secret, "HS256"), 401),
        ("wrong aud", jwt.encode(claims(aud="other-service"), secret, "HS256"), 401),
        ("wrong iss", jwt.encode(claims(iss="https://evil.example"), secret, "HS256"), 401),
        ("missing exp", jwt.encode(claims(exp=None), secret, "HS256"), 401),
        ("missing iat", jwt.encode(claims(iat=None), secret, "HS256"), 401),
        (
            "missing jti",
            jwt.encode({k: v for k, v in claims().items() if k != "jti"}, secret, "HS256"),
            401,
        ),
        ("missing username", jwt.encode(claims(sub=None), secret, "HS256"), 401),
        ("wrong secret", jwt.encode(claims(), "x" * 40, "HS256"), 401),
        (
            "kid with path characters",
            jwt.encode(claims(), secret, "HS256", headers={"kid": "../../etc/passwd"}),
            400,
        ),
        (
            "jku pointing elsewhere",
            jwt.encode(claims(), attacker, "RS256", headers={"jku": attacker_url, "kid": "evil"}),
            401,
        ),
        (
            "x5u pointing elsewhere",
            jwt.encode(claims(), attacker, "RS256", headers={"x5u": attacker_url}),
            401,
        ),
        ("1 MB token", "eyJ" + "A" * (1024 * 1024), 400),
        ("malformed base64", "eyJ@@@.%%%.***", 400),
        ("two segments", header_only + "." + b64(b"{}"), 400),
        ("not json", b64(b"not json") + "." + b64(b"{}") + ".c2ln", 400),
        ("zero-width username", jwt.encode(claims(sub="ann\u200b"), secret, "HS256"), 401),
        ("unknown role", jwt.encode(claims(role="superuser"), secret, "HS256"), 401),
    ]


def test_attack_battery_each_refused_with_the_right_status(stack, attacker_url):
    _Attacker.hits.clear()
    results = {}
    for name, token, expected in attack_tokens(stack, attacker_url):
        b = stack.browser()
        r = stack.login_token(b, token)
        results[name] = (r.status_code, expected)
        assert token not in r.text
        assert signed_in(stack, b) is None, name
    wrong = {k: v for k, v in results.items() if v[0] != v[1]}
    assert not wrong, f"(got, expected) by attack: {wrong}"
    assert _Attacker.hits == [], "a token's jku/x5u must never be fetched"


def test_a_token_cannot_be_replayed(stack):
    token = stack.mint(new_user())
    assert stack.login_token(stack.browser(), token).status_code == 302
    r = stack.login_token(stack.browser(), token)
    assert r.status_code == 401
    assert "already used" in r.text


def test_token_in_the_url_is_refused_and_never_logged(stack):
    token = stack.mint(new_user())
    for query in (f"token={token}", f"jwt={token}", f"next=/hub/home&t={token}"):
        r = stack.browser().get(
            stack.url + "/hub/login?" + query, allow_redirects=False, timeout=15
        )
        assert r.status_code == 400, query
        assert "not accepted in web addresses" in r.text
        assert token not in r.text
    time.sleep(0.5)
    for proc in (stack.hub, stack.traefik):
        assert token not in proc.log_path.read_text(errors="replace"), proc.name


def test_no_token_ever_appears_in_the_logs(stack, attacker_url):
    tokens = [stack.mint(new_user()) for _ in range(3)]
    for t in tokens:
        stack.login_token(stack.browser(), t)
    stack.browser().get(
        stack.url + "/hub/login", headers={"Authorization": "Bearer " + tokens[0]}, timeout=15
    )
    time.sleep(0.5)
    logs = stack.hub.log_path.read_text(errors="replace")
    logs += stack.traefik.log_path.read_text(errors="replace")
    for t in tokens:
        # the signature part alone is enough to tell a leak
        assert t.split(".")[2] not in logs


def test_usernames_are_normalised_without_collisions(stack):
    nfc, nfd = "j\u00f6rg@uni.example", "jo\u0308rg@UNI.example"
    b1, b2 = stack.browser(), stack.browser()
    assert stack.login_token(b1, stack.mint(nfc)).status_code == 302
    assert stack.login_token(b2, stack.mint(nfd)).status_code == 302
    assert signed_in(stack, b2) == nfc  # the same person, whatever the encoding
    a, b = stack.browser(), stack.browser()
    stack.login_token(a, stack.mint("alice@a.example"))
    stack.login_token(b, stack.mint("alice@b.example"))
    assert signed_in(stack, a) == "alice@a.example"
    assert signed_in(stack, b) == "alice@b.example"


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "http:evil.example",
        "javascript:alert(1)",
        "///evil.example",
        "/%2F%2Fevil.example",
    ],
)
def test_open_redirect_next_values_stay_on_this_site(stack, next_url):
    b = stack.browser()
    r = b.post(
        stack.url + "/hub/login?next=" + quote(next_url, safe=""),
        data={"token": stack.mint(new_user())},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302
    location = r.headers["Location"]
    parsed = urlparse(location)
    assert not parsed.scheme and not parsed.netloc, location
    assert location.startswith("/") and not location.startswith(("//", "/\\")), location


def test_safe_next_is_followed(stack):
    r = stack.browser().post(
        stack.url + "/hub/login?next=" + quote("/hub/home"),
        data={"token": stack.mint(new_user())},
        allow_redirects=False,
        timeout=30,
    )
    assert r.headers["Location"] == "/hub/home"


# ----- roles -----


def test_roles_come_from_the_token(stack):
    t, a, s = new_user(), new_user(), new_user()
    for name, role in ((t, "teacher"), (a, "admin"), (s, "student")):
        assert stack.login_token(stack.browser(), stack.mint(name, role=role)).status_code == 302
    assert "classhub-teacher" in stack.user_model(t)["roles"]
    assert stack.user_model(a)["admin"] is True
    student = stack.user_model(s)
    assert student["admin"] is False
    assert set(student["roles"]) == {"user", "classhub-student"}


def test_roles_and_sessions_survive_a_hub_restart(stack):
    t, a = new_user(), new_user()
    bt, ba = stack.browser(), stack.browser()
    stack.login_token(bt, stack.mint(t, role="teacher"))
    stack.login_token(ba, stack.mint(a, role="admin"))
    stack.restart_hub()
    assert "classhub-teacher" in stack.user_model(t)["roles"]
    assert stack.user_model(a)["admin"] is True
    assert stack.whoami(bt) == t and stack.whoami(ba) == a


def test_a_student_cannot_create_api_tokens_or_use_admin_apis(stack):
    user, b = new_user(), stack.browser()
    stack.login_token(b, stack.mint(user))
    r = stack.browser_api(b, "POST", f"/users/{user}/tokens", json={"note": "mine"})
    assert r.status_code == 403
    for method, path in (
        ("GET", "/classhub/sessions"),
        ("DELETE", f"/classhub/sessions/{user}"),
        ("GET", "/classhub/accounts"),
        ("POST", "/classhub/accounts"),
        ("GET", "/users"),
    ):
        r = stack.browser_api(b, method, path, json={} if method == "POST" else None)
        assert r.status_code in (403, 404), (method, path, r.status_code)
    page = b.get(stack.url + "/hub/classhub/sessions", timeout=15, allow_redirects=False)
    assert page.status_code == 403
    home = b.get(stack.url + "/hub/home", timeout=15)
    assert home.status_code == 200
    assert "/hub/token" not in home.text and "/hub/classhub/sessions" not in home.text


def test_auth_state_keeps_the_claims_encrypted(stack):
    user = new_user()
    stack.login_token(stack.browser(), stack.mint(user, role="teacher", email="t@x.example"))
    # an admin (the tests' service has admin:users) reads it decrypted through the API ...
    r = stack.api("GET", f"/users/{user}", params={"include_auth_state": "1"})
    state = r.json()["auth_state"]
    assert state["role"] == "teacher" and state["claims"]["email"] == "t@x.example"
    # ... while the database holds only ciphertext
    rows = stack.psql(
        "select encode(encrypted_auth_state, 'escape') from users where name = %s", user
    )
    assert rows and "t@x.example" not in rows[0]


# ----- one session per person (takeover) -----


def test_a_new_sign_in_takes_over_and_the_old_browser_is_out(stack):
    user = new_user()
    old, new = stack.browser(), stack.browser()
    stack.login_token(old, stack.mint(user))
    assert signed_in(stack, old) == user
    stack.login_token(new, stack.mint(user))
    assert signed_in(stack, new) == user
    assert signed_in(stack, old) is None
    home = old.get(stack.url + "/hub/home", allow_redirects=False, timeout=15)
    assert home.status_code == 302 and "/hub/login" in home.headers["Location"]


def test_fifty_parallel_sign_ins_leave_exactly_one_session(stack):
    user = new_user()
    browsers = [stack.browser() for _ in range(50)]
    tokens = [stack.mint(user) for _ in browsers]
    with ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(stack.login_token, browsers, tokens))
    assert all(r.status_code == 302 for r in codes), [r.status_code for r in codes]
    with ThreadPoolExecutor(50) as pool:
        who = list(pool.map(lambda b: signed_in(stack, b), browsers))
    assert who.count(user) == 1, who.count(user)


def test_logout_ends_the_session(stack):
    user, b = new_user(), stack.browser()
    stack.login_token(b, stack.mint(user))
    sessions = stack.admin_sessions()
    assert user in sessions
    b.get(stack.url + "/hub/logout", timeout=15)
    assert signed_in(stack, b) is None
    assert user not in stack.admin_sessions()


def test_admin_lists_and_ends_a_session(stack):
    user, b = new_user(), stack.browser()
    stack.login_token(b, stack.mint(user))
    admin = stack.browser()
    assert stack.login_password(admin, "admin", stack.admin_password).status_code == 302
    listed = stack.browser_api(admin, "GET", "/classhub/sessions").json()["sessions"]
    mine = [s for s in listed if s["user"] == user]
    assert mine and "session_id" not in mine[0] and mine[0]["method"] == "jwt"
    r = stack.browser_api(admin, "DELETE", f"/classhub/sessions/{quote(user)}")
    assert r.status_code == 204
    assert signed_in(stack, b) is None
    r = stack.browser_api(admin, "DELETE", f"/classhub/sessions/{quote(user)}")
    assert r.status_code == 404
    page = admin.get(stack.url + "/hub/classhub/sessions", timeout=15)
    assert page.status_code == 200 and "Active sessions" in page.text
    assert 'href="/hub/classhub/accounts"' in page.text  # in the admin's navigation


def test_idle_session_expires_and_activity_keeps_it(stack):
    user, b = new_user(), stack.browser()
    stack.login_token(b, stack.mint(user))
    key = f"classhub:session:{user}"
    # move Redis' clock for this key: 1.5 s left, then activity extends it
    stack.redis_cli("PEXPIRE", key, "1500")
    time.sleep(1.1)  # the hub re-checks a person at most once a second
    assert signed_in(stack, b) == user
    assert int(stack.redis_cli("PTTL", key)) > 60_000
    stack.redis_cli("PEXPIRE", key, "100")
    time.sleep(1.1)
    assert signed_in(stack, b) is None


def test_revoked_session_loses_its_notebook_server_and_websockets(stack):
    """Takeover: the old browser's hub cookie, server cookie and open kernel and terminal
    websockets all stop working within 10 s."""
    import asyncio

    from tests.integration.ws_helpers import cookie_header, open_kernel_ws, open_terminal_ws

    user = new_user()
    old = stack.browser()
    stack.login_token(old, stack.mint(user))
    stack.spawn(user)
    base = f"/user/{user}/"
    lab = old.get(stack.url + base + "lab", timeout=60)
    assert lab.status_code == 200 and base in lab.url, lab.url
    status = old.get(stack.url + base + "api/status", timeout=15, allow_redirects=False)
    assert status.status_code == 200

    async def scenario():
        cookies = cookie_header(old, base)
        kernel_ws = await open_kernel_ws(stack, base, cookies)
        term_ws = await open_terminal_ws(stack, base, cookies)
        started = time.monotonic()
        new = stack.browser()
        assert (
            await asyncio.to_thread(stack.login_token, new, stack.mint(user))
        ).status_code == 302
        closed = await asyncio.gather(_wait_closed(kernel_ws, 12), _wait_closed(term_ws, 12))
        return time.monotonic() - started, closed

    elapsed, closed = asyncio.run(scenario())
    assert all(closed), f"websockets still open after {elapsed:.1f}s"

    def server_refuses():
        r = old.get(stack.url + base + "api/status", timeout=15, allow_redirects=False)
        return r.status_code != 200

    wait_for(server_refuses, 10, interval=0.5, what="old browser refused by the server")
    print(f"revocation: websockets closed after {elapsed:.1f}s")
    stack.stop(user)


async def _wait_closed(conn, timeout):
    import asyncio

    try:
        async with asyncio.timeout(timeout):
            while True:
                msg = await conn.read_message()
                if msg is None:
                    return True
    except TimeoutError:
        return False
