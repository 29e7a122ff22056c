import asyncio
import os

import pytest

from spawner import ClassroomSpawner
from spawner.queue import StartQueue

pytestmark = pytest.mark.unit


async def test_starts_beyond_the_width_queue_and_say_so():
    queue = StartQueue(1)
    told = {}
    order = []

    async def start(name, hold):
        async with queue.slot(lambda ahead: told.__setitem__(name, ahead)):
            order.append(name)
            await hold.wait()

    holds = {n: asyncio.Event() for n in "abc"}
    tasks = {}
    for n in "abc":
        tasks[n] = asyncio.create_task(start(n, holds[n]))
        await asyncio.sleep(0.01)
    assert order == ["a"]
    assert told == {"b": 0, "c": 1}  # each queued start learns how many are ahead
    holds["a"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b"]
    holds["b"].set()
    holds["c"].set()
    await asyncio.wait_for(asyncio.gather(*tasks.values()), 1)
    assert order == ["a", "b", "c"] and queue.waiting == 0


async def test_a_failed_start_frees_its_slot():
    queue = StartQueue(1)
    with pytest.raises(RuntimeError):
        async with queue.slot():
            raise RuntimeError("spawn failed")
    async with asyncio.timeout(1):
        async with queue.slot():
            pass


async def test_cancelled_waiter_leaves_the_queue_consistent():
    queue = StartQueue(1)
    hold = asyncio.Event()

    async def holder():
        async with queue.slot():
            await hold.wait()

    h = asyncio.create_task(holder())
    await asyncio.sleep(0.01)

    async def waiter():
        async with queue.slot():
            pass

    w = asyncio.create_task(waiter())
    await asyncio.sleep(0.01)
    assert queue.waiting == 1
    w.cancel()
    await asyncio.sleep(0.01)
    assert queue.waiting == 0
    hold.set()
    await h
    async with asyncio.timeout(1):
        async with queue.slot():
            pass


def test_spawner_queue_is_shared_and_sized_by_cores():
    ClassroomSpawner._start_queues.clear()
    a, b = ClassroomSpawner(), ClassroomSpawner()
    assert a.start_concurrency == (os.cpu_count() or 1) + 1
    assert a.start_queue() is b.start_queue()
    assert ClassroomSpawner(start_concurrency=0).start_queue() is None
    with pytest.raises(ValueError):
        StartQueue(0)
