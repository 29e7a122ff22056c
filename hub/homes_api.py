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

On a Swarm (``SwarmClassroomSpawner``), where a home is a volume on one of several nodes,
the services' helper services need to know where (:mod:`services.base.swarmhomes`); both
need the scope ``custom:classhub:homes`` (:data:`common.scopes.HOMES`), which the files,
grades and classes services hold:

``GET /hub/api/classhub/swarm-homes``: ``{"volumes": [...]}``, every home volume that
exists anywhere (a saved copy in the store, a running server's, one whose newest files are
on a node).

``POST /hub/api/classhub/swarm-homes/<user>/<server>`` with ``{"write": true|false}``:
``{"node": "<node ID>", "volume"}`` where the home is (its running server's node, or the
node holding its newest files; a stopped home only in the store is first brought onto a
node). ``node`` is "" for a home never made. 409 while the server starts or stops, 503 when
the home cannot be reached now (with the reason), 501 when this hub's spawner is not a
Swarm's.

Registered by :func:`hub.config.configure_homes`.
"""

from __future__ import annotations

import asyncio

from jupyterhub import orm
from jupyterhub.scopes import needs_scope
from jupyterhub.user import User
from tornado import web

from common import scopes
from common.errors import Conflict, Unavailable
from common.naming import object_name

from .apibase import ClasshubAPIHandler


class HomeUsageAPIHandler(ClasshubAPIHandler):
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
        self.answer({"user": user.name, "homes": homes})

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
        self.answer({"user": user_name, "removed": removed})

    @staticmethod
    async def _usage(spawner) -> dict | None:
        reader = getattr(spawner, "home_usage", None)
        return None if reader is None else await reader()


class SwarmHomesAPIHandler(ClasshubAPIHandler):
    """Which homes exist on the Swarm, and on which node one is (see the module's text)."""

    def _spawner_of_any(self):
        """A spawner object for the deployment's settings (an existing server's: asking
        for a new one would make it), or None when nobody has a server yet."""
        orm_spawner = self.db.query(orm.Spawner).first()
        if orm_spawner is None:
            return None
        return self.users[orm_spawner.user].spawners[orm_spawner.name]

    async def get(self):
        self.require_custom_scope(scopes.HOMES)
        spawner = self._spawner_of_any()
        volumes: set[str] = set()
        if spawner is not None:
            lister = getattr(spawner, "existing_homes", None)
            if lister is None:
                raise web.HTTPError(501, "This hub's spawner is not a Swarm's.")
            try:
                volumes = set(await lister())
            except Exception as e:  # the store (minio's errors): nothing to list from
                self.log.warning("Saved homes not listed: %s", e)
                raise web.HTTPError(
                    503, "The store of saved home folders cannot be reached; try again soon."
                ) from None
            for row in self.db.query(orm.Spawner):
                if row.server is not None or (row.state or {}).get("home_node"):
                    volumes.add(object_name(spawner.prefix, "home", row.user.name, row.name))
        self.answer({"volumes": sorted(volumes)})

    async def post(self, user_name, server_name):
        self.require_custom_scope(scopes.HOMES)
        body = self.json_object()
        if body is None or not isinstance(body.get("write", False), bool):
            raise web.HTTPError(400, 'The body must be {"write": true} or {"write": false}.')
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {user_name}")
        if server_name not in user.orm_user.orm_spawners:  # never made: nor its home
            self._answer(user_name, server_name, "", "")
            return
        spawner = user.spawners[server_name]
        locate = getattr(spawner, "locate_home", None)
        if locate is None:
            raise web.HTTPError(501, "This hub's spawner is not a Swarm's.")
        if spawner.pending:
            raise web.HTTPError(
                409,
                f"The class server of {user_name} is starting or stopping; try again in a minute.",
            )
        before = spawner.home_node
        try:
            node = await locate(write=body.get("write", False))
        except (Conflict, Unavailable) as e:  # the spawner's HomeBusy, HomeUnreachable
            raise web.HTTPError(e.status_code, str(e)) from None
        if spawner.home_node != before:  # the next start must find the node: keep it
            spawner.orm_spawner.state = spawner.get_state()
            self.db.commit()
        self._answer(user_name, server_name, node, spawner.home_volume if node else "")

    def _answer(self, user: str, server: str, node: str, volume: str) -> None:
        self.answer({"user": user, "server": server, "node": node, "volume": volume})


def handlers() -> list[tuple[str, type]]:
    """For ``c.JupyterHub.extra_handlers`` (the hub adds its ``/hub`` prefix)."""
    return [
        (r"/api/classhub/homes/([^/]+)", HomeUsageAPIHandler),
        (r"/api/classhub/swarm-homes", SwarmHomesAPIHandler),
        (r"/api/classhub/swarm-homes/([^/]+)/([^/]*)", SwarmHomesAPIHandler),
    ]
