import asyncio
import logging
import threading

import pytest

from spawner.events import ContainerEvents

pytestmark = pytest.mark.unit


class FakeClient:
    """Stands in for docker.APIClient.events(): yields what the test feeds it."""

    def __init__(self, feed):
        self.feed = feed

    def events(self, decode, filters):
        assert filters == {"type": "container", "label": ["classhub.deployment=t"]}
        while True:
            item = self.feed.get()
            if item is None:
                return
            yield item

    def close(self):
        pass


async def test_wakes_the_waiter_of_that_container():
    import queue

    feed = queue.Queue()
    events = ContainerEvents(
        lambda: FakeClient(feed), "classhub.deployment=t", logging.getLogger("t")
    )
    events.start()
    waiter = asyncio.create_task(events.wait("abc", 0, timeout=5))
    await asyncio.sleep(0.05)
    feed.put({"Action": "exec_start: x", "id": "abc"})  # ignored
    feed.put({"Action": "health_status: healthy", "id": "other"})
    await asyncio.sleep(0.05)
    assert not waiter.done()
    feed.put({"Action": "health_status: healthy", "id": "abc"})
    await asyncio.wait_for(waiter, 2)
    assert events.seen("abc") == 1
    # an event that arrived before the wait began is not missed
    await asyncio.wait_for(events.wait("other", 0, timeout=5), 1)
    # a wait with nothing new times out quietly
    t0 = asyncio.get_running_loop().time()
    await events.wait("abc", 1, timeout=0.1)
    assert asyncio.get_running_loop().time() - t0 >= 0.1
    events._stop.set()
    feed.put(None)
    assert threading.active_count() >= 1
