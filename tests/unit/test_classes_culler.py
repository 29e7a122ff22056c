"""Idle culling per class timeout, with a clock the tests move (common.clock.now)."""

from datetime import UTC, datetime

import pytest

from common import clock
from services.base.hubapi import HubNotFound, HubUnavailable
from services.classes.culler import Culler, cull_reason, plan_culls
from services.classes.servers import parse_time, roster_servers, server_state

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def server(last=T0, *, ready=True, pending=None, started=T0 - 100, stopped=False):
    return {
        "ready": ready,
        "pending": pending,
        "stopped": stopped,
        "started": iso(started) if started else None,
        "last_activity": iso(last) if last else None,
    }


CLASSES = [
    {"code": "bio", "environment": {"idle_timeout": 600}, "archived": False},
    {"code": "chem", "environment": {"idle_timeout": 3600}, "archived": False},
    {"code": "old", "environment": {"idle_timeout": 3600}, "archived": True},
]


def test_parse_hub_times():
    assert parse_time(iso(T0)) == T0
    assert parse_time("2026-12-01T09:20:18.123456Z") == pytest.approx(
        datetime(2026, 12, 1, 9, 20, 18, 123456, UTC).timestamp()
    )
    assert parse_time(None) is None
    assert parse_time("yesterday") is None


def test_idle_longer_than_the_timeout_is_culled():
    assert cull_reason(server(T0), idle_timeout=600, archived=False, now=T0 + 601) == "idle"
    assert cull_reason(server(T0), idle_timeout=600, archived=False, now=T0 + 600) is None
    assert cull_reason(server(T0), idle_timeout=600, archived=False, now=T0 + 10) is None


def test_started_counts_when_there_was_no_activity():
    s = server(last=None, started=T0)
    assert cull_reason(s, idle_timeout=600, archived=False, now=T0 + 700) == "idle"
    assert cull_reason(server(None, started=None), idle_timeout=1, archived=False, now=T0) is None


def test_pending_and_not_ready_servers_are_left_alone():
    for s in (server(T0, pending="spawn"), server(T0, pending="stop"), server(T0, ready=False)):
        assert cull_reason(s, idle_timeout=1, archived=False, now=T0 + 10_000) is None


def test_archived_class_servers_are_always_stopped():
    assert cull_reason(server(T0), idle_timeout=3600, archived=True, now=T0) == "archived"
    assert cull_reason(server(T0, pending="spawn"), idle_timeout=1, archived=True, now=T0) is None


def test_plan_per_class_timeout():
    users = [
        {"name": "sam", "servers": {"bio": server(T0), "chem": server(T0)}},
        {"name": "sue", "servers": {"bio": server(T0 + 500)}},
        {"name": "sid", "servers": {"old": server(T0 + 900), "": server(T0 - 10**6)}},
        {"name": "zed", "servers": {"free-form": server(T0 - 10**6)}},
    ]
    culls = plan_culls(CLASSES, users, now=T0 + 1000)
    assert [(c.username, c.code, c.reason, c.idle_seconds) for c in culls] == [
        ("sam", "bio", "idle", 1000),
        ("sid", "old", "archived", 100),
    ]


def test_server_states_for_the_teacher():
    assert server_state(None)["state"] == "stopped"
    assert server_state(server(stopped=True))["state"] == "stopped"
    assert server_state(server(pending="spawn"))["state"] == "pending"
    assert server_state(server(ready=False))["state"] == "pending"
    running = server_state(server(T0))
    assert running["state"] == "running" and running["last_activity"] == iso(T0)
    rows = roster_servers(["sam", "sue"], {"sam": server(T0)}, "bio", "/")
    assert [(r["username"], r["state"], r["url"]) for r in rows] == [
        ("sam", "running", "/user/sam/bio/"),
        ("sue", "stopped", "/user/sue/bio/"),
    ]


def test_server_links_on_per_user_origins():
    base = "http://{user}.classhub-servers.localhost:8000/"
    rows = roster_servers(["sam", "jörg@x.edu"], {}, "bio", base)
    assert rows[0]["url"] == "http://sam.classhub-servers.localhost:8000/user/sam/bio/"
    host = rows[1]["url"].split("/")[2]
    assert host.endswith(".classhub-servers.localhost:8000") and host.isascii()
    assert rows[1]["url"].endswith("/user/j%C3%B6rg%40x.edu/bio/")
    no_port = roster_servers(["sam"], {}, "bio", "https://{user}.servers.example.edu/")
    assert no_port[0]["url"] == "https://sam.servers.example.edu/user/sam/bio/"


class FakeStore:
    def __init__(self, classes, down=False):
        self.classes, self.down = classes, down

    async def environments(self):
        if self.down:
            raise HubUnavailable("mongo down in this fake")
        return self.classes


class FakeHub:
    def __init__(self, users):
        self.users = users
        self.stopped = []

    async def active_users(self):
        return self.users

    async def stop_server(self, user, name):
        if user == "gone":
            raise HubNotFound(404, "DELETE", f"/users/{user}/servers/{name}", "no such user")
        self.stopped.append((user, name))
        self.users = [
            {**u, "servers": {k: v for k, v in u["servers"].items() if k != name}}
            if u["name"] == user
            else u
            for u in self.users
        ]


async def test_culler_follows_the_moved_clock(monkeypatch):
    hub = FakeHub([{"name": "sam", "servers": {"bio": server(T0)}}])
    culler = Culler(hub, FakeStore(CLASSES), clock=lambda: clock.now())
    monkeypatch.setattr(clock, "now", lambda: T0 + 599)
    assert await culler.run_once() == []
    assert hub.stopped == []
    monkeypatch.setattr(clock, "now", lambda: T0 + 601)
    culls = await culler.run_once()
    assert [(c.username, c.code) for c in culls] == [("sam", "bio")]
    assert hub.stopped == [("sam", "bio")]
    assert await culler.run_once() == []  # nothing twice


async def test_culler_carries_on_when_one_stop_fails(monkeypatch):
    hub = FakeHub(
        [
            {"name": "gone", "servers": {"bio": server(T0)}},
            {"name": "sue", "servers": {"bio": server(T0)}},
        ]
    )
    monkeypatch.setattr(clock, "now", lambda: T0 + 10_000)
    culler = Culler(hub, FakeStore(CLASSES), clock=lambda: clock.now())
    await culler.run_once()
    assert hub.stopped == [("sue", "bio")]
