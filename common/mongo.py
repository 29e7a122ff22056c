"""The one MongoDB wrapper of classhub's stores (classes, material pushes).

pymongo blocks, so every call runs in the :class:`~common.blocking.BlockingCalls` thread
pool and is bounded in time twice: by the driver (``serverSelectionTimeoutMS``,
``connectTimeoutMS``, ``socketTimeoutMS`` and ``timeoutMS``, all set from ``timeout``)
and by the pool. When MongoDB is down or too slow a call raises
:class:`~common.errors.StoreUnavailable`; pymongo reconnects by itself once the server is
back, so a service recovers without a restart. MongoDB refusing the service's own user (a
wrong password, or a URL naming another database) is a 503 that names the credentials.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)

from .blocking import BlockingCalls, CallTimedOut
from .errors import StoreUnavailable, Unavailable

#: MongoDB refusing the service's own user: AuthenticationFailed (a wrong password or user),
#: Unauthorized (the URL names a database the user has no role on)
REFUSED_CODES = (18, 13)


class MongoStore:
    """One database of a service: ``store.collection("classes")``, ``await store.run(...)``.

    ``store`` and ``message`` make its :class:`StoreUnavailable` (``message`` is what people
    are shown); ``database`` (``"classes database"``) and ``url_setting`` (the variable
    holding its URL) name it when MongoDB refuses the credentials. Create it inside the
    event loop; it connects on its first call, never at start-up.
    """

    def __init__(
        self,
        url: str,
        *,
        blocking: BlockingCalls,
        appname: str,
        store: str,
        message: str,
        database: str,
        url_setting: str,
        timeout: float = 3.0,
        default_db: str = "classhub",
        log: logging.Logger | None = None,
    ):
        ms = int(timeout * 1000)
        self.timeout = timeout
        self.blocking = blocking
        self.log = log or logging.getLogger(__name__)
        self._store, self._message = store, message
        self._database, self._url_setting, self._appname = database, url_setting, appname
        self.client: MongoClient = MongoClient(
            url,
            connect=False,  # never block start-up: the first call connects
            tz_aware=True,
            appname=appname,
            serverSelectionTimeoutMS=ms,
            connectTimeoutMS=ms,
            socketTimeoutMS=ms,
            timeoutMS=ms,
        )
        self.db = self.client.get_default_database(default_db)
        self._indexed = False
        self._index_lock = asyncio.Lock()

    def collection(self, name: str) -> Collection:
        return self.db[name]

    def close(self) -> None:
        self.client.close()

    async def run(self, fn: Callable, /, *args, **kwargs):
        """``fn(*args, **kwargs)`` in the thread pool; an outage becomes StoreUnavailable,
        refused credentials Unavailable; any other MongoDB error (a duplicate key, ...) is
        raised as it is."""
        # the driver gives up after ~timeout; the pool's budget is a backstop
        try:
            return await self.blocking.run(fn, *args, timeout=2 * self.timeout + 1, **kwargs)
        except (ConnectionFailure, ExecutionTimeout, WTimeoutError, CallTimedOut) as e:
            raise self._unavailable(e) from None
        except PyMongoError as e:
            if isinstance(e, OperationFailure) and e.code in REFUSED_CODES:
                raise self._refused(e) from None
            if e.timeout:
                raise self._unavailable(e) from None
            raise

    async def ensure_indexes(self, create: Callable[[], object]) -> None:
        """Run ``create`` (which makes the indexes; idempotent in MongoDB) once per process."""
        if self._indexed:
            return
        async with self._index_lock:
            if self._indexed:
                return
            await self.run(create)
            self._indexed = True
            self.log.info("MongoDB indexes of the %s are in place", self._database)

    async def ping(self) -> None:
        await self.run(self.client.admin.command, "ping")

    def _refused(self, e: OperationFailure) -> Unavailable:
        name = (e.details or {}).get("codeName", "")
        self.log.error(
            "MongoDB refused the user of %s (%s %s): check its user and password in %s "
            "(`make up` writes them)",
            self._appname,
            e.code,
            name,
            self._url_setting,
        )
        return Unavailable(
            f"The {self._database} refused the service's credentials; an administrator must "
            "check its MongoDB settings.",
            f"{e.code} {name}",
        )

    def _unavailable(self, e: Exception) -> StoreUnavailable:
        detail = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        self.log.warning("MongoDB unavailable (%s): %s", self._database, detail)
        return StoreUnavailable(self._message, detail, store=self._store)
