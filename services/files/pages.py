"""The files service's web pages: server-rendered HTML (``templates/``) and one small
script (``static/files.js``) that calls the REST API (:mod:`.handlers`) for every change.

==========================================  ============================================
``GET <prefix>``                            "My files": the caller's private files (a
                                            folder tree with sizes), the space used, upload
                                            of files and of a zip as a folder, download,
                                            rename, delete; links to the material of the
                                            caller's classes. API clients (no
                                            ``text/html`` in ``Accept``) get the JSON answer
                                            of :class:`~.handlers.HomeHandler`.
``GET <prefix>classes/<code>/material``     a class's material: a read-only list with
                                            downloads for its students; for its teachers
                                            and admins also upload, rename, delete, "push
                                            to all students" now or at a time, the pushes
                                            and each push's per-student report
``GET <prefix>classes/<code>/assignments/   an assignment's starting files (teachers and
<slug>``                                    admins only; 404 for everyone else): the folder
                                            ``<slug>`` of the area ``class/<code>/
                                            assignments``, with upload, rename and delete;
                                            the grades service releases them
``GET <prefix>static/<file>``               the pages' script and style sheet (no sign-in)
==========================================  ============================================

A page checks the same rules as the API (:func:`.areas.material_area`) before it renders;
a refusal or an outage is an HTML page with the API's message (400, 403, 404, 503, ...),
never JSON or a traceback. File bytes never pass through the pages: the script uploads
to and downloads from the store through the API's presigned URLs.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from urllib.parse import urlencode

from tornado import web

from common.errors import BadRequest, Unavailable
from common.groups import class_group, class_name, class_roles
from common.units import size_text
from services.base import archive, names
from services.base.hubapi import HubAPIError
from services.base.membership import ADMIN, TEACHER
from services.base.pages import PageMixin, StaticHandler

from .areas import (
    ASSIGNMENTS,
    PRIVATE,
    Area,
    assignments_area,
    material_area,
    private_area,
)
from .handlers import FilesHandler, HomeHandler

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = Path(__file__).resolve().parent / "static"

# (uploads go to the store through the same origin: Traefik routes ``/<bucket>/...`` to it,
# so the pages' CSP, default-src 'self' in services.base.pages, allows them)
#: folder levels the list indents (deeper ones are indented as much as this)
MAX_INDENT = 8


def iso_time(ts: float | None) -> str:
    if not ts:
        return ""
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


def _sort_key(path: str) -> list[tuple[int, str]]:
    """Folders before files at every level, then by name (``treeRows`` in files.js)."""
    parts = path.split("/")
    return [(0, p) for p in parts[:-1]] + [(1, parts[-1])]


def tree_rows(files: list[dict]) -> list[dict]:
    """The API's flat list of files as the rows of a folder tree: each folder once (with
    the size and number of the files under it) before what it holds; the same rows as
    ``treeRows`` in files.js."""
    rows: list[dict] = []
    folders: dict[str, dict] = {}
    for f in sorted(files, key=lambda f: _sort_key(f["path"])):
        parts = f["path"].split("/")
        for depth in range(len(parts) - 1):
            folder = "/".join(parts[: depth + 1])
            row = folders.get(folder)
            if row is None:
                row = folders[folder] = {
                    "kind": "folder",
                    "path": folder,
                    "name": parts[depth],
                    "depth": depth,
                    "size": 0,
                    "count": 0,
                    "modified": None,
                }
                rows.append(row)
            row["size"] += f["size"]
            row["count"] += 1
        rows.append(
            {
                "kind": "file",
                "path": f["path"],
                "name": parts[-1],
                "depth": len(parts) - 1,
                "size": f["size"],
                "count": 1,
                "modified": f.get("modified"),
            }
        )
    return rows


class PageHandler(PageMixin, FilesHandler):
    """A page: HTML answers, errors included (see :mod:`services.base.pages`)."""

    static_dir = STATIC

    def template_namespace(self) -> dict:
        namespace = super().template_namespace()
        prefix = self.settings["service_prefix"]
        namespace.update(
            size_text=size_text,
            iso_time=iso_time,
            download_href=lambda spec, path: (
                f"{prefix}api/files/{spec}/download?{urlencode({'path': path, 'redirect': '1'})}"
            ),
            max_indent=MAX_INDENT,
        )
        return namespace

    def page_error(self, exc):
        if isinstance(exc, names.BadName | archive.BadArchive):
            return BadRequest(str(exc))
        return exc

    async def listing(self, area: Area) -> tuple[list[dict], int]:
        """The area's files as the list API answers them, and the bytes they take."""
        objects = await self.objects.list(area.prefix)
        files = [
            {"path": area.path_of(o.key), "size": o.size, "modified": o.modified} for o in objects
        ]
        return files, sum(o.size for o in objects)

    def area_context(self, area: Area, files: list[dict], used: int) -> dict:
        return {
            "area": area,
            "area_spec": "me"
            if area.kind == PRIVATE
            else f"class/{area.owner}" + ("/assignments" if area.kind == ASSIGNMENTS else ""),
            "rows": tree_rows(files),
            "used": used,
            "quota": area.quota,
            "max_file_size": self.limits["max_file_size"],
            "max_zip_size": self.limits["max_zip_size"],
        }


