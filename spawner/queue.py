"""A start queue: at most ``width`` containers start at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import asynccontextmanager


class StartQueue:
    """Admits at most ``width`` starts at once, first come first served.

    Starting JupyterLab is CPU-bound; when a whole class starts at once, a short queue
    gets everybody running sooner than starting all containers in parallel.
    """

    def __init__(self, width: int):
        if width < 1:
            raise ValueError("a start queue needs a width of at least 1")
        self.width = width
        self._slots = asyncio.Semaphore(width)
        self.waiting = 0

    @asynccontextmanager
    async def slot(self, on_wait: Callable[[int], None] | None = None):
        """Hold a start slot; ``on_wait(ahead)`` is called if the caller must queue."""
        if self._slots.locked():
            ahead = self.waiting
            self.waiting += 1
            if on_wait is not None:
                on_wait(ahead)
            try:
                await self._slots.acquire()
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()
