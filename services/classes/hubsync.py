"""Keep each class's JupyterHub groups in step with its record.

For class ``<code>``:

- group ``class-<code>`` holds the students; its properties carry the class environment
  under ``"classhub"``: ``{"code", "name", "image", "cpu_limit", "mem_limit",
  "idle_timeout", "archived"}`` (the spawner reads it from the hub's database; other keys
  of the properties are left alone);
- group ``teachers-<code>`` holds the teachers (the hub grants them access to the
  servers of group ``class-<code>``).

Syncing is idempotent: it computes the difference between the record and the hub and
applies only that. :meth:`GroupSync.sync` runs after every change (one class, serialised
per class and re-reading the record, so concurrent changes converge on the latest);
:meth:`GroupSync.reconcile` fixes every class at start-up and periodically. Groups that
are not a class's are never touched, and no group is ever deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from common.clock import now as clock_now
from common.groups import PROPERTY, class_group, teachers_group
from services.base.hubapi import HubAPI, HubBadRequest

from .store import ClassStore


def group_properties(record: Mapping) -> dict:
    """What the spawner reads from group ``class-<code>``."""
    env = record["environment"]
    return {
        "code": record["code"],
        "name": record["name"],
        "image": env["image"],
        "cpu_limit": env["cpu_limit"],
        "mem_limit": env["mem_limit"],
        "idle_timeout": env["idle_timeout"],
        "archived": bool(record.get("archived")),
    }


@dataclass(frozen=True)
class GroupPlan:
    """What to change in one hub group (nothing when :attr:`empty`)."""

    name: str
    create: bool = False
    add: frozenset[str] = frozenset()
    remove: frozenset[str] = frozenset()
    properties: dict | None = None  # the complete new properties, or None: unchanged

    @property
    def empty(self) -> bool:
        return not (self.create or self.add or self.remove or self.properties is not None)


def plan_group(
    name: str, members: Iterable[str], current: Mapping | None, classhub: dict | None = None
) -> GroupPlan:
    """The changes that make hub group ``current`` (its model, None if missing) hold
    exactly ``members`` and, when given, ``classhub`` under its ``"classhub"`` property."""
    want = frozenset(members)
    have = frozenset((current or {}).get("users") or ())
    props = dict((current or {}).get("properties") or {})
    new_props = None
    if classhub is not None and props.get(PROPERTY) != classhub:
        new_props = {**props, PROPERTY: classhub}
    return GroupPlan(
        name=name,
        create=current is None,
        add=want - have,
        remove=have - want,
        properties=new_props,
    )


def plan_class(record: Mapping, groups: Mapping[str, Mapping]) -> list[GroupPlan]:
    """The plans for both groups of a class, given the hub's groups by name."""
    code = record["code"]
    students, teachers = class_group(code), teachers_group(code)
    return [
        plan_group(
            students, record.get("students", ()), groups.get(students), group_properties(record)
        ),
        plan_group(teachers, record.get("teachers", ()), groups.get(teachers)),
    ]


@dataclass
class ReconcileReport:
    classes: int = 0
    changed: list[str] = field(default_factory=list)
    #: people who are no hub users any more, taken off these classes
    gone: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        text = (
            f"{self.classes} class(es): fixed groups {', '.join(self.changed)}"
            if self.changed
            else f"{self.classes} class(es): hub groups already in step"
        )
        if self.gone:
            people = "; ".join(f"{n} ({', '.join(c)})" for n, c in sorted(self.gone.items()))
            text += f"; deleted accounts taken off their classes: {people}"
        return text


def rosters_without(record: Mapping, gone: set[str]) -> tuple[list[str], list[str]]:
    """``(students, teachers)`` of ``record`` that are in ``gone``."""
    return (
        [n for n in record.get("students", ()) if n in gone],
        [n for n in record.get("teachers", ()) if n in gone],
    )


