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
``GET <prefix>signup``              sign up with a class's join code (no sign-in needed;
                                   ``ClassesApp.join_code_signup``)
``GET <prefix>static/<file>``      the pages' script and style sheet (no sign-in needed)
=================================  ======================================================

A page checks the same rules as the API (:mod:`.rules`) before it renders; a refusal or
an outage is an HTML page with the API's message (403, 404, 503, ...), never JSON or a
traceback.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from tornado import web

from common.errors import Unavailable
from services.base.hubapi import HubAPIError
from services.base.pages import PageMixin, StaticHandler

from .handlers import ClassesHandler, HomeHandler
from .rules import STUDENT, require_manage
from .servers import PENDING, RUNNING, STOPPED, active_servers, roster_servers
from .views import full_view, home_views, student_view, summary_view

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"


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


class PageHandler(PageMixin, ClassesHandler):
    """A page: HTML answers, errors included (see :mod:`services.base.pages`)."""

    static_dir = STATIC

    def template_namespace(self) -> dict:
        namespace = super().template_namespace()
        namespace.update(state_label=state_label, badge_class=badge_class)
        return namespace


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
            homes=await self._homes(actor.name, {r["code"]: r["name"] for r in records}),
            spawn_base=f"{self.hub_prefix()}hub/spawn/{quote(actor.name, safe='')}/",
            limits=self.limits.as_json(),
            join_codes=self.join_codes,
        )

    async def _homes(self, name: str, class_names: dict[str, str]) -> list[dict] | None:
        """The person's home folders with their use (None: the hub cannot say now; the
        rest of the page does not depend on it)."""
        try:
            homes = await self.hub.home_usage(name)
        except (Unavailable, HubAPIError) as e:
            self.log.warning("My classes of %s without home folder use: %s", name, e)
            return None
        return None if homes is None else home_views(homes, class_names)


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
            open_servers=self.open_servers,
            join_codes=self.join_codes,
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


class SignupPage(PageHandler):
    """``GET <prefix>signup``: sign up with a class's join code (no sign-in needed; when
    ``ClassesApp.join_code_signup`` is on, else a page that says it is off)."""

    join_code_signup: bool

    def wants_html(self) -> bool:
        return True

    async def get(self):
        if not self.join_code_signup:
            raise web.HTTPError(
                404, "Signing up with a join code is switched off on this hub; ask your teacher."
            )
        self.render_page(
            "signup.html",
            # the page's POST is checked against it, as every page's (a signed-out visitor
            # has no token of a session yet)
            xsrf_token=self.xsrf_token.decode("ascii"),
            login_url=f"{self.hub_prefix()}hub/login",
        )


def page_handlers(deps: dict) -> list[tuple[str, type, dict]]:
    """The pages' routes; they go before the API's, so ``""`` is the "My classes" page."""
    return [
        ("", HomePage, deps),
        (r"classes/([^/]+)", ClassPage, deps),
        ("signup", SignupPage, deps),
        (r"static/(classes\.js|classes\.css)", StaticHandler, {"path": str(STATIC)}),
    ]
