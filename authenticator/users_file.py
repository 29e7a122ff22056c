"""Local accounts in a JSON file with argon2 password hashes.

The file is written atomically under an exclusive lock, so concurrent ``classhub-user``
runs never lose an account. (The sign-in issue moves accounts to PostgreSQL.)
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import tempfile
from contextlib import contextmanager
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
_hasher = PasswordHasher()
#: verified against when the user does not exist, so timing does not reveal accounts
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserFileError(ValueError):
    """A problem with a local account a user or admin can fix."""


def check_username(name: str) -> str:
    if not USERNAME_RE.match(name or ""):
        raise UserFileError(
            f"User name {name!r} is not allowed: use 1-64 lower-case letters, digits, "
            "'.', '_', '@' or '-', starting with a letter or digit."
        )
    return name


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load_users(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return data.get("users", {})


def _save(path: Path, users: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".users-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"users": users}, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def set_user(path: Path, name: str, password: str, admin: bool = False) -> None:
    check_username(name)
    if len(password) < 12:
        raise UserFileError("Passwords must be at least 12 characters long.")
    with _locked(path):
        users = load_users(path)
        users[name] = {"hash": _hasher.hash(password), "admin": bool(admin)}
        _save(path, users)


def remove_user(path: Path, name: str) -> bool:
    with _locked(path):
        users = load_users(path)
        found = users.pop(name, None) is not None
        if found:
            _save(path, users)
        return found


def verify(path: Path, name: str, password: str) -> dict | None:
    """The account record if ``password`` is right, else ``None`` (constant-ish time)."""
    entry = load_users(path).get(name)
    try:
        _hasher.verify(entry["hash"] if entry else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return entry


def generate_password() -> str:
    return secrets.token_urlsafe(15)
