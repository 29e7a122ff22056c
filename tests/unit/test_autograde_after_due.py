"""What a student sees of their automatic tests, and when: the real handler of
``GET api/submissions/<id>/autograde`` (services/grades/autogradeapi.py,
``SubmissionAutogradeHandler``) served by tornado with an in-memory store and membership,
the time moved with the project's clock (``common.clock.now``, as the grades app's
``clock`` dependency reads it).

The rule as the code has it (``queue.student_sees`` fed by the student's standing,
``standing.standing``): visible tests always; "after the due date" tests once THAT
student's own deadline has passed (the assignment's due date, or their extension when
later; strictly after it, and never when the assignment has no due date) AND every
classmate's extension has passed (``store.list_extensions``: they give answers away); hidden tests
only when the teacher opted in (``show_hidden``). Teachers see every test. The PostgreSQL
store behind the same handler: tests/integration/test_autograde_queue.py."""

from __future__ import annotations

import dataclasses
import json
import types
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from common import clock
from common.errors import NotFound
from services.base.membership import STUDENT, TEACHER
from services.grades import autogradeapi
from services.grades.autograde import queue as q
from services.grades.store import Assignment, StandingData, Submission

pytestmark = pytest.mark.unit

PREFIX = "/services/grades/"
CODE = "chem5"
DUE = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EXTENDED = DUE + timedelta(days=2)  # eva's extension
SECOND = timedelta(seconds=1)


def row(test_id, position, visibility, status, points, message=""):
    points = Decimal(points)
    return q.TestRow(
        test_id=test_id,
        position=position,
        status=status,
        score=points if status == "pass" else Decimal("0.00"),
        points=points,
        visibility=visibility,
        message=message,
        flags=("patched: math.isclose",) if visibility == "hidden" else (),
        question_key="q1",
    )


#: one version's stored result: one test of each visibility; the after-due one's message
#: gives its answer away (what after-due tests are for)
ROWS = [
    row("shape", 0, "visible", "pass", "2.00"),
    row("values", 1, "after-due", "fail", "1.00", "AssertionError: expected 42, got 41"),
    row("edge", 2, "hidden", "pass", "3.00"),
]


def assignment(due: datetime | None = DUE) -> Assignment:
    values = {f.name: None for f in dataclasses.fields(Assignment)}
    values.update(
        id=1,
        class_code=CODE,
        slug="lab",
        title="Lab",
        due_at=due,
        late_policy="accept",
        late_penalty_percent=Decimal(10),
        max_points=Decimal(10),
        archived_at=None,
    )
    return Assignment(**values)


def submission(sid: int, user: str, at: datetime) -> Submission:
    return Submission(
        id=sid,
        assignment_id=1,
        username=user,
        version=1,
        submitted_at=at,
        due_at_then=None,
        late=False,
        penalty_percent=Decimal(0),
        storage_key=f"submissions/{sid}.zip",
        content_sha256="ab" * 32,
        size_bytes=100,
        files=1,
        collected_by=None,
    )


class Store:
    """The few reads of the grades store the handler makes, in memory."""

    def __init__(self):
        self.assignment = assignment()
        self.submissions = {
            1: submission(1, "sam", DUE - timedelta(hours=3)),  # no extension
            2: submission(2, "eva", DUE - timedelta(hours=3)),  # extended to EXTENDED
        }
        self.extensions = {(1, "eva"): EXTENDED}
        self.show_hidden = False

    async def get_submission(self, sid):
        if sid not in self.submissions:
            raise NotFound("no such submission")
        return self.submissions[sid]

    async def get_assignment(self, aid):
        return self.assignment

    async def autograde_config(self, aid):
        return q.AutogradeConfig(
            assignment_id=aid,
            notebook_path="lab.ipynb",
            source={"cells": []},
            source_sha256="00" * 32,
            image="classhub/singleuser:latest",
            on_submit=True,
            show_hidden=self.show_hidden,
            revision=1,
            updated_by="tina",
            updated_at=DUE - timedelta(days=7),
        )

    async def autograde_job_states(self, ids):
        return {i: {"state": "done", "attempts": 1, "reason": ""} for i in ids}

    async def autograde_results(self, ids):
        return {
            i: {
                "tests": list(ROWS),
                "graded_at": DUE - timedelta(hours=3),
                "complete": True,
                "reason": "",
                "flags": ["background threads: 1"],
                "cell_flags": [],
                "config_revision": 1,
            }
            for i in ids
        }

    async def list_extensions(self, aid):
        return [
            types.SimpleNamespace(username=user, due_at=due)
            for (a, user), due in self.extensions.items()
            if a == aid
        ]

    async def standing_data(self, code, *, assignment_id=None, username=None, full=True):
        subs = [s for s in self.submissions.values() if username in (None, s.username)]
        return StandingData(
            assignments={1: self.assignment},
            versions={(1, s.username): [s.as_version()] for s in subs},
            submissions={s.id: s for s in subs},
            extensions={k: v for k, v in self.extensions.items() if username in (None, k[1])},
            choices={},
            deadlines={},
            questions={},
            question_points={},
        )


