"""Stop class servers that have been idle longer than their class's ``idle_timeout``.

The same rule as ``jupyterhub-idle-culler`` (a ready server whose ``last_activity``, or
``started`` when it never reported activity, is older than the timeout is stopped;
pending servers are left alone), driven by the class records: each class has its own
timeout, and a running server of an archived class is always stopped. Servers are
stopped, never deleted, so their volumes stay. Servers that belong to no class are not
touched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from common.errors import Unavailable
from services.base.hubapi import HubAPI, HubAPIError

from .servers import parse_time
from .store import ClassStore

IDLE = "idle"
ARCHIVED = "archived"


@dataclass(frozen=True)
class Cull:
    username: str
    code: str
    reason: str
    idle_seconds: float | None = None


def cull_reason(server: Mapping, *, idle_timeout: int, archived: bool, now: float) -> str | None:
    """Why ``server`` (a hub server model) should be stopped now, or None."""
    if server.get("pending") or server.get("stopped"):
        return None
    if archived:
        return ARCHIVED
    if not server.get("ready"):
        return None
    last = parse_time(server.get("last_activity")) or parse_time(server.get("started"))
    if last is None:
        return None
    return IDLE if now - last > idle_timeout else None


def plan_culls(classes: Iterable[Mapping], users: Iterable[Mapping], now: float) -> list[Cull]:
    """The servers to stop, from the class records (``code``, ``environment``,
    ``archived``) and the hub's active users."""
    by_code = {c["code"]: c for c in classes}
    culls = []
    for user in users:
        for code, server in (user.get("servers") or {}).items():
            record = by_code.get(code)
            if record is None:
                continue
            timeout = int(record["environment"]["idle_timeout"])
            reason = cull_reason(
                server, idle_timeout=timeout, archived=bool(record.get("archived")), now=now
            )
            if reason:
                last = parse_time(server.get("last_activity")) or parse_time(server.get("started"))
                idle = round(now - last) if last is not None else None
                culls.append(Cull(user["name"], code, reason, idle))
    return culls


class Culler:
    """One round with :meth:`run_once`; :meth:`run_forever` every ``interval`` seconds."""

    def __init__(
        self,
        hub: HubAPI,
        store: ClassStore,
        *,
        clock: Callable[[], float],
        concurrency: int = 8,
        log: logging.Logger | None = None,
    ):
        self.hub = hub
        self.store = store
        self.clock = clock
        self.concurrency = concurrency
        self.log = log or logging.getLogger(__name__)

    async def run_once(self) -> list[Cull]:
        classes = await self.store.environments()
        users = await self.hub.active_users()
        culls = plan_culls(classes, users, self.clock())
        gate = asyncio.Semaphore(self.concurrency)

        async def stop(cull: Cull) -> None:
            async with gate:
                try:
                    await self.hub.stop_server(cull.username, cull.code)
                except HubAPIError as e:
                    self.log.warning("Could not stop %s/%s: %s", cull.username, cull.code, e)
                    return
            self.log.info(
                "Culled %s/%s (%s, idle %ss)",
                cull.username,
                cull.code,
                cull.reason,
                cull.idle_seconds,
            )

        await asyncio.gather(*(stop(c) for c in culls))
        return culls

    async def run_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_once()
            except Unavailable as e:
                self.log.warning("Culling skipped this round: %s (%s)", e, e.detail)
            except HubAPIError as e:
                self.log.error("Culling skipped this round: %s", e)
