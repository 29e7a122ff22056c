"""The grades store's queries of assignments: create, edit, archive, read."""

from __future__ import annotations

import logging
from typing import Any

from common.errors import BadRequest, Conflict, NotFound

from .. import questions as qs
from ..rules import AssignmentFields
from .base import (
    StoreBase,
    _actor,
    _class_code,
    _id,
    _row,
    _rows,
)
from .deadlines import already_past
from .records import (
    _ASSIGNMENT_COLUMNS,
    Assignment,
    _assignment,
)

log = logging.getLogger(__name__)


class AssignmentQueries(StoreBase):
    """Assignments (mixed into :class:`services.grades.store.GradesStore`)."""

    async def create_assignment(
        self, class_code: str, fields: AssignmentFields, *, actor: str, archived: bool = False
    ) -> Assignment:
        """A new assignment of ``class_code``; Conflict when the class has one with the
        same slug already (archived ones included). ``archived``: created archived (hidden
        from students, nothing released until a teacher restores it: a class's copy)."""
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
                f"INSERT INTO assignments (class_code, slug, title, instructions,"  # noqa: S608
                " max_points, release_at, due_at, late_policy, late_penalty_percent,"
                " starting_files, created_by, created_at, archived_at, deadline_planned_for)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
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
                    now if archived else None,
                    # created with a due date long past: no deadline round for it
                    fields.due_at if already_past(fields.due_at, now) else None,
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
                f"UPDATE assignments SET title = %s, instructions = %s,"  # noqa: S608
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
            await self._replan_assignment(conn, old, new, now)
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
                f"UPDATE assignments SET archived_at = %s, updated_by = %s,"  # noqa: S608
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

    async def delete_assignment(self, assignment_id: int, *, actor: str) -> Assignment:
        """Delete an assignment that has no submissions, with its extensions, questions,
        deadline snapshots and choices; Conflict when anybody handed something in (then
        archive it: grades are never deleted). The row is locked ``FOR UPDATE``, which a
        submission's foreign key check waits for, so no submission slips in meanwhile."""
        assignment_id = _id(assignment_id, "assignment")
        actor = _actor(actor)
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            row = await _row(
                conn,
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments WHERE id = %s FOR UPDATE",  # noqa: S608
                (assignment_id,),
            )
            if row is None:
                raise NotFound(f"There is no assignment with the id {assignment_id}.")
            old = _assignment(row)
            count = await _row(
                conn,
                "SELECT count(*) AS n FROM submissions WHERE assignment_id = %s",
                (assignment_id,),
            )
            if count["n"]:
                raise Conflict(
                    f'"{old.title}" has {count["n"]} submission(s): it cannot be deleted. '
                    "Archive it instead (students no longer see it; grades are kept)."
                )
            await _rows(
                conn, "DELETE FROM assignments WHERE id = %s RETURNING id", (assignment_id,)
            )
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="assignment.delete",
                class_code=old.class_code,
                assignment_id=old.id,
                old=old,
            )
        log.info("assignment %s/%s deleted by %s", old.class_code, old.slug, actor)
        return old

    async def _assignment_for_update(self, conn, assignment_id: int) -> Assignment:
        row = await _row(
            conn,
            f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments WHERE id = %s FOR NO KEY UPDATE",  # noqa: S608
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
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments WHERE id = %s",  # noqa: S608
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
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments"  # noqa: S608
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
                f"SELECT {_ASSIGNMENT_COLUMNS} FROM assignments"  # noqa: S608
                f" WHERE {' AND '.join(where)} ORDER BY due_at NULLS LAST, slug",
                params,
            )
        return [_assignment(r) for r in rows]
