"""The hub's API for homes on a Swarm (hub/homes_api.py ``SwarmHomesAPIHandler``): a
service with ``custom:classhub:homes`` learns which homes exist and on which node one is;
nobody else learns anything. A real JupyterHub (MockHub) with a stand-in Swarm spawner."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import requests
from jupyterhub import orm

from common.errors import Conflict, Unavailable
from common.naming import object_name
from hub.config import configure_homes
from tests.hub.conftest import HUB, hub_user
from tests.hub.fakes import SwarmMockSpawnerBase

pytestmark = HUB

TOKEN = secrets.token_hex(16)
OTHER_TOKEN = secrets.token_hex(16)


class SwarmMockSpawner(SwarmMockSpawnerBase):
    """What hub/homes_api.py asks of SwarmClassroomSpawner, with scripted answers."""

    answers: dict = {}  # user name -> node, or an exception to raise
    saved: set = {"ch-home-saved-1"}

    async def locate_home(self, *, write):
        answer = self.answers.get(self.user.name, "")
        if isinstance(answer, Exception):
            raise answer
        if write and answer:
            self.home_node = answer
        return answer

    async def existing_homes(self):
        return set(self.saved)


@pytest.fixture(scope="module")
def hub_config():
    def more(c):
        configure_homes(c)
        c.JupyterHub.spawner_class = SwarmMockSpawner
        c.JupyterHub.services = [
            {"name": "grades", "api_token": TOKEN},
            {"name": "other", "api_token": OTHER_TOKEN},
            {"name": "classes"},
            {"name": "files"},
        ]
        c.JupyterHub.load_roles = [
            {"name": "homes-finder", "scopes": ["custom:classhub:homes"], "services": ["grades"]},
            {"name": "reader", "scopes": ["read:servers", "servers"], "services": ["other"]},
        ]

    return more


async def call(app, method, path, token=TOKEN, body=None):
    """A service's API call with its token (in a thread: the hub runs on this loop)."""
    return await asyncio.get_running_loop().run_in_executor(
        None,
        lambda: requests.request(
            method,
            app.url + "hub/api/classhub/swarm-homes" + path,
            headers={"Authorization": f"token {token}"},
            json=body,
            timeout=30,
        ),
    )


async def _with_server(app, name: str, server: str = "py") -> None:
    """``name`` (a student) with the named server ``server``, never started."""
    if hub_user(app, name) is None:
        app.db.add(orm.User(name=name))
        app.db.commit()
    orm_user = hub_user(app, name)
    if server not in orm_user.orm_spawners:
        app.db.add(orm.Spawner(user=orm_user, name=server))
        app.db.commit()


async def test_a_service_with_the_scope_finds_a_homes_node_and_a_write_is_remembered(app):
    await _with_server(app, "alice")
    SwarmMockSpawner.answers = {"alice": "node-a"}
    r = await call(app, "POST", "/alice/py", body={"write": False})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "user": "alice",
        "server": "py",
        "node": "node-a",
        "volume": object_name("ch", "home", "alice", "py"),
    }
    assert "home_node" not in (app.users["alice"].spawners["py"].orm_spawner.state or {})
    r = await call(app, "POST", "/alice/py", body={"write": True})
    assert r.status_code == 200 and r.json()["node"] == "node-a"
    app.db.expire_all()
    assert app.users["alice"].spawners["py"].orm_spawner.state["home_node"] == "node-a"
    # and it is listed among the homes that exist, with those in the store
    r = await call(app, "GET", "")
    assert r.status_code == 200
    assert set(r.json()["volumes"]) == {"ch-home-saved-1", object_name("ch", "home", "alice", "py")}


async def test_a_home_never_made_is_on_no_node(app):
    await _with_server(app, "bob")
    SwarmMockSpawner.answers = {}
    assert (await call(app, "POST", "/bob/py", body={"write": True})).json()["node"] == ""
    # a server that was never made: no spawner is made to answer
    assert (await call(app, "POST", "/bob/never", body={"write": True})).json()["node"] == ""
    assert "never" not in hub_user(app, "bob").orm_spawners
    assert (await call(app, "POST", "/nobody/py", body={})).status_code == 404


@pytest.mark.parametrize(
    "error, status, words",
    [
        (Conflict("The class server of carol is starting."), 409, "starting"),
        (Unavailable("on a machine of the cluster that is drained or down"), 503, "drained"),
    ],
)
async def test_a_busy_or_unreachable_home_answers_with_the_reason(app, error, status, words):
    await _with_server(app, "carol")
    SwarmMockSpawner.answers = {"carol": error}
    r = await call(app, "POST", "/carol/py", body={"write": True})
    assert r.status_code == status and words in r.json()["message"]


@pytest.mark.parametrize("body", [[], {"write": "yes"}, "x"])
async def test_a_bad_body_is_a_clear_400(app, body):
    await _with_server(app, "dave")
    r = await call(app, "POST", "/dave/py", body=body)
    assert r.status_code == 400 and '{"write": true}' in r.json()["message"]


async def test_nobody_else_learns_where_homes_are(app, browser):
    await _with_server(app, "erin")
    SwarmMockSpawner.answers = {"erin": "node-e"}
    # a service with wide server scopes but not this one
    for method, path in (("GET", ""), ("POST", "/erin/py")):
        r = await call(app, method, path, token=OTHER_TOKEN, body={"write": True})
        assert r.status_code == 403 and "custom:classhub:homes" in r.json()["message"]
    # the student herself, signed in
    student = browser()
    from tests.hub.conftest import mint

    signed = await student.login_token(mint("erin"))
    assert signed.status_code in (200, 302), signed.status_code
    assert await student.whoami() == "erin"
    r = await student.api("POST", "/classhub/swarm-homes/erin/py", json={"write": True})
    assert r.status_code == 403
    assert "home_node" not in (app.users["erin"].spawners["py"].orm_spawner.state or {})
