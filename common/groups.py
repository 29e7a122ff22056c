"""Class codes and the JupyterHub groups that hold a class's people (pure: no I/O).

For class ``<code>`` the classes service keeps two hub groups in step with its record:

- ``class-<code>`` holds the students; its properties carry the class environment under
  ``"classhub"`` (:data:`PROPERTY`), which the spawner reads from the hub's database;
- ``teachers-<code>`` holds the teachers.

The spawner, the authenticator (a teacher's class roles) and the services (who may see
what) all read these names; they are spelled out here only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

#: a class code: a lowercase slug that names the students' class server, its URL segment
#: ``/user/<name>/<code>/`` and the class's hub groups
CODE_PATTERN = r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?"
CODE_RE = re.compile(CODE_PATTERN)

CLASS_PREFIX = "class-"
TEACHERS_PREFIX = "teachers-"
#: the key of group ``class-<code>``'s properties that holds the class environment
PROPERTY = "classhub"
#: a person's relation to a class, as group membership says it
TEACHER, STUDENT = "teacher", "student"


def class_group(code: str) -> str:
    """The group of class ``code``'s students."""
    return CLASS_PREFIX + code


def teachers_group(code: str) -> str:
    """The group of class ``code``'s teachers."""
    return TEACHERS_PREFIX + code


def group_code(group: str, prefix: str) -> str | None:
    """The code of a ``<prefix><code>`` group's name (``prefix``: :data:`CLASS_PREFIX` or
    :data:`TEACHERS_PREFIX`), or None for any other group or an invalid code."""
    code = group[len(prefix) :] if group.startswith(prefix) else ""
    return code if CODE_RE.fullmatch(code) else None


def class_code(group: str) -> str | None:
    """The code of a ``class-<code>`` group's name, or None for any other group."""
    return group_code(group, CLASS_PREFIX)


def codes_of(groups: Iterable[str], prefix: str) -> list[str]:
    """The sorted codes of the ``<prefix><code>`` groups among ``groups`` (the classes a
    person takes, with :data:`CLASS_PREFIX`, or teaches, with :data:`TEACHERS_PREFIX`)."""
    return sorted({c for g in groups if (c := group_code(g, prefix)) is not None})


def class_roles(groups: Iterable[str]) -> dict[str, str]:
    """``{code: TEACHER or STUDENT}`` of the classes a person takes or teaches, from the
    names of their hub groups (teaching wins when both), sorted by code."""
    roles: dict[str, str] = {}
    for group in groups:
        for prefix, role in ((TEACHERS_PREFIX, TEACHER), (CLASS_PREFIX, STUDENT)):
            code = group_code(group, prefix)
            if code is not None and roles.get(code) != TEACHER:
                roles[code] = role
    return dict(sorted(roles.items()))


def _class_text(model: Mapping | None, key: str) -> str | None:
    """Text ``key`` of the class environment in a ``class-<code>`` group model (None when
    absent, empty or not text)."""
    props = ((model or {}).get("properties") or {}).get(PROPERTY) or {}
    value = props.get(key) if isinstance(props, dict) else None
    return value if isinstance(value, str) and value.strip() else None


def class_image(model: Mapping | None) -> str | None:
    """The image of the class's servers from its ``class-<code>`` group model (None when it
    names none)."""
    return _class_text(model, "image")


def class_name(model: Mapping | None, code: str) -> str:
    """The class's name from its ``class-<code>`` group model (the code when it has none)."""
    return _class_text(model, "name") or code
