"""verify_token: the attack battery and the claims mapping, with an injected clock."""

import base64
import hashlib
import hmac
import json
import time
import unicodedata

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from authenticator.jwt_keys import StaticKey
from authenticator.jwt_verify import Identity, TokenRejected, VerifySettings, verify_token

pytestmark = pytest.mark.unit

NOW = 1_750_000_000.0
SECRET = b"s" * 40
SETTINGS = VerifySettings(issuer="https://portal.example.edu", audience="classhub")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**over):
    c = {
        "iss": "https://portal.example.edu",
        "aud": "classhub",
        "sub": "alice@a.edu",
        "iat": int(NOW) - 10,
        "exp": int(NOW) + 300,
        "jti": "jti-1",
        "role": "student",
    }
    c.update(over)
    return {k: v for k, v in c.items() if v is not ...}


def hs(payload=None, secret=SECRET, headers=None, **over):
    return jwt.encode(payload or claims(**over), secret, algorithm="HS256", headers=headers)


def craft(header: dict, payload, secret: bytes | None = None, raw_payload: bytes | None = None):
    """A token built by hand, e.g. for algorithms or payloads PyJWT refuses to produce."""
    body = raw_payload if raw_payload is not None else json.dumps(payload).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(body)}"
    sig = ""
    if secret is not None:
        sig = b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    return f"{signing_input}.{sig}"


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_pub_pem(rsa_key):
    return rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def hs_key():
    return StaticKey.from_secret(SECRET)


async def rejected(token, keys, settings=SETTINGS, now=NOW, status=401) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        await verify_token(token, keys, settings, now)
    exc = info.value
    assert exc.status == status, exc.reason
    assert_clean(exc, token)
    return exc


def assert_clean(exc: TokenRejected, token) -> None:
    """The reason quotes no part of the token (no 8-character piece of it)."""
    if not isinstance(token, str):
        return
    text = f"{exc.reason} {exc} {exc!r}"
    for part in token.split("."):
        for i in range(0, max(len(part) - 7, 0), 4):
            assert part[i : i + 8] not in text


# --- the happy paths ---------------------------------------------------------------


async def test_valid_hs256(hs_key):
    ident = await verify_token(hs(), hs_key, SETTINGS, NOW)
    assert isinstance(ident, Identity)
    assert (ident.username, ident.role, ident.groups, ident.jti) == (
        "alice@a.edu",
        "student",
        None,
        "jti-1",
    )
    assert ident.expires_at == NOW + 300
    assert ident.claims["iss"] == "https://portal.example.edu"


async def test_valid_rs256(rsa_key, rsa_pub_pem):
    token = jwt.encode(claims(role="teacher"), rsa_key, algorithm="RS256")
    ident = await verify_token(
        token, StaticKey.from_public_pem(rsa_pub_pem, "RS256"), SETTINGS, NOW
    )
    assert (ident.username, ident.role) == ("alice@a.edu", "teacher")


async def test_valid_es256():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = jwt.encode(claims(role="admin"), key, algorithm="ES256")
    ident = await verify_token(token, StaticKey.from_public_pem(pem, "ES256"), SETTINGS, NOW)
    assert ident.role == "admin"


async def test_audience_list_containing_ours(hs_key):
    ident = await verify_token(hs(aud=["other", "classhub"]), hs_key, SETTINGS, NOW)
    assert ident.username == "alice@a.edu"


async def test_leeway_accepts_small_skew(hs_key):
    await verify_token(hs(exp=int(NOW) - 10), hs_key, SETTINGS, NOW)  # leeway 30
    await verify_token(hs(iat=int(NOW) + 20), hs_key, SETTINGS, NOW)
    await verify_token(hs(nbf=int(NOW) + 20), hs_key, SETTINGS, NOW)


# --- algorithm confusion -----------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "hs256", ""])
async def test_alg_none_and_variants(hs_key, alg):
    await rejected(craft({"alg": alg, "typ": "JWT"}, claims()), hs_key)


async def test_alg_none_with_rs256_key(rsa_pub_pem):
    keys = StaticKey.from_public_pem(rsa_pub_pem, "RS256")
    await rejected(craft({"alg": "none"}, claims()), keys)


