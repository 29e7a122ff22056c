"""The session guard (classhub_singleuser.session_guard) in a real jupyter-server that
authenticates as jupyterhub-singleuser does (JupyterHub's identity provider and
authorizer, HubOAuth), with the hub's REST API played by a small tornado app on the same
loop: the guard re-checks each open websocket's token with the hub and closes it (1008)
when the hub stops accepting it, keeps it open while the hub does not answer, and shares
HubOAuth's cache.

Waiting is on events (the hub counts the guard's re-checks), bounded so that a broken
guard fails the test instead of hanging it; nothing here asserts how fast anything is.
"""

import asyncio
import json
import types

import pytest
from jupyterhub.httpclient import JupyterHubHTTPClient
from tornado import web
from tornado.httpclient import HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from classhub_singleuser import nodump, session_guard

pytestmark = [
    pytest.mark.unit,
    # jupyterhub's own authorizer (jupyterhub.singleuser.extension) still reads it
    pytest.mark.filterwarnings("ignore:HubAuth.oauth_scopes is deprecated:DeprecationWarning"),
]

ACCESS = ["access:servers!user=ann"]  # what the hub gives a token for ann's server
SERVER_TOKEN = "server-token"  # the server's own API token (never a browser's)
BOUND = 30  # seconds: a bound for waits, not an expectation


class Hub:
    """The hub's ``/hub/api/user`` for the tests: an answer per token; the guard's
    re-checks (marked ``X-Classhub-Recheck``) counted per token."""

    def __init__(self):
        self.answers: dict[str, tuple[int, dict | None]] = {}
        self.requests: list[tuple[str, bool]] = []  # (token, is a re-check)
        self.api_url = ""
        self._changed = asyncio.Event()

    def allow(self, token: str, name: str = "ann", scopes=tuple(ACCESS)) -> None:
        model = {"kind": "user", "name": name, "groups": [], "scopes": list(scopes)}
        self.answers[token] = (200, model)

    def answer(self, token: str, status: int) -> None:
        self.answers[token] = (status, None)

    def rechecks(self, token: str) -> int:
        return sum(1 for t, recheck in self.requests if t == token and recheck)

    def note(self, token: str, recheck: bool) -> None:
        self.requests.append((token, recheck))
        self._changed.set()

    async def wait_for_rechecks(self, token: str, count: int) -> None:
        """Until the guard has asked about ``token`` ``count`` times in all."""

        async def wait():
            while self.rechecks(token) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), BOUND)


class UserAPI(web.RequestHandler):
    def initialize(self, hub: Hub):
        self.hub = hub

    def get(self):
        token = self.request.headers.get("Authorization", "").partition(" ")[2]
        self.hub.note(token, self.request.headers.get("X-Classhub-Recheck") == "websocket")
        status, model = self.hub.answers.get(token, (403, None))
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(model if model is not None else {"status": status}))


@pytest.fixture
def hub(jp_asyncio_loop):
    state = Hub()
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(web.Application([(r"/hub/api/user", UserAPI, {"hub": state})]))
    server.add_sockets(sockets)
    state.api_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hub/api"
    yield state
    server.stop()

    async def close():
        await server.close_all_connections()
        await JupyterHubHTTPClient.loop_instance().close()  # HubOAuth's and the guard's

    jp_asyncio_loop.run_until_complete(close())


@pytest.fixture
def jp_server_config(hub, monkeypatch):
    """The server as jupyterhub-singleuser configures it (HubOAuth from the environment)."""
    monkeypatch.setattr(nodump, "make_non_dumpable", lambda log=None: True)  # test process
    for name in ("CLASSHUB_AUTH_CACHE_MAX_AGE", "CLASSHUB_WS_RECHECK_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    env = {
        "JUPYTERHUB_API_URL": hub.api_url,
        "JUPYTERHUB_API_TOKEN": SERVER_TOKEN,
        "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-ann",
        "JUPYTERHUB_USER": "ann",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_PREFIX": "/user/ann/",
        "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps(ACCESS),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {
        "ServerApp": {
            "jpserver_extensions": {"classhub_singleuser": True},
            "reraise_server_extension_failures": True,
            "identity_provider_class": "jupyterhub.singleuser.extension.JupyterHubIdentityProvider",
            "authorizer_class": "jupyterhub.singleuser.extension.JupyterHubAuthorizer",
        },
        # re-check often, so that the tests are quick
        "SessionGuard": {"check_interval": 0.05, "hub_timeout": 5},
    }


@pytest.fixture
def guard(jp_serverapp):
    return session_guard._guards[jp_serverapp]


@pytest.fixture
def connect(jp_ws_fetch, run):
    """``connect(token)``: the server's events websocket, opened with ``token``."""

    def open_websocket(token: str):
        headers = {"Authorization": f"token {token}"}
        return run(jp_ws_fetch("api", "events", "subscribe", headers=headers))

    return open_websocket


def open_sockets(guard) -> int:
    """The websockets the guard tracks that the server has not closed."""
    return sum(1 for handler in list(guard._sockets) if session_guard._is_open(handler))


async def closed(ws) -> tuple[int | None, str | None]:
    """Wait for the server to close ``ws``: its close code and reason."""

    async def read_to_the_end():
        while await ws.read_message() is not None:
            pass

    await asyncio.wait_for(read_to_the_end(), BOUND)
    return ws.close_code, ws.close_reason


