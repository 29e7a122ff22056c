"""An in-memory class store with the behaviour of :class:`services.classes.store.ClassStore`.

Unit tests of the classes service's handlers use it instead of MongoDB; the contract test
(tests/integration/test_class_store_contract.py) runs the same cases against both, so the
two cannot drift apart. ``down = True`` plays a MongoDB outage.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from common.errors import StoreUnavailable
from services.classes.model import ClassExists, ClassNotFound, CodeRetired, timestamp
from services.classes.store import STORE, UNAVAILABLE


class MemoryClassStore:
    def __init__(self):
        self.records: dict[str, dict] = {}
        self.retired: set[str] = set()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable(UNAVAILABLE, "fake outage", store=STORE)

    def close(self) -> None:
        pass

    async def ping(self) -> None:
        self._check()

    async def get(self, code: str) -> dict | None:
        self._check()
        return copy.deepcopy(self.records.get(code))

    async def require(self, code: str) -> dict:
        record = await self.get(code)
        if record is None:
            raise ClassNotFound(code)
        return record

    async def list_all(self) -> list[dict]:
        self._check()
        return [copy.deepcopy(r) for _, r in sorted(self.records.items())]

    async def list_for(self, username: str) -> list[dict]:
        return [r for r in await self.list_all() if username in r["teachers"] + r["students"]]

    async def environments(self) -> list[dict]:
        return [
            {"code": r["code"], "environment": r["environment"], "archived": r["archived"]}
            for r in await self.list_all()
        ]

    async def create(self, record: dict) -> dict:
        self._check()
        if record["code"] in self.retired:
            raise CodeRetired(record["code"])
        if record["code"] in self.records:
            raise ClassExists(record["code"])
        self.records[record["code"]] = copy.deepcopy(record)
        return record

    def _record(self, code: str) -> dict:
        self._check()
        if code not in self.records:
            raise ClassNotFound(code)
        return self.records[code]

    async def update(self, code: str, changes: dict, *, now: float) -> dict:
        record = self._record(code)
        record.update(copy.deepcopy(changes))
        record["updated_at"] = timestamp(now)
        return copy.deepcopy(record)

    async def add_students(self, code: str, names: Iterable[str], *, now: float) -> dict:
        record = self._record(code)
        for name in names:
            if name not in record["students"]:
                record["students"].append(name)
        record["updated_at"] = timestamp(now)
        return copy.deepcopy(record)

    async def remove_students(self, code: str, names: Iterable[str], *, now: float) -> dict:
        record = self._record(code)
        gone = set(names)
        record["students"] = [s for s in record["students"] if s not in gone]
        record["updated_at"] = timestamp(now)
        return copy.deepcopy(record)

    async def delete(self, code: str, *, actor: str, now: float) -> None:
        self._record(code)
        self.retired.add(code)
        del self.records[code]
