"""One round of the warm-up (services/classes/warmup.py) against an in-memory hub and
store: students only, within the capacity, once per meeting, background starts; unused
warm servers stopped at their time, used ones and servers it did not start left alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.classes.warmup import Warmer

pytestmark = pytest.mark.unit

MEETING = datetime(2026, 12, 7, 9, 0, tzinfo=UTC).timestamp()  # a Monday
SCHEDULE = {"timezone": "UTC", "meetings": [{"days": ["mon"], "start": "09:00", "minutes": 60}]}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class FakeHub:
    def __init__(self, roles: dict[str, str]):
        self.roles = roles
        self.servers: dict[tuple[str, str], dict] = {}
        self.activity: dict[str, float] = {}
        self.started: list[tuple[str, str, bool]] = []
        self.stopped: list[tuple[str, str]] = []
        self.now = 0.0

    async def active_users(self, fresh=False):
        names = {n for n, _ in self.servers}
        return [
            {
                "name": n,
                "last_activity": iso(self.activity[n]) if n in self.activity else None,
                "servers": {c: s for (u, c), s in self.servers.items() if u == n},
            }
            for n in sorted(names)
        ]

    async def user_models(self, names, concurrency=8):
        return {n: {"name": n, "roles": [self.roles[n]]} for n in names if n in self.roles}

    async def start_server(self, user, code, background=False):
        self.started.append((user, code, background))
        self.servers[(user, code)] = {"ready": True, "pending": None, "started": iso(self.now)}

    async def stop_server(self, user, code):
        self.stopped.append((user, code))
        self.servers.pop((user, code), None)


class FakeStore:
    def __init__(self, classes):
        self.classes = classes
        self.warm: list[dict] = []

    async def scheduled(self):
        return [c for c in self.classes if c.get("schedule") and not c.get("archived")]

    async def warm_records(self):
        return [dict(r) for r in self.warm]

    def _find(self, code, username, meeting):
        for r in self.warm:
            if (r["code"], r["username"], r["meeting"]) == (code, username, meeting):
                return r
        return None

    async def add_warm(self, code, username, meeting, *, now):
        if self._find(code, username, meeting):
            return False
        self.warm.append(
            {
                "code": code,
                "username": username,
                "meeting": meeting,
                "warmed_at": now,
                "state": "warm",
                "started": None,
                "ready_at": None,
            }
        )
        return True

    async def set_warm(self, code, username, meeting, **fields):
        self._find(code, username, meeting).update(fields)

    async def forget_warm(self, before):
        self.warm = [r for r in self.warm if r["meeting"] >= before]
        return 0


def setup(capacity=10):
    hub = FakeHub(
        {
            "ann": "classhub-student",
            "bob": "classhub-student",
            "cat": "classhub-student",
            "tom": "classhub-teacher",
        }
    )
    store = FakeStore(
        [
            {
                "code": "bio",
                "students": ["ann", "bob", "cat", "tom", "ghost"],
                "schedule": SCHEDULE,
            },
            {"code": "art", "students": ["ann"], "schedule": None},
        ]
    )
    clock = {"now": MEETING - 300}

    def now():
        hub.now = clock["now"]
        return clock["now"]

    warmer = Warmer(hub, store, clock=now, lead=600, capacity=capacity, stop_after=900)
    return hub, store, clock, warmer


async def test_students_of_a_due_class_only_as_background_starts():
    hub, store, clock, warmer = setup()
    clock["now"] = MEETING - 700
    assert (await warmer.run_once()).started == []
    clock["now"] = MEETING - 300
    result = await warmer.run_once()
    assert sorted(result.started) == [("ann", "bio"), ("bob", "bio"), ("cat", "bio")]
    assert all(background for _, _, background in hub.started)  # never the teacher tom,
    assert ("tom", "bio") not in hub.servers and ("ghost", "bio") not in hub.servers
    assert ("ann", "art") not in hub.servers  # nor a class without a schedule


async def test_capacity_and_once_per_meeting():
    hub, store, clock, warmer = setup(capacity=2)
    assert len((await warmer.run_once()).started) == 2
    assert (await warmer.run_once()).started == []  # full
    # a warm student stops theirs: room for the third, never the same one again
    first = hub.started[0][0]
    await hub.stop_server(first, "bio")
    clock["now"] += 30
    again = await warmer.run_once()
    assert [n for n, _ in again.started] == ["cat"] and first != "cat"


async def test_unused_stopped_used_kept_and_foreign_servers_left_alone():
    hub, store, clock, warmer = setup()
    await warmer.run_once()  # ann, bob, cat warm
    clock["now"] += 30
    await warmer.run_once()  # seen ready
    hub.activity["ann"] = clock["now"] + 60  # ann used hers
    # dan's server was started by dan himself: not the warm-up's
    hub.servers[("dan", "bio")] = {"ready": True, "pending": None, "started": iso(0)}
    # cat restarted hers after the warm-up: a different run
    hub.servers[("cat", "bio")]["started"] = iso(clock["now"] + 120)
    clock["now"] = MEETING + 899
    assert (await warmer.run_once()).stopped == []  # not yet
    clock["now"] = MEETING + 901
    result = await warmer.run_once()
    assert result.stopped == [("bob", "bio")]
    assert sorted(result.kept) == [("ann", "bio"), ("cat", "bio")]
    assert hub.stopped == [("bob", "bio")]
    assert ("dan", "bio") in hub.servers
    # after the start no late warm-up: bob is not started again
    assert (await warmer.run_once()).started == []
