"""``GET /hub/api/classhub/homes/<user>``: how full a person's home folders are.

One entry per server of the person that has a home (the default server and each class
server): ``{"server", "volume", "used", "quota", "limited"}`` in bytes. ``used`` is what
btrfs counted at its last commit (at most ~30 s old); ``quota`` is None for a home
without a limit (a volume from before homes had a size, not yet migrated). Whoever may
read a server (``read:servers`` for it: the person themselves, an admin, a service such
as the classes service) may read its home's use; nobody else learns anything (404).

Registered by :func:`hub.config.configure_homes`.
"""

from __future__ import annotations

import asyncio
import json

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import needs_scope
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

    @staticmethod
    async def _usage(spawner) -> dict | None:
        reader = getattr(spawner, "home_usage", None)
        return None if reader is None else await reader()


def handlers() -> list[tuple[str, type]]:
    """For ``c.JupyterHub.extra_handlers`` (the hub adds its ``/hub`` prefix)."""
    return [(r"/api/classhub/homes/([^/]+)", HomeUsageAPIHandler)]
