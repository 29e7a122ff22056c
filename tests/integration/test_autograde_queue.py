"""The grading queue in a real, throw-away PostgreSQL 15 (GradesStore, no hub): one job
per version however often it is queued, never claimed by two workers, a worker killed
with SIGKILL mid-job and its job finished by another, bounded retries with the reason,
results per test feeding the questions and the grade, a teacher's points overriding the
tests', and PostgreSQL down then back. The grading itself runs in real sealed containers
of the shared classhub/singleuser:latest image (which has the runner)."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import docker
import pytest

from common.errors import NotFound
from services.grades.autograde import sandbox
from services.grades.autograde.worker import Worker, WorkerSettings
from services.grades.store import GradesStore, StoreUnavailable
from tests.integration.test_grades_store import clock, fields, pg, submit

pytestmark = pytest.mark.integration
FIXTURES = (pg, clock)

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "classhub/singleuser:latest"
DEPLOYMENT = "autograde-queue-test"
LIMITS = sandbox.Limits(
    mem_limit="256m",
    pids_limit=64,
    timeout=120.0,
    cell_timeout=30.0,
    output_limit=1 << 20,
    tmpfs_size="32m",
    deployment=DEPLOYMENT,
)


def cell(kind, source, cid, **meta):
    c = {"cell_type": kind, "id": cid, "source": source, "metadata": meta}
    if kind == "code":
        c.update(outputs=[], execution_count=None)
    return c


def notebook(cells):
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}


def tcell(key, source, points, question, visibility="visible"):
    return cell(
        "code",
        source,
        key,
        nbgrader={"grade_id": key, "grade": True, "solution": False, "points": points},
        classhub={"question": question, "visibility": visibility},
    )


SOURCE = notebook(
    [
        cell("markdown", "Write `square(x)`.", "intro"),
        cell(
            "code",
            "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
            "answer",
            nbgrader={"grade_id": "answer", "solution": True},
        ),
        tcell("visible", "assert square(3) == 9", 2, "q1"),
        tcell("hidden", "assert square(-2) == 4", 3, "q2", "hidden"),
    ]
)


def student(body="return abs(x) * x"):
    """The student's notebook: passes the visible test, fails the hidden one."""
    cells = [dict(c) for c in SOURCE["cells"]]
    cells[1] = {**cells[1], "source": f"def square(x):\n    {body}"}
    return json.dumps(notebook(cells)).encode()


@pytest.fixture
async def store(pg):
    """A store on the real clock (leases lapse in real time)."""
    s = GradesStore(pg.fresh_db())
    await s.open()
    yield s
    await s.close()


@pytest.fixture(scope="module")
def grader():
    client = docker.from_env(timeout=60)
    client.images.get(IMAGE)  # the shared image; never built here
    g = sandbox.Autograder(LIMITS, concurrency=2)
    yield g
    g.close()
    for c in client.containers.list(all=True, filters={"label": sandbox.RUN_LABEL}):
        if c.labels.get(sandbox.RUN_LABEL) == DEPLOYMENT:
            c.remove(force=True, v=True)
    client.close()


async def setup_assignment(store, *, on_submit=False, questions=True):
    a = await store.create_assignment("cs101", fields(due_at=None), actor="tina")
    if questions:
        await store.set_questions(
            a.id, [{"label": "Square", "points": 2}, {"label": "Negatives", "points": 3}],
            actor="tina",
        )  # fmt: skip
    await store.set_autograde_config(
        a.id,
        notebook_path="square.ipynb",
        source=SOURCE,
        image=IMAGE,
        on_submit=on_submit,
        show_hidden=False,
        actor="tina",
    )
    return a


def worker(store, grader, name="w1", lease=60.0, notebooks=None, retry_base=30.0):
    async def load(job, path):
        assert path == "square.ipynb"
        return (notebooks or {}).get(job.submission_id, student())

    settings = WorkerSettings(lease=lease, poll=0.1, max_attempts=3, retry_base=retry_base)
    return Worker(store=store, grader=grader, load=load, settings=settings, name=name)


async def jobs(store):
    async with store.db.connection() as conn:
        cur = await conn.execute(
            "SELECT submission_id, state, attempts, reason, worker FROM autograde_jobs"
            " ORDER BY submission_id"
        )
        names = ("sid", "state", "attempts", "reason", "worker")
        return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]


