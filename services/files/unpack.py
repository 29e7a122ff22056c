"""Unpacking an uploaded zip into an area (a blocking job: run it in the thread pool).

The zip waits in the staging area until it is unpacked. Every member is checked before
the first file is written (names, count, sizes, compression ratios, the area's quota:
:func:`services.base.archive.plan`), so a hostile or oversized archive changes nothing.
Each file is then one S3 object, written whole or not at all; if the store fails half-way,
the staged zip stays and unpacking it again writes the same files again (nothing is
duplicated), which is what "done" does when it is called again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from services.base import archive
from services.base.s3 import ObjectStore


class _ChunkReader:
    """A read()-able view of a chunk iterator, for the SDK's streaming upload."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if n < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data


@dataclass(frozen=True)
class Unpacked:
    files: list[str]  # paths in the area, in archive order
    bytes: int


def plan_archive(
    store: ObjectStore, zip_key: str, limits: archive.Limits, root: str, max_zip_bytes: int
):
    """Blocking: fetch the staged zip and check it; ``(spool, zipfile, entries)``."""
    spool = store.download_to_temp(zip_key, max_zip_bytes)
    try:
        zf = archive.open_zip(spool, limits)
        return spool, zf, archive.plan(zf, limits, root=root)
    except BaseException:
        spool.close()
        raise


def write_entries(
    store: ObjectStore, zf, entries: list[archive.Entry], area_prefix: str, limits: archive.Limits
) -> Unpacked:
    """Blocking: store every planned entry under ``area_prefix``."""
    budget = archive.Budget(limits)
    for entry in entries:
        reader = _ChunkReader(archive.read_entry(zf, entry, budget))
        store.put_stream(area_prefix + entry.path, reader, entry.size)
    return Unpacked([e.path for e in entries], budget.used)
