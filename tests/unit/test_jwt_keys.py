"""Key configuration, load_signing_key and the JWKS cache (fake fetch and a real server)."""

import asyncio
import json
import secrets
import socket

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler

from authenticator.jwt_keys import (
    JWKSKeys,
    KeyConfigError,
    StaticKey,
    http_fetch,
    load_signing_key,
)
from authenticator.jwt_verify import TokenRejected, VerifySettings, verify_token

pytestmark = pytest.mark.unit

NOW = 1_750_000_000.0
URL = "https://idp.example.edu/.well-known/jwks.json"
SETTINGS = VerifySettings(issuer="https://idp.example.edu", audience="classhub")


def pub_pem(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def priv_pem(key, password: bytes | None = None) -> bytes:
    enc = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


@pytest.fixture(scope="module")
def rsa_a():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_b():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def rsa_small():
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


def jwk(key, kid: str, **extra) -> dict:
    algo = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    return {**algo.to_jwk(key.public_key(), as_dict=True), "kid": kid, **extra}


def jwks(*entries) -> bytes:
    return json.dumps({"keys": list(entries)}).encode()


def token(key, kid, alg="RS256", **headers):
    claims = {
        "iss": SETTINGS.issuer,
        "aud": "classhub",
        "sub": "alice",
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, **headers})


class FakeIdP:
    """An injectable fetch that records every URL it is asked for."""

    def __init__(self, body: bytes = b"", fail: Exception | None = None):
        self.body, self.fail, self.urls = body, fail, []

    async def __call__(self, url: str, timeout: float) -> bytes:
        self.urls.append(url)
        await asyncio.sleep(0)
        if self.fail:
            raise self.fail
        return self.body


# --- static keys --------------------------------------------------------------------


def test_secret_length():
    with pytest.raises(KeyConfigError, match="at least 32 bytes.*openssl rand"):
        StaticKey.from_secret(b"x" * 31)
    assert StaticKey.from_secret(b"x" * 32).algorithm == "HS256"
    assert StaticKey.from_secret("y" * 32).key == b"y" * 32


def test_secret_that_is_a_pem_key_refused(rsa_a):
    with pytest.raises(KeyConfigError, match="looks like"):
        StaticKey.from_secret(pub_pem(rsa_a))


def test_public_pems(rsa_a, ec_key):
    assert StaticKey.from_public_pem(pub_pem(rsa_a), "RS256").algorithm == "RS256"
    assert StaticKey.from_public_pem(pub_pem(ec_key).decode(), "ES256").algorithm == "ES256"


def test_rsa_1024_refused(rsa_small):
    with pytest.raises(KeyConfigError, match="1024 bits"):
        StaticKey.from_public_pem(pub_pem(rsa_small), "RS256")


@pytest.mark.parametrize(
    "which, alg, word",
    [
        ("ec", "RS256", "RSA"),
        ("rsa", "ES256", "P-256"),
        ("p384", "ES256", "P-256"),
        ("rsa", "HS256", "shared secret"),
        ("rsa", "none", "RS256 or ES256"),
        ("rsa-private", "RS256", "private key"),
        ("garbage", "RS256", "openssl x509"),
    ],
)
def test_public_pem_mismatch(rsa_a, ec_key, which, alg, word):
    pem = {
        "ec": lambda: pub_pem(ec_key),
        "rsa": lambda: pub_pem(rsa_a),
        "p384": lambda: pub_pem(ec.generate_private_key(ec.SECP384R1())),
        "rsa-private": lambda: priv_pem(rsa_a),
        "garbage": lambda: b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n",
    }[which]()
    with pytest.raises(KeyConfigError, match=word):
        StaticKey.from_public_pem(pem, alg)