class GroupSync:
    def __init__(
        self,
        hub: HubAPI,
        store: ClassStore,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = clock_now,
    ):
        self.hub = hub
        self.store = store
        self.clock = clock
        self.log = log or logging.getLogger(__name__)
        self._locks: dict[str, asyncio.Lock] = {}
        # syncs started by sync_soon(), referenced until they finish
        self._background: set[asyncio.Task] = set()

    def sync_soon(self, code: str) -> None:
        """Sync class ``code`` in the background (for changes nobody waits on, such as a
        new name); a failure is logged and left to the next reconciliation."""
        task = asyncio.ensure_future(self._sync_logged(code))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _sync_logged(self, code: str) -> None:
        try:
            await self.sync(code)
        except Exception as e:  # noqa: BLE001 - background work: log, reconcile later
            self.log.warning("Hub groups of %s not synced yet (will retry): %s", code, e)

    async def wait_background(self) -> None:
        """Let the background syncs finish (shutdown and tests)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def sync(self, code: str) -> None:
        """Make class ``code``'s groups match its current record."""
        lock = self._locks.setdefault(code, asyncio.Lock())
        async with lock:
            record = await self.store.get(code)
            if record is None:
                return
            names = (class_group(code), teachers_group(code))
            found = await asyncio.gather(*(self.hub.get_group(n) for n in names))
            groups = {n: g for n, g in zip(names, found, strict=True) if g is not None}
            for plan in plan_class(record, groups):
                await self.apply(plan)

    async def forget_deleted_people(self, records: list[dict]) -> dict[str, list[str]]:
        """Take people whose hub account is gone off every roster and teacher list
        (however the account was deleted: the Accounts page, JupyterHub's admin page or
        API, ``classhub-user remove``). Only a definite "no such user" from the hub
        counts; any other answer raises and nothing changes. ``{name: [codes]}``."""
        names = {n for r in records for n in (*r.get("students", ()), *r.get("teachers", ()))}
        if not names:
            return {}
        gone = names - await self.hub.existing_users(sorted(names))
        removed: dict[str, list[str]] = {}
        for record in records:
            students, teachers = rosters_without(record, gone)
            if not (students or teachers):
                continue
            code = record["code"]
            async with self._locks.setdefault(code, asyncio.Lock()):
                if students:
                    record.update(
                        await self.store.remove_students(code, students, now=self.clock())
                    )
                if teachers:
                    kept = [t for t in record.get("teachers", ()) if t not in gone]
                    record.update(
                        await self.store.update(code, {"teachers": kept}, now=self.clock())
                    )
            for name in (*students, *teachers):
                removed.setdefault(name, []).append(code)
        for name, codes in sorted(removed.items()):
            self.log.info("%s has no hub account any more: taken off %s", name, ", ".join(codes))
        return removed

    async def reconcile(self) -> ReconcileReport:
        """Take deleted accounts off the rosters, then fix every class's groups (create
        missing ones, members, properties)."""
        records = await self.store.list_all()
        gone = await self.forget_deleted_people(records)
        groups = {g["name"]: g for g in await self.hub.list_groups()}
        report = ReconcileReport(classes=len(records), gone=gone)
        for record in records:
            async with self._locks.setdefault(record["code"], asyncio.Lock()):
                for plan in plan_class(record, groups):
                    if not plan.empty:
                        await self.apply(plan)
                        report.changed.append(plan.name)
        return report

    async def apply(self, plan: GroupPlan) -> None:
        if plan.empty:
            return
        if plan.create:
            await self.hub.create_group(plan.name)
            self.log.info("hub group %s created", plan.name)
        # the class environment before the members: a student is never in the group
        # without it (the spawner reads the class's image and limits from it)
        if plan.properties is not None:
            await self.hub.set_group_properties(plan.name, plan.properties)
            self.log.info("hub group %s: class environment updated", plan.name)
        if plan.add:
            await self._members(plan.name, plan.add, add=True)
        if plan.remove:
            await self._members(plan.name, plan.remove, add=False)

    async def _members(self, group: str, names: frozenset[str], *, add: bool) -> None:
        change = self.hub.add_group_users if add else self.hub.remove_group_users
        try:
            await change(group, names)
        except HubBadRequest:
            # one of the names is no hub user (any more): the hub refuses the whole list,
            # so go one by one and leave out only the refused names
            refused = []
            for name in sorted(names):
                try:
                    await change(group, [name])
                except HubBadRequest:
                    refused.append(name)
            if refused:
                self.log.warning(
                    "hub group %s: %s refused by the hub (not hub users): %s",
                    group,
                    "adding" if add else "removing",
                    ", ".join(refused),
                )
        self.log.info(
            "hub group %s: %s %d user(s)", group, "added" if add else "removed", len(names)
        )
