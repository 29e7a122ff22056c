"""Who may do what with a class (pure functions of the caller and the class record).

- admins (the hub user model's ``admin`` flag) create classes, assign teachers and may
  do everything a teacher may, in every class;
- a teacher (listed in the class's ``teachers``) edits their own class: name, term,
  environment within the admin's limits, roster, archived; never the teachers or code;
- a student (listed in ``students``) sees the class's code, name, term and their own
  server, never the roster;
- anyone else sees nothing of the class.

Each ``require_*`` raises :class:`~services.base.errors.Forbidden` with a message that
says what the caller lacks.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from services.base.errors import Forbidden

from .model import ADMIN_FIELDS, TEACHER_FIELDS

ADMIN = "admin"
TEACHER = "teacher"
STUDENT = "student"


@dataclass(frozen=True)
class Actor:
    """The person calling, from their hub user model."""

    name: str
    admin: bool = False

    @classmethod
    def from_model(cls, model: Mapping) -> Actor:
        return cls(name=str(model["name"]), admin=bool(model.get("admin")))


def relation(actor: Actor, record: Mapping) -> str | None:
    """How ``actor`` relates to the class: admin, teacher, student or None."""
    if actor.admin:
        return ADMIN
    if actor.name in record.get("teachers", ()):
        return TEACHER
    if actor.name in record.get("students", ()):
        return STUDENT
    return None


def can_see(actor: Actor, record: Mapping) -> bool:
    return relation(actor, record) is not None


def can_manage(actor: Actor, record: Mapping) -> bool:
    """Roster, servers and settings of the class: its teachers and admins."""
    return relation(actor, record) in (ADMIN, TEACHER)


def require_admin(actor: Actor, action: str) -> None:
    if not actor.admin:
        raise Forbidden(f"Only an administrator can {action}.")


def require_see(actor: Actor, record: Mapping) -> str:
    rel = relation(actor, record)
    if rel is None:
        raise Forbidden(f"You are not a teacher or student of class {record['code']!r}.")
    return rel


def require_manage(actor: Actor, record: Mapping, action: str) -> str:
    rel = relation(actor, record)
    if rel not in (ADMIN, TEACHER):
        raise Forbidden(f"Only the teachers of class {record['code']!r} can {action}.")
    return rel


def require_edit(actor: Actor, record: Mapping, fields: Collection[str]) -> str:
    """``fields`` of the class may be changed by ``actor``."""
    rel = require_manage(actor, record, "change it")
    allowed = ADMIN_FIELDS if rel == ADMIN else TEACHER_FIELDS
    refused = sorted(set(fields) - allowed)
    if refused:
        raise Forbidden(
            f"You cannot change {', '.join(refused)} of class {record['code']!r}"
            + ("; ask an administrator." if rel == TEACHER else ".")
        )
    return rel


def require_server_control(actor: Actor, record: Mapping, username: str) -> str:
    """Start or stop ``username``'s server of this class: a teacher of the class or an
    admin, for anyone on the roster; a student for their own server only."""
    rel = relation(actor, record)
    on_roster = username in record.get("students", ()) or username in record.get("teachers", ())
    if rel in (ADMIN, TEACHER):
        if not on_roster:
            raise Forbidden(f"{username} is not on the roster of class {record['code']!r}.")
        return rel
    if rel == STUDENT and username == actor.name:
        return rel
    raise Forbidden(
        f"Only the teachers of class {record['code']!r} can start or stop other people's servers."
    )
