"""Autograding inside the grades service: its workers, the loader of a version's
notebook from the S3 store, and what the handlers need (:class:`Autograding`)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from common.errors import NotFound

from .. import snapzip
from . import queue as q
from .notebook import MAX_NOTEBOOK_BYTES, NotebookError
from .worker import Worker, WorkerSettings, run_workers

READ_TIMEOUT = 120.0


def snapshot_loader(objects):
    """The worker's loader: the graded file of a job's version, read from its zip in the
    S3 store (ranged reads in the store's thread pool)."""

    async def load(job: q.Job, path: str) -> bytes | None:
        try:
            found = await objects.run_job(
                "reading a version for autograding",
                snapzip.read_files,
                objects,
                job.storage_key,
                job.size_bytes,
                [path],
                MAX_NOTEBOOK_BYTES,
                timeout=READ_TIMEOUT,
            )
        except snapzip.FileTooLarge as e:
            raise NotebookError(str(e)) from None
        except snapzip.SnapshotUnreadable as e:
            raise NotebookError(str(e)) from None
        except NotFound:
            return None
        return found.get(path)

    return load


class Autograding:
    """The service's grading: ``start()`` its workers, ``wake()`` them when a job was
    queued here, ``images``/``default_image`` for the teacher's choice."""

    def __init__(
        self,
        *,
        store,
        grader,
        load,
        settings: WorkerSettings,
        concurrency: int,
        images: list[str],
        default_image: str,
        name: str,
        log: logging.Logger,
    ):
        self.store = store
        self.grader = grader
        self.images = list(images)
        self.default_image = default_image
        self.log = log
        self._wake = asyncio.Event()
        self.workers = [
            Worker(
                store=store,
                grader=grader,
                load=load,
                settings=settings,
                name=f"{name}/{n}",
                log=log,
            )
            for n in range(concurrency)
        ]

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        await run_workers(self.workers, self._wake)

    def close(self) -> Any:
        closer = getattr(self.grader, "close", None)
        return closer() if closer else None
