"""GradesStore and its migrations against a real, throw-away PostgreSQL 15 (no hub)."""

import asyncio
import hashlib
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import psycopg
import pytest

from authenticator import accounts
from common import pgmigrate
from common.errors import BadRequest, Conflict, NotFound, Unavailable
from common.postgres import pg_conninfo
from harness.stack import PG_BIN, start_postgres, wait_for
from services.grades import rules
from services.grades.store import (
    LOCK_KEY,
    SCHEMA,
    GradesStore,
    StoreUnavailable,
    SubmissionRefused,
)

pytestmark = pytest.mark.integration

DUE = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
SHA = hashlib.sha256(b"snapshot").hexdigest()


class Postgres:
    def __init__(self, proc, port, url):
        self.proc, self.port, self.url = proc, port, url

    def admin_url(self, db="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def fresh_db(self) -> str:
        name = "g_" + hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:8]
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def pg_ctl(self, *args):
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), *args]
            + ["-D", str(self.proc.data_dir / "pgdata")],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def stop(self):
        self.pg_ctl("stop", "-m", "fast", "-w")
        self.proc.proc.wait(10)

    def start(self):
        self.proc.start()

        def ready():
            with psycopg.connect(self.admin_url(), connect_timeout=2):
                return True

        wait_for(ready, 30, what="postgres restarted")


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    proc, port, url = start_postgres(tmp_path_factory.mktemp("pg"))
    try:
        yield Postgres(proc, port, url)
    finally:
        try:
            Postgres(proc, port, url).pg_ctl("stop", "-m", "fast", "-w")
        except subprocess.SubprocessError:
            pass
        proc.stop()
        shutil.rmtree(proc.data_dir, ignore_errors=True)


