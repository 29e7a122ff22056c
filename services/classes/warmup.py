"""Warm before class: start the class servers of a class's students before each meeting.

Every ``warm_interval`` seconds, one round (:meth:`Warmer.run_once`):

1. follows the servers it started earlier: notes when each is first seen ready, and once
   ``stop_after`` seconds of its meeting have passed, stops it if nobody used it
   (:func:`.schedule.is_unused`) and leaves it to the idle culler otherwise;
2. for each class whose meeting starts within ``lead`` seconds
   (:func:`.schedule.due_meeting`), starts the servers of its enrolled students (hub
   role student; teachers and admins on a roster are left alone) that are not running
   and were not warmed for that meeting yet, at most ``capacity`` warm servers running
   platform-wide (:func:`.schedule.plan_warm`), through the same hub calls as a
   teacher's "start all" (:func:`.bulk.run_bulk`), marked as background starts so that
   students' own starts overtake them in the hub's start queue.

What it started is recorded in MongoDB (``warm_servers``), one record per student, class
and meeting, so a restart of the service neither starts a server twice nor forgets to
stop one. A server the warm-up did not start (its student or teacher started it) is
never stopped by it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from common.errors import Unavailable
from services.base.hubapi import HubAPI, HubAPIError

from .bulk import run_bulk
from .rules import STUDENT, hub_role
from .schedule import Due, due_meeting, is_unused, plan_warm
from .servers import START, parse_time
from .store import ClassStore

WARM, GONE, STOPPED, USED, FAILED = "warm", "gone", "stopped", "used", "failed"
#: records of meetings older than this are removed (seconds)
KEEP_RECORDS = 2 * 86400


@dataclass
class WarmRound:
    """What one round did (for logs and tests)."""

    started: list[tuple[str, str]] = field(default_factory=list)
    failed: dict[tuple[str, str], str] = field(default_factory=dict)
    stopped: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    warm_now: int = 0
    capacity_left: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.started)} started, {len(self.failed)} refused, "
            f"{len(self.stopped)} unused stopped, {len(self.kept)} used kept, "
            f"{self.warm_now} warm, room for {self.capacity_left}"
        )


class Warmer:
    def __init__(
        self,
        hub: HubAPI,
        store: ClassStore,
        *,
        clock: Callable[[], float],
        lead: float,
        capacity: int,
        stop_after: float,
        concurrency: int = 8,
        log: logging.Logger | None = None,
    ):
        self.hub = hub
        self.store = store
        self.clock = clock
        self.lead = lead
        self.capacity = capacity
        self.stop_after = stop_after
        self.concurrency = concurrency
        self.log = log or logging.getLogger(__name__)

    async def run_once(self) -> WarmRound:
        now = self.clock()
        result = WarmRound()
        users = await self.hub.active_users(fresh=True)
        servers = {
            (u["name"], code): server
            for u in users
            for code, server in (u.get("servers") or {}).items()
        }
        user_activity = {u["name"]: parse_time(u.get("last_activity")) for u in users}
        records = await self.store.warm_records()
        warm_now = await self._follow(records, servers, user_activity, now, result)

        due = []
        warmed = {(r["username"], r["code"], r["meeting"]) for r in records}
        for record in await self.store.scheduled():
            meeting = due_meeting(record["schedule"], now, self.lead)
            if meeting is None:
                continue
            candidates = [
                n
                for n in dict.fromkeys(record.get("students") or ())
                if (n, record["code"]) not in servers and (n, record["code"], meeting) not in warmed
            ]
            if not candidates:
                continue
            models = await self.hub.user_models(candidates, concurrency=self.concurrency)
            students = tuple(
                n for n in candidates if n in models and hub_role(models[n]) == STUDENT
            )
            due.append(Due(record["code"], meeting, students))

        plan = plan_warm(
            due,
            active=set(servers),
            warmed=warmed,
            warm_now=warm_now,
            capacity=self.capacity,
        )
        by_class: dict[tuple[str, float], list[str]] = {}
        for w in plan:
            if await self.store.add_warm(w.code, w.username, w.meeting, now=now):
                by_class.setdefault((w.code, w.meeting), []).append(w.username)
        for (code, meeting), names in by_class.items():
            failed = await run_bulk(
                self.hub, START, names, code, concurrency=self.concurrency, background=True
            )
            for name in names:
                if name in failed:
                    result.failed[(name, code)] = failed[name]
                    await self.store.set_warm(code, name, meeting, state=FAILED)
                else:
                    result.started.append((name, code))
            if names:
                self.log.info(
                    "Warm-up of %s for its meeting at %s: %d started, %d refused",
                    code,
                    meeting,
                    len(names) - len(failed),
                    len(failed),
                )
        result.warm_now = warm_now + len(result.started)
        result.capacity_left = max(0, self.capacity - result.warm_now)
        await self.store.forget_warm(now - KEEP_RECORDS)
        return result

    async def _follow(
        self,
        records: list[dict],
        servers: dict[tuple[str, str], dict],
        user_activity: dict[str, float | None],
        now: float,
        result: WarmRound,
    ) -> int:
        """Update the warm servers' records, stop the unused ones whose time is up;
        how many warm servers still run."""
        warm_now = 0
        to_stop = []
        for r in records:
            if r.get("state") != WARM:
                continue
            key = (r["username"], r["code"])
            server = servers.get(key)
            if server is None:
                # stopped meanwhile (by its student, a teacher, the culler)
                await self.store.set_warm(r["code"], r["username"], r["meeting"], state=GONE)
                continue
            if server.get("ready") and r.get("ready_at") is None:
                r["ready_at"], r["started"] = now, server.get("started")
                await self.store.set_warm(
                    r["code"], r["username"], r["meeting"], ready_at=now, started=r["started"]
                )
            if now < r["meeting"] + self.stop_after:
                warm_now += 1
                continue
            unused = is_unused(
                server=server,
                user_last_activity=user_activity.get(r["username"]),
                server_last_activity=parse_time(server.get("last_activity")),
                started=r.get("started"),
                ready_at=r.get("ready_at"),
            )
            if unused:
                to_stop.append(r)
            elif server.get("ready"):
                await self.store.set_warm(r["code"], r["username"], r["meeting"], state=USED)
                result.kept.append(key)
            else:
                warm_now += 1  # still pending: look again next round
        gate = asyncio.Semaphore(max(1, self.concurrency))

        async def stop(r: dict) -> None:
            async with gate:
                try:
                    await self.hub.stop_server(r["username"], r["code"])
                except HubAPIError as e:
                    self.log.warning(
                        "Could not stop unused warm server %s/%s: %s", r["username"], r["code"], e
                    )
                    return
            await self.store.set_warm(r["code"], r["username"], r["meeting"], state=STOPPED)
            result.stopped.append((r["username"], r["code"]))
            self.log.info("Stopped unused warm server %s/%s", r["username"], r["code"])

        await asyncio.gather(*(stop(r) for r in to_stop))
        return warm_now

    async def run_forever(self, interval: float) -> None:
        while True:
            try:
                result = await self.run_once()
                if result.started or result.stopped or result.failed:
                    self.log.info("Warm-up round: %s", result.summary())
            except Unavailable as e:
                self.log.warning("Warm-up skipped this round: %s (%s)", e, e.detail)
            except HubAPIError as e:
                self.log.error("Warm-up skipped this round: %s", e)
            await asyncio.sleep(interval)
