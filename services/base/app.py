"""``ServiceApp``: the traitlets application every classhub service subclasses.

JupyterHub starts a managed service with its settings in the environment
(``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_SERVICE_PREFIX``, ``JUPYTERHUB_API_URL``,
``JUPYTERHUB_API_TOKEN``, ``JUPYTERHUB_CLIENT_ID``); they are the defaults of the traits
below, and every trait can also be set on the command line
(``python -m services.classes --ClassesApp.thread_pool_size=16``).

A subclass provides :meth:`ServiceApp.handlers` (routes relative to the prefix, with
their dependencies), may add :meth:`ServiceApp.health_checks`, and extends
:meth:`ServiceApp.setup` / :meth:`ServiceApp.on_started` / :meth:`ServiceApp.teardown`.
:meth:`ServiceApp.start` serves until SIGTERM or SIGINT, then stops accepting requests,
lets the ones in flight finish (up to ``shutdown_timeout``), cancels background tasks and
closes its clients.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import signal
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth
from tornado import web
from tornado.httpserver import HTTPServer
from traitlets import Bytes, Float, Instance, Int, List, TraitError, Unicode, default, validate
from traitlets.config import Application

from common.blocking import BlockingCalls
from common.settings import EnvSetting, EnvTable, comma_list, named, number
from common.web import TEMPLATES_DIR
from common.web.branding import Branding
from common.web.nav import SERVICES

from .handlers import (
    HealthCheck,
    HealthHandler,
    InFlight,
    NotFoundHandler,
    OAuthCallbackHandler,
)
from .hubapi import HubAPI

#: the HTTP server refuses bodies over this many times ``max_body_size`` outright (a bare
#: 400 from tornado); bodies between the limit and that get the handlers' clear JSON 413
HARD_BODY_FACTOR = 4


def _derived_cookie_secret(app: ServiceApp) -> bytes:
    key = app.api_token.encode("utf-8")
    return hmac.new(key, b"classhub-service-cookie-secret", hashlib.sha256).digest()


#: the settings every service reads from its environment (what JupyterHub itself sets,
#: ``JUPYTERHUB_*``, is read by the traits' own defaults below)
SERVICE_TABLE = EnvTable(
    (
        EnvSetting(
            "hub_read_cache_seconds",
            "CLASSHUB_HUB_READ_CACHE_SECONDS",
            1.0,
            number,
            "a number of seconds",
        ),
        EnvSetting(
            "hub_read_stale_seconds",
            "CLASSHUB_HUB_READ_STALE_SECONDS",
            4.0,
            number,
            "a number of seconds",
        ),
        # the services the hub runs, which it passes (hub.config.configure_web)
        EnvSetting(
            "nav_services",
            "CLASSHUB_SERVICES",
            list(SERVICES),
            comma_list,
            "service names separated by commas",
        ),
        # the hub passes each service's own CLASSHUB_<SERVICE>_COOKIE_SECRET under this name
        EnvSetting(
            "cookie_secret",
            "CLASSHUB_SERVICE_COOKIE_SECRET",
            _derived_cookie_secret,
            bytes.fromhex,
            "hex digits (e.g. from `openssl rand -hex 32`)",
            doc_default="derived from the service's API token",
            sensitive=True,
        ),
    )
)


@SERVICE_TABLE.install
class ServiceApp(Application):
    """A JupyterHub-managed tornado service."""

    name = "classhub-service"
    #: the service name when JUPYTERHUB_SERVICE_NAME is unset (run by hand)
    default_service_name = "service"

    service_name = Unicode(
        config=True,
        help="""The service's name in ``c.JupyterHub.services``: the OAuth client and the
        URL prefix derive from it. JupyterHub sets ``JUPYTERHUB_SERVICE_NAME``.

        Example: ``c.ClassesApp.service_name = "classes"``
        """,
    )

    @default("service_name")
    def _default_service_name(self):
        return os.environ.get("JUPYTERHUB_SERVICE_NAME") or self.default_service_name

    service_url = Unicode(
        config=True,
        help="""Where the service listens (``http://HOST:PORT``), the ``url`` of its entry
        in ``c.JupyterHub.services``: the proxy sends ``/services/<name>/`` there.
        JupyterHub sets ``JUPYTERHUB_SERVICE_URL``.

        Example: ``c.ClassesApp.service_url = "http://127.0.0.1:10101"``
        """,
    )

    @default("service_url")
    def _default_service_url(self):
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101")

    @validate("service_url")
    def _check_service_url(self, proposal):
        url = urlparse(proposal.value)
        if url.scheme != "http" or not url.hostname or not url.port:
            raise TraitError(
                f"service_url must look like http://127.0.0.1:10101 (got {proposal.value!r}); "
                "set the service's 'url' in c.JupyterHub.services with an explicit port."
            )
        return proposal.value

    service_prefix = Unicode(
        config=True,
        help="""The URL path the proxy routes to this service, with a slash at both ends;
        every route of the service lives under it. JupyterHub sets
        ``JUPYTERHUB_SERVICE_PREFIX``.

        Example: ``c.ClassesApp.service_prefix = "/services/classes/"``
        """,
    )

    @default("service_prefix")
    def _default_service_prefix(self):
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or f"/services/{self.service_name}/"

    @validate("service_prefix")
    def _check_service_prefix(self, proposal):
        value = proposal.value
        if not (value.startswith("/") and value.endswith("/")):
            raise TraitError(
                f"service_prefix must start and end with '/' (got {value!r}), "
                "e.g. /services/classes/"
            )
        return value

    hub_api_url = Unicode(
        config=True,
        help="""The hub's REST API, as the service reaches it (the hub's internal address,
        not the public one). JupyterHub sets ``JUPYTERHUB_API_URL``.

        Example: ``c.ClassesApp.hub_api_url = "http://127.0.0.1:8081/hub/api"``
        """,
    )

    @default("hub_api_url")
    def _default_hub_api_url(self):
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    @validate("hub_api_url")
    def _check_hub_api_url(self, proposal):
        url = urlparse(proposal.value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise TraitError(
                f"hub_api_url must be an http(s) URL such as http://127.0.0.1:8081/hub/api "
                f"(got {proposal.value!r})"
            )
        return proposal.value

    api_token = Unicode(
        config=True,
        help="""The service's own hub API token: it identifies callers with the hub and
        makes the service's hub API calls (with the scopes of the service's role in
        ``c.JupyterHub.load_roles``). JupyterHub sets ``JUPYTERHUB_API_TOKEN``; never put
        it on a command line.

        Example: ``c.ClassesApp.api_token = open("/run/secrets/classes-token").read()``
        """,
    ).tag(sensitive=True)

    @default("api_token")
    def _default_api_token(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @validate("api_token")
    def _check_api_token(self, proposal):
        if not proposal.value:
            raise TraitError(
                "The service has no hub API token: run it as a managed service from "
                "c.JupyterHub.services (the hub sets JUPYTERHUB_API_TOKEN), or set "
                "JUPYTERHUB_API_TOKEN to the token of its entry there."
            )
        return proposal.value

    oauth_client_id = Unicode(
        config=True,
        help="""The service's OAuth client id at the hub (``service-<name>``): browsers
        sign in to the service through the hub's OAuth with it. JupyterHub sets
        ``JUPYTERHUB_CLIENT_ID``.

        Example: ``c.ClassesApp.oauth_client_id = "service-classes"``
        """,
    )

    @default("oauth_client_id")
    def _default_oauth_client_id(self):
        return os.environ.get("JUPYTERHUB_CLIENT_ID", "")

    @validate("oauth_client_id")
    def _check_oauth_client_id(self, proposal):
        if not proposal.value:
            raise TraitError(
                "The service has no OAuth client id: run it as a managed service from "
                "c.JupyterHub.services (the hub sets JUPYTERHUB_CLIENT_ID), or set "
                "JUPYTERHUB_CLIENT_ID to service-<its name>."
            )
        return proposal.value

    thread_pool_size = Int(
        8,
        config=True,
        help="""Threads for blocking SDK calls (pymongo, docker, minio): at most this many
        run at once, further calls queue. Raise it when requests queue behind slow
        database calls; each thread holds at most one database connection.

        Example: ``c.ClassesApp.thread_pool_size = 16``
        """,
    )

    @validate("thread_pool_size")
    def _check_threads(self, proposal):
        if not 1 <= proposal.value <= 256:
            raise TraitError(f"thread_pool_size must be 1 to 256, got {proposal.value}")
        return proposal.value

    max_body_size = Int(
        1024 * 1024,
        config=True,
        help="""Largest request body in bytes; a larger one gets a 413 saying so. Bounds
        the memory a request can take; 1 MiB holds a CSV roster of tens of thousands of
        names.

        Example: ``c.ClassesApp.max_body_size = 2 * 1024 * 1024``
        """,
    )

    @validate("max_body_size")
    def _check_body_size(self, proposal):
        if proposal.value < 1024:
            raise TraitError(f"max_body_size must be at least 1024 bytes, got {proposal.value}")
        return proposal.value

    hub_api_timeout = Float(
        10.0,
        config=True,
        help="""Seconds a hub API call may take in total before the service answers 503.

        Example: ``c.ClassesApp.hub_api_timeout = 5``
        """,
    )

    auth_cache_seconds = Float(
        5.0,
        config=True,
        help="""How long the answer to "who owns this token" is reused before the hub is
        asked again. Short, so an ended session (classhub's one-session rule) stops
        working here within seconds; longer means fewer hub calls.

        Example: ``c.ClassesApp.auth_cache_seconds = 10``
        """,
    )

    hub_read_cache_seconds = Float(
        1.0,
        config=True,
        help="""How long the hub's answers about users and their running servers are
        reused. Pages poll every few seconds and a class's server view lists every active
        server, so under load the same reads would reach the hub (one process, the
        bottleneck) again and again; identical reads in flight also share one call. A server
        this service starts or stops empties the cache. 0 turns it off.

        Example: ``c.ClassesApp.hub_read_cache_seconds = 2``
        """,
    )

    hub_read_stale_seconds = Float(
        config=True,
        help="""For how long after ``hub_read_cache_seconds`` an answer may still be shown
        on a page while a fresh one is fetched in the background. Page requests then never
        wait for the hub while someone is using the pages; the state they show is at most
        this much older (the next poll shows the fresh one). Reads that decide something
        (does a user exist, which servers to stop) never use a stale answer. 0 turns it off.

        Example: ``c.ClassesApp.hub_read_stale_seconds = 2``
        """,
    )

    @validate("hub_read_cache_seconds", "hub_read_stale_seconds")
    def _check_not_negative(self, proposal):
        if proposal.value < 0:
            raise TraitError(f"{named(self, proposal)} must be 0 or more, got {proposal.value}")
        return proposal.value

    @validate("hub_api_timeout", "auth_cache_seconds")
    def _check_positive(self, proposal):
        if proposal.value <= 0:
            raise TraitError(f"{named(self, proposal)} must be positive, got {proposal.value}")
        return proposal.value

    health_timeout = Float(
        3.0,
        config=True,
        help="""Seconds each dependency check of ``GET <prefix>health`` may take.

        Example: ``c.ClassesApp.health_timeout = 2``
        """,
    )

    shutdown_timeout = Float(
        10.0,
        config=True,
        help="""On SIGTERM, seconds requests in flight may take to finish before their
        connections are closed. JupyterHub stops managed services with a signal and waits.

        Example: ``c.ClassesApp.shutdown_timeout = 5``
        """,
    )

    cookie_secret = Bytes(
        config=True,
        help="""Signs the service's cookies (OAuth state, XSRF, the sign-in cookie). By
        default derived from the API token, so cookies outlive a restart of the service
        but not a new token. Set ``CLASSHUB_SERVICE_COOKIE_SECRET`` (hex) to choose one.

        Example: ``c.ClassesApp.cookie_secret = bytes.fromhex("…64 hex digits…")``
        """,
    ).tag(sensitive=True)

    @validate("cookie_secret")
    def _check_cookie_secret(self, proposal):
        if len(proposal.value) < 32:
            raise TraitError("cookie_secret must be at least 32 bytes (64 hex digits)")
        return proposal.value

    template_paths = List(
        Unicode(),
        config=True,
        help="""Directories of the service's Jinja templates (its pages), searched in
        order.

        Example: ``c.ClassesApp.template_paths = ["/srv/classhub/templates"]``
        """,
    )

    nav_services = List(
        Unicode(),
        config=True,
        help="""The services the deployment runs, as the navigation of every page lists
        them (common/web/nav.py). The hub passes ``CLASSHUB_SERVICES`` (the services it
        registered).

        Example: ``c.ClassesApp.nav_services = ["classes", "files"]``
        """,
    )

    @validate("nav_services")
    def _check_nav_services(self, proposal):
        unknown = sorted(set(proposal.value) - set(SERVICES))
        if unknown:
            raise TraitError(
                f"nav_services has unknown service(s) {', '.join(unknown)}; choose among "
                f"{', '.join(SERVICES)}, e.g. CLASSHUB_SERVICES=classes,files,grades"
            )
        return proposal.value

    #: the name (and logo) in every page's header: ``c.Branding.name`` or
    #: ``CLASSHUB_BRAND_NAME`` (common/web/branding.py)
    branding = Instance(Branding)

    @default("branding")
    def _default_branding(self):
        return Branding(parent=self)

    @default("log_level")
    def _default_log_level(self):
        return logging.INFO

    @default("log_format")
    def _default_log_format(self):
        return (
            "[%(levelname)1.1s %(asctime)s.%(msecs).03d %(name)s %(module)s:%(lineno)d] %(message)s"
        )

    @default("log_datefmt")
    def _default_log_datefmt(self):
        return "%Y-%m-%d %H:%M:%S"

    # ----- lifecycle

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        # created by setup(), inside the event loop
        self.blocking: BlockingCalls | None = None
        self.hub: HubAPI | None = None
        self.hub_auth: HubOAuth | None = None
        self._tasks: set[asyncio.Task] = set()
        self._stopping: asyncio.Event | None = None
        self._inflight: InFlight | None = None

    def initialize(self, argv=None) -> None:
        super().initialize(argv)
        # tornado's and HubOAuth's messages go where the service's own go
        tornado_log = logging.getLogger("tornado")
        tornado_log.handlers = list(self.log.handlers)
        tornado_log.propagate = False
        tornado_log.setLevel(self.log.level)
        try:
            self.check_settings()
        except TraitError as e:
            self.log.critical("%s cannot start: %s", self.service_name, e)
            self.exit(1)

    def check_settings(self) -> None:
        """Run every trait's check, defaults included (traitlets only checks set values)."""
        for name in sorted(self.traits(config=True)):
            self.set_trait(name, getattr(self, name))

    async def setup(self) -> None:
        """Create the clients (inside the event loop). Subclasses add their stores."""
        self.blocking = BlockingCalls(
            threads=self.thread_pool_size,
            timeout=max(self.hub_api_timeout, 5.0),
            name=f"{self.service_name}-sdk",
        )
        self.hub = HubAPI(
            self.hub_api_url,
            self.api_token,
            timeout=self.hub_api_timeout,
            read_cache_seconds=self.hub_read_cache_seconds,
            read_stale_seconds=self.hub_read_stale_seconds,
            log=self.log,
        )
        self.hub_auth = HubOAuth(
            api_url=self.hub_api_url,
            api_token=self.api_token,
            oauth_client_id=self.oauth_client_id,
            base_url=self.service_prefix,
            cache_max_age=int(max(1, self.auth_cache_seconds)),
            allow_token_in_url=False,
            log=self.log,
        )

    async def on_started(self) -> None:
        """Called once the service listens: start background tasks here."""

    async def teardown(self) -> None:
        """Close clients. Subclasses close theirs, then call this."""
        if self.hub is not None:
            self.hub.close()
        if self.blocking is not None:
            self.blocking.close()

    def handlers(self) -> list[tuple[str, type, dict]]:
        """Routes relative to the prefix (``"api/things/([^/]+)"``) with their
        dependencies; ``hub_auth`` is added to each."""
        return []

    def health_checks(self) -> dict[str, HealthCheck]:
        return {"hub": self.hub.ping}

    def make_app(self) -> web.Application:
        prefix = self.service_prefix
        auth = {"hub_auth": self.hub_auth}
        routes: list[tuple] = [
            (prefix + "oauth_callback", OAuthCallbackHandler, auth),
            (
                prefix + "health",
                HealthHandler,
                {**auth, "checks": self.health_checks(), "timeout": self.health_timeout},
            ),
        ]
        routes += [(prefix + path, cls, {**auth, **deps}) for path, cls, deps in self.handlers()]
        return web.Application(
            routes,
            cookie_secret=self.cookie_secret,
            log_function=self.log_request,
            default_handler_class=NotFoundHandler,
            default_handler_args=auth,
            service_prefix=prefix,
            service_max_body_size=self.max_body_size,
            service_inflight=self._inflight,
            jinja2_env=self._jinja_env(),
            classhub_brand=self.branding.name,
            classhub_service_name=self.service_name,
            classhub_nav_services=tuple(self.nav_services),
            log=self.log,
        )

    def _jinja_env(self):
        if not self.template_paths:
            return None
        from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

        # the service's templates, then the shared layout (classhub/layout.html)
        paths = [*self.template_paths, str(TEMPLATES_DIR)]
        loader = ChoiceLoader([FileSystemLoader(p) for p in paths])
        return Environment(loader=loader, autoescape=select_autoescape(default=True))

    def log_request(self, handler: web.RequestHandler) -> None:
        """One access-log line per request: status, method, path (never the query
        string), who, duration."""
        status = handler.get_status()
        user = getattr(handler, "_current_user", None)
        who = user.get("name", "?") if isinstance(user, dict) else "-"
        ms = 1000.0 * handler.request.request_time()
        path = handler.request.path
        if status >= 500:
            # a dependency being down (503) is the dependency's problem, not ours
            level = logging.WARNING if status == 503 else logging.ERROR
        elif status >= 400:
            level = logging.WARNING
        elif path.endswith("/health"):
            level = logging.DEBUG
        else:
            level = logging.INFO
        self.log.log(level, "%s %s %s %s %.1fms", status, handler.request.method, path, who, ms)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task:
        """Run ``coro`` in the background until the service stops; log if it fails."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("Background task %s failed", task.get_name(), exc_info=task.exception())

    def stop(self) -> None:
        """Begin a graceful shutdown (what SIGTERM and SIGINT do)."""
        if self._stopping is not None and not self._stopping.is_set():
            self.log.info("Stopping %s", self.service_name)
            self._stopping.set()

    def start(self) -> None:
        asyncio.run(self.serve())

    async def serve(self) -> None:
        self._stopping = asyncio.Event()
        self._inflight = InFlight()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        await self.setup()
        url = urlparse(self.service_url)
        server = HTTPServer(
            self.make_app(),
            xheaders=True,
            max_body_size=self.max_body_size * HARD_BODY_FACTOR,
        )
        server.listen(url.port, url.hostname)
        self.log.info(
            "%s listening on %s, serving %s",
            self.service_name,
            self.service_url,
            self.service_prefix,
        )
        try:
            await self.on_started()
            await self._stopping.wait()
        finally:
            server.stop()  # no new connections
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            try:
                await asyncio.wait_for(self._inflight.wait_idle(), self.shutdown_timeout)
            except TimeoutError:
                self.log.warning(
                    "%s request(s) still running after %ss; closing them",
                    self._inflight.count,
                    self.shutdown_timeout,
                )
            try:
                await asyncio.wait_for(server.close_all_connections(), 2)
            except TimeoutError:
                self.log.warning("Some connections did not close within 2 s")
            await self.teardown()
            self.log.info("%s stopped", self.service_name)
