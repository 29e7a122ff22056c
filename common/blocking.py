"""One way to call blocking SDKs (pymongo here; docker and minio later) from async code.

Every call runs in a thread pool of a fixed size (a trait of the service app), so the
event loop never waits on a socket, and is bounded in time on the client side. The SDK's
own timeouts (``socketTimeoutMS``, ...) still matter: a thread whose call timed out here
keeps running until the SDK gives up, and the pool size bounds how many such threads
there can be.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class CallTimedOut(TimeoutError):
    """A blocking call did not return within its time budget."""

    def __init__(self, what: str, seconds: float):
        super().__init__(f"{what} did not return within {seconds:g} s")
        self.what = what
        self.seconds = seconds


class BlockingCalls:
    """A thread pool for blocking SDK calls, each with a timeout.

    ``await calls.run(collection.find_one, {"code": code})`` runs the call in a pool
    thread and raises :class:`CallTimedOut` when it takes longer than ``timeout`` seconds.
    """

    def __init__(self, *, threads: int, timeout: float, name: str = "service-sdk"):
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.threads = threads
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=name)

    async def run(
        self, fn: Callable[..., T], /, *args, timeout: float | None = None, **kwargs
    ) -> T:
        budget = self.timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))
        try:
            return await asyncio.wait_for(future, budget)
        except TimeoutError:
            what = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "a call")
            raise CallTimedOut(what, budget) from None

    def close(self) -> None:
        """Refuse new calls; queued ones are cancelled, running ones finish on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)
