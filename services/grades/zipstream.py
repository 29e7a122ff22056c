"""Streaming a zip (or one file) to a browser while a worker thread writes it: the review's
downloads (:mod:`.review`, :mod:`.downloadall`). Memory stays at a few chunks, whatever
the size, and a browser that goes away stops the copy."""

from __future__ import annotations

import asyncio
import datetime
import threading
import zipfile
from collections.abc import Iterator

from tornado import iostream, web


class Aborted(Exception):
    """The browser went away (or the stream was given up): stop copying."""


class ChunkPipe:
    """Bytes written by a worker thread (``zipfile`` writes into it), sent by the event
    loop: at most ``depth`` chunks of ``chunk`` bytes wait, so a slow browser slows the
    copy instead of filling memory."""

    def __init__(self, loop: asyncio.AbstractEventLoop, chunk: int = 256 << 10, depth: int = 8):
        self._loop = loop
        self._chunk = chunk
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._slots = threading.Semaphore(depth)
        self._buffer = bytearray()
        self.aborted = False
        self.sent = 0

    # ----- the worker thread's side (a file zipfile can write to: no tell, no seek)

    def write(self, data) -> int:
        if self.aborted:
            raise Aborted()
        self._buffer += data
        while len(self._buffer) >= self._chunk:
            self._send(bytes(self._buffer[: self._chunk]))
            del self._buffer[: self._chunk]
        return len(data)

    def flush(self) -> None:
        """zipfile flushes after each member: nothing to do (chunks go when full)."""

    def drain(self) -> None:
        """Send what is buffered (at the end)."""
        if self._buffer:
            self._send(bytes(self._buffer))
            self._buffer.clear()

    def _send(self, chunk: bytes) -> None:
        while not self._slots.acquire(timeout=0.5):
            if self.aborted:
                raise Aborted()
        if self.aborted:
            raise Aborted()
        self._loop.call_soon_threadsafe(self._queue.put_nowait, chunk)

    # ----- the event loop's side

    def end(self) -> None:
        self._queue.put_nowait(None)

    async def pump(self, handler: web.RequestHandler) -> None:
        """Send every chunk to ``handler``'s browser until :meth:`end`."""
        while True:
            chunk = await self._queue.get()
            if chunk is None:
                return
            self._slots.release()
            if self.aborted:
                continue
            handler.write(chunk)
            try:
                await handler.flush()
            except iostream.StreamClosedError:
                self.aborted = True
            self.sent += len(chunk)


def zip_time(value: datetime.datetime) -> tuple:
    """``value`` as a zip member's date and time (UTC; zip knows nothing before 1980)."""
    t = value.astimezone(datetime.UTC)
    return (max(t.year, 1980), t.month, t.day, t.hour, t.minute, t.second)


def add_file(zf: zipfile.ZipFile, name: str, size: int, chunks: Iterator[bytes], when) -> None:
    """Write member ``name`` of ``size`` bytes from ``chunks`` into ``zf`` (deflated)."""
    info = zipfile.ZipInfo(name, date_time=when)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with zf.open(info, "w", force_zip64=size > 1 << 30) as out:
        for chunk in chunks:
            out.write(chunk)
