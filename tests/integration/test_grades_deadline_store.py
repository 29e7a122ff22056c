"""The deadline schedule, the version that counts, penalties and questions in a real,
throw-away PostgreSQL 15 (GradesStore, no hub). The snapshots themselves are
taken by the homes helper in test_grades_deadline.py; here the store's side: planned
once, claimed once by one of several processes, recorded exactly once, caught up after an
outage (still on time), re-timed by an extension granted late."""

import asyncio
import hashlib
from datetime import timedelta
from decimal import Decimal as D

import pytest

from common.errors import BadRequest, Conflict, NotFound
from services.grades import standing as st
from services.grades.store import GradesStore
from tests.integration.test_grades_store import DUE, SHA, clock, fields, pg, sql, store, submit

pytestmark = pytest.mark.integration
#: the store tests' fixtures: a throw-away PostgreSQL, a fresh database and a moved clock
FIXTURES = (pg, clock, store)

SEC = timedelta(seconds=1)
OTHER = hashlib.sha256(b"other folder").hexdigest()


async def record(store, claimed, sha=SHA, key=None):
    """What the collector does: ask first, store, record."""
    first = await store.record_deadline_snapshot(
        claimed, content_sha256=sha, size_bytes=10, files=1
    )
    if first is None or first[0] != "changed":
        return first
    return await store.record_deadline_snapshot(
        claimed,
        content_sha256=sha,
        size_bytes=10,
        files=1,
        storage_key=key or f"submissions/x/{claimed.username}/{sha[:8]}-{id(claimed)}.zip",
    )


async def plan(store, students):
    claimed = await store.claim_deadline_round(lease=60)
    assert claimed is not None
    assert await store.plan_deadlines(claimed, students) == len(students)
    return claimed


async def rows(store, assignment_id):
    return {r.username: r for r in await store.deadline_snapshots(assignment_id)}


async def test_each_student_is_planned_at_their_own_deadline_and_taken_once(store, clock):
    a = await store.create_assignment("cs101", fields(), actor="tina")
    await store.grant_extension(a.id, "sue", DUE + timedelta(days=1), actor="tina")
    clock.at = DUE - SEC
    assert await store.claim_deadline_round(lease=60) is None  # not due yet
    clock.at = DUE + SEC
    # two processes look at once: one plans
    other = GradesStore(store.db.conninfo, clock=clock)
    await other.open()
    try:
        claims = await asyncio.gather(
            store.claim_deadline_round(lease=60), other.claim_deadline_round(lease=60)
        )
        assert len([c for c in claims if c is not None]) == 1
        claimed = next(c for c in claims if c is not None)
        assert (claimed.assignment_id, claimed.due_at) == (a.id, DUE)
        assert await store.plan_deadlines(claimed, ["sam", "sue", "tom", "sam"]) == 3
        assert await store.claim_deadline_round(lease=60) is None  # planned for DUE
        planned = await rows(store, a.id)
        assert {u: r.due_at for u, r in planned.items()} == {
            "sam": DUE,
            "sue": DUE + timedelta(days=1),  # her extension
            "tom": DUE,
        }
        # the due snapshots, claimed by two processes at once: each once
        first, second = await asyncio.gather(
            store.claim_deadline_snapshots(lease=300, limit=100),
            other.claim_deadline_snapshots(lease=300, limit=100),
        )
        assert sorted(c.username for c in first + second) == ["sam", "tom"]
        claimed = {c.username: c for c in first + second}
        state, version = await record(store, claimed["sam"])
        assert state == "taken" and version.kind == st.DEADLINE
        assert (version.deadline_for, version.submitted_at, version.collected_by) == (
            DUE,
            DUE + SEC,
            None,
        )
        assert await store.deadline_missing(claimed["tom"], "no home folder for cs101")
        # again: nothing, even after the lease
        clock.at = DUE + timedelta(minutes=10)
        assert await store.claim_deadline_snapshots(lease=300, limit=100) == []
        assert await record(store, claimed["sam"], OTHER) is None  # its claim is spent
        done = await rows(store, a.id)
        assert (done["sam"].state, done["sam"].submission_id, done["sam"].taken_at) == (
            "taken",
            version.id,
            DUE + SEC,
        )
        assert (done["tom"].state, done["tom"].reason) == ("missing", "no home folder for cs101")
        assert done["sue"].state == "pending"
        # sue's own deadline
        clock.at = DUE + timedelta(days=1, seconds=2)
        (sue,) = await other.claim_deadline_snapshots(lease=300, limit=100)
        assert (sue.username, sue.due_at) == ("sue", DUE + timedelta(days=1))
    finally:
        await other.close()
    # the standings: sam's deadline version counts, on time; tom is missing with the reason
    data = await store.standing_data("cs101")
    sam = data.standing(a.id, "sam", clock.at)
    assert (sam.counting.id, sam.late, sam.state) == (version.id, False, st.HANDED_IN)
    tom = data.standing(a.id, "tom", clock.at)
    assert (tom.state, tom.missing_reason) == (st.MISSING, "no home folder for cs101")
    log = [e for e in await store.audit_entries(assignment_id=a.id) if e.actor == "grades-service"]
    assert [e.action for e in log] == [
        "deadline.plan",
        "submission.deadline",
        "deadline.snapshot",
        "deadline.missing",
    ]