def test_load_signing_key(rsa_a, ec_key, rsa_small):
    assert load_signing_key(secret="z" * 32) == (b"z" * 32, "HS256")
    assert load_signing_key(pem=priv_pem(rsa_a))[1] == "RS256"
    assert load_signing_key(pem=priv_pem(ec_key))[1] == "ES256"
    assert load_signing_key(pem=priv_pem(ec_key), algorithm="ES256")[1] == "ES256"
    cases = [
        ({"secret": "short"}, "32 bytes"),
        ({"secret": "z" * 32, "algorithm": "RS256"}, "HS256"),
        ({}, "exactly one"),
        ({"secret": "z" * 32, "pem": priv_pem(rsa_a)}, "exactly one"),
        ({"pem": priv_pem(rsa_a), "algorithm": "ES256"}, "P-256"),
        ({"pem": priv_pem(ec_key), "algorithm": "RS256"}, "RSA"),
        ({"pem": priv_pem(rsa_a), "algorithm": "HS256"}, "RS256 or ES256"),
        ({"pem": priv_pem(rsa_small)}, "1024 bits"),
        ({"pem": priv_pem(rsa_a, b"pw")}, "encrypted"),
        ({"pem": pub_pem(rsa_a)}, "PEM private key"),
    ]
    for kwargs, word in cases:
        with pytest.raises(KeyConfigError, match=word):
            load_signing_key(**kwargs)


# --- JWKS configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url, kwargs, word",
    [
        ("file:///etc/jwks.json", {}, "http"),
        ("ftp://idp/jwks", {}, "http"),
        ("https:///jwks", {}, "host"),
        (URL, {"algorithm": "HS256"}, "RS256, ES256"),
        (URL, {"algorithm": "none"}, "RS256, ES256"),
        (URL, {"min_refresh_interval": 0}, "min_refresh_interval"),
        (URL, {"timeout": 0}, "timeout"),
        (URL, {"timeout": 600}, "timeout"),
    ],
)
def test_jwks_config_refused(url, kwargs, word):
    with pytest.raises(KeyConfigError, match=word):
        JWKSKeys(url, **kwargs)


def test_jwks_cache_age_follows_a_long_refresh_interval():
    assert JWKSKeys(URL, min_refresh_interval=7200).max_cache_age == 7200
    assert JWKSKeys(URL).max_cache_age == 3600
    with pytest.raises(KeyConfigError, match="max_cache_age"):
        JWKSKeys(URL, min_refresh_interval=60, max_cache_age=30)


# --- JWKS behaviour with a fake fetch -------------------------------------------------


async def test_jwks_verifies_rs256_and_es256(rsa_a, ec_key):
    idp = FakeIdP(jwks(jwk(rsa_a, "r1")))
    ident = await verify_token(token(rsa_a, "r1"), JWKSKeys(URL, fetch=idp), SETTINGS, NOW)
    assert ident.username == "alice"
    idp = FakeIdP(jwks(jwk(ec_key, "e1")))
    keys = JWKSKeys(URL, algorithm="ES256", fetch=idp)
    assert (await verify_token(token(ec_key, "e1", "ES256"), keys, SETTINGS, NOW)).username
    assert idp.urls == [URL]


async def test_unknown_kid_flood_fetches_once_per_interval(rsa_a):
    idp = FakeIdP(jwks(jwk(rsa_a, "r1")))
    keys = JWKSKeys(URL, fetch=idp)
    await verify_token(token(rsa_a, "r1"), keys, SETTINGS, NOW)
    assert len(idp.urls) == 1
    for i in range(50):
        with pytest.raises(TokenRejected) as info:
            await verify_token(token(rsa_a, f"random-{i}"), keys, SETTINGS, NOW + i)
        assert info.value.status == 401
    assert len(idp.urls) == 1  # all within 60 s of the first load
    for i in range(50):
        with pytest.raises(TokenRejected):
            await verify_token(token(rsa_a, f"again-{i}"), keys, SETTINGS, NOW + 60 + i / 10)
    assert len(idp.urls) == 2  # exactly one more refresh once the interval had passed


