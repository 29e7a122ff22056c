"""The hub tier: the production authenticator in JupyterHub's own MockHub, no Docker.

Modelled on jupyterhub's test suite (``jupyterhub.tests.conftest.app``): a module-scoped
:class:`jupyterhub.tests.mocking.MockHub` with classhub's sign-in configuration
(``hub.config.configure_auth``, the JWT secret, classhub's templates), its database in a
temporary SQLite file, Redis as ``fakeredis`` and the accounts in memory
(tests/hub/fakes.py). Requests go straight to the hub's own port, as jupyterhub's tests
do with ``bypass_proxy``: there is no Traefik in this tier.

A module changes the hub's settings by overriding the ``hub_settings`` fixture (a dict of
``JWTAuthenticator`` traits).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin

import fakeredis
import jwt
import pytest
import pytest_asyncio
import requests
from jupyterhub import crypto, orm
from jupyterhub.tests.mocking import MockHub
from jupyterhub.utils import random_port
from traitlets.config import Config

import authenticator.authenticator as auth_module
from hub.config import configure_auth, configure_landing, configure_web
from tests.hub.fakes import (
    ClassroomMockSpawner,
    MemoryProxy,
    MockJWTAuthenticator,
    session_store_on,
)

ROOT = Path(__file__).resolve().parents[2]
JWT_SECRET = "hub-tier-" + "s" * 40
ADMIN, ADMIN_PASSWORD = "admin", "hub-tier-admin-password"

#: every hub-tier module: ``pytestmark = HUB``
HUB = [pytest.mark.hub, pytest.mark.asyncio(loop_scope="module")]

# blocking HTTP clients in threads, as jupyterhub's tests do (AsyncSession), but several:
# the hub runs on this event loop, and parallel sign-ins must reach it in parallel
_HTTP = ThreadPoolExecutor(16, thread_name_prefix="hub-tier-http")


def mint(user: str, role: str = "student", *, key: str = JWT_SECRET, **claims) -> str:
    """A sign-in JWT like the portal's (``None`` claims are left out)."""
    now = int(time.time())
    payload = {
        "sub": user,
        "role": role,
        "iss": "classhub",
        "aud": "classhub",
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_hex(16),
        **claims,
    }
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, "HS256")


def new_name(prefix: str = "u") -> str:
    return prefix + secrets.token_hex(4)


class Browser:
    """One browser: a cookie jar talking to the hub. ``address`` is the client address
    the hub sees (sent as ``X-Real-Ip``, which the hub believes from 127.0.0.1 only, as
    it does from Traefik)."""

    def __init__(self, hub_url: str, address: str = ""):
        self.url = hub_url  # http://127.0.0.1:<port>/
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
        if address:
            self.session.headers["X-Real-Ip"] = address

    async def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 30)
        url = urljoin(self.url, path.lstrip("/"))
        call = self.session.request
        return await asyncio.wrap_future(_HTTP.submit(call, method, url, **kwargs))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.session.cookies if c.name == name), None)

    async def login_token(self, token: str) -> requests.Response:
        """Sign in as a portal's auto-submitted form does (POST ``token``)."""
        return await self.request("POST", "hub/login", data={"token": token})

    async def login_password(self, user: str, password: str) -> requests.Response:
        """JupyterHub's form: GET the page for the XSRF cookie, POST the fields."""
        page = await self.request("GET", "hub/login")
        assert page.status_code == 200, page.status_code
        data = {"username": user, "password": password, "_xsrf": self.cookie("_xsrf") or ""}
        return await self.request("POST", "hub/login", data=data)

    async def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """A hub API call with this browser's cookies and XSRF token, as the pages send."""
        headers = {"X-XSRFToken": self.cookie("_xsrf") or "", **kwargs.pop("headers", {})}
        return await self.request(method, "hub/api" + path, headers=headers, **kwargs)

    async def whoami(self) -> str | None:
        """The user this browser is signed in as (None when signed out)."""
        r = await self.api("GET", "/user")
        return r.json()["name"] if r.status_code == 200 else None

    async def logout(self) -> requests.Response:
        return await self.request("GET", "hub/logout")


