"""The grades store's plumbing: its schema, the pool (:class:`common.postgres.PgPool`) with
the constraint violations a teacher is shown, the clock, the audit log's rows, and the
checks every query module shares."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from common import clock as common_clock
from common.errors import BadRequest, Conflict, Forbidden, NotFound
from common.postgres import PgPool, first_line
from services.base.names import BadName, validate_code, validate_username

from .records import Grade

SCHEMA = "classhub_grades"
#: pg_advisory_xact_lock key of the migrations; the bytes of "chgrades" as an integer
LOCK_KEY = int.from_bytes(b"chgrades", "big")
#: names the store in :class:`~common.errors.StoreUnavailable` (``.store``)
STORE = "grades"
UNAVAILABLE = "The grades database is unreachable right now; try again in a minute."
#: room for the submissions' per-student advisory locks (hashed with this prefix)
_SUBMISSION_LOCK = "classhub_grades.submission"
#: the actor of what the service does by itself in the audit log
SERVICE_ACTOR = "grades-service"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class SubmissionRefused(Forbidden):
    """The deadline has passed and the assignment does not accept late work."""


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to the audit log")


def _jsonb(record: Any) -> Jsonb | None:
    if record is None:
        return None
    data = asdict(record) if hasattr(record, "__dataclass_fields__") else record
    return Jsonb(data, dumps=lambda obj: json.dumps(obj, default=_json_default))


def _username(name: str) -> str:
    try:
        return validate_username(name)
    except BadName as e:
        raise BadRequest(f"Not a valid username: {e}.") from None


def _actor(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("every change needs the name of the person making it")
    return name


def _id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise NotFound(f"There is no {what} with the id {value!r}.")
    return value


def _check_snapshot(sha256: Any, size_bytes: Any, files: Any, storage_key: Any) -> str:
    sha = sha256.lower() if isinstance(sha256, str) else ""
    if not _SHA256_RE.match(sha):
        raise BadRequest("The snapshot's SHA-256 must be 64 hexadecimal digits.")
    for value, what in ((size_bytes, "size"), (files, "file count")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadRequest(f"The snapshot's {what} must be a whole number from 0.")
    if storage_key is not None and (not isinstance(storage_key, str) or not storage_key):
        raise BadRequest("The snapshot's storage key cannot be empty.")
    return sha


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


#: friendly answers for constraint violations, by constraint name
_CONSTRAINT_MESSAGES = {
    "assignments_class_slug_key": (
        "This class already has an assignment with that folder name (perhaps archived); "
        "choose another."
    ),
    "assignments_dates_check": "The due date must be after the release date.",
    "assignments_max_points_check": "The maximum points must be greater than 0, up to 10000.",
    "assignments_late_penalty_check": (
        "The late penalty must be 0 to 100 percent, and 0 when late work is refused."
    ),
    "submissions_version_key": "This version was recorded meanwhile; please submit again.",
    "submissions_storage_key_key": "Another submission is already stored at that place.",
    "grades_points_check": "Points cannot be negative.",
    "extensions_pkey": "This student has an extension already; reload.",
    "grades_pkey": "This submission was graded meanwhile; reload.",
}
# raised by our triggers with a message written for people
_TRIGGER_CONSTRAINTS = {"grades_points_max_check", "assignments_max_points_grades_check"}


async def _rows(conn, query: str, params: Any = ()) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def _row(conn, query: str, params: Any = ()) -> dict | None:
    rows = await _rows(conn, query, params)
    return rows[0] if rows else None


def _class_code(code: str) -> str:
    try:
        return validate_code(code)
    except BadName as e:
        raise BadRequest(f"Not a valid class code: {e}.") from None


def _graded_meanwhile(current: Grade | None) -> Conflict:
    if current is None:
        return Conflict("This submission's grade changed meanwhile; reload it.")
    return Conflict(
        f"This submission was graded meanwhile by {current.graded_by}; reload to see "
        "their grade before changing it."
    )


class StoreBase:
    """What every query module of the store builds on. Call :meth:`open` first (it also
    migrates)."""

    def __init__(
        self,
        dsn: str,
        *,
        clock: Callable[[], float] | None = None,
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 5.0,
        max_versions: int = 20,
        student_quota: int = 1 << 30,
    ):
        if max_versions < 0 or student_quota < 0:
            raise ValueError("max_versions and student_quota cannot be negative")
        #: a student's versions of one assignment (0: no cap) and the bytes all their
        #: stored versions may take (see :func:`services.grades.rules.check_submission_limits`)
        self.max_versions = max_versions
        self.student_quota = student_quota
        self.db = PgPool(
            dsn,
            schema=SCHEMA,
            migrations="services.grades",
            lock_key=LOCK_KEY,
            name="classhub-grades",
            store=STORE,
            message=UNAVAILABLE,
            what="grades database",
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            settings={"TimeZone": "UTC"},
        )
        self._clock = clock or (lambda: common_clock.now())

    async def __aenter__(self):
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the pool (without waiting for connections) and run :meth:`migrate`.

        Raises :class:`~common.errors.StoreUnavailable` when PostgreSQL cannot be reached
        within the timeout; the pool is closed again then and ``open()`` may be retried."""
        await self.db.open()

    @property
    def opened(self) -> bool:
        """Whether :meth:`open` succeeded (the service opens it in the background)."""
        return self.db.opened

    async def migrate(self) -> list[int]:
        """Bring ``classhub_grades`` up to date; returns the versions applied now."""
        return await self.db.migrate()

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        """A health check: raises StoreUnavailable unless PostgreSQL answers."""
        await self.db.ping()

    @asynccontextmanager
    async def _connection(
        self, budget: float | None = None, messages: Mapping[str, str] | None = None
    ) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection (autocommit). Database trouble becomes StoreUnavailable,
        constraint violations Conflict / BadRequest (``messages`` overrides the answers
        for some constraint names)."""
        try:
            async with self.db.connection(budget) as conn:
                yield conn
        except pg_errors.UniqueViolation as e:
            raise Conflict(self._violation(e, messages, "This was changed meanwhile")) from None
        except pg_errors.CheckViolation as e:
            raise BadRequest(self._violation(e, messages, "A value is out of range")) from None
        except pg_errors.ForeignKeyViolation as e:
            raise NotFound(self._violation(e, messages, "It does not exist (any more)")) from None
        except (pg_errors.NotNullViolation, pg_errors.DataError) as e:
            raise BadRequest(f"A value is missing or not valid ({first_line(e)}).") from None

    @staticmethod
    def _violation(e: psycopg.Error, messages: Mapping[str, str] | None, fallback: str) -> str:
        name = e.diag.constraint_name or ""
        if messages and name in messages:
            return messages[name]
        if name in _TRIGGER_CONSTRAINTS and e.diag.message_primary:
            return _sentence(e.diag.message_primary)
        return _CONSTRAINT_MESSAGES.get(name) or f"{fallback} ({name or first_line(e)})."

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _audit(
        self,
        conn,
        *,
        at: datetime,
        actor: str,
        action: str,
        class_code: str | None,
        assignment_id: int | None,
        submission_id: int | None = None,
        username: str | None = None,
        old: Any = None,
        new: Any = None,
    ) -> None:
        await conn.execute(
            "INSERT INTO audit_log (at, actor, action, class_code, assignment_id,"
            " submission_id, username, old, new) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                at,
                actor,
                action,
                class_code,
                assignment_id,
                submission_id,
                username,
                _jsonb(old),
                _jsonb(new),
            ),
        )
