"""A teacher's rights over their classes, derived from the hub's groups.

The classes service puts each class's teachers in group ``teachers-<code>`` and its
students in ``class-<code>``. A teacher then holds one role per class, scoped with
JupyterHub's ``!group=`` filter to that class's students: see them and their servers,
start and stop those servers, open them to help. Nothing outside their classes.
"""

from __future__ import annotations

TEACHERS_PREFIX = "teachers-"


def class_teacher_role(code: str) -> dict:
    students = f"group=class-{code}"
    return {
        "name": f"teacher-{code}",
        "description": f"Teacher of class {code}: its students and their servers",
        "scopes": [
            f"read:users!{students}",
            f"list:users!{students}",
            f"read:servers!{students}",
            f"start:servers!{students}",
            f"delete:servers!{students}",
            f"access:servers!{students}",
            f"read:groups!group=class-{code}",
            f"read:groups!group={TEACHERS_PREFIX}{code}",
        ],
    }


def class_teacher_roles(group_names) -> list[dict]:
    """One role per class the person teaches, from their group memberships."""
    codes = sorted(
        name[len(TEACHERS_PREFIX) :] for name in group_names if name.startswith(TEACHERS_PREFIX)
    )
    return [class_teacher_role(code) for code in codes if code]