class Membership:
    ROLES = {"tina": TEACHER, "sam": STUDENT, "eva": STUDENT}

    async def role(self, caller, code):
        return self.ROLES.get(caller.name) if code == CODE else None


class FakeHubAuth:
    access_scopes = set()

    async def get_user(self, handler, sync=True):
        name = handler.request.headers.get("X-Test-User")
        return {"kind": "user", "name": name, "admin": False, "scopes": []} if name else None


@pytest.fixture
async def served(monkeypatch):
    """``(store, set_time, get)``: ``get(user, submission id)`` -> (status, answer)."""
    now = {"t": DUE - timedelta(days=1)}
    monkeypatch.setattr(clock, "now", lambda: now["t"].timestamp())
    store = Store()
    deps = {
        "hub_auth": FakeHubAuth(),
        "store": store,
        "membership": Membership(),
        "clock": lambda: clock.now(),  # as GradesApp.handlers() passes it
        "autograding": None,  # not used by this route
    }
    routes = [
        (PREFIX + path, cls, {**deps, **extra})
        for path, cls, extra in autogradeapi.autograde_handlers({})
        if cls is autogradeapi.SubmissionAutogradeHandler
    ]
    app = web.Application(
        routes, cookie_secret="x" * 32, service_prefix=PREFIX, service_max_body_size=1 << 20
    )
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])

    def set_time(when: datetime) -> None:
        now["t"] = when

    async def get(user: str, sid: int):
        req = HTTPRequest(
            f"http://127.0.0.1:{port}{PREFIX}api/submissions/{sid}/autograde",
            headers={"X-Test-User": user},
        )
        resp = await AsyncHTTPClient().fetch(req, raise_error=False)
        return resp.code, json.loads(resp.body)

    yield store, set_time, get
    server.stop()


async def seen(get, user, sid):
    code, answer = await get(user, sid)
    assert code == 200, answer
    return [t["id"] for t in answer["result"]["tests"]]


# ----------------------------------------------------------------------------- the handler


async def test_after_due_tests_appear_only_once_the_students_deadline_passed(served):
    store, set_time, get = served
    del store.extensions[(1, "eva")]  # nobody has an extension
    for when, expected in (
        (DUE - timedelta(days=1), ["shape"]),
        (DUE - SECOND, ["shape"]),
        (DUE, ["shape"]),  # exactly at the deadline is still before it (on time)
        (DUE + SECOND, ["shape", "values"]),
        (DUE + timedelta(days=30), ["shape", "values"]),
    ):
        set_time(when)
        assert await seen(get, "sam", 1) == expected, when


async def test_nobody_sees_them_while_a_classmate_with_an_extension_still_works(served):
    """After-due tests give answers away (here the expected value): sam (no extension)
    does not read them at the class's due date while eva, extended, still works; both do
    once the last extension has passed."""
    store, set_time, get = served
    set_time(DUE + timedelta(hours=1))  # the class's due date passed, eva's has not
    assert await seen(get, "sam", 1) == ["shape"]
    assert await seen(get, "eva", 2) == ["shape"]
    set_time(EXTENDED)
    assert await seen(get, "sam", 1) == ["shape"]
    set_time(EXTENDED + SECOND)
    assert await seen(get, "eva", 2) == ["shape", "values"]
    code, answer = await get("sam", 1)
    after_due = [t for t in answer["result"]["tests"] if t["visibility"] == "after-due"]
    assert after_due and "expected 42" in after_due[0]["message"]


async def test_an_extension_granted_after_the_due_date_hides_them_again(served):
    """The decision is made at each request from the CURRENT deadlines: an extension
    given to a classmate once sam has seen the after-due tests hides them again until it
    passes (what he read in between stays read: grant extensions before the due date)."""
    store, set_time, get = served
    del store.extensions[(1, "eva")]
    set_time(DUE + timedelta(hours=1))
    assert "values" in await seen(get, "sam", 1)
    store.extensions[(1, "eva")] = EXTENDED  # granted now, to a classmate
    assert await seen(get, "sam", 1) == ["shape"]
    set_time(EXTENDED + SECOND)
    assert "values" in await seen(get, "sam", 1)


