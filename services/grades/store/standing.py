"""The grades store's queries of standing: everything :mod:`services.grades.standing`
reads, read together, and the teacher's choices (the version that counts, the penalty)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from common.errors import BadRequest, NotFound

from .. import questions as qs
from .. import standing as st
from .base import (
    StoreBase,
    _actor,
    _id,
    _row,
    _rows,
    _username,
)
from .records import (
    _ASSIGNMENT_COLUMNS,
    _CHOICE_COLUMNS,
    _CHOICE_X,
    _DEADLINE_X,
    _GRADE_AS,
    _SUBMISSION_X,
    Choice,
    DeadlineSnapshot,
    StandingData,
    _assignment,
    _from_row,
    _submission,
)


class StandingQueries(StoreBase):
    """Standing (mixed into :class:`services.grades.store.GradesStore`)."""

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
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments a WHERE {scope}",  # noqa: S608
                params,
            ):
                data.assignments[row["id"]] = _assignment(row)
            if not data.assignments:
                return data
            join = f"JOIN assignments a ON a.id = x.assignment_id WHERE {scope}{by_user}"
            if full:
                rows = await _rows(
                    conn,
                    f"SELECT {_SUBMISSION_X},"  # noqa: S608
                    f" {_GRADE_AS} FROM submissions x"
                    f" LEFT JOIN grades g ON g.submission_id = x.id {join}"
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
                        f" FROM submissions x"
                        f" LEFT JOIN grades g ON g.submission_id = x.id {join}",
                        params,
                    )
                    for sid, aid, user, n, at, kind, dfor, points, returned in await cur.fetchall():
                        data.versions.setdefault((aid, user), []).append(
                            st.Version(sid, n, at, kind, dfor, points, bool(returned))
                        )
            for row in await _rows(
                conn,
                f"SELECT x.assignment_id, x.username, x.due_at FROM extensions x {join}",  # noqa: S608
                params,
            ):
                data.extensions[(row["assignment_id"], row["username"])] = row["due_at"]
            for row in await _rows(
                conn,
                f"SELECT {_CHOICE_X} FROM student_choices x {join}",  # noqa: S608
                params,
            ):
                data.choices[(row["assignment_id"], row["username"])] = _from_row(Choice, row)
            for row in await _rows(
                conn,
                f"SELECT {_DEADLINE_X} FROM deadline_snapshots x {join}",  # noqa: S608
                params,
            ):
                data.deadlines[(row["assignment_id"], row["username"])] = _from_row(
                    DeadlineSnapshot, row
                )
            for row in await _rows(
                conn,
                "SELECT x.assignment_id, x.key, x.label, x.points, x.position, x.origin"  # noqa: S608
                f" FROM questions x JOIN assignments a ON a.id = x.assignment_id"
                f" WHERE {scope} ORDER BY x.assignment_id, x.position",
                params,
            ):
                data.questions.setdefault(row.pop("assignment_id"), []).append(qs.Question(**row))
            if data.questions:
                async with conn.cursor() as cur:
                    await cur.execute(
                        "SELECT q.submission_id, q.question_key, q.points, q.source"  # noqa: S608
                        f" FROM question_points q"
                        f" JOIN submissions x ON x.id = q.submission_id {join}",
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
                    "SELECT id FROM submissions"
                    " WHERE id = %s AND assignment_id = %s AND username = %s",
                    (submission_id, assignment_id, name),
                )
                if found is None:
                    raise NotFound(
                        f"That version is not one of {name}'s versions of this assignment."
                    )
            row = await _row(
                conn,
                f"INSERT INTO student_choices AS c (assignment_id, username,"  # noqa: S608
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
                f"INSERT INTO student_choices AS c (assignment_id, username,"  # noqa: S608
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
            f"SELECT {_CHOICE_COLUMNS} FROM student_choices"  # noqa: S608
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
            f"UPDATE grades g SET feedback_delivered_at = NULL"  # noqa: S608
            f" FROM submissions s WHERE s.id = g.submission_id"
            f" AND s.assignment_id = %(aid)s{who}"
            " AND g.returned_at IS NOT NULL AND g.feedback_delivered_at IS NOT NULL",
            {"aid": assignment_id, "user": name},
        )