async def test_concurrent_unknown_kids_share_one_fetch(rsa_a):
    idp = FakeIdP(jwks(jwk(rsa_a, "r1")))
    keys = JWKSKeys(URL, fetch=idp)
    results = await asyncio.gather(
        *(keys.resolve({"alg": "RS256", "kid": f"k{i}"}, NOW) for i in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(r, TokenRejected) and r.status == 401 for r in results)
    assert len(idp.urls) == 1


async def test_key_rotation(rsa_a, rsa_b):
    idp = FakeIdP(jwks(jwk(rsa_a, "2025-a")))
    keys = JWKSKeys(URL, fetch=idp, min_refresh_interval=60)
    await verify_token(token(rsa_a, "2025-a"), keys, SETTINGS, NOW)
    idp.body = jwks(jwk(rsa_b, "2025-b"))  # the IdP rotates
    with pytest.raises(TokenRejected) as info:  # too soon to look again
        await verify_token(token(rsa_b, "2025-b"), keys, SETTINGS, NOW + 30)
    assert info.value.status == 401
    ident = await verify_token(token(rsa_b, "2025-b"), keys, SETTINGS, NOW + 61)
    assert ident.username == "alice"
    with pytest.raises(TokenRejected):  # the retired key is gone
        await verify_token(token(rsa_a, "2025-a"), keys, SETTINGS, NOW + 62)
    assert len(idp.urls) == 2


async def test_removed_key_dropped_after_max_cache_age(rsa_a, rsa_b):
    idp = FakeIdP(jwks(jwk(rsa_a, "a"), jwk(rsa_b, "b")))
    keys = JWKSKeys(URL, fetch=idp, max_cache_age=300)
    await keys.resolve({"kid": "a"}, NOW)
    idp.body = jwks(jwk(rsa_b, "b"))  # "a" revoked
    await keys.resolve({"kid": "a"}, NOW + 299)  # still cached
    with pytest.raises(TokenRejected):
        await keys.resolve({"kid": "a"}, NOW + 300)
    assert len(idp.urls) == 2


async def test_fetch_failure_is_503(rsa_a):
    idp = FakeIdP(fail=OSError("connection refused"))
    keys = JWKSKeys(URL, fetch=idp)
    tok = token(rsa_a, "r1")
    for t in (NOW, NOW + 10):
        with pytest.raises(TokenRejected) as info:
            await verify_token(tok, keys, SETTINGS, t)
        assert info.value.status == 503
        assert "unreachable" in info.value.reason
    assert len(idp.urls) == 1  # no hammering while it is down
    idp.fail, idp.body = None, jwks(jwk(rsa_a, "r1"))
    assert (await verify_token(tok, keys, SETTINGS, NOW + 60)).username == "alice"


async def test_stale_keys_kept_when_refresh_fails(rsa_a):
    idp = FakeIdP(jwks(jwk(rsa_a, "r1")))
    keys = JWKSKeys(URL, fetch=idp, max_cache_age=120)
    await keys.resolve({"kid": "r1"}, NOW)
    idp.fail = OSError("down")
    assert (await keys.resolve({"kid": "r1"}, NOW + 500))[1] == "RS256"
    with pytest.raises(TokenRejected) as info:
        await keys.resolve({"kid": "unknown"}, NOW + 501)
    assert info.value.status == 503
    assert len(idp.urls) == 2


async def test_fetch_timeout_is_503(caplog):
    async def hang(url, timeout):
        await asyncio.sleep(30)

    keys = JWKSKeys(URL, fetch=hang, timeout=0.05)
    with pytest.raises(TokenRejected) as info:
        await asyncio.wait_for(keys.resolve({"kid": "k"}, NOW), 5)
    assert info.value.status == 503
    assert "TimeoutError" in caplog.text


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"keys": {}}', jwks(), b"{" * 100])
async def test_unusable_jwks_is_503(body):
    keys = JWKSKeys(URL, fetch=FakeIdP(body))
    with pytest.raises(TokenRejected) as info:
        await keys.resolve({"kid": "k"}, NOW)
    assert info.value.status == 503


async def test_jwks_entries_filtered(rsa_a, rsa_b, rsa_small, ec_key):
    private = {**RSAAlgorithm.to_jwk(rsa_b, as_dict=True), "kid": "private"}
    body = jwks(
        jwk(rsa_a, "good"),
        jwk(rsa_b, "enc", use="enc"),
        jwk(rsa_b, "ps", alg="PS256"),
        jwk(rsa_small, "small"),
        jwk(ec_key, "ec"),
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
        private,
        jwk(rsa_b, "../../etc/passwd"),
        jwk(rsa_b, "good"),  # duplicate kid: the first one wins
        "junk",
    )
    keys = JWKSKeys(URL, fetch=FakeIdP(body))
    key, alg = await keys.resolve({"kid": "good"}, NOW)
    assert alg == "RS256"
    assert key.public_numbers() == rsa_a.public_key().public_numbers()
    for kid in ("enc", "ps", "small", "ec", "hmac", "private"):
        with pytest.raises(TokenRejected) as info:
            await keys.resolve({"kid": kid}, NOW)
        assert info.value.status == 401