async def test_a_lost_claim_is_taken_over_and_its_late_record_is_refused(store, clock):
    a = await store.create_assignment("cs101", fields(), actor="tina")
    clock.at = DUE + SEC
    await plan(store, ["sam"])
    (first,) = await store.claim_deadline_snapshots(lease=30, limit=10)
    assert await store.claim_deadline_snapshots(lease=30, limit=10) == []  # held
    clock.at += timedelta(seconds=31)  # the first taker stopped: its lease ran out
    (second,) = await store.claim_deadline_snapshots(lease=30, limit=10)
    assert second.attempts == 2
    state, version = await record(store, second)
    assert state == "taken"
    assert await record(store, first, OTHER) is None  # the first comes back: refused
    assert len(await store.user_submissions(a.id, "sam")) == 1


async def test_a_snapshot_taken_after_an_outage_still_counts_as_on_time(store, clock):
    a = await store.create_assignment("cs101", fields(late_penalty_percent=50), actor="tina")
    clock.at = DUE + timedelta(hours=2)  # the service was down for two hours
    late = await submit(store, a.id, "sam", content_sha256=OTHER)  # a Submit meanwhile: late
    await plan(store, ["sam"])
    (claimed,) = await store.claim_deadline_snapshots(lease=30, limit=10)
    state, version = await record(store, claimed)
    assert state == "taken" and version.deadline_for == DUE
    assert version.submitted_at == DUE + timedelta(hours=2)
    standing = (await store.standing_data("cs101")).standing(a.id, "sam", clock.at)
    assert (standing.counting.id, standing.late, standing.penalty_percent) == (version.id, False, 0)
    assert standing.version(late.id).late is True
    (entry,) = [
        e for e in await store.audit_entries(assignment_id=a.id) if e.action == "deadline.snapshot"
    ]
    assert entry.new["seconds_after_deadline"] == 7200


async def test_nothing_new_when_the_latest_on_time_version_holds_the_folder(store, clock):
    a = await store.create_assignment("cs101", fields(), actor="tina")
    clock.at = DUE - timedelta(hours=1)
    handed_in = await submit(store, a.id, "sam")  # SHA
    await submit(store, a.id, "sue")
    clock.at = DUE + SEC
    late = await submit(store, a.id, "sue")  # the same folder, one second late
    await plan(store, ["sam", "sue"])
    claims = {c.username: c for c in await store.claim_deadline_snapshots(lease=30, limit=10)}
    state, same = await record(store, claims["sam"])
    assert (state, same.id) == ("unchanged", handed_in.id)
    # sue's latest holds the folder but is late: a deadline version is recorded
    state, version = await record(store, claims["sue"])
    assert state == "taken" and version.version == 3 and late.version == 2
    done = await rows(store, a.id)
    assert (done["sam"].state, done["sam"].submission_id) == ("unchanged", handed_in.id)
    assert len(await store.user_submissions(a.id, "sam")) == 1


