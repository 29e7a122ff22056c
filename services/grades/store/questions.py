"""The grades store's queries of questions: an assignment's questions and their points."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from common.errors import BadRequest, Conflict

from .. import questions as qs
from .base import (
    StoreBase,
    _actor,
    _id,
    _row,
    _rows,
)
from .records import (
    _ASSIGNMENT_COLUMNS,
    Assignment,
    _assignment,
)


class QuestionQueries(StoreBase):
    """Questions (mixed into :class:`services.grades.store.GradesStore`)."""

    async def questions(self, assignment_id: int) -> list[qs.Question]:
        async with self._connection() as conn:
            return await self._questions(conn, _id(assignment_id, "assignment"))

    @staticmethod
    async def _questions(conn, assignment_id: int) -> list[qs.Question]:
        rows = await _rows(
            conn,
            "SELECT key, label, points, position, origin FROM questions"
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
                "SELECT q.question_key, count(*) AS n, max(q.points) AS top"
                " FROM question_points q JOIN submissions s ON s.id = q.submission_id"
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
                "DELETE FROM questions WHERE assignment_id = %s",
                (assignment_id,),
            )
            for q in new:
                await conn.execute(
                    "INSERT INTO questions (assignment_id, key, position, label, points,"
                    " origin) VALUES (%s, %s, %s, %s, %s, %s)",
                    (assignment_id, q.key, q.position, q.label, q.points, q.origin),
                )
            maximum = qs.total(new) if new else old.max_points
            row = await _row(
                conn,
                f"UPDATE assignments SET max_points = %s, updated_by = %s,"  # noqa: S608
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
