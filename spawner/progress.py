"""Spawn progress events, produced by ``start()`` and streamed by ``progress()``."""

from __future__ import annotations

import asyncio


class ProgressLog:
    """An append-only list of ``{"progress", "message"}`` events with a live stream.

    ``start()`` adds events as it goes; JupyterHub's spawn page reads them through
    ``Spawner.progress()``, which may begin before or after any event was added.
    """

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.finished = False
        self._changed = asyncio.Event()

    def add(self, percent: int, message: str) -> None:
        self.events.append({"progress": percent, "message": message})
        self._changed.set()

    def finish(self) -> None:
        self.finished = True
        self._changed.set()

    async def stream(self, poll: float = 1.0):
        """Yield every event, past and future, until :meth:`finish` is called."""
        sent = 0
        while True:
            while sent < len(self.events):
                yield self.events[sent]
                sent += 1
            if self.finished:
                return
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=poll)
            except TimeoutError:
                pass