async def test_missing_and_junk_kid(rsa_a):
    idp = FakeIdP(jwks(jwk(rsa_a, "r1")))
    keys = JWKSKeys(URL, fetch=idp)
    with pytest.raises(TokenRejected) as info:
        await keys.resolve({"alg": "RS256"}, NOW)
    assert info.value.status == 401
    for kid in ("../../etc/passwd", "a" * 129, "", None, 5, "k?x=1"):
        with pytest.raises(TokenRejected) as info:
            await keys.resolve({"alg": "RS256", "kid": kid}, NOW)
        assert info.value.status == 400
    assert idp.urls == []  # junk never reaches the network


async def test_jku_x5u_jwk_x5c_never_fetched(rsa_a, rsa_b):
    evil = "https://evil.example/jwks.json"
    idp = FakeIdP(jwks(jwk(rsa_a, "r1")))
    keys = JWKSKeys(URL, fetch=idp)
    attacker_jwk = jwk(rsa_b, "evil")
    headers = {"jku": evil, "x5u": evil, "jwk": attacker_jwk, "x5c": ["MIIB"]}
    forged = token(rsa_b, "evil", **headers)
    with pytest.raises(TokenRejected) as info:
        await verify_token(forged, keys, SETTINGS, NOW)
    assert info.value.status == 401
    forged_same_kid = token(rsa_b, "r1", **headers)
    with pytest.raises(TokenRejected) as info:
        await verify_token(forged_same_kid, keys, SETTINGS, NOW + 100)
    assert "signature" in info.value.reason
    # a genuine token carrying the same junk headers still verifies with the pinned key
    assert (await verify_token(token(rsa_a, "r1", **headers), keys, SETTINGS, NOW)).username
    assert evil not in idp.urls
    assert set(idp.urls) == {URL}


async def test_alg_none_and_hs256_never_trigger_a_fetch(rsa_a):
    idp = FakeIdP(jwks(jwk(rsa_a, "r1")))
    keys = JWKSKeys(URL, fetch=idp)
    forged = jwt.api_jws.PyJWS().encode(
        b'{"sub": "alice"}', b"x" * 32, algorithm="HS256", headers={"kid": "r1"}
    )
    for tok in (forged, "eyJhbGciOiJub25lIiwia2lkIjoicjEifQ.e30."):
        with pytest.raises(TokenRejected) as info:
            await verify_token(tok, keys, SETTINGS, NOW)
        assert info.value.status == 401
    assert idp.urls == []


# --- a real local JWKS server ------------------------------------------------------------


@pytest.fixture
async def jwks_server(rsa_a):
    hits = []
    body = jwks(jwk(rsa_a, "live-1"))

    class Keys(RequestHandler):
        def get(self):
            hits.append(self.request.path)
            self.set_header("Content-Type", "application/json")
            self.write(body)

    class Moved(RequestHandler):
        def get(self):
            hits.append(self.request.path)
            self.redirect("/jwks")

    class Huge(RequestHandler):
        def get(self):
            hits.append(self.request.path)
            self.write(b" " * (2 * 1024 * 1024))

    app = Application([("/jwks", Keys), ("/moved", Moved), ("/huge", Huge)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    server = HTTPServer(app)
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", hits
    server.stop()
    await server.close_all_connections()


async def test_real_http_jwks_server(jwks_server, rsa_a):
    base, hits = jwks_server
    keys = JWKSKeys(f"{base}/jwks", timeout=5)
    ident = await verify_token(token(rsa_a, "live-1"), keys, SETTINGS, NOW)
    assert ident.username == "alice"
    assert hits == ["/jwks"]


async def test_real_server_redirect_not_followed(jwks_server, rsa_a):
    base, hits = jwks_server
    keys = JWKSKeys(f"{base}/moved", timeout=5)
    with pytest.raises(TokenRejected) as info:
        await verify_token(token(rsa_a, "live-1"), keys, SETTINGS, NOW)
    assert info.value.status == 503
    assert hits == ["/moved"]


async def test_real_server_oversized_body_refused(jwks_server):
    base, _ = jwks_server
    with pytest.raises(Exception):  # noqa: B017 - tornado's size error, whatever its class
        await http_fetch(f"{base}/huge", 5)
    assert json.loads(await http_fetch(f"{base}/jwks", 5))["keys"][0]["kid"] == "live-1"


async def test_real_server_unreachable_is_503():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    keys = JWKSKeys(f"http://127.0.0.1:{port}/jwks", timeout=2)
    with pytest.raises(TokenRejected) as info:
        await keys.resolve({"kid": "k"}, NOW)
    assert info.value.status == 503
