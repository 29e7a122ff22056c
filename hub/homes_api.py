"""``GET /hub/api/classhub/homes/<user>``: how full a person's home folders are.

One entry per server of the person that has a home (the default server and each class
server): ``{"server", "volume", "used", "quota", "limited"}`` in bytes. ``used`` is what
btrfs counted at its last commit (at most ~30 s old); ``quota`` is None for a home
without a limit (a volume from before homes had a size, not yet migrated). Whoever may
read a server (``read:servers`` for it: the person themselves, an admin, a service such
as the classes service) may read its home's use; nobody else learns anything (404).

``DELETE /hub/api/classhub/homes/<user>?confirm=<user>``: remove every home volume of the
person for good (their files in every class), for an admin deleting the person's account
(the Accounts page asks first). Admins only: the caller must be a person with the hub's
admin flag (a service or a teacher gets 403, whatever its scopes), and ``confirm`` must
repeat the name. The person's running servers are stopped first (409 while one is
starting or stopping). It goes through the
spawner's ``remove_home_of``, never ``Spawner.delete_forever``: JupyterHub also runs that
when a named server is removed, which a teacher's ``servers`` scope allows, so a home is
never removed on that path. Answers ``{"user", "removed": [volume names]}``.

Registered by :func:`hub.config.configure_homes`.
"""

from __future__ import annotations

import asyncio
import json

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import needs_scope
from jupyterhub.user import User
from tornado import web


class HomeUsageAPIHandler(APIHandler):
    @needs_scope("read:servers")
    async def get(self, user_name):
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {user_name}")
        may_read = self.get_scope_filter("read:servers")
        names = [
            name
            for name, orm_spawner in sorted(user.orm_user.orm_spawners.items())
            if may_read(orm_spawner, "server")
        ]
        usages = await asyncio.gather(
            *(self._usage(user.spawners[name]) for name in names), return_exceptions=True
        )
        homes = []
        for name, usage in zip(names, usages, strict=True):
            if isinstance(usage, BaseException):
                self.log.warning("Home usage of %s/%s unknown: %s", user.name, name, usage)
                continue
            if usage is not None:
                homes.append({"server": name, **usage})
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps({"user": user.name, "homes": homes}))

    @needs_scope("admin:users")
    async def delete(self, user_name):
        caller = self.current_user
        if not isinstance(caller, User) or not caller.admin:
            raise web.HTTPError(403, "Only an administrator can remove a person's home folders.")
        if self.get_argument("confirm", "") != user_name:
            raise web.HTTPError(
                400, f"Confirm with ?confirm={user_name}: the home folders are removed for good."
            )
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {user_name}")
        if any(sp.pending for sp in user.spawners.values()):
            raise web.HTTPError(
                409, f"A server of {user_name} is starting or stopping; try again in a minute."
            )
        for name, orm_spawner in list(user.orm_user.orm_spawners.items()):
            if orm_spawner.server is not None:
                await self.stop_single_user(user, name)
        # any of the person's spawners reaches all their homes (one that exists: asking for
        # the default one would make it)
        names = list(user.orm_user.orm_spawners)
        spawner = user.spawners[names[0]] if names else user.spawner
        lister = getattr(spawner, "home_servers", None)
        if lister is None:
            raise web.HTTPError(501, "This hub's spawner keeps no home folders to remove.")
        removed = []
        for server in await lister():
            # the spawner answers 503 with the reason when Docker or btrfs refuse
            volume = await spawner.remove_home_of(server)
            if volume:
                removed.append(volume)
        self.log.info("Admin %s removed %d home(s) of %s", caller.name, len(removed), user_name)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps({"user": user_name, "removed": removed}))

    @staticmethod
    async def _usage(spawner) -> dict | None:
        reader = getattr(spawner, "home_usage", None)
        return None if reader is None else await reader()


def handlers() -> list[tuple[str, type]]:
    """For ``c.JupyterHub.extra_handlers`` (the hub adds its ``/hub`` prefix)."""
    return [(r"/api/classhub/homes/([^/]+)", HomeUsageAPIHandler)]
