"""The three classhub roles as JupyterHub role definitions.

The authenticator manages roles (``Authenticator.manage_roles``): every sign-in returns
the complete list of roles the person holds, and JupyterHub's ``sync_roles`` makes the
database match. The list always includes JupyterHub's default ``user`` role, redefined
here without the ``tokens`` scope, so no student can mint an API token that would outlive
a revoked session.
"""

from __future__ import annotations

ROLES = ("admin", "teacher", "student")

# what every signed-in person may do with their own account and servers
STUDENT_SCOPES = (
    "read:users!user",
    "users:activity!user",
    "servers!user",
    "access:servers!user",
    # sign in to the classes, files and grades services (each checks who may see what)
    "access:services!service=classes",
    "access:services!service=files",
    "access:services!service=grades",
)


def _default_role(name: str) -> dict:
    # imported here: jupyterhub.roles loads the hub's ORM (SQLAlchemy, Alembic), 1.5 s of
    # every start of the accounts command, which reads only ROLES and STUDENT_SCOPES
    from jupyterhub.roles import get_default_roles

    return next(dict(r, scopes=list(r["scopes"])) for r in get_default_roles() if r["name"] == name)


def role_definitions(*, student_scopes: list[str], teacher_scopes: list[str]) -> dict[str, dict]:
    """Role dicts by name: ``user`` (everyone), ``classhub-teacher``, ``classhub-student``."""
    return {
        "user": {
            "name": "user",
            "description": "Every signed-in person: their own account and servers, no API tokens",
            "scopes": list(student_scopes),
        },
        "classhub-student": {
            "name": "classhub-student",
            "description": "A student (marker role; rights come from the user role)",
            "scopes": list(student_scopes),
        },
        "classhub-teacher": {
            "name": "classhub-teacher",
            "description": "A teacher; narrowed to the groups of their classes",
            "scopes": list(teacher_scopes) or list(student_scopes),
        },
        "admin": _default_role("admin"),
    }


def roles_for(role: str, definitions: dict[str, dict]) -> list[dict]:
    """The complete role list for a person with classhub role ``role``."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    names = {
        "student": ["user", "classhub-student"],
        "teacher": ["user", "classhub-teacher"],
        "admin": ["user", "admin"],
    }[role]
    return [dict(definitions[n]) for n in names]
