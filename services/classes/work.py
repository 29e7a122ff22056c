"""Read-only views of a student's work, for the class's teachers and admins.

Without per-user origins a student's server is opened only by its owner (the owner gate,
authenticator/gate.py): a page the student's server sends must never run in a teacher's
or an admin's browser on the hub's origin. Teachers see their students' work here
instead, served by this service and never by the student's server:

==================================================  ========================================
``GET <prefix>classes/<code>/students/<name>/work``  the files of the student's class
                                                    server's home, one folder at a time
                                                    (``?path=<folder>``), hidden files left
                                                    out
``GET <prefix>classes/<code>/students/<name>/work/file?path=<file>``
                                                    a notebook rendered as HTML that runs
                                                    nothing (services/base/nbrender.py);
                                                    any other file (or ``&download=1``)
                                                    as a download
==================================================  ========================================

The home is read by a throwaway helper container (services/base/homes.py ``view``), read-
only, whether the server runs or not. Everything from it is the student's: names are
escaped, notebooks sanitised and served under a sandbox policy with no script source,
other files only ever as attachments (``application/octet-stream``, ``nosniff``).
"""

from __future__ import annotations

import posixpath
from urllib.parse import quote

from tornado import web

from common.errors import BadRequest, NotFound, ServiceError
from services.base.homes import HomeMissing, HomeRefused
from services.base.nbrender import HEADERS, NotebookError

from .pages import PageHandler
from .rules import require_manage


class NotShown(ServiceError):
    """A file that cannot be shown as a notebook (the message says why): 422."""

    status_code = 422


class TooLargeToShow(ServiceError):
    """A file over the view's size limit: 413."""

    status_code = 413


def clean_path(raw: str) -> str:
    """The relative path a view asks for ("" for the home itself): no leading or trailing
    slash, no empty, ``.`` or ``..`` part (homectl checks the name rules again)."""
    path = (raw or "").strip().strip("/")
    if not path:
        return ""
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\\" in path or "\x00" in path:
        raise BadRequest(f"{raw!r} is not a path inside the student's home.")
    return path


def crumbs(path: str) -> list[tuple[str, str]]:
    """``(label, path)`` for each folder on the way to ``path``, the home first."""
    out = [("home", "")]
    parts = path.split("/") if path else []
    for i, part in enumerate(parts):
        out.append((part, "/".join(parts[: i + 1])))
    return out


def download_name(path: str) -> str:
    """The ``Content-Disposition`` of a download: attachment, the file's own name."""
    name = posixpath.basename(path) or "file"
    return f"attachment; filename*=UTF-8''{quote(name, safe='')}"


class _WorkHandler(PageHandler):
    """Who may look: the class's teachers and admins; whose work: a student on its
    roster."""

    async def student_home(self, code: str, name: str) -> tuple[str, str]:
        actor = self.actor()
        record = await self.store.require(self.code_arg(code))
        require_manage(actor, record, "see their students' work")
        name = self.username_arg(name)
        if name not in record.get("students", []):
            raise NotFound(f"{name} is not a student of class {record['code']!r}.")
        return record["code"], name

    async def look(self, name: str, code: str, path: str):
        try:
            return await self.homes.view(name, code, path)
        except HomeMissing:
            raise NotFound(
                f"{name} has not started class {code} yet: there is no home folder to show."
            ) from None
        except HomeRefused as e:  # homectl's refusal, with its message
            kind = {400: BadRequest, 404: NotFound, 413: TooLargeToShow}.get(e.status)
            if kind is None:
                raise
            raise kind(str(e)) from None
        # HelperUnavailable (503) is the service's own error: the page shows it


class WorkPage(_WorkHandler):
    """``GET classes/<code>/students/<name>/work[?path=]``: one folder of the home."""

    @web.authenticated
    async def get(self, code, name):
        code, name = await self.student_home(code, name)
        path = clean_path(self.get_argument("path", ""))
        view = await self.look(name, code, path)
        prefix = self.settings["service_prefix"]
        base = f"{prefix}classes/{quote(code)}/students/{quote(name, safe='')}/work"
        if view.kind == "file":
            self.redirect(f"{base}/file?path={quote(path)}")
            return
        entries = [
            {
                **entry,
                "path": f"{path}/{entry['name']}" if path else entry["name"],
                "notebook": entry["name"].endswith(".ipynb"),
            }
            for entry in view.entries
        ]
        self.render_page(
            "work.html",
            code=code,
            student=name,
            path=path,
            crumbs=crumbs(path),
            entries=entries,
            hidden=max(0, view.total - len(view.entries)),
            base=base,
        )


class WorkFile(_WorkHandler):
    """``GET classes/<code>/students/<name>/work/file?path=``: a notebook rendered (runs
    nothing), anything else downloaded."""

    @web.authenticated
    async def get(self, code, name):
        code, name = await self.student_home(code, name)
        path = clean_path(self.get_argument("path", ""))
        if not path:
            raise BadRequest("Name the file to show with ?path=.")
        view = await self.look(name, code, path)
        if view.kind != "file":
            raise BadRequest(f"~/{path} is a folder; open it in the list of files.")
        if path.endswith(".ipynb") and not self.get_argument("download", ""):
            try:
                page = await self.renderer.render(view.data)
            except NotebookError as e:
                raise NotShown(
                    f"{path} cannot be shown as a notebook ({e}) Download it instead."
                ) from None
            for header, value in HEADERS.items():
                self.set_header(header, value)
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(page)
            return
        for header, value in HEADERS.items():
            self.set_header(header, value)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Disposition", download_name(path))
        self.finish(view.data)


def work_handlers(deps: dict) -> list[tuple[str, type, dict]]:
    code, name = r"([^/]+)", r"([^/]+)"
    return [
        (f"classes/{code}/students/{name}/work", WorkPage, deps),
        (f"classes/{code}/students/{name}/work/file", WorkFile, deps),
    ]
