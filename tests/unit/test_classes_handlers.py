"""The classes API's handlers with in-memory fakes of MongoDB and the hub: what happens
when the hub is unreachable after a write, when it refuses a start, and the shapes of
the answers (the real thing is in tests/integration/test_classes_*.py; the in-memory store
behaves as the real one by tests/integration/test_class_store_contract.py)."""

import copy
import json

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from common import clock
from harness.memstore import MemoryClassStore
from services.base.hubapi import HubBadRequest, HubNotFound, HubUnavailable
from services.classes.app import ClassesApp
from services.classes.hubsync import GroupSync

pytestmark = pytest.mark.unit

PREFIX = "/services/classes/"


class FakeHubAuth:
    access_scopes = set()

    async def get_user(self, handler, sync=True):
        name = handler.request.headers.get("X-Test-User")
        if not name:
            return None
        return {"kind": "user", "name": name, "admin": name == "root", "scopes": []}


#: the hub roles of the fake hub's people (whoever is not listed has only "user")
HUB_ROLES = {
    "root": ["user", "admin"],
    "tina": ["user", "classhub-teacher"],
    "tom": ["user", "classhub-teacher"],
    "sam": ["user", "classhub-student"],
    "sue": ["user", "classhub-student"],
}


class MemoryHub:
    def __init__(self, users):
        self.users = {u: {} for u in users}
        self.roles = {u: HUB_ROLES.get(u, ["user"]) for u in users}
        self.groups = {}
        self.groups_down = False
        self.refuse_start = ""

    async def ping(self):
        pass

    async def get_user(self, name, include_stopped_servers=False, stale_ok=False):
        if name not in self.users:
            return None
        return {"name": name, "servers": copy.deepcopy(self.users[name]), "roles": self.roles[name]}

    async def existing_users(self, names, concurrency=8):
        return {n for n in names if n in self.users}

    async def user_models(self, names, concurrency=8):
        return {n: await self.get_user(n) for n in names if n in self.users}

    async def active_users(self, stale_ok=False):
        return [{"name": n, "servers": s} for n, s in self.users.items() if s]

    async def start_server(self, user, server):
        if self.refuse_start:
            raise HubBadRequest(400, "POST", "/users/x", self.refuse_start)
        self.users[user][server] = {"ready": True, "pending": None, "started": None}

    async def stop_server(self, user, server):
        if server not in self.users[user]:
            raise HubNotFound(404, "DELETE", "/users/x", "no such server")
        del self.users[user][server]

    def _groups_up(self):
        if self.groups_down:
            raise HubUnavailable("fake hub outage")

    async def get_group(self, name):
        self._groups_up()
        g = self.groups.get(name)
        return (
            None
            if g is None
            else {"name": name, "users": sorted(g["users"]), "properties": g["properties"]}
        )

    async def list_groups(self):
        self._groups_up()
        return [await self.get_group(n) for n in self.groups]

    async def create_group(self, name):
        self._groups_up()
        self.groups[name] = {"users": set(), "properties": {}}

    async def add_group_users(self, name, users):
        self.groups[name]["users"] |= set(users)

    async def remove_group_users(self, name, users):
        self.groups[name]["users"] -= set(users)

    async def set_group_properties(self, name, props):
        self.groups[name]["properties"] = props


@pytest.fixture
async def api(monkeypatch):
    async for served in serve(monkeypatch, allowed_images=["img:1"]):
        yield served


async def serve(monkeypatch, **settings):
    monkeypatch.setattr(clock, "now", lambda: 1_800_000_000.0)
    app = ClassesApp(api_token="t", service_prefix=PREFIX, default_image="img:1", **settings)
    app.hub_auth = FakeHubAuth()
    app.hub = MemoryHub({"root", "tina", "tom", "sam", "sue", "uma"})
    app.store = MemoryClassStore()
    app.group_sync = GroupSync(app.hub, app.store)
    app.homes = app.renderer = None  # the read-only views: tests/unit/test_classes_work.py
    sock, port = bind_unused_port()
    server = HTTPServer(app.make_app())
    server.add_sockets([sock])

    async def call(user, method, path, body=None):
        req = HTTPRequest(
            f"http://127.0.0.1:{port}{PREFIX}{path}",
            method=method,
            headers={"X-Test-User": user},
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
        )
        resp = await AsyncHTTPClient().fetch(req, raise_error=False)
        return resp.code, (json.loads(resp.body) if resp.body else None)

    yield app, call
    server.stop()


