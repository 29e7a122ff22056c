"""The grading queue's rules and its worker, with a fake store and a fake grader (the
real queue in PostgreSQL: tests/integration/test_autograde_queue.py)."""

import asyncio
import dataclasses
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from traitlets import TraitError

from common.errors import StoreUnavailable
from services.grades import autogradeapi
from services.grades.autograde import pytests, scoring, worker
from services.grades.autograde import queue as q
from services.grades.autograde.notebook import NotebookError
from services.grades.autograde.settings import AutogradeSettings
from services.grades.settings import AUTOGRADE_TABLE, TABLE

pytestmark = pytest.mark.unit


def code(source, **meta):
    return {"cell_type": "code", "id": meta.pop("id", None) or f"c{id(source)}", "source": source,
            "metadata": meta, "outputs": [], "execution_count": None}  # fmt: skip


def md(source, **meta):
    return {"cell_type": "markdown", "id": f"m{id(source)}", "source": source, "metadata": meta}


def tcell(key, points, **classhub):
    return code(
        f"assert answer() == 42  # {key}",
        nbgrader={"grade_id": key, "grade": True, "solution": False, "points": points},
        classhub=classhub,
    )


SOURCE = {
    "nbformat": 4,
    "nbformat_minor": 5,
    "metadata": {},
    "cells": [
        md("## Question 1", tags=["question"]),
        code(
            "def answer():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION",
            nbgrader={"grade_id": "answer", "solution": True},
        ),
        tcell("t1", 2),
        tcell("t2", 1, visibility="after-due"),
        md("## Question 2", tags=["question"]),
        tcell("t3", 3, visibility="hidden"),
        tcell("t4", 1, question="q1"),
    ],
}


# ----------------------------------------------------------------------------- rules


def test_retries_wait_longer_each_time_up_to_a_cap():
    assert [q.retry_delay(n, 30) for n in (1, 2, 3, 10)] == [30, 60, 120, 600]
    assert not q.gives_up(2, 3)
    assert q.gives_up(3, 3)


def test_tests_feed_the_question_they_follow_or_the_one_they_name():
    assert q.test_questions(SOURCE, ["q1", "q2"]) == {
        "t1": "q1",
        "t2": "q1",
        "t3": "q2",
        "t4": "q1",  # its own metadata names q1
    }
    # fewer questions than tagged cells: tests past the last question feed none
    assert q.test_questions(SOURCE, ["q1"]) == {"t1": "q1", "t2": "q1", "t4": "q1"}


def row(test_id, score, points, question, visibility="visible"):
    return q.TestRow(test_id, 0, "pass", D(score), D(points), visibility, "", (), question)


def test_a_questions_points_are_its_tests_scores_capped_at_its_worth():
    rows = [
        row("t1", 2, 2, "q1"),
        row("t2", 1, 1, "q1"),
        row("t3", 3, 3, "q2"),
        row("x", 5, 5, None),
    ]
    assert q.question_points(rows, {"q1": D(2), "q2": D(5)}) == {"q1": D(2), "q2": D(3)}


@pytest.mark.parametrize(
    ("visibility", "show_hidden", "due_passed", "sees"),
    [
        ("visible", False, False, True),
        ("after-due", False, False, False),
        ("after-due", False, True, True),
        ("hidden", False, True, False),
        ("hidden", True, False, True),
    ],
)
def test_what_a_student_sees(visibility, show_hidden, due_passed, sees):
    assert q.student_sees(visibility, show_hidden=show_hidden, due_passed=due_passed) is sees


