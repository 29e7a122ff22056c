"""Backups of a Swarm's homes through the hub, for ``classhub-backup`` (backup/swarm.py).

On a Swarm a student's newest files are in the S3 store (a stopped home's saved copy), on
the node of their running server, or on the node a stop could not save them from
(``home_node``). A backup copies the store, so it first asks the hub to put every home
there; a restore of one home puts the archive from a backup beside the home's saved
copies and asks the hub to make it the newest. Both go through the hub because only the
spawner knows where a home is and orders its saves and starts (``SwarmClassroomSpawner``).

``POST /hub/api/classhub/swarm-homes-save``: save every home whose newest files are not
in the store yet (running servers' while they run, pinned ones from their node), at most
``SAVE_CONCURRENCY`` at a time. ``{"homes": [{"user", "server", "volume", "where",
"generation", "saved", "error"}], "saved": n, "failed": n}``; one home that cannot be
saved is reported in its entry (the backup warns about it) and the others go on.

``POST /hub/api/classhub/swarm-homes/<user>/<server>/restore`` with ``{"key": "<staged
key>"}`` (spawner/homesync.py ``staged_key``): that archive becomes the home's newest
copy; the next start restores it on any node. 409 while the server runs or is pending
(stop it first), 400 for a key that is not this home's staged archive or an archive over
the home's limit, 404 for an unknown user or server, 503 when the store is down.

Both need :data:`common.scopes.BACKUP`, which only the ``classhub-backup`` service holds
(:func:`hub.config.configure_backup`); 501 when this hub's spawner is not a Swarm's.
"""

from __future__ import annotations

import asyncio

from jupyterhub import orm
from tornado import web

from common import scopes
from common.errors import ServiceError

from .apibase import ClasshubAPIHandler

#: homes saved at the same time by one backup (each is a one-shot service on its node)
SAVE_CONCURRENCY = 4


class _BackupAPIHandler(ClasshubAPIHandler):
    def _keep_state(self, spawner, before: str) -> None:
        """The node of a home changed (saved, restored): the next start must know."""
        if spawner.home_node != before and spawner.orm_spawner is not None:
            spawner.orm_spawner.state = spawner.get_state()
            self.db.commit()


class SaveAllHomesAPIHandler(_BackupAPIHandler):
    async def post(self):
        self.require_custom_scope(scopes.BACKUP)
        spawner_class = self.settings.get("spawner_class")
        if getattr(spawner_class, "save_home_now", None) is None:
            raise web.HTTPError(501, "This hub's spawner is not a Swarm's.")
        rows = [
            (row.user.name, row.name)
            for row in self.db.query(orm.Spawner)
            if row.server is not None or (row.state or {}).get("home_node")
        ]
        # every home with a saved copy is in the store already; each of these may be newer
        gate = asyncio.Semaphore(SAVE_CONCURRENCY)

        async def save(user_name: str, server_name: str) -> dict:
            spawner = self.users[user_name].spawners[server_name]
            entry = {"user": user_name, "server": server_name, "volume": spawner.home_volume}
            async with gate:
                before = spawner.home_node
                try:
                    result = await spawner.save_home_now()
                except Exception as e:  # one home's fault is that home's entry, never a 500
                    self.log.error("Backup: home of %s/%s not saved: %s", user_name, server_name, e)
                    result = {"where": "", "generation": 0, "saved": False, "error": str(e)}
                self._keep_state(spawner, before)
            return {**entry, **result}

        homes = await asyncio.gather(*(save(u, s) for u, s in rows))
        saved = sum(1 for h in homes if h["saved"])
        self.log.info("Backup: %d home(s) in the store now, %d not", saved, len(homes) - saved)
        self.answer({"homes": homes, "saved": saved, "failed": len(homes) - saved})


class RestoreHomeAPIHandler(_BackupAPIHandler):
    async def post(self, user_name, server_name):
        self.require_custom_scope(scopes.BACKUP)
        body = self.json_object()
        if body is None or not isinstance(body.get("key"), str):
            raise web.HTTPError(400, 'The body must be {"key": "<the staged archive\'s key>"}.')
        user = self.find_user(user_name)
        if user is None:
            raise web.HTTPError(404, f"No such user: {user_name}")
        if server_name not in user.orm_user.orm_spawners:
            which = f"server {server_name!r}" if server_name else "default server"
            raise web.HTTPError(
                404, f"{user_name} has no {which} on this hub: start it once, then restore."
            )
        spawner = user.spawners[server_name]
        adopt = getattr(spawner, "adopt_restored_home", None)
        if adopt is None:
            raise web.HTTPError(501, "This hub's spawner is not a Swarm's.")
        if spawner.pending or spawner.active:
            raise web.HTTPError(
                409,
                f"The server of {user_name} is running, starting or stopping: stop it first, "
                "then restore again. Nothing was changed.",
            )
        before = spawner.home_node
        try:
            generation = await adopt(body["key"])
        except ServiceError as e:  # the spawner's HomeBusy, HomeUnreachable, RestoreRefused
            raise web.HTTPError(e.status_code, str(e)) from None
        self._keep_state(spawner, before)
        self.log.info("Restored the home of %s/%s from a backup", user_name, server_name)
        self.answer(
            {
                "user": user_name,
                "server": server_name,
                "volume": spawner.home_volume,
                "generation": generation,
            }
        )


def handlers() -> list[tuple[str, type]]:
    """For ``c.JupyterHub.extra_handlers`` (the hub adds its ``/hub`` prefix)."""
    return [
        (r"/api/classhub/swarm-homes-save", SaveAllHomesAPIHandler),
        (r"/api/classhub/swarm-homes/([^/]+)/([^/]*)/restore", RestoreHomeAPIHandler),
    ]
