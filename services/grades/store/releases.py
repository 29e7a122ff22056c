"""The grades store's queries of release pushes: an assignment's starting files pushed to
its students, claimed round by round."""

from __future__ import annotations

import secrets
from datetime import timedelta

from common.errors import Conflict

from .base import (
    SERVICE_ACTOR,
    StoreBase,
    _actor,
    _id,
    _row,
    _rows,
)
from .records import (
    _ASSIGNMENT_COLUMNS,
    Assignment,
    ReleaseClaim,
    _assignment,
)


class ReleaseQueries(StoreBase):
    """Release pushes (mixed into :class:`services.grades.store.GradesStore`)."""

    async def claim_release(
        self, *, lease: float, assignment_id: int | None = None
    ) -> ReleaseClaim | None:
        """Claim the next assignment whose release push is due (or, with
        ``assignment_id``, that one if it is due) for ``lease`` seconds; None when nothing
        is due or another caller holds the claim.

        Due: a round asked for is not made (``release_pushed < release_rounds``), not
        archived, ``release_at`` NULL or past, no live claim, no retry wait (ignored for
        ``assignment_id``: a teacher's button retries at once). One UPDATE with ``FOR
        UPDATE SKIP LOCKED``: two callers never claim the same round."""
        now = self._now()
        claim = secrets.token_hex(16)
        only = "" if assignment_id is None else " AND id = %(id)s"
        wait = (
            ""
            if assignment_id is not None
            else (" AND (release_retry_at IS NULL OR release_retry_at <= %(now)s)")
        )
        due = (
            "release_pushed < release_rounds AND archived_at IS NULL"
            " AND (release_at IS NULL OR release_at <= %(now)s)"
            " AND (release_claimed_until IS NULL OR release_claimed_until < %(now)s)"
        )
        async with self._connection() as conn:
            row = await _row(
                conn,
                f"UPDATE assignments SET release_claim = %(claim)s,"  # noqa: S608
                " release_claimed_until = %(until)s"
                f" WHERE id = (SELECT id FROM assignments WHERE {due}{wait}{only}"
                " ORDER BY release_at NULLS FIRST, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                f" AND {due}"
                " RETURNING id, class_code, slug, release_pushed + 1 AS round, release_key",
                {
                    "claim": claim,
                    "until": now + timedelta(seconds=lease),
                    "now": now,
                    "id": assignment_id,
                },
            )
        if row is None:
            return None
        return ReleaseClaim(
            assignment_id=row["id"],
            class_code=row["class_code"],
            slug=row["slug"],
            round=row["round"],
            key=row["release_key"],
            claim=claim,
        )

    async def finish_release(self, claim: ReleaseClaim, *, push_id: str | None, files: int) -> bool:
        """Record the round ``claim`` made: the files push ``push_id`` with ``files``
        starting files (None and 0: there were none, nothing was pushed). False when the
        claim was lost meanwhile (it ran out; another caller made the round)."""
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            row = await _row(
                conn,
                "UPDATE assignments SET"
                " release_pushed = GREATEST(release_pushed, %s), release_push_id = %s,"
                " released_at = %s, release_files = %s, release_error = NULL,"
                " release_retry_at = NULL, release_claim = NULL, release_claimed_until = NULL"
                " WHERE id = %s AND release_claim = %s RETURNING class_code",
                (claim.round, push_id, now, files, claim.assignment_id, claim.claim),
            )
            if row is None:
                return False
            await self._audit(
                conn,
                at=now,
                actor=SERVICE_ACTOR,
                action="assignment.release_push",
                class_code=row["class_code"],
                assignment_id=claim.assignment_id,
                new={"round": claim.round, "push_id": push_id, "files": files},
            )
        return True

    async def fail_release(self, claim: ReleaseClaim, error: str, *, retry_after: float) -> bool:
        """Record why the round ``claim`` failed; it is due again ``retry_after`` seconds
        later. False when the claim was lost meanwhile."""
        now = self._now()
        async with self._connection() as conn:
            rows = await _rows(
                conn,
                "UPDATE assignments SET release_error = %s,"
                " release_retry_at = %s, release_claim = NULL, release_claimed_until = NULL"
                " WHERE id = %s AND release_claim = %s RETURNING id",
                (
                    (error or "unknown error")[:500],
                    now + timedelta(seconds=retry_after),
                    claim.assignment_id,
                    claim.claim,
                ),
            )
        return bool(rows)

    async def request_release(self, assignment_id: int, *, actor: str) -> Assignment:
        """A teacher's "Release now" / "Release again now": a release time still to come
        becomes now, and when every round asked for was made one more is asked for (a
        re-push, for files added since). The retry wait of a failed round is dropped.
        Conflict for an archived assignment."""
        assignment_id = _id(assignment_id, "assignment")
        actor = _actor(actor)
        now = self._now()
        async with self._connection() as conn, conn.transaction():
            old = await self._assignment_for_update(conn, assignment_id)
            if old.archived:
                raise Conflict("The assignment is archived: restore it before releasing it.")
            release_at = old.release_at if old.release_at and old.release_at <= now else now
            if old.release_at is None:
                release_at = None
            rounds = old.release_rounds
            if old.release_pushed >= rounds:
                rounds = old.release_pushed + 1
            row = await _row(
                conn,
                f"UPDATE assignments SET release_at = %s, release_rounds = %s,"  # noqa: S608
                " release_retry_at = NULL, updated_by = %s, updated_at = %s,"
                " revision = revision + 1"
                f" WHERE id = %s RETURNING {_ASSIGNMENT_COLUMNS}",
                (release_at, rounds, actor, now, assignment_id),
            )
            new = _assignment(row)
            await self._audit(
                conn,
                at=now,
                actor=actor,
                action="assignment.release",
                class_code=new.class_code,
                assignment_id=new.id,
                old={"release_at": old.release_at, "release_rounds": old.release_rounds},
                new={"release_at": new.release_at, "release_rounds": new.release_rounds},
            )
        return new
