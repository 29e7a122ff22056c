"""Who may do what with a class (pure functions of the caller and the class record).

- admins (the hub user model's ``admin`` flag) create classes, assign teachers and may
  do everything a teacher may, in every class;
- a teacher (listed in the class's ``teachers``) edits their own class: name, term,
  environment within the admin's limits, roster, archived; never the teachers or code;
- a student (listed in ``students``) sees the class's code, name, term and their own
  server, never the roster;
- anyone else sees nothing of the class.

Teachers enrol, start and stop only people whose classhub role is ``student``
(:func:`hub_role`, from the hub's roles of the person); admins may enrol anyone, and an
admin or a teacher on a roster is out of reach of the class's teachers (the hub gives
teachers no rights over their servers either: ``authenticator/class_roles.py``).

Each ``require_*`` raises :class:`~common.errors.Forbidden` with a message that
says what the caller lacks.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from common.errors import Forbidden

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


def hub_role(model: Mapping) -> str | None:
    """A person's classhub role from their hub user model (its ``roles``, which the
    service reads with ``read:roles:users``): admin, teacher, student, or None while the
    hub does not know it (a hub user who never signed in and has no local account made
    by an admin)."""
    roles = set(model.get("roles") or ())
    if model.get("admin") or "admin" in roles:
        return ADMIN
    if "classhub-teacher" in roles:
        return TEACHER
    if "classhub-student" in roles:
        return STUDENT
    return None


#: what teachers may do, as the first words of a refusal
ENROL_ONLY = "Teachers can enrol only students"
SERVERS_ONLY = "Teachers can start or stop only their students' servers"


def student_problem(rel: str, name: str, role: str | None, rule: str) -> str:
    """Why ``rel`` (the caller's relation to the class) may not act on ``name``, whose hub
    role is ``role``, under ``rule`` (:data:`ENROL_ONLY`, :data:`SERVERS_ONLY`); empty when
    they may (admins: anyone; teachers: students)."""
    if rel == ADMIN or role == STUDENT:
        return ""
    if role in (ADMIN, TEACHER):
        who = "an administrator" if role == ADMIN else "a teacher"
        return f"{rule}: {name} is {who}. Ask an administrator if that is needed."
    return (
        f"{rule}, and {name} has no student role on this hub yet (they have never signed "
        "in): ask them to sign in once, or ask an administrator."
    )


def require_student(rel: str, name: str, role: str | None, rule: str) -> None:
    problem = student_problem(rel, name, role, rule)
    if problem:
        raise Forbidden(problem)


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
    """Start or stop ``username``'s server of this class: a student or teacher their own;
    an admin anyone's on the roster; a teacher of the class its students' (the caller
    also checks the student's hub role with :func:`require_student`), never another
    teacher's."""
    rel = relation(actor, record)
    code = record["code"]
    students = record.get("students", ())
    if username == actor.name and rel in (TEACHER, STUDENT):
        return rel
    if rel == ADMIN:
        if username not in students and username not in record.get("teachers", ()):
            raise Forbidden(f"{username} is not on the roster of class {code!r}.")
        return rel
    if rel == TEACHER:
        if username in record.get("teachers", ()):
            raise Forbidden(
                f"Teachers can start or stop only their students' servers: {username} is a "
                f"teacher of class {code!r}."
            )
        if username not in students:
            raise Forbidden(f"{username} is not on the roster of class {code!r}.")
        return rel
    raise Forbidden(
        f"Only the teachers of class {code!r} can start or stop other people's servers."
    )
