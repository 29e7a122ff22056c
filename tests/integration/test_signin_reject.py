"""A second hub: RS256 public-key tokens, the ``reject`` session policy, local accounts
(password sign-in, lockout, CSV import) and Redis going away. Redis restarts last."""

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from harness.stack import Stack, mint_token, running_stack, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rstack(tmp_path_factory, rsa_key):
    work = tmp_path_factory.mktemp("rstack")
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (work / "portal.pem").write_bytes(pem)
    s = Stack(
        work,
        extra_config=f"""
c.JWTAuthenticator.jwt_secret = ""
c.JWTAuthenticator.jwt_algorithm = "RS256"
c.JWTAuthenticator.jwt_public_key_file = {str(work / "portal.pem")!r}
c.JWTAuthenticator.session_policy = "reject"
c.JWTAuthenticator.login_failures_per_user = 3
c.JWTAuthenticator.groups_claim = "groups"
c.Authenticator.blocked_users = {{"blocked-person"}}

def _hook(authenticator, handler, authentication):
    authentication["auth_state"]["hooked"] = True
    return authentication

c.Authenticator.post_auth_hook = _hook
""",
        log_level="INFO",
    )
    yield from running_stack(s)


def mint(key, user, role="student", algorithm="RS256", **extra):
    return mint_token(user, role, key=key, algorithm=algorithm, **extra)


def new_user():
    return "r" + secrets.token_hex(4)


# ----- key confusion -----


def test_rs256_token_signs_in(rstack, rsa_key):
    b = rstack.browser()
    assert rstack.login_token(b, mint(rsa_key, new_user())).status_code == 302
    assert rstack.whoami(b)