async def test_an_extension_granted_after_the_deadline_re_times_and_re_takes(store, clock):
    a = await store.create_assignment("cs101", fields(late_penalty_percent=20), actor="tina")
    clock.at = DUE + SEC
    await plan(store, ["sam"])
    (claimed,) = await store.claim_deadline_snapshots(lease=30, limit=10)
    state, at_deadline = await record(store, claimed)
    clock.at = DUE + timedelta(hours=2)
    late = await submit(store, a.id, "sam", content_sha256=OTHER)
    before = (await store.standing_data("cs101")).standing(a.id, "sam", clock.at)
    assert (before.counting.id, before.version(late.id).late) == (at_deadline.id, True)
    # the teacher grants a day: the late version becomes on time and counts
    await store.grant_extension(a.id, "sam", DUE + timedelta(days=1), actor="tina", reason="ill")
    after = (await store.standing_data("cs101")).standing(a.id, "sam", clock.at)
    assert (after.counting.id, after.late, after.deadline_passed) == (late.id, False, False)
    assert [v.on_time for v in after.versions] == [True, True]
    row = (await rows(store, a.id))["sam"]
    assert (row.state, row.due_at, row.submission_id) == ("pending", DUE + timedelta(days=1), None)
    assert await store.claim_deadline_snapshots(lease=30, limit=10) == []  # not yet
    clock.at = DUE + timedelta(days=1, seconds=1)
    (again,) = await store.claim_deadline_snapshots(lease=30, limit=10)
    state, same = await record(store, again, OTHER)
    assert (state, same.id) == ("unchanged", late.id)
    # revoked a day after the due date: the assignment's deadline again, and no copy is
    # taken for it now (it would record the day's work as on time): the late version is
    # late again, the copy taken at the due date counts
    await store.revoke_extension(a.id, "sam", actor="tina")
    assert (await rows(store, a.id))["sam"].state == "unchanged"
    assert await store.claim_deadline_snapshots(lease=30, limit=10) == []
    revoked = (await store.standing_data("cs101")).standing(a.id, "sam", clock.at)
    assert (revoked.counting.id, revoked.version(late.id).late) == (at_deadline.id, True)


async def test_an_extension_dated_in_the_past_re_times_but_takes_no_copy(store, clock):
    """Granted on Wednesday "to Tuesday" (due Monday): the versions handed in before
    Tuesday become on time, but the folder is not copied now as if on Tuesday (that copy
    would record Wednesday's work as on time). Revoking an extension that was still to
    come, after the due date, drops its snapshot the same way."""
    a = await store.create_assignment("cs101", fields(late_penalty_percent=20), actor="tina")
    clock.at = DUE + SEC
    await plan(store, ["sam", "sue"])
    claimed = await store.claim_deadline_snapshots(lease=30, limit=10)
    taken = {c.username: (await record(store, c))[1] for c in claimed}
    clock.at = DUE + timedelta(hours=2)
    late = await submit(store, a.id, "sam", content_sha256=OTHER)
    clock.at = DUE + timedelta(days=2)
    await store.grant_extension(a.id, "sam", DUE + timedelta(days=1), actor="tina", reason="ill")
    row = (await rows(store, a.id))["sam"]
    assert (row.state, row.submission_id) == ("taken", taken["sam"].id)
    assert await store.claim_deadline_snapshots(lease=30, limit=10) == []
    now = (await store.standing_data("cs101")).standing(a.id, "sam", clock.at)
    assert (now.counting.id, now.late) == (late.id, False)
    # sue: an extension to come, revoked after the due date: nothing is taken for it
    await store.grant_extension(a.id, "sue", DUE + timedelta(days=5), actor="tina")
    assert (await rows(store, a.id))["sue"].state == "pending"
    await store.revoke_extension(a.id, "sue", actor="tina")
    assert "sue" not in await rows(store, a.id)
    assert await store.claim_deadline_snapshots(lease=30, limit=10) == []
    sue = (await store.standing_data("cs101")).standing(a.id, "sue", clock.at)
    assert (sue.counting.id, sue.late) == (taken["sue"].id, False)


async def test_a_due_date_changed_plans_again(store, clock):
    a = await store.create_assignment("cs101", fields(), actor="tina")
    clock.at = DUE + SEC
    await plan(store, ["sam"])
    (claimed,) = await store.claim_deadline_snapshots(lease=30, limit=10)
    await record(store, claimed)
    later = DUE + timedelta(days=2)
    a = await store.update_assignment(a.id, fields(due_at=later.isoformat()), actor="tina")
    row = (await rows(store, a.id))["sam"]
    assert (row.state, row.due_at) == ("pending", later)
    assert await store.claim_deadline_round(lease=60) is None  # the new due date is to come
    clock.at = later + SEC
    claimed = await store.claim_deadline_round(lease=60)
    assert await store.plan_deadlines(claimed, ["sam", "new"]) == 2
    assert {u: r.due_at for u, r in (await rows(store, a.id)).items()} == {
        "sam": later,
        "new": later,
    }
    # no due date any more: nothing pending stays
    await store.update_assignment(a.id, fields(due_at=None), actor="tina")
    assert await rows(store, a.id) == {}
    # archived assignments are never taken
    b = await store.create_assignment("cs101", fields(slug="hw-2"), actor="tina")
    await store.set_archived(b.id, True, actor="tina")
    assert await store.claim_deadline_round(lease=60) is None


