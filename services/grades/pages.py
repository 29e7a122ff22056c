"""The grades service's web pages: server-rendered HTML (``templates/``) and one small
script (``static/grades.js``) that calls the REST API (:mod:`.handlers`) for every read
and change.

==================================  =================================================
``GET <prefix>``                    "Grades": the classes the caller takes or teaches
                                    (admins: every class when the service may list
                                    the hub's groups, and a form that opens a class by
                                    its code), each linking to its page.
                                    API clients (no ``text/html`` in ``Accept``) get
                                    the JSON answer of :class:`~.handlers.HomeHandler`.
``GET <prefix>classes/<code>``      a class's grades page. Students: their released
                                    assignments with their own due date (local time,
                                    live countdown, extension mark, late policy),
                                    Submit, their versions and returned grades with
                                    feedback. Teachers and admins: the assignment
                                    editor (with the assignment's release: its
                                    state, starting files, a link to upload them,
                                    the push's report, Release now / Release again
                                    now), collect now, each assignment's
                                    submissions (on time / late / missing, snapshot
                                    downloads), grading with revisions and return,
                                    extensions, and the gradebook with its CSV.
``GET <prefix>static/<file>``       the pages' script and style sheet (no sign-in)
==================================  =================================================

A page checks the same rules as the API (:meth:`.handlers.GradesHandler.role`) before it
renders; a refusal or an outage is an HTML page with the API's message (400, 403, 404,
503, ...), never JSON or a traceback. The pages hold no inline script or style (CSP); data
for a page's script is in ``data-`` attributes, or JSON in a ``<script
type="application/json">`` element (``json_script``), which runs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from tornado import web

from common.errors import BadRequest, NotFound, Unavailable
from common.groups import class_code, class_group, class_name, class_roles
from services.base.hubapi import HubAPIError, HubForbidden
from services.base.membership import ADMIN, TEACHER
from services.base.names import BadName
from services.base.pages import PageMixin, StaticHandler

from .handlers import GradesHandler, HomeHandler, extension_view

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"


class PageHandler(PageMixin, GradesHandler):
    """A page: HTML answers, errors included (see :mod:`services.base.pages`)."""

    static_dir = STATIC

    def page_error(self, exc):
        return BadRequest(str(exc)) if isinstance(exc, BadName) else exc

    async def class_name(self, code: str) -> str:
        """The class's name from its hub group (the code when the hub cannot say)."""
        try:
            return class_name(await self.membership.hub.get_group(class_group(code)), code)
        except (Unavailable, HubAPIError) as e:
            self.log.info("Grades page of %s without the class's name: %s", code, e)
            return code


class HomePage(PageHandler, HomeHandler):
    """``GET <prefix>``: "Grades" for browsers, the sign-in JSON for API clients."""

    #: False once the hub refused to list its groups to the service (scope missing)
    may_list_groups = True

    def wants_html(self) -> bool:
        return "text/html" in self.request.headers.get("Accept", "")

    @web.authenticated
    async def get(self):
        if not self.wants_html():
            await HomeHandler.get(self)
            return
        user = self.require_user()
        roles = class_roles(user.get("groups") or [])
        names: dict[str, str] = {}
        listed = False
        if user.get("admin") and HomePage.may_list_groups:
            # every class (the list also gives the names), when the service's token may
            # list the hub's groups (``list:groups``); else the admin's own classes and
            # the form that opens any class by its code
            try:
                groups = await self.membership.hub.list_groups()
            except HubForbidden:
                HomePage.may_list_groups = False  # not asked again until a restart
                self.log.warning(
                    "The grades service's token lacks list:groups: admins see their own "
                    "classes on the Grades page, and open others by code"
                )
            except (Unavailable, HubAPIError) as e:
                self.log.info("Grades home of an admin without every class: %s", e)
            else:
                listed = True
                for group in groups:
                    code = class_code(group.get("name") or "")
                    if code is not None:
                        names[code] = class_name(group, code)
                        roles.setdefault(code, ADMIN)
                roles = dict(sorted(roles.items()))
        classes = [
            {
                "code": code,
                "name": names.get(code) or await self.class_name(code),
                "teaches": role in (ADMIN, TEACHER),
            }
            for code, role in roles.items()
        ]
        self.render_page(
            "home.html",
            taking=[c for c in classes if not c["teaches"]],
            teaching=[c for c in classes if c["teaches"]],
            all_classes=listed,
        )


class ClassPage(PageHandler):
    """``GET <prefix>classes/<code>``: a class's grades page (students see their own
    work; teachers and admins manage the class's assignments); 404 for everyone else."""

    @web.authenticated
    async def get(self, code):
        code, role = await self.role(code)
        if role == ADMIN and not await self.membership.exists(code):
            raise NotFound(f"There is no class {code!r}.")
        teaches = role in (ADMIN, TEACHER)
        extensions: dict[str, list[dict]] = {}
        if teaches:
            # the current extensions (as GET .../assignments/<slug>/extensions lists them,
            # in the page so it needs no call per assignment); the page's script keeps
            # them up to date with its own grants and revocations
            for a in await self.store.list_assignments(code, include_archived=True):
                extensions[a.slug] = [
                    extension_view(e) for e in await self.store.list_extensions(a.id)
                ]
        else:
            await self.store.ping()  # a 503 page, not an empty one, when the store is down
        self.render_page(
            "class.html",
            code=code,
            class_name=await self.class_name(code),
            role=role,
            teaches=teaches,
            extensions_json=json.dumps(extensions, separators=(",", ":")),
        )


def page_handlers(deps: dict) -> list[tuple[str, type, dict]]:
    """The pages' routes; they go before the API's, so ``""`` is the "Grades" page."""
    return [
        ("", HomePage, deps),
        (r"classes/([^/]+)", ClassPage, deps),
        (
            r"static/(grades\.js|grades\.css|questions\.js|autograde\.js)",
            StaticHandler,
            {"path": str(STATIC)},
        ),
    ]