class HomePage(PageHandler, HomeHandler):
    """``GET <prefix>``: "My files" for browsers, the sign-in JSON for API clients."""

    def wants_html(self) -> bool:
        return "text/html" in self.request.headers.get("Accept", "")

    @web.authenticated
    async def get(self):
        if not self.wants_html():
            await HomeHandler.get(self)
            return
        caller = self.caller()
        area = private_area(caller, self.limits["user_quota"])
        files, used = await self.listing(area)
        groups = (self.current_user or {}).get("groups") or []
        self.render_page(
            "home.html",
            classes=list(class_roles(groups)),
            **self.area_context(area, files, used),
        )


class MaterialPage(PageHandler):
    """``GET <prefix>classes/<code>/material``: a class's material (students read it, its
    teachers and admins also change and push it); 404 for everyone else."""

    @web.authenticated
    async def get(self, code):
        area, role = await material_area(
            self.membership, self.caller(), code, self.limits["material_quota"], write=False
        )
        files, used = await self.listing(area)
        self.render_page(
            "material.html",
            code=area.owner,
            class_name=await self.class_name(area.owner),
            role=role,
            teaches=role in (ADMIN, TEACHER),
            **self.area_context(area, files, used),
        )

    async def class_name(self, code: str) -> str:
        """The class's name from its hub group (the code when the hub cannot say)."""
        try:
            model = await self.membership.hub.get_group(class_group(code))
        except (Unavailable, HubAPIError) as e:
            self.log.info("Material page of %s without the class's name: %s", code, e)
            return code
        return class_name(model, code)


class StartingFilesPage(MaterialPage):
    """``GET <prefix>classes/<code>/assignments/<slug>``: an assignment's starting files
    (its folder of the teachers-only area ``class/<code>/assignments``); 404 for anyone
    who does not teach the class."""

    @web.authenticated
    async def get(self, code, slug):
        area = await assignments_area(
            self.membership, self.caller(), code, self.limits["material_quota"]
        )
        slug = names.validate_assignment(slug)
        files, used = await self.listing(area)
        mine = [f for f in files if f["path"].startswith(slug + "/")]
        self.render_page(
            "starting.html",
            code=area.owner,
            slug=slug,
            class_name=await self.class_name(area.owner),
            **self.area_context(area, mine, used),
        )


def page_handlers(deps: dict) -> list[tuple[str, type, dict]]:
    """The pages' routes; they go before the API's, so ``""`` is the "My files" page."""
    files = {
        k: deps[k]
        for k in ("objects", "membership", "uploads", "limits", "clock", "release_services")
    }
    return [
        ("", HomePage, files),
        (r"classes/([^/]+)/material", MaterialPage, files),
        (r"classes/([^/]+)/assignments/([^/]+)", StartingFilesPage, files),
        (r"static/(files\.js|files\.css)", StaticHandler, {"path": str(STATIC)}),
    ]