def test_the_notebook_path_and_the_source_are_checked():
    assert autogradeapi.check_notebook_path("part1/hw.ipynb") == "part1/hw.ipynb"
    for bad in ("", "/etc/hw.ipynb", "../hw.ipynb", "a/../../hw.ipynb", "hw.py", 3, "a//b.ipynb"):
        with pytest.raises(autogradeapi.BadRequest):
            autogradeapi.check_notebook_path(bad)
    assert autogradeapi.check_source(SOURCE) is SOURCE
    no_tests = {**SOURCE, "cells": SOURCE["cells"][:2]}
    for bad in (no_tests, {"cells": "x"}, [1]):
        with pytest.raises(autogradeapi.BadRequest):
            autogradeapi.check_source(bad)
    # the teacher's answer never carries the tests' code
    assert autogradeapi.tests_view(SOURCE)[2] == {"id": "t3", "points": 3.0, "visibility": "hidden"}


# ----------------------------------------------------------------------------- settings


def test_autograde_settings_are_table_entries(monkeypatch):
    names = {s.env for s in AUTOGRADE_TABLE}
    assert {"CLASSHUB_AUTOGRADE_LEASE", "CLASSHUB_AUTOGRADE_CONCURRENCY"} <= names
    assert names <= set(TABLE.passed_variables)
    monkeypatch.setenv("CLASSHUB_AUTOGRADE_LEASE", "15")
    monkeypatch.setenv("CLASSHUB_AUTOGRADE_MAX_ATTEMPTS", "5")
    s = AutogradeSettings()
    assert s.autograde_worker_settings() == worker.WorkerSettings(
        lease=15.0, poll=2.0, max_attempts=5, retry_base=30.0
    )
    assert s.autograde_images == ["classhub/singleuser:latest"]
    monkeypatch.setenv("CLASSHUB_AUTOGRADE_MAX_ATTEMPTS", "0")
    with pytest.raises(TraitError, match="autograde_max_attempts"):
        AutogradeSettings().autograde_max_attempts  # noqa: B018
    monkeypatch.setenv("CLASSHUB_AUTOGRADE_LEASE", "soon")
    with pytest.raises(TraitError, match="CLASSHUB_AUTOGRADE_LEASE"):
        AutogradeSettings().autograde_lease  # noqa: B018
    monkeypatch.setenv("CLASSHUB_IMAGES", '[{"name": "classhub/datascience:latest"}]')
    assert AutogradeSettings().autograde_images == [
        "classhub/datascience:latest",
        "classhub/singleuser:latest",
    ]


# ----------------------------------------------------------------------------- the worker


class FakeStore:
    """The store's queue calls, in memory, with the real one's claim rules."""

    def __init__(self, source=SOURCE, questions=("q1", "q2")):
        self.config = q.AutogradeConfig(
            1, "hw.ipynb", source, "0" * 64, "img", True, False, 4, "tina", datetime.now(UTC)
        )
        self.job = q.Job(7, 70, 1, "cs101", "sam", 1, "k", 10, 1, 4, "claim-1")
        self.claimed = False
        self.held = True
        self.finished = []
        self.failed = []
        self.extended = 0
        self._questions = [type("Q", (), {"key": k}) for k in questions]

    async def claim_autograde_job(self, *, lease, worker, max_attempts):
        if self.claimed:
            return None
        self.claimed = True
        return self.job

    async def extend_autograde_claim(self, job, lease):
        self.extended += 1
        return self.held

    async def fail_autograde_job(self, job, reason, *, retry_after, max_attempts):
        self.failed.append((reason, retry_after, max_attempts))
        return "failed" if q.gives_up(job.attempts, max_attempts) else "queued"

    async def finish_autograde_job(self, job, **result):
        self.finished.append(result)
        return True

    async def autograde_config(self, assignment_id):
        return self.config

    async def questions(self, assignment_id):
        return self._questions


class FakeGrader:
    def __init__(self, result=None, wait=None):
        self.result, self.wait, self.plans = result, wait, []

    async def grade(self, image, plan):
        self.plans.append((image, plan))
        if self.wait is not None:
            await self.wait.wait()
        return self.result or scoring.score_run(
            plan,
            [
                {"type": "test", "id": t.id, "status": "pass", "message": "", "flags": []}
                for t in plan.tests
            ]
            + [{"type": "end"}],
            scoring.RunFacts(),
        )


