"""Assignments, extensions, submissions, grades and their audit log in PostgreSQL
(schema ``classhub_grades``, see ``migrations/``): the grades store.

One :class:`GradesStore` per process holds a small connection pool
(:class:`common.postgres.PgPool`). Every call is bounded in time: the wait for a
connection (``timeout``), each statement (``statement_timeout``, ``lock_timeout``), the
connection attempt (``connect_timeout``) and the whole call on the client side. When
PostgreSQL is down or too slow a call raises :class:`~common.errors.StoreUnavailable` (a
503); the pool reconnects by itself once the server is back. Constraint violations become
:class:`~common.errors.Conflict` (unique) or :class:`~common.errors.BadRequest` (check)
with a sentence a teacher understands. Every connection's ``search_path`` is the schema:
the SQL names tables without it.

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

This module is the store's one door: import from here. Behind it, :mod:`.records` holds
what the queries return, :mod:`.base` the plumbing they share, and one module per area
its queries (:mod:`.assignments`, :mod:`.extensions`, :mod:`.submissions`,
:mod:`.standing`, :mod:`.questions`, :mod:`.grades`, :mod:`.releases`, :mod:`.deadlines`,
:mod:`.autograde`, :mod:`.audit`), each a class that :class:`GradesStore` is made of.
"""

from __future__ import annotations

from common.errors import StoreUnavailable

from .assignments import AssignmentQueries
from .audit import AuditQueries
from .autograde import AutogradeQueries
from .base import LOCK_KEY, SCHEMA, SERVICE_ACTOR, STORE, UNAVAILABLE, SubmissionRefused
from .deadlines import DeadlineQueries
from .extensions import ExtensionQueries
from .grades import GradeQueries
from .questions import QuestionQueries
from .records import (
    Assignment,
    AuditEntry,
    Choice,
    DeadlineClaim,
    DeadlineRound,
    DeadlineSnapshot,
    Extension,
    Grade,
    LatestSubmission,
    ReleaseClaim,
    StandingData,
    Submission,
)
from .releases import ReleaseQueries
from .standing import StandingQueries
from .submissions import SubmissionQueries

__all__ = [
    "LOCK_KEY",
    "SCHEMA",
    "SERVICE_ACTOR",
    "STORE",
    "UNAVAILABLE",
    "Assignment",
    "AuditEntry",
    "Choice",
    "DeadlineClaim",
    "DeadlineRound",
    "DeadlineSnapshot",
    "Extension",
    "Grade",
    "GradesStore",
    "LatestSubmission",
    "ReleaseClaim",
    "StandingData",
    "StoreUnavailable",
    "Submission",
    "SubmissionRefused",
]


class GradesStore(
    AssignmentQueries,
    ExtensionQueries,
    SubmissionQueries,
    StandingQueries,
    QuestionQueries,
    GradeQueries,
    ReleaseQueries,
    DeadlineQueries,
    AutogradeQueries,
    AuditQueries,
):
    """The grades data. Call :meth:`open` first (it also migrates)."""