async def test_a_due_date_set_in_the_past_is_no_snapshot_moment(store, clock):
    """Created, or moved, to a due date long past: a copy taken now would record later
    work as on time, so no round is planned (an extension still to come is taken at its
    time); a due date of "just now" (a form of minutes) is taken at once."""
    clock.at = DUE + timedelta(hours=1)
    a = await store.create_assignment("cs101", fields(), actor="tina")
    assert await store.claim_deadline_round(lease=60) is None
    await store.grant_extension(a.id, "sue", clock.at + timedelta(days=1), actor="tina")
    assert {u: r.due_at for u, r in (await rows(store, a.id)).items()} == {
        "sue": clock.at + timedelta(days=1)
    }
    # "now", typed to the minute: within the grace, planned and taken at once
    just_now = (clock.at - 30 * SEC).isoformat()
    b = await store.create_assignment("cs101", fields(slug="hw-2", due_at=just_now), actor="tina")
    claimed = await store.claim_deadline_round(lease=60)
    assert claimed is not None and claimed.assignment_id == b.id
    assert await store.plan_deadlines(claimed, ["sam"]) == 1
    (taken,) = await store.claim_deadline_snapshots(lease=30, limit=10)
    assert (taken.assignment_id, taken.username) == (b.id, "sam")
    assert (await record(store, taken))[0] == "taken"
    # moved from the future into the past: the pending rows at it go, an extension's stays
    c = await store.create_assignment(
        "cs101", fields(slug="hw-3", due_at=(clock.at + 60 * SEC).isoformat()), actor="tina"
    )
    clock.at += 61 * SEC
    claimed = await store.claim_deadline_round(lease=60)
    assert claimed is not None and claimed.assignment_id == c.id
    await store.plan_deadlines(claimed, ["sam", "sue"])
    await store.grant_extension(c.id, "sue", clock.at + timedelta(days=1), actor="tina")
    c = await store.update_assignment(c.id, fields(slug="hw-3"), actor="tina")  # back to DUE
    assert {u: r.due_at for u, r in (await rows(store, c.id)).items()} == {
        "sue": clock.at + timedelta(days=1)
    }
    assert await store.claim_deadline_round(lease=60) is None
    assert await store.claim_deadline_snapshots(lease=30, limit=10) == []


async def test_a_failed_snapshot_waits_then_is_taken(store, clock):
    a = await store.create_assignment("cs101", fields(), actor="tina")
    clock.at = DUE + SEC
    await plan(store, ["sam"])
    (claimed,) = await store.claim_deadline_snapshots(lease=30, limit=10)
    assert await store.deadline_failed(claimed, "Docker is down", retry_after=30)
    assert (await rows(store, a.id))["sam"].reason == "Docker is down"
    assert await store.claim_deadline_snapshots(lease=30, limit=10) == []
    clock.at += timedelta(seconds=31)
    (again,) = await store.claim_deadline_snapshots(lease=30, limit=10)
    state, version = await record(store, again)
    assert state == "taken" and version.deadline_for == DUE