def student_notebook():
    nb = {**SOURCE, "cells": [dict(c) for c in SOURCE["cells"]]}
    nb["cells"][1] = {**nb["cells"][1], "source": "def answer():\n    return 42"}
    return nb


def make_worker(store, grader, raw=b"", lease=60.0):
    import json

    async def load(job, path):
        assert (job, path) == (store.job, "hw.ipynb")
        if isinstance(raw, Exception):
            raise raw
        return raw if raw is None or raw else json.dumps(student_notebook()).encode()

    settings = worker.WorkerSettings(lease=lease, poll=0.01, max_attempts=3, retry_base=30)
    return worker.Worker(store=store, grader=grader, load=load, settings=settings, name="w")


async def test_a_job_is_graded_and_its_result_stored_with_the_questions():
    store, grader = FakeStore(), FakeGrader()
    assert await make_worker(store, grader).run_once() is True
    assert await make_worker(store, grader).run_once() is False  # the queue is empty
    assert grader.plans[0][0] == "img"
    [result] = store.finished
    assert result["config_revision"] == 4 and result["complete"] is True
    tests = {t.test_id: (t.status, t.score, t.question_key) for t in result["tests"]}
    assert tests == {
        "t1": ("pass", D("2.00"), "q1"),
        "t2": ("pass", D("1.00"), "q1"),
        "t3": ("pass", D("3.00"), "q2"),
        "t4": ("pass", D("1.00"), "q1"),
    }


async def test_docker_trouble_is_retried_not_stored():
    result = scoring.RunResult([], [], [], [], False, "the grading run could not start: x", "x")
    store = FakeStore()
    await make_worker(store, FakeGrader(result)).run_once()
    assert store.finished == []
    assert store.failed == [("the grading run could not start: x", 30.0, 3)]


async def test_the_s3_store_down_is_retried():
    store = FakeStore()
    await make_worker(store, FakeGrader(), raw=StoreUnavailable("s3", "down")).run_once()
    assert store.finished == [] and store.failed[0][0].startswith("could not read the version")


async def test_a_version_without_the_notebook_scores_zero_with_the_reason():
    store, grader = FakeStore(), FakeGrader()
    await make_worker(store, grader, raw=None).run_once()
    assert grader.plans == []  # nothing to run
    [result] = store.finished
    assert result["complete"] is False and "no file hw.ipynb" in result["reason"]
    assert {(t.status, t.score) for t in result["tests"]} == {("not-run", D(0))}


async def test_a_notebook_that_is_not_json_scores_zero_with_the_reason():
    store = FakeStore()
    await make_worker(store, FakeGrader(), raw=b"{not json").run_once()
    [result] = store.finished
    assert "not a notebook" in result["reason"] and result["tests"][0].score == 0


async def test_a_broken_source_notebook_fails_the_job_without_retries():
    store = FakeStore()
    store.config = dataclasses.replace(store.config, source={"cells": "no"})
    await make_worker(store, FakeGrader()).run_once()
    assert store.finished == [] and store.failed[0][2] == 0
    assert store.failed[0][0].startswith("the source notebook cannot be graded with")


async def test_a_worker_that_lost_its_claim_stops_and_stores_nothing():
    store, hold = FakeStore(), asyncio.Event()
    store.held = False  # another worker took the job: the heartbeat learns it
    await make_worker(store, FakeGrader(wait=hold), lease=0.03).run_once()
    assert store.extended == 1 and store.finished == [] and store.failed == []


async def test_the_heartbeat_keeps_the_claim_while_the_run_lasts():
    store, hold = FakeStore(), asyncio.Event()
    task = asyncio.ensure_future(make_worker(store, FakeGrader(wait=hold), lease=0.03).run_once())
    while store.extended < 3:
        await asyncio.sleep(0.01)
    hold.set()
    assert await task is True
    assert len(store.finished) == 1