async def test_an_extension_earlier_than_the_due_date_changes_nothing(served):
    store, set_time, get = served
    del store.extensions[(1, "eva")]
    store.extensions[(1, "sam")] = DUE - timedelta(days=1)  # due_for takes the later one
    set_time(DUE - timedelta(hours=1))
    assert await seen(get, "sam", 1) == ["shape"]
    set_time(DUE + SECOND)
    assert "values" in await seen(get, "sam", 1)


async def test_without_a_due_date_after_due_tests_are_never_shown(served):
    store, set_time, get = served
    store.assignment = assignment(due=None)
    for when in (DUE - timedelta(days=1), DUE + timedelta(days=365)):
        set_time(when)
        assert await seen(get, "sam", 1) == ["shape"]
        assert await seen(get, "eva", 2) == ["shape"]  # an extension alone sets no deadline


async def test_hidden_tests_only_when_the_teacher_opted_in(served):
    store, set_time, get = served
    set_time(DUE + timedelta(days=30))
    assert "edge" not in await seen(get, "sam", 1)
    store.show_hidden = True
    assert await seen(get, "sam", 1) == ["shape", "values", "edge"]
    set_time(DUE - timedelta(days=1))  # opted in: hidden ones even before the due date
    assert await seen(get, "sam", 1) == ["shape", "edge"]


async def test_the_students_sums_count_only_the_tests_they_see_and_no_flags(served):
    store, set_time, get = served
    set_time(DUE - timedelta(days=1))
    code, answer = await get("sam", 1)
    result = answer["result"]
    assert (result["score"], result["points"]) == (2, 2)  # "shape" only
    assert "flags" not in result and "cell_flags" not in result and "hidden" not in result
    assert all(set(t) == {"id", "status", "score", "points", "visibility", "message"}
               for t in result["tests"])  # fmt: skip
    assert answer["reason"] is None


async def test_teachers_see_every_test_at_any_time_and_the_hidden_count(served):
    store, set_time, get = served
    set_time(DUE - timedelta(days=1))
    for sid in (1, 2):
        code, answer = await get("tina", sid)
        result = answer["result"]
        assert [t["id"] for t in result["tests"]] == ["shape", "values", "edge"]
        assert (result["score"], result["points"]) == (5, 6)
        assert result["hidden"] == 1  # never shown to the student (not opted in)
        assert result["flags"] == ["background threads: 1"]


async def test_a_student_cannot_read_a_classmates_result(served):
    store, set_time, get = served
    code, _ = await get("eva", 1)
    assert code == 404


# ----------------------------------------------------------------------------- pure parts


def decision(data: StandingData, user: str, now: datetime, *, show_hidden=False):
    """What the handler does with the standing data it read (autogradeapi.py)."""
    passed = data.standing(1, user, now)
    rows = q.for_student(ROWS, show_hidden=show_hidden, due_passed=passed.deadline_passed)
    return [r.test_id for r in rows]


@pytest.mark.parametrize(
    ("user", "now", "expected"),
    [
        ("sam", DUE, ["shape"]),
        ("sam", DUE + SECOND, ["shape", "values"]),
        ("eva", DUE + SECOND, ["shape"]),
        ("eva", EXTENDED, ["shape"]),
        ("eva", EXTENDED + SECOND, ["shape", "values"]),
    ],
)
async def test_the_handlers_decision_from_the_standing_data(user, now, expected):
    data = await Store().standing_data(CODE, assignment_id=1, username=user)
    assert decision(data, user, now) == expected
    assert data.due(1, user) == (EXTENDED if user == "eva" else DUE)


def test_a_student_with_nothing_handed_in_still_has_a_deadline_that_passes():
    """The standing's ``deadline_passed`` does not depend on the versions (the result
    belongs to a version, but the deadline is the student's)."""
    data = StandingData(
        assignments={1: assignment()},
        versions={},
        submissions={},
        extensions={(1, "eva"): EXTENDED},
        choices={},
        deadlines={},
        questions={},
        question_points={},
    )
    assert data.standing(1, "sam", DUE + SECOND).deadline_passed
    assert not data.standing(1, "eva", DUE + SECOND).deadline_passed
