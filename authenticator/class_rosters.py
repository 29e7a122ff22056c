"""The rosters behind a teacher's class roles, read from the hub's own ORM objects.

The hub checks a teacher's class roles on (nearly) every request of the teacher, so this
reads no database in the steady state: the ``class-<code>`` groups are kept (per hub
database session), and their members and the members' roles are the relationships the
hub's session already holds. JupyterHub works the same way for every request's scopes
(``roles.get_roles_for`` reads ``user.roles`` and ``user.groups`` in memory): its one
session makes every change through it (``expire_on_commit=False``), group membership by
the REST API (the classes service) and roles by sign-ins and the admin pages alike, so the
objects are current. A group that was deleted, or objects the session expired, are read
again.
"""

from __future__ import annotations

from collections.abc import Iterable

from jupyterhub import orm
from sqlalchemy import inspect

from common.groups import TEACHERS_PREFIX, class_code, class_group, codes_of

from .class_roles import Rosters, is_student, rosters


class ClassGroups:
    """``class-<code>`` groups by name, kept between requests (one query per new name)."""

    def __init__(self):
        self._groups: dict[str, orm.Group] = {}

    def get(self, db, names: Iterable[str]) -> list[orm.Group]:
        found, missing = [], []
        for name in names:
            group = self._groups.get(name)
            if group is not None and _alive(group, db) and group.name == name:
                found.append(group)
                continue
            self._groups.pop(name, None)
            missing.append(name)
        if missing:
            for group in db.query(orm.Group).filter(orm.Group.name.in_(missing)):
                self._groups[group.name] = group
                found.append(group)
        return found


def _alive(obj, db) -> bool:
    state = inspect(obj)
    return state.persistent and state.session is db


def teacher_rosters(db, teacher: orm.User, groups: ClassGroups) -> Rosters:
    """The signature of ``teacher``'s classes: each class they teach (a group
    ``teachers-<code>``) with the members of ``class-<code>`` whose classhub role is
    student."""
    codes = codes_of((g.name for g in teacher.groups), TEACHERS_PREFIX)
    if not codes:
        return ()
    members = {
        class_code(group.name): [
            (user.name, is_student((r.name for r in user.roles), bool(user.admin)))
            for user in group.users
        ]
        for group in groups.get(db, [class_group(c) for c in codes])
    }
    return rosters(codes, members)
