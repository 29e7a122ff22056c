"""What a local account may be: roles, username and password rules (pure: no I/O).

Both the store (:mod:`.accounts`) and the CSV import (:mod:`.accounts_csv`) check with
these; messages are shown to the admin and never contain a password.
"""

from __future__ import annotations

import secrets

from common.usernames import InvalidUsername, normalize_username

ROLES = ("admin", "teacher", "student")
MIN_PASSWORD_LENGTH = 10
#: argon2 hashes whatever it gets; a cap keeps a huge "password" from costing CPU and memory
MAX_PASSWORD_LENGTH = 1024
#: no 0/O, 1/l/I: generated passwords are read off paper and typed in by students
_PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_GENERATED_LENGTH = 16  # ~93 bits


class AccountError(ValueError):
    """Bad input (unknown role, short password, ...); the message is shown to the admin."""


class AccountExists(AccountError):
    """An account with that username exists already."""


class AccountNotFound(AccountError):
    """There is no account with that username."""


def check_username(raw: str) -> str:
    """The normalised username, or :class:`AccountError` saying why it is refused."""
    try:
        return normalize_username(raw)
    except InvalidUsername as e:
        raise AccountError(f"invalid username: {e}") from None


def check_role(role: str) -> str:
    value = role.strip().lower() if isinstance(role, str) else ""
    if value not in ROLES:
        shown = role[:32] if isinstance(role, str) else type(role).__name__
        raise AccountError(f"unknown role {shown!r}: use admin, teacher or student")
    return value


def check_password(password: str, username: str | None = None) -> str:
    """``password`` unchanged if acceptable; the error never contains the password."""
    if not isinstance(password, str):
        raise AccountError("the password must be text")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(
            f"the password is too long: use at most {MAX_PASSWORD_LENGTH} characters"
        )
    if username is not None and password.strip().lower() == username:
        raise AccountError("the password cannot be the username")
    return password


def generate_password() -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(_GENERATED_LENGTH))
