import asyncio

import pytest

from spawner.progress import ProgressLog

pytestmark = pytest.mark.unit


async def test_stream_sees_past_and_future_events_then_ends():
    log = ProgressLog()
    log.add(5, "one")
    seen = []

    async def read():
        async for event in log.stream(poll=0.05):
            seen.append(event["message"])

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.01)
    log.add(50, "two")
    await asyncio.sleep(0.01)
    log.finish()
    await asyncio.wait_for(reader, 1)
    assert seen == ["one", "two"]