async def test_hub_unreachable_after_the_write_is_reported_and_reconciled(api):
    app, call = api
    app.hub.groups_down = True
    code, body = await call(
        "root", "POST", "api/classes", {"code": "bio", "name": "Bio", "teachers": ["tina"]}
    )
    assert code == 201 and body["hub_sync"] == "pending"
    assert app.store.records["bio"]["teachers"] == ["tina"]
    assert app.hub.groups == {}
    app.hub.groups_down = False
    assert await app.reconcile() is True
    assert app.hub.groups["teachers-bio"]["users"] == {"tina"}
    assert app.hub.groups["class-bio"]["properties"]["classhub"]["image"] == "img:1"


CATALOGUE = [
    {"name": "img:1", "display_name": "Python", "description": "minimal"},
    {"name": "site/ds:2", "display_name": "Data science", "description": "numpy, pandas"},
]


@pytest.fixture
async def catalogue_api(monkeypatch):
    async for served in serve(monkeypatch, images=CATALOGUE):
        yield served


async def test_the_image_is_one_of_the_catalogue(catalogue_api):
    app, call = catalogue_api
    code, body = await call("tina", "GET", "api/settings")
    assert code == 200 and body["images"] == CATALOGUE
    for image in ("evil/miner:1", "site/ds", "img:1 ", None, ["img:1"]):
        code, body = await call(
            "root",
            "POST",
            "api/classes",
            {"code": "x", "name": "X", "environment": {"image": image}},
        )
        assert code == 400, (image, body)
        assert body["message"].endswith(
            "is not in this hub's image catalogue; choose one of: Python (img:1), "
            "Data science (site/ds:2). An admin adds images to the catalogue."
        )
    assert "x" not in app.store.records
    code, body = await call(
        "root", "POST", "api/classes", {"code": "bio", "name": "Bio", "teachers": ["tina"]}
    )
    assert code == 201 and body["environment"]["image"] == "img:1"
    code, body = await call("tina", "PATCH", "api/classes/bio", {"environment": {"image": "x:1"}})
    assert code == 400 and "choose one of: Python (img:1)" in body["message"]
    code, body = await call(
        "tina", "PATCH", "api/classes/bio", {"environment": {"image": "site/ds:2"}}
    )
    assert code == 200 and body["environment"]["image"] == "site/ds:2"
    assert app.hub.groups["class-bio"]["properties"]["classhub"]["image"] == "site/ds:2"


async def test_reconcile_waits_for_mongo(api):
    app, _ = api
    app.store.down = True
    assert await app.reconcile() is False
    app.store.down = False
    assert await app.reconcile() is True


async def test_mongo_down_is_503_with_the_message(api):
    app, call = api
    app.store.down = True
    code, body = await call("root", "GET", "api/classes")
    assert (code, body) == (
        503,
        {"status": 503, "message": "the classes database is unreachable; try again shortly"},
    )


async def test_start_refused_by_the_hub_is_a_409_with_its_reason(api):
    app, call = api
    await call("root", "POST", "api/classes", {"code": "bio", "name": "Bio", "teachers": ["tina"]})
    assert (await call("tina", "POST", "api/classes/bio/students", {"username": "sam"}))[0] == 201
    app.hub.refuse_start = "sam has reached the limit of named servers"
    code, body = await call("tina", "POST", "api/classes/bio/servers/sam")
    assert code == 409 and "limit of named servers" in body["message"]
    app.hub.refuse_start = ""
    code, body = await call("tina", "POST", "api/classes/bio/servers/sam")
    assert code == 200 and body["state"] == "running"
    code, body = await call("tina", "DELETE", "api/classes/bio/students/sam")
    assert code == 204 and "bio" not in app.hub.users["sam"], "unenrolling stops the server"


async def test_import_rejection_has_the_error_shape_and_a_report(api):
    app, call = api
    await call("root", "POST", "api/classes", {"code": "bio", "name": "Bio", "teachers": ["tina"]})
    code, body = await call(
        "tina", "POST", "api/classes/bio/import", {"csv": "username\nsam\nghost\n"}
    )
    assert code == 400 and body["status"] == 400 and body["applied"] is False
    assert [r["status"] for r in body["rows"]] == ["valid", "unknown_user"]
    assert app.store.records["bio"]["students"] == []


