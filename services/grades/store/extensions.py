"""The grades store's queries of extensions: a student's own due date."""

from __future__ import annotations

from datetime import datetime

from common.errors import BadRequest, NotFound

from .base import (
    StoreBase,
    _actor,
    _id,
    _row,
    _rows,
    _username,
)
from .records import (
    _EXTENSION_COLUMNS,
    Extension,
    _from_row,
)


class ExtensionQueries(StoreBase):
    """Extensions (mixed into :class:`services.grades.store.GradesStore`)."""

    async def grant_extension(
        self, assignment_id: int, username: str, due_at: datetime, *, actor: str, reason: str = ""
    ) -> Extension:
        """Give ``username`` a due date of their own (replacing an earlier extension).
        ``due_at`` comes from :func:`services.grades.rules.parse_extension_due`. Granted
        after the deadline, it re-times the versions already taken (on time or late is
        decided against the current deadline) and their deadline snapshot is taken again
        at the new deadline, unless that is already past (then no copy is taken: it would
        record the work done since as on time)."""
        assignment_id = _id(assignment_id, "assignment")
        name = _username(username)
        actor = _actor(actor)
        if not isinstance(due_at, datetime) or due_at.utcoffset() is None:
            raise BadRequest("The extension's due date must include a time zone.")
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            assignment = await self._assignment_for_update(conn, assignment_id)
            if assignment.due_at is not None and due_at <= assignment.due_at:
                raise BadRequest("An extension's due date must be after the assignment's due date.")
            old = await _row(
                conn,
                f"SELECT {_EXTENSION_COLUMNS} FROM extensions"  # noqa: S608
                " WHERE assignment_id = %s AND username = %s FOR UPDATE",
                (assignment_id, name),
            )
            row = await _row(
                conn,
                f"INSERT INTO extensions AS e (assignment_id, username, due_at, granted_by,"  # noqa: S608
                " granted_at, reason) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (assignment_id, username) DO UPDATE SET due_at = excluded.due_at,"
                " granted_by = excluded.granted_by, granted_at = excluded.granted_at,"
                f" reason = excluded.reason RETURNING {_EXTENSION_COLUMNS}",
                (assignment_id, name, due_at, actor, now, reason or ""),
            )
            ext = _from_row(Extension, row)
            await self._replan_student(conn, assignment, name, now)
            await self._redeliver_feedback(conn, assignment_id, name)
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="extension.grant",
                class_code=assignment.class_code,
                assignment_id=assignment_id,
                username=name,
                old=_from_row(Extension, old) if old else None,
                new=ext,
            )
        return ext

    async def revoke_extension(self, assignment_id: int, username: str, *, actor: str) -> None:
        """Remove ``username``'s extension (NotFound when there is none): the assignment's
        due date applies to them again, also to the versions they handed in (on time or
        late is decided against the current deadline). When the assignment's deadline
        has passed, no snapshot is taken for it now (a copy taken now would record the
        work done since as on time): one still to come at the extension's is dropped, and
        the student's versions are judged against the assignment's deadline."""
        assignment_id = _id(assignment_id, "assignment")
        name = _username(username)
        actor = _actor(actor)
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            assignment = await self._assignment_for_update(conn, assignment_id)
            row = await _row(
                conn,
                f"DELETE FROM extensions WHERE assignment_id = %s AND username = %s"  # noqa: S608
                f" RETURNING {_EXTENSION_COLUMNS}",
                (assignment_id, name),
            )
            if row is None:
                raise NotFound(f"{name} has no extension for this assignment.")
            await self._replan_student(conn, assignment, name, now)
            await self._redeliver_feedback(conn, assignment_id, name)
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="extension.revoke",
                class_code=assignment.class_code,
                assignment_id=assignment_id,
                username=name,
                old=_from_row(Extension, row),
            )

    async def list_extensions(self, assignment_id: int) -> list[Extension]:
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"SELECT {_EXTENSION_COLUMNS} FROM extensions"  # noqa: S608
                " WHERE assignment_id = %s ORDER BY username",
                (_id(assignment_id, "assignment"),),
            )
        return [_from_row(Extension, r) for r in rows]
