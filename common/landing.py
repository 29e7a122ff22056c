"""Where a person lands after sign-in, and whether they may have a personal server: pure
decisions the hub's landing page (``hub/landing.py``), its home page and the spawner
share.

A student's work lives in their class's server (named server ``<code>``), so by default a
student has no personal (default) server: with one class they land in that class's
JupyterLab, started for them; otherwise on My classes. Teachers and admins land on My
classes, where the classes they teach (all classes, for an admin) and their Grades links
are. Paths are relative to the deployment's base URL (``common.web.nav``'s convention).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from common.web.nav import ROLES, STUDENT

#: My classes, the classes service's page
MY_CLASSES = "services/classes/"


@dataclass(frozen=True)
class ClassChoice:
    """One class a person is a student of: its code and whether it is archived (an
    archived class's servers cannot start)."""

    code: str
    archived: bool = False


def may_start_default_server(role: str, *, student_default_server: bool) -> bool:
    """Whether a person of classhub role ``role`` may start their personal (default)
    server: teachers and admins always; students only when the admin allows it
    (``ClassroomSpawner.student_default_server``)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return role != STUDENT or student_default_server


def landing_path(
    user: str,
    role: str,
    classes: Iterable[ClassChoice],
    *,
    student_default_server: bool,
) -> str:
    """The path (below the base URL) a person lands on after sign-in.

    - a student with exactly one class that can start: the hub's spawn page of that
      class's server (``hub/spawn/<user>/<code>``), which starts it, shows the progress
      and opens its JupyterLab;
    - a student without a class, when personal servers are allowed: their own server
      (``hub/spawn``);
    - everybody else (several classes, no class, teachers, admins): My classes.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if role != STUDENT:
        return MY_CLASSES
    open_classes = sorted({c.code for c in classes if not c.archived})
    if len(open_classes) == 1:
        return f"hub/spawn/{quote(user, safe='')}/{quote(open_classes[0], safe='')}"
    if not open_classes and student_default_server:
        return "hub/spawn"
    return MY_CLASSES
