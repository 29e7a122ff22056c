"""A short-lived cache for hub reads, with concurrent identical reads sharing one call.

Pages poll every few seconds and a class's server view lists every active server: at a
hundred requests a second the same few hub reads would be made over and over, and the
hub's single process is the bottleneck. Answers are kept for ``ttl`` seconds (about one,
shorter than any page's poll), identical reads in flight share one call, and starting or
stopping a server through the same client empties the cache, so a teacher sees their own
change at once.

Reads that only feed a display may also accept a *stale* answer (``stale_ok``): for
``stale`` seconds after it expires, the old answer is returned at once while one refresh
runs in the background, so a page's request never waits for the hub while the cache is
warm. Reads that decide something (does this user exist, which servers must stop) never
take a stale answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

from common import clock


@dataclass
class _Entry:
    future: asyncio.Future
    fresh_until: float
    stale_until: float


class ReadCache:
    def __init__(
        self, ttl: float, stale: float = 0.0, now: Callable[[], float] = lambda: clock.now()
    ):
        self.ttl = ttl
        self.stale = stale
        self._now = now
        self._entries: dict[Hashable, _Entry] = {}
        self._refreshing: dict[Hashable, asyncio.Future] = {}
        # bumped by clear(): a refresh that started before a write must not bring back
        # an answer from before it
        self._generation = 0

    async def get(
        self, key: Hashable, fetch: Callable[[], Awaitable[Any]], *, stale_ok: bool = False
    ) -> Any:
        if self.ttl <= 0:
            return await fetch()
        now = self._now()
        entry = self._entries.get(key)
        if entry is not None:
            if not entry.future.done() or now < entry.fresh_until:
                return await asyncio.shield(entry.future)
            if stale_ok and now < entry.stale_until:
                self._refresh(key, fetch)
                return entry.future.result()
        return await self._load(key, fetch, now)

    async def _load(self, key: Hashable, fetch: Callable[[], Awaitable[Any]], now: float) -> Any:
        future = asyncio.ensure_future(fetch())
        self._entries[key] = self._entry(future, now)
        try:
            return await asyncio.shield(future)
        except BaseException:
            # failures are never cached: the next read asks again
            entry = self._entries.get(key)
            if entry is not None and entry.future is future:
                del self._entries[key]
            raise

    def _refresh(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> None:
        """Start one background refresh of ``key`` (none if one is running)."""
        if key in self._refreshing:
            return
        generation, started = self._generation, self._now()
        task = asyncio.ensure_future(fetch())
        self._refreshing[key] = task

        def done(t: asyncio.Future) -> None:
            if self._refreshing.get(key) is t:
                del self._refreshing[key]
            # a failed refresh keeps the old answer until it is too stale to serve
            if t.cancelled() or t.exception() is not None or generation != self._generation:
                return
            self._entries[key] = self._entry(t, started)

        task.add_done_callback(done)

    def _entry(self, future: asyncio.Future, now: float) -> _Entry:
        return _Entry(future, now + self.ttl, now + self.ttl + self.stale)

    def clear(self) -> None:
        self._entries.clear()
        self._refreshing.clear()
        self._generation += 1