class Clock:
    """The store's clock, moved by the tests."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> float:
        return self.at.timestamp()


@pytest.fixture
def clock():
    return Clock(DUE - timedelta(days=1))


@pytest.fixture
async def store(pg, clock):
    s = GradesStore(pg.fresh_db(), clock=clock)
    await s.open()
    yield s
    await s.close()


async def sql(store, query, params=()):
    """Direct SQL on a connection of its own (not the store's error mapping)."""
    async with await psycopg.AsyncConnection.connect(store.db.conninfo, autocommit=True) as conn:
        cur = await conn.execute(query, params)
        return await cur.fetchall() if cur.description else None


def fields(**changes):
    body = {
        "slug": "hw-1",
        "title": "Homework 1",
        "max_points": 10,
        "due_at": DUE.isoformat(),
        "late_policy": "accept",
        "late_penalty_percent": 10,
    }
    return rules.parse_assignment({**body, **changes})


async def submit(store, assignment_id, user, **kw):
    kw.setdefault("content_sha256", SHA)
    kw.setdefault("size_bytes", 123)
    kw.setdefault("files", 2)
    return await store.record_submission(assignment_id, user, **kw)


# ----------------------------------------------------------------------------- migrations


async def test_migrations_from_empty_twice_and_concurrently(pg):
    url = pg.fresh_db()
    with psycopg.connect(pg_conninfo(url)) as conn:
        conn.execute("CREATE TABLE public.users (id int)")  # the hub's tables stay alone
        conn.commit()
    stores = [GradesStore(url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))  # three sessions race for the lock
    try:
        assert await sql(
            stores[0], f"SELECT version, name FROM {SCHEMA}.schema_migrations ORDER BY 1"
        ) == [
            (1, "grades"),
            (2, "feedback_delivery"),
            (3, "release_pushes"),
            (4, "gradebook_generations"),
            (5, "deadlines_counting_questions"),
            (6, "autograde_queue"),
            (7, "autograde_cells"),
        ]
        assert await stores[1].migrate() == []  # a second run applies nothing
        await stores[0].close()
        await stores[0].open()
        tables = await sql(
            stores[1],
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema IN ('public', %s) ORDER BY 1, 2",
            (SCHEMA,),
        )
        assert tables == [
            (SCHEMA, "assignments"),
            (SCHEMA, "audit_log"),
            (SCHEMA, "autograde_configs"),
            (SCHEMA, "autograde_jobs"),
            (SCHEMA, "autograde_results"),
            (SCHEMA, "autograde_test_results"),
            (SCHEMA, "deadline_snapshots"),
            (SCHEMA, "extensions"),
            (SCHEMA, "gradebook_generations"),
            (SCHEMA, "grades"),
            (SCHEMA, "question_points"),
            (SCHEMA, "questions"),
            (SCHEMA, "schema_migrations"),
            (SCHEMA, "student_choices"),
            (SCHEMA, "submissions"),
            ("public", "users"),
        ]
        # the accounts schema beside it, through the same runner (its own lock key)
        async with stores[1]._connection() as conn:
            auth = pgmigrate.load_migrations("authenticator")
            for applied in ([m.version for m in auth], []):
                assert (
                    await pgmigrate.apply_migrations(
                        conn, schema=accounts.SCHEMA, migrations=auth, lock_key=accounts.LOCK_KEY
                    )
                    == applied
                )
            assert (
                await pgmigrate.apply_migrations(
                    conn,
                    schema=SCHEMA,
                    migrations=pgmigrate.load_migrations("services.grades"),
                    lock_key=LOCK_KEY,
                )
                == []
            )
    finally:
        for s in stores:
            await s.close()


async def test_runner_refuses_gaps_and_rolls_back_a_failing_migration(pg):
    bad = [pgmigrate.Migration(1, "a", "SELECT 1"), pgmigrate.Migration(3, "c", "SELECT 1")]
    with pytest.raises(RuntimeError, match="without gaps"):
        pgmigrate.check_versions(bad)
    url = pg_conninfo(pg.fresh_db())
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        with pytest.raises(ValueError, match="schema name"):
            await pgmigrate.apply_migrations(conn, schema="x; DROP", migrations=[], lock_key=1)
        broken = [
            pgmigrate.Migration(1, "t", "CREATE TABLE m_test.t (id int)"),
            pgmigrate.Migration(2, "oops", "CREATE TABLE m_test.t (id int)"),
        ]
        with pytest.raises(psycopg.errors.DuplicateTable):
            await pgmigrate.apply_migrations(conn, schema="m_test", migrations=broken, lock_key=7)
        cur = await conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'm_test'")
        assert await cur.fetchone() == (0,)  # all or nothing
        assert await pgmigrate.apply_migrations(
            conn, schema="m_test", migrations=broken[:1], lock_key=7
        ) == [1]


# ----------------------------------------------------------------------------- assignments


async def test_assignments(store, clock):
    a = await store.create_assignment("cs101", fields(), actor="tina")
    assert (a.class_code, a.slug, a.max_points, a.due_at, a.revision) == (
        "cs101",
        "hw-1",
        D("10.00"),
        DUE,
        1,
    )
    assert a.created_by == "tina" and a.created_at == clock.at and not a.archived
    with pytest.raises(Conflict, match='already has an assignment with the folder name "hw-1"'):
        await store.create_assignment("cs101", fields(title="Again"), actor="tina")
    other = await store.create_assignment("cs102", fields(), actor="tina")  # other class: fine
    with pytest.raises(BadRequest, match="Not a valid class code"):
        await store.create_assignment("CS 101", fields(), actor="tina")

    later = DUE + timedelta(days=7)
    hidden = await store.create_assignment(
        "cs101",
        fields(slug="hw-2", release_at=DUE.isoformat(), due_at=later.isoformat()),
        actor="tina",
    )
    assert [x.slug for x in await store.list_assignments("cs101")] == ["hw-1", "hw-2"]
    assert [x.slug for x in await store.list_assignments("cs101", released_only=True)] == ["hw-1"]
    clock.at = DUE
    assert len(await store.list_assignments("cs101", released_only=True)) == 2

    changed = await store.update_assignment(
        a.id,
        rules.parse_assignment({"title": "HW 1", "max_points": 20}, a.fields()),
        actor="tom",
        expected_revision=1,
    )
    assert (changed.title, changed.max_points, changed.revision) == ("HW 1", D("20.00"), 2)
    assert changed.updated_by == "tom"
    with pytest.raises(Conflict, match="changed meanwhile by tom"):
        await store.update_assignment(a.id, a.fields(), actor="tina", expected_revision=1)
    assert await store.get_assignment(a.id) == changed
    with pytest.raises(NotFound):
        await store.get_assignment(a.id, class_code="cs102")
    with pytest.raises(NotFound):
        await store.get_assignment(999_999)
    assert await store.find_assignment("cs102", "hw-1") == other

    archived = await store.set_archived(hidden.id, True, actor="tina")
    assert archived.archived
    assert [x.slug for x in await store.list_assignments("cs101")] == ["hw-1"]
    assert len(await store.list_assignments("cs101", include_archived=True)) == 2
    with pytest.raises(Conflict, match="perhaps archived"):  # the slug stays taken
        await store.create_assignment("cs101", fields(slug="hw-2"), actor="tina")
    assert not (await store.set_archived(hidden.id, False, actor="tina")).archived

    actions = [e.action for e in await store.audit_entries(class_code="cs101")]
    assert actions == [
        "assignment.create",
        "assignment.create",
        "assignment.update",
        "assignment.archive",
        "assignment.restore",
    ]
    update = (await store.audit_entries(assignment_id=a.id))[1]
    assert update.old["title"] == "Homework 1" and update.new["title"] == "HW 1"
    assert update.new["max_points"] == "20.00" and update.actor == "tom"


# ----------------------------------------------------------------------------- constraints


async def test_constraints_hold_even_for_direct_sql(store):
    a = await store.create_assignment("cs101", fields(), actor="tina")
    s = await submit(store, a.id, "sam")
    # points over the maximum: refused by the store and by the database itself
    with pytest.raises(BadRequest, match="10.50 points is more than this assignment's maximum"):
        await store.set_grade(s.id, "10.5", "", "tina", 0)
    with pytest.raises(psycopg.errors.CheckViolation, match="more than this assignment's"):
        await sql(
            store,
            f"INSERT INTO {SCHEMA}.grades (submission_id, points, graded_by) VALUES (%s, 11, 'x')",
            (s.id,),
        )
    grade = await store.set_grade(s.id, 10, "full marks", "tina", 0)
    with pytest.raises(psycopg.errors.CheckViolation):
        await sql(store, f"UPDATE {SCHEMA}.grades SET points = 10.01")
    with pytest.raises(psycopg.errors.CheckViolation):
        await sql(store, f"UPDATE {SCHEMA}.grades SET points = -1")
    # the maximum cannot drop below a grade given
    with pytest.raises(BadRequest, match=r"1 grade\(s\) of this assignment are above the new"):
        await store.update_assignment(
            a.id, rules.parse_assignment({"max_points": 5}, a.fields()), actor="tina"
        )
    # a duplicate version
    with pytest.raises(psycopg.errors.UniqueViolation):
        await sql(
            store,
            f"INSERT INTO {SCHEMA}.submissions (assignment_id, username, version, storage_key,"
            " content_sha256, size_bytes, files) VALUES (%s, 'sam', 1, 'k', %s, 1, 1)",
            (a.id, SHA),
        )
    for bad in (
        "version = 0",
        "content_sha256 = repeat('X', 64)",
        "size_bytes = -1",
        "late = true",  # late without being after the due date
    ):
        with pytest.raises(psycopg.errors.CheckViolation):
            await sql(store, f"UPDATE {SCHEMA}.submissions SET {bad}")  # noqa: S608
    for bad in (
        "release_at = due_at",
        "late_policy = 'x'",
        "late_policy = 'refuse'",  # with a 10 % penalty
        "max_points = 0",
        "slug = 'Bad Slug'",
    ):
        with pytest.raises(psycopg.errors.CheckViolation):
            await sql(store, f"UPDATE {SCHEMA}.assignments SET {bad}")  # noqa: S608
    # the audit log is append-only
    before = await sql(store, f"SELECT * FROM {SCHEMA}.audit_log ORDER BY id")
    assert len(before) == 3  # assignment.create, submission.create, grade.set
    for statement in (
        f"UPDATE {SCHEMA}.audit_log SET actor = 'mallory'",
        f"DELETE FROM {SCHEMA}.audit_log",
        f"TRUNCATE {SCHEMA}.audit_log",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            await sql(store, statement)
    assert await sql(store, f"SELECT * FROM {SCHEMA}.audit_log ORDER BY id") == before
    assert (await store.get_submission(s.id)).grade == grade


# ----------------------------------------------------------------------------- submissions


async def test_twenty_concurrent_submissions_get_versions_1_to_20(store):
    a = await store.create_assignment("cs101", fields(), actor="tina")
    results = await asyncio.gather(
        *(submit(store, a.id, "sam") for _ in range(20)),
        *(submit(store, a.id, "sue") for _ in range(5)),
    )
    sam = sorted(s.version for s in results if s.username == "sam")
    assert sam == list(range(1, 21))
    assert sorted(s.version for s in results if s.username == "sue") == [1, 2, 3, 4, 5]
    keys = {s.storage_key for s in results}
    assert len(keys) == 25
    assert "submissions/cs101/hw-1/sam/20/" in keys
    assert keys <= await store.all_storage_keys()  # what the orphan clean-up keeps
    rows = await sql(
        store,
        f"SELECT username, count(*), count(DISTINCT version), max(version)"
        f" FROM {SCHEMA}.submissions GROUP BY username ORDER BY username",
    )
    assert rows == [("sam", 20, 20, 20), ("sue", 5, 5, 5)]
    listed = await store.list_submissions(a.id)
    assert [(x.username, x.versions, x.latest.version) for x in listed] == [
        ("sam", 20, 20),
        ("sue", 5, 5),
    ]


async def test_deadlines_extensions_and_release(store, clock):
    refuse = await store.create_assignment(
        "cs101", fields(late_policy="refuse", late_penalty_percent=0), actor="tina"
    )
    accept = await store.create_assignment(
        "cs101", fields(slug="hw-2", late_penalty_percent="12.5"), actor="tina"
    )
    clock.at = DUE  # exactly at the instant: on time
    on_time = await submit(store, refuse.id, "sam")
    assert (on_time.late, on_time.due_at_then, on_time.submitted_at) == (False, DUE, DUE)
    clock.at = DUE + US  # one microsecond after: late
    with pytest.raises(SubmissionRefused, match="does not accept late submissions") as e:
        await submit(store, refuse.id, "sam")
    assert e.value.status_code == 403
    late = await submit(store, accept.id, "sam")
    assert (late.late, late.penalty_percent, late.due_at_then) == (True, D("12.50"), DUE)

    # an extension for sue only
    with pytest.raises(BadRequest, match="after the assignment's due date"):
        await store.grant_extension(refuse.id, "sue", DUE, actor="tina")
    ext = await store.grant_extension(
        refuse.id, "sue", DUE + timedelta(days=1), actor="tina", reason="ill"
    )
    assert (ext.username, ext.granted_by, ext.reason) == ("sue", "tina", "ill")
    sue = await submit(store, refuse.id, "sue")
    assert (sue.late, sue.due_at_then) == (False, DUE + timedelta(days=1))
    with pytest.raises(SubmissionRefused):
        await submit(store, refuse.id, "sam")
    assert [x.username for x in await store.list_extensions(refuse.id)] == ["sue"]
    clock.at = DUE + timedelta(days=1, microseconds=1)
    with pytest.raises(SubmissionRefused):
        await submit(store, refuse.id, "sue")
    # a teacher collecting after the deadline: recorded, flagged late
    collected = await submit(store, refuse.id, "sam", collected_by="tina")
    assert (collected.version, collected.late, collected.collected_by) == (2, True, "tina")
    await store.revoke_extension(refuse.id, "sue", actor="tina")
    with pytest.raises(NotFound, match="sue has no extension"):
        await store.revoke_extension(refuse.id, "sue", actor="tina")
    assert (await store.get_submission(sue.id)).due_at_then == DUE + timedelta(days=1)

    # not released yet, archived, unknown: not open
    future = await store.create_assignment(
        "cs101",
        fields(
            slug="hw-3",
            release_at=(DUE + timedelta(days=2)).isoformat(),
            due_at=(DUE + timedelta(days=9)).isoformat(),
        ),
        actor="tina",
    )
    for assignment_id in (future.id, 999_999):
        with pytest.raises(NotFound, match="not open for submissions"):
            await submit(store, assignment_id, "sam")
    clock.at = DUE + timedelta(days=2)
    assert (await submit(store, future.id, "sam")).version == 1
    await store.set_archived(future.id, True, actor="tina")
    with pytest.raises(NotFound):
        await submit(store, future.id, "sam")
    for bad in ({"content_sha256": "abc"}, {"size_bytes": -1}, {"files": True}):
        with pytest.raises(BadRequest, match="snapshot"):
            await submit(store, accept.id, "sam", **bad)
    with pytest.raises(BadRequest, match="Not a valid username"):
        await submit(store, accept.id, "Sam Smith")
    actions = [e.action for e in await store.audit_entries(assignment_id=refuse.id)]
    assert actions.count("extension.grant") == 1 and actions.count("extension.revoke") == 1
    assert actions.count("submission.collect") == 1


# ----------------------------------------------------------------------------- grades


async def test_concurrent_grading_never_loses_a_grade(store, clock):
    a = await store.create_assignment("cs101", fields(), actor="tina")
    s = await submit(store, a.id, "sam")
    graders = ["tina", "tom", "tess", "ted"]

    async def attempt(grader, points, revision):
        try:
            return await store.set_grade(s.id, points, f"by {grader}", grader, revision)
        except Conflict as e:
            return e

    # four graders start from "no grade yet"
    results = await asyncio.gather(*(attempt(g, i + 1, 0) for i, g in enumerate(graders)))
    wins = [r for r in results if not isinstance(r, Conflict)]
    assert len(wins) == 1, results
    winner = wins[0]
    assert winner.revision == 1
    for r in results:
        if isinstance(r, Conflict):
            assert f"graded meanwhile by {winner.graded_by}; reload" in str(r)
    log = await store.audit_entries(submission_id=s.id)
    grades_log = [e for e in log if e.action == "grade.set"]
    assert len(grades_log) == 1
    assert grades_log[0].actor == winner.graded_by and grades_log[0].old is None
    assert grades_log[0].new["points"] == str(winner.points)

    # again, from revision 1
    results = await asyncio.gather(*(attempt(g, 5, 1) for g in graders))
    wins = [r for r in results if not isinstance(r, Conflict)]
    assert len(wins) == 1 and wins[0].revision == 2
    current = await store.get_submission(s.id)
    assert current.grade == wins[0]
    grades_log = [
        e for e in await store.audit_entries(submission_id=s.id) if e.action == "grade.set"
    ]
    assert len(grades_log) == 2
    assert grades_log[1].old["revision"] == 1 and grades_log[1].new["revision"] == 2
    assert grades_log[1].old["points"] == str(winner.points)
    # a stale revision is refused, nothing written
    with pytest.raises(Conflict, match="graded meanwhile"):
        await store.set_grade(s.id, 1, "", "tina", 1)
    with pytest.raises(Conflict):
        await store.set_grade(s.id, 1, "", "tina", 0)
    assert (await store.get_submission(s.id)).grade == wins[0]
    with pytest.raises(NotFound):
        await store.set_grade(999_999, 1, "", "tina", 0)


async def test_return_student_view_and_gradebook(store, clock):
    hw1 = await store.create_assignment("cs101", fields(), actor="tina")
    hw2 = await store.create_assignment(
        "cs101",
        fields(slug="hw-2", due_at=(DUE + timedelta(days=7)).isoformat()),
        actor="tina",
    )
    s1 = await submit(store, hw1.id, "sam")
    clock.at = DUE + timedelta(hours=1)
    s2 = await submit(store, hw1.id, "sam")  # late: 10 % off
    await submit(store, hw1.id, "sue")
    await submit(store, hw2.id, "sam")
    await store.set_grade(s1.id, 6, "first try", "tina", 0)
    g2 = await store.set_grade(s2.id, "8.5", "better", "tina", 0)
    with pytest.raises(NotFound, match="no grade to return"):
        await store.return_grade(999_999, actor="tina")

    mine = await store.student_submissions("cs101", "sam")
    assert [(x.assignment_id, x.version) for x in mine] == [(hw1.id, 2), (hw1.id, 1), (hw2.id, 1)]
    assert all(x.grade is None for x in mine)  # nothing returned yet
    returned = await store.return_grade(s2.id, actor="tina")
    assert returned.returned_at == clock.at and returned.returned_by == "tina"
    assert returned.revision == g2.revision
    assert await store.return_grade(s2.id, actor="tom") == returned  # again: unchanged
    mine = await store.student_submissions("cs101", "sam")
    assert mine[0].grade == returned and mine[1].grade is None

    # where sam stands: the on-time version 1 counts (graded 6, not returned), not the
    # late version 2 (graded 8.5 and returned); both grades stay with their versions
    now = clock.at
    data = await store.standing_data("cs101")
    sam = data.standing(hw1.id, "sam", now)
    assert (sam.counting.id, sam.why, sam.points, sam.late, sam.returned) == (
        s1.id,
        "last_on_time",
        D("6.00"),
        False,
        False,
    )
    assert sam.version(s2.id).final_points == D("7.65")  # 8.5 less 10 % if it counted
    sue = data.standing(hw1.id, "sue", now)
    assert (sue.state, sue.late, sue.why, sue.penalty_percent) == (
        "handed_in",
        True,
        "first_late",
        10,
    )
    assert data.standing(hw2.id, "sam", now).state == "handed_in"
    assert data.standing(hw2.id, "sue", now).state == "not_handed_in_yet"  # due in a week
    # a newer late version changes nothing
    await submit(store, hw1.id, "sam")
    again = (await store.standing_data("cs101", assignment_id=hw1.id)).standing(hw1.id, "sam", now)
    assert again.counting.id == s1.id and again.points == D("6.00")
    # the lean read (the gradebook's) gives the same standing
    lean = await store.standing_data("cs101", full=False)
    assert lean.standing(hw1.id, "sam", now) == again and lean.submissions == {}
    actions = [e.action for e in await store.audit_entries(submission_id=s2.id)]
    assert actions == ["submission.create", "grade.set", "grade.return"]


async def test_one_students_versions_and_the_gradebook_rows_of_archived_work(store, clock):
    hw = await store.create_assignment("cs101", fields(), actor="tina")
    other = await store.create_assignment("cs101", fields(slug="hw-2"), actor="tina")
    v1 = await submit(store, hw.id, "sam")
    clock.at = DUE + timedelta(hours=1)
    v2 = await submit(store, hw.id, "sam")  # late
    await submit(store, other.id, "sam")  # another assignment: not in hw's list
    await submit(store, hw.id, "sue")
    await store.set_grade(v1.id, 5, "ok", "tina", 0)

    versions = await store.user_submissions(hw.id, "sam")
    assert [(x.id, x.version, x.late) for x in versions] == [(v2.id, 2, True), (v1.id, 1, False)]
    assert [x.kind for x in versions] == ["submit", "submit"]
    assert versions[0].grade is None and versions[1].grade.points == 5
    # as a student sees them: a grade only once it is returned
    assert all(
        x.grade is None
        for x in await store.user_submissions(hw.id, "sam", returned_grades_only=True)
    )
    await store.return_grade(v1.id, actor="tina")
    seen = await store.user_submissions(hw.id, "sam", returned_grades_only=True)
    assert seen[1].grade.returned and seen[0].grade is None
    assert await store.user_submissions(hw.id, "nobody") == []
    with pytest.raises(BadRequest):
        await store.user_submissions(hw.id, "Not A Name!")
    with pytest.raises(NotFound):
        await store.user_submissions(0, "sam")

    # archived work keeps its rows in the gradebook (the page marks the column archived)
    await store.set_archived(hw.id, True, actor="tina")
    with pytest.raises(Conflict, match="archived"):  # nor does a collect add versions
        await submit(store, hw.id, "sam", collected_by="tina")
    with pytest.raises(NotFound):  # for the student it is gone
        await submit(store, hw.id, "sam")
    data = await store.standing_data("cs101", full=False)
    assert set(data.versions) == {(hw.id, "sam"), (hw.id, "sue"), (other.id, "sam")}
    assert data.assignments[hw.id].archived
    # the on-time version 1 counts with its grade, not the latest (late, ungraded) one
    assert data.standing(hw.id, "sam", clock.at).points == 5
    assert len(await store.user_submissions(hw.id, "sam")) == 2


async def test_the_gradebook_generation_rises_with_every_change_the_gradebook_reads(store, clock):
    """Migration 0004's triggers: what the gradebook shows raises the class's generation
    (the service's cached gradebook is then built again); what it does not show leaves
    it; another class's changes never touch it."""
    # the migration's SQL again (safe to run twice: no trigger doubled, nothing lost)
    migrations = {m.version: m for m in pgmigrate.load_migrations("services.grades")}
    await sql(store, migrations[4].sql)
    # ... and 0005's trigger on assignments again, which 0004's replaced
    await sql(
        store, migrations[5].sql.split("-- the late policy and penalty now count at read time")[1]
    )
    seen = [await store.gradebook_generation("cs101")]

    async def rose(what):
        now = await store.gradebook_generation("cs101")
        assert now == seen[-1] + 1, what  # once per change: one trigger each
        seen.append(now)

    async def same(what):
        assert await store.gradebook_generation("cs101") == seen[-1], what

    assert seen[0] == 0  # no change yet: no row
    hw = await store.create_assignment("cs101", fields(), actor="tina")
    await rose("an assignment created")
    hw = await store.update_assignment(hw.id, fields(title="Homework one"), actor="tina")
    await rose("its title changed")
    sub = await submit(store, hw.id, "sam")
    await rose("a submission")
    await store.set_grade(sub.id, 7, "ok", "tina", 0)
    await rose("a grade")
    await store.set_grade(sub.id, 7, "better words", "tina", 1)
    await same("only the feedback changed")
    await store.return_grade(sub.id, actor="tina")
    await same("returned: the points are the same")
    await store.set_grade(sub.id, 8, "better words", "tina", 2)
    await rose("the points changed")
    await store.grant_extension(hw.id, "sue", DUE + timedelta(days=1), reason="ill", actor="tina")
    await rose("an extension: her versions are timed against it")
    await store.set_penalty(hw.id, "sam", D(0), actor="tina", reason="ill")
    await rose("a penalty waived")
    await store.choose_version(hw.id, "sam", sub.id, actor="tina")
    await rose("a version chosen")
    hw, _ = await store.set_questions(hw.id, [{"label": "Q1", "points": 10}], actor="tina")
    await rose("questions")
    await store.set_grade(sub.id, None, "", "tina", 3, question_points={"q1": 8})
    await rose("points per question given (their sum is the grade's 8: only the question)")
    await store.set_grade(sub.id, None, "", "tina", 4, question_points={"q1": 7})
    assert await store.gradebook_generation("cs101") == seen[-1] + 2  # question and grade
    seen.append(seen[-1] + 2)
    hw = await store.update_assignment(
        hw.id, fields(title="Homework one", late_penalty_percent=20, max_points=10), actor="tina"
    )
    await rose("the late penalty changed")
    await store.request_release(hw.id, actor="tina")
    await same("the release's bookkeeping")
    await store.set_archived(hw.id, True, actor="tina")
    await rose("archived (the column is marked)")
    other = await store.create_assignment("bio", fields(), actor="bo")
    await submit(store, other.id, "zed")
    await same("another class")
    assert await store.gradebook_generation("bio") >= 2
    # every writer counts, also SQL straight to the database
    await sql(store, f"UPDATE {SCHEMA}.grades SET points = 9 WHERE submission_id = %s", (sub.id,))
    await rose("points changed by direct SQL")
    await sql(store, f"DELETE FROM {SCHEMA}.grades WHERE submission_id = %s", (sub.id,))
    await rose("a grade deleted by direct SQL")


# ----------------------------------------------------------------------------- outage (last:
# it stops the module's server)


async def test_postgres_down_then_back(pg, clock):
    url = pg.fresh_db()
    store = GradesStore(url, timeout=2.0, clock=clock)
    await store.open()
    try:
        a = await store.create_assignment("cs101", fields(), actor="tina")
        pg.stop()
        for call in (
            lambda: store.list_assignments("cs101"),
            lambda: submit(store, a.id, "sam"),
            lambda: store.ping(),
        ):
            t0 = time.monotonic()
            with pytest.raises(StoreUnavailable) as e:
                await call()
            assert time.monotonic() - t0 < 2.0 + 1.5
            assert isinstance(e.value, Unavailable) and e.value.status_code == 503
            assert str(e.value) == (
                "The grades database is unreachable right now; try again in a minute."
            )
            assert e.value.detail
        cold = GradesStore(url, timeout=1.0)
        with pytest.raises(StoreUnavailable):
            await cold.open()
        pg.start()
        await cold.open()  # may be retried
        await cold.close()
        deadline = time.monotonic() + 20
        while True:  # the same store object, not re-created
            try:
                listed = await store.list_assignments("cs101")
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the pool did not reconnect"
                await asyncio.sleep(0.2)
        assert [x.id for x in listed] == [a.id]
        assert (await submit(store, a.id, "sam")).version == 1
    finally:
        await store.close()


# ----------------------------------------------------------------------------- releases


async def test_migration_0003_keeps_old_releases_and_runs_twice(pg, clock):
    """Assignments released before 0003 are not pushed again; those still to come are."""
    url = pg.fresh_db()
    migrations = pgmigrate.load_migrations("services.grades")
    async with await psycopg.AsyncConnection.connect(pg_conninfo(url), autocommit=True) as conn:
        await pgmigrate.apply_migrations(
            conn, schema=SCHEMA, migrations=migrations[:2], lock_key=LOCK_KEY
        )
        for slug, release in (
            ("old", "now() - interval '1 day'"),
            ("new", "now() + interval '1 day'"),
            ("none", "NULL"),
        ):
            await conn.execute(
                f"INSERT INTO {SCHEMA}.assignments (class_code, slug, title, max_points,"  # noqa: S608
                f" release_at, created_by) VALUES ('bio', %s, 'T', 1, {release}, 'tom')",
                (slug,),
            )
        assert await pgmigrate.apply_migrations(
            conn, schema=SCHEMA, migrations=migrations[:3], lock_key=LOCK_KEY
        ) == [3]
        query = (
            f"SELECT slug, release_rounds, release_pushed, length(release_key)"  # noqa: S608
            f" FROM {SCHEMA}.assignments ORDER BY slug"
        )
        before = await (await conn.execute(query)).fetchall()
        assert before == [("new", 1, 0, 32), ("none", 1, 1, 32), ("old", 1, 1, 32)]
        # the file itself, run a second time: nothing changes, nothing fails
        await conn.execute(migrations[2].sql)
        assert await (await conn.execute(query)).fetchall() == before
        keys = await (
            await conn.execute(f"SELECT DISTINCT release_key FROM {SCHEMA}.assignments")
        ).fetchall()  # noqa: S608
        assert len(keys) == 3  # one random key per assignment


async def test_release_is_claimed_only_when_due_and_exactly_once(store, clock):
    later = clock.at + timedelta(hours=1)
    a = await store.create_assignment(
        "bio", fields(slug="rel", release_at=later.isoformat()), actor="tom"
    )
    assert a.release_state(clock.at) == rules.RELEASE_SCHEDULED
    assert await store.claim_release(lease=60) is None  # not a moment early
    # moved further into the future before it happened: still nothing
    a = await store.update_assignment(
        a.id, fields(slug="rel", release_at=(later + timedelta(hours=1)).isoformat()), actor="tom"
    )
    clock.at = later + timedelta(minutes=1)
    assert await store.claim_release(lease=60) is None
    clock.at = later + timedelta(hours=1)
    # concurrent claimers: exactly one wins
    claims = await asyncio.gather(*(store.claim_release(lease=60) for _ in range(6)))
    won = [c for c in claims if c is not None]
    assert len(won) == 1
    claim = won[0]
    assert (claim.assignment_id, claim.class_code, claim.slug, claim.round) == (
        a.id,
        "bio",
        "rel",
        1,
    )
    assert claim.push_id.startswith("release-") and claim.push_id.endswith("-1")
    assert await store.finish_release(claim, push_id=claim.push_id, files=2) is True
    assert await store.finish_release(claim, push_id=claim.push_id, files=2) is False
    assert await store.claim_release(lease=60) is None  # exactly once
    done = await store.get_assignment(a.id)
    assert done.release_state(clock.at) == rules.RELEASE_DONE
    assert (done.release_push_id, done.release_files, done.released_at) == (
        claim.push_id,
        2,
        clock.at,
    )
    actions = [e.action for e in await store.audit_entries(assignment_id=a.id)]
    assert actions[-1] == "assignment.release_push"


async def test_a_lost_claim_is_taken_over_and_its_late_answer_ignored(store, clock):
    a = await store.create_assignment("bio", fields(slug="lease"), actor="tom")
    first = await store.claim_release(lease=30)
    assert first is not None and first.assignment_id == a.id
    assert await store.claim_release(lease=30) is None  # held
    clock.at += timedelta(seconds=31)  # the first claimer died
    second = await store.claim_release(lease=30)
    assert second is not None and second.round == first.round
    assert second.push_id == first.push_id  # the same files push: never a second one
    assert await store.finish_release(first, push_id=first.push_id, files=1) is False
    assert await store.fail_release(first, "late", retry_after=5) is False
    assert await store.finish_release(second, push_id=second.push_id, files=1) is True


async def test_a_failed_release_waits_then_is_retried_and_shows_its_error(store, clock):
    a = await store.create_assignment("bio", fields(slug="fail"), actor="tom")
    claim = await store.claim_release(lease=30)
    assert await store.fail_release(claim, "The files service is unreachable", retry_after=30)
    failed = await store.get_assignment(a.id)
    assert failed.release_state(clock.at) == rules.RELEASE_FAILED
    assert failed.release_error == "The files service is unreachable"
    assert await store.claim_release(lease=30) is None  # the loop waits...
    assert await store.claim_release(lease=30, assignment_id=a.id) is not None  # a button not
    clock.at += timedelta(seconds=31)
    # (the button's claim still holds until its lease ran out)
    clock.at += timedelta(seconds=30)
    again = await store.claim_release(lease=30)
    assert again is not None and again.round == 1
    assert await store.finish_release(again, push_id=again.push_id, files=1)
    assert (await store.get_assignment(a.id)).release_error is None


async def test_release_now_and_release_again(store, clock):
    later = clock.at + timedelta(hours=12)
    a = await store.create_assignment(
        "bio", fields(slug="now", release_at=later.isoformat()), actor="tom"
    )
    asked = await store.request_release(a.id, actor="tom")
    assert asked.release_at == clock.at and asked.release_rounds == 1  # "Release now"
    assert asked.revision == a.revision + 1
    claim = await store.claim_release(lease=30, assignment_id=a.id)
    assert claim.round == 1
    await store.finish_release(claim, push_id=claim.push_id, files=1)
    again = await store.request_release(a.id, actor="tina")  # "Release again now"
    assert again.release_rounds == 2 and again.release_at == clock.at
    assert again.release_state(clock.at) == rules.RELEASE_PENDING
    # asking twice before it is made asks for one push, not two
    assert (await store.request_release(a.id, actor="tina")).release_rounds == 2
    claim = await store.claim_release(lease=30)
    assert claim.round == 2 and claim.push_id.endswith("-2")
    # an archived assignment is never released
    b = await store.create_assignment("bio", fields(slug="gone"), actor="tom")
    await store.set_archived(b.id, True, actor="tom")
    assert await store.claim_release(lease=30, assignment_id=b.id) is None
    with pytest.raises(Conflict, match="archived"):
        await store.request_release(b.id, actor="tom")


async def test_releaser_retries_when_the_files_service_is_back(store, clock):
    from services.grades.release import Releaser
    from tests.unit.test_grades_release import FakeFiles

    a = await store.create_assignment("bio", fields(slug="retry"), actor="tom")
    files = FakeFiles(files=("start.py", "data/x.csv"))
    releaser = Releaser(store=store, files=files, retry_after=20)
    files.down = True
    assert await releaser.release_due() == 0
    shown = await store.get_assignment(a.id)
    assert shown.release_state(clock.at) == rules.RELEASE_FAILED
    assert "unreachable" in shown.release_error
    files.down = False
    assert await releaser.release_due() == 0  # not before the retry wait
    clock.at += timedelta(seconds=21)
    assert await releaser.release_due() == 1
    assert await releaser.release_due() == 0
    assert len(files.pushes) == 1 and files.posts == 1
    done = await store.get_assignment(a.id)
    assert done.release_state(clock.at) == rules.RELEASE_DONE and done.release_files == 2
