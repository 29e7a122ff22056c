"""Class records in MongoDB (collection ``classes``), through pymongo in a thread pool.

Every call goes through :class:`common.mongo.MongoStore`: bounded in time twice, and a
:class:`~common.errors.StoreUnavailable` (a 503 for the caller, ``store == "classes"``)
when MongoDB is down or too slow; pymongo reconnects by itself once the server is back,
so the service recovers without a restart.

Only standard MongoDB features are used (a unique index, ``$set``, ``$addToSet``,
``$pull``, ``find_one_and_update``), so the code runs against the official ``mongo``
image and the offline stand-in (``classhub-mongo``, on nx-27017). Array membership is
always queried with ``$in``. The service signs in as its own user, with ``readWrite`` on
its database only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from common.blocking import BlockingCalls
from common.mongo import MongoStore

from .model import ClassExists, ClassNotFound, CodeRetired, timestamp

COLLECTION = "classes"
#: servers the warm-up started: ``{"code", "username", "meeting", "warmed_at", "state",
#: "started", "ready_at"}`` (``services/classes/warmup.py``)
WARM_COLLECTION = "warm_servers"
#: the codes of deleted classes: ``{"code", "deleted_at", "deleted_by"}``. A code is never
#: given to a new class again: the grades and files services keep a deleted class's
#: assignments, submissions and material under its code, and a new class with that code
#: would show them to its teachers
RETIRED_COLLECTION = "retired_codes"
_NO_ID = {"_id": False}


def normal(record: dict | None) -> dict | None:
    """A record as the service expects it, whatever the server gave back: ``archived`` a
    bool, times aware UTC datetimes. MongoDB gives naive UTC datetimes; the offline
    stand-in (nx-27017) keeps a value written by ``$set`` as 1 for true and as text for a
    datetime (tests/integration/test_class_store_contract.py runs both)."""
    if record is None:
        return None
    if "archived" in record:
        record["archived"] = bool(record["archived"])
    for field in ("created_at", "updated_at"):
        value = record.get(field)
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            record[field] = value.astimezone(UTC)
    return record


#: names the store in :class:`~common.errors.StoreUnavailable` (``.store``)
STORE = "classes"
UNAVAILABLE = "the classes database is unreachable; try again shortly"


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
        self.log = log or logging.getLogger(__name__)
        self.db = MongoStore(
            url,
            blocking=blocking,
            timeout=timeout,
            appname="classhub-classes",
            store=STORE,
            message=UNAVAILABLE,
            database="classes database",
            url_setting="CLASSHUB_CLASSES_MONGO_URL",
            log=self.log,
        )
        self._classes = self.db.collection(COLLECTION)
        self._warm = self.db.collection(WARM_COLLECTION)
        self._retired = self.db.collection(RETIRED_COLLECTION)

    def close(self) -> None:
        self.db.close()

    async def ensure_ready(self) -> None:
        """Create the indexes (once per process; idempotent in MongoDB)."""

        def create():
            self._classes.create_index([("code", ASCENDING)], unique=True, name="code_unique")
            self._classes.create_index([("teachers", ASCENDING)], name="teachers")
            self._classes.create_index([("students", ASCENDING)], name="students")
            self._warm.create_index(
                [("code", ASCENDING), ("username", ASCENDING), ("meeting", ASCENDING)],
                unique=True,
                name="warm_unique",
            )
            self._retired.create_index([("code", ASCENDING)], unique=True, name="code_unique")

        await self.db.ensure_indexes(create)

    async def ping(self) -> None:
        await self.db.ping()

    # ----- reads

    async def get(self, code: str) -> dict | None:
        await self.ensure_ready()
        return normal(await self.db.run(self._classes.find_one, {"code": code}, _NO_ID))

    async def require(self, code: str) -> dict:
        record = await self.get(code)
        if record is None:
            raise ClassNotFound(code)
        return record

    async def find_by_join_code(self, join_code: str) -> dict | None:
        """The class whose join code is ``join_code`` (normalised by the caller)."""
        await self.ensure_ready()
        return normal(await self.db.run(self._classes.find_one, {"join_code": join_code}, _NO_ID))

    async def set_join_code(self, code: str, join_code: str, *, now: float) -> dict:
        return await self._update(code, {"$set": {"join_code": join_code}}, now)

    async def list_all(self) -> list[dict]:
        await self.ensure_ready()
        found = await self.db.run(lambda: list(self._classes.find({}, _NO_ID).sort("code", 1)))
        return [normal(r) for r in found]

    async def list_for(self, username: str) -> list[dict]:
        """Classes ``username`` teaches or is enrolled in."""
        await self.ensure_ready()
        query = {"$or": [{"teachers": {"$in": [username]}}, {"students": {"$in": [username]}}]}
        found = await self.db.run(lambda: list(self._classes.find(query, _NO_ID).sort("code", 1)))
        return [normal(r) for r in found]

    async def environments(self) -> list[dict]:
        """``code``, ``environment`` and ``archived`` of every class (for the culler)."""
        await self.ensure_ready()
        projection = {"_id": False, "code": True, "environment": True, "archived": True}
        return [
            normal(r) for r in await self.db.run(lambda: list(self._classes.find({}, projection)))
        ]

    async def scheduled(self) -> list[dict]:
        """``code``, ``students`` and ``schedule`` of every class that has a schedule and
        is not archived (for the warm-up)."""
        await self.ensure_ready()
        projection = {
            "_id": False,
            "code": True,
            "students": True,
            "schedule": True,
            "archived": True,
        }
        found = await self.db.run(lambda: list(self._classes.find({}, projection)))
        return [normal(r) for r in found if r.get("schedule") and not bool(r.get("archived"))]

    # ----- warm servers (services/classes/warmup.py)

    async def warm_records(self) -> list[dict]:
        await self.ensure_ready()
        return await self.db.run(lambda: list(self._warm.find({}, _NO_ID)))

    async def add_warm(self, code: str, username: str, meeting: float, *, now: float) -> bool:
        """Record that the warm-up starts ``username``'s server of ``code`` for the
        meeting at ``meeting``; False if it was already warmed for that meeting."""
        await self.ensure_ready()
        record = {
            "code": code,
            "username": username,
            "meeting": meeting,
            "warmed_at": now,
            "state": "warm",
            "started": None,
            "ready_at": None,
        }
        try:
            await self.db.run(self._warm.insert_one, record)
        except DuplicateKeyError:
            return False
        return True

    async def set_warm(self, code: str, username: str, meeting: float, **fields) -> None:
        await self.ensure_ready()
        await self.db.run(
            self._warm.update_one,
            {"code": code, "username": username, "meeting": meeting},
            {"$set": fields},
        )

    async def forget_warm(self, before: float) -> int:
        """Remove the records of meetings that started before ``before``."""
        await self.ensure_ready()
        result = await self.db.run(self._warm.delete_many, {"meeting": {"$lt": before}})
        return result.deleted_count

    # ----- writes (values checked by the caller, see .model)

    async def create(self, record: dict) -> dict:
        await self.ensure_ready()
        if await self.db.run(self._retired.find_one, {"code": record["code"]}, _NO_ID):
            raise CodeRetired(record["code"])
        try:
            await self.db.run(self._classes.insert_one, dict(record))
        except DuplicateKeyError:
            raise ClassExists(record["code"]) from None
        self.log.info("class %s created by %s", record["code"], record.get("created_by"))
        return record

    async def _update(self, code: str, update: dict, now: float) -> dict:
        await self.ensure_ready()
        update.setdefault("$set", {})["updated_at"] = timestamp(now)
        record = await self.db.run(
            self._classes.find_one_and_update,
            {"code": code},
            update,
            projection=_NO_ID,
            return_document=ReturnDocument.AFTER,
        )
        if record is None:
            raise ClassNotFound(code)
        return normal(record)

    async def update(self, code: str, changes: dict, *, now: float) -> dict:
        return await self._update(code, {"$set": dict(changes)}, now)

    async def add_students(self, code: str, names: Iterable[str], *, now: float) -> dict:
        """One update adds all ``names`` (already on the roster: left as they are)."""
        return await self._update(code, {"$addToSet": {"students": {"$each": list(names)}}}, now)

    async def remove_students(self, code: str, names: Iterable[str], *, now: float) -> dict:
        return await self._update(code, {"$pull": {"students": {"$in": list(names)}}}, now)

    async def delete(self, code: str, *, actor: str, now: float) -> None:
        """Remove the class's record (its students' files stay in their home volumes) and
        retire its code (:data:`RETIRED_COLLECTION`: retired first, so there is no moment
        when the code is free)."""
        await self.ensure_ready()
        if not await self.db.run(self._classes.find_one, {"code": code}, _NO_ID):
            raise ClassNotFound(code)
        retired = {"code": code, "deleted_at": timestamp(now), "deleted_by": actor}
        try:
            await self.db.run(self._retired.insert_one, retired)
        except DuplicateKeyError:
            pass  # a delete that failed after this step, tried again
        result = await self.db.run(self._classes.delete_one, {"code": code})
        if not result.deleted_count:
            raise ClassNotFound(code)
        self.log.info("class %s deleted", code)