async def test_hs256_signed_with_rs256_public_pem(rsa_pub_pem):
    keys = StaticKey.from_public_pem(rsa_pub_pem, "RS256")
    token = craft({"alg": "HS256", "typ": "JWT"}, claims(), secret=rsa_pub_pem)
    exc = await rejected(token, keys)
    assert "algorithm" in exc.reason


async def test_rs256_token_when_hs256_configured(hs_key, rsa_key):
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    await rejected(token, hs_key)


async def test_wrong_secret(hs_key):
    exc = await rejected(hs(secret=b"x" * 40), hs_key)
    assert "signature" in exc.reason


async def test_tampered_payload(hs_key):
    header, _, sig = hs().split(".")
    forged = f"{header}.{b64(json.dumps(claims(role='admin')).encode())}.{sig}"
    await rejected(forged, hs_key)


# --- time ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "over, word",
    [
        ({"exp": int(NOW) - 31}, "expired"),
        ({"nbf": int(NOW) + 31}, "not valid yet"),
        ({"iat": int(NOW) + 31}, "future"),
        ({"iat": int(NOW) - 601}, "too old"),
    ],
    ids=["expired", "nbf-future", "iat-future", "too-old"],
)
async def test_time_claims(hs_key, over, word):
    exc = await rejected(hs(**over), hs_key)
    assert word in exc.reason


@pytest.mark.parametrize("value", ["soon", True, None, [1], -5, 10**12])
async def test_exp_not_a_time(hs_key, value):
    await rejected(hs(exp=value), hs_key)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("name", ["exp", "iat", "nbf"])
async def test_non_finite_times(hs_key, name, value):
    # json.dumps writes NaN / Infinity, which Python's json.loads (and PyJWT) accept
    token = craft({"alg": "HS256"}, claims(**{name: value}), secret=SECRET)
    payload = base64.urlsafe_b64decode(token.split(".")[1] + "==").decode()
    assert "NaN" in payload or "Infinity" in payload
    await rejected(token, hs_key)


async def test_clock_is_injected(hs_key):
    token = hs()
    await verify_token(token, hs_key, SETTINGS, NOW)
    await rejected(token, hs_key, now=NOW + 3600)
    await rejected(token, hs_key, now=time.time())  # real clock: years away from NOW


# --- issuer, audience, required claims ---------------------------------------------


async def test_wrong_aud(hs_key):
    exc = await rejected(hs(aud="another-app"), hs_key)
    assert "audience" in exc.reason


async def test_wrong_iss(hs_key):
    exc = await rejected(hs(iss="https://evil.example"), hs_key)
    assert "issuer" in exc.reason


@pytest.mark.parametrize("value", [["https://portal.example.edu"], 5])
async def test_iss_not_a_string(hs_key, value):
    await rejected(craft({"alg": "HS256"}, claims(iss=value), secret=SECRET), hs_key)


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "jti", "sub"])
async def test_missing_claim(hs_key, claim):
    exc = await rejected(hs(**{claim: ...}), hs_key)
    assert f"'{claim}'" in exc.reason


@pytest.mark.parametrize("claim", ["exp", "iat", "jti", "sub"])
async def test_null_claim_is_missing(hs_key, claim):
    await rejected(hs(**{claim: None}), hs_key)


async def test_missing_custom_username_claim(hs_key):
    settings = VerifySettings(issuer=SETTINGS.issuer, audience="classhub", username_claim="email")
    exc = await rejected(hs(), hs_key, settings=settings)
    assert "'email'" in exc.reason


@pytest.mark.parametrize("jti", ["", 42, "x" * 256])
async def test_bad_jti(hs_key, jti):
    await rejected(hs(jti=jti), hs_key)


# --- shape and size -------------------------------------------------------------------


async def test_one_megabyte_token_refused_before_decoding(monkeypatch):
    class Spy:
        algorithm = "HS256"
        calls = 0

        async def resolve(self, header, now):
            Spy.calls += 1
            raise AssertionError("must not be reached")

    def no_decoding(*args, **kwargs):
        raise AssertionError("an oversized token must be refused before any decoding")

    # the size check comes first: neither base64, JSON nor PyJWT ever sees the token
    from authenticator import jwt_verify

    monkeypatch.setattr(jwt_verify.base64, "urlsafe_b64decode", no_decoding)
    monkeypatch.setattr(jwt_verify.json, "loads", no_decoding)
    monkeypatch.setattr(jwt_verify.jwt, "decode", no_decoding)
    token = "eyJ" + "A" * (1024 * 1024)
    exc = await rejected(token, Spy(), status=400)
    assert Spy.calls == 0
    assert "8192" in exc.reason


