"""The navigation list of every page: one definition, the same items for a role on every
page (hub pages and the services' pages render it with ``classhub/header.html``).

Roles are classhub's: ``admin``, ``teacher``, ``student`` (:func:`role_of`). An item's
``path`` is relative to the deployment's base URL (``/`` by default), so the hub and the
services, which know that URL under different names, render the same links.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from common.groups import TEACHERS_PREFIX

ADMIN, TEACHER, STUDENT = "admin", "teacher", "student"
ROLES = (ADMIN, TEACHER, STUDENT)
#: the services in the order the navigation lists them
SERVICES = ("classes", "files", "grades")


@dataclass(frozen=True)
class NavItem:
    """One link: ``key`` names it (the element's id is ``nav-<key>``), ``path`` is
    relative to the deployment's base URL, ``service`` the service a page of which it
    leads to (empty for the hub's pages)."""

    key: str
    label: str
    path: str
    service: str = ""

    @property
    def element_id(self) -> str:
        return f"nav-{self.key}"


_SERVICE_ITEMS = {
    "classes": NavItem("classes", "My classes", "services/classes/", "classes"),
    "files": NavItem("files", "My files", "services/files/", "files"),
    "grades": NavItem("grades", "Grades", "services/grades/", "grades"),
}
_ADMIN_ITEMS = (
    NavItem("admin", "Admin", "hub/admin"),
    NavItem("sessions", "Sessions", "hub/classhub/sessions"),
    NavItem("accounts", "Accounts", "hub/classhub/accounts"),
    # admins may make API tokens; teachers and students may not (their roles lack the
    # tokens scope: a token must not outlive a revoked session)
    NavItem("token", "Token", "hub/token"),
)


def nav_items(role: str, services: Iterable[str] = SERVICES) -> list[NavItem]:
    """The navigation of a person with classhub role ``role`` when the deployment runs
    ``services`` (names among :data:`SERVICES`; others are ignored): Home, the services
    (My classes, My files, Grades), and for admins Admin, Sessions, Accounts and Token.

    Teachers and students get the same items: what a service shows each of them is the
    service's business, the way there is the same."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    running = set(services)
    items = [NavItem("home", "Home", "hub/home")]
    items += [_SERVICE_ITEMS[name] for name in SERVICES if name in running]
    if role == ADMIN:
        items += _ADMIN_ITEMS
    return items


def role_of(*, admin: bool, roles: Iterable[str] = (), groups: Iterable[str] = ()) -> str:
    """A person's classhub role from what a page knows of them: the hub's admin flag, the
    names of their hub roles (hub pages) or of their groups (the services' pages, whose
    OAuth identity carries groups, not roles): admin, teacher, or student."""
    if admin or "admin" in roles:
        return ADMIN
    if "classhub-teacher" in roles or any(g.startswith(TEACHERS_PREFIX) for g in groups):
        return TEACHER
    return STUDENT
