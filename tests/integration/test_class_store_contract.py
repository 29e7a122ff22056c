"""One contract, two class stores: the in-memory one the unit tests use
(harness/memstore.py) and the real one on MongoDB (services/classes/store.py, against a
throwaway ``classhub-mongo``). Every case runs against both, so a unit test that passes on
the fake says something about the real store.
"""

from __future__ import annotations

import shutil

import pytest

from common.blocking import BlockingCalls
from common.errors import StoreUnavailable
from harness.memstore import MemoryClassStore
from harness.stack import start_mongo
from services.classes.model import ClassExists, ClassNotFound, CodeRetired, timestamp
from services.classes.store import STORE, ClassStore

pytestmark = pytest.mark.integration

T0 = 1_800_000_000.0


@pytest.fixture(scope="module")
def mongo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("class-store-mongo")
    proc, port = start_mongo(workdir, auth=False)
    yield port
    proc.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(params=["memory", "mongodb"])
async def store(request, mongo):
    if request.param == "memory":
        yield MemoryClassStore()
        return
    blocking = BlockingCalls(threads=4, timeout=10, name="contract")
    # a database of its own per test: the cases start from nothing
    db = f"contract{request.node.nodeid.__hash__() & 0xFFFFFF:x}"
    real = ClassStore(f"mongodb://127.0.0.1:{mongo}/{db}", blocking=blocking, timeout=5)
    yield real
    real.close()
    blocking.close()


def record(code: str, *, teachers=("tina",), students=(), now: float = T0) -> dict:
    return {
        "code": code,
        "name": f"Class {code}",
        "term": "2026",
        "teachers": list(teachers),
        "students": list(students),
        "environment": {"image": "classhub/singleuser:latest", "cpu_limit": 1.0},
        "archived": False,
        "created_at": timestamp(now),
        "updated_at": timestamp(now),
        "created_by": "root",
    }


def same_time(a, b) -> bool:
    """MongoDB keeps milliseconds and gives naive UTC datetimes back; compare at that."""
    return abs(a.replace(tzinfo=None) - b.replace(tzinfo=None)).total_seconds() < 0.001


async def test_create_get_and_a_duplicate_code(store):
    await store.create(record("bio"))
    got = await store.get("bio")
    assert got["code"] == "bio" and got["teachers"] == ["tina"] and got["students"] == []
    assert "_id" not in got
    assert same_time(got["created_at"], timestamp(T0))
    with pytest.raises(ClassExists):
        await store.create(record("bio", teachers=("tom",)))
    assert (await store.get("bio"))["teachers"] == ["tina"]  # the first one is kept


async def test_a_missing_class(store):
    assert await store.get("nope") is None
    with pytest.raises(ClassNotFound):
        await store.require("nope")
    for change in (
        store.update("nope", {"name": "x"}, now=T0),
        store.add_students("nope", ["sam"], now=T0),
        store.remove_students("nope", ["sam"], now=T0),
    ):
        with pytest.raises(ClassNotFound):
            await change


async def test_a_deleted_class_retires_its_code(store):
    await store.create(record("bio"))
    await store.delete("bio", actor="root", now=T0)
    assert await store.get("bio") is None
    with pytest.raises(CodeRetired, match="belonged to a class that was deleted"):
        await store.create(record("bio"))
    with pytest.raises(ClassNotFound):
        await store.delete("bio", actor="root", now=T0)
    await store.create(record("bio2"))  # other codes are free


async def test_lists_are_sorted_by_code_and_list_for_covers_teachers_and_students(store):
    await store.create(record("geo", teachers=("tom",), students=("sam",)))
    await store.create(record("art", teachers=("tina",)))
    await store.create(record("bio", teachers=("tina",), students=("sue",)))
    assert [r["code"] for r in await store.list_all()] == ["art", "bio", "geo"]
    assert [r["code"] for r in await store.list_for("tina")] == ["art", "bio"]
    assert [r["code"] for r in await store.list_for("sam")] == ["geo"]
    assert [r["code"] for r in await store.list_for("sue")] == ["bio"]
    assert await store.list_for("nobody") == []
    envs = await store.environments()
    assert [sorted(e) for e in envs] == [["archived", "code", "environment"]] * 3
    assert envs[0]["environment"]["image"] == "classhub/singleuser:latest"


async def test_roster_changes_are_idempotent_and_keep_order(store):
    await store.create(record("bio", students=("sue",)))
    after = await store.add_students("bio", ["sam", "sue", "sid"], now=T0 + 60)
    assert after["students"] == ["sue", "sam", "sid"]
    assert same_time(after["updated_at"], timestamp(T0 + 60))
    again = await store.add_students("bio", ["sam"], now=T0 + 61)
    assert again["students"] == ["sue", "sam", "sid"]
    removed = await store.remove_students("bio", ["sam", "ghost"], now=T0 + 62)
    assert removed["students"] == ["sue", "sid"]
    assert (await store.get("bio"))["students"] == ["sue", "sid"]
    assert [r["code"] for r in await store.list_for("sam")] == []


async def test_update_sets_fields_and_the_time_and_returns_the_record(store):
    await store.create(record("bio"))
    after = await store.update("bio", {"name": "Biology", "archived": True}, now=T0 + 5)
    assert after["name"] == "Biology" and after["archived"] is True
    assert after["teachers"] == ["tina"]  # untouched fields stay
    assert same_time(after["updated_at"], timestamp(T0 + 5))
    assert same_time(after["created_at"], timestamp(T0))
    assert (await store.get("bio"))["name"] == "Biology"


async def test_what_is_returned_is_a_copy(store):
    await store.create(record("bio", students=("sue",)))
    got = await store.get("bio")
    got["students"].append("intruder")
    assert (await store.get("bio"))["students"] == ["sue"]


async def test_an_outage_is_store_unavailable_for_the_classes_store(store, mongo, tmp_path):
    if isinstance(store, MemoryClassStore):
        store.down = True
    else:  # a store whose server does not answer
        blocking = BlockingCalls(threads=2, timeout=5, name="contract-down")
        from harness.stack import free_port

        store = ClassStore(f"mongodb://127.0.0.1:{free_port()}/x", blocking=blocking, timeout=0.5)
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await store.get("bio")
        assert caught.value.store == STORE
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        if not isinstance(store, MemoryClassStore):
            store.close()
