"""Where a student stands on one assignment: which version counts, on time or late, the
penalty, the points (pure: no I/O).

:func:`standing` is the ONE computation behind everything that shows a student's result:
the student's page, the teacher's submissions list and grading view, the gradebook and
its CSV, and the feedback file returned into the student's home. They all call it with
the same inputs read from the database, so they always agree.

The rules (deadlines a teacher can trust):

* **On time or late** is decided now, from the version's time and the student's CURRENT
  deadline (the assignment's due date, or their extension), never frozen when the version
  was taken: an extension granted after the deadline makes every version handed in before
  the new deadline on time. A version's time is when it was handed in (Submit) or collected
  (Collect now); a **deadline snapshot** (taken by the grades service itself at the
  student's deadline, :mod:`.deadlines`) stands for the deadline it was taken for, so it is
  on time by construction, even when the service was down at the deadline and took it
  later (the version records when it was really taken). Exactly at the deadline is on time.
* **The version that counts**: the one the teacher chose for this student, else the last
  version on time, else the first late one. A late version handed in or collected after
  an on-time one never displaces it.
* **The penalty** applies only when the counting version is late: the teacher's override
  for this student (0: waived), else the assignment's late penalty.
* **Points** belong to a version (a grade never moves to another version). The student's
  points are those of the counting version, less the penalty (half-up to cents).
* **The state**: ``graded`` (the counting version has points), ``handed_in`` (it has none
  yet), ``missing`` (nothing handed in and the student's deadline has passed) or
  ``not_handed_in_yet`` (nothing handed in, the deadline is still to come, or there is
  none).

A student sees a grade only once it is returned: the views hide the points then, the
standing is the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from . import rules

#: how a version was taken
SUBMIT = "submit"  # the student pressed Submit
COLLECT = "collect"  # a teacher pressed Collect now
DEADLINE = "deadline"  # the grades service at the student's deadline
KINDS = (SUBMIT, COLLECT, DEADLINE)

#: the states of a standing
GRADED = "graded"
HANDED_IN = "handed_in"
MISSING = "missing"
NOT_YET = "not_handed_in_yet"
STATES = (GRADED, HANDED_IN, MISSING, NOT_YET)

#: why the counting version counts
CHOSEN = "chosen"  # the teacher chose it
LAST_ON_TIME = "last_on_time"
FIRST_LATE = "first_late"

#: where the penalty of a late counting version comes from
PENALTY_NONE = "none"  # not late: no penalty
PENALTY_ASSIGNMENT = "assignment"
PENALTY_WAIVED = "waived"
PENALTY_OVERRIDE = "override"

_ZERO = Decimal(0)


@dataclass(frozen=True)
class Version:
    """One version a student handed in (or that was taken for them), with its grade."""

    id: int
    version: int
    submitted_at: datetime  # when it was really taken
    kind: str = SUBMIT
    #: a deadline snapshot: the deadline it stands for
    deadline_for: datetime | None = None
    #: its grade's points (None: not graded)
    points: Decimal | None = None
    returned: bool = False

    @property
    def timed_at(self) -> datetime:
        """The instant that decides on time or late."""
        if self.kind == DEADLINE and self.deadline_for is not None:
            return self.deadline_for
        return self.submitted_at


@dataclass(frozen=True)
class VersionStanding:
    """A version as it stands now."""

    id: int
    version: int
    on_time: bool
    counts: bool
    #: the penalty it gets if it counts (0 when on time)
    penalty_percent: Decimal
    #: its points less that penalty (None: not graded)
    final_points: Decimal | None

    @property
    def late(self) -> bool:
        return not self.on_time


@dataclass(frozen=True)
class Standing:
    due: datetime | None
    deadline_passed: bool
    state: str
    #: the version that counts (None: nothing handed in)
    counting: VersionStanding | None
    why: str | None  # CHOSEN, LAST_ON_TIME, FIRST_LATE (None: nothing counts)
    late: bool  # the counting version is late
    penalty_percent: Decimal  # applied to the counting version
    penalty_source: str
    points: Decimal | None  # the counting version's points, as given
    final_points: Decimal | None  # after the penalty
    returned: bool  # the counting version's grade was returned
    versions: tuple[VersionStanding, ...]  # newest first
    #: why nothing was taken at the deadline (no home folder, no assignment folder, ...)
    missing_reason: str | None = None

    def version(self, submission_id: int) -> VersionStanding | None:
        for v in self.versions:
            if v.id == submission_id:
                return v
        return None


def is_on_time(version: Version, due: datetime | None) -> bool:
    """On time against the student's current deadline (none: always on time)."""
    return due is None or version.timed_at <= due


