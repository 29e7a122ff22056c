import asyncio

import pytest

from spawner import ClassroomSpawner

pytestmark = pytest.mark.unit


def events_of(spawner):
    return [e["message"] for e in spawner._progress_log.events]


async def test_starts_beyond_the_limit_queue_and_say_so():
    ClassroomSpawner._start_slots.clear()
    a, b, c = (ClassroomSpawner(start_concurrency=1) for _ in range(3))
    slot = a._slot()
    assert slot is b._slot() is c._slot()  # one queue for the whole hub
    await a._acquire_slot(slot)
    waiting_b = asyncio.create_task(b._acquire_slot(slot))
    await asyncio.sleep(0.01)
    waiting_c = asyncio.create_task(c._acquire_slot(slot))
    await asyncio.sleep(0.01)
    assert not waiting_b.done() and not waiting_c.done()
    assert any("0 ahead of you" in m for m in events_of(b))
    assert any("1 ahead of you" in m for m in events_of(c))
    slot.release()
    await asyncio.wait_for(waiting_b, 1)
    assert not waiting_c.done()
    slot.release()
    await asyncio.wait_for(waiting_c, 1)
    slot.release()
    assert ClassroomSpawner._waiting_for_slot == 0


async def test_no_limit():
    s = ClassroomSpawner(start_concurrency=0)
    assert s._slot() is None
    await s._acquire_slot(None)


def test_default_is_cores_plus_one():
    import os

    assert ClassroomSpawner().start_concurrency == (os.cpu_count() or 1) + 1
