"""A person's relation to a class, from the hub's groups (the files and grades services).

Group ``class-<code>`` holds a class's students and ``teachers-<code>`` its teachers
(:mod:`common.groups`; the classes service keeps both in step with its records). Admins
are admins of every class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.errors import NotFound
from common.groups import STUDENT, TEACHER, class_group, teachers_group

from . import names
from .hubapi import HubAPI

ADMIN = "admin"

__all__ = ["ADMIN", "STUDENT", "TEACHER", "Caller", "Membership"]


@dataclass(frozen=True)
class Caller:
    name: str
    admin: bool = False

    @classmethod
    def from_model(cls, model: Mapping) -> Caller:
        return cls(name=str(model["name"]), admin=bool(model.get("admin")))


class Membership:
    """A person's relation to a class, from the hub's groups (answers reused for about a
    second through the hub client's read cache)."""

    def __init__(self, hub: HubAPI):
        self.hub = hub

    async def _members(
        self, group: str, *, stale_ok: bool = False, fresh: bool = False
    ) -> frozenset[str] | None:
        async def fetch():
            model = await self.hub.get_group(group)
            return None if model is None else frozenset(model.get("users") or ())

        if fresh:
            return await fetch()
        return await self.hub.reads.get(("group", group), fetch, stale_ok=stale_ok)

    async def role(self, caller: Caller, code: str) -> str | None:
        code = names.validate_code(code)
        if caller.admin:
            return ADMIN
        # the cached answer first; a person it does not know is asked about afresh, so
        # somebody enrolled a moment ago is never told the class is not theirs
        for fresh in (False, True):
            if caller.name in (await self._members(teachers_group(code), fresh=fresh) or ()):
                return TEACHER
            if caller.name in (await self._members(class_group(code), fresh=fresh) or ()):
                return STUDENT
        return None

    async def exists(self, code: str) -> bool:
        return await self._members(class_group(names.validate_code(code))) is not None

    async def students_for_display(self, code: str) -> list[str]:
        """The class's students for a page (a cached answer a few seconds old will do)."""
        members = await self._members(class_group(names.validate_code(code)), stale_ok=True)
        return sorted(members or ())

    async def students(self, code: str) -> list[str]:
        """The class's students, read fresh (a push must not miss a new student)."""
        model = await self.hub.get_group(class_group(names.validate_code(code)))
        if model is None:
            raise NotFound(f"There is no class {code!r}.")
        return sorted(model.get("users") or ())
