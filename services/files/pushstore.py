"""Material pushes and their deliveries in MongoDB (pymongo in the thread pool).

Collection ``material_pushes``: one document per push::

    {_id, code, created_by, created, at, status, label, zip_key, files, bytes, error}

``status`` goes scheduled -> running -> done (or cancelled before it runs, or failed when
the material could not be packed). Collection ``material_deliveries``: one document per
push and student, ``_id`` = ``<push id>/<user>`` (user names may hold dots, so they are
never field names)::

    {_id, push, code, user, status, report, message, attempts, updated}

Collection ``material_delivered``: what was last delivered to each student, per class and
destination folder (the authoritative record the delivery decides by: a file whose
teacher-side content is what was last delivered is not delivered again), ``_id`` =
``<code>/<user>/<dest>``::

    {_id, code, user, dest, files: [{path, sha256}], updated}

It lives here, outside the student's container: the record homectl also keeps in the
home (``~/.classhub/material``) can be edited or deleted by the student.

``status`` is delivered, waiting (the student has no home yet: it gets the push when the
home first appears; or the helper container could not run: retried by itself) or failed
(the delivery was refused; retried by running the push again). A delivery is written once
per outcome, so re-running a push only visits students whose delivery is not "delivered".
"""

from __future__ import annotations

import logging

from pymongo import ASCENDING, ReturnDocument

from common.blocking import BlockingCalls
from common.mongo import MongoStore

SCHEDULED, RUNNING, DONE, FAILED, CANCELLED = "scheduled", "running", "done", "failed", "cancelled"
DELIVERED, WAITING = "delivered", "waiting"
#: names the store in :class:`~common.errors.StoreUnavailable` (``.store``)
STORE = "material"
UNAVAILABLE = "The material database is unreachable right now; try again in a minute."


