"""Local accounts in PostgreSQL (schema ``classhub_auth``) with argon2 password hashes.

One :class:`AccountStore` per process holds a small psycopg connection pool. Every call is
bounded in time: the wait for a connection (``timeout``), each statement
(``statement_timeout``), the connection attempt (``connect_timeout``) and the whole call on
the client side. When PostgreSQL is down or too slow a call raises
:class:`StoreUnavailable`; the pool reconnects by itself once the server is back.

Passwords are hashed and verified in a small thread pool, never on the event loop.
Usernames always go through :func:`common.usernames.normalize_username`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from common.usernames import InvalidUsername, normalize_username

from .migrate import MIGRATION_TIMEOUT_MS, apply_migrations

if TYPE_CHECKING:
    from .accounts_csv import ImportReport

log = logging.getLogger(__name__)

ROLES = ("admin", "teacher", "student")
MIN_PASSWORD_LENGTH = 10
#: argon2 hashes whatever it gets; a cap keeps a huge "password" from costing CPU and memory
MAX_PASSWORD_LENGTH = 1024
#: no 0/O, 1/l/I: generated passwords are read off paper and typed in by students
_PASSWORD_ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_GENERATED_LENGTH = 16  # ~93 bits

_T = "classhub_auth.accounts"
_COLUMNS = "username, role, disabled, created_at"

# argon2 needs ~64 MiB and ~0.1 s of CPU per hash: a few threads bound both under a login
# rush, and a CSV import (thousands of hashes) has threads of its own so sign-ins never queue
# behind it
_CPUS = os.cpu_count() or 1
_HASH_THREADS = ThreadPoolExecutor(min(4, _CPUS), thread_name_prefix="classhub-argon2")
_IMPORT_THREADS = ThreadPoolExecutor(
    max(1, min(4, _CPUS // 2)), thread_name_prefix="classhub-argon2-import"
)


class AccountError(ValueError):
    """Bad input (unknown role, short password, ...); the message is shown to the admin."""


class AccountExists(AccountError):
    """An account with that username exists already."""


class AccountNotFound(AccountError):
    """There is no account with that username."""


class StoreUnavailable(RuntimeError):
    """PostgreSQL is unreachable or too slow. ``str()`` is fit for a 503 page; ``detail``
    holds the technical cause for logs and the CLI."""

    def __init__(self, detail: str = ""):
        super().__init__("the account database is unreachable or too slow; try again shortly")
        self.detail = detail


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    disabled: bool
    created_at: datetime


# ----------------------------------------------------------------------------- rules


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


_DRIVER_RE = re.compile(r"^(postgres(?:ql)?)\+[A-Za-z0-9_]+://")


def pg_conninfo(dsn: str, *, connect_timeout: float = 5.0) -> str:
    """A libpq conninfo string from a PostgreSQL URL (SQLAlchemy's ``postgresql+psycopg://``
    is accepted) or conninfo; adds ``connect_timeout`` unless set. Errors never echo the URL,
    which usually carries a password."""
    if not isinstance(dsn, str) or not dsn.strip():
        raise ValueError("no account database URL given")
    dsn = _DRIVER_RE.sub(r"\1://", dsn.strip(), count=1)
    if "://" in dsn.split(" ", 1)[0] and not dsn.startswith(("postgresql://", "postgres://")):
        raise ValueError("the account database must be PostgreSQL (a postgresql:// URL)")
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise ValueError("the account database URL is not valid") from None
    params.setdefault("connect_timeout", str(max(1, round(connect_timeout))))
    params.setdefault("application_name", "classhub-accounts")
    return make_conninfo("", **params)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def _in_thread(fn, *args, threads: ThreadPoolExecutor = _HASH_THREADS):
    return await asyncio.get_running_loop().run_in_executor(threads, fn, *args)


# ----------------------------------------------------------------------------- store


class AccountStore:
    """Accounts in ``classhub_auth.accounts``. Call :meth:`open` first (it also migrates)."""

    #: how long the pool keeps retrying one lost connection before it gives up on it (a new
    #: request starts a new attempt); bounds the retry back-off once the server is back
    reconnect_timeout = 10.0

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 8, timeout: float = 5.0):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._conninfo = pg_conninfo(dsn, connect_timeout=timeout)
        self._min_size, self._max_size, self._timeout = min_size, max_size, timeout
        self._pool: AsyncConnectionPool | None = None
        self._open_lock = asyncio.Lock()
        self._last_connect_error = ""
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
        async with self._open_lock:
            if self._pool is None:
                await self._open()

    async def _open(self) -> None:
        store = self

        class _Connection(psycopg.AsyncConnection):
            # remembers why connecting failed, for StoreUnavailable.detail
            @classmethod
            async def connect(cls, conninfo: str = "", **kwargs):
                try:
                    conn = await super().connect(conninfo, **kwargs)
                except psycopg.OperationalError as e:
                    store._last_connect_error = _first_line(e)
                    raise
                store._last_connect_error = ""
                return conn

        pool = AsyncConnectionPool(
            self._conninfo,
            connection_class=_Connection,
            kwargs={"autocommit": True},
            min_size=self._min_size,
            max_size=self._max_size,
            timeout=self._timeout,
            reconnect_timeout=self.reconnect_timeout,
            configure=self._configure,
            check=AsyncConnectionPool.check_connection,
            name="classhub-accounts",
            open=False,
        )
        await pool.open(wait=False)
        self._pool = pool
        try:
            budget = self._timeout + MIGRATION_TIMEOUT_MS / 1000
            async with self._connection(budget) as conn:
                applied = await apply_migrations(conn)
        except BaseException:
            self._pool = None
            await pool.close(timeout=self._timeout)
            raise
        if applied:
            log.info("account schema migrated: applied %s", applied)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close(timeout=self._timeout)

    async def _configure(self, conn: psycopg.AsyncConnection) -> None:
        ms = str(int(self._timeout * 1000))
        await conn.execute(
            "SELECT set_config('statement_timeout', %s, false),"
            " set_config('lock_timeout', %s, false),"
            " set_config('idle_in_transaction_session_timeout', %s, false)",
            (ms, ms, str(int(self._timeout * 4000))),
        )

    @asynccontextmanager
    async def _connection(self, budget: float | None = None) -> AsyncIterator:
        """A pooled connection (autocommit); database trouble becomes StoreUnavailable."""
        if self._pool is None:
            raise RuntimeError("the account store is not open; call open() first")
        # pool wait + statements, enforced here too in case the network swallows packets
        budget = budget if budget is not None else 3 * self._timeout
        try:
            async with asyncio.timeout(budget), self._pool.connection() as conn:
                yield conn
        except PoolTimeout as e:
            detail = self._last_connect_error or "no free connection"
            raise self._unavailable(f"no connection within {self._timeout:g} s ({detail})") from e
        except psycopg.OperationalError as e:
            raise self._unavailable(_first_line(e)) from e
        except TimeoutError as e:
            raise self._unavailable(f"no answer within {budget:g} s") from e

    @staticmethod
    def _unavailable(detail: str) -> StoreUnavailable:
        log.warning("account database unavailable: %s", detail)
        return StoreUnavailable(detail)

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
        async with self._connection() as conn:
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
            async with self._connection() as conn:
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
        self, username: str, password: str, role: str = "student", *, if_missing: bool = False
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
        async with self._connection() as conn:
            try:
                cur = await conn.execute(
                    f"INSERT INTO {_T} (username, password_hash, role) VALUES (%s, %s, %s)"  # noqa: S608
                    f"{conflict} RETURNING {_COLUMNS}",
                    (name, digest, role),
                )
            except pg_errors.UniqueViolation:
                raise AccountExists(f"an account named {name} already exists") from None
            row = await cur.fetchone()
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
        async with self._connection() as conn:
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM {_T} WHERE username = %s", (name,))  # noqa: S608
            row = await cur.fetchone()
        return Account(*row) if row else None

    async def list(self) -> list[Account]:
        async with self._connection() as conn:
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM {_T} ORDER BY username")  # noqa: S608
            return [Account(*row) for row in await cur.fetchall()]

    async def _update(self, username: str, assignments: str, params: tuple, what: str) -> None:
        name = check_username(username)
        async with self._connection() as conn:
            cur = await conn.execute(
                f"UPDATE {_T} SET {assignments}, updated_at = now() WHERE username = %s",  # noqa: S608
                (*params, name),
            )
        if cur.rowcount == 0:
            raise AccountNotFound(f"there is no account named {name}")
        log.info("account %s: %s", name, what)

    async def set_password(self, username: str, password: str) -> None:
        check_password(password, check_username(username))
        digest = await self._hash(password)
        await self._update(
            username,
            "password_hash = %s, password_changed_at = now()",
            (digest,),
            "password changed",
        )

    async def set_role(self, username: str, role: str) -> None:
        role = check_role(role)
        await self._update(username, "role = %s", (role,), f"role set to {role}")

    async def set_disabled(self, username: str, disabled: bool) -> None:
        what = "disabled" if disabled else "enabled"
        await self._update(username, "disabled = %s", (bool(disabled),), what)

    async def delete(self, username: str) -> None:
        name = check_username(username)
        async with self._connection() as conn:
            cur = await conn.execute(f"DELETE FROM {_T} WHERE username = %s", (name,))  # noqa: S608
        if cur.rowcount == 0:
            raise AccountNotFound(f"there is no account named {name}")
        log.info("account %s deleted", name)

    async def import_csv(
        self, text: str, *, default_role: str = "student", skip_existing: bool = False
    ) -> ImportReport:
        """Create the accounts of a CSV file, all or nothing (see :mod:`.accounts_csv`).

        Raises :class:`AccountError` for a problem with the whole file (no header, too
        big); row problems are in the returned report, with ``applied=False``. Hashing
        costs ~0.1 s of CPU per row (spread over up to half the CPUs): 1000 rows take a
        minute or so on a small server."""
        from . import accounts_csv as ac

        rows = ac.parse_accounts_csv(text, default_role=default_role)
        existing = await self._existing([r.username for r in rows if r.error is None])
        if ac.is_blocked(rows, existing, skip_existing=skip_existing):
            return ac.build_report(rows, existing, skip_existing=skip_existing, applied=False)
        todo = ac.rows_to_create(rows, existing)
        hashes = await asyncio.gather(
            *(_in_thread(self.hasher.hash, r.password, threads=_IMPORT_THREADS) for r in todo)
        )
        names = [r.username for r in todo]
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"INSERT INTO {_T} (username, password_hash, role)"  # noqa: S608
                " SELECT * FROM unnest(%s::text[], %s::text[], %s::text[])"
                " ON CONFLICT (username) DO NOTHING RETURNING username",
                (names, hashes, [r.role for r in todo]),
            )
            raced = set(names) - {row[0] for row in await cur.fetchall()}
            if raced and not skip_existing:
                raise psycopg.Rollback()  # created meanwhile by someone else: write nothing
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
        async with self._connection() as conn:
            cur = await conn.execute(
                f"SELECT username FROM {_T} WHERE username = ANY(%s)",  # noqa: S608
                (names,),
            )
            return {row[0] for row in await cur.fetchall()}
