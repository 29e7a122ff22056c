"""A grading worker in a process of its own, for the test that kills it with SIGKILL
(test_autograde_queue.py): the real Worker and the real store (PostgreSQL), a grader that
never ends (the process is killed mid-job, while its heartbeat keeps the claim).

``python -m tests.integration.autograde_worker_proc <conninfo> <lease> <name>``
"""

import asyncio
import sys

from services.grades.autograde.worker import Worker, WorkerSettings
from services.grades.store import GradesStore


class Forever:
    async def grade(self, image, plan):
        await asyncio.Event().wait()


async def main(conninfo: str, lease: float, name: str) -> None:
    store = GradesStore(conninfo)
    await store.open()

    async def load(job, path):
        return b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}'

    settings = WorkerSettings(lease=lease, poll=0.1, max_attempts=3, retry_base=1.0)
    await Worker(
        store=store, grader=Forever(), load=load, settings=settings, name=name
    ).run_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
