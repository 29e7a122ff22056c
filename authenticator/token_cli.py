"""``classhub-token``: mint a sign-in JWT the hub accepts (for tests, scripts, a portal).

Prints only the token, so ``TOKEN=$(classhub-token --user alice)`` works. The signing key
and the issuer/audience default to the environment the hub reads.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
import time

import jwt

from common.usernames import InvalidUsername, normalize_username

from .jwt_keys import KeyConfigError, check_kid, load_signing_key
from .jwt_verify import ROLES, TokenRejected, check_groups
from .settings import AUTH_TABLE

MAX_TTL = 24 * 3600
DEFAULT_MAX_AGE = 600  # the verifier's default; it refuses older tokens whatever their exp
MAX_KEY_FILE_BYTES = 64 * 1024
_TTL = re.compile(r"(\d{1,6})([smh]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
NO_KEY = (
    "no signing key: set CLASSHUB_JWT_SECRET (HS256, at least 32 bytes, e.g. "
    "`openssl rand -hex 32`) or CLASSHUB_JWT_PRIVATE_KEY_FILE (a PEM private key, with "
    "CLASSHUB_JWT_ALGORITHM=RS256 or ES256), or pass --key-file"
)


class UsageError(Exception):
    """A fix-it message for the person running the command."""


def parse_ttl(text: str) -> int:
    """``90s``, ``10m``, ``1h`` or bare seconds -> seconds (1 .. 24h)."""
    match = _TTL.fullmatch(text.strip().lower())
    if not match:
        raise UsageError("--ttl must look like 90s, 10m, 1h or a number of seconds")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise UsageError("--ttl must be at least 1 second")
    if seconds > MAX_TTL:
        raise UsageError("--ttl must be at most 24h; mint a new token instead of a long-lived one")
    return seconds


def make_claims(
    *,
    user: str,
    role: str,
    ttl: int,
    issuer: str,
    audience: str,
    now: float,
    groups: list[str] | None = None,
    username_claim: str = "sub",
    role_claim: str = "role",
    groups_claim: str = "groups",
) -> dict:
    """The claims of a token for ``user``; raises UsageError for a bad user, role or groups."""
    try:
        username = normalize_username(user)
    except InvalidUsername as e:
        raise UsageError(f"--user is not a valid username: {e}") from None
    if role not in ROLES:
        raise UsageError(f"--role must be one of {', '.join(ROLES)}")
    iat = int(now)
    claims = {
        "iss": issuer,
        "aud": audience,
        "iat": iat,
        "exp": iat + ttl,
        "jti": secrets.token_urlsafe(16),
        username_claim: username,
        role_claim: role,
    }
    if groups is not None:
        try:
            claims[groups_claim] = list(check_groups(groups))
        except ValueError as e:
            raise UsageError(f"--groups: {e}") from None
    return claims


def _read_key_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as e:
        raise UsageError(f"cannot read the key file {path}: {e.strerror}") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise UsageError(f"the key file {path} is too large to be a PEM key")
    return data


def signing_key(key_file: str | None, algorithm: str | None, env) -> tuple[object, str]:
    """Pick the signing key: --key-file, else CLASSHUB_JWT_PRIVATE_KEY_FILE or _SECRET."""
    algorithm = algorithm or env.get("CLASSHUB_JWT_ALGORITHM") or None
    secret = env.get("CLASSHUB_JWT_SECRET") or None
    key_file = key_file or env.get("CLASSHUB_JWT_PRIVATE_KEY_FILE") or None
    try:
        if key_file:
            return load_signing_key(pem=_read_key_file(key_file), algorithm=algorithm)
        if secret:
            return load_signing_key(secret=secret, algorithm=algorithm)
    except KeyConfigError as e:
        raise UsageError(f"unusable signing key: {e}") from None
    raise UsageError(NO_KEY)


def _parser(env) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="classhub-token", description=__doc__)
    p.add_argument("--user", required=True, help="the username to put in the token")
    p.add_argument("--role", default="student", choices=ROLES)
    p.add_argument("--ttl", default="10m", help="lifetime: 90s, 10m, 1h or seconds (max 24h)")
    p.add_argument("--groups", help="comma-separated group names")
    # the issuer and audience the hub requires (JWTAuthenticator's, from the same variables)
    p.add_argument("--issuer", default=AUTH_TABLE.get("jwt_issuer").read(environ=env))
    p.add_argument("--audience", default=AUTH_TABLE.get("jwt_audience").read(environ=env))
    p.add_argument("--username-claim", default="sub")
    p.add_argument("--role-claim", default="role")
    p.add_argument("--groups-claim", default="groups")
    p.add_argument("--key-file", help="PEM private key (default: $CLASSHUB_JWT_PRIVATE_KEY_FILE)")
    p.add_argument("--algorithm", choices=("HS256", "RS256", "ES256"), help="signing algorithm")
    p.add_argument("--kid", help="key id header, for a JWKS with several keys")
    return p


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    try:
        args = _parser(env).parse_args(argv)
    except SystemExit as e:  # argparse already wrote the message; keep the exit code
        return int(e.code or 0)
    try:
        ttl = parse_ttl(args.ttl)
        groups = None if args.groups is None else [g.strip() for g in args.groups.split(",")]
        if groups == [""]:
            groups = []
        claims = make_claims(
            user=args.user,
            role=args.role,
            ttl=ttl,
            issuer=args.issuer,
            audience=args.audience,
            now=time.time(),
            groups=groups,
            username_claim=args.username_claim,
            role_claim=args.role_claim,
            groups_claim=args.groups_claim,
        )
        headers = None
        if args.kid is not None:
            try:
                headers = {"kid": check_kid(args.kid)}
            except TokenRejected:
                raise UsageError("--kid must be 1-128 characters of A-Z a-z 0-9 . _ -") from None
        key, algorithm = signing_key(args.key_file, args.algorithm, env)
    except UsageError as e:
        sys.stderr.write(f"classhub-token: error: {e}\n")
        return 2
    if ttl > DEFAULT_MAX_AGE:
        sys.stderr.write(
            f"classhub-token: note: the hub refuses tokens older than its max_age "
            f"({DEFAULT_MAX_AGE} s by default), whatever --ttl says\n"
        )
    token = jwt.encode(claims, key, algorithm=algorithm, headers=headers)
    sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