async def test_just_over_the_limit(hs_key):
    token = hs(pad="x" * 9000)
    await rejected(token, hs_key, status=400)
    big = VerifySettings(issuer=SETTINGS.issuer, audience="classhub", max_token_bytes=16384)
    await verify_token(token, hs_key, big, NOW)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "..",
        "!!!!.eyJ4IjoxfQ.sig",
        f"{b64(b'not json')}.{b64(b'{}')}.sig",
        f"{b64(b'[1, 2]')}.{b64(b'{}')}.sig",
        f"{b64(b'{}')}.{b64(b'{}')}.sig",  # no alg
        f"{b64(json.dumps({'alg': 5}).encode())}.{b64(b'{}')}.sig",
        f"{b64(b'{}')[:-1]}A.{b64(b'{}')}.sig",
        "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.sïg",
        "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.s g",
        "e.eyJ4IjoxfQ.sig",  # 1 base64 character cannot decode
        b64(b"[" * 5000) + ".e30.sig",
    ],
)
async def test_malformed(hs_key, token):
    await rejected(token, hs_key, status=400)


async def test_not_a_string(hs_key):
    await rejected(b"a.b.c", hs_key, status=400)


async def test_payload_not_json_but_signed(hs_key):
    token = craft({"alg": "HS256"}, None, secret=SECRET, raw_payload=b"not json")
    await rejected(token, hs_key, status=400)


async def test_payload_bad_base64(hs_key):
    header, _, sig = hs().split(".")
    await rejected(f"{header}.A.{sig}", hs_key, status=400)


@pytest.mark.parametrize("extra", [{"crit": ["exp"]}, {"b64": False, "crit": ["b64"]}])
async def test_critical_header_extensions_refused(hs_key, extra):
    await rejected(hs(headers=extra), hs_key, status=400)


async def test_kid_with_path_characters(hs_key):
    exc = await rejected(hs(headers={"kid": "../../etc/passwd"}), hs_key, status=400)
    assert "kid" in exc.reason


@pytest.mark.parametrize("kid", ["a" * 129, "", "k id", "k\x00", "ké", "k/1", 7])
async def test_junk_kids(hs_key, kid):
    await rejected(craft({"alg": "HS256", "kid": kid}, claims(), secret=SECRET), hs_key, status=400)


async def test_valid_kid_accepted_by_static_key(hs_key):
    await verify_token(hs(headers={"kid": "portal-2025.01_a"}), hs_key, SETTINGS, NOW)


# --- usernames ------------------------------------------------------------------------


async def test_unicode_nfc_and_nfd_are_one_user(hs_key):
    nfc = unicodedata.normalize("NFC", "josé@a.edu")
    nfd = unicodedata.normalize("NFD", "josé@a.edu")
    assert nfc != nfd
    a = await verify_token(hs(sub=nfc), hs_key, SETTINGS, NOW)
    b = await verify_token(hs(sub=nfd), hs_key, SETTINGS, NOW)
    assert a.username == b.username == nfc


async def test_case_folded(hs_key):
    a = await verify_token(hs(sub="ALICE@A.edu"), hs_key, SETTINGS, NOW)
    b = await verify_token(hs(sub="alice@a.edu"), hs_key, SETTINGS, NOW)
    assert a.username == b.username == "alice@a.edu"


async def test_domains_keep_users_apart(hs_key):
    a = await verify_token(hs(sub="alice@a.edu"), hs_key, SETTINGS, NOW)
    b = await verify_token(hs(sub="alice@b.edu"), hs_key, SETTINGS, NOW)
    assert a.username != b.username


@pytest.mark.parametrize(
    "name", ["ali\u200bce", "alice\u202e", "\u2060alice", "al ice", "a/b", "..", "", "x" * 129]
)
async def test_bad_usernames(hs_key, name):
    exc = await rejected(hs(sub=name), hs_key)
    assert "username" in exc.reason