async def test_the_teacher_chooses_the_version_and_the_penalty_in_the_audit_log(store, clock):
    a = await store.create_assignment("cs101", fields(late_penalty_percent=20), actor="tina")
    clock.at = DUE - SEC
    v1 = await submit(store, a.id, "sam")
    clock.at = DUE + SEC
    v2 = await submit(store, a.id, "sam", content_sha256=OTHER)
    sue = await submit(store, a.id, "sue")
    await store.set_grade(v2.id, 9, "better", "tina", 0)
    with pytest.raises(NotFound, match="not one of sam's versions"):
        await store.choose_version(a.id, "sam", sue.id, actor="tina")
    await store.choose_version(a.id, "sam", v2.id, actor="tina", reason="the late one is his")
    data = await store.standing_data("cs101")
    sam = data.standing(a.id, "sam", clock.at)
    assert (sam.counting.id, sam.why, sam.late, sam.final_points) == (
        v2.id,
        "chosen",
        True,
        D("7.20"),
    )
    with pytest.raises(BadRequest, match="reason"):
        await store.set_penalty(a.id, "sam", D(0), actor="tina")
    await store.set_penalty(a.id, "sam", D(0), actor="tina", reason="doctor's note")
    sam = (await store.standing_data("cs101")).standing(a.id, "sam", clock.at)
    assert (sam.penalty_source, sam.final_points) == ("waived", D("9.00"))
    await store.set_penalty(a.id, "sam", D(5), actor="tom", reason="half the week")
    await store.set_penalty(a.id, "sam", None, actor="tina")
    await store.choose_version(a.id, "sam", None, actor="tina")
    sam = (await store.standing_data("cs101")).standing(a.id, "sam", clock.at)
    assert (sam.counting.id, sam.penalty_source) == (v1.id, "none")
    log = [
        (e.action, e.actor, e.new.get("penalty_percent"), e.new.get("reason"))
        for e in await store.audit_entries(assignment_id=a.id)
        if e.action.startswith(("penalty.", "version."))
    ]
    assert log == [
        ("version.choose", "tina", None, "the late one is his"),
        ("penalty.waive", "tina", "0", "doctor's note"),
        ("penalty.override", "tom", "5", "half the week"),
        ("penalty.clear", "tina", None, ""),
        ("version.default", "tina", None, ""),
    ]
    # a choice can only name this student's version, also by SQL
    with pytest.raises(Exception, match="foreign key"):
        await sql(
            store,
            "INSERT INTO classhub_grades.student_choices (assignment_id, username,"
            " counted_submission_id) VALUES (%s, 'sue', %s)",
            (a.id, v1.id),
        )


async def test_questions_sum_to_the_grade(store, clock):
    a = await store.create_assignment("cs101", fields(), actor="tina")
    s = await submit(store, a.id, "sam")
    a, questions = await store.set_questions(
        a.id, [{"label": "Mean", "points": 2}, {"label": "Plot", "points": "3.5"}], actor="tina"
    )
    assert [(q.key, q.points) for q in questions] == [("q1", D(2)), ("q2", D("3.5"))]
    assert a.max_points == D("5.50")
    with pytest.raises(BadRequest, match="no questions"):
        other = await store.create_assignment("cs101", fields(slug="hw-2"), actor="tina")
        await store.set_grade(
            (await submit(store, other.id, "sam")).id,
            None,
            "",
            "tina",
            0,
            question_points={"q1": 1},
        )
    with pytest.raises(BadRequest, match='Give the points for "Plot"'):
        await store.set_grade(s.id, None, "", "tina", 0, question_points={"q1": 2})
    with pytest.raises(BadRequest, match="sum of the questions"):
        await store.set_grade(s.id, 5, "", "tina", 0, question_points={"q1": 2, "q2": 2})
    grade = await store.set_grade(s.id, None, "ok", "tina", 0, question_points={"q1": 2, "q2": 2})
    assert grade.points == D(4)
    data = await store.standing_data("cs101")
    assert data.question_points[s.id] == {"q1": (D(2), "manual"), "q2": (D(2), "manual")}
    # the maximum follows the questions; a question with points given stays
    with pytest.raises(BadRequest, match="sum of its questions"):
        await store.update_assignment(a.id, fields(max_points=10), actor="tina")
    with pytest.raises(Conflict, match='give points for "Plot"'):
        await store.set_questions(a.id, [{"key": "q1", "label": "Mean", "points": 2}], actor="tina")
    with pytest.raises(BadRequest, match="cannot be worth less"):
        await store.set_questions(
            a.id,
            [
                {"key": "q1", "label": "Mean", "points": 1},
                {"key": "q2", "label": "Plot", "points": 4},
            ],
            actor="tina",
        )
    a, questions = await store.set_questions(
        a.id,
        [
            {"key": "q2", "label": "Plot it", "points": 4},
            {"key": "q1", "label": "Mean", "points": 2},
        ],
        actor="tina",
    )
    assert [q.key for q in questions] == ["q2", "q1"] and a.max_points == 6
    entry = [
        e
        for e in await store.audit_entries(assignment_id=a.id)
        if e.action == "assignment.questions"
    ][-1]
    assert entry.new["max_points"] == "6.00" and len(entry.new["questions"]) == 2
