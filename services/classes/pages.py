"""The classes service's web pages: server-rendered HTML (``templates/``) and one small
script (``static/classes.js``) that calls the REST API for every change and polls it.

=================================  ======================================================
``GET <prefix>``                   "My classes": the classes a student takes, with their
                                   servers (launch, open, stop); the classes a teacher
                                   teaches; for admins every class and a "Create class"
                                   form. API clients (no ``text/html`` in ``Accept``) get
                                   the JSON answer of :class:`~.handlers.HomeHandler`.
``GET <prefix>classes/<code>``     a class's page, for its teachers and admins: roster
                                   with server states, start/stop/open, add/remove, CSV
                                   import, settings, archive
``GET <prefix>static/<file>``      the pages' script and style sheet (no sign-in needed)
=================================  ======================================================

A page checks the same rules as the API (:mod:`.rules`) before it renders; a refusal or
an outage is an HTML page with the API's message (403, 404, 503, ...), never JSON or a
traceback.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tornado import web

from services.base.errors import ServiceError, Unavailable
from services.base.handlers import error_message
from services.base.hubapi import HubAPIError
from services.base.hubstatic import hub_static_url

from .handlers import ClassesHandler, HomeHandler
from .rules import STUDENT, require_manage
from .servers import PENDING, RUNNING, STOPPED, active_servers, roster_servers
from .views import full_view, student_view, summary_view

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"

#: pages load only their own script and the hub's style sheet (same origin)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
#: seconds before a 503 page reloads itself
RETRY_SECONDS = 10


@functools.cache
def static_version(name: str) -> str:
    """A short hash of a static file, so its URL changes when the file does."""
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def state_label(server: dict) -> str:
    """What a page shows for a server state: running, starting, stopping, stopped or
    unknown (the same as ``stateLabel`` in classes.js, with the same badges)."""
    state = server.get("state")
    if state == PENDING:
        return "stopping" if server.get("pending") == "stop" else "starting"
    if state in (RUNNING, STOPPED):
        return state
    return "unknown"


BADGES = {
    RUNNING: "text-bg-success",
    "starting": "text-bg-warning",
    "stopping": "text-bg-warning",
    STOPPED: "text-bg-secondary",
}


def badge_class(label: str) -> str:
    return BADGES.get(label, "text-bg-light")


class PageHandler(ClassesHandler):
    """A page: HTML answers, errors included."""

    def wants_html(self) -> bool:
        return True

    def hub_prefix(self) -> str:
        return self.hub_base_url.rstrip("/") + "/"

    def template_namespace(self) -> dict:
        namespace = super().template_namespace()
        prefix = self.settings["service_prefix"]
        user = self.current_user or {}
        namespace.update(
            hub=self.hub_prefix(),
            hub_static=lambda name: hub_static_url(self.hub_prefix(), name),
            is_admin=bool(user.get("admin")),
            static=lambda name: f"{prefix}static/{name}?v={static_version(name)}",
            state_label=state_label,
            badge_class=badge_class,
        )
        return namespace

    def render_page(self, template: str, status: int = 200, **context: Any) -> None:
        html = self.render_template(template, **context)
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.finish(html)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if not self.wants_html():
            super().write_error(status_code, **kwargs)
            return
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, ServiceError):
            status_code = exc.status_code
        if status_code == 503:
            self.set_header("Retry-After", str(RETRY_SECONDS))
        try:
            self.render_page(
                "error.html",
                status=status_code,
                status_code=status_code,
                message=error_message(exc, status_code),
                retry_seconds=RETRY_SECONDS if status_code == 503 else 0,
            )
        except Exception:  # noqa: BLE001 - the JSON error is the fallback
            self.log.exception("Could not render the error page for %s", self.request.path)
            self.clear()
            self.set_status(status_code)
            super().write_error(status_code, **kwargs)


class HomePage(PageHandler, HomeHandler):
    """``GET <prefix>``: "My classes" for browsers, the sign-in JSON for API clients."""

    def wants_html(self) -> bool:
        return "text/html" in self.request.headers.get("Accept", "")

    @web.authenticated
    async def get(self):
        if not self.wants_html():
            await HomeHandler.get(self)
            return
        actor = self.actor()
        records, roles, servers = await self.visible_classes(actor)
        taking, teaching = [], []
        for record, role in zip(records, roles, strict=True):
            if role == STUDENT:
                taking.append(
                    student_view(
                        record,
                        servers.get(record["code"]),
                        username=actor.name,
                        base_url=self.hub_base_url,
                    )
                )
            else:
                teaching.append(summary_view(record, role))
        self.render_page(
            "home.html",
            taking=taking,
            teaching=teaching,
            spawn_base=f"{self.hub_prefix()}hub/spawn/{quote(actor.name, safe='')}/",
            limits=self.limits.as_json(),
        )


class ClassPage(PageHandler):
    """``GET <prefix>classes/<code>``: a class's page for its teachers and admins."""

    @web.authenticated
    async def get(self, code):
        actor = self.actor()
        record = await self.store.require(self.code_arg(code))
        role = require_manage(actor, record, "see its roster and servers")
        servers, problem = await self._servers(record)
        self.render_page(
            "class.html",
            cls=full_view(record, role),
            role=role,
            servers=servers,
            status_problem=f"Server states are unknown: {problem}" if problem else "",
            limits=self.limits.as_json(),
        )

    async def _servers(self, record: dict) -> tuple[list[dict], str]:
        """The roster's server states; when the hub cannot say, states are unknown and
        the message says why (the page's script retries)."""
        code, names = record["code"], record.get("students", [])
        try:
            active = active_servers(await self.hub.active_users(stale_ok=True), code)
        except (Unavailable, HubAPIError) as e:
            self.log.warning("Class page %s without server states: %s", code, e)
            unknown = roster_servers(names, {}, code, self.hub_base_url)
            return [{**s, "state": "unknown"} for s in unknown], str(e)
        return roster_servers(names, active, code, self.hub_base_url), ""


class StaticHandler(web.StaticFileHandler):
    """The pages' script and style sheet (every route gets ``hub_auth``, unused here)."""

    def initialize(self, hub_auth, path: str) -> None:  # noqa: ARG002
        super().initialize(path)


def page_handlers(deps: dict) -> list[tuple[str, type, dict]]:
    """The pages' routes; they go before the API's, so ``""`` is the "My classes" page."""
    return [
        ("", HomePage, deps),
        (r"classes/([^/]+)", ClassPage, deps),
        (r"static/(classes\.js|classes\.css)", StaticHandler, {"path": str(STATIC)}),
    ]
