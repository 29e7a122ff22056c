"""The hub's backup API for a Swarm (hub/backup_api.py): the ``classhub-backup`` service
(hub.config.configure_backup, as a deployment registers it) saves every home into the
store and restores one; nobody else can, an admin-scoped service and the student herself
included. A real JupyterHub (MockHub) with a stand-in Swarm spawner."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import requests
from jupyterhub import orm

from common.naming import object_name
from hub.config import configure_backup
from spawner.swarm import HomeBusy, HomeUnreachable, RestoreRefused
from tests.hub.conftest import HUB, hub_user, mint
from tests.hub.fakes import SwarmMockSpawnerBase

pytestmark = HUB

TOKEN = secrets.token_hex(32)
ADMIN_SERVICE_TOKEN = secrets.token_hex(32)


class BackupMockSpawner(SwarmMockSpawnerBase):
    """What hub/backup_api.py asks of SwarmClassroomSpawner, with scripted answers."""

    saves: dict = {}  # user name -> the answer of save_home_now
    restores: dict = {}  # user name -> generation, or an exception
    staged: list = []

    async def save_home_now(self):
        if isinstance(self.saves[self.user.name], Exception):
            raise self.saves[self.user.name]
        answer = dict(self.saves[self.user.name])
        if answer["saved"] and answer["where"] == "node":
            self.home_node = ""
        return answer

    async def adopt_restored_home(self, key):
        self.staged.append((self.user.name, key))
        answer = self.restores.get(self.user.name, 3)
        if isinstance(answer, Exception):
            raise answer
        self.home_node = ""
        return answer


@pytest.fixture(scope="module")
def hub_config():
    def more(c):
        c.JupyterHub.spawner_class = BackupMockSpawner
        c.JupyterHub.services = [{"name": "admin-tool", "api_token": ADMIN_SERVICE_TOKEN}]
        c.JupyterHub.load_roles = [
            {
                "name": "admin-tool",
                "scopes": ["admin:users", "admin:servers"],
                "services": ["admin-tool"],
            }
        ]
        configure_backup(c, TOKEN)

    return more


async def call(app, method, path, token=TOKEN, body=None):
    """An API call with a token (in a thread: the hub runs on this loop)."""
    return await asyncio.get_running_loop().run_in_executor(
        None,
        lambda: requests.request(
            method,
            app.url + "hub/api/classhub/" + path,
            headers={"Authorization": f"token {token}"},
            json=body,
            timeout=30,
        ),
    )


def _with_server(app, name: str, server: str = "py", home_node: str = "") -> None:
    """``name`` with the named server ``server`` (never started), its home pinned to
    ``home_node`` when given."""
    if hub_user(app, name) is None:
        app.db.add(orm.User(name=name))
        app.db.commit()
    orm_user = hub_user(app, name)
    if server not in orm_user.orm_spawners:
        app.db.add(orm.Spawner(user=orm_user, name=server))
        app.db.commit()
    row = hub_user(app, name).orm_spawners[server]
    row.state = {"home_node": home_node} if home_node else {}
    app.db.commit()
    if name in app.users:
        app.users[name].spawners[server].load_state(row.state)


def _state(app, name: str, server: str = "py") -> dict:
    app.db.expire_all()
    return hub_user(app, name).orm_spawners[server].state or {}


async def test_every_home_not_yet_in_the_store_is_saved_and_unpinned(app):
    _with_server(app, "ann", home_node="node-a")
    _with_server(app, "ben", home_node="node-b")
    _with_server(app, "cat")  # stopped, in the store: nothing to save
    BackupMockSpawner.saves = {
        "ann": {"where": "node", "generation": 5, "saved": True, "error": ""},
        "ben": {"where": "node", "generation": 0, "saved": False, "error": "a node drained"},
    }
    r = await call(app, "POST", "swarm-homes-save")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["saved"], answer["failed"]) == (1, 1)
    by_user = {h["user"]: h for h in answer["homes"]}
    assert set(by_user) == {"ann", "ben"}
    assert by_user["ann"]["volume"] == object_name("ch", "home", "ann", "py")
    assert by_user["ann"]["generation"] == 5
    assert by_user["ben"]["error"] == "a node drained"
    # the next start of ann's server restores the store's copy; ben's still saves first
    assert "home_node" not in _state(app, "ann")
    assert _state(app, "ben")["home_node"] == "node-b"


async def test_a_staged_archive_becomes_the_homes_newest_copy(app):
    _with_server(app, "dan", home_node="node-d")
    BackupMockSpawner.restores = {"dan": 7}
    key = "homes/.restore/" + object_name("ch", "home", "dan", "py") + "/abcdefgh.tar.gz"
    r = await call(app, "POST", "swarm-homes/dan/py/restore", body={"key": key})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "user": "dan",
        "server": "py",
        "volume": object_name("ch", "home", "dan", "py"),
        "generation": 7,
    }
    assert ("dan", key) in BackupMockSpawner.staged
    assert "home_node" not in _state(app, "dan")


@pytest.mark.parametrize(
    "error, status, words",
    [
        (HomeBusy("The class server of eve is running: stop it first"), 409, "stop it first"),
        (RestoreRefused("The home's archive is over its limit"), 400, "over its limit"),
        (HomeUnreachable("The store cannot be reached; try again soon."), 503, "try again"),
    ],
)
async def test_a_restore_that_cannot_be_done_says_why(app, error, status, words):
    _with_server(app, "eve", home_node="node-e")
    BackupMockSpawner.restores = {"eve": error}
    r = await call(app, "POST", "swarm-homes/eve/py/restore", body={"key": "k"})
    assert r.status_code == status and words in r.json()["message"], r.text
    assert _state(app, "eve")["home_node"] == "node-e"  # nothing changed


@pytest.mark.parametrize(
    "path, body, status, words",
    [
        ("swarm-homes/fay/py/restore", [], 400, '{"key"'),
        ("swarm-homes/fay/py/restore", {"key": 3}, 400, '{"key"'),
        ("swarm-homes/nobody/py/restore", {"key": "k"}, 404, "No such user"),
        ("swarm-homes/fay/never/restore", {"key": "k"}, 404, "start it once"),
    ],
)
async def test_bad_restore_requests_are_clear_4xx(app, path, body, status, words):
    _with_server(app, "fay")
    r = await call(app, "POST", path, body=body)
    assert r.status_code == status and words in r.json()["message"], r.text
    assert "never" not in hub_user(app, "fay").orm_spawners  # no server made to answer


async def test_nobody_else_saves_or_restores_homes(app, browser):
    _with_server(app, "gil", home_node="node-g")
    BackupMockSpawner.staged = []
    # a service with the admin scopes over users and servers, but not this one
    for path, body in (("swarm-homes-save", None), ("swarm-homes/gil/py/restore", {"key": "k"})):
        r = await call(app, "POST", path, token=ADMIN_SERVICE_TOKEN, body=body)
        assert r.status_code == 403 and "custom:classhub:backup" in r.json()["message"]
    # the student herself, signed in
    student = browser()
    signed = await student.login_token(mint("gil"))
    assert signed.status_code in (200, 302), signed.status_code
    r = await student.api("POST", "/classhub/swarm-homes/gil/py/restore", json={"key": "k"})
    assert r.status_code == 403
    assert BackupMockSpawner.staged == [] and _state(app, "gil")["home_node"] == "node-g"


async def test_one_home_that_fails_unexpectedly_is_its_entry_not_a_500(app):
    for name in ("ann", "ben", "dan", "eve", "gil"):  # earlier tests' homes: none pinned now
        if hub_user(app, name) is not None:
            _with_server(app, name)
    _with_server(app, "hal", home_node="node-h")
    _with_server(app, "ivy", home_node="node-i")
    BackupMockSpawner.saves = {
        "hal": RuntimeError("the engine went away"),
        "ivy": {"where": "node", "generation": 2, "saved": True, "error": ""},
    }
    r = await call(app, "POST", "swarm-homes-save")
    assert r.status_code == 200, r.text
    by_user = {h["user"]: h for h in r.json()["homes"]}
    assert by_user["hal"]["saved"] is False and "the engine went away" in by_user["hal"]["error"]
    assert by_user["ivy"]["saved"] is True
    assert _state(app, "hal")["home_node"] == "node-h" and "home_node" not in _state(app, "ivy")
