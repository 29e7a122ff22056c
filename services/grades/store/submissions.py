"""The grades store's queries of submissions: a student's versions 1, 2, 3, ... (numbered
under advisory locks, within the version cap and the quota), and reading them."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from common.errors import Conflict, NotFound
from services.base.names import submission_prefix

from .. import rules
from .. import standing as st
from .base import (
    _SUBMISSION_LOCK,
    SERVICE_ACTOR,
    StoreBase,
    SubmissionRefused,
    _actor,
    _check_snapshot,
    _id,
    _row,
    _rows,
    _username,
)
from .records import (
    _ASSIGNMENT_COLUMNS,
    _GRADE_AS,
    _SUBMISSION_COLUMNS,
    Assignment,
    LatestSubmission,
    Submission,
    _assignment,
    _submission,
)

log = logging.getLogger(__name__)


class SubmissionQueries(StoreBase):
    """Submissions (mixed into :class:`services.grades.store.GradesStore`)."""

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
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments WHERE id = %s FOR SHARE",  # noqa: S608
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
            "SELECT due_at FROM extensions WHERE assignment_id = %s AND username = %s FOR SHARE",
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
                "SELECT coalesce(max(version), 0) + 1 FROM submissions"
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
            f"INSERT INTO submissions AS s (assignment_id, username, version,"  # noqa: S608
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
                "SELECT count(*) FILTER (WHERE assignment_id = %s),"
                " coalesce(sum(size_bytes), 0) FROM submissions"
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
                    "SELECT coalesce(sum(size_bytes), 0) FROM submissions WHERE username = %s",
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
                f"SELECT {_SUBMISSION_COLUMNS}, {_GRADE_AS} FROM submissions s"  # noqa: S608
                f" LEFT JOIN grades g ON g.submission_id = s.id WHERE s.id = %s",
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
                f" FROM submissions s LEFT JOIN grades g ON g.submission_id = s.id"
                " WHERE s.assignment_id = %s ORDER BY s.username, s.version DESC",
                (assignment_id,),
            )
        return [LatestSubmission(r["username"], r["versions"], _submission(r)) for r in rows]

    async def latest_submission(self, assignment_id: int, username: str) -> Submission | None:
        """The student's latest version of the assignment (without its grade), or None."""
        async with self._connection() as conn:
            row = await _row(
                conn,
                f"SELECT {_SUBMISSION_COLUMNS} FROM submissions s"  # noqa: S608
                " WHERE s.assignment_id = %s AND s.username = %s ORDER BY s.version DESC LIMIT 1",
                (_id(assignment_id, "assignment"), _username(username)),
            )
        return _submission(row, grade=False) if row else None

    async def all_storage_keys(self) -> set[str]:
        """Every recorded snapshot's key (for the clean-up of snapshots without a record)."""
        async with self._connection() as conn, conn.cursor() as cur:
            await cur.execute("SELECT storage_key FROM submissions")
            return {key for (key,) in await cur.fetchall()}

    async def student_submissions(self, class_code: str, username: str) -> list[Submission]:
        """A student's own versions in the class's assignments they can see (released,
        not archived), newest first per assignment. A grade is included only once it has
        been returned."""
        name = _username(username)
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"SELECT {_SUBMISSION_COLUMNS}, {_GRADE_AS} FROM submissions s"  # noqa: S608
                f" JOIN assignments a ON a.id = s.assignment_id"
                f" LEFT JOIN grades g ON g.submission_id = s.id"
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
                f"SELECT {_SUBMISSION_COLUMNS}, {_GRADE_AS} FROM submissions s"  # noqa: S608
                f" LEFT JOIN grades g ON g.submission_id = s.id{returned}"
                " WHERE s.assignment_id = %s AND s.username = %s ORDER BY s.version DESC",
                (assignment_id, name),
            )
        return [_submission(r) for r in rows]