# ----------------------------------------------------------------------------- pytest files

PYTEST_FILE = """import math

def helper(x):
    return answer() + x

def test_answer():
    assert answer() == 42

def test_helper():
    assert math.isclose(helper(0.5), 42.5)
"""


def test_a_pytest_file_becomes_one_test_per_function():
    [f] = pytests.parse_files(
        [{"name": "test_hw.py", "source": PYTEST_FILE, "points": 4, "visibility": "hidden",
          "question": "q2"}]
    )  # fmt: skip
    specs = pytests.file_tests([f])
    assert [(s.id, s.points, s.visibility) for s in specs] == [
        ("test_hw.py::test_answer", 2.0, "hidden"),
        ("test_hw.py::test_helper", 2.0, "hidden"),
    ]
    assert specs[0].source.endswith("\n\ntest_answer()\n") and PYTEST_FILE in specs[0].source
    listed = autogradeapi.tests_view(SOURCE, [f.as_json()])
    assert [t["id"] for t in listed][-2:] == ["test_hw.py::test_answer", "test_hw.py::test_helper"]
    assert pytests.file_questions([f]) == {
        "test_hw.py::test_answer": "q2",
        "test_hw.py::test_helper": "q2",
    }


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"name": "hw.py", "source": "def test_a(): pass"}, "test_something.py"),
        ({"name": "test_a.py", "source": "def test_a(:"}, "not valid Python"),
        ({"name": "test_a.py", "source": "x = 1"}, "no test function"),
        ({"name": "test_a.py", "source": "def test_a(tmp_path): pass"}, "fixtures"),
        ({"name": "test_a.py", "source": "async def test_a(): pass"}, "async"),
        ({"name": "test_a.py", "source": "def test_a(): pass", "points": -1}, "points"),
        ({"name": "test_a.py", "source": "def test_a(): pass", "visibility": "no"}, "visibility"),
        ({"name": "test_a.py", "source": "def test_a(): pass", "run": "rm"}, "Each test file"),
    ],
)
def test_bad_pytest_files_are_refused_with_a_message(item, message):
    with pytest.raises(NotebookError, match=message):
        pytests.parse_files([item])
    with pytest.raises(autogradeapi.BadRequest, match=message):
        autogradeapi.check_test_files([item])


async def test_the_pytest_files_tests_run_after_the_notebooks():
    store, grader = FakeStore(), FakeGrader()
    store.config = dataclasses.replace(
        store.config,
        test_files=[{"name": "test_hw.py", "source": PYTEST_FILE, "points": 4,
                     "visibility": "visible", "question": "q2"}],
    )  # fmt: skip
    await make_worker(store, grader).run_once()
    plan = grader.plans[0][1]
    assert [t.id for t in plan.tests][-2:] == ["test_hw.py::test_answer", "test_hw.py::test_helper"]
    [result] = store.finished
    assert {t.test_id: t.question_key for t in result["tests"]}["test_hw.py::test_helper"] == "q2"


def test_the_autograde_routes_reach_their_handlers():
    import re

    def route(path):
        for pattern, handler, _ in autogradeapi.autograde_handlers({}):
            found = re.fullmatch(pattern, path)
            if found:
                return handler, found.groups()
        return None

    a = "api/classes/c1/assignments/hw"
    assert route(f"{a}/autograde") == (autogradeapi.AutogradeHandler, ("c1", "hw"))
    assert route(f"{a}/autograde/run") == (autogradeapi.AutogradeRunHandler, ("c1", "hw"))
    assert route("api/submissions/12/autograde") == (
        autogradeapi.SubmissionAutogradeHandler,
        ("12",),
    )
    assert route("api/submissions/x/autograde") is None
    assert route(f"{a}/autograde/run/x") is None
