"""The one PostgreSQL connection pool of classhub's stores (accounts, grades).

A :class:`PgPool` is a small psycopg pool for one schema. Every use is bounded in time:
the wait for a connection (``timeout``), each statement (``statement_timeout``,
``lock_timeout``), the connection attempt (``connect_timeout``) and the whole use on the
client side. When PostgreSQL is down or too slow a use raises
:class:`~common.errors.StoreUnavailable`; the pool reconnects by itself once the server
is back.

Each connection's ``search_path`` is the store's schema (set with ``set_config``, a
parameter like any other), so the stores' SQL names their tables without a schema and no
schema name is ever formatted into SQL. :meth:`PgPool.open` also brings the schema up to
date with the migrations the store's package ships (:mod:`common.pgmigrate`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from . import pgmigrate
from .errors import StoreUnavailable

log = logging.getLogger(__name__)

_DRIVER_RE = re.compile(r"^(postgres(?:ql)?)\+[A-Za-z0-9_]+://")
#: every connection sets these from the parameters: one constant statement
_CONFIGURE = (
    "SELECT set_config(name, value, false) FROM unnest(%s::text[], %s::text[]) AS s(name, value)"
)


def pg_conninfo(
    dsn: str,
    *,
    connect_timeout: float = 5.0,
    what: str = "database",
    application_name: str = "classhub",
) -> str:
    """A libpq conninfo string from a PostgreSQL URL (SQLAlchemy's ``postgresql+psycopg://``
    is accepted) or conninfo; adds ``connect_timeout`` and ``application_name`` unless set.
    Errors name ``what`` (``"account database"``) and never echo the URL, which usually
    carries a password."""
    if not isinstance(dsn, str) or not dsn.strip():
        raise ValueError(f"no {what} URL given")
    dsn = _DRIVER_RE.sub(r"\1://", dsn.strip(), count=1)
    if "://" in dsn.split(" ", 1)[0] and not dsn.startswith(("postgresql://", "postgres://")):
        raise ValueError(f"the {what} must be PostgreSQL (a postgresql:// URL)")
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise ValueError(f"the {what} URL is not valid") from None
    params.setdefault("connect_timeout", str(max(1, round(connect_timeout))))
    params.setdefault("application_name", application_name)
    return make_conninfo("", **params)


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (its type when it has none), for logs and
    :attr:`StoreUnavailable.detail`."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class PgPool:
    """A pool of autocommit connections to one schema. Call :meth:`open` first.

    ``store`` and ``message`` make its :class:`StoreUnavailable` (``message`` is what
    people are shown); ``what`` names the database in logs and URL errors; ``name`` is the
    pool's and the connections' ``application_name``. ``migrations`` is the package whose
    ``migrations/NNNN_name.sql`` files :meth:`migrate` applies under ``lock_key``.
    ``settings`` are more session settings for every connection (``{"TimeZone": "UTC"}``).
    """

    #: how long the pool keeps retrying one lost connection before it gives up on it (a new
    #: request starts a new attempt); bounds the retry back-off once the server is back
    reconnect_timeout = 10.0

    def __init__(
        self,
        dsn: str,
        *,
        schema: str,
        migrations: str,
        lock_key: int,
        name: str,
        store: str,
        message: str,
        what: str,
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 5.0,
        settings: Mapping[str, str] | None = None,
    ):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.conninfo = pg_conninfo(dsn, connect_timeout=timeout, what=what, application_name=name)
        self.schema, self.timeout = schema, timeout
        self._migrations, self._lock_key = migrations, lock_key
        self._name, self._store, self._message, self._what = name, store, message, what
        self._min_size, self._max_size = min_size, max_size
        ms = str(int(timeout * 1000))
        self._settings = {
            "statement_timeout": ms,
            "lock_timeout": ms,
            "idle_in_transaction_session_timeout": str(int(timeout * 4000)),
            "search_path": schema,
            **(settings or {}),
        }
        self._pool: AsyncConnectionPool | None = None
        self._open_lock = asyncio.Lock()
        self._last_connect_error = ""

    @property
    def opened(self) -> bool:
        """Whether :meth:`open` succeeded."""
        return self._pool is not None

    async def open(self) -> list[int]:
        """Open the pool (without waiting for connections) and run :meth:`migrate`;
        returns the migrations applied now.

        Raises :class:`StoreUnavailable` when PostgreSQL cannot be reached within the
        timeout; the pool is closed again then and ``open()`` may be retried."""
        async with self._open_lock:
            if self._pool is not None:
                return []
            pool = AsyncConnectionPool(
                self.conninfo,
                connection_class=self._connection_class(),
                kwargs={"autocommit": True},
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=self.timeout,
                reconnect_timeout=self.reconnect_timeout,
                configure=self._configure,
                check=AsyncConnectionPool.check_connection,
                name=self._name,
                open=False,
            )
            await pool.open(wait=False)
            self._pool = pool
            try:
                applied = await self.migrate()
            except BaseException:
                self._pool = None
                await pool.close(timeout=self.timeout)
                raise
        if applied:
            log.info("schema %s migrated: applied %s", self.schema, applied)
        return applied

    def _connection_class(self) -> type[psycopg.AsyncConnection]:
        owner = self

        class _Connection(psycopg.AsyncConnection):
            # remembers why connecting failed, for StoreUnavailable.detail
            @classmethod
            async def connect(cls, conninfo: str = "", **kwargs):
                try:
                    conn = await super().connect(conninfo, **kwargs)
                except psycopg.OperationalError as e:
                    owner._last_connect_error = first_line(e)
                    raise
                owner._last_connect_error = ""
                return conn

        return _Connection

    async def _configure(self, conn: psycopg.AsyncConnection) -> None:
        await conn.execute(_CONFIGURE, (list(self._settings), list(self._settings.values())))

    async def migrate(self) -> list[int]:
        """Bring the schema up to date; returns the versions applied now."""
        budget = self.timeout + pgmigrate.MIGRATION_TIMEOUT_MS / 1000
        async with self.connection(budget) as conn:
            return await pgmigrate.apply_migrations(
                conn,
                schema=self.schema,
                migrations=pgmigrate.load_migrations(self._migrations),
                lock_key=self._lock_key,
            )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close(timeout=self.timeout)

    async def ping(self) -> None:
        """A health check: raises StoreUnavailable unless PostgreSQL answers."""
        async with self.connection() as conn:
            await conn.execute("SELECT 1")

    @asynccontextmanager
    async def connection(
        self, budget: float | None = None
    ) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection (autocommit) for at most ``budget`` seconds (3 timeouts:
        the wait for it and its statements); database trouble becomes StoreUnavailable."""
        if self._pool is None:
            # not connected yet (a service keeps trying to open it): a 503, not a 500
            raise self.unavailable("the store is not open yet")
        # enforced here too in case the network swallows packets
        budget = budget if budget is not None else 3 * self.timeout
        try:
            async with asyncio.timeout(budget), self._pool.connection() as conn:
                yield conn
        except PoolTimeout as e:
            detail = self._last_connect_error or "no free connection"
            raise self.unavailable(f"no connection within {self.timeout:g} s ({detail})") from e
        except psycopg.OperationalError as e:
            raise self.unavailable(first_line(e)) from e
        except TimeoutError as e:
            raise self.unavailable(f"no answer within {budget:g} s") from e

    def unavailable(self, detail: str) -> StoreUnavailable:
        """The store's StoreUnavailable with ``detail`` (logged as a warning)."""
        log.warning("%s unavailable: %s", self._what, detail)
        return StoreUnavailable(self._message, detail, store=self._store)
