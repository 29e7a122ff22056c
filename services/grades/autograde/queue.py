"""The grading queue's rules (pure: no I/O; docs/autograding.md, "The queue").

What a job is, how long a failed attempt waits before the next, which question each test
feeds, how test results become points per question, and what a student may see of them.
The store (``services/grades/store/autograde.py``) keeps the jobs; the worker
(:mod:`.worker`) works them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .notebook import graded

STATES = ("queued", "running", "done", "failed")
TRIGGERS = ("submit", "teacher")
#: the actor of what the grading does in the audit log and on a grade it gives
ACTOR = "autograde"
QUESTION_TAG = "question"
_CENT = Decimal("0.01")


@dataclasses.dataclass(frozen=True)
class AutogradeConfig:
    """An assignment's autograding: the teacher's source notebook and the switches."""

    assignment_id: int
    notebook_path: str
    source: dict
    source_sha256: str
    image: str
    on_submit: bool
    show_hidden: bool
    revision: int
    updated_by: str
    updated_at: datetime
    #: plain pytest files ([TestFile.as_json()], :mod:`.pytests`)
    test_files: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Job:
    """A claimed job with what the worker needs to grade it."""

    id: int
    submission_id: int
    assignment_id: int
    class_code: str
    username: str
    version: int
    storage_key: str
    size_bytes: int
    attempts: int
    config_revision: int
    claim: str


@dataclasses.dataclass(frozen=True)
class Progress:
    """How far an assignment's grading is: jobs per state."""

    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.running + self.done + self.failed

    def as_json(self) -> dict:
        return {**dataclasses.asdict(self), "total": self.total}


@dataclasses.dataclass(frozen=True)
class TestRow:
    """One test's stored result."""

    test_id: str
    position: int
    status: str
    score: Decimal
    points: Decimal
    visibility: str
    message: str
    flags: tuple[str, ...]
    question_key: str | None


def retry_delay(attempts: int, base: float, cap: float = 600.0) -> float:
    """Seconds before attempt ``attempts + 1`` after a failed one: ``base``, doubled
    each time, at most ``cap``."""
    return float(min(cap, base * (2 ** max(0, attempts - 1))))


def gives_up(attempts: int, max_attempts: int) -> bool:
    """Whether a job that failed (or whose worker died) on attempt ``attempts`` fails
    for good."""
    return attempts >= max_attempts


def cents(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(_CENT, ROUND_HALF_UP)


def test_questions(source_nb: Mapping[str, Any], question_keys: Sequence[str]) -> dict:
    """``{test id: question key}``: which of the assignment's questions (``question_keys``
    in their order) each test of the source notebook feeds. A test cell's own
    ``metadata.classhub.question`` (``"q2"``) wins; otherwise the n-th cell tagged
    ``question`` opens the n-th question and the tests after it feed that question
    (the same cells the questions are imported from). A test before any question, or
    past the last, feeds none."""
    known = set(question_keys)
    found: dict[str, str] = {}
    current: str | None = None
    opened = 0
    for cell in source_nb.get("cells") or ():
        if not isinstance(cell, Mapping):
            continue
        metadata = cell.get("metadata") if isinstance(cell.get("metadata"), Mapping) else {}
        tags = metadata.get("tags") if isinstance(metadata.get("tags"), list) else []
        if QUESTION_TAG in {t.strip().lower() for t in tags if isinstance(t, str)}:
            current = question_keys[opened] if opened < len(question_keys) else None
            opened += 1
        g = graded(dict(cell))
        if g is None or g.role != "test":
            continue
        classhub = metadata.get("classhub") if isinstance(metadata.get("classhub"), Mapping) else {}
        own = classhub.get("question")
        if isinstance(own, str) and own in known:
            found[g.key] = own
        elif current is not None:
            found[g.key] = current
    return found


def question_points(rows: Iterable[TestRow], worth: Mapping[str, Decimal]) -> dict:
    """``{question key: points}`` for each question that has a test: the sum of its
    tests' scores, at most what the question is worth (``worth``)."""
    sums: dict[str, Decimal] = {}
    for row in rows:
        if row.question_key is None or row.question_key not in worth:
            continue
        sums[row.question_key] = sums.get(row.question_key, Decimal(0)) + row.score
    return {key: min(total, worth[key]) for key, total in sums.items()}


def student_sees(visibility: str, *, show_hidden: bool, due_passed: bool) -> bool:
    """Whether a student may see a test's result: visible tests always, "after the due
    date" ones once their own deadline passed, hidden ones only when the teacher opted
    in (``show_hidden``)."""
    if visibility == "visible":
        return True
    if visibility == "after-due":
        return due_passed
    return show_hidden


def for_student(rows: Iterable[TestRow], *, show_hidden: bool, due_passed: bool) -> list[TestRow]:
    return [
        r
        for r in rows
        if student_sees(r.visibility, show_hidden=show_hidden, due_passed=due_passed)
    ]
