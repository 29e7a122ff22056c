"""Who may read and write which area of the bucket (pure rules + the hub's class groups).

=====================  ==========================================  =====================
area                   reads                                       writes
=====================  ==========================================  =====================
``users/<name>/``      that person only                            that person only
``classes/<c>/material/``  the class's students, teachers, admins  its teachers, admins
``classes/<c>/assignments/``  its teachers and admins only           its teachers, admins
=====================  ==========================================  =====================

Services: only the services named in ``FilesApp.release_services`` (the grades service)
may call the files service, and only for an assignment's release
(:func:`check_release_service`): list ``class/<c>/assignments``, upload a starting file
into one assignment's folder for a teacher (the assignment editor's upload: the service
checked that the person is a teacher of the class; the bytes go from the browser to the
store through a presigned URL, never through either service), create a push of one
assignment's starting files, and read such a push. Everything else acts for people.

Class membership is the hub's: group ``class-<code>`` holds the students and
``teachers-<code>`` the teachers (the classes service keeps both in step with its records).
Admins hold no right to a person's private files: nobody but the owner lists, reads or
signs anything in ``users/<name>/``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from common.errors import Forbidden, NotFound
from services.base import names
from services.base.membership import ADMIN, TEACHER, Caller, Membership

PRIVATE, MATERIAL, ASSIGNMENTS = "private", "material", "assignments"

#: what a release service may do (and nothing else): list the starting files of a class's
#: assignments, upload one into an assignment's folder, push one assignment's starting
#: files, read such a push
LIST_STARTING_FILES, RELEASE_PUSH, READ_RELEASE_PUSH = "list", "push", "read"
UPLOAD_STARTING_FILE = "upload"
RELEASE_ACTIONS = frozenset(
    {LIST_STARTING_FILES, UPLOAD_STARTING_FILE, RELEASE_PUSH, READ_RELEASE_PUSH}
)


@dataclass(frozen=True)
class Area:
    """One area of the bucket as the handlers see it."""

    kind: str  # PRIVATE or MATERIAL
    prefix: str  # "users/sam/" or "classes/bio/material/"
    owner: str  # the user name or the class code
    quota: int  # bytes all the area's files may take together
    writable: bool

    @property
    def label(self) -> str:
        if self.kind == PRIVATE:
            return "your files"
        if self.kind == ASSIGNMENTS:
            return f"the assignments' starting files of {self.owner}"
        return f"the material of {self.owner}"

    def key(self, path: str) -> str:
        return names.area_key(self.prefix, path)

    def folder_prefix(self, folder: str) -> str:
        return names.area_folder(self.prefix, folder)

    def path_of(self, key: str) -> str:
        return names.relative_to(self.prefix, key)


def check_release_service(
    service: str, allowed: Collection[str], action: str, *, assignment: str | None
) -> None:
    """Raise Forbidden unless the service ``service`` may do ``action`` on the release
    path: it must be listed in ``allowed`` (``FilesApp.release_services``), the action
    must be one of :data:`RELEASE_ACTIONS`, and a push or an upload must be of one
    assignment (never the class's material). Pure: the hub already said the caller is this
    service."""
    if service not in allowed:
        raise Forbidden(
            f"The service {service!r} may not use the files service (it is not in "
            "FilesApp.release_services)."
        )
    if action not in RELEASE_ACTIONS:
        raise Forbidden(f"A service may only release assignments, not {action!r}.")
    if action != LIST_STARTING_FILES and not assignment:
        raise Forbidden(
            "A service may only push an assignment's starting files (give 'assignment'), "
            "never the class's material."
        )


def private_area(caller: Caller, quota: int) -> Area:
    return Area(PRIVATE, names.user_prefix(caller.name), caller.name, quota, writable=True)


async def material_area(
    membership: Membership, caller: Caller, code: str, quota: int, *, write: bool
) -> tuple[Area, str]:
    """The material area of class ``code`` and the caller's role in the class; refuses
    people outside the class (404: they learn nothing about it) and students who want to
    write (403)."""
    role = await membership.role(caller, code)
    if role is None:
        raise NotFound(f"There is no class {code!r} among your classes.")
    can_write = role in (ADMIN, TEACHER)
    if write and not can_write:
        raise Forbidden("Only the class's teachers can change its material.")
    area = Area(MATERIAL, names.material_prefix(code), code, quota, writable=can_write)
    return area, role


async def assignments_area(membership: Membership, caller: Caller, code: str, quota: int) -> Area:
    """The starting files of class ``code``'s assignments: its teachers and admins only
    (anyone else gets 404: students must not see them before the release)."""
    role = await membership.role(caller, code)
    if role not in (ADMIN, TEACHER):
        raise NotFound(f"There is no class {code!r} among the classes you teach.")
    return Area(ASSIGNMENTS, names.assignments_prefix(code), code, quota, writable=True)
