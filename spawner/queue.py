"""A start queue: at most ``width`` containers start at the same moment; the others wait
their turn in line, first come first served, and learn their place as it changes."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future
    on_wait: Callable[[int], None] | None
    told: int = -1


class StartQueue:
    """Admits at most ``width`` starts at once; the others wait in line.

    Starting JupyterLab is CPU-bound; when a whole class starts at once, a short queue
    gets everybody running sooner than starting all containers in parallel. A rush never
    gets a refusal (JupyterHub's own ``concurrent_spawn_limit`` answers 429, which
    classhub switches off): every start waits its turn, and each waiting start is told
    how many are ahead of it, again whenever that changes, through ``on_wait(ahead)``
    (the spawner turns it into a progress event of the spawn page).

    Fair: first come first served within each of two lines, and the line of students'
    own starts goes before the line of background starts (the warm-up before a class, a
    teacher's "start all"), which nobody waits for yet: a student who opens their
    server during a warm-up of 200 servers waits for the starts already running, never
    for the 200.
    """

    def __init__(self, width: int):
        if width < 1:
            raise ValueError("a start queue needs a width of at least 1")
        self.width = width
        self.running = 0
        self._students: deque[_Waiter] = deque()
        self._background: deque[_Waiter] = deque()

    @property
    def waiting(self) -> int:
        return len(self._students) + len(self._background)

    def _line(self) -> list[_Waiter]:
        return [*self._students, *self._background]

    def _tell(self) -> None:
        """Tell every waiter whose place changed how many are ahead of it now."""
        for ahead, waiter in enumerate(self._line()):
            if waiter.told != ahead:
                waiter.told = ahead
                if waiter.on_wait is not None:
                    waiter.on_wait(ahead)

    def _release(self) -> None:
        """Hand the slot to the next in line, or free it."""
        for line in (self._students, self._background):
            while line:
                waiter = line.popleft()
                if not waiter.future.done():
                    waiter.future.set_result(None)
                    self._tell()
                    return
        self.running -= 1

    @asynccontextmanager
    async def slot(self, on_wait: Callable[[int], None] | None = None, *, background=False):
        """Hold a start slot; ``on_wait(ahead)`` is called while the caller waits, each
        time its place changes. ``background``: a start nobody waits for yet."""
        if self.running < self.width and not self.waiting:
            self.running += 1
        else:
            waiter = _Waiter(asyncio.get_running_loop().create_future(), on_wait)
            (self._background if background else self._students).append(waiter)
            self._tell()
            try:
                await waiter.future
            except asyncio.CancelledError:
                if waiter.future.done() and not waiter.future.cancelled():
                    self._release()  # the slot was handed over just as we were cancelled
                else:
                    for line in (self._students, self._background):
                        if waiter in line:
                            line.remove(waiter)
                    self._tell()
                raise
        try:
            yield
        finally:
            self._release()