@pytest.fixture(scope="module")
def hub_settings() -> dict:
    """``JWTAuthenticator`` traits for this module's hub (override in a module)."""
    return {}


@pytest.fixture(scope="module")
def hub_config():
    """More of this module's hub configuration: a function of the ``Config`` (override in
    a module), applied last."""
    return lambda c: None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(hub_settings, hub_config, tmp_path_factory):
    """A running MockHub with classhub's authenticator; stopped after the module.

    ``app.url`` is the hub's address, ``app.fake_redis`` a client of its Redis. On the
    module's own event loop (every module: ``pytestmark = HUB``), as in jupyterhub's suite:
    stopping a hub cancels every task left on its loop (``shutdown_cancel_tasks``)."""
    server = fakeredis.FakeServer()
    c = Config()
    configure_auth(c)
    c.JupyterHub.authenticator_class = MockJWTAuthenticator
    # never dialled: fakeredis in-process
    c.JWTAuthenticator.redis_url = "redis://fakeredis.invalid:6379/0"
    c.JWTAuthenticator.accounts_db_url = "postgresql://accounts.invalid/classhub"  # in memory
    c.JWTAuthenticator.first_admin = ADMIN
    c.JWTAuthenticator.jwt_secret = JWT_SECRET
    for name, value in hub_settings.items():
        setattr(c.JWTAuthenticator, name, value)
    c.JupyterHub.proxy_class = MemoryProxy
    port = random_port()
    c.JupyterHub.bind_url = f"http://127.0.0.1:{port}/"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{port}"
    c.JupyterHub.allow_named_servers = True  # as hub.config.configure_hub
    c.JupyterHub.named_server_limit_per_user = 20
    c.JupyterHub.template_paths = [str(ROOT / "hub" / "templates")]
    # the services the student role's scopes name (registered, not started)
    c.JupyterHub.services = [{"name": n} for n in ("classes", "files", "grades")]
    configure_web(c)  # the shared header, navigation and static files (as jupyterhub_config.py)
    configure_landing(c)  # where people land after sign-in (as jupyterhub_config.py)
    c.JupyterHub.spawner_class = ClassroomMockSpawner
    hub_config(c)

    keeper = crypto.CryptKeeper.instance()
    saved_keys = keeper.keys
    keeper.keys = [os.urandom(32)]  # auth_state is encrypted, as JUPYTERHUB_CRYPT_KEY does
    with pytest.MonkeyPatch.context() as mp:
        # whatever the hub writes next to itself (jupyterhub's tests do the same: tmp_cwd)
        mp.chdir(tmp_path_factory.mktemp("hub"))
        mp.setenv("CLASSHUB_ADMIN_PASSWORD", ADMIN_PASSWORD)
        mp.setattr(auth_module, "SessionStore", session_store_on(server))
        hub = MockHub.instance(config=c)
        hub.fake_redis = fakeredis.FakeAsyncRedis(server=server, decode_responses=True)
        hub.url = f"http://127.0.0.1:{port}/"
        try:
            await hub.initialize([])
            await hub.start()
            yield hub
        finally:
            hub.log.handlers = []
            MockHub.clear_instance()
            await hub.stop()
            keeper.keys = saved_keys


@pytest.fixture
def browser(app):
    """A factory of fresh browsers: ``browser()`` or ``browser("10.0.0.7")``."""
    return lambda address="": Browser(app.url, address)


def hub_user(app, name: str) -> orm.User | None:
    """The user's row in the hub's database, fresh."""
    app.db.expire_all()
    return orm.User.find(app.db, name)


def role_names(app, name: str) -> set[str]:
    user = hub_user(app, name)
    return {r.name for r in user.roles} if user else set()


def stale(app, name: str) -> None:
    """As if ``auth_refresh_age`` (1 s) had passed since the hub last asked
    ``refresh_user`` about ``name``: the next request of theirs asks again."""
    orm_user = hub_user(app, name)
    if orm_user is not None and orm_user.id in app.users:
        app.users[orm_user.id]._auth_refreshed = None
