"""The shared service base: JSON body reader, JSON errors, sign-in checks, health, the
blocking-SDK wrapper, the hub API client and the settings (in-process servers, no hub)."""

import asyncio
import json
import threading
import time

import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from traitlets import TraitError

from common import errors
from common.blocking import BlockingCalls, CallTimedOut
from services.base.app import ServiceApp
from services.base.handlers import BaseHandler
from services.base.hubapi import (
    HubAPI,
    HubConflict,
    HubForbidden,
    HubNotFound,
    HubUnavailable,
)

pytestmark = pytest.mark.unit

TOKEN = "s3cret-service-token"


class FakeHubAuth:
    """Identifies callers from an ``X-Test-User`` header (``name`` or ``name:admin``)."""

    access_scopes = set()
    login_url = "/hub/api/oauth2/authorize"
    base_url = "/services/test/"

    def __init__(self, fail=False):
        self.fail = fail

    async def get_user(self, handler, sync=True):
        if self.fail:
            raise web.HTTPError(500, "Failed to connect to Hub API")
        header = handler.request.headers.get("X-Test-User")
        if not header:
            return None
        name, _, flag = header.partition(":")
        if flag == "service":
            return {"kind": "service", "name": name, "scopes": []}
        return {"kind": "user", "name": name, "admin": flag == "admin", "scopes": []}


class EchoHandler(BaseHandler):
    async def post(self):
        self.require_user()
        self.write_json(self.json_body({"a", "b"}, required=("a",)))


class FailHandler(BaseHandler):
    async def get(self, kind):
        self.require_user()
        if kind == "unavailable":
            raise errors.Unavailable("the test database is unreachable; try again shortly", "ECONN")
        if kind == "conflict":
            raise errors.Conflict("That exists already.")
        raise RuntimeError("secret internal detail")


class FakeHubClient:
    def __init__(self):
        self.up = True

    async def ping(self):
        if not self.up:
            raise HubUnavailable("down")


class DemoApp(ServiceApp):
    def handlers(self):
        return [("echo", EchoHandler, {}), ("fail/([a-z]+)", FailHandler, {})]


def make_test_app(hub_auth=None, **traits):
    app = DemoApp(api_token=TOKEN, service_prefix="/services/test/", max_body_size=2048, **traits)
    app.hub_auth = hub_auth or FakeHubAuth()
    app.hub = FakeHubClient()
    return app


@pytest.fixture
async def served():
    servers = []

    async def serve(app: web.Application) -> str:
        sock, port = bind_unused_port()
        server = HTTPServer(app, max_body_size=4 * 2048)
        server.add_sockets([sock])
        servers.append(server)
        return f"http://127.0.0.1:{port}"

    yield serve
    for s in servers:
        s.stop()


async def call(url, method="GET", body=None, user="alice", headers=None):
    h = {"X-Test-User": user} if user else {}
    h.update(headers or {})
    req = HTTPRequest(url, method=method, body=body, headers=h, allow_nonstandard_methods=True)
    resp = await AsyncHTTPClient().fetch(req, raise_error=False)
    data = json.loads(resp.body) if resp.body else None
    return resp.code, data, resp


@pytest.fixture
async def base(served):
    service = make_test_app()
    url = await served(service.make_app())
    return url + "/services/test/", service


async def test_json_body_accepts_an_object(base):
    url, _ = base
    code, data, _ = await call(url + "echo", "POST", b'{"a": 1, "b": [2]}')
    assert (code, data) == (200, {"a": 1, "b": [2]})


@pytest.mark.parametrize(
    "body,status,message",
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object, not an array"),
        (b'"text"', 400, "not a string"),
        (b"null", 400, "not null"),
        (b'{"a": 1, "zz": 2, "b": 3}', 400, "Unknown field(s): zz. Allowed: a, b."),
        (b'{"b": 1}', 400, "Missing field(s): a."),
        (b"", 400, "Missing field(s): a."),
        (b'{"a": NaN}', 400, "NaN is not a number JSON allows"),
        (b'{"a": "\xff\xfe"}', 400, "not UTF-8"),
        (b"[" * 2000, 400, "nested too deeply"),
        (b'{"a": "' + b"x" * 3000 + b'"}', 413, "the limit is 2048 bytes"),
    ],
)
async def test_json_body_refuses_bad_input_clearly(base, body, status, message):
    url, _ = base
    code, data, resp = await call(url + "echo", "POST", body)
    assert code == status
    assert data["status"] == status
    assert resp.headers["Content-Type"].startswith("application/json")
    if message:
        assert message in data["message"]


async def test_huge_bodies_are_cut_off_by_the_server(base):
    url, _ = base
    code, _, _ = await call(url + "echo", "POST", b"x" * (4 * 2048 + 1))
    assert code == 400  # tornado refuses it before any handler runs


