"""Assignments, extensions, submissions, grades and their audit log in PostgreSQL
(schema ``classhub_grades``, see ``migrations/``).

One :class:`GradesStore` per process holds a small psycopg connection pool. Every call is
bounded in time: the wait for a connection (``timeout``), each statement
(``statement_timeout``, ``lock_timeout``), the connection attempt (``connect_timeout``)
and the whole call on the client side. When PostgreSQL is down or too slow a call raises
:class:`StoreUnavailable` (a 503); the pool reconnects by itself once the server is back.
Constraint violations become :class:`~common.errors.Conflict` (unique) or
:class:`~common.errors.BadRequest` (check) with a sentence a teacher understands.

Times that matter (submitted, graded, returned, granted, created, audited) come from the
``clock`` given to the store (:func:`common.clock.now` by default), never from the database,
so tests can move time. Input is validated by :mod:`services.grades.rules` before it
gets here; the store re-checks identities and the constraints re-check the rest.

Concurrency:

* :meth:`GradesStore.record_submission` numbers a student's versions 1, 2, 3, ... without
  gaps or duplicates: it holds a transaction-level advisory lock on (assignment, student)
  while it reads the last version and inserts the next, and reads the assignment row
  ``FOR SHARE`` so an edit of its due date waits for (or is waited for by) submissions.
* :meth:`GradesStore.set_grade` takes the revision the grader saw; when someone graded
  the submission meanwhile it raises Conflict instead of overwriting their grade. The
  audit row is written in the same transaction as the grade.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from common import clock as hub_clock
from common import pgmigrate
from common.errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable
from services.base.names import BadName, submission_prefix, validate_code, validate_username

from . import questions as qs
from . import rules
from . import standing as st
from .rules import AssignmentFields

log = logging.getLogger(__name__)

SCHEMA = "classhub_grades"
#: pg_advisory_xact_lock key of the migrations; the bytes of "chgrades" as an integer
LOCK_KEY = int.from_bytes(b"chgrades", "big")
#: room for the submissions' per-student advisory locks (hashed with this prefix)
_SUBMISSION_LOCK = "classhub_grades.submission"
#: the actor of what the service does by itself in the audit log
SERVICE_ACTOR = "grades-service"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_DRIVER_RE = re.compile(r"^(postgres(?:ql)?)\+[A-Za-z0-9_]+://")
_S = SCHEMA


class StoreUnavailable(Unavailable):
    """PostgreSQL is unreachable or too slow; ``detail`` holds the technical cause."""

    def __init__(self, detail: str = ""):
        super().__init__(
            "The grades database is unreachable right now; try again in a minute.", detail
        )


class SubmissionRefused(Forbidden):
    """The deadline has passed and the assignment does not accept late work."""


# ----------------------------------------------------------------------------- records


def _from_row(cls, row: Mapping[str, Any], prefix: str = ""):
    return cls(**{f.name: row[prefix + f.name] for f in fields(cls) if prefix + f.name in row})


@dataclass(frozen=True)
class Assignment:
    id: int
    class_code: str
    slug: str
    title: str
    instructions: str
    max_points: Decimal
    release_at: datetime | None
    due_at: datetime | None
    late_policy: str
    late_penalty_percent: Decimal
    starting_files: tuple[str, ...]
    created_by: str
    created_at: datetime
    updated_by: str | None
    updated_at: datetime | None
    archived_at: datetime | None
    revision: int
    # the release push (migration 0003; see :meth:`GradesStore.claim_release`)
    release_rounds: int = 1
    release_pushed: int = 0
    release_push_id: str | None = None
    released_at: datetime | None = None
    release_files: int | None = None
    release_error: str | None = None
    release_retry_at: datetime | None = None
    # the due date whose deadline snapshots were planned (migration 0005)
    deadline_planned_for: datetime | None = None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    def release_state(self, now: datetime) -> str:
        return rules.release_state(
            release_at=self.release_at,
            archived=self.archived,
            rounds=self.release_rounds,
            pushed=self.release_pushed,
            released_at=self.released_at,
            files=self.release_files,
            error=self.release_error,
            now=now,
        )

    def fields(self) -> AssignmentFields:
        """The teacher-editable part, for :func:`services.grades.rules.parse_assignment`."""
        return AssignmentFields(
            slug=self.slug,
            title=self.title,
            max_points=self.max_points,
            instructions=self.instructions,
            release_at=self.release_at,
            due_at=self.due_at,
            late_policy=self.late_policy,
            late_penalty_percent=self.late_penalty_percent,
            starting_files=tuple(self.starting_files),
        )

    def released(self, now: datetime) -> bool:
        return rules.is_released(self.release_at, now)


@dataclass(frozen=True)
class ReleaseClaim:
    """One release round of an assignment, claimed for pushing (see
    :meth:`GradesStore.claim_release`)."""

    assignment_id: int
    class_code: str
    slug: str
    round: int
    key: str
    claim: str

    @property
    def push_id(self) -> str:
        return rules.release_push_id(self.key, self.round)


@dataclass(frozen=True)
class Extension:
    assignment_id: int
    username: str
    due_at: datetime
    granted_by: str
    granted_at: datetime
    reason: str


@dataclass(frozen=True)
class Grade:
    submission_id: int
    points: Decimal
    feedback: str
    graded_by: str
    graded_at: datetime
    returned_at: datetime | None
    returned_by: str | None
    #: give this back as ``expected_revision`` to change the grade
    revision: int

    @property
    def returned(self) -> bool:
        return self.returned_at is not None


@dataclass(frozen=True)
class Submission:
    id: int
    assignment_id: int
    username: str
    version: int
    submitted_at: datetime
    due_at_then: datetime | None
    late: bool
    penalty_percent: Decimal
    storage_key: str
    content_sha256: str
    size_bytes: int
    files: int
    collected_by: str | None
    #: the current grade (for a student: only once returned), None when there is none
    grade: Grade | None = None
    #: how it was taken: submit, collect, deadline (:mod:`.standing`)
    kind: str = st.SUBMIT
    #: a deadline snapshot: the deadline it stands for
    deadline_for: datetime | None = None

    def as_version(self) -> st.Version:
        """What :func:`.standing.standing` reads of it."""
        return st.Version(
            id=self.id,
            version=self.version,
            submitted_at=self.submitted_at,
            kind=self.kind,
            deadline_for=self.deadline_for,
            points=None if self.grade is None else self.grade.points,
            returned=self.grade is not None and self.grade.returned,
        )


@dataclass(frozen=True)
class LatestSubmission:
    """A student's latest version of one assignment, and how many versions they have."""

    username: str
    versions: int
    latest: Submission


@dataclass(frozen=True)
class Choice:
    """The teacher's choices for one student and assignment (migration 0005)."""

    assignment_id: int
    username: str
    #: the version chosen to count (None: the default rule)
    counted_submission_id: int | None = None
    counted_by: str | None = None
    counted_at: datetime | None = None
    counted_reason: str = ""
    #: the late penalty for this student (None: the assignment's; 0: waived)
    penalty_percent: Decimal | None = None
    penalty_by: str | None = None
    penalty_at: datetime | None = None
    penalty_reason: str = ""


@dataclass(frozen=True)
class DeadlineSnapshot:
    """A student's deadline snapshot: planned, taken, unchanged or missing."""

    assignment_id: int
    username: str
    due_at: datetime
    state: str
    taken_at: datetime | None
    submission_id: int | None
    reason: str | None
    attempts: int
    retry_at: datetime | None


@dataclass(frozen=True)
class DeadlineRound:
    """An assignment whose due date came: its deadline snapshots are to be planned."""

    assignment_id: int
    class_code: str
    slug: str
    due_at: datetime
    claim: str


@dataclass(frozen=True)
class DeadlineClaim:
    """One student's deadline snapshot, claimed for taking."""

    assignment_id: int
    class_code: str
    slug: str
    username: str
    due_at: datetime
    attempts: int
    claim: str


@dataclass
class StandingData:
    """Everything :func:`.standing.standing` reads for some students and assignments of a
    class, read together (:meth:`GradesStore.standing_data`). ``submissions`` holds the
    full rows (with grades) only when they were asked for."""

    assignments: dict[int, Assignment]
    versions: dict[tuple[int, str], list[st.Version]]
    submissions: dict[int, Submission]
    extensions: dict[tuple[int, str], datetime]
    choices: dict[tuple[int, str], Choice]
    deadlines: dict[tuple[int, str], DeadlineSnapshot]
    questions: dict[int, list[qs.Question]]
    #: submission id -> question key -> (points, source)
    question_points: dict[int, dict[str, tuple[Decimal, str]]]

    def due(self, assignment_id: int, username: str) -> datetime | None:
        """The student's deadline now."""
        a = self.assignments[assignment_id]
        return rules.due_for(a.due_at, self.extensions.get((assignment_id, username)))

    def standing(self, assignment_id: int, username: str, now: datetime) -> st.Standing:
        """Where ``username`` stands on the assignment at ``now``: THE computation."""
        a = self.assignments[assignment_id]
        key = (assignment_id, username)
        choice = self.choices.get(key)
        deadline = self.deadlines.get(key)
        return st.standing(
            self.versions.get(key, ()),
            due=self.due(assignment_id, username),
            now=now,
            penalty_percent=a.late_penalty_percent,
            penalty_override=None if choice is None else choice.penalty_percent,
            chosen_id=None if choice is None else choice.counted_submission_id,
            missing_reason=deadline.reason
            if deadline is not None and deadline.state == "missing"
            else None,
        )

    def users(self, assignment_id: int) -> set[str]:
        """Who has versions of the assignment."""
        return {u for (aid, u) in self.versions if aid == assignment_id}


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    class_code: str | None
    assignment_id: int | None
    submission_id: int | None
    username: str | None
    old: Any
    new: Any


# ----------------------------------------------------------------------------- helpers


def pg_conninfo(dsn: str, *, connect_timeout: float = 5.0) -> str:
    """A libpq conninfo string from a PostgreSQL URL (``postgresql+psycopg://`` accepted)
    or conninfo; adds ``connect_timeout`` unless set. Errors never echo the URL."""
    if not isinstance(dsn, str) or not dsn.strip():
        raise ValueError("no grades database URL given")
    dsn = _DRIVER_RE.sub(r"\1://", dsn.strip(), count=1)
    if "://" in dsn.split(" ", 1)[0] and not dsn.startswith(("postgresql://", "postgres://")):
        raise ValueError("the grades database must be PostgreSQL (a postgresql:// URL)")
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise ValueError("the grades database URL is not valid") from None
    params.setdefault("connect_timeout", str(max(1, round(connect_timeout))))
    params.setdefault("application_name", "classhub-grades")
    return make_conninfo("", **params)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to the audit log")


