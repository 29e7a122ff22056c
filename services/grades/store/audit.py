"""The grades store's queries of the audit log: who changed what, when."""

from __future__ import annotations

from .base import (
    StoreBase,
    _rows,
)
from .records import (
    _AUDIT_COLUMNS,
    AuditEntry,
    _from_row,
)


class AuditQueries(StoreBase):
    """The audit log (mixed into :class:`services.grades.store.GradesStore`)."""

    async def audit_entries(
        self,
        *,
        class_code: str | None = None,
        assignment_id: int | None = None,
        submission_id: int | None = None,
        limit: int = 500,
    ) -> list[AuditEntry]:
        """The audit log, oldest first, filtered by any of the given keys."""
        where, params = [], []
        for column, value in (
            ("class_code", class_code),
            ("assignment_id", assignment_id),
            ("submission_id", submission_id),
        ):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                f"SELECT {_AUDIT_COLUMNS} FROM audit_log{clause}"  # noqa: S608
                " ORDER BY id LIMIT %s",
                (*params, max(1, min(int(limit), 10_000))),
            )
        return [_from_row(AuditEntry, r) for r in rows]
