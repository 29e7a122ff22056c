"""Users and their roles, kept in one file of the data directory.

A user is ``name@db`` (the database it signs in against, ``authSource``) with SCRAM-SHA-256
credentials (never the password) and a list of built-in roles, each on one database:

| role        | on         | grants                                                        |
|-------------|------------|---------------------------------------------------------------|
| ``root``      | ``admin``    | everything: every database, user management, admin commands    |
| ``readWrite`` | a database | reading and writing that database's collections and indexes     |
| ``read``      | a database | reading that database's collections                           |

The file (``.classhub-users.json``, mode 0600, written atomically) lives next to the
databases' SQLite files, whose names always start with a letter or digit, so no database
command of the server can reach it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import scram

FILENAME = ".classhub-users.json"
ROLES = {"root", "readWrite", "read"}


class UserError(Exception):
    """A user management request MongoDB would refuse; ``code`` is MongoDB's."""

    def __init__(self, code: int, code_name: str, message: str):
        super().__init__(message)
        self.code, self.code_name = code, code_name


@dataclass(frozen=True)
class User:
    name: str
    db: str
    roles: tuple[tuple[str, str], ...]  # (role, database)
    creds: scram.Credentials

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.db)

    def info(self) -> dict:
        """As ``usersInfo`` shows it (no credentials)."""
        return {
            "_id": f"{self.db}.{self.name}",
            "user": self.name,
            "db": self.db,
            "roles": [{"role": r, "db": d} for r, d in self.roles],
            "mechanisms": [scram.MECHANISM],
        }

    def to_json(self) -> dict:
        return {
            "user": self.name,
            "db": self.db,
            "roles": [{"role": r, "db": d} for r, d in self.roles],
            "credentials": {scram.MECHANISM: self.creds.to_json()},
        }

    @classmethod
    def from_json(cls, doc: dict) -> User:
        return cls(
            doc["user"],
            doc["db"],
            tuple((r["role"], r["db"]) for r in doc["roles"]),
            scram.Credentials.from_json(doc["credentials"][scram.MECHANISM]),
        )


def parse_roles(value, db: str) -> tuple[tuple[str, str], ...]:
    """``roles`` of ``createUser``/``updateUser``: names (on ``db``) or ``{role, db}``."""
    if not isinstance(value, list):
        raise UserError(14, "TypeMismatch", '"roles" must be an array')
    roles = []
    for item in value:
        if isinstance(item, str):
            role, role_db = item, db
        elif isinstance(item, dict) and isinstance(item.get("role"), str):
            role, role_db = item["role"], item.get("db", db)
        else:
            raise UserError(2, "BadValue", "a role is a name or a {role, db} document")
        if not isinstance(role_db, str) or not role_db:
            raise UserError(2, "BadValue", "a role's database must be a name")
        if role not in ROLES or (role == "root" and role_db != "admin"):
            raise UserError(31, "RoleNotFound", f"Could not find role: {role}@{role_db}")
        if (role, role_db) not in roles:
            roles.append((role, role_db))
    return tuple(roles)


class UserStore:
    """The users of one server; thread-safe; every change is written before it returns."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._users: dict[tuple[str, str], User] = {}
        if self.path.exists():
            doc = json.loads(self.path.read_text())
            for item in doc.get("users", []):
                user = User.from_json(item)
                self._users[user.key] = user

    def __len__(self) -> int:
        with self._lock:
            return len(self._users)

    def get(self, name: str, db: str) -> User | None:
        with self._lock:
            return self._users.get((name, db))

    def all(self, db: str | None = None) -> list[User]:
        with self._lock:
            users = sorted(self._users.values(), key=lambda u: (u.db, u.name))
        return [u for u in users if db is None or u.db == db]

    def _save(self) -> None:
        doc = {"version": 1, "users": [u.to_json() for u in self._users.values()]}
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def create(
        self,
        name: str,
        db: str,
        password: str,
        roles: Iterable[tuple[str, str]],
        *,
        only_if_empty: bool = False,
    ) -> User:
        """A new user; with ``only_if_empty`` only while there is no user at all (the
        localhost exception, checked under the same lock)."""
        _check_name(name, db)
        creds = _credentials(password)
        user = User(name, db, tuple(roles), creds)
        with self._lock:
            if only_if_empty and self._users:
                raise UserError(
                    13, "Unauthorized", "the localhost exception is closed: a user exists"
                )
            if user.key in self._users:
                raise UserError(51003, "Location51003", f'User "{name}@{db}" already exists')
            self._users[user.key] = user
            try:
                self._save()
            except BaseException:
                del self._users[user.key]
                raise
        return user

    def update(
        self,
        name: str,
        db: str,
        *,
        password: str | None = None,
        roles: Iterable[tuple[str, str]] | None = None,
    ) -> User:
        creds = _credentials(password) if password is not None else None
        with self._lock:
            old = self._users.get((name, db))
            if old is None:
                raise _not_found(name, db)
            new = User(
                name,
                db,
                tuple(roles) if roles is not None else old.roles,
                creds or old.creds,
            )
            self._users[new.key] = new
            try:
                self._save()
            except BaseException:
                self._users[old.key] = old
                raise
        return new

    def drop(self, name: str, db: str) -> None:
        with self._lock:
            old = self._users.pop((name, db), None)
            if old is None:
                raise _not_found(name, db)
            try:
                self._save()
            except BaseException:
                self._users[old.key] = old
                raise


def _not_found(name: str, db: str) -> UserError:
    return UserError(11, "UserNotFound", f'Could not find user "{name}" for db "{db}"')


def _check_name(name, db) -> None:
    if not isinstance(name, str) or not name or "\0" in name:
        raise UserError(2, "BadValue", "a user name must be a non-empty string")
    if not isinstance(db, str) or not db or db == "$external":
        raise UserError(2, "BadValue", "users are kept in a database other than $external")


def _credentials(password) -> scram.Credentials:
    if not isinstance(password, str):
        raise UserError(2, "BadValue", "Must provide a 'pwd' field for all user documents")
    if not password:
        raise UserError(2, "BadValue", "User passwords must not be empty")
    try:
        return scram.credentials(password)
    except ValueError as e:  # saslprep refuses prohibited characters
        raise UserError(2, "BadValue", f"the password cannot be used: {e}") from None