async def test_servers_view_and_student_view(api):
    app, call = api
    await call("root", "POST", "api/classes", {"code": "bio", "name": "Bio", "teachers": ["tina"]})
    for name in ("sam", "sue"):
        await call("tina", "POST", "api/classes/bio/students", {"username": name})
    app.hub.users["sam"]["bio"] = {
        "ready": True,
        "pending": None,
        "last_activity": "2026-01-01T00:00:00Z",
    }
    code, body = await call("tina", "GET", "api/classes/bio/servers")
    assert code == 200
    assert [(s["username"], s["state"], s["url"]) for s in body["servers"]] == [
        ("sam", "running", "/user/sam/bio/"),
        ("sue", "stopped", "/user/sue/bio/"),
    ]
    code, body = await call("sam", "GET", "api/classes/bio")
    assert body["server"]["state"] == "running" and "students" not in body
    code, body = await call("root", "GET", "api/classes")
    assert body["classes"][0]["student_count"] == 2 and "students" not in body["classes"][0]


async def test_a_rename_does_not_wait_for_the_hub_but_an_environment_change_does(api):
    app, call = api
    await call("root", "POST", "api/classes", {"code": "bio", "name": "Bio", "teachers": ["tina"]})
    code, body = await call("tina", "PATCH", "api/classes/bio", {"name": "Biology", "term": "F"})
    assert code == 200 and body["hub_sync"] == "queued" and body["name"] == "Biology"
    await app.group_sync.wait_background()
    assert app.hub.groups["class-bio"]["properties"]["classhub"]["name"] == "Biology"
    # what the spawner or the access rules read is in the hub before the answer
    code, body = await call("tina", "PATCH", "api/classes/bio", {"environment": {"cpu_limit": 0.5}})
    assert code == 200 and body["hub_sync"] == "done"
    assert app.hub.groups["class-bio"]["properties"]["classhub"]["cpu_limit"] == 0.5
    # a background sync that fails is logged and left to the reconciliation
    app.hub.groups_down = True
    code, body = await call("tina", "PATCH", "api/classes/bio", {"name": "Bio II"})
    assert code == 200 and body["hub_sync"] == "queued"
    await app.group_sync.wait_background()
    assert app.hub.groups["class-bio"]["properties"]["classhub"]["name"] == "Biology"
    app.hub.groups_down = False
    assert await app.reconcile() is True
    assert app.hub.groups["class-bio"]["properties"]["classhub"]["name"] == "Bio II"


async def test_teachers_enrol_start_and_stop_only_students(api):
    """Admins may put anyone on a roster; its teachers act only on students."""
    app, call = api
    await call("root", "POST", "api/classes", {"code": "bio", "name": "Bio", "teachers": ["tina"]})
    for name, what in (("root", "an administrator"), ("tom", "a teacher")):
        code, body = await call("tina", "POST", "api/classes/bio/students", {"username": name})
        assert code == 403, body
        assert body["message"].startswith(f"Teachers can enrol only students: {name} is {what}")
    code, body = await call("tina", "POST", "api/classes/bio/students", {"username": "uma"})
    assert code == 403 and "no student role on this hub yet" in body["message"]
    assert app.store.records["bio"]["students"] == []
    code, body = await call(
        "tina", "POST", "api/classes/bio/import", {"csv": "username\nsam\ntom\nroot\numa\n"}
    )
    assert code == 400 and body["applied"] is False
    assert [r["status"] for r in body["rows"]] == ["valid"] + ["not_a_student"] * 3
    assert body["counts"]["not_a_student"] == 3
    assert app.store.records["bio"]["students"] == []
    # an admin enrols anyone, then the class's teacher cannot start or stop their servers
    for name in ("root", "tom", "sam"):
        code, _ = await call("root", "POST", "api/classes/bio/students", {"username": name})
        assert code == 201
    for name in ("root", "tom"):
        for method in ("POST", "DELETE"):
            code, body = await call("tina", method, f"api/classes/bio/servers/{name}")
            assert code == 403 and "only their students' servers" in body["message"], body
    assert "bio" not in app.hub.users["root"] and "bio" not in app.hub.users["tom"]
    code, body = await call("tina", "POST", "api/classes/bio/servers/sam")
    assert code == 200 and body["state"] == "running"
    code, body = await call("root", "POST", "api/classes/bio/servers/tom")
    assert code == 200, "an admin may"
    code, body = await call("tina", "POST", "api/classes/bio/servers/tina")
    assert code == 200, "a teacher's own class server is theirs"
