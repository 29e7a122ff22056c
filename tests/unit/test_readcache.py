"""The hub read cache: answers reused for a while, identical reads shared, failures not kept."""

import asyncio

import pytest

from services.base.readcache import ReadCache

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


async def test_reuses_answers_until_the_ttl_passes():
    clock, calls = Clock(), []

    async def fetch():
        calls.append(1)
        return len(calls)

    cache = ReadCache(1.0, now=clock)
    assert await cache.get("k", fetch) == 1
    clock.t += 0.5
    assert await cache.get("k", fetch) == 1
    clock.t += 0.6
    assert await cache.get("k", fetch) == 2
    cache.clear()
    assert await cache.get("k", fetch) == 3


async def test_identical_reads_in_flight_share_one_call():
    calls, gate = [], asyncio.Event()

    async def fetch():
        calls.append(1)
        await gate.wait()
        return "answer"

    cache = ReadCache(1.0, now=Clock())
    waiting = [asyncio.create_task(cache.get("k", fetch)) for _ in range(20)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == ["answer"] * 20
    assert len(calls) == 1


async def test_failures_are_not_cached_and_zero_ttl_is_off():
    calls = []

    async def boom():
        calls.append(1)
        raise RuntimeError("hub down")

    cache = ReadCache(5.0, now=Clock())
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await cache.get("k", boom)
    assert len(calls) == 2

    async def value():
        calls.append(1)
        return 1

    off = ReadCache(0, now=Clock())
    await off.get("k", value)
    await off.get("k", value)
    assert len(calls) == 4
