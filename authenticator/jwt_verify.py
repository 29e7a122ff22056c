"""Verify a sign-in JWT and map its claims to a classhub identity.

The accepted algorithm comes from the configured key (``keys.algorithm``), never from the
token. Time checks use the ``now`` passed in, not PyJWT's clock. Every refusal is a
:class:`TokenRejected` whose ``reason`` is safe to show a user: it never quotes the token.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from common.usernames import InvalidUsername, normalize_username

log = logging.getLogger(__name__)

ROLES = ("admin", "teacher", "student")
MAX_LEEWAY = 60
MAX_GROUPS = 100
MAX_GROUP_LENGTH = 64
MAX_JTI_LENGTH = 255
_GROUP = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_GROUP_LENGTH}}}")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")
_REGISTERED = frozenset({"exp", "iat", "nbf", "iss", "aud", "jti"})
# epoch seconds must be a plain number in a sane range (refuses NaN, inf, huge ints)
_MAX_TIMESTAMP = 10**11


class TokenRejected(Exception):
    """A refused token. ``status``: 400 malformed, 401 not acceptable, 503 key server down."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return f"TokenRejected(status={self.status}, reason={self.reason!r})"


class KeySource(Protocol):
    algorithm: str

    async def resolve(self, header: dict, now: float) -> tuple[object, str]: ...


@dataclass(frozen=True)
class VerifySettings:
    issuer: str
    audience: str
    username_claim: str = "sub"
    role_claim: str = "role"
    groups_claim: str = ""
    default_role: str = "student"
    leeway: int = 30
    max_age: int = 600
    max_token_bytes: int = 8192

    def __post_init__(self) -> None:
        for name in ("issuer", "audience", "username_claim", "role_claim"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"JWT setting {name} must be a non-empty string")
        if not isinstance(self.groups_claim, str):
            raise ValueError("JWT setting groups_claim must be a string ('' turns groups off)")
        for name in ("username_claim", "role_claim", "groups_claim"):
            if getattr(self, name) in _REGISTERED:
                raise ValueError(f"JWT setting {name} cannot be a registered claim such as exp")
        if self.default_role not in ROLES:
            raise ValueError(f"JWT setting default_role must be one of {', '.join(ROLES)}")
        if _not_number(self.leeway) or not 0 <= self.leeway <= MAX_LEEWAY:
            raise ValueError(
                f"JWT setting leeway must be between 0 and {MAX_LEEWAY} seconds; "
                "fix the clocks (NTP) instead of widening it"
            )
        if _not_number(self.max_age) or not 0 < self.max_age <= 86400:
            raise ValueError("JWT setting max_age must be between 1 and 86400 seconds")
        if _not_number(self.max_token_bytes) or not 512 <= self.max_token_bytes <= 65536:
            raise ValueError("JWT setting max_token_bytes must be between 512 and 65536")


@dataclass(frozen=True)
class Identity:
    username: str
    role: str
    groups: tuple[str, ...] | None
    jti: str
    expires_at: float
    claims: dict


def _not_number(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, int | float)


def check_groups(value: Any) -> tuple[str, ...]:
    """Validate a groups list; raise ValueError (message quotes no value) if it is bad."""
    if not isinstance(value, list) or len(value) > MAX_GROUPS:
        raise ValueError(f"groups must be a list of at most {MAX_GROUPS} names")
    for group in value:
        if not isinstance(group, str) or not _GROUP.fullmatch(group):
            raise ValueError(
                f"each group must be 1-{MAX_GROUP_LENGTH} characters of A-Z a-z 0-9 . _ -"
            )
    return tuple(dict.fromkeys(value))


def parse_header(token: Any, max_token_bytes: int) -> dict:
    """Check the token's size and shape and return its (unverified) header."""
    if not isinstance(token, str):
        raise TokenRejected(400, "the token must be a string")
    if len(token) > max_token_bytes:  # before anything else: a 1 MB token costs nothing
        raise TokenRejected(400, f"the token is larger than {max_token_bytes} bytes")
    if not token.isascii():
        raise TokenRejected(400, "the token is malformed (unexpected characters)")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise TokenRejected(400, "the token is malformed (expected three dot-separated parts)")
    if not all(_SEGMENT.fullmatch(p) for p in parts):
        raise TokenRejected(400, "the token is malformed (not base64url)")
    try:
        raw = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
        header = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        raise TokenRejected(400, "the token is malformed (bad header)") from None
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        raise TokenRejected(400, "the token is malformed (bad header)")
    if "crit" in header or "b64" in header:
        raise TokenRejected(400, "the token uses header extensions this hub does not support")
    return header


