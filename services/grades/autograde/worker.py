"""The grading queue's workers (docs/autograding.md, "The queue").

A :class:`Worker` claims one job at a time from PostgreSQL (the store's
``claim_autograde_job``: ``FOR UPDATE SKIP LOCKED`` and a lease), keeps the lease alive
while it grades (the heartbeat), grades the version in a sealed container (the
:class:`~.sandbox.Autograder`) and stores the result with the job's end in one
transaction that first checks the claim. A worker that dies (``kill -9``, the machine
stopped) stops its heartbeat; once the lease lapses another worker claims the job again.
What fails and is not the student's doing (Docker, the S3 store) is retried after a
growing wait, up to ``max_attempts``, with the reason kept; what the student's notebook
does (a crash, a timeout, no notebook at all) is a result: its tests score 0 with the
reason.

The service runs ``autograde_concurrency`` workers (:func:`run_workers`); several service
processes (or machines) may share one queue.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from common.errors import Unavailable

from . import pytests
from . import queue as q
from .notebook import NotebookError, Plan, load_notebook, make_plan
from .scoring import RunResult, TestOutcome, cell_problems


class Grader(Protocol):
    async def grade(self, image: str, plan: Plan) -> RunResult: ...


#: reads the graded file of a job's version: ``await load(job, path)`` -> bytes, or None
#: when the version has no such file; raises Unavailable when the store is down and
#: NotebookError when the file cannot be read as one (too large, the snapshot damaged)
Loader = Callable[[q.Job, str], Awaitable[bytes | None]]


@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    lease: float = 60.0  # seconds a claim holds without a heartbeat
    poll: float = 2.0  # seconds between looks at an empty queue
    max_attempts: int = 3
    retry_base: float = 30.0  # seconds before the 2nd attempt (doubled each time)


def plan_for(source: dict, student: dict, files: list[pytests.TestFile]) -> Plan:
    """The notebook's plan with the pytest files' tests after its own."""
    plan = make_plan(source, student)
    return Plan(plan.cells, plan.tests + pytests.file_tests(files), plan.flags)


def _not_run(plan: Plan, message: str) -> list[TestOutcome]:
    return [
        TestOutcome(t.id, "not-run", 0.0, t.points, t.visibility, message, ()) for t in plan.tests
    ]


def test_rows(outcomes: list[TestOutcome], questions: dict[str, str]) -> list[q.TestRow]:
    return [
        q.TestRow(
            test_id=t.id,
            position=n,
            status=t.status,
            score=q.cents(t.score),
            points=q.cents(t.points),
            visibility=t.visibility,
            message=t.message,
            flags=tuple(t.flags),
            question_key=questions.get(t.id),
        )
        for n, t in enumerate(outcomes)
    ]


class Worker:
    def __init__(
        self,
        *,
        store: Any,
        grader: Grader,
        load: Loader,
        settings: WorkerSettings,
        name: str,
        log: logging.Logger | None = None,
    ):
        self.store = store
        self.grader = grader
        self.load = load
        self.settings = settings
        self.name = name
        self.log = log or logging.getLogger(__name__)

    async def run_once(self) -> bool:
        """Claim and work one job; False when the queue had none ready."""
        job = await self.store.claim_autograde_job(
            lease=self.settings.lease, worker=self.name, max_attempts=self.settings.max_attempts
        )
        if job is None:
            return False
        work = asyncio.ensure_future(self.work(job))
        beat = asyncio.ensure_future(self._heartbeat(job, work))
        try:
            await work
        except asyncio.CancelledError:
            if not beat.done():  # the worker itself is stopping: the lease lapses
                raise
            self.log.warning("autograde job %s: claim lost, another worker grades it", job.id)
        finally:
            beat.cancel()
        return True

    async def run_forever(self, wake: asyncio.Event | None = None) -> None:
        """Work jobs until cancelled; an empty queue is looked at every ``poll`` seconds
        (or when ``wake`` is set: a job was queued by this process)."""
        wake = wake or asyncio.Event()
        while True:
            try:
                busy = await self.run_once()
            except Unavailable as e:
                self.log.warning("Autograding postponed: %s", e)
                busy = False
            except Exception:
                self.log.exception("Autograding worker %s failed; going on", self.name)
                busy = False
            if not busy:
                try:
                    await asyncio.wait_for(wake.wait(), self.settings.poll)
                except TimeoutError:
                    pass
                wake.clear()

    async def _heartbeat(self, job: q.Job, work: asyncio.Future) -> None:
        while True:
            await asyncio.sleep(self.settings.lease / 3)
            try:
                held = await self.store.extend_autograde_claim(job, self.settings.lease)
            except Unavailable as e:
                self.log.warning("autograde job %s: heartbeat failed: %s", job.id, e)
                continue
            if not held:
                work.cancel()
                return

    async def _retry(self, job: q.Job, reason: str) -> None:
        delay = q.retry_delay(job.attempts, self.settings.retry_base)
        state = await self.store.fail_autograde_job(
            job, reason, retry_after=delay, max_attempts=self.settings.max_attempts
        )
        self.log.warning(
            "autograde job %s (attempt %d): %s -> %s", job.id, job.attempts, reason, state
        )

    async def _give_up(self, job: q.Job, reason: str) -> None:
        await self.store.fail_autograde_job(job, reason, retry_after=0, max_attempts=0)
        self.log.warning("autograde job %s failed: %s", job.id, reason)

    async def work(self, job: q.Job) -> None:
        config = await self.store.autograde_config(job.assignment_id)
        if config is None:
            return await self._give_up(job, "the assignment has no autograding tests any more")
        try:
            source = load_notebook(config.source)
            files = [pytests.TestFile(**f) for f in config.test_files]
            empty = plan_for(source, {"cells": []}, files)
        except (NotebookError, TypeError) as e:
            return await self._give_up(job, f"the source notebook cannot be graded with: {e}")
        problem = ""
        plan = empty
        try:
            raw = await self.load(job, config.notebook_path)
            if raw is None:
                problem = f"This version has no file {config.notebook_path}."
            else:
                plan = plan_for(source, load_notebook(raw), files)
        except Unavailable as e:
            return await self._retry(job, f"could not read the version: {e}")
        except NotebookError as e:
            problem = f"{config.notebook_path}: {e}"
        cells: list[dict] = []
        if problem:
            outcomes, complete, flags = _not_run(plan, problem), False, [problem]
        else:
            result = await self.grader.grade(config.image, plan)
            if result.error:
                return await self._retry(job, result.reason)
            outcomes, complete, flags = result.tests, result.complete, result.flags
            problem = result.reason
            cells = cell_problems(result.cells)
        questions = await self.store.questions(job.assignment_id)
        mapping = {}
        if questions:
            keys = [x.key for x in questions]
            mapping = q.test_questions(source, keys)
            mapping.update({t: k for t, k in pytests.file_questions(files).items() if k in keys})
        stored = await self.store.finish_autograde_job(
            job,
            tests=test_rows(outcomes, mapping),
            config_revision=config.revision,
            complete=complete,
            reason=problem,
            flags=flags,
            cell_flags=[dataclasses.asdict(f) for f in plan.flags],
            cells=cells,
        )
        if not stored:
            self.log.warning("autograde job %s: claim lost before the result was stored", job.id)


async def run_workers(workers: list[Worker], wake: asyncio.Event) -> None:
    """Run ``workers`` side by side until cancelled."""
    await asyncio.gather(*(w.run_forever(wake) for w in workers))