async def test_errors_are_json_and_never_a_traceback(base):
    url, _ = base
    code, data, resp = await call(url + "fail/unavailable")
    assert code == 503
    assert data == {"status": 503, "message": "the test database is unreachable; try again shortly"}
    assert resp.headers["Retry-After"] == "5"
    code, data, _ = await call(url + "fail/conflict")
    assert (code, data["message"]) == (409, "That exists already.")
    code, data, _ = await call(url + "fail/boom")
    assert code == 500
    assert "secret" not in data["message"] and "Traceback" not in data["message"]
    code, data, _ = await call(url + "nowhere")
    assert code == 404 and "nothing at /services/test/nowhere" in data["message"]
    code, data, _ = await call(url + "echo", "DELETE")
    assert code == 405 and data["status"] == 405


async def test_callers_must_be_signed_in_people(base):
    url, _ = base
    code, data, _ = await call(url + "echo", "POST", b"{}", user=None)
    assert code == 403 and "You are not signed in" in data["message"]
    assert "Authorization: token" in data["message"]
    code, data, _ = await call(url + "echo", "POST", b'{"a":1}', user="robot:service")
    assert code == 403 and "user's token, not a service's" in data["message"]


async def test_hub_down_while_identifying_is_503(served):
    service = make_test_app(FakeHubAuth(fail=True))
    url = await served(service.make_app()) + "/services/test/"
    code, data, _ = await call(url + "echo", "POST", b"{}")
    assert code == 503 and "JupyterHub is unreachable" in data["message"]


async def test_health_names_the_dependency_that_is_down(served):
    service = make_test_app()
    url = await served(service.make_app()) + "/services/test/"
    code, data, _ = await call(url + "health", user=None)
    assert code == 200 and data == {"status": "ok", "checks": {"hub": {"ok": True}}}
    service.hub.up = False
    code, data, _ = await call(url + "health", user=None)
    assert code == 503
    assert data["message"] == "hub: JupyterHub's API is unreachable; try again shortly"
    assert data["checks"]["hub"]["ok"] is False


async def test_health_check_timeout(served):
    service = make_test_app(health_timeout=0.2)

    async def slow():
        await asyncio.sleep(5)

    service.health_checks = lambda: {"slow": slow}
    url = await served(service.make_app()) + "/services/test/"
    code, data, _ = await call(url + "health", user=None)
    assert code == 503 and data["message"] == "slow: no answer within 0.2 s"


# ----------------------------------------------------------------------------- blocking


async def test_blocking_calls_run_in_threads_with_a_timeout():
    calls = BlockingCalls(threads=2, timeout=0.3, name="t")
    main = threading.get_ident()
    assert await calls.run(threading.get_ident) != main
    assert await calls.run(lambda a, b=0: a + b, 1, b=2) == 3
    with pytest.raises(CallTimedOut, match="did not return within 0.1 s"):
        await calls.run(time.sleep, 1, timeout=0.1)
    with pytest.raises(ZeroDivisionError):
        await calls.run(lambda: 1 / 0)
    calls.close()
    with pytest.raises(ValueError):
        BlockingCalls(threads=0, timeout=1)


# ----------------------------------------------------------------------------- hub API


class FakeHubAPIHandler(web.RequestHandler):
    def initialize(self, seen):
        self.seen = seen

    def check(self):
        self.seen.append(
            (self.request.method, self.request.uri, self.request.headers.get("Authorization"))
        )

    def get(self, path):
        self.check()
        if path == "users/ghost":
            self.set_status(404)
            self.finish({"status": 404, "message": "No such user"})
        elif path == "users/slow":
            return asyncio.sleep(2)
        elif path == "groups/secret":
            self.set_status(403)
            self.finish({"status": 403, "message": "Action is not authorized"})
        elif path == "boom":
            self.set_status(500)
            self.finish({"status": 500, "message": "spawn failed: image missing"})
        elif path == "users":
            offset = int(self.get_argument("offset"))
            items = [{"name": f"u{i}"} for i in range(offset, min(offset + 2, 5))]
            following = {"offset": offset + 2, "limit": 2} if offset + 2 < 5 else None
            self.finish({"items": items, "_pagination": {"next": following}})
        else:
            self.finish({"name": path.rsplit("/", 1)[-1]})

    def post(self, path):
        self.check()
        self.set_status(409)
        self.finish({"status": 409, "message": "Group exists"})


@pytest.fixture
async def hub_api(served):
    seen = []
    app = web.Application([(r"/hub/api/(.*)", FakeHubAPIHandler, {"seen": seen})])
    url = await served(app)
    hub = HubAPI(url + "/hub/api", TOKEN, timeout=0.5)
    yield hub, seen
    hub.close()