async def test_username_from_other_claim(hs_key):
    settings = VerifySettings(issuer=SETTINGS.issuer, audience="classhub", username_claim="email")
    ident = await verify_token(hs(email="Bob@B.edu"), hs_key, settings, NOW)
    assert ident.username == "bob@b.edu"
    await rejected(hs(email=["bob"]), hs_key, settings=settings)


@pytest.mark.parametrize("sub", [5, ["alice"], {"n": "alice"}])
async def test_username_not_a_string(hs_key, sub):
    await rejected(hs(sub=sub), hs_key)


# --- roles and groups -----------------------------------------------------------------


async def test_missing_role_gets_default(hs_key):
    assert (await verify_token(hs(role=...), hs_key, SETTINGS, NOW)).role == "student"
    teacher = VerifySettings(issuer=SETTINGS.issuer, audience="classhub", default_role="teacher")
    assert (await verify_token(hs(role=...), hs_key, teacher, NOW)).role == "teacher"


async def test_custom_role_claim(hs_key):
    settings = VerifySettings(issuer=SETTINGS.issuer, audience="classhub", role_claim="cls_role")
    ident = await verify_token(hs(cls_role="teacher"), hs_key, settings, NOW)
    assert ident.role == "teacher"


@pytest.mark.parametrize("role", ["superuser", "Admin", "", ["admin"], 1, "admin "])
async def test_unknown_role_refused(hs_key, role):
    exc = await rejected(hs(role=role), hs_key)
    assert "role" in exc.reason


GROUPS = VerifySettings(issuer=SETTINGS.issuer, audience="classhub", groups_claim="groups")


async def test_groups(hs_key):
    ident = await verify_token(hs(groups=["math-101", "cs.2", "a_b", "cs.2"]), hs_key, GROUPS, NOW)
    assert ident.groups == ("math-101", "cs.2", "a_b")
    assert (await verify_token(hs(), hs_key, GROUPS, NOW)).groups == ()
    assert (await verify_token(hs(groups=None), hs_key, GROUPS, NOW)).groups == ()
    assert (await verify_token(hs(groups=["x"]), hs_key, SETTINGS, NOW)).groups is None


@pytest.mark.parametrize(
    "groups",
    [
        "math",
        {"math": 1},
        [1],
        [""],
        ["x" * 65],
        ["a b"],
        ["../admin"],
        ["é"],
        [f"g{i}" for i in range(101)],
    ],
)
async def test_bad_groups_refused(hs_key, groups):
    exc = await rejected(hs(groups=groups), hs_key, settings=GROUPS)
    assert "groups" in exc.reason


async def test_tokens_never_logged(hs_key, caplog, rsa_key):
    caplog.set_level("DEBUG")
    tokens = [hs(), hs(secret=b"x" * 40), hs(role="root"), hs(sub="ali\u200bce"), "a.b.c"]
    tokens.append(jwt.encode(claims(), rsa_key, algorithm="RS256"))
    for tok in tokens:
        try:
            await verify_token(tok, hs_key, SETTINGS, NOW)
        except TokenRejected:
            pass
        for part in tok.split("."):
            assert len(part) < 8 or part not in caplog.text


# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "over, word",
    [
        ({"leeway": 61}, "leeway"),
        ({"leeway": -1}, "leeway"),
        ({"leeway": float("nan")}, "leeway"),
        ({"max_age": 0}, "max_age"),
        ({"max_token_bytes": 10}, "max_token_bytes"),
        ({"default_role": "root"}, "default_role"),
        ({"issuer": ""}, "issuer"),
        ({"audience": None}, "audience"),
        ({"username_claim": "exp"}, "registered"),
        ({"groups_claim": None}, "groups_claim"),
    ],
)
def test_settings_validation(over, word):
    args = {"issuer": "i", "audience": "a", **over}
    with pytest.raises(ValueError, match=word):
        VerifySettings(**args)


def test_leeway_message_is_a_fix_it():
    with pytest.raises(ValueError, match="between 0 and 60 seconds.*NTP"):
        VerifySettings(issuer="i", audience="a", leeway=120)


def test_token_rejected_shape():
    e = TokenRejected(status=503, reason="the sign-in key server is unreachable")
    assert (e.status, e.reason, str(e)) == (503, e.reason, e.reason)
    assert "503" in repr(e)
