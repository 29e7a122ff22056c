"""Keys for verifying (and, for the CLI, signing) sign-in JWTs.

Each key source is bound to exactly one algorithm, chosen by the admin. The token's
``kid`` is only a dictionary lookup key; ``jku``/``x5u``/``jwk``/``x5c`` headers are never
read. A JWKS is fetched only from the pinned URL, with timeouts and a size cap, and an
unknown ``kid`` triggers at most one refresh per ``min_refresh_interval``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from tornado.httpclient import HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from .jwt_verify import TokenRejected

log = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32
MIN_RSA_BITS = 2048
MAX_JWKS_BYTES = 1024 * 1024
MAX_JWKS_KEYS = 100
ASYMMETRIC = ("RS256", "ES256")
_KID = re.compile(r"[A-Za-z0-9._-]{1,128}")

Fetch = Callable[[str, float], Awaitable[bytes]]


class KeyConfigError(ValueError):
    """A key the admin configured cannot be used; the message says how to fix it."""


class JWKSError(Exception):
    """The JWKS could not be fetched or contained no usable key."""


def check_kid(kid: object) -> str:
    """Return ``kid`` if it is a plain lookup key, else refuse the token (400)."""
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise TokenRejected(400, "the token's key id (kid) is malformed")
    return kid


def _check_public(key: object, algorithm: str) -> object:
    if algorithm == "RS256":
        if not isinstance(key, rsa.RSAPublicKey):
            raise KeyConfigError("RS256 needs an RSA public key")
        if key.key_size < MIN_RSA_BITS:
            raise KeyConfigError(f"the RSA key has {key.key_size} bits; use >= {MIN_RSA_BITS}")
    elif algorithm == "ES256":
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise KeyConfigError("ES256 needs an EC public key on curve P-256 (prime256v1)")
    else:
        raise KeyConfigError(f"a public key needs the algorithm {' or '.join(ASYMMETRIC)}")
    return key


def _check_secret(secret: bytes | str) -> bytes:
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if len(secret) < MIN_SECRET_BYTES:
        raise KeyConfigError(
            f"the HS256 secret is {len(secret)} bytes; use at least {MIN_SECRET_BYTES} bytes, "
            "e.g. `openssl rand -hex 32`"
        )
    if secret.lstrip().startswith((b"-----BEGIN", b"ssh-")):
        raise KeyConfigError("the HS256 secret looks like a public/private key; use RS256/ES256")
    return secret


class StaticKey:
    """One configured key with its one algorithm."""

    def __init__(self, key: object, algorithm: str) -> None:
        self.key = key
        self.algorithm = algorithm

    @classmethod
    def from_secret(cls, secret: bytes | str) -> StaticKey:
        return cls(_check_secret(secret), "HS256")

    @classmethod
    def from_public_pem(cls, pem: bytes | str, algorithm: str) -> StaticKey:
        if algorithm not in ASYMMETRIC:
            raise KeyConfigError(
                f"a public key needs the algorithm {' or '.join(ASYMMETRIC)}; "
                "for HS256 configure a shared secret instead"
            )
        if isinstance(pem, str):
            pem = pem.encode("utf-8")
        if b"PRIVATE KEY" in pem:
            raise KeyConfigError("this is a private key; give the hub only the public key")
        try:
            key = load_pem_public_key(pem)
        except (ValueError, TypeError):
            raise KeyConfigError(
                "not a PEM public key ('-----BEGIN PUBLIC KEY-----'); from a certificate, "
                "extract it with `openssl x509 -pubkey -noout -in cert.pem`"
            ) from None
        return cls(_check_public(key, algorithm), algorithm)

    async def resolve(self, header: dict, now: float) -> tuple[object, str]:
        if "kid" in header:
            check_kid(header["kid"])
        return self.key, self.algorithm


def load_signing_key(
    *, secret: bytes | str | None = None, pem: bytes | None = None, algorithm: str | None = None
) -> tuple[object, str]:
    """Return ``(key, algorithm)`` for signing: an HS256 secret or a PEM private key."""
    if (secret is None) == (pem is None):
        raise KeyConfigError("give exactly one of an HS256 secret or a PEM private key")
    if secret is not None:
        if algorithm not in (None, "HS256"):
            raise KeyConfigError("a shared secret can only be used with HS256")
        return _check_secret(secret), "HS256"
    try:
        key = load_pem_private_key(pem, password=None)
    except TypeError:
        raise KeyConfigError(
            "the private key is encrypted; decrypt it with `openssl pkey -in KEY -out PLAIN`"
        ) from None
    except ValueError:
        raise KeyConfigError("not a PEM private key ('-----BEGIN PRIVATE KEY-----')") from None
    if algorithm is None:
        algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
    if algorithm not in ASYMMETRIC:
        raise KeyConfigError(f"a private key needs the algorithm {' or '.join(ASYMMETRIC)}")
    _check_public(key.public_key(), algorithm)
    return key, algorithm


async def http_fetch(url: str, timeout: float, max_bytes: int = MAX_JWKS_BYTES) -> bytes:
    """GET ``url`` with timeouts, no redirects, no decompression and a body size cap."""
    client = SimpleAsyncHTTPClient(
        force_instance=True, max_body_size=max_bytes, max_buffer_size=max_bytes
    )
    request = HTTPRequest(
        url,
        headers={"Accept": "application/json"},
        connect_timeout=timeout,
        request_timeout=timeout,
        follow_redirects=False,
        decompress_response=False,
    )
    try:
        response = await client.fetch(request, raise_error=False)
    finally:
        client.close()
    if response.code != 200:
        raise JWKSError(f"HTTP status {response.code}")
    if len(response.body) > max_bytes:
        raise JWKSError("the response is too large")
    return response.body


def parse_jwks(body: bytes, algorithm: str) -> dict[str, object]:
    """Return ``{kid: public key}`` for the JWKS entries usable with ``algorithm``."""
    if len(body) > MAX_JWKS_BYTES:
        raise JWKSError("the JWKS is too large")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise JWKSError("the JWKS is not JSON") from None
    entries = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise JWKSError("the JWKS has no 'keys' list")
    kty, builder = ("RSA", RSAAlgorithm) if algorithm == "RS256" else ("EC", ECAlgorithm)
    keys: dict[str, object] = {}
    for jwk in entries[:MAX_JWKS_KEYS]:
        if not isinstance(jwk, dict) or jwk.get("kty") != kty or "d" in jwk:
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", algorithm) != algorithm:
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not _KID.fullmatch(kid) or kid in keys:
            continue
        try:
            keys[kid] = _check_public(builder.from_jwk(jwk), algorithm)
        except Exception as e:  # one bad entry must not hide the others
            log.warning("JWKS key %s skipped: %s", kid, e)
    if not keys:
        raise JWKSError(f"the JWKS has no usable {algorithm} signing key with a kid")
    return keys


class JWKSKeys:
    """Public keys from a JWKS URL pinned in config, cached and refreshed sparingly."""

    def __init__(
        self,
        url: str,
        *,
        algorithm: str = "RS256",
        min_refresh_interval: float = 60,
        timeout: float = 5,
        fetch: Fetch | None = None,
        max_cache_age: float | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise KeyConfigError("the JWKS URL must be an http:// or https:// URL with a host")
        if algorithm not in ASYMMETRIC:
            raise KeyConfigError(f"a JWKS algorithm must be one of {', '.join(ASYMMETRIC)}")
        if not 1 <= min_refresh_interval <= 86400:
            raise KeyConfigError("min_refresh_interval must be between 1 and 86400 seconds")
        if not 0 < timeout <= 60:
            raise KeyConfigError("the JWKS timeout must be between 0 and 60 seconds")
        if max_cache_age is None:
            max_cache_age = max(3600, min_refresh_interval)
        if max_cache_age < min_refresh_interval:
            raise KeyConfigError("max_cache_age must be at least min_refresh_interval")
        if parts.scheme == "http":
            log.warning("JWKS URL %s is plain http; use https outside a test setup", url)
        self.url = url
        self.algorithm = algorithm
        self.min_refresh_interval = min_refresh_interval
        self.max_cache_age = max_cache_age
        self.timeout = timeout
        self._fetch = fetch or http_fetch
        self._keys: dict[str, object] = {}
        self._loaded_at: float | None = None  # last successful load
        self._tried_at: float | None = None  # last attempt, successful or not
        self._last_failed = False
        self._lock = asyncio.Lock()

    async def refresh(self, now: float) -> None:
        """Fetch the JWKS unless an attempt was made less than the interval ago."""
        async with self._lock:
            if self._tried_at is not None and abs(now - self._tried_at) < self.min_refresh_interval:
                return
            self._tried_at = now
            try:
                body = await asyncio.wait_for(self._fetch(self.url, self.timeout), self.timeout + 1)
                keys = parse_jwks(body, self.algorithm)
            except Exception as e:  # any fetch failure means "unreachable"
                self._last_failed = True
                log.warning(
                    "could not load the JWKS from %s: %s", self.url, str(e) or type(e).__name__
                )
                return
            self._keys, self._loaded_at, self._last_failed = keys, now, False
            log.info("loaded %d key(s) from the JWKS at %s", len(keys), self.url)

    async def resolve(self, header: dict, now: float) -> tuple[object, str]:
        if "kid" not in header:
            raise TokenRejected(401, "the token does not name its signing key (no kid)")
        kid = check_kid(header["kid"])
        stale = self._loaded_at is None or abs(now - self._loaded_at) >= self.max_cache_age
        if kid not in self._keys or stale:
            await self.refresh(now)
        key = self._keys.get(kid)
        if key is not None:
            return key, self.algorithm
        if self._last_failed:
            raise TokenRejected(503, "the sign-in key server is unreachable; try again in a minute")
        raise TokenRejected(401, "the token is signed with a key this hub does not know")