def penalty_for(
    late: bool, assignment_penalty: Decimal | int, override: Decimal | int | None
) -> tuple[Decimal, str]:
    """``(percent, source)`` of the penalty a version gets if it counts."""
    if not late:
        return _ZERO, PENALTY_NONE
    if override is None:
        return Decimal(str(assignment_penalty)), PENALTY_ASSIGNMENT
    override = Decimal(str(override))
    return override, PENALTY_WAIVED if override == 0 else PENALTY_OVERRIDE


def standing(
    versions: Iterable[Version],
    *,
    due: datetime | None,
    now: datetime,
    penalty_percent: Decimal | int = 0,
    penalty_override: Decimal | int | None = None,
    chosen_id: int | None = None,
    missing_reason: str | None = None,
) -> Standing:
    """Where the student stands (see the module's docstring for the rules).

    ``due``: the student's deadline now (:func:`.rules.due_for`); ``penalty_percent``:
    the assignment's late penalty; ``penalty_override``: the teacher's for this student
    (0 waives it); ``chosen_id``: the version the teacher chose (ignored when it is not
    one of ``versions``); ``missing_reason``: what the deadline snapshot found instead
    of a folder."""
    items = sorted(versions, key=lambda v: v.version, reverse=True)
    passed = due is not None and now > due
    on_time = {v.id: is_on_time(v, due) for v in items}

    counting: Version | None = None
    why: str | None = None
    if chosen_id is not None:
        counting = next((v for v in items if v.id == chosen_id), None)
        why = CHOSEN if counting is not None else None
    if counting is None:
        counting = next((v for v in items if on_time[v.id]), None)  # newest on time
        why = LAST_ON_TIME if counting is not None else None
    if counting is None and items:
        counting = items[-1]  # the oldest: all are late
        why = FIRST_LATE

    views = []
    for v in items:
        percent, _ = penalty_for(not on_time[v.id], penalty_percent, penalty_override)
        views.append(
            VersionStanding(
                id=v.id,
                version=v.version,
                on_time=on_time[v.id],
                counts=counting is not None and v.id == counting.id,
                penalty_percent=percent,
                final_points=None if v.points is None else rules.apply_penalty(v.points, percent),
            )
        )
    counted = next((v for v in views if v.counts), None)
    if counting is None or counted is None:
        return Standing(
            due=due,
            deadline_passed=passed,
            state=MISSING if passed else NOT_YET,
            counting=None,
            why=None,
            late=False,
            penalty_percent=_ZERO,
            penalty_source=PENALTY_NONE,
            points=None,
            final_points=None,
            returned=False,
            versions=tuple(views),
            missing_reason=missing_reason if passed else None,
        )
    percent, source = penalty_for(counted.late, penalty_percent, penalty_override)
    return Standing(
        due=due,
        deadline_passed=passed,
        state=GRADED if counting.points is not None else HANDED_IN,
        counting=counted,
        why=why,
        late=counted.late,
        penalty_percent=percent,
        penalty_source=source,
        points=counting.points,
        final_points=counted.final_points,
        returned=counting.points is not None and counting.returned,
        versions=tuple(views),
    )