async def test_hub_api_maps_answers_to_exceptions(hub_api):
    hub, seen = hub_api
    assert await hub.get_user("alice") == {"name": "alice"}
    assert await hub.get_user("ghost") is None
    with pytest.raises(HubNotFound):
        await hub.request("GET", "/users/ghost")
    with pytest.raises(HubForbidden) as e:
        await hub.request("GET", "/groups/secret")
    assert e.value.status_code == 502 and "Action is not authorized" in str(e.value)
    with pytest.raises(HubConflict):
        await hub.request("POST", "/groups/x")
    with pytest.raises(HubUnavailable) as e:
        await hub.request("GET", "/boom")
    assert (e.value.status, e.value.hub_message) == (500, "spawn failed: image missing")
    assert e.value.status_code == 503
    with pytest.raises(HubUnavailable, match="unreachable"):
        await hub.request("GET", "/users/slow")
    assert await hub.existing_users(["alice", "ghost", "alice"]) == {"alice"}
    # the token only ever travels in the header
    assert all(auth == f"token {TOKEN}" and TOKEN not in uri for _, uri, auth in seen)
    assert TOKEN not in repr(hub)


async def test_hub_api_follows_pagination(hub_api):
    hub, _ = hub_api
    assert [u["name"] for u in await hub.list_all("/users")] == ["u0", "u1", "u2", "u3", "u4"]


async def test_hub_api_unreachable():
    sock, port = bind_unused_port()
    sock.close()  # nothing listens there
    hub = HubAPI(f"http://127.0.0.1:{port}/hub/api", TOKEN, timeout=1)
    with pytest.raises(HubUnavailable) as e:
        await hub.ping()
    assert e.value.status_code == 503 and TOKEN not in e.value.detail
    hub.close()


# ----------------------------------------------------------------------------- settings


def test_settings_checks_say_how_to_fix():
    with pytest.raises(TraitError, match="explicit port"):
        ServiceApp(api_token=TOKEN, service_url="http://127.0.0.1")
    with pytest.raises(TraitError, match="start and end with '/'"):
        ServiceApp(api_token=TOKEN, service_prefix="/services/x")
    with pytest.raises(TraitError, match="http\\(s\\) URL"):
        ServiceApp(api_token=TOKEN, hub_api_url="hub:8081")
    with pytest.raises(TraitError, match="thread_pool_size must be 1 to 256"):
        ServiceApp(api_token=TOKEN, thread_pool_size=0)
    with pytest.raises(TraitError, match="at least 1024"):
        ServiceApp(api_token=TOKEN, max_body_size=10)


def test_settings_from_jupyterhubs_environment(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_NAME", "classes")
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10123")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://10.0.0.1:8081/hub/api")
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    app = ServiceApp()
    assert app.service_prefix == "/services/classes/"
    assert app.service_url == "http://127.0.0.1:10123"
    assert app.hub_api_url == "http://10.0.0.1:8081/hub/api"
    with pytest.raises(TraitError, match="JUPYTERHUB_API_TOKEN"):
        app.check_settings()
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", TOKEN)
    monkeypatch.delenv("JUPYTERHUB_CLIENT_ID", raising=False)
    with pytest.raises(TraitError, match="JUPYTERHUB_CLIENT_ID"):
        ServiceApp().check_settings()
    monkeypatch.setenv("JUPYTERHUB_CLIENT_ID", "service-classes")
    app = ServiceApp()
    app.check_settings()
    other = ServiceApp(api_token="another")
    assert len(app.cookie_secret) == 32 and app.cookie_secret == ServiceApp().cookie_secret
    assert app.cookie_secret != other.cookie_secret


def test_json_for_a_pages_script_element_cannot_end_it_or_become_markup():
    """Data for a page's script goes into a ``<script type="application/json">`` element:
    what a student wrote must not end the element (``</script>``), open a comment or a
    character reference, and must read back unchanged with ``JSON.parse``."""
    from jinja2 import Environment
    from markupsafe import Markup

    from services.base.pages import json_for_script

    hostile = {
        "name": "</script><script>alert(1)</script><!--",
        "note": "a & b > c \u2028 \u2029 é",
        "n": [1, 2.5, None, True],
    }
    text = json_for_script(hostile)
    assert isinstance(text, Markup)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert "\\u003c/script\\u003e" in text and "é" in text  # UTF-8 stays as it is
    assert json.loads(str(text)) == hostile
    # in a template with autoescape it is written as it is (not escaped twice)
    env = Environment(autoescape=True)
    page = env.from_string('<script type="application/json">{{ f(v) }}</script>').render(
        f=json_for_script, v=hostile
    )
    inner = page.removeprefix('<script type="application/json">').removesuffix("</script>")
    assert "</" not in inner and json.loads(inner) == hostile
