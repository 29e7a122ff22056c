"""The grades store's records: what its queries return (frozen dataclasses), and the
column lists and row converters that read them from PostgreSQL rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from .. import questions as qs
from .. import rules
from .. import standing as st
from ..rules import AssignmentFields


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
