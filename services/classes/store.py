"""Class records in MongoDB (collection ``classes``), through pymongo in a thread pool.

Every call is bounded in time twice: by the driver (``serverSelectionTimeoutMS``,
``connectTimeoutMS``, ``socketTimeoutMS`` and ``timeoutMS``, all set from ``timeout``)
and by :class:`~common.blocking.BlockingCalls`. When MongoDB is down or too slow a
call raises :class:`StoreUnavailable` (a 503 for the caller); pymongo reconnects by
itself once the server is back, so the service recovers without a restart.

Only standard MongoDB features are used (a unique index, ``$set``, ``$addToSet``,
``$pull``, ``find_one_and_update``), so the code runs against the official ``mongo``
image and the offline stand-in (``classhub-mongo``, on nx-27017). Array membership is
always queried with ``$in``. The service signs in as its own user, with ``readWrite`` on
its database only; MongoDB refusing that user (a wrong password, or a URL naming another
database) is a 503 that names the credentials.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from pymongo import ASCENDING, MongoClient, ReturnDocument
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)

from common.blocking import BlockingCalls, CallTimedOut
from common.errors import Unavailable

from .model import ClassExists, ClassNotFound, timestamp

DEFAULT_DB = "classhub"
COLLECTION = "classes"
_NO_ID = {"_id": False}
#: MongoDB refusing the service's own user: AuthenticationFailed (a wrong password or user),
#: Unauthorized (the URL names a database the user has no role on)
REFUSED_CODES = (18, 13)


class StoreUnavailable(Unavailable):
    def __init__(self, detail: str = ""):
        super().__init__("the classes database is unreachable; try again shortly", detail)


class ClassStore:
    """``await store.get("bio101")`` and friends; create it inside the event loop."""

    def __init__(
        self,
        url: str,
        *,
        blocking: BlockingCalls,
        timeout: float = 3.0,
        log: logging.Logger | None = None,
    ):
        ms = int(timeout * 1000)
        self.timeout = timeout
        self.blocking = blocking
        self.log = log or logging.getLogger(__name__)
        self._client: MongoClient = MongoClient(
            url,
            connect=False,  # never block start-up: the first call connects
            tz_aware=True,
            appname="classhub-classes",
            serverSelectionTimeoutMS=ms,
            connectTimeoutMS=ms,
            socketTimeoutMS=ms,
            timeoutMS=ms,
        )
        self._classes = self._client.get_default_database(DEFAULT_DB)[COLLECTION]
        self._indexed = False
        self._index_lock = asyncio.Lock()

    def close(self) -> None:
        self._client.close()

    async def _run(self, fn, /, *args, **kwargs):
        # the driver gives up after ~timeout; the pool's budget is a backstop
        try:
            return await self.blocking.run(fn, *args, timeout=2 * self.timeout + 1, **kwargs)
        except DuplicateKeyError:
            raise
        except (ConnectionFailure, ExecutionTimeout, WTimeoutError, CallTimedOut) as e:
            raise self._unavailable(e) from None
        except PyMongoError as e:
            if isinstance(e, OperationFailure) and e.code in REFUSED_CODES:
                raise self._refused(e) from None
            if e.timeout:
                raise self._unavailable(e) from None
            raise

    def _refused(self, e: OperationFailure) -> Unavailable:
        name = (e.details or {}).get("codeName", "")
        self.log.error(
            "MongoDB refused the classes service's user (%s %s): check its user and password "
            "in CLASSHUB_CLASSES_MONGO_URL (`make up` writes them)",
            e.code,
            name,
        )
        return Unavailable(
            "The classes database refused the service's credentials; an administrator must "
            "check its MongoDB settings.",
            f"{e.code} {name}",
        )

    def _unavailable(self, e: Exception) -> StoreUnavailable:
        detail = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
        self.log.warning("MongoDB unavailable: %s", detail)
        return StoreUnavailable(detail)

    async def ensure_ready(self) -> None:
        """Create the indexes (once per process; idempotent in MongoDB)."""
        if self._indexed:
            return
        async with self._index_lock:
            if self._indexed:
                return
            await self._run(
                self._classes.create_index, [("code", ASCENDING)], unique=True, name="code_unique"
            )
            await self._run(self._classes.create_index, [("teachers", ASCENDING)], name="teachers")
            await self._run(self._classes.create_index, [("students", ASCENDING)], name="students")
            self._indexed = True
            self.log.info("MongoDB indexes of %s are in place", COLLECTION)

    async def ping(self) -> None:
        await self._run(self._client.admin.command, "ping")

    # ----- reads

    async def get(self, code: str) -> dict | None:
        await self.ensure_ready()
        return await self._run(self._classes.find_one, {"code": code}, _NO_ID)

    async def require(self, code: str) -> dict:
        record = await self.get(code)
        if record is None:
            raise ClassNotFound(code)
        return record

    async def list_all(self) -> list[dict]:
        await self.ensure_ready()
        return await self._run(lambda: list(self._classes.find({}, _NO_ID).sort("code", 1)))

    async def list_for(self, username: str) -> list[dict]:
        """Classes ``username`` teaches or is enrolled in."""
        await self.ensure_ready()
        query = {"$or": [{"teachers": {"$in": [username]}}, {"students": {"$in": [username]}}]}
        return await self._run(lambda: list(self._classes.find(query, _NO_ID).sort("code", 1)))

    async def environments(self) -> list[dict]:
        """``code``, ``environment`` and ``archived`` of every class (for the culler)."""
        await self.ensure_ready()
        projection = {"_id": False, "code": True, "environment": True, "archived": True}
        return await self._run(lambda: list(self._classes.find({}, projection)))

    # ----- writes (values checked by the caller, see .model)

    async def create(self, record: dict) -> dict:
        await self.ensure_ready()
        try:
            await self._run(self._classes.insert_one, dict(record))
        except DuplicateKeyError:
            raise ClassExists(record["code"]) from None
        self.log.info("class %s created by %s", record["code"], record.get("created_by"))
        return record

    async def _update(self, code: str, update: dict, now: float) -> dict:
        await self.ensure_ready()
        update.setdefault("$set", {})["updated_at"] = timestamp(now)
        record = await self._run(
            self._classes.find_one_and_update,
            {"code": code},
            update,
            projection=_NO_ID,
            return_document=ReturnDocument.AFTER,
        )
        if record is None:
            raise ClassNotFound(code)
        return record

    async def update(self, code: str, changes: dict, *, now: float) -> dict:
        return await self._update(code, {"$set": dict(changes)}, now)

    async def add_students(self, code: str, names: Iterable[str], *, now: float) -> dict:
        """One update adds all ``names`` (already on the roster: left as they are)."""
        return await self._update(code, {"$addToSet": {"students": {"$each": list(names)}}}, now)

    async def remove_students(self, code: str, names: Iterable[str], *, now: float) -> dict:
        return await self._update(code, {"$pull": {"students": {"$in": list(names)}}}, now)