async def test_one_job_per_version_however_often_it_is_queued(store):
    a = await setup_assignment(store)
    v1 = await submit(store, a.id, "sam")
    v2 = await submit(store, a.id, "sam", content_sha256="1" * 64)
    assert await store.enqueue_autograde([v1.id], trigger="teacher", actor="tina") == 1
    assert await store.enqueue_autograde([v1.id, v1.id], trigger="teacher", actor="tina") == 0
    assert await store.enqueue_autograde([v1.id, v2.id], trigger="submit", actor="sam") == 1
    assert [j["sid"] for j in await jobs(store)] == [v1.id, v2.id]
    # concurrently, from two processes: still one job each
    other = GradesStore(store.db.conninfo)
    await other.open()
    try:
        counts = await asyncio.gather(
            *(s.enqueue_autograde([v1.id, v2.id], trigger="teacher", actor="tina")
              for s in (store, other, store, other))
        )  # fmt: skip
    finally:
        await other.close()
    assert counts == [0, 0, 0, 0] and len(await jobs(store)) == 2
    # bad input: another assignment's versions together, no tests, nothing
    b = await store.create_assignment("cs101", fields(slug="hw-2", due_at=None), actor="tina")
    w = await submit(store, b.id, "sam")
    with pytest.raises(NotFound, match="no autograding tests"):
        await store.enqueue_autograde([w.id], trigger="teacher", actor="tina")
    with pytest.raises(Exception, match="one assignment"):
        await store.enqueue_autograde([v1.id, w.id], trigger="teacher", actor="tina")
    assert await store.enqueue_autograde([], trigger="teacher", actor="tina") == 0


async def test_submit_queues_a_job_in_the_same_transaction_when_switched_on(store):
    a = await setup_assignment(store, on_submit=True)
    v1 = await submit(store, a.id, "sam")
    collected = await submit(store, a.id, "sue", collected_by="tina")
    assert [(j["sid"], j["state"]) for j in await jobs(store)] == [(v1.id, "queued")]
    assert collected.id not in [j["sid"] for j in await jobs(store)]
    off = await store.create_assignment("cs101", fields(slug="off", due_at=None), actor="tina")
    await submit(store, off.id, "sam")
    assert len(await jobs(store)) == 1  # no autograding there


async def test_two_workers_never_claim_the_same_job(store):
    a = await setup_assignment(store)
    ids = [(await submit(store, a.id, f"s{n}")).id for n in range(6)]
    await store.enqueue_autograde(ids, trigger="teacher", actor="tina")
    other = GradesStore(store.db.conninfo)
    await other.open()
    try:
        claims = await asyncio.gather(
            *(s.claim_autograde_job(lease=60, worker=f"w{n}", max_attempts=3)
              for n, s in enumerate([store, other] * 4))
        )  # fmt: skip
    finally:
        await other.close()
    got = [c.submission_id for c in claims if c is not None]
    assert sorted(got) == sorted(ids)  # each once, two claims found nothing


async def test_a_job_whose_worker_was_killed_is_finished_by_another(store, grader):
    a = await setup_assignment(store)
    v = await submit(store, a.id, "sam")
    await store.enqueue_autograde([v.id], trigger="teacher", actor="tina")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.autograde_worker_proc", store.db.conninfo,
         "3", "doomed"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not [j for j in await jobs(store) if j["state"] == "running"]:
            assert proc.poll() is None, "the worker process ended by itself"
            assert time.monotonic() < deadline, "the worker process never claimed the job"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.5)  # its heartbeat renewed the 3 s lease at least once
        [job] = await jobs(store)
        assert (job["state"], job["worker"], job["attempts"]) == ("running", "doomed", 1)
        # a live claim is never taken
        assert await store.claim_autograde_job(lease=60, worker="x", max_attempts=3) is None
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    # another worker takes it once the lease lapsed, and grades it for real
    rescuer = worker(store, grader, name="rescuer")
    deadline = time.monotonic() + 30
    while not await rescuer.run_once():
        assert time.monotonic() < deadline, "the lapsed job was never claimed again"
        await asyncio.sleep(0.5)
    [job] = await jobs(store)
    assert (job["state"], job["worker"], job["attempts"]) == ("done", "rescuer", 2)
    results = await store.autograde_results([v.id])
    tests = {t.test_id: (t.status, t.score) for t in results[v.id]["tests"]}
    assert tests == {"visible": ("pass", D("2.00")), "hidden": ("fail", D("0.00"))}
    assert await rescuer.run_once() is False  # nothing graded twice
    async with store.db.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM autograde_results")
        assert (await cur.fetchone())[0] == 1