def _jsonb(record: Any) -> Jsonb | None:
    if record is None:
        return None
    data = asdict(record) if hasattr(record, "__dataclass_fields__") else record
    return Jsonb(data, dumps=lambda obj: json.dumps(obj, default=_json_default))


def _username(name: str) -> str:
    try:
        return validate_username(name)
    except BadName as e:
        raise BadRequest(f"Not a valid username: {e}.") from None


def _actor(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("every change needs the name of the person making it")
    return name


def _id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise NotFound(f"There is no {what} with the id {value!r}.")
    return value


def _check_snapshot(sha256: Any, size_bytes: Any, files: Any, storage_key: Any) -> str:
    sha = sha256.lower() if isinstance(sha256, str) else ""
    if not _SHA256_RE.match(sha):
        raise BadRequest("The snapshot's SHA-256 must be 64 hexadecimal digits.")
    for value, what in ((size_bytes, "size"), (files, "file count")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadRequest(f"The snapshot's {what} must be a whole number from 0.")
    if storage_key is not None and (not isinstance(storage_key, str) or not storage_key):
        raise BadRequest("The snapshot's storage key cannot be empty.")
    return sha


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


#: friendly answers for constraint violations, by constraint name
_CONSTRAINT_MESSAGES = {
    "assignments_class_slug_key": (
        "This class already has an assignment with that folder name (perhaps archived); "
        "choose another."
    ),
    "assignments_dates_check": "The due date must be after the release date.",
    "assignments_max_points_check": "The maximum points must be greater than 0, up to 10000.",
    "assignments_late_penalty_check": (
        "The late penalty must be 0 to 100 percent, and 0 when late work is refused."
    ),
    "submissions_version_key": "This version was recorded meanwhile; please submit again.",
    "submissions_storage_key_key": "Another submission is already stored at that place.",
    "grades_points_check": "Points cannot be negative.",
    "extensions_pkey": "This student has an extension already; reload.",
    "grades_pkey": "This submission was graded meanwhile; reload.",
}
# raised by our triggers with a message written for people
_TRIGGER_CONSTRAINTS = {"grades_points_max_check", "assignments_max_points_grades_check"}

_ASSIGNMENT_COLUMNS = ", ".join(f.name for f in fields(Assignment))
_SUBMISSION_COLUMNS = ", ".join(f"s.{f.name}" for f in fields(Submission) if f.name != "grade")
_SUBMISSION_X = ", ".join(f"x.{f.name}" for f in fields(Submission) if f.name != "grade")
_GRADE_COLUMNS = ", ".join(f.name for f in fields(Grade))
_GRADE_G = ", ".join(f"g.{f.name}" for f in fields(Grade))
_GRADE_AS = ", ".join(f"g.{f.name} AS g_{f.name}" for f in fields(Grade))
_EXTENSION_COLUMNS = ", ".join(f.name for f in fields(Extension))
_AUDIT_COLUMNS = ", ".join(f.name for f in fields(AuditEntry))
_CHOICE_COLUMNS = ", ".join(f.name for f in fields(Choice))
#: a deadline snapshot row that must be taken again, at a new deadline
_REPLAN = (
    "due_at = excluded.due_at, state = 'pending', taken_at = NULL, submission_id = NULL,"
    " reason = NULL, attempts = 0, retry_at = NULL, claim = NULL, claimed_until = NULL"
)
_REPLAN_FROM_X = _REPLAN.replace("excluded.due_at", "x.due")
_CHOICE_X = ", ".join(f"x.{f.name}" for f in fields(Choice))
_DEADLINE_COLUMNS = ", ".join(f.name for f in fields(DeadlineSnapshot))
_DEADLINE_X = ", ".join(f"x.{f.name}" for f in fields(DeadlineSnapshot))


def _assignment(row: Mapping[str, Any]) -> Assignment:
    data = dict(row)
    data["starting_files"] = tuple(data["starting_files"] or ())
    return _from_row(Assignment, data)


def _submission(row: Mapping[str, Any], *, grade: bool = True) -> Submission:
    g = _from_row(Grade, row, "g_") if grade and row.get("g_submission_id") is not None else None
    return replace(_from_row(Submission, row), grade=g)


async def _rows(conn, query: str, params: Any = ()) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def _row(conn, query: str, params: Any = ()) -> dict | None:
    rows = await _rows(conn, query, params)
    return rows[0] if rows else None


# ----------------------------------------------------------------------------- store


class GradesStore:
    """The grades data. Call :meth:`open` first (it also migrates)."""

    #: how long the pool keeps retrying one lost connection before it gives up on it
    reconnect_timeout = 10.0

    def __init__(
        self,
        dsn: str,
        *,
        clock: Callable[[], float] | None = None,
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 5.0,
        max_versions: int = 20,
        student_quota: int = 1 << 30,
    ):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_versions < 0 or student_quota < 0:
            raise ValueError("max_versions and student_quota cannot be negative")
        #: a student's versions of one assignment (0: no cap) and the bytes all their
        #: stored versions may take (see :func:`services.grades.rules.check_submission_limits`)
        self.max_versions = max_versions
        self.student_quota = student_quota
        self._conninfo = pg_conninfo(dsn, connect_timeout=timeout)
        self._clock = clock or (lambda: hub_clock.now())
        self._min_size, self._max_size, self._timeout = min_size, max_size, timeout
        self._pool: AsyncConnectionPool | None = None
        self._open_lock = asyncio.Lock()
        self._last_connect_error = ""

    async def __aenter__(self) -> GradesStore:
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ----- pool

    async def open(self) -> None:
        """Open the pool (without waiting for connections) and run :meth:`migrate`.

        Raises :class:`StoreUnavailable` when PostgreSQL cannot be reached within the
        timeout; the pool is closed again then and ``open()`` may be retried."""
        async with self._open_lock:
            if self._pool is None:
                await self._open()

    async def _open(self) -> None:
        store = self

        class _Connection(psycopg.AsyncConnection):
            # remembers why connecting failed, for StoreUnavailable.detail
            @classmethod
            async def connect(cls, conninfo: str = "", **kwargs):
                try:
                    conn = await super().connect(conninfo, **kwargs)
                except psycopg.OperationalError as e:
                    store._last_connect_error = _first_line(e)
                    raise
                store._last_connect_error = ""
                return conn

        pool = AsyncConnectionPool(
            self._conninfo,
            connection_class=_Connection,
            kwargs={"autocommit": True},
            min_size=self._min_size,
            max_size=self._max_size,
            timeout=self._timeout,
            reconnect_timeout=self.reconnect_timeout,
            configure=self._configure,
            check=AsyncConnectionPool.check_connection,
            name="classhub-grades",
            open=False,
        )
        await pool.open(wait=False)
        self._pool = pool
        try:
            applied = await self.migrate()
        except BaseException:
            self._pool = None
            await pool.close(timeout=self._timeout)
            raise
        if applied:
            log.info("grades schema migrated: applied %s", applied)

    @property
    def opened(self) -> bool:
        """Whether :meth:`open` succeeded (the service opens it in the background)."""
        return self._pool is not None

    async def migrate(self) -> list[int]:
        """Bring ``classhub_grades`` up to date; returns the versions applied now."""
        budget = self._timeout + pgmigrate.MIGRATION_TIMEOUT_MS / 1000
        async with self._connection(budget) as conn:
            return await pgmigrate.apply_migrations(
                conn,
                schema=SCHEMA,
                migrations=pgmigrate.load_migrations("services.grades"),
                lock_key=LOCK_KEY,
            )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close(timeout=self._timeout)

    async def ping(self) -> None:
        """A health check: raises StoreUnavailable unless PostgreSQL answers."""
        async with self._connection() as conn:
            await conn.execute("SELECT 1")

    async def _configure(self, conn: psycopg.AsyncConnection) -> None:
        ms = str(int(self._timeout * 1000))
        await conn.execute(
            "SELECT set_config('statement_timeout', %s, false),"
            " set_config('lock_timeout', %s, false),"
            " set_config('idle_in_transaction_session_timeout', %s, false),"
            " set_config('TimeZone', 'UTC', false)",
            (ms, ms, str(int(self._timeout * 4000))),
        )

    @asynccontextmanager
    async def _connection(
        self, budget: float | None = None, messages: Mapping[str, str] | None = None
    ) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection (autocommit). Database trouble becomes StoreUnavailable,
        constraint violations Conflict / BadRequest (``messages`` overrides the answers
        for some constraint names)."""
        if self._pool is None:
            # not connected yet (the service keeps trying to open it): a 503, not a 500
            raise self._unavailable("the store is not open yet")
        # pool wait + statements, enforced here too in case the network swallows packets
        budget = budget if budget is not None else 3 * self._timeout
        try:
            async with asyncio.timeout(budget), self._pool.connection() as conn:
                yield conn
        except PoolTimeout as e:
            detail = self._last_connect_error or "no free connection"
            raise self._unavailable(f"no connection within {self._timeout:g} s ({detail})") from e
        except psycopg.OperationalError as e:
            raise self._unavailable(_first_line(e)) from e
        except TimeoutError as e:
            raise self._unavailable(f"no answer within {budget:g} s") from e
        except pg_errors.UniqueViolation as e:
            raise Conflict(self._violation(e, messages, "This was changed meanwhile")) from None
        except pg_errors.CheckViolation as e:
            raise BadRequest(self._violation(e, messages, "A value is out of range")) from None
        except pg_errors.ForeignKeyViolation as e:
            raise NotFound(self._violation(e, messages, "It does not exist (any more)")) from None
        except (pg_errors.NotNullViolation, pg_errors.DataError) as e:
            raise BadRequest(f"A value is missing or not valid ({_first_line(e)}).") from None

    @staticmethod
    def _violation(e: psycopg.Error, messages: Mapping[str, str] | None, fallback: str) -> str:
        name = e.diag.constraint_name or ""
        if messages and name in messages:
            return messages[name]
        if name in _TRIGGER_CONSTRAINTS and e.diag.message_primary:
            return _sentence(e.diag.message_primary)
        return _CONSTRAINT_MESSAGES.get(name) or f"{fallback} ({name or _first_line(e)})."

    @staticmethod
    def _unavailable(detail: str) -> StoreUnavailable:
        log.warning("grades database unavailable: %s", detail)
        return StoreUnavailable(detail)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _audit(
        self,
        conn,
        *,
        at: datetime,
        actor: str,
        action: str,
        class_code: str | None,
        assignment_id: int | None,
        submission_id: int | None = None,
        username: str | None = None,
        old: Any = None,
        new: Any = None,
    ) -> None:
        await conn.execute(
            f"INSERT INTO {_S}.audit_log (at, actor, action, class_code, assignment_id,"  # noqa: S608
            " submission_id, username, old, new) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                at,
                actor,
                action,
                class_code,
                assignment_id,
                submission_id,
                username,
                _jsonb(old),
                _jsonb(new),
            ),
        )

    # ----- assignments

    async def create_assignment(
        self, class_code: str, fields: AssignmentFields, *, actor: str
    ) -> Assignment:
        """A new assignment of ``class_code``; Conflict when the class has one with the
        same slug already (archived ones included)."""
        code = _class_code(class_code)
        actor = _actor(actor)
        now = self._now()
        messages = {
            "assignments_class_slug_key": (
                f"The class {code} already has an assignment with the folder name "
                f'"{fields.slug}" (perhaps archived); choose another.'
            )
        }
        async with self._connection(messages=messages) as conn, conn.transaction():
            row = await _row(
                conn,
                f"INSERT INTO {_S}.assignments (class_code, slug, title, instructions,"  # noqa: S608
                " max_points, release_at, due_at, late_policy, late_penalty_percent,"
                " starting_files, created_by, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                f" RETURNING {_ASSIGNMENT_COLUMNS}",
                (
                    code,
                    fields.slug,
                    fields.title,
                    fields.instructions,
                    fields.max_points,
                    fields.release_at,
                    fields.due_at,
                    fields.late_policy,
                    fields.late_penalty_percent,
                    list(fields.starting_files),
                    actor,
                    now,
                ),
            )
            created = _assignment(row)
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="assignment.create",
                class_code=code,
                assignment_id=created.id,
                new=created,
            )
        log.info("assignment %s/%s created by %s", code, created.slug, actor)
        return created

    async def update_assignment(
        self,
        assignment_id: int,
        fields: AssignmentFields,
        *,
        actor: str,
        expected_revision: int | None = None,
    ) -> Assignment:
        """Replace the editable fields (the slug cannot change). With ``expected_revision``
        a change made meanwhile by someone else raises Conflict instead of being
        overwritten."""
        assignment_id = _id(assignment_id, "assignment")
        actor = _actor(actor)
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            old = await self._assignment_for_update(conn, assignment_id)
            if fields.slug != old.slug:
                raise BadRequest("The assignment's folder name cannot change.")
            if expected_revision is not None and expected_revision != old.revision:
                raise Conflict(
                    f"The assignment was changed meanwhile by {old.updated_by or old.created_by};"
                    " reload it before saving your changes."
                )
            questions = await self._questions(conn, assignment_id)
            if questions and fields.max_points != qs.total(questions):
                raise BadRequest(
                    f"This assignment's maximum is the sum of its questions' points "
                    f"({qs.total(questions).normalize():f}): change the questions instead."
                )
            row = await _row(
                conn,
                f"UPDATE {_S}.assignments SET title = %s, instructions = %s,"  # noqa: S608
                " max_points = %s, release_at = %s, due_at = %s, late_policy = %s,"
                " late_penalty_percent = %s, starting_files = %s, updated_by = %s,"
                " updated_at = %s, revision = revision + 1"
                f" WHERE id = %s RETURNING {_ASSIGNMENT_COLUMNS}",
                (
                    fields.title,
                    fields.instructions,
                    fields.max_points,
                    fields.release_at,
                    fields.due_at,
                    fields.late_policy,
                    fields.late_penalty_percent,
                    list(fields.starting_files),
                    actor,
                    now,
                    assignment_id,
                ),
            )
            new = _assignment(row)
            await self._replan_assignment(conn, old, new)
            if (old.due_at, old.late_policy, old.late_penalty_percent, old.max_points) != (
                new.due_at,
                new.late_policy,
                new.late_penalty_percent,
                new.max_points,
            ):
                await self._redeliver_feedback(conn, assignment_id, None)
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="assignment.update",
                class_code=new.class_code,
                assignment_id=new.id,
                old=old,
                new=new,
            )
        return new

    async def set_archived(self, assignment_id: int, archived: bool, *, actor: str) -> Assignment:
        """Archive (hide; nothing is deleted) or restore an assignment."""
        assignment_id = _id(assignment_id, "assignment")
        actor = _actor(actor)
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            old = await self._assignment_for_update(conn, assignment_id)
            if old.archived == bool(archived):
                return old
            row = await _row(
                conn,
                f"UPDATE {_S}.assignments SET archived_at = %s, updated_by = %s,"  # noqa: S608
                " updated_at = %s, revision = revision + 1"
                f" WHERE id = %s RETURNING {_ASSIGNMENT_COLUMNS}",
                (now if archived else None, actor, now, assignment_id),
            )
            new = _assignment(row)
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="assignment.archive" if archived else "assignment.restore",
                class_code=new.class_code,
                assignment_id=new.id,
                old={"archived_at": old.archived_at},
                new={"archived_at": new.archived_at},
            )
        return new

    async def _assignment_for_update(self, conn, assignment_id: int) -> Assignment:
        row = await _row(
            conn,
            f"SELECT {_ASSIGNMENT_COLUMNS} FROM {_S}.assignments WHERE id = %s FOR NO KEY UPDATE",  # noqa: S608
            (assignment_id,),
        )
        if row is None:
            raise NotFound(f"There is no assignment with the id {assignment_id}.")
        return _assignment(row)

    async def get_assignment(
        self, assignment_id: int, *, class_code: str | None = None
    ) -> Assignment:
        """The assignment (archived too); NotFound when missing or of another class."""
        assignment_id = _id(assignment_id, "assignment")
        async with self._connection() as conn:
            row = await _row(
                conn,
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM {_S}.assignments WHERE id = %s",  # noqa: S608
                (assignment_id,),
            )
        if row is None or (class_code is not None and row["class_code"] != class_code):
            raise NotFound(f"There is no assignment with the id {assignment_id} in this class.")
        return _assignment(row)

    async def find_assignment(self, class_code: str, slug: str) -> Assignment | None:
        """The assignment of ``class_code`` with that folder name (archived too), or None."""
        async with self._connection() as conn:
            row = await _row(
                conn,
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM {_S}.assignments"  # noqa: S608
                " WHERE class_code = %s AND slug = %s",
                (class_code, slug),
            )
        return _assignment(row) if row else None

    async def list_assignments(
        self, class_code: str, *, include_archived: bool = False, released_only: bool = False
    ) -> list[Assignment]:
        """The class's assignments by due date (undated last), then slug. ``released_only``:
        what a student sees now (released, not archived)."""
        where = ["class_code = %s"]
        params: list[Any] = [class_code]
        if not include_archived or released_only:
            where.append("archived_at IS NULL")
        if released_only:
            where.append("(release_at IS NULL OR release_at <= %s)")
            params.append(self._now())
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM {_S}.assignments"  # noqa: S608
                f" WHERE {' AND '.join(where)} ORDER BY due_at NULLS LAST, slug",
                params,
            )
        return [_assignment(r) for r in rows]

    # ----- extensions

    async def grant_extension(
        self, assignment_id: int, username: str, due_at: datetime, *, actor: str, reason: str = ""
    ) -> Extension:
        """Give ``username`` a due date of their own (replacing an earlier extension).
        ``due_at`` comes from :func:`services.grades.rules.parse_extension_due`. Granted
        after the deadline, it re-times the versions already taken (on time or late is
        decided against the current deadline) and their deadline snapshot is taken again
        at the new deadline."""
        assignment_id = _id(assignment_id, "assignment")
        name = _username(username)
        actor = _actor(actor)
        if not isinstance(due_at, datetime) or due_at.utcoffset() is None:
            raise BadRequest("The extension's due date must include a time zone.")
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            assignment = await self._assignment_for_update(conn, assignment_id)
            if assignment.due_at is not None and due_at <= assignment.due_at:
                raise BadRequest("An extension's due date must be after the assignment's due date.")
            old = await _row(
                conn,
                f"SELECT {_EXTENSION_COLUMNS} FROM {_S}.extensions"  # noqa: S608
                " WHERE assignment_id = %s AND username = %s FOR UPDATE",
                (assignment_id, name),
            )
            row = await _row(
                conn,
                f"INSERT INTO {_S}.extensions AS e (assignment_id, username, due_at, granted_by,"  # noqa: S608
                " granted_at, reason) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (assignment_id, username) DO UPDATE SET due_at = excluded.due_at,"
                " granted_by = excluded.granted_by, granted_at = excluded.granted_at,"
                f" reason = excluded.reason RETURNING {_EXTENSION_COLUMNS}",
                (assignment_id, name, due_at, actor, now, reason or ""),
            )
            ext = _from_row(Extension, row)
            await self._replan_student(conn, assignment, name)
            await self._redeliver_feedback(conn, assignment_id, name)
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="extension.grant",
                class_code=assignment.class_code,
                assignment_id=assignment_id,
                username=name,
                old=_from_row(Extension, old) if old else None,
                new=ext,
            )
        return ext

    async def revoke_extension(self, assignment_id: int, username: str, *, actor: str) -> None:
        """Remove ``username``'s extension (NotFound when there is none): the assignment's
        due date applies to them again, also to the versions they handed in (on time or
        late is decided against the current deadline). When the assignment's deadline
        has passed and their snapshot was still to come at the extension's, it is taken
        at once and stands for the assignment's deadline."""
        assignment_id = _id(assignment_id, "assignment")
        name = _username(username)
        actor = _actor(actor)
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            assignment = await self._assignment_for_update(conn, assignment_id)
            row = await _row(
                conn,
                f"DELETE FROM {_S}.extensions WHERE assignment_id = %s AND username = %s"  # noqa: S608
                f" RETURNING {_EXTENSION_COLUMNS}",
                (assignment_id, name),
            )
            if row is None:
                raise NotFound(f"{name} has no extension for this assignment.")
            await self._replan_student(conn, assignment, name)
            await self._redeliver_feedback(conn, assignment_id, name)
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="extension.revoke",
                class_code=assignment.class_code,
                assignment_id=assignment_id,
                username=name,
                old=_from_row(Extension, row),
            )

    async def list_extensions(self, assignment_id: int) -> list[Extension]:
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"SELECT {_EXTENSION_COLUMNS} FROM {_S}.extensions"  # noqa: S608
                " WHERE assignment_id = %s ORDER BY username",
                (_id(assignment_id, "assignment"),),
            )
        return [_from_row(Extension, r) for r in rows]

    # ----- submissions

    async def record_submission(
        self,
        assignment_id: int,
        username: str,
        *,
        content_sha256: str,
        size_bytes: int,
        files: int,
        storage_key: str | None = None,
        collected_by: str | None = None,
    ) -> Submission:
        """Record ``username``'s next version (1, 2, 3, ...) of the assignment, now.

        The due date that applies then (the student's extension included) is recorded
        with it, and whether it was late then (for the record: on time or late is decided
        when it is read, against the student's current deadline, :mod:`.standing`). A
        student cannot submit to an archived or unreleased assignment (NotFound) nor, when
        late work is refused, after the deadline (:class:`SubmissionRefused`); a teacher
        collecting (``collected_by``) may, but not from an archived one (Conflict).
        ``storage_key`` defaults to :func:`services.base.names.submission_prefix` of the
        version."""
        assignment_id = _id(assignment_id, "assignment")
        name = _username(username)
        if collected_by is not None:
            collected_by = _actor(collected_by)
        sha = _check_snapshot(content_sha256, size_bytes, files, storage_key)
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            row = await _row(
                conn,
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM {_S}.assignments WHERE id = %s FOR SHARE",  # noqa: S608
                (assignment_id,),
            )
            assignment = _assignment(row) if row else None
            if assignment is None or (
                collected_by is None
                and not rules.visible_to_student(assignment.release_at, assignment.archived, now)
            ):
                raise NotFound("This assignment does not exist or is not open for submissions.")
            if assignment.archived:  # a collect that began before it was archived
                raise Conflict(
                    f"The assignment {assignment.slug!r} is archived: it takes no submissions."
                )
            due = await self._due(conn, assignment, name)
            outcome = rules.classify(
                now, due, assignment.late_policy, assignment.late_penalty_percent
            )
            if outcome.status == rules.REFUSED and collected_by is None:
                raise SubmissionRefused(
                    f"The deadline was {due.isoformat() if due else '?'}; this assignment "
                    "does not accept late submissions."
                )
            submission = await self._insert_version(
                conn,
                assignment,
                name,
                now=now,
                due=due,
                late=outcome.late,
                penalty=outcome.penalty_percent,
                sha=sha,
                size_bytes=size_bytes,
                files=files,
                storage_key=storage_key,
                kind=st.COLLECT if collected_by else st.SUBMIT,
                collected_by=collected_by,
                limits=collected_by is None,
            )
        log.info(
            "%s submitted version %d of assignment %d%s",
            name,
            submission.version,
            assignment_id,
            " (late)" if submission.late else "",
        )
        return submission

    async def _due(self, conn, assignment: Assignment, name: str) -> datetime | None:
        """The student's deadline now (their extension read FOR SHARE: a grant waits)."""
        ext = await _row(
            conn,
            f"SELECT due_at FROM {_S}.extensions"  # noqa: S608
            " WHERE assignment_id = %s AND username = %s FOR SHARE",
            (assignment.id, name),
        )
        return rules.due_for(assignment.due_at, ext["due_at"] if ext else None)

    async def _insert_version(
        self,
        conn,
        assignment: Assignment,
        name: str,
        *,
        now: datetime,
        due: datetime | None,
        late: bool,
        penalty: Decimal,
        sha: str,
        size_bytes: int,
        files: int,
        storage_key: str | None,
        kind: str,
        collected_by: str | None = None,
        deadline_for: datetime | None = None,
        limits: bool = True,
    ) -> Submission:
        """Insert the student's next version in the caller's transaction (the version cap
        and quota checked when ``limits``), with its audit row."""
        # one submitter at a time per student (their quota spans every assignment),
        # then per (assignment, student): the next statements' snapshot sees every
        # version committed before the locks were granted
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"{_SUBMISSION_LOCK}:user:{name}",),
        )
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"{_SUBMISSION_LOCK}:{assignment.id}:{name}",),
        )
        (version,) = await (
            await conn.execute(
                f"SELECT coalesce(max(version), 0) + 1 FROM {_S}.submissions"  # noqa: S608
                " WHERE assignment_id = %s AND username = %s",
                (assignment.id, name),
            )
        ).fetchone()
        versions, used = await self._usage(conn, assignment.id, name)
        rules.check_submission_limits(
            versions=versions,
            max_versions=self.max_versions,
            used_bytes=used,
            new_bytes=size_bytes,
            quota=self.student_quota,
            collected=not limits,
        )
        key = storage_key or submission_prefix(
            assignment.class_code, assignment.slug, name, version
        )
        row = await _row(
            conn,
            f"INSERT INTO {_S}.submissions AS s (assignment_id, username, version,"  # noqa: S608
            " submitted_at, due_at_then, late, penalty_percent, storage_key,"
            " content_sha256, size_bytes, files, collected_by, kind, deadline_for)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            f" RETURNING {_SUBMISSION_COLUMNS}",
            (
                assignment.id,
                name,
                version,
                now,
                due,
                late,
                penalty,
                key,
                sha,
                size_bytes,
                files,
                collected_by,
                kind,
                deadline_for,
            ),
        )
        submission = _submission(row, grade=False)
        action = {
            st.SUBMIT: "submission.create",
            st.COLLECT: "submission.collect",
            st.DEADLINE: "submission.deadline",
        }[kind]
        await self._audit(
            conn,
            at=now,
            actor=collected_by or (SERVICE_ACTOR if kind == st.DEADLINE else name),
            action=action,
            class_code=assignment.class_code,
            assignment_id=assignment.id,
            submission_id=submission.id,
            username=name,
            new={
                "version": version,
                "late": submission.late,
                "penalty_percent": submission.penalty_percent,
                "storage_key": key,
                "content_sha256": sha,
                **({"deadline_for": deadline_for} if deadline_for else {}),
            },
        )
        return submission

    @staticmethod
    async def _usage(conn, assignment_id: int, name: str) -> tuple[int, int]:
        (versions, used) = await (
            await conn.execute(
                "SELECT count(*) FILTER (WHERE assignment_id = %s),"  # noqa: S608
                f" coalesce(sum(size_bytes), 0) FROM {_S}.submissions"
                " WHERE username = %s",
                (assignment_id, name),
            )
        ).fetchone()
        return int(versions), int(used)

    async def submission_usage(self, assignment_id: int, username: str) -> tuple[int, int]:
        """``(versions of this assignment, bytes of all stored versions)`` of a student."""
        async with self._connection() as conn:
            return await self._usage(conn, _id(assignment_id, "assignment"), _username(username))

    async def check_can_submit(self, assignment_id: int, username: str) -> None:
        """Refuse, before a snapshot is taken, a student at their version cap or whose
        quota is full (:func:`services.grades.rules.check_submission_limits`)."""
        versions, used = await self.submission_usage(assignment_id, username)
        rules.check_submission_limits(
            versions=versions,
            max_versions=self.max_versions,
            used_bytes=used,
            new_bytes=0,
            quota=self.student_quota,
            collected=False,
        )

    async def student_usage(self, username: str) -> int:
        """The bytes all of a student's stored versions take (their submission quota)."""
        async with self._connection() as conn:
            (used,) = await (
                await conn.execute(
                    f"SELECT coalesce(sum(size_bytes), 0) FROM {_S}.submissions"  # noqa: S608
                    " WHERE username = %s",
                    (_username(username),),
                )
            ).fetchone()
        return int(used)

    async def get_submission(self, submission_id: int) -> Submission:
        """One submission with its current grade (returned or not)."""
        submission_id = _id(submission_id, "submission")
        async with self._connection() as conn:
            row = await _row(
                conn,
                f"SELECT {_SUBMISSION_COLUMNS}, {_GRADE_AS} FROM {_S}.submissions s"  # noqa: S608
                f" LEFT JOIN {_S}.grades g ON g.submission_id = s.id WHERE s.id = %s",
                (submission_id,),
            )
        if row is None:
            raise NotFound(f"There is no submission with the id {submission_id}.")
        return _submission(row)

    async def list_submissions(self, assignment_id: int) -> list[LatestSubmission]:
        """Per student (by username): their latest version with its grade, and how many
        versions they handed in."""
        assignment_id = _id(assignment_id, "assignment")
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"SELECT DISTINCT ON (s.username) {_SUBMISSION_COLUMNS}, {_GRADE_AS},"  # noqa: S608
                " count(*) OVER (PARTITION BY s.username) AS versions"
                f" FROM {_S}.submissions s LEFT JOIN {_S}.grades g ON g.submission_id = s.id"
                " WHERE s.assignment_id = %s ORDER BY s.username, s.version DESC",
                (assignment_id,),
            )
        return [LatestSubmission(r["username"], r["versions"], _submission(r)) for r in rows]

    async def latest_submission(self, assignment_id: int, username: str) -> Submission | None:
        """The student's latest version of the assignment (without its grade), or None."""
        async with self._connection() as conn:
            row = await _row(
                conn,
                f"SELECT {_SUBMISSION_COLUMNS} FROM {_S}.submissions s"  # noqa: S608
                " WHERE s.assignment_id = %s AND s.username = %s ORDER BY s.version DESC LIMIT 1",
                (_id(assignment_id, "assignment"), _username(username)),
            )
        return _submission(row, grade=False) if row else None

    async def all_storage_keys(self) -> set[str]:
        """Every recorded snapshot's key (for the clean-up of snapshots without a record)."""
        async with self._connection() as conn, conn.cursor() as cur:
            await cur.execute(f"SELECT storage_key FROM {_S}.submissions")  # noqa: S608
            return {key for (key,) in await cur.fetchall()}

    async def student_submissions(self, class_code: str, username: str) -> list[Submission]:
        """A student's own versions in the class's assignments they can see (released,
        not archived), newest first per assignment. A grade is included only once it has
        been returned."""
        name = _username(username)
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"SELECT {_SUBMISSION_COLUMNS}, {_GRADE_AS} FROM {_S}.submissions s"  # noqa: S608
                f" JOIN {_S}.assignments a ON a.id = s.assignment_id"
                f" LEFT JOIN {_S}.grades g ON g.submission_id = s.id"
                "  AND g.returned_at IS NOT NULL"
                " WHERE s.username = %s AND a.class_code = %s AND a.archived_at IS NULL"
                " AND (a.release_at IS NULL OR a.release_at <= %s)"
                " ORDER BY a.due_at NULLS LAST, a.slug, s.version DESC",
                (name, class_code, self._now()),
            )
        return [_submission(r) for r in rows]

    async def user_submissions(
        self, assignment_id: int, username: str, *, returned_grades_only: bool = False
    ) -> list[Submission]:
        """Every version ``username`` handed in for the assignment, newest first, each
        with its current grade (``returned_grades_only``: only a returned grade, as a
        student sees it)."""
        assignment_id = _id(assignment_id, "assignment")
        name = _username(username)
        returned = " AND g.returned_at IS NOT NULL" if returned_grades_only else ""
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"SELECT {_SUBMISSION_COLUMNS}, {_GRADE_AS} FROM {_S}.submissions s"  # noqa: S608
                f" LEFT JOIN {_S}.grades g ON g.submission_id = s.id{returned}"
                " WHERE s.assignment_id = %s AND s.username = %s ORDER BY s.version DESC",
                (assignment_id, name),
            )
        return [_submission(r) for r in rows]

    # ----- standing (services/grades/standing.py)

    async def standing_data(
        self,
        class_code: str,
        *,
        assignment_id: int | None = None,
        username: str | None = None,
        full: bool = True,
    ) -> StandingData:
        """What :meth:`StandingData.standing` needs for the class's assignments (or one),
        for every student who has anything (or one), read in one transaction (one
        consistent view). ``full``: the versions' whole rows with their grades too (the
        pages); without it only what the standing reads (the gradebook of a large class)."""
        where = ["a.class_code = %(code)s"]
        params: dict[str, Any] = {"code": class_code}
        if assignment_id is not None:
            where.append("a.id = %(aid)s")
            params["aid"] = _id(assignment_id, "assignment")
        by_user = ""
        if username is not None:
            by_user = " AND x.username = %(user)s"
            params["user"] = _username(username)
        scope = " AND ".join(where)
        data = StandingData({}, {}, {}, {}, {}, {}, {}, {})
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            for row in await _rows(
                conn,
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM {_S}.assignments a WHERE {scope}",  # noqa: S608
                params,
            ):
                data.assignments[row["id"]] = _assignment(row)
            if not data.assignments:
                return data
            join = f"JOIN {_S}.assignments a ON a.id = x.assignment_id WHERE {scope}{by_user}"
            if full:
                rows = await _rows(
                    conn,
                    f"SELECT {_SUBMISSION_X},"  # noqa: S608
                    f" {_GRADE_AS} FROM {_S}.submissions x"
                    f" LEFT JOIN {_S}.grades g ON g.submission_id = x.id {join}"
                    " ORDER BY x.assignment_id, x.username, x.version",
                    params,
                )
                for row in rows:
                    sub = _submission(row)
                    data.submissions[sub.id] = sub
                    data.versions.setdefault((sub.assignment_id, sub.username), []).append(
                        sub.as_version()
                    )
            else:
                async with conn.cursor() as cur:
                    await cur.execute(
                        "SELECT x.id, x.assignment_id, x.username, x.version, x.submitted_at,"  # noqa: S608
                        " x.kind, x.deadline_for, g.points, g.returned_at IS NOT NULL"
                        f" FROM {_S}.submissions x"
                        f" LEFT JOIN {_S}.grades g ON g.submission_id = x.id {join}",
                        params,
                    )
                    for sid, aid, user, n, at, kind, dfor, points, returned in await cur.fetchall():
                        data.versions.setdefault((aid, user), []).append(
                            st.Version(sid, n, at, kind, dfor, points, bool(returned))
                        )
            for row in await _rows(
                conn,
                f"SELECT x.assignment_id, x.username, x.due_at FROM {_S}.extensions x {join}",  # noqa: S608
                params,
            ):
                data.extensions[(row["assignment_id"], row["username"])] = row["due_at"]
            for row in await _rows(
                conn,
                f"SELECT {_CHOICE_X} FROM {_S}.student_choices x {join}",  # noqa: S608
                params,
            ):
                data.choices[(row["assignment_id"], row["username"])] = _from_row(Choice, row)
            for row in await _rows(
                conn,
                f"SELECT {_DEADLINE_X} FROM {_S}.deadline_snapshots x {join}",  # noqa: S608
                params,
            ):
                data.deadlines[(row["assignment_id"], row["username"])] = _from_row(
                    DeadlineSnapshot, row
                )
            for row in await _rows(
                conn,
                "SELECT x.assignment_id, x.key, x.label, x.points, x.position, x.origin"  # noqa: S608
                f" FROM {_S}.questions x JOIN {_S}.assignments a ON a.id = x.assignment_id"
                f" WHERE {scope} ORDER BY x.assignment_id, x.position",
                params,
            ):
                data.questions.setdefault(row.pop("assignment_id"), []).append(qs.Question(**row))
            if data.questions:
                async with conn.cursor() as cur:
                    await cur.execute(
                        "SELECT q.submission_id, q.question_key, q.points, q.source"  # noqa: S608
                        f" FROM {_S}.question_points q"
                        f" JOIN {_S}.submissions x ON x.id = q.submission_id {join}",
                        params,
                    )
                    for sid, key, points, source in await cur.fetchall():
                        data.question_points.setdefault(sid, {})[key] = (points, source)
        return data

    async def choose_version(
        self,
        assignment_id: int,
        username: str,
        submission_id: int | None,
        *,
        actor: str,
        reason: str = "",
    ) -> Choice:
        """Make ``submission_id`` (a version of this student and assignment) the one that
        counts for them, or (None) go back to the default rule. Audited; a returned grade's
        feedback is delivered again (it says which version counts)."""
        assignment_id = _id(assignment_id, "assignment")
        name = _username(username)
        actor = _actor(actor)
        if submission_id is not None:
            submission_id = _id(submission_id, "submission")
        now = self._now()
        messages = {
            "student_choices_counted_submission_id_assignment_id_username_fkey": (
                f"That version is not one of {name}'s versions of this assignment."
            )
        }
        async with self._connection(messages=messages) as conn, conn.transaction():
            assignment = await self._assignment_for_update(conn, assignment_id)
            old = await self._choice_for_update(conn, assignment_id, name)
            if submission_id is not None:
                found = await _row(
                    conn,
                    f"SELECT id FROM {_S}.submissions"  # noqa: S608
                    " WHERE id = %s AND assignment_id = %s AND username = %s",
                    (submission_id, assignment_id, name),
                )
                if found is None:
                    raise NotFound(
                        f"That version is not one of {name}'s versions of this assignment."
                    )
            row = await _row(
                conn,
                f"INSERT INTO {_S}.student_choices AS c (assignment_id, username,"  # noqa: S608
                " counted_submission_id, counted_by, counted_at, counted_reason)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (assignment_id, username) DO UPDATE SET"
                " counted_submission_id = excluded.counted_submission_id,"
                " counted_by = excluded.counted_by, counted_at = excluded.counted_at,"
                f" counted_reason = excluded.counted_reason RETURNING {_CHOICE_COLUMNS}",
                (assignment_id, name, submission_id, actor, now, reason or ""),
            )
            new = _from_row(Choice, row)
            await self._redeliver_feedback(conn, assignment_id, name)
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="version.choose" if submission_id is not None else "version.default",
                class_code=assignment.class_code,
                assignment_id=assignment_id,
                submission_id=submission_id,
                username=name,
                old={"counted_submission_id": old.counted_submission_id if old else None},
                new={"counted_submission_id": submission_id, "reason": reason or ""},
            )
        return new

    async def set_penalty(
        self,
        assignment_id: int,
        username: str,
        percent: Decimal | None,
        *,
        actor: str,
        reason: str = "",
    ) -> Choice:
        """The late penalty for this student: ``percent`` (0 waives it) with a reason (one
        is required), or None: the assignment's again. Audited (``penalty.waive``,
        ``penalty.override``, ``penalty.clear``); returned feedback is delivered again."""
        assignment_id = _id(assignment_id, "assignment")
        name = _username(username)
        actor = _actor(actor)
        if percent is not None and not reason.strip():
            raise BadRequest("Say why the late penalty is waived or changed (a reason).")
        why = reason.strip() if percent is not None else ""
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            assignment = await self._assignment_for_update(conn, assignment_id)
            old = await self._choice_for_update(conn, assignment_id, name)
            row = await _row(
                conn,
                f"INSERT INTO {_S}.student_choices AS c (assignment_id, username,"  # noqa: S608
                " penalty_percent, penalty_by, penalty_at, penalty_reason)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (assignment_id, username) DO UPDATE SET"
                " penalty_percent = excluded.penalty_percent, penalty_by = excluded.penalty_by,"
                " penalty_at = excluded.penalty_at, penalty_reason = excluded.penalty_reason"
                f" RETURNING {_CHOICE_COLUMNS}",
                (assignment_id, name, percent, actor, now, why),
            )
            new = _from_row(Choice, row)
            await self._redeliver_feedback(conn, assignment_id, name)
            action = (
                "penalty.clear"
                if percent is None
                else "penalty.waive"
                if percent == 0
                else "penalty.override"
            )
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action=action,
                class_code=assignment.class_code,
                assignment_id=assignment_id,
                username=name,
                old={
                    "penalty_percent": old.penalty_percent if old else None,
                    "reason": old.penalty_reason if old else "",
                    "assignment_penalty_percent": assignment.late_penalty_percent,
                },
                new={
                    "penalty_percent": percent,
                    "reason": new.penalty_reason,
                    "assignment_penalty_percent": assignment.late_penalty_percent,
                },
            )
        return new

    async def _choice_for_update(self, conn, assignment_id: int, name: str) -> Choice | None:
        row = await _row(
            conn,
            f"SELECT {_CHOICE_COLUMNS} FROM {_S}.student_choices"  # noqa: S608
            " WHERE assignment_id = %s AND username = %s FOR UPDATE",
            (assignment_id, name),
        )
        return _from_row(Choice, row) if row else None

    @staticmethod
    async def _redeliver_feedback(conn, assignment_id: int, name: str | None) -> None:
        """The returned feedback of the student (None: every student) of the assignment is
        written into their home again: what it says (on time or late, the penalty, which
        version counts) may have changed."""
        who = "" if name is None else " AND s.username = %(user)s"
        await conn.execute(
            f"UPDATE {_S}.grades g SET feedback_delivered_at = NULL"  # noqa: S608
            f" FROM {_S}.submissions s WHERE s.id = g.submission_id"
            f" AND s.assignment_id = %(aid)s{who}"
            " AND g.returned_at IS NOT NULL AND g.feedback_delivered_at IS NOT NULL",
            {"aid": assignment_id, "user": name},
        )

    # ----- questions

    async def questions(self, assignment_id: int) -> list[qs.Question]:
        async with self._connection() as conn:
            return await self._questions(conn, _id(assignment_id, "assignment"))

    @staticmethod
    async def _questions(conn, assignment_id: int) -> list[qs.Question]:
        rows = await _rows(
            conn,
            f"SELECT key, label, points, position, origin FROM {_S}.questions"  # noqa: S608
            " WHERE assignment_id = %s ORDER BY position",
            (assignment_id,),
        )
        return [qs.Question(**r) for r in rows]

    async def set_questions(
        self,
        assignment_id: int,
        body: Any,
        *,
        actor: str,
        expected_revision: int | None = None,
    ) -> tuple[Assignment, list[qs.Question]]:
        """Replace the assignment's questions (validated by
        :func:`.questions.parse_questions`); the assignment's maximum becomes their sum.
        A question that has points given cannot be removed, nor be worth less than the
        points given (Conflict / BadRequest). Audited as ``assignment.questions``."""
        assignment_id = _id(assignment_id, "assignment")
        actor = _actor(actor)
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            old = await self._assignment_for_update(conn, assignment_id)
            if expected_revision is not None and expected_revision != old.revision:
                raise Conflict(
                    f"The assignment was changed meanwhile by {old.updated_by or old.created_by};"
                    " reload it before saving the questions."
                )
            current = await self._questions(conn, assignment_id)
            new = qs.parse_questions(body, current)
            keys = {q.key for q in new}
            given = await _rows(
                conn,
                "SELECT q.question_key, count(*) AS n, max(q.points) AS top"  # noqa: S608
                f" FROM {_S}.question_points q JOIN {_S}.submissions s ON s.id = q.submission_id"
                " WHERE s.assignment_id = %s GROUP BY q.question_key",
                (assignment_id,),
            )
            labels = {q.key: q.label for q in current}
            for g in given:
                if g["question_key"] not in keys:
                    label = labels.get(g["question_key"], g["question_key"])
                    raise Conflict(
                        f'{g["n"]} grade(s) give points for "{label}": a question with points'
                        " given cannot be removed."
                    )
                q = next(x for x in new if x.key == g["question_key"])
                if q.points < g["top"]:
                    raise BadRequest(
                        f'A grade gives {g["top"]} points for "{q.label}": it cannot be worth'
                        " less than that."
                    )
            await conn.execute(
                f"DELETE FROM {_S}.questions WHERE assignment_id = %s",  # noqa: S608
                (assignment_id,),
            )
            for q in new:
                await conn.execute(
                    f"INSERT INTO {_S}.questions (assignment_id, key, position, label, points,"  # noqa: S608
                    " origin) VALUES (%s, %s, %s, %s, %s, %s)",
                    (assignment_id, q.key, q.position, q.label, q.points, q.origin),
                )
            maximum = qs.total(new) if new else old.max_points
            row = await _row(
                conn,
                f"UPDATE {_S}.assignments SET max_points = %s, updated_by = %s,"  # noqa: S608
                " updated_at = %s, revision = revision + 1"
                f" WHERE id = %s RETURNING {_ASSIGNMENT_COLUMNS}",
                (maximum, actor, now, assignment_id),
            )
            assignment = _assignment(row)
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="assignment.questions",
                class_code=assignment.class_code,
                assignment_id=assignment_id,
                old={"questions": [asdict(q) for q in current], "max_points": old.max_points},
                new={"questions": [asdict(q) for q in new], "max_points": assignment.max_points},
            )
        return assignment, new

    # ----- grades

    async def set_grade(
        self,
        submission_id: int,
        points: Decimal | int | float | str | None,
        feedback: str,
        actor: str,
        expected_revision: int,
        *,
        question_points: Any = None,
    ) -> Grade:
        """Grade a submission version (the grade stays with this version). ``expected_revision``
        is the revision of the grade the grader saw (0: it had none); when it changed
        meanwhile this raises Conflict naming who graded it, and nothing is written.
        BadRequest when ``points`` exceeds the assignment's maximum. The audit row (old and
        new grade) is written in the same transaction.

        An assignment with questions is graded per question: ``question_points``
        (``{"q1": 2, ...}``, :func:`.questions.parse_question_points`) are stored with the
        source ``manual`` and ``points`` becomes their sum (a ``points`` given as well must
        be that sum)."""
        submission_id = _id(submission_id, "submission")
        value = None if points is None else rules.parse_points(points)
        text = rules.parse_feedback(feedback)
        actor = _actor(actor)
        if isinstance(expected_revision, bool) or not isinstance(expected_revision, int):
            raise BadRequest("The grade's expected revision must be a whole number (0: none).")
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            sub = await _row(
                conn,
                f"SELECT s.assignment_id, s.username, a.class_code FROM {_S}.submissions s"  # noqa: S608
                f" JOIN {_S}.assignments a ON a.id = s.assignment_id WHERE s.id = %s",
                (submission_id,),
            )
            if sub is None:
                raise NotFound(f"There is no submission with the id {submission_id}.")
            old_row = await _row(
                conn,
                f"SELECT {_GRADE_COLUMNS} FROM {_S}.grades WHERE submission_id = %s FOR UPDATE",  # noqa: S608
                (submission_id,),
            )
            old = _from_row(Grade, old_row) if old_row else None
            questions = await self._questions(conn, sub["assignment_id"])
            per_question: dict[str, Decimal] = {}
            if questions:
                existing = {
                    r["question_key"]: r["points"]
                    for r in await _rows(
                        conn,
                        f"SELECT question_key, points FROM {_S}.question_points"  # noqa: S608
                        " WHERE submission_id = %s",
                        (submission_id,),
                    )
                }
                per_question = qs.parse_question_points(
                    {} if question_points is None else question_points, questions, existing
                )
                total = sum(per_question.values(), Decimal(0))
                if value is not None and value != total:
                    raise BadRequest(
                        f"The points are the sum of the questions' points ({total}), not {value}."
                    )
                value = total
            elif question_points is not None:
                raise BadRequest("This assignment has no questions: give the points only.")
            if value is None:
                raise BadRequest("Give the points.")
            if old is None and expected_revision == 0:
                row = await _row(
                    conn,
                    f"INSERT INTO {_S}.grades (submission_id, points, feedback, graded_by,"  # noqa: S608
                    " graded_at) VALUES (%s, %s, %s, %s, %s)"
                    f" ON CONFLICT (submission_id) DO NOTHING RETURNING {_GRADE_COLUMNS}",
                    (submission_id, value, text, actor, now),
                )
                if row is None:  # graded by someone else since our SELECT
                    old_row = await _row(
                        conn,
                        f"SELECT {_GRADE_COLUMNS} FROM {_S}.grades WHERE submission_id = %s",  # noqa: S608
                        (submission_id,),
                    )
                    raise _graded_meanwhile(_from_row(Grade, old_row) if old_row else None)
            elif old is None or old.revision != expected_revision:
                raise _graded_meanwhile(old)
            else:
                row = await _row(
                    conn,
                    f"UPDATE {_S}.grades SET points = %s, feedback = %s, graded_by = %s,"  # noqa: S608
                    " graded_at = %s, revision = revision + 1, feedback_delivered_at = NULL"
                    f" WHERE submission_id = %s RETURNING {_GRADE_COLUMNS}",
                    (value, text, actor, now, submission_id),
                )
            grade = _from_row(Grade, row)
            for key, given in per_question.items():
                await conn.execute(
                    f"INSERT INTO {_S}.question_points AS q (submission_id, question_key,"  # noqa: S608
                    " points, source, given_by, given_at) VALUES (%s, %s, %s, 'manual', %s, %s)"
                    " ON CONFLICT (submission_id, question_key) DO UPDATE SET"
                    " points = excluded.points, source = excluded.source,"
                    " given_by = excluded.given_by, given_at = excluded.given_at"
                    " WHERE q.points <> excluded.points",
                    (submission_id, key, given, actor, now),
                )
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="grade.set",
                class_code=sub["class_code"],
                assignment_id=sub["assignment_id"],
                submission_id=submission_id,
                username=sub["username"],
                old=old,
                new={**asdict(grade), **({"questions": per_question} if per_question else {})},
            )
        return grade

    async def return_grade(self, submission_id: int, *, actor: str) -> Grade:
        """Show the grade to the student (sets ``returned_at``; audited). Returning it
        again changes nothing. NotFound when the submission has no grade yet. A grade
        changed after its return stays returned: the student sees the new one."""
        submission_id = _id(submission_id, "submission")
        actor = _actor(actor)
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            row = await _row(
                conn,
                f"SELECT {_GRADE_G}, s.assignment_id, s.username, a.class_code"  # noqa: S608
                f" FROM {_S}.grades g JOIN {_S}.submissions s ON s.id = g.submission_id"
                f" JOIN {_S}.assignments a ON a.id = s.assignment_id"
                " WHERE g.submission_id = %s FOR UPDATE OF g",
                (submission_id,),
            )
            if row is None:
                raise NotFound("This submission has no grade to return yet.")
            old = _from_row(Grade, row)
            if old.returned:
                return old
            new_row = await _row(
                conn,
                f"UPDATE {_S}.grades SET returned_at = %s, returned_by = %s"  # noqa: S608
                f" WHERE submission_id = %s RETURNING {_GRADE_COLUMNS}",
                (now, actor, submission_id),
            )
            grade = _from_row(Grade, new_row)
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="grade.return",
                class_code=row["class_code"],
                assignment_id=row["assignment_id"],
                submission_id=submission_id,
                username=row["username"],
                old={"returned_at": None},
                new={"returned_at": grade.returned_at, "revision": grade.revision},
            )
        return grade

    async def gradebook_generation(self, class_code: str) -> int:
        """The class's gradebook generation: raised by triggers on every change that the
        gradebook reads (migration 0004), 0 before the first. Equal numbers mean equal
        gradebooks (for the same roster)."""
        async with self._connection() as conn, conn.cursor() as cur:
            await cur.execute(
                f"SELECT generation FROM {_S}.gradebook_generations WHERE class_code = %s",  # noqa: S608
                (class_code,),
            )
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def gradebook_key(self, class_code: str) -> tuple[int, int]:
        """``(generation, deadlines passed)``: the gradebook also changes when time passes
        a deadline of the class (an assignment's or an extension's), as "not handed in
        yet" becomes "missing". Equal keys mean equal gradebooks (for the same roster)."""
        now = self._now()
        async with self._connection() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT coalesce((SELECT generation"  # noqa: S608
                f" FROM {_S}.gradebook_generations WHERE class_code = %(code)s), 0),"
                f" (SELECT count(*) FROM {_S}.assignments"
                " WHERE class_code = %(code)s AND due_at < %(now)s)"
                f" + (SELECT count(*) FROM {_S}.extensions e JOIN {_S}.assignments a"
                " ON a.id = e.assignment_id WHERE a.class_code = %(code)s"
                " AND e.due_at < %(now)s)",
                {"code": class_code, "now": now},
            )
            generation, passed = await cur.fetchone()
        return int(generation), int(passed)

    async def undelivered_feedback(self, limit: int = 200) -> list[dict]:
        """Returned grades whose feedback is not yet in the student's home: ``username``,
        ``class_code``, ``assignment_id``, ``slug``, ``title``, ``max_points``,
        ``submission_id``, ``version``, ``points``, ``feedback``, ``revision`` (on time or
        late, the penalty and which version counts come from the student's standing)."""
        async with self._connection() as conn:
            return await _rows(
                conn,
                "SELECT s.username, a.class_code, a.id AS assignment_id, a.slug, a.title,"  # noqa: S608
                " a.max_points, s.id AS submission_id, s.version,"
                " g.points, g.feedback, g.revision"
                f" FROM {_S}.grades g JOIN {_S}.submissions s ON s.id = g.submission_id"
                f" JOIN {_S}.assignments a ON a.id = s.assignment_id"
                " WHERE g.returned_at IS NOT NULL AND g.feedback_delivered_at IS NULL"
                " ORDER BY g.returned_at LIMIT %s",
                (limit,),
            )

    async def feedback_delivered(self, submission_id: int, revision: int) -> bool:
        """Mark the feedback of ``revision`` delivered (not if the grade changed since)."""
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"UPDATE {_S}.grades SET feedback_delivered_at = %s"  # noqa: S608
                " WHERE submission_id = %s AND revision = %s RETURNING submission_id",
                (self._now(), _id(submission_id, "submission"), revision),
            )
        return bool(rows)

    # ----- release pushes

    async def claim_release(
        self, *, lease: float, assignment_id: int | None = None
    ) -> ReleaseClaim | None:
        """Claim the next assignment whose release push is due (or, with
        ``assignment_id``, that one if it is due) for ``lease`` seconds; None when nothing
        is due or another caller holds the claim.

        Due: a round asked for is not made (``release_pushed < release_rounds``), not
        archived, ``release_at`` NULL or past, no live claim, no retry wait (ignored for
        ``assignment_id``: a teacher's button retries at once). One UPDATE with ``FOR
        UPDATE SKIP LOCKED``: two callers never claim the same round."""
        now = self._now()
        claim = secrets.token_hex(16)
        only = "" if assignment_id is None else " AND id = %(id)s"
        wait = (
            ""
            if assignment_id is not None
            else (" AND (release_retry_at IS NULL OR release_retry_at <= %(now)s)")
        )
        due = (
            "release_pushed < release_rounds AND archived_at IS NULL"
            " AND (release_at IS NULL OR release_at <= %(now)s)"
            " AND (release_claimed_until IS NULL OR release_claimed_until < %(now)s)"
        )
        async with self._connection() as conn:
            row = await _row(
                conn,
                f"UPDATE {_S}.assignments SET release_claim = %(claim)s,"  # noqa: S608
                " release_claimed_until = %(until)s"
                f" WHERE id = (SELECT id FROM {_S}.assignments WHERE {due}{wait}{only}"
                " ORDER BY release_at NULLS FIRST, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                f" AND {due}"
                " RETURNING id, class_code, slug, release_pushed + 1 AS round, release_key",
                {
                    "claim": claim,
                    "until": now + timedelta(seconds=lease),
                    "now": now,
                    "id": assignment_id,
                },
            )
        if row is None:
            return None
        return ReleaseClaim(
            assignment_id=row["id"],
            class_code=row["class_code"],
            slug=row["slug"],
            round=row["round"],
            key=row["release_key"],
            claim=claim,
        )

    async def finish_release(self, claim: ReleaseClaim, *, push_id: str | None, files: int) -> bool:
        """Record the round ``claim`` made: the files push ``push_id`` with ``files``
        starting files (None and 0: there were none, nothing was pushed). False when the
        claim was lost meanwhile (it ran out; another caller made the round)."""
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            row = await _row(
                conn,
                f"UPDATE {_S}.assignments SET"  # noqa: S608
                " release_pushed = GREATEST(release_pushed, %s), release_push_id = %s,"
                " released_at = %s, release_files = %s, release_error = NULL,"
                " release_retry_at = NULL, release_claim = NULL, release_claimed_until = NULL"
                " WHERE id = %s AND release_claim = %s RETURNING class_code",
                (claim.round, push_id, now, files, claim.assignment_id, claim.claim),
            )
            if row is None:
                return False
            await self._audit(
                conn,
                at=now,
                actor=SERVICE_ACTOR,
                action="assignment.release_push",
                class_code=row["class_code"],
                assignment_id=claim.assignment_id,
                new={"round": claim.round, "push_id": push_id, "files": files},
            )
        return True

    async def fail_release(self, claim: ReleaseClaim, error: str, *, retry_after: float) -> bool:
        """Record why the round ``claim`` failed; it is due again ``retry_after`` seconds
        later. False when the claim was lost meanwhile."""
        now = self._now()
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"UPDATE {_S}.assignments SET release_error = %s,"  # noqa: S608
                " release_retry_at = %s, release_claim = NULL, release_claimed_until = NULL"
                " WHERE id = %s AND release_claim = %s RETURNING id",
                (
                    (error or "unknown error")[:500],
                    now + timedelta(seconds=retry_after),
                    claim.assignment_id,
                    claim.claim,
                ),
            )
        return bool(rows)

    async def request_release(self, assignment_id: int, *, actor: str) -> Assignment:
        """A teacher's "Release now" / "Release again now": a release time still to come
        becomes now, and when every round asked for was made one more is asked for (a
        re-push, for files added since). The retry wait of a failed round is dropped.
        Conflict for an archived assignment."""
        assignment_id = _id(assignment_id, "assignment")
        actor = _actor(actor)
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            old = await self._assignment_for_update(conn, assignment_id)
            if old.archived:
                raise Conflict("The assignment is archived: restore it before releasing it.")
            release_at = old.release_at if old.release_at and old.release_at <= now else now
            if old.release_at is None:
                release_at = None
            rounds = old.release_rounds
            if old.release_pushed >= rounds:
                rounds = old.release_pushed + 1
            row = await _row(
                conn,
                f"UPDATE {_S}.assignments SET release_at = %s, release_rounds = %s,"  # noqa: S608
                " release_retry_at = NULL, updated_by = %s, updated_at = %s,"
                " revision = revision + 1"
                f" WHERE id = %s RETURNING {_ASSIGNMENT_COLUMNS}",
                (release_at, rounds, actor, now, assignment_id),
            )
            new = _assignment(row)
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="assignment.release",
                class_code=new.class_code,
                assignment_id=new.id,
                old={"release_at": old.release_at, "release_rounds": old.release_rounds},
                new={"release_at": new.release_at, "release_rounds": new.release_rounds},
            )
        return new

    # ----- deadline snapshots (services/grades/deadlines.py)

    async def claim_deadline_round(self, *, lease: float) -> DeadlineRound | None:
        """Claim the next assignment whose due date came and whose deadline snapshots are
        not planned for it yet (not archived; no live claim; not in a retry wait), for
        ``lease`` seconds; None when there is none. ``FOR UPDATE SKIP LOCKED``: two callers
        never claim the same one."""
        now = self._now()
        claim = secrets.token_hex(16)
        due = (
            "due_at IS NOT NULL AND due_at <= %(now)s AND archived_at IS NULL"
            " AND deadline_planned_for IS DISTINCT FROM due_at"
            " AND (deadline_claimed_until IS NULL OR deadline_claimed_until < %(now)s)"
        )
        async with self._connection() as conn:
            row = await _row(
                conn,
                f"UPDATE {_S}.assignments SET deadline_claim = %(claim)s,"  # noqa: S608
                " deadline_claimed_until = %(until)s"
                f" WHERE id = (SELECT id FROM {_S}.assignments WHERE {due}"
                " ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                f" AND {due} RETURNING id, class_code, slug, due_at",
                {"claim": claim, "until": now + timedelta(seconds=lease), "now": now},
            )
        if row is None:
            return None
        return DeadlineRound(row["id"], row["class_code"], row["slug"], row["due_at"], claim)

    async def plan_deadlines(self, claimed: DeadlineRound, students: list[str]) -> int | None:
        """Plan a deadline snapshot for each of ``students`` (the class's roster now) at
        their own deadline (an extension included), and record the round as planned for
        its due date; None when the claim was lost or the due date changed meanwhile (the
        round is planned again). A student planned before keeps their row unless their
        deadline moved (then it is taken again at the new one)."""
        now = self._now()
        names = sorted({_username(u) for u in students})
        async with self._connection() as conn, conn.transaction():
            mine = await _row(
                conn,
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM {_S}.assignments"  # noqa: S608
                " WHERE id = %s AND deadline_claim = %s AND due_at = %s FOR NO KEY UPDATE",
                (claimed.assignment_id, claimed.claim, claimed.due_at),
            )
            if mine is None:
                return None
            if names:
                await conn.execute(
                    f"INSERT INTO {_S}.deadline_snapshots AS d (assignment_id, username, due_at)"  # noqa: S608
                    " SELECT %(aid)s, u.name, GREATEST(%(due)s, e.due_at)"
                    " FROM unnest(%(names)s::text[]) AS u(name)"
                    f" LEFT JOIN {_S}.extensions e"
                    " ON e.assignment_id = %(aid)s AND e.username = u.name"
                    f" ON CONFLICT (assignment_id, username) DO UPDATE SET {_REPLAN}"
                    " WHERE d.due_at <> excluded.due_at",
                    {"aid": claimed.assignment_id, "due": claimed.due_at, "names": names},
                )
            await conn.execute(
                f"UPDATE {_S}.assignments SET deadline_planned_for = due_at,"  # noqa: S608
                " deadline_claim = NULL, deadline_claimed_until = NULL WHERE id = %s",
                (claimed.assignment_id,),
            )
            await self._audit(
                conn,
                at=now,
                actor=SERVICE_ACTOR,
                action="deadline.plan",
                class_code=claimed.class_code,
                assignment_id=claimed.assignment_id,
                new={"due_at": claimed.due_at, "students": len(names)},
            )
        return len(names)

    async def postpone_deadline_round(self, claimed: DeadlineRound, retry_after: float) -> None:
        """The round failed (the hub did not answer with the roster): due again
        ``retry_after`` seconds later."""
        now = self._now()
        async with self._connection() as conn:
            await conn.execute(
                f"UPDATE {_S}.assignments SET deadline_claim = NULL,"  # noqa: S608
                " deadline_claimed_until = %s WHERE id = %s AND deadline_claim = %s",
                (now + timedelta(seconds=retry_after), claimed.assignment_id, claimed.claim),
            )

    async def claim_deadline_snapshots(self, *, lease: float, limit: int) -> list[DeadlineClaim]:
        """Claim up to ``limit`` deadline snapshots that are due (pending, their deadline
        came, no live claim, no retry wait, the assignment not archived), oldest deadline
        first, for ``lease`` seconds. ``FOR UPDATE SKIP LOCKED``: another caller gets
        others, never the same."""
        now = self._now()
        claim = secrets.token_hex(16)
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"UPDATE {_S}.deadline_snapshots d SET claim = %(claim)s,"  # noqa: S608
                " claimed_until = %(until)s, attempts = d.attempts + 1"
                f" FROM {_S}.assignments a"
                " WHERE a.id = d.assignment_id AND (d.assignment_id, d.username) IN ("
                f" SELECT p.assignment_id, p.username FROM {_S}.deadline_snapshots p"
                f" JOIN {_S}.assignments pa ON pa.id = p.assignment_id"
                " WHERE p.state = 'pending' AND p.due_at <= %(now)s"
                " AND pa.archived_at IS NULL"
                " AND (p.claimed_until IS NULL OR p.claimed_until < %(now)s)"
                " AND (p.retry_at IS NULL OR p.retry_at <= %(now)s)"
                " ORDER BY p.due_at, p.assignment_id, p.username LIMIT %(limit)s"
                " FOR UPDATE OF p SKIP LOCKED)"
                " RETURNING d.assignment_id, a.class_code, a.slug, d.username, d.due_at,"
                " d.attempts",
                {
                    "claim": claim,
                    "until": now + timedelta(seconds=lease),
                    "now": now,
                    "limit": max(1, int(limit)),
                },
            )
        return [
            DeadlineClaim(
                r["assignment_id"],
                r["class_code"],
                r["slug"],
                r["username"],
                r["due_at"],
                r["attempts"],
                claim,
            )
            for r in rows
        ]

    async def _claimed(self, conn, claimed: DeadlineClaim) -> DeadlineSnapshot | None:
        row = await _row(
            conn,
            f"SELECT {_DEADLINE_COLUMNS} FROM {_S}.deadline_snapshots"  # noqa: S608
            " WHERE assignment_id = %s AND username = %s AND claim = %s AND state = 'pending'"
            " AND due_at = %s FOR UPDATE",
            (claimed.assignment_id, claimed.username, claimed.claim, claimed.due_at),
        )
        return _from_row(DeadlineSnapshot, row) if row else None

    async def _unchanged_version(self, conn, claimed: DeadlineClaim, sha: str) -> Submission | None:
        """The student's latest version when it holds ``sha`` and is on time against this
        deadline (nothing new to take), else None."""
        row = await _row(
            conn,
            f"SELECT {_SUBMISSION_COLUMNS} FROM {_S}.submissions s"  # noqa: S608
            " WHERE s.assignment_id = %s AND s.username = %s ORDER BY s.version DESC LIMIT 1",
            (claimed.assignment_id, claimed.username),
        )
        if row is None:
            return None
        latest = _submission(row, grade=False)
        if latest.content_sha256 != sha or not st.is_on_time(latest.as_version(), claimed.due_at):
            return None
        return latest

    async def record_deadline_snapshot(
        self,
        claimed: DeadlineClaim,
        *,
        content_sha256: str,
        size_bytes: int,
        files: int,
        storage_key: str | None = None,
    ) -> tuple[str, Submission | None] | None:
        """Record the snapshot taken for ``claimed`` and end its row, in ONE transaction
        that first checks the claim is still ours: ``("taken", the new version)``, or
        ``("unchanged", the latest version)`` when that is on time and holds the same
        content (nothing is recorded; the caller removes what it stored, if anything);
        None when the claim was lost (another caller took it: the caller removes what it
        stored). Without ``storage_key`` (nothing stored yet) a snapshot that is not
        unchanged is only reported, ``("changed", None)``: store it, then call again.

        The new version is a deadline snapshot: it stands for the deadline (``due_at``),
        on time against it by construction however late it was taken (``submitted_at``);
        no version cap or quota applies."""
        sha = _check_snapshot(content_sha256, size_bytes, files, storage_key)
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            if await self._claimed(conn, claimed) is None:
                return None
            row = await _row(
                conn,
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM {_S}.assignments WHERE id = %s FOR SHARE",  # noqa: S608
                (claimed.assignment_id,),
            )
            assignment = _assignment(row)
            if assignment.archived:
                return None
            unchanged = await self._unchanged_version(conn, claimed, sha)
            if unchanged is not None:
                state, submission = "unchanged", unchanged
            elif storage_key is None:
                return "changed", None
            else:
                state = "taken"
                submission = await self._insert_version(
                    conn,
                    assignment,
                    claimed.username,
                    now=now,
                    due=claimed.due_at,
                    late=False,
                    penalty=Decimal(0),
                    sha=sha,
                    size_bytes=size_bytes,
                    files=files,
                    storage_key=storage_key,
                    kind=st.DEADLINE,
                    deadline_for=claimed.due_at,
                    limits=False,
                )
            await self._end_deadline(conn, claimed, state, now, submission.id, None)
            await self._audit(
                conn,
                at=now,
                actor=SERVICE_ACTOR,
                action="deadline.snapshot",
                class_code=claimed.class_code,
                assignment_id=claimed.assignment_id,
                submission_id=submission.id,
                username=claimed.username,
                new={
                    "state": state,
                    "due_at": claimed.due_at,
                    "taken_at": now,
                    "version": submission.version,
                    "seconds_after_deadline": round((now - claimed.due_at).total_seconds(), 3),
                },
            )
        return state, submission

    async def deadline_missing(self, claimed: DeadlineClaim, reason: str) -> bool:
        """Nothing could be taken for ``claimed`` (no home, no assignment folder, a
        folder refused): recorded as missing with ``reason``. False when the claim was
        lost."""
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            if await self._claimed(conn, claimed) is None:
                return False
            await self._end_deadline(conn, claimed, "missing", now, None, reason[:500])
            await self._audit(
                conn,
                at=now,
                actor=SERVICE_ACTOR,
                action="deadline.missing",
                class_code=claimed.class_code,
                assignment_id=claimed.assignment_id,
                username=claimed.username,
                new={"due_at": claimed.due_at, "taken_at": now, "reason": reason[:500]},
            )
        return True

    async def deadline_failed(self, claimed: DeadlineClaim, error: str, retry_after: float) -> bool:
        """Taking ``claimed`` failed (the helper, the S3 store): tried again
        ``retry_after`` seconds later; the row keeps the error. False when lost."""
        now = self._now()
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"UPDATE {_S}.deadline_snapshots SET reason = %s, retry_at = %s,"  # noqa: S608
                " claim = NULL, claimed_until = NULL"
                " WHERE assignment_id = %s AND username = %s AND claim = %s AND state = 'pending'"
                " RETURNING username",
                (
                    (error or "unknown error")[:500],
                    now + timedelta(seconds=retry_after),
                    claimed.assignment_id,
                    claimed.username,
                    claimed.claim,
                ),
            )
        return bool(rows)

    @staticmethod
    async def _end_deadline(conn, claimed, state, now, submission_id, reason) -> None:
        await conn.execute(
            f"UPDATE {_S}.deadline_snapshots SET state = %s, taken_at = %s,"  # noqa: S608
            " submission_id = %s, reason = %s, retry_at = NULL, claim = NULL,"
            " claimed_until = NULL WHERE assignment_id = %s AND username = %s",
            (state, now, submission_id, reason, claimed.assignment_id, claimed.username),
        )

    async def deadline_snapshots(self, assignment_id: int) -> list[DeadlineSnapshot]:
        """The assignment's deadline snapshots, by username."""
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"SELECT {_DEADLINE_COLUMNS} FROM {_S}.deadline_snapshots"  # noqa: S608
                " WHERE assignment_id = %s ORDER BY username",
                (_id(assignment_id, "assignment"),),
            )
        return [_from_row(DeadlineSnapshot, r) for r in rows]

    @staticmethod
    async def _replan_student(conn, assignment: Assignment, name: str) -> None:
        """The student's deadline moved (an extension granted or revoked): once the
        assignment's snapshots are planned, their row follows their new deadline (taken
        again at it when it differs)."""
        if assignment.deadline_planned_for is None or assignment.due_at is None:
            return
        await conn.execute(
            f"INSERT INTO {_S}.deadline_snapshots AS d (assignment_id, username, due_at)"  # noqa: S608
            " SELECT %(aid)s, %(user)s, GREATEST(%(due)s, e.due_at)"
            f" FROM (SELECT 1) one LEFT JOIN {_S}.extensions e"
            " ON e.assignment_id = %(aid)s AND e.username = %(user)s"
            f" ON CONFLICT (assignment_id, username) DO UPDATE SET {_REPLAN}"
            " WHERE d.due_at <> excluded.due_at",
            {"aid": assignment.id, "user": name, "due": assignment.due_at},
        )

    @staticmethod
    async def _replan_assignment(conn, old: Assignment, new: Assignment) -> None:
        """The assignment's due date changed: every planned row follows it (with the
        student's extension), and the round plans again at the new due date (students
        added since get theirs). No due date any more: nothing pending stays."""
        if old.due_at == new.due_at:
            return
        if new.due_at is None:
            await conn.execute(
                f"DELETE FROM {_S}.deadline_snapshots"  # noqa: S608
                " WHERE assignment_id = %s AND state = 'pending'",
                (new.id,),
            )
        else:
            await conn.execute(
                f"UPDATE {_S}.deadline_snapshots d SET {_REPLAN_FROM_X}"  # noqa: S608
                " FROM (SELECT d2.username, GREATEST(%(due)s, e.due_at) AS due"
                f" FROM {_S}.deadline_snapshots d2 LEFT JOIN {_S}.extensions e"
                " ON e.assignment_id = d2.assignment_id AND e.username = d2.username"
                " WHERE d2.assignment_id = %(aid)s) x"
                " WHERE d.assignment_id = %(aid)s AND d.username = x.username"
                " AND d.due_at <> x.due",
                {"aid": new.id, "due": new.due_at},
            )
        await conn.execute(
            f"UPDATE {_S}.assignments SET deadline_planned_for = NULL WHERE id = %s",  # noqa: S608
            (new.id,),
        )

    # ----- audit log

    async def audit_entries(
        self,
        *,
        class_code: str | None = None,
        assignment_id: int | None = None,
        submission_id: int | None = None,
        limit: int = 500,
    ) -> list[AuditEntry]:
        """The audit log, oldest first, filtered by any of the given keys."""
        where, params = [], []
        for column, value in (
            ("class_code", class_code),
            ("assignment_id", assignment_id),
            ("submission_id", submission_id),
        ):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"SELECT {_AUDIT_COLUMNS} FROM {_S}.audit_log{clause}"  # noqa: S608
                " ORDER BY id LIMIT %s",
                (*params, max(1, min(int(limit), 10_000))),
            )
        return [_from_row(AuditEntry, r) for r in rows]


def _class_code(code: str) -> str:
    try:
        return validate_code(code)
    except BadName as e:
        raise BadRequest(f"Not a valid class code: {e}.") from None


def _graded_meanwhile(current: Grade | None) -> Conflict:
    if current is None:
        return Conflict("This submission's grade changed meanwhile; reload it.")
    return Conflict(
        f"This submission was graded meanwhile by {current.graded_by}; reload to see "
        "their grade before changing it."
    )