def test_hs256_signed_with_the_public_key_is_refused(rstack, rsa_key):
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # PyJWT itself refuses to HMAC with a PEM; forge the token by hand like an attacker
    import base64
    import hashlib
    import hmac
    import json

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(
        json.dumps(
            {
                "sub": "eve",
                "iss": "classhub",
                "aud": "classhub",
                "iat": now,
                "exp": now + 300,
                "jti": secrets.token_hex(8),
                "role": "admin",
            }
        ).encode()
    )
    sig = b64(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    b = rstack.browser()
    r = rstack.login_token(b, f"{header}.{body}.{sig}")
    assert r.status_code == 401
    assert rstack.whoami(b) is None


def test_a_token_signed_by_another_key_is_refused(rstack):
    other = ec.generate_private_key(ec.SECP256R1())
    r = rstack.login_token(rstack.browser(), mint(other, new_user(), algorithm="ES256"))
    assert r.status_code == 401


# ----- JupyterHub's own checks and hooks still run -----


def test_blocked_users_cannot_sign_in_with_a_valid_token(rstack, rsa_key):
    b = rstack.browser()
    r = rstack.login_token(b, mint(rsa_key, "blocked-person"))
    assert r.status_code == 403
    assert rstack.whoami(b) is None


def test_post_auth_hook_runs_and_groups_come_from_the_claim(rstack, rsa_key):
    user = new_user()
    token = mint(rsa_key, user, groups=["lms-cs101", "lms-ma201"])
    assert rstack.login_token(rstack.browser(), token).status_code == 302
    model = rstack.api("GET", f"/users/{user}", params={"include_auth_state": "1"}).json()
    assert model["auth_state"]["hooked"] is True
    assert sorted(model["groups"]) == ["lms-cs101", "lms-ma201"]
    r = rstack.login_token(rstack.browser(), mint(rsa_key, new_user(), groups=["../etc"]))
    assert r.status_code == 401


# ----- reject policy -----


def test_second_sign_in_is_refused_with_where_and_how(rstack, rsa_key):
    user = new_user()
    first, second = rstack.browser(), rstack.browser()
    assert rstack.login_token(first, mint(rsa_key, user)).status_code == 302
    r = rstack.login_token(second, mint(rsa_key, user))
    assert r.status_code == 409
    for words in ("already signed in", "since", "127.0.0.1", "Sign out there", "admin"):
        assert words in r.text, words
    assert rstack.whoami(first) == user
    assert rstack.whoami(second) is None
    # the same browser may sign in again
    assert rstack.login_token(first, mint(rsa_key, user)).status_code == 302
    assert rstack.whoami(first) == user
    # after logout the other browser gets in
    first.get(rstack.url + "/hub/logout", timeout=15)
    assert rstack.login_token(second, mint(rsa_key, user)).status_code == 302
    assert rstack.whoami(second) == user


def test_fifty_parallel_sign_ins_under_reject_leave_exactly_one(rstack, rsa_key):
    user = new_user()
    browsers = [rstack.browser() for _ in range(50)]
    tokens = [mint(rsa_key, user) for _ in browsers]
    with ThreadPoolExecutor(50) as pool:
        codes = [r.status_code for r in pool.map(rstack.login_token, browsers, tokens)]
    assert codes.count(302) == 1 and codes.count(409) == 49, codes
    with ThreadPoolExecutor(50) as pool:
        who = list(pool.map(rstack.whoami, browsers))
    assert who.count(user) == 1


# ----- local accounts -----


def test_password_sign_in_uses_the_standard_form(rstack):
    b = rstack.browser()
    r = rstack.login_password(b, "admin", rstack.admin_password)
    assert r.status_code == 302, r.text
    assert rstack.whoami(b) == "admin"
    assert rstack.user_model("admin")["admin"] is True
    b.get(rstack.url + "/hub/logout", timeout=15)


def test_password_form_without_xsrf_is_refused(rstack):
    b = rstack.browser()
    r = b.post(
        rstack.url + "/hub/login",
        data={"username": "admin", "password": rstack.admin_password},
        allow_redirects=False,
        timeout=15,
    )
    assert r.status_code == 403
    assert rstack.whoami(b) is None


@pytest.fixture(scope="module")
def admin(rstack):
    """One admin browser for the module (a second one would be refused: reject policy)."""
    b = rstack.browser()
    assert rstack.login_password(b, "admin", rstack.admin_password).status_code == 302
    return b


def test_csv_import_with_bad_rows_changes_nothing_then_imports(rstack, admin):
    good1, good2 = new_user(), new_user()
    bad = (
        "username,password,role\n"
        f"{good1},,student\n"
        "bad/name,,student\n"
        f"{good2},short,teacher\n"
        f"{good1},,student\n"
        "x,,wizard\n"
        "too,many,columns,here\n"
    )
    r = rstack.browser_api(admin, "POST", "/classhub/accounts/import", json={"csv": bad})
    assert r.status_code == 400, r.text
    report = r.json()
    assert report["applied"] is False
    errors = {row["line"] for row in report["rows"] if row["status"] == "error"}
    assert errors >= {3, 4, 5, 6, 7}, report["rows"]
    listed = rstack.browser_api(admin, "GET", "/classhub/accounts").json()["accounts"]
    assert not {a["username"] for a in listed} & {good1, good2}

    ok = f"username,password,role\n{good1},,student\n{good2},a-long-password-1,teacher\n"
    r = rstack.browser_api(admin, "POST", "/classhub/accounts/import", json={"csv": ok})
    assert r.status_code == 201, r.text
    rows = {row["username"]: row for row in r.json()["rows"]}
    generated = rows[good1]["password"]
    assert generated and rows[good2]["password"] in (None, "")
    b = rstack.browser()
    assert rstack.login_password(b, good1, generated).status_code == 302
    assert rstack.whoami(b) == good1
    t = rstack.browser()
    assert rstack.login_password(t, good2, "a-long-password-1").status_code == 302
    assert "classhub-teacher" in rstack.user_model(good2)["roles"]


def test_admin_api_rejects_bad_input_with_clear_4xx(rstack, admin):
    cases = [
        ("POST", "/classhub/accounts", b"{not json", 400),
        ("POST", "/classhub/accounts", b"[]", 400),
        ("POST", "/classhub/accounts", b'{"username": "ok1", "shoe": 1}', 400),
        ("POST", "/classhub/accounts", b'{"username": "bad/name"}', 400),
        ("POST", "/classhub/accounts", b'{"username": "ok2", "role": "god"}', 400),
        ("POST", "/classhub/accounts", b'{"username": "ok3", "password": "short"}', 400),
        ("POST", "/classhub/accounts", b'{"username": "admin"}', 409),
        ("PATCH", "/classhub/accounts/nobody-here", b'{"role": "student"}', 404),
        ("DELETE", "/classhub/sessions/nobody-here", b"", 404),
    ]
    for method, path, body, status in cases:
        r = rstack.browser_api(admin, method, path, data=body)
        assert r.status_code == status, (method, path, body, r.status_code, r.text)
        assert r.json()["message"], r.text


def test_lockout_after_failed_passwords(rstack, admin):
    user, other = new_user(), new_user()
    for name in (user, other):
        r = rstack.browser_api(
            admin,
            "POST",
            "/classhub/accounts",
            json={"username": name, "password": "right-password-1"},
        )
        assert r.status_code == 201, r.text
    for _ in range(3):
        r = rstack.login_password(rstack.browser(), user, "wrong-password")
        assert r.status_code == 403
    r = rstack.login_password(rstack.browser(), user, "right-password-1")
    assert r.status_code == 429
    assert "Try again in" in r.text
    # the lock is per account: another account from the same address still signs in
    assert rstack.login_password(rstack.browser(), other, "right-password-1").status_code == 302
    rstack.redis_cli("DEL", *rstack.redis_cli("KEYS", "classhub:fail:*"))


# ----- Redis down (last: the restart loses Redis' in-memory sessions) -----


def test_redis_down_fails_closed_hub_keeps_serving_and_recovers(rstack, rsa_key):
    signed = rstack.browser()
    user = new_user()
    assert rstack.login_token(signed, mint(rsa_key, user)).status_code == 302
    rstack.redis.stop()
    try:
        r = rstack.login_token(rstack.browser(), mint(rsa_key, new_user()))
        assert r.status_code == 503
        assert "session store" in r.text
        r = rstack.login_password(rstack.browser(), "admin", rstack.admin_password)
        assert r.status_code == 503
        # the hub keeps serving: health, the API, and people already signed in
        assert rstack.api("GET", "/").status_code == 200
        assert rstack.whoami(signed) == user
    finally:
        rstack.redis.start()
    b = rstack.browser()

    def signs_in():
        return rstack.login_token(b, mint(rsa_key, new_user())).status_code == 302

    wait_for(signs_in, 20, interval=0.5, what="sign-in after Redis returned")