async def test_results_feed_the_questions_and_a_teachers_points_override_them(store, grader):
    a = await setup_assignment(store)
    v = await submit(store, a.id, "sam")
    await store.enqueue_autograde([v.id], trigger="teacher", actor="tina")
    assert await worker(store, grader).run_once()
    s = await store.get_submission(v.id)
    assert (s.grade.points, s.grade.graded_by) == (D("2.00"), "autograde")
    data = await store.standing_data("cs101", assignment_id=a.id)
    assert data.question_points[v.id] == {"q1": (D("2.00"), "auto"), "q2": (D("0.00"), "auto")}
    # the teacher gives the negatives question 1.5 points by hand
    g = await store.set_grade(v.id, None, "", "tina", s.grade.revision,
                              question_points={"q2": "1.5"})  # fmt: skip
    assert g.points == D("3.50")
    # new tests: graded again; the teacher's points stay, the tests' are renewed
    fixed = json.loads(json.dumps(SOURCE))
    fixed["cells"][2]["source"] = "assert square(3) == 9\nassert square(0) == 0"
    await store.set_autograde_config(a.id, notebook_path="square.ipynb", source=fixed,
                                     image=IMAGE, on_submit=False, show_hidden=False,
                                     actor="tina")  # fmt: skip
    assert await store.enqueue_autograde([v.id], trigger="teacher", actor="tina") == 1
    assert await worker(store, grader).run_once()
    data = await store.standing_data("cs101", assignment_id=a.id)
    assert data.question_points[v.id] == {"q1": (D("2.00"), "auto"), "q2": (D("1.50"), "manual")}
    assert (await store.get_submission(v.id)).grade.points == D("3.50")
    assert (await store.autograde_results([v.id]))[v.id]["config_revision"] == 2


async def test_without_questions_a_typed_grade_is_never_overwritten(store, grader):
    a = await setup_assignment(store, questions=False)
    v = await submit(store, a.id, "sam")
    await store.set_grade(v.id, 9, "well done", "tina", 0)
    await store.enqueue_autograde([v.id], trigger="teacher", actor="tina")
    assert await worker(store, grader).run_once()
    assert (await store.get_submission(v.id)).grade.points == D(9)
    assert (await store.autograde_results([v.id]))[v.id]["score"] == D(2)


async def test_failures_are_retried_then_fail_with_the_reason(store):
    a = await setup_assignment(store)
    v = await submit(store, a.id, "sam")
    await store.enqueue_autograde([v.id], trigger="teacher", actor="tina")

    class Down:
        async def grade(self, image, plan):
            from services.grades.autograde import scoring

            return scoring.score_run(plan, [], scoring.RunFacts(error="Docker: ConnectionError"))

    w = worker(store, Down(), retry_base=0.01)
    for attempt in (1, 2, 3):
        while not await w.run_once():
            await asyncio.sleep(0.05)
        [job] = await jobs(store)
        assert job["attempts"] == attempt and "Docker: ConnectionError" in job["reason"]
    assert job["state"] == "failed"
    assert await store.autograde_results([v.id]) == {}
    progress, failed = await store.autograde_progress(a.id)
    assert progress.failed == 1 and failed[0]["reason"] == job["reason"]
    # the teacher's "grade all" queues it again
    assert await store.enqueue_autograde([v.id], trigger="teacher", actor="tina") == 1
    assert (await store.autograde_progress(a.id))[0].queued == 1


async def test_postgres_down_then_back(pg, grader):
    store = GradesStore(pg.fresh_db(), timeout=2.0)
    await store.open()
    try:
        a = await setup_assignment(store)
        v = await submit(store, a.id, "sam")
        w = worker(store, grader)
        pg.stop()
        with pytest.raises(StoreUnavailable):
            await store.enqueue_autograde([v.id], trigger="teacher", actor="tina")
        with pytest.raises(StoreUnavailable) as e:
            await w.run_once()
        assert e.value.status_code == 503
        pg.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                await store.enqueue_autograde([v.id], trigger="teacher", actor="tina")
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the pool did not reconnect"
                await asyncio.sleep(0.2)
        assert await w.run_once()
        assert [j["state"] for j in await jobs(store)] == ["done"]
    finally:
        await store.close()


async def test_a_pytest_file_runs_after_the_notebook_in_the_sealed_container(store, grader):
    a = await setup_assignment(store)
    source = (
        "import math\n\n"
        "def test_positive():\n    assert square(4) == 16\n\n"
        "def test_negative():\n    assert math.isclose(square(-3), 9)\n"
    )
    await store.set_autograde_config(
        a.id,
        notebook_path="square.ipynb",
        source=SOURCE,
        image=IMAGE,
        on_submit=False,
        show_hidden=False,
        actor="tina",
        test_files=[{"name": "test_square.py", "source": source, "points": 3,
                     "visibility": "after-due", "question": "q2"}],
    )  # fmt: skip
    v = await submit(store, a.id, "sam")
    await store.enqueue_autograde([v.id], trigger="teacher", actor="tina")
    assert await worker(store, grader).run_once()
    [result] = (await store.autograde_results([v.id])).values()
    tests = {t.test_id: (t.status, t.score, t.visibility, t.question_key) for t in result["tests"]}
    assert tests == {
        "visible": ("pass", D("2.00"), "visible", "q1"),
        "hidden": ("fail", D("0.00"), "hidden", "q2"),
        "test_square.py::test_positive": ("pass", D("1.50"), "after-due", "q2"),
        "test_square.py::test_negative": ("fail", D("0.00"), "after-due", "q2"),
    }
    assert result["complete"] is True
