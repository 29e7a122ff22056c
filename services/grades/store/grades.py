"""The grades store's queries of grades: grading (against the revision the grader saw),
returning, the gradebook's generation and the delivery of feedback."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from typing import Any

from common.errors import BadRequest, NotFound

from .. import questions as qs
from .. import rules
from .base import (
    StoreBase,
    _actor,
    _graded_meanwhile,
    _id,
    _row,
    _rows,
)
from .records import (
    _GRADE_COLUMNS,
    _GRADE_G,
    Grade,
    _from_row,
)


class GradeQueries(StoreBase):
    """Grades (mixed into :class:`services.grades.store.GradesStore`)."""

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
                "SELECT s.assignment_id, s.username, a.class_code FROM submissions s"
                " JOIN assignments a ON a.id = s.assignment_id WHERE s.id = %s",
                (submission_id,),
            )
            if sub is None:
                raise NotFound(f"There is no submission with the id {submission_id}.")
            old_row = await _row(
                conn,
                f"SELECT {_GRADE_COLUMNS} FROM grades WHERE submission_id = %s FOR UPDATE",  # noqa: S608
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
                        "SELECT question_key, points FROM question_points WHERE submission_id = %s",
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
                    f"INSERT INTO grades (submission_id, points, feedback, graded_by,"  # noqa: S608
                    " graded_at) VALUES (%s, %s, %s, %s, %s)"
                    f" ON CONFLICT (submission_id) DO NOTHING RETURNING {_GRADE_COLUMNS}",
                    (submission_id, value, text, actor, now),
                )
                if row is None:  # graded by someone else since our SELECT
                    old_row = await _row(
                        conn,
                        f"SELECT {_GRADE_COLUMNS} FROM grades WHERE submission_id = %s",  # noqa: S608
                        (submission_id,),
                    )
                    raise _graded_meanwhile(_from_row(Grade, old_row) if old_row else None)
            elif old is None or old.revision != expected_revision:
                raise _graded_meanwhile(old)
            else:
                row = await _row(
                    conn,
                    f"UPDATE grades SET points = %s, feedback = %s, graded_by = %s,"  # noqa: S608
                    " graded_at = %s, revision = revision + 1, feedback_delivered_at = NULL"
                    f" WHERE submission_id = %s RETURNING {_GRADE_COLUMNS}",
                    (value, text, actor, now, submission_id),
                )
            grade = _from_row(Grade, row)
            for key, given in per_question.items():
                await conn.execute(
                    "INSERT INTO question_points AS q (submission_id, question_key,"
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
                f" FROM grades g JOIN submissions s ON s.id = g.submission_id"
                f" JOIN assignments a ON a.id = s.assignment_id"
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
                f"UPDATE grades SET returned_at = %s, returned_by = %s"  # noqa: S608
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
                "SELECT generation FROM gradebook_generations WHERE class_code = %s",
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
                "SELECT coalesce((SELECT generation"
                " FROM gradebook_generations WHERE class_code = %(code)s), 0),"
                " (SELECT count(*) FROM assignments"
                " WHERE class_code = %(code)s AND due_at < %(now)s)"
                " + (SELECT count(*) FROM extensions e JOIN assignments a"
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
                "SELECT s.username, a.class_code, a.id AS assignment_id, a.slug, a.title,"
                " a.max_points, s.id AS submission_id, s.version,"
                " g.points, g.feedback, g.revision"
                " FROM grades g JOIN submissions s ON s.id = g.submission_id"
                " JOIN assignments a ON a.id = s.assignment_id"
                " WHERE g.returned_at IS NOT NULL AND g.feedback_delivered_at IS NULL"
                " ORDER BY g.returned_at LIMIT %s",
                (limit,),
            )

    async def feedback_delivered(self, submission_id: int, revision: int) -> bool:
        """Mark the feedback of ``revision`` delivered (not if the grade changed since)."""
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                "UPDATE grades SET feedback_delivered_at = %s"
                " WHERE submission_id = %s AND revision = %s RETURNING submission_id",
                (self._now(), _id(submission_id, "submission"), revision),
            )
        return bool(rows)
