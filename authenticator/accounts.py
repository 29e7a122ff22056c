"""Local accounts in PostgreSQL (schema ``classhub_auth``) with argon2 password hashes.

One :class:`AccountStore` per process holds a small connection pool
(:class:`common.postgres.PgPool`): every call is bounded in time, and when PostgreSQL is
down or too slow it raises :class:`~common.errors.StoreUnavailable` (``store ==
"accounts"``); the pool reconnects by itself once the server is back.

Passwords are hashed and verified in a small thread pool, never on the event loop.
Usernames always go through :func:`common.usernames.normalize_username`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from common.errors import StoreUnavailable
from common.postgres import PgPool
from common.usernames import InvalidUsername, normalize_username

from . import accounts_csv as ac
from .account_access import like_pattern
from .account_rules import (
    MAX_PASSWORD_LENGTH,
    AccountError,
    AccountExists,
    AccountNotFound,
    check_password,
    check_role,
    check_username,
)

log = logging.getLogger(__name__)

#: names the store in :class:`~common.errors.StoreUnavailable` (``.store``)
STORE = "accounts"
#: what people are shown when the account database is unreachable
UNAVAILABLE = "the account database is unreachable or too slow; try again shortly"
SCHEMA = "classhub_auth"
#: pg_advisory_xact_lock key of the migrations; the bytes of "classhub" as an integer
LOCK_KEY = int.from_bytes(b"classhub", "big")

_T = "accounts"  # in SCHEMA, every connection's search_path
_AUDIT = "account_audit"
#: the actor of changes made with the ``classhub-user`` command
CLI_ACTOR = "classhub-user"
_COLUMNS = "username, role, disabled, created_at"

# argon2 needs ~64 MiB and ~0.1 s of CPU per hash: a few threads bound both under a login
# rush, and a CSV import (thousands of hashes) has threads of its own so sign-ins never queue
# behind it
_CPUS = os.cpu_count() or 1
_HASH_THREADS = ThreadPoolExecutor(min(4, _CPUS), thread_name_prefix="classhub-argon2")
_IMPORT_THREADS = ThreadPoolExecutor(
    max(1, min(4, _CPUS // 2)), thread_name_prefix="classhub-argon2-import"
)


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    disabled: bool
    created_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    username: str
    detail: dict


async def _audit(conn, actor: str, action: str, names: list[str], detail: dict) -> None:
    """Record ``action`` on ``names`` by ``actor`` (inside the change's transaction)."""
    await conn.execute(
        f"INSERT INTO {_AUDIT} (actor, action, username, detail)"  # noqa: S608
        " SELECT %s, %s, name, %s FROM unnest(%s::text[]) AS name",
        (actor, action, Jsonb(detail), names),
    )


async def _in_thread(fn, *args, threads: ThreadPoolExecutor = _HASH_THREADS):
    return await asyncio.get_running_loop().run_in_executor(threads, fn, *args)


# ----------------------------------------------------------------------------- store


class AccountStore:
    """Accounts in ``classhub_auth.accounts``. Call :meth:`open` first (it also migrates)."""

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 8, timeout: float = 5.0):
        self.db = PgPool(
            dsn,
            schema=SCHEMA,
            migrations="authenticator",
            lock_key=LOCK_KEY,
            name="classhub-accounts",
            store=STORE,
            message=UNAVAILABLE,
            what="account database",
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
        )
        self._dummy_hash: str | None = None
        #: replace before use to change the argon2 parameters (old hashes are upgraded at login)
        self.hasher = PasswordHasher()

    async def __aenter__(self) -> AccountStore:
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the pool (without waiting for connections) and run the migrations.

        Raises :class:`StoreUnavailable` when PostgreSQL cannot be reached within the
        timeout; the pool is closed again then and ``open()`` may be retried."""
        await self.db.open()

    async def close(self) -> None:
        await self.db.close()

    # ----- hashing (in threads)

    def _check_hash(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _hash(self, password: str) -> str:
        return await _in_thread(self.hasher.hash, password)

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    # ----- sign-in

    async def verify(self, username: str, password: str) -> Account | None:
        """The account when the password is right and the account enabled, else ``None``.

        An unknown user costs one argon2 verification too, so response time does not tell
        which usernames exist. A hash made with older argon2 parameters is upgraded."""
        try:
            name = normalize_username(username)
        except InvalidUsername:
            return None
        if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_LENGTH:
            return None
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS}, password_hash FROM {_T} WHERE username = %s",  # noqa: S608
                (name,),
            )
            row = await cur.fetchone()
        stored = row[4] if row else await self._dummy()
        ok = await _in_thread(self._check_hash, stored, password)
        if row is None or not ok or row[2]:
            log.debug("sign-in refused for %s", name)
            return None
        if self.hasher.check_needs_rehash(stored):
            await self._rehash(name, stored, password)
        return Account(*row[:4])

    async def _rehash(self, name: str, old: str, password: str) -> None:
        new = await self._hash(password)
        try:
            async with self.db.connection() as conn:
                # only if unchanged meanwhile: never overwrite a concurrent password change
                await conn.execute(
                    f"UPDATE {_T} SET password_hash = %s"  # noqa: S608
                    " WHERE username = %s AND password_hash = %s",
                    (new, name, old),
                )
        except StoreUnavailable as e:
            log.warning("could not store the upgraded password hash of %s: %s", name, e.detail)
        else:
            log.info("upgraded the password hash of %s to the current argon2 parameters", name)

    # ----- administration

    async def create(
        self,
        username: str,
        password: str,
        role: str = "student",
        *,
        if_missing: bool = False,
        actor: str = CLI_ACTOR,
    ) -> Account:
        """Create an account. With ``if_missing`` an existing account is returned unchanged
        (its password and role are left alone); otherwise it raises :class:`AccountExists`."""
        name = check_username(username)
        role = check_role(role)
        check_password(password, name)
        if if_missing and (existing := await self.get(name)) is not None:
            return existing
        digest = await self._hash(password)
        conflict = " ON CONFLICT (username) DO NOTHING" if if_missing else ""
        async with self.db.connection() as conn, conn.transaction():
            try:
                cur = await conn.execute(
                    f"INSERT INTO {_T} (username, password_hash, role) VALUES (%s, %s, %s)"  # noqa: S608
                    f"{conflict} RETURNING {_COLUMNS}",
                    (name, digest, role),
                )
            except pg_errors.UniqueViolation:
                raise AccountExists(f"an account named {name} already exists") from None
            row = await cur.fetchone()
            if row is not None:
                await _audit(conn, actor, "create", [name], {"role": role})
            if row is None:  # if_missing, and created by someone else meanwhile
                cur = await conn.execute(
                    f"SELECT {_COLUMNS} FROM {_T} WHERE username = %s",  # noqa: S608
                    (name,),
                )
                if (row := await cur.fetchone()) is None:
                    raise AccountError(f"the account {name} changed meanwhile; try again")
                return Account(*row)
        log.info("account %s created (%s)", name, role)
        return Account(*row)

    async def get(self, username: str) -> Account | None:
        name = check_username(username)
        async with self.db.connection() as conn:
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM {_T} WHERE username = %s", (name,))  # noqa: S608
            row = await cur.fetchone()
        return Account(*row) if row else None

    async def list(self) -> list[Account]:
        async with self.db.connection() as conn:
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM {_T} ORDER BY username")  # noqa: S608
            return [Account(*row) for row in await cur.fetchall()]

    async def search(self, text: str = "", offset: int = 0, limit: int = 50):
        """``(accounts, total)``: the page of accounts whose name contains ``text`` (any
        case), by name, and how many match in all."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS}, count(*) OVER () FROM {_T}"  # noqa: S608
                " WHERE username LIKE %s ESCAPE '\\' ORDER BY username OFFSET %s LIMIT %s",
                (like_pattern(text), offset, limit),
            )
            rows = await cur.fetchall()
            if not rows and offset:
                cur = await conn.execute(
                    f"SELECT count(*) FROM {_T} WHERE username LIKE %s ESCAPE '\\'",  # noqa: S608
                    (like_pattern(text),),
                )
                return [], (await cur.fetchone())[0]
        return [Account(*row[:4]) for row in rows], (rows[0][4] if rows else 0)

    async def created_by(self, username: str) -> str | None:
        """Who created ``username``'s current account (the audit log's newest ``create``),
        or None when the log has no such row (accounts older than the log)."""
        name = check_username(username)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT actor FROM {_AUDIT} WHERE username = %s AND action = 'create'"  # noqa: S608
                " ORDER BY id DESC LIMIT 1",
                (name,),
            )
            row = await cur.fetchone()
        return row[0] if row else None

    async def standing(self, username: str) -> tuple[bool, str | None] | None:
        """``(disabled, creator)`` of ``username``'s account, or None when there is none:
        what a token sign-in checks (see :meth:`created_by` for ``creator``), in one query."""
        name = check_username(username)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT a.disabled, (SELECT l.actor FROM {_AUDIT} l"  # noqa: S608
                " WHERE l.username = a.username AND l.action = 'create'"
                f" ORDER BY l.id DESC LIMIT 1) FROM {_T} a WHERE a.username = %s",
                (name,),
            )
            row = await cur.fetchone()
        return (bool(row[0]), row[1]) if row else None

    async def audit_log(self, username: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest changes (of ``username``'s account, when given), newest first."""
        where, params = (
            ("WHERE username = %s", (check_username(username),)) if username else ("", ())
        )
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT at, actor, action, username, detail FROM {_AUDIT} {where}"  # noqa: S608
                " ORDER BY at DESC, id DESC LIMIT %s",
                (*params, limit),
            )
            return [AuditEntry(*row) for row in await cur.fetchall()]

    async def _update(
        self,
        username: str,
        assignments: str,
        params: tuple,
        what: str,
        *,
        actor: str,
        action: str,
        detail: dict | None = None,
    ) -> None:
        name = check_username(username)
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"UPDATE {_T} SET {assignments}, updated_at = now() WHERE username = %s",  # noqa: S608
                (*params, name),
            )
            if cur.rowcount == 0:
                raise AccountNotFound(f"there is no account named {name}")
            await _audit(conn, actor, action, [name], detail or {})
        log.info("account %s: %s (by %s)", name, what, actor)

    async def set_password(self, username: str, password: str, *, actor: str = CLI_ACTOR) -> None:
        check_password(password, check_username(username))
        digest = await self._hash(password)
        await self._update(
            username,
            "password_hash = %s, password_changed_at = now()",
            (digest,),
            "password changed",
            actor=actor,
            action="password",
        )

    async def set_role(self, username: str, role: str, *, actor: str = CLI_ACTOR) -> None:
        role = check_role(role)
        await self._update(
            username,
            "role = %s",
            (role,),
            f"role set to {role}",
            actor=actor,
            action="role",
            detail={"role": role},
        )

    async def set_disabled(self, username: str, disabled: bool, *, actor: str = CLI_ACTOR) -> None:
        what = "disabled" if disabled else "enabled"
        await self._update(
            username,
            "disabled = %s",
            (bool(disabled),),
            what,
            actor=actor,
            action="disable" if disabled else "enable",
        )

    async def delete(self, username: str, *, actor: str = CLI_ACTOR) -> None:
        name = check_username(username)
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(f"DELETE FROM {_T} WHERE username = %s", (name,))  # noqa: S608
            if cur.rowcount == 0:
                raise AccountNotFound(f"there is no account named {name}")
            await _audit(conn, actor, "delete", [name], {})
        log.info("account %s deleted (by %s)", name, actor)

    async def import_csv(
        self,
        text: str,
        *,
        default_role: str = "student",
        skip_existing: bool = False,
        actor: str = CLI_ACTOR,
    ) -> ac.ImportReport:
        """Create the accounts of a CSV file, all or nothing (see :mod:`.accounts_csv`).

        Raises :class:`AccountError` for a problem with the whole file (no header, too
        big); row problems are in the returned report, with ``applied=False``. Hashing
        costs ~0.1 s of CPU per row (spread over up to half the CPUs): 1000 rows take a
        minute or so on a small server."""
        rows = ac.parse_accounts_csv(text, default_role=default_role)
        existing = await self._existing([r.username for r in rows if r.error is None])
        if ac.is_blocked(rows, existing, skip_existing=skip_existing):
            return ac.build_report(rows, existing, skip_existing=skip_existing, applied=False)
        todo = ac.rows_to_create(rows, existing)
        hashes = await asyncio.gather(
            *(_in_thread(self.hasher.hash, r.password, threads=_IMPORT_THREADS) for r in todo)
        )
        names = [r.username for r in todo]
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"INSERT INTO {_T} (username, password_hash, role)"  # noqa: S608
                " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[])"
                " ON CONFLICT (username) DO NOTHING RETURNING username",
                (names, hashes, [r.role for r in todo]),
            )
            made = {row[0] for row in await cur.fetchall()}
            raced = set(names) - made
            if raced and not skip_existing:
                raise psycopg.Rollback()  # created meanwhile by someone else: write nothing
            for role in sorted({r.role for r in todo if r.username in made}):
                who = [r.username for r in todo if r.username in made and r.role == role]
                await _audit(conn, actor, "create", who, {"role": role, "csv": True})
        applied = not raced or skip_existing
        report = ac.build_report(
            rows, existing | raced, skip_existing=skip_existing, applied=applied
        )
        if applied:
            log.info("CSV import: %s", report.summary())
        return report

    async def _existing(self, names: list[str]) -> set[str]:
        if not names:
            return set()
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT username FROM {_T} WHERE username = ANY(%s)",  # noqa: S608
                (names,),
            )
            return {row[0] for row in await cur.fetchall()}
