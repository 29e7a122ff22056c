"""A short-lived cache for hub reads, with concurrent identical reads sharing one call.

Pages poll every few seconds and a class's server view lists every active server: at a
hundred requests a second the same few hub reads would be made over and over, and the
hub's single process is the bottleneck. Answers are kept for ``ttl`` seconds (about one,
shorter than any page's poll), identical reads in flight share one call, and starting or
stopping a server through the same client empties the cache, so a teacher sees their own
change at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from hub import clock


class ReadCache:
    def __init__(self, ttl: float, now: Callable[[], float] = lambda: clock.now()):
        self.ttl = ttl
        self._now = now
        self._entries: dict[Hashable, tuple[float, asyncio.Future]] = {}

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> Any:
        if self.ttl <= 0:
            return await fetch()
        now = self._now()
        entry = self._entries.get(key)
        if entry is not None and (not entry[1].done() or entry[0] > now):
            return await asyncio.shield(entry[1])
        future = asyncio.ensure_future(fetch())
        self._entries[key] = (now + self.ttl, future)
        try:
            return await asyncio.shield(future)
        except BaseException:
            # failures are never cached: the next read asks again
            if self._entries.get(key, (0, None))[1] is future:
                del self._entries[key]
            raise

    def clear(self) -> None:
        self._entries.clear()
