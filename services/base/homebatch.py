"""Grouping concurrent work on students' homes into batches (one helper container each).

Starting a helper container costs about half a second of the machine's time, whatever it
does; the work on one home (a snapshot, a delivery) is usually much less. When work
arrives one piece at a time (a student presses Submit) each piece gets a container of its
own at once; when much arrives together (a push to a class, a collect, a deadline) the
pieces queue behind the running containers and leave together, up to ``max_batch`` per
container. So a single request waits for nobody, and a class costs a few containers
instead of one per student.

Two pieces of work on the same home (``key``) never run at the same time and keep their
order: a piece whose home is in a running batch waits for that batch to end.

:class:`Batcher` knows nothing about Docker: it calls ``run_batch(items)``, which returns
one result (or exception) per item, in order. Pure asyncio, unit-tested with fakes.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

RunBatch = Callable[[list[T]], Awaitable[list]]


class Batcher(Generic[T, R]):
    """``await batcher.submit(item)``: the item's result, computed in a batch.

    ``slots`` bounds how many batches run at once; several batchers may share one (the
    machine's helper containers). ``concurrency`` is the slots' number, used to split a
    queue evenly over the free slots: with 20 pieces waiting and 2 free slots, two batches
    of 10 rather than 16 and 4.
    """

    def __init__(
        self,
        run_batch: RunBatch,
        *,
        key: Callable[[T], Hashable],
        max_batch: int,
        slots: asyncio.Semaphore,
        concurrency: int,
        name: str = "homes",
        log: logging.Logger | None = None,
    ):
        if max_batch < 1 or concurrency < 1:
            raise ValueError("max_batch and concurrency must be at least 1")
        self._run_batch = run_batch
        self._key = key
        self.max_batch = max_batch
        self.concurrency = concurrency
        self._slots = slots
        self.name = name
        self.log = log or logging.getLogger(__name__)
        self._queue: list[tuple[T, asyncio.Future]] = []
        self._busy: set[Hashable] = set()
        self._changed = asyncio.Event()
        self._dispatcher: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        #: sizes of the batches run so far (for tests and benchmarks)
        self.batch_sizes: list[int] = []

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def submit(self, item: T) -> R:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._kick()
        return await future

    async def wait_idle(self) -> None:
        """Until nothing is queued or running (tests, shutdown)."""
        while self._queue or self._running or self._dispatcher is not None:
            tasks = [*self._running, *([self._dispatcher] if self._dispatcher else [])]
            await asyncio.gather(*tasks, return_exceptions=True)

    def _kick(self) -> None:
        if self._dispatcher is None and self._queue:
            self._dispatcher = asyncio.ensure_future(self._dispatch())

    def _take(self) -> list[tuple[T, asyncio.Future]]:
        """The next batch: queued pieces in order, whose home is not busy (nor already in
        this batch), as many as an even split of the queue over the slots gives."""
        self._queue = [(item, fut) for item, fut in self._queue if not fut.done()]
        free = max(1, self.concurrency - len(self._running))  # this slot included
        size = min(self.max_batch, max(1, math.ceil(len(self._queue) / free)))
        batch, keys, rest = [], set(), []
        for item, fut in self._queue:
            key = self._key(item)
            if len(batch) < size and key not in self._busy and key not in keys:
                batch.append((item, fut))
                keys.add(key)
            else:
                rest.append((item, fut))
        self._queue = rest
        self._busy |= keys
        return batch

    async def _dispatch(self) -> None:
        try:
            while self._queue:
                await self._slots.acquire()
                batch = self._take()
                if not batch:
                    # everything left waits for a home that a running batch holds
                    self._slots.release()
                    if not self._queue:
                        break
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                task = asyncio.ensure_future(self._run(batch))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
        finally:
            self._dispatcher = None

    async def _run(self, batch: list[tuple[T, asyncio.Future]]) -> None:
        items = [item for item, _ in batch]
        self.batch_sizes.append(len(items))
        try:
            try:
                results = await self._run_batch(items)
                if len(results) != len(items):
                    raise RuntimeError(f"{len(results)} results for {len(items)} pieces of work")
            except asyncio.CancelledError:
                results = [asyncio.CancelledError()] * len(items)
            except Exception as e:
                self.log.exception("A batch of %d %s failed", len(items), self.name)
                results = [e] * len(items)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, asyncio.CancelledError):
                    future.cancel()
                elif isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._slots.release()
            for item in items:
                self._busy.discard(self._key(item))
            self._changed.set()
            self._kick()