def test_hub_oauth_takes_the_guards_cache_age(jp_serverapp, guard):
    hub_auth = jp_serverapp.identity_provider.hub_auth
    assert guard.hub_auth is hub_auth
    assert hub_auth.cache_max_age == 5 and hub_auth.cache.max_age == 5
    assert guard._callback is not None and guard._callback.is_running()


def test_a_websocket_is_closed_when_the_hub_stops_accepting_its_token(
    hub, guard, connect, jp_fetch, run
):
    hub.allow("browser-1")
    ws = connect("browser-1")
    run(hub.wait_for_rechecks("browser-1", 2))
    # accepted twice: still open (each round is done before the next one starts)
    assert open_sockets(guard) == 1 and ws.close_code is None

    hub.answer("browser-1", 403)  # the hub deleted the token (its session ended)
    assert run(closed(ws)) == (session_guard.POLICY_VIOLATION, "session ended; sign in again")
    assert open_sockets(guard) == 0

    # The refusal is in HubOAuth's cache: the browser's next request with that token is
    # refused at once, without asking the hub again.
    asked = len(hub.requests)
    with pytest.raises(HTTPClientError) as refused:
        run(jp_fetch("api", "status", headers={"Authorization": "token browser-1"}))
    assert refused.value.code == 403
    assert len(hub.requests) == asked


@pytest.mark.parametrize("status", [401, 404])
def test_other_refusals_of_the_hub_close_too(hub, guard, connect, run, status):
    hub.allow("browser-1")
    ws = connect("browser-1")
    hub.answer("browser-1", status)
    assert run(closed(ws))[0] == session_guard.POLICY_VIOLATION


def test_a_token_that_no_longer_grants_access_to_this_server_is_closed(hub, guard, connect, run):
    hub.allow("browser-1")
    ws = connect("browser-1")
    hub.allow("browser-1", scopes=["read:users!user=ann"])  # still a token, not for here
    assert run(closed(ws))[0] == session_guard.POLICY_VIOLATION


def test_websockets_stay_open_while_the_hub_does_not_answer(hub, guard, connect, run):
    hub.allow("browser-1")
    ws = connect("browser-1")
    hub.answer("browser-1", 502)  # the hub is restarting
    seen = hub.rechecks("browser-1")
    run(hub.wait_for_rechecks("browser-1", seen + 2))
    assert open_sockets(guard) == 1 and ws.close_code is None
    assert guard._hub_trouble

    hub.allow("browser-1")  # back
    run(hub.wait_for_rechecks("browser-1", hub.rechecks("browser-1") + 2))
    assert open_sockets(guard) == 1 and not guard._hub_trouble

    hub.answer("browser-1", 403)
    assert run(closed(ws))[0] == session_guard.POLICY_VIOLATION


def test_only_the_websockets_of_the_revoked_token_close(hub, guard, connect, run):
    hub.allow("browser-1")
    hub.allow("browser-2")
    first, also_first, second = connect("browser-1"), connect("browser-1"), connect("browser-2")
    run(hub.wait_for_rechecks("browser-1", 4))
    # one question per token and round, whatever the number of its websockets (both
    # tokens' questions of a round are asked together)
    assert abs(hub.rechecks("browser-1") - hub.rechecks("browser-2")) <= 1
    assert open_sockets(guard) == 3

    hub.answer("browser-1", 403)
    assert run(closed(first))[0] == session_guard.POLICY_VIOLATION
    assert run(closed(also_first))[0] == session_guard.POLICY_VIOLATION
    run(hub.wait_for_rechecks("browser-2", hub.rechecks("browser-2") + 2))
    assert open_sockets(guard) == 1 and second.close_code is None


def test_a_websocket_refused_by_the_hub_is_not_opened(hub, guard, connect):
    hub.answer("stolen", 403)
    with pytest.raises(HTTPClientError) as refused:
        connect("stolen")
    assert refused.value.code == 403
    assert open_sockets(guard) == 0


def test_a_websocket_whose_stream_is_gone_counts_as_closed():
    """tornado sets the stream of an aborted connection to None, and is_closing() then
    raises; the guard must skip that socket, not fail the round for every other one."""
    from types import SimpleNamespace

    from tornado.websocket import WebSocketProtocol13

    conn = WebSocketProtocol13.__new__(WebSocketProtocol13)
    conn.stream = None
    conn.client_terminated = conn.server_terminated = False
    assert session_guard._is_open(SimpleNamespace(ws_connection=conn)) is False
    assert session_guard._is_open(SimpleNamespace(ws_connection=None)) is False


def test_a_websocket_it_closes_ignores_the_frames_that_still_arrive():
    """Frames already read when the guard closes a websocket never reach the kernel or the
    terminal (jupyter-server parsed a kernel frame arriving after the close with the wrong
    protocol and grew past 1 GiB: OOM-killed, seen in CI and reproduced in Chromium)."""

    class Handler:
        request = types.SimpleNamespace(path="/user/ann/api/kernels/k1/channels")

        def __init__(self):
            self.received, self.closed = [], None

        def on_message(self, message):
            self.received.append(message)

        def close(self, code, reason):
            self.closed = (code, reason)

    guard = session_guard.SessionGuard()
    handler = Handler()
    guard._close(handler, "hub answered HTTP 403")
    handler.on_message(b"\x00\x00\x00\x04 a frame typed before the revocation")
    assert handler.received == []
    assert handler.closed == (session_guard.POLICY_VIOLATION, guard.close_reason)
