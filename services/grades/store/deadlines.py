"""The grades store's queries of deadline snapshots (:mod:`services.grades.deadlines`):
planned when the due date comes, claimed, then taken, unchanged or missing."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from .. import standing as st
from .base import (
    SERVICE_ACTOR,
    StoreBase,
    _check_snapshot,
    _id,
    _row,
    _rows,
    _username,
)
from .records import (
    _ASSIGNMENT_COLUMNS,
    _DEADLINE_COLUMNS,
    _REPLAN,
    _REPLAN_FROM_X,
    _SUBMISSION_COLUMNS,
    Assignment,
    DeadlineClaim,
    DeadlineRound,
    DeadlineSnapshot,
    Submission,
    _assignment,
    _from_row,
    _submission,
)

#: A due date set (or moved) further in the past than this is no snapshot moment: a copy
#: taken now would record later work as handed in on time. A due date within it (set to
#: "now" from a form of minutes) is taken at once, as the 60 s promise says.
PAST_DUE_GRACE = timedelta(seconds=60)


def already_past(due_at: datetime | None, now: datetime) -> bool:
    """Whether ``due_at``, set at ``now``, is past by more than :data:`PAST_DUE_GRACE`:
    then no deadline round is planned for it (only extensions still to come are taken)."""
    return due_at is not None and due_at < now - PAST_DUE_GRACE


class DeadlineQueries(StoreBase):
    """Deadline snapshots ( (mixed into :class:`services.grades.store.GradesStore`)."""

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
                f"UPDATE assignments SET deadline_claim = %(claim)s,"  # noqa: S608
                " deadline_claimed_until = %(until)s"
                f" WHERE id = (SELECT id FROM assignments WHERE {due}"
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
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments"  # noqa: S608
                " WHERE id = %s AND deadline_claim = %s AND due_at = %s FOR NO KEY UPDATE",
                (claimed.assignment_id, claimed.claim, claimed.due_at),
            )
            if mine is None:
                return None
            if names:
                await conn.execute(
                    f"INSERT INTO deadline_snapshots AS d (assignment_id, username, due_at)"  # noqa: S608
                    " SELECT %(aid)s, u.name, GREATEST(%(due)s, e.due_at)"
                    " FROM unnest(%(names)s::text[]) AS u(name)"
                    f" LEFT JOIN extensions e"
                    " ON e.assignment_id = %(aid)s AND e.username = u.name"
                    f" ON CONFLICT (assignment_id, username) DO UPDATE SET {_REPLAN}"
                    " WHERE d.due_at <> excluded.due_at",
                    {"aid": claimed.assignment_id, "due": claimed.due_at, "names": names},
                )
            await conn.execute(
                "UPDATE assignments SET deadline_planned_for = due_at,"
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
                "UPDATE assignments SET deadline_claim = NULL,"
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
                "UPDATE deadline_snapshots d SET claim = %(claim)s,"
                " claimed_until = %(until)s, attempts = d.attempts + 1"
                " FROM assignments a"
                " WHERE a.id = d.assignment_id AND (d.assignment_id, d.username) IN ("
                " SELECT p.assignment_id, p.username FROM deadline_snapshots p"
                " JOIN assignments pa ON pa.id = p.assignment_id"
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
            f"SELECT {_DEADLINE_COLUMNS} FROM deadline_snapshots"  # noqa: S608
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
            f"SELECT {_SUBMISSION_COLUMNS} FROM submissions s"  # noqa: S608
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
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments WHERE id = %s FOR SHARE",  # noqa: S608
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
                "UPDATE deadline_snapshots SET reason = %s, retry_at = %s,"
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
            "UPDATE deadline_snapshots SET state = %s, taken_at = %s,"
            " submission_id = %s, reason = %s, retry_at = NULL, claim = NULL,"
            " claimed_until = NULL WHERE assignment_id = %s AND username = %s",
            (state, now, submission_id, reason, claimed.assignment_id, claimed.username),
        )

    async def deadline_snapshots(self, assignment_id: int) -> list[DeadlineSnapshot]:
        """The assignment's deadline snapshots, by username."""
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"SELECT {_DEADLINE_COLUMNS} FROM deadline_snapshots"  # noqa: S608
                " WHERE assignment_id = %s ORDER BY username",
                (_id(assignment_id, "assignment"),),
            )
        return [_from_row(DeadlineSnapshot, r) for r in rows]

    @staticmethod
    async def _replan_student(conn, assignment: Assignment, name: str, now: datetime) -> None:
        """The student's deadline moved (an extension granted or revoked): once the
        assignment's snapshots are planned, their row follows their new deadline (taken
        again at it when it differs). A new deadline already past (:func:`already_past`:
        an extension dated back, or revoked after the due date) is no snapshot moment: a
        copy taken now would record the work done since as on time. Then a snapshot
        still to come is dropped and one already taken stays; the versions the student
        has are judged against the new deadline."""
        if assignment.due_at is None:
            return
        ext = await _row(
            conn,
            "SELECT due_at FROM extensions WHERE assignment_id = %s AND username = %s",
            (assignment.id, name),
        )
        deadline = max(assignment.due_at, ext["due_at"]) if ext else assignment.due_at
        if already_past(deadline, now):
            await conn.execute(
                "DELETE FROM deadline_snapshots"
                " WHERE assignment_id = %s AND username = %s AND state = 'pending'",
                (assignment.id, name),
            )
            return
        if assignment.deadline_planned_for is None:
            return
        await conn.execute(
            f"INSERT INTO deadline_snapshots AS d (assignment_id, username, due_at)"  # noqa: S608
            " SELECT %(aid)s, %(user)s, GREATEST(%(due)s, e.due_at)"
            f" FROM (SELECT 1) one LEFT JOIN extensions e"
            " ON e.assignment_id = %(aid)s AND e.username = %(user)s"
            f" ON CONFLICT (assignment_id, username) DO UPDATE SET {_REPLAN}"
            " WHERE d.due_at <> excluded.due_at",
            {"aid": assignment.id, "user": name, "due": assignment.due_at},
        )

    @staticmethod
    async def _replan_assignment(conn, old: Assignment, new: Assignment, now: datetime) -> None:
        """The assignment's due date changed: every planned row follows it (with the
        student's extension), and the round plans again at the new due date (students
        added since get theirs). No due date any more: nothing pending stays. A due date
        moved into the past (:func:`already_past`): no round, and no row at it is taken
        (only extensions still to come)."""
        if old.due_at == new.due_at:
            return
        if new.due_at is None:
            await conn.execute(
                "DELETE FROM deadline_snapshots WHERE assignment_id = %s AND state = 'pending'",
                (new.id,),
            )
        else:
            await conn.execute(
                f"UPDATE deadline_snapshots d SET {_REPLAN_FROM_X}"  # noqa: S608
                " FROM (SELECT d2.username, GREATEST(%(due)s, e.due_at) AS due"
                f" FROM deadline_snapshots d2 LEFT JOIN extensions e"
                " ON e.assignment_id = d2.assignment_id AND e.username = d2.username"
                " WHERE d2.assignment_id = %(aid)s) x"
                " WHERE d.assignment_id = %(aid)s AND d.username = x.username"
                " AND d.due_at <> x.due",
                {"aid": new.id, "due": new.due_at},
            )
        if already_past(new.due_at, now):
            await conn.execute(
                "DELETE FROM deadline_snapshots"
                " WHERE assignment_id = %s AND state = 'pending' AND due_at <= %s",
                (new.id, now),
            )
            await conn.execute(
                "UPDATE assignments SET deadline_planned_for = due_at WHERE id = %s",
                (new.id,),
            )
            return
        await conn.execute(
            "UPDATE assignments SET deadline_planned_for = NULL WHERE id = %s",
            (new.id,),
        )