class PushStore:
    def __init__(self, url: str, *, blocking: BlockingCalls, timeout: float = 3.0, log=None):
        self.log = log or logging.getLogger(__name__)
        self.db = MongoStore(
            url,
            blocking=blocking,
            timeout=timeout,
            appname="classhub-files",
            store=STORE,
            message=UNAVAILABLE,
            database="material database",
            url_setting="CLASSHUB_FILES_MONGO_URL",
            log=self.log,
        )
        self._pushes = self.db.collection("material_pushes")
        self._deliveries = self.db.collection("material_deliveries")
        self._delivered = self.db.collection("material_delivered")

    def close(self) -> None:
        self.db.close()

    async def _ensure_indexes(self) -> None:
        def create():
            self._pushes.create_index([("code", ASCENDING), ("created", ASCENDING)])
            self._pushes.create_index([("status", ASCENDING)])
            self._deliveries.create_index([("code", ASCENDING), ("user", ASCENDING)])
            self._deliveries.create_index([("push", ASCENDING)])

        await self.db.ensure_indexes(create)

    async def ping(self) -> None:
        await self.db.ping()

    # ----- pushes

    async def add(self, push: dict) -> None:
        await self._ensure_indexes()
        await self.db.run(self._pushes.insert_one, dict(push))

    async def get(self, push_id: str) -> dict | None:
        await self._ensure_indexes()
        return await self.db.run(self._pushes.find_one, {"_id": push_id})

    async def for_class(self, code: str, limit: int = 50, *, releases: bool = False) -> list[dict]:
        """The class's material pushes, newest first (``releases``: its assignments'
        release pushes instead)."""
        await self._ensure_indexes()
        kind = {"$type": "string"} if releases else {"$in": [None]}

        def find():
            query = {"code": code, "assignment": kind}
            cursor = self._pushes.find(query).sort("created", -1).limit(limit)
            return list(cursor)

        return await self.db.run(find)

    async def with_status(self, status: str) -> list[dict]:
        await self._ensure_indexes()
        return await self.db.run(lambda: list(self._pushes.find({"status": status})))

    async def delivered_pushes_of(self, code: str) -> list[dict]:
        """The class's pushes that have run (oldest first): what a student starting their
        server may still be missing."""
        await self._ensure_indexes()

        def find():
            query = {"code": code, "status": {"$in": [DONE, RUNNING]}}
            return list(self._pushes.find(query).sort("created", 1))

        return await self.db.run(find)

    async def codes_with_pushes(self) -> list[str]:
        """The classes that have a push that has run (what a new home may be missing)."""
        await self._ensure_indexes()

        def find():
            return sorted(self._pushes.distinct("code", {"status": {"$in": [DONE, RUNNING]}}))

        return await self.db.run(find)

    async def claim(self, push_id: str, from_status: list[str]) -> dict | None:
        """Move a push to running if it is in one of ``from_status`` (one winner)."""
        return await self.db.run(
            self._pushes.find_one_and_update,
            {"_id": push_id, "status": {"$in": from_status}},
            {"$set": {"status": RUNNING}},
            return_document=ReturnDocument.AFTER,
        )

    async def update(self, push_id: str, fields: dict) -> None:
        await self.db.run(self._pushes.update_one, {"_id": push_id}, {"$set": fields})

    async def cancel(self, push_id: str) -> bool:
        result = await self.db.run(
            self._pushes.update_one,
            {"_id": push_id, "status": SCHEDULED},
            {"$set": {"status": CANCELLED}},
        )
        return result.modified_count == 1

    # ----- deliveries

    async def deliveries(self, push_id: str) -> list[dict]:
        await self._ensure_indexes()

        def find():
            return list(self._deliveries.find({"push": push_id}).sort("user", 1))

        return await self.db.run(find)

    async def statuses(self, push_ids: list[str]) -> dict[str, dict[str, int]]:
        """For each push, how many deliveries have each status (one query)."""
        await self._ensure_indexes()

        def count():
            found: dict[str, dict[str, int]] = {i: {} for i in push_ids}
            query = {"push": {"$in": list(push_ids)}}
            for d in self._deliveries.find(query, {"push": True, "status": True}):
                counts = found.setdefault(d["push"], {})
                counts[d.get("status", "?")] = counts.get(d.get("status", "?"), 0) + 1
            return found

        return await self.db.run(count)

    async def waiting(self) -> list[tuple[str, str]]:
        """``(code, user)`` of every delivery that is waiting, once each."""
        await self._ensure_indexes()

        def find():
            found = self._deliveries.find({"status": WAITING}, {"code": True, "user": True})
            return sorted({(d["code"], d["user"]) for d in found if "code" in d and "user" in d})

        return await self.db.run(find)

    async def deliveries_of(self, code: str, user: str) -> dict[str, dict]:
        """The user's deliveries in class ``code``, by push id."""
        await self._ensure_indexes()

        def find():
            return {d["push"]: d for d in self._deliveries.find({"code": code, "user": user})}

        return await self.db.run(find)

    async def record(self, push: dict, user: str, fields: dict) -> None:
        doc_id = f"{push['_id']}/{user}"
        await self.db.run(
            self._deliveries.update_one,
            {"_id": doc_id},
            {
                "$set": {"push": push["_id"], "code": push["code"], "user": user, **fields},
                "$inc": {"attempts": 1},
            },
            upsert=True,
        )

    # ----- what was last delivered to each student

    async def delivered_files(self, code: str, user: str, dest: str) -> dict[str, str] | None:
        """``{path: sha256}`` last delivered to ``user`` in ``~/<dest>``; None if nothing
        was ever recorded."""
        await self._ensure_indexes()
        doc = await self.db.run(self._delivered.find_one, {"_id": f"{code}/{user}/{dest}"})
        if doc is None:
            return None
        return {
            f["path"]: f["sha256"]
            for f in doc.get("files") or []
            if isinstance(f, dict) and isinstance(f.get("path"), str) and f.get("sha256")
        }

    async def save_delivered(
        self, code: str, user: str, dest: str, files: dict[str, str], now: float
    ) -> None:
        await self.db.run(
            self._delivered.update_one,
            {"_id": f"{code}/{user}/{dest}"},
            {
                "$set": {
                    "code": code,
                    "user": user,
                    "dest": dest,
                    "files": [{"path": p, "sha256": h} for p, h in sorted(files.items())],
                    "updated": now,
                }
            },
            upsert=True,
        )
