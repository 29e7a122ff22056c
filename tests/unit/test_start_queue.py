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


async def _line_up(queue, names, background=()):
    """Start ``names`` in order, each holding its slot until its event is set; what each
    was told, in order, and the order they got a slot."""
    told = {n: [] for n in names}
    order = []
    holds = {n: asyncio.Event() for n in names}

    async def start(name):
        async with queue.slot(told[name].append, background=name in background):
            order.append(name)
            await holds[name].wait()

    tasks = {}
    for n in names:
        tasks[n] = asyncio.create_task(start(n))
        await asyncio.sleep(0.01)
    return told, order, holds, tasks


async def test_each_waiting_start_learns_its_place_as_the_line_moves():
    queue = StartQueue(1)
    told, order, holds, tasks = await _line_up(queue, ["a", "b", "c", "d"])
    assert told == {"a": [], "b": [0], "c": [1], "d": [2]}
    holds["a"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b"] and told["c"] == [1, 0] and told["d"] == [2, 1]
    for n in "bcd":
        holds[n].set()
    await asyncio.wait_for(asyncio.gather(*tasks.values()), 1)
    assert order == ["a", "b", "c", "d"] and told["d"] == [2, 1, 0]
    assert queue.waiting == 0 and queue.running == 0


async def test_students_own_starts_go_before_background_starts():
    queue = StartQueue(1)
    # a warm-up queued w1, w2, w3 behind a running start; then a student arrives
    told, order, holds, tasks = await _line_up(
        queue, ["run", "w1", "w2", "w3", "sam"], background={"w1", "w2", "w3"}
    )
    assert told["sam"] == [0]  # straight to the front of the line
    assert told["w1"] == [0, 1] and told["w3"] == [2, 3]  # told they moved back
    holds["run"].set()
    await asyncio.sleep(0.01)
    assert order == ["run", "sam"]
    for n in ("sam", "w1", "w2", "w3"):
        holds[n].set()
    await asyncio.wait_for(asyncio.gather(*tasks.values()), 1)
    assert order == ["run", "sam", "w1", "w2", "w3"]


async def test_first_come_first_served_among_students_with_a_wider_queue():
    queue = StartQueue(2)
    told, order, holds, tasks = await _line_up(queue, ["a", "b", "c", "d", "e"])
    assert order == ["a", "b"] and told["c"] == [0] and told["e"] == [2]
    holds["b"].set()
    await asyncio.sleep(0.01)
    assert order == ["a", "b", "c"] and told["e"] == [2, 1]
    for n in "acde":
        holds[n].set()
    await asyncio.wait_for(asyncio.gather(*tasks.values()), 1)
    assert order == ["a", "b", "c", "d", "e"] and queue.running == 0


async def test_a_cancelled_waiter_moves_the_ones_behind_it_up():
    queue = StartQueue(1)
    told, order, holds, tasks = await _line_up(queue, ["a", "b", "c"])
    tasks["b"].cancel()
    await asyncio.sleep(0.01)
    assert told["c"] == [1, 0] and queue.waiting == 1
    holds["a"].set()
    holds["c"].set()
    await asyncio.wait_for(asyncio.gather(tasks["a"], tasks["c"]), 1)
    assert order == ["a", "c"] and queue.running == 0


def test_a_background_start_is_marked_by_its_hub_api_request():
    from types import SimpleNamespace

    from common import startpriority

    spawner = ClassroomSpawner()
    assert spawner._background_start() is False  # no request: a student's own
    spawner.handler = SimpleNamespace(request=SimpleNamespace(headers={}))
    assert spawner._background_start() is False
    spawner.handler.request.headers[startpriority.HEADER] = "urgent"
    assert spawner._background_start() is False
    spawner.handler.request.headers[startpriority.HEADER] = startpriority.BACKGROUND
    assert spawner._background_start() is True
