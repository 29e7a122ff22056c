"""A teacher's rights over their classes, derived from the hub's groups and roles.

The classes service puts each class's teachers in group ``teachers-<code>`` and its
students in ``class-<code>``. A teacher then holds one role ``teacher-<code>`` per class
whose scopes name each student's class server, and nothing else::

    servers!server=<student>/<code>          read, start, stop it (the hub API and pages)
    access:servers!server=<student>/<code>   open it in the browser

Never a student's default server or another class's server, and only members whose
classhub role is ``student`` (their hub roles include ``classhub-student``, and neither
``admin`` nor ``classhub-teacher``): an admin or a teacher in a class's group (an admin
may enrol anyone) gives the class's teachers nothing. A member whose role the hub does
not know yet (never signed in) is left out too, until they sign in as a student.

A ``!group=`` filter would cover every server of every member, so the roster is spelled
out server by server: a class of 300 is a role of 600 scopes, whose scopes change with the
roster. :func:`rosters` is the cheap part that runs on a teacher's requests: it gives a
hashable *signature* of the teacher's classes (code and eligible students); the role
dicts are only built from it when it changed (see ``JWTAuthenticator.refresh_user``).
"""

from __future__ import annotations

from collections.abc import Iterable

ROLE_PREFIX = "teacher-"
STUDENT_ROLE = "classhub-student"
#: hub roles that make a member anything but a student
NOT_STUDENT_ROLES = frozenset({"admin", "classhub-teacher"})

#: ((code, (student, ...)), ...), both sorted: what a teacher's class roles are made of
Rosters = tuple[tuple[str, tuple[str, ...]], ...]


def is_student(role_names: Iterable[str], admin: bool = False) -> bool:
    """True when the hub's roles of a user say their classhub role is ``student``."""
    names = set(role_names)
    return not admin and STUDENT_ROLE in names and not names & NOT_STUDENT_ROLES


def rosters(codes: Iterable[str], members: dict[str, Iterable[tuple[str, bool]]]) -> Rosters:
    """The signature of a teacher's classes.

    ``members[code]`` lists ``(name, is_student)`` for each member of group
    ``class-<code>`` (a class without a group has no entry). Only students count.
    """
    return tuple(
        (code, tuple(sorted({name for name, student in members.get(code, ()) if student})))
        for code in sorted(set(codes))
    )


def class_teacher_role(code: str, students: Iterable[str]) -> dict:
    scopes: list[str] = []
    for name in sorted(set(students)):
        server = f"server={name}/{code}"
        scopes += [f"servers!{server}", f"access:servers!{server}"]
    return {
        "name": f"{ROLE_PREFIX}{code}",
        "description": f"Teacher of class {code}: its students' class servers",
        "scopes": scopes,
    }


def class_teacher_roles(signature: Rosters) -> list[dict]:
    """One role per class with at least one student (a role without scopes grants
    nothing, and JupyterHub warns about it)."""
    return [class_teacher_role(code, students) for code, students in signature if students]