def _decode(token: str, key: object, algorithm: str, settings: VerifySettings) -> dict:
    options = {
        "verify_signature": True,
        # times are checked below against the injected clock
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": True,
        "verify_iss": True,
        "require": ["exp", "iat", "iss", "aud", "jti", settings.username_claim],
        "enforce_minimum_key_length": True,
    }
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=settings.audience,
            issuer=settings.issuer,
            options=options,
        )
    except jwt.MissingRequiredClaimError as e:
        raise TokenRejected(401, f"the token is missing the required '{e.claim}' claim") from None
    except jwt.InvalidAudienceError:
        raise TokenRejected(401, "the token is not meant for this hub (wrong audience)") from None
    except jwt.InvalidIssuerError:
        raise TokenRejected(401, "the token comes from an issuer this hub does not trust") from None
    except jwt.InvalidSignatureError:
        raise TokenRejected(401, "the token signature is not valid") from None
    except (jwt.InvalidAlgorithmError, jwt.InvalidKeyError):
        raise TokenRejected(401, "the token is not signed with the expected key") from None
    except jwt.DecodeError:
        raise TokenRejected(400, "the token is malformed") from None
    except jwt.InvalidTokenError as e:
        log.debug("token refused by PyJWT: %s", type(e).__name__)
        raise TokenRejected(401, "the token is not valid") from None
    except (ValueError, TypeError) as e:
        log.debug("token could not be decoded: %s", type(e).__name__)
        raise TokenRejected(400, "the token is malformed") from None


def _timestamp(claims: dict, name: str) -> float:
    value = claims[name]
    if _not_number(value) or not 0 <= value < _MAX_TIMESTAMP:  # NaN fails the range too
        raise TokenRejected(401, f"the token's '{name}' claim is not a valid time")
    return float(value)


def check_times(claims: dict, settings: VerifySettings, now: float) -> float:
    """Check exp, iat, nbf and the token age; return exp."""
    exp, iat = _timestamp(claims, "exp"), _timestamp(claims, "iat")
    if iat > now + settings.leeway:
        raise TokenRejected(401, "the token is issued in the future; check the clocks")
    if "nbf" in claims and _timestamp(claims, "nbf") > now + settings.leeway:
        raise TokenRejected(401, "the token is not valid yet")
    if exp <= now - settings.leeway:
        raise TokenRejected(401, "the token has expired; sign in again")
    if now - iat > settings.max_age:
        raise TokenRejected(401, "the token is too old; sign in again")
    return exp


def map_identity(claims: dict, settings: VerifySettings, expires_at: float) -> Identity:
    """Turn verified claims into an :class:`Identity`."""
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise TokenRejected(401, "the token's 'jti' claim is not valid")
    raw_name = claims[settings.username_claim]
    if not isinstance(raw_name, str):
        raise TokenRejected(401, "the token's username claim is not a string")
    try:
        username = normalize_username(raw_name)
    except InvalidUsername as e:
        raise TokenRejected(401, f"the token's username is not allowed: {e}") from None
    role = claims.get(settings.role_claim)
    if role is None:
        role = settings.default_role
    elif role not in ROLES:  # also refuses non-strings
        raise TokenRejected(401, f"the token's role must be one of {', '.join(ROLES)}")
    groups = None
    if settings.groups_claim:
        value = claims.get(settings.groups_claim)
        try:
            groups = check_groups([] if value is None else value)
        except ValueError as e:
            raise TokenRejected(401, f"the token's groups are not valid: {e}") from None
    return Identity(username, role, groups, jti, expires_at, dict(claims))


async def verify_token(
    token: str, keys: KeySource, settings: VerifySettings, now: float
) -> Identity:
    """Verify ``token`` at time ``now`` (epoch seconds) or raise :class:`TokenRejected`."""
    header = parse_header(token, settings.max_token_bytes)
    # refuse a foreign alg before any key lookup, so alg:none costs no JWKS fetch
    if header["alg"] != keys.algorithm:
        raise TokenRejected(401, "the token is not signed with the algorithm this hub expects")
    key, algorithm = await keys.resolve(header, now)
    if header["alg"] != algorithm:
        raise TokenRejected(401, "the token is not signed with the algorithm this hub expects")
    claims = _decode(token, key, algorithm, settings)
    expires_at = check_times(claims, settings, now)
    return map_identity(claims, settings, expires_at)
