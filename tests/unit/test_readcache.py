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


async def test_a_stale_answer_is_served_while_one_refresh_runs():
    clock = Clock()
    cache = ReadCache(1.0, stale=4.0, now=clock)
    answers = iter(["a", "b", "c"])
    release = asyncio.Event()
    calls = 0

    async def fetch():
        nonlocal calls
        calls += 1
        value = next(answers)
        if value == "b":
            await release.wait()
        return value

    assert await cache.get("k", fetch, stale_ok=True) == "a"
    clock.t += 2  # expired, within the stale window
    # display reads get the old answer at once, and only one refresh starts
    assert await cache.get("k", fetch, stale_ok=True) == "a"
    assert await cache.get("k", fetch, stale_ok=True) == "a"
    await asyncio.sleep(0)
    assert calls == 2
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert await cache.get("k", fetch, stale_ok=True) == "b"
    # past the stale window everyone waits for a fresh answer
    clock.t += 10
    assert await cache.get("k", fetch, stale_ok=True) == "c"


async def test_deciding_reads_never_take_a_stale_answer():
    clock = Clock()
    cache = ReadCache(1.0, stale=4.0, now=clock)
    answers = iter(["old", "new"])

    async def fetch():
        return next(answers)

    assert await cache.get("k", fetch) == "old"
    clock.t += 2
    assert await cache.get("k", fetch) == "new"


async def test_a_refresh_started_before_a_write_does_not_bring_back_the_old_answer():
    clock = Clock()
    cache = ReadCache(1.0, stale=4.0, now=clock)
    release = asyncio.Event()
    answers = iter(["before", "racing", "after"])

    async def fetch():
        value = next(answers)
        if value == "racing":
            await release.wait()
        return value

    assert await cache.get("k", fetch, stale_ok=True) == "before"
    clock.t += 2
    assert await cache.get("k", fetch, stale_ok=True) == "before"  # refresh in flight
    cache.clear()  # a server started: the refresh's answer may predate it
    release.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert await cache.get("k", fetch, stale_ok=True) == "after"


async def test_a_failed_refresh_keeps_the_old_answer_until_it_is_too_stale():
    clock = Clock()
    cache = ReadCache(1.0, stale=4.0, now=clock)
    outcomes = iter(["ok", RuntimeError("hub down"), RuntimeError("hub down")])

    async def fetch():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert await cache.get("k", fetch, stale_ok=True) == "ok"
    clock.t += 2
    assert await cache.get("k", fetch, stale_ok=True) == "ok"
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    clock.t += 10
    with pytest.raises(RuntimeError):
        await cache.get("k", fetch, stale_ok=True)
