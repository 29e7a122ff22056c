"""Reviewing handed-in work in the browser (the review page): a version's files, its
notebooks rendered, the difference between two versions, and **Download all**.

===========================================================  ===============================
``GET api/submissions/<id>/files``                           the version and its files
                                                             (path, size; notebooks with the
                                                             address of their rendering)
``GET api/submissions/<id>/files/<path>``                    one file, as an attachment
``GET api/submissions/<id>/render/<path>[?show=]``           a notebook (or a text file) as
                                                             a page that runs nothing; very
                                                             large HTML outputs collapsed
                                                             unless ``show`` names them
                                                             (``all``, or ``3.0,7.1``)
``GET api/submissions/<id>/diff/<base id>/<path>``           the changes to ``path`` from
                                                             version ``<base id>`` to this
                                                             one (same student and
                                                             assignment), as such a page
``GET api/classes/<code>/assignments/<slug>/download-all``   teachers: one zip of the
                                                             versions that count, a folder
                                                             per student and
                                                             ``manifest.csv``
                                                             (:mod:`.downloadall`)
``GET classes/<code>/assignments/<slug>/review``             the review page (teachers:
                                                             every student, grading beside
                                                             the notebook; a student: their
                                                             own versions), its first view
                                                             in it (:class:`ReviewPage`)
===========================================================  ===============================

Who may: a version, the class's teachers and admins, and the student who handed it in (404
for anyone else, as the other routes of a version). Rendered pages and the difference are
built in worker processes (:class:`services.base.nbrender.Renderer`, with time and memory
limits), escape or sanitise everything the student wrote and are served with the
sandboxing :data:`~services.base.nbrender.CSP` (no script runs, an origin of their own);
the review page shows them in an ``<iframe sandbox>``. They are never served by the
student's server. The work (reading versions, rendering, the cache of rendered pages,
streaming a file) is in :mod:`.reviewwork`, the settings in :mod:`.reviewsettings`.

Which version the page opens on for a student, which one is marked as counting, on time or
late and each version's grade come from the one computation of the deadline work
(:func:`.standing.standing`, through :meth:`.store.StandingData.standing` and
:meth:`.handlers.GradesHandler.version_answer`), the teacher's choice of version included:
the review page, the submissions list, the gradebook and the student's own page agree. A
grade belongs to a version: the panel beside the notebook grades the version shown, with
the points per question when the assignment has questions (the grading route of the
grades page, ``PUT api/submissions/<id>/grade``).
"""

from __future__ import annotations

import asyncio
import html
import json
from typing import Any
from urllib.parse import quote

from tornado import web

from common.errors import BadRequest, ServiceError
from services.base import nbrender
from services.base.handlers import error_message
from services.base.membership import ADMIN, STUDENT, TEACHER
from services.base.names import BadName, validate_path, validate_username
from services.base.pages import StaticHandler

from .downloadall import DownloadAllHandler
from .handlers import GradesHandler, assignment_view, submissions_answer
from .pages import STATIC, PageHandler
from .reviewwork import GRANT_MARK, Review, viewable
from .store import Assignment, StandingData, Submission

# ----------------------------------------------------------------------------- handlers


def _file_path(raw: str) -> str:
    try:
        return validate_path(raw)
    except BadName as e:
        raise BadRequest(f"Not a file name of a version: {e}.") from None


class ReviewHandler(GradesHandler):
    """Dependencies also: ``review`` (:class:`.reviewwork.Review`). A version is reached
    as the other routes of a version reach it (:meth:`.handlers.GradesHandler.submission`:
    the class's teachers and admins, and the student who handed it in)."""

    review: Review

    async def files_answer(
        self,
        submission: Submission,
        assignment: Assignment,
        role: str,
        data: StandingData | None = None,
    ) -> dict:
        """Version ``submission`` and its files, as ``GET api/submissions/<id>/files``
        answers (the caller already checked: a teacher, or the student who handed it in);
        ``data``: standing data already read that holds its student."""
        prefix = self.settings["service_prefix"]
        files = []
        for f in await self.review.files(submission):
            quoted = quote(f.path, safe="/")
            kind = viewable(f.path)
            files.append(
                {
                    "path": f.path,
                    "size": f.size,
                    "crc": f.crc,
                    "view": kind,
                    "render_url": None
                    if kind is None
                    else f"{prefix}api/submissions/{submission.id}/render/{quoted}",
                    "download_url": f"{prefix}api/submissions/{submission.id}/files/{quoted}",
                }
            )
        return {
            # as the submissions list shows it: on time or late now, whether it counts,
            # its own grade (a student's: once returned)
            "submission": await self.version_answer(submission, assignment, role, data),
            "assignment": {**assignment_view(assignment), "class": assignment.class_code},
            "role": role,
            "files": files,
        }


class PageAnswer:
    """Rendered pages answer errors as a page too (shown in the review page's frame),
    with the same sandboxing headers."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, BadName):
            exc = BadRequest(str(exc))
        if isinstance(exc, ServiceError):
            status_code = exc.status_code
        message = error_message(exc, status_code)
        self.set_status(status_code)
        for name, value in nbrender.HEADERS.items():
            self.set_header(name, value)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        hint = " Download the file from the list beside it." if status_code in (413, 422) else ""
        body = (
            f'<main class="notebook"><p class="note" id="render-error">'
            f"{html.escape(message + hint)}</p></main>"
        )
        self.finish(nbrender.page("Cannot be shown", body))


def _send_page(handler: web.RequestHandler, body: bytes) -> None:
    for name, value in nbrender.HEADERS.items():
        handler.set_header(name, value)
    handler.set_header("Content-Type", "text/html; charset=UTF-8")
    handler.finish(body)


class VersionFilesHandler(ReviewHandler):
    async def get(self, submission_id):
        self.write_json(await self.files_answer(*await self.submission(submission_id)))


class VersionFileHandler(ReviewHandler):
    async def get(self, submission_id, raw_path):
        submission, assignment, _ = await self.submission(submission_id)
        path = _file_path(raw_path)
        name = path.rsplit("/", 1)[-1]
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(name)}")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        self.set_header("Cache-Control", "private, no-store")
        await self.review.stream_file(self, submission, path)


class RenderHandler(PageAnswer, ReviewHandler):
    """A rendered page. Opened with the viewer's sign-in, its Show links carry a grant
    (:class:`.reviewwork.Grants`): clicked in the sandboxed page, they come without the
    viewer's cookies, and the grant lets them render this file of this version again
    (with other outputs shown) for an hour, and nothing else."""

    async def get(self, submission_id, raw_path):
        path = _file_path(raw_path)
        grants = self.review.grants(self.settings["cookie_secret"])
        grant = self.get_query_argument("grant", "")[:100]
        now = self.now().timestamp()
        if self.current_user is None and grant:
            if not grants.check(grant, int(submission_id), path, now):
                raise web.HTTPError(
                    403,
                    "This link has expired. Open the notebook again from the review page.",
                )
            submission = await self.store.get_submission(int(submission_id))
        else:
            submission, _, _ = await self.submission(submission_id)
            grant = grants.make(submission.id, path, now)
        # ?show=: the collapsed outputs the teacher asked for (the page's Show links)
        show = self.get_query_argument("show", "")[:2000]
        body = await self.review.rendered(submission, path, show)
        _send_page(self, body.replace(GRANT_MARK.encode(), grant.encode("ascii")))

    #: HEAD renders and keeps the page without sending it: the review page asks for the
    #: next and previous students' notebooks so that moving to them shows them at once
    head = get


class DiffHandler(PageAnswer, ReviewHandler):
    async def get(self, submission_id, base_id, raw_path):
        submission, assignment, _ = await self.submission(submission_id)
        base, _, _ = await self.submission(base_id)
        if base.assignment_id != submission.assignment_id or base.username != submission.username:
            raise BadRequest(
                "Two versions of the same student's work on the same assignment can be "
                "compared, not these."
            )
        path = _file_path(raw_path)
        _send_page(self, await self.review.diff(base, submission, path))


def first_shown(files: list[dict], wanted: str = "") -> str:
    """The file the review page shows first (``files``: a files answer's list): ``wanted``
    when the version has it, else the first notebook, else the first text file, else the
    first file (as ``firstShown`` in static/review.js)."""
    paths = [f["path"] for f in files]
    if wanted and wanted in paths:
        return wanted
    for kind in ("notebook", "text"):
        found = next((f["path"] for f in files if f["view"] == kind), None)
        if found:
            return found
    return paths[0] if paths else ""


def first_student(rows: list[dict], wanted: str = "") -> str:
    """The student a teacher's review page opens on (``rows``: the submissions list's):
    ``wanted`` when listed, else the first who handed in, else the first, "" for an empty
    class (as ``start`` in static/review.js)."""
    users = [r["user"] for r in rows]
    if wanted and wanted in users:
        return wanted
    handed_in = next((r["user"] for r in rows if r["versions"] > 0), None)
    return handed_in or (users[0] if users else "")


def first_version(versions: list[dict], wanted: str = "") -> dict | None:
    """The version the review page opens on (``versions``: a student's, newest first):
    the one whose id is ``wanted``, else the one that counts, else the newest, None for
    none (as ``showStudent`` in static/review.js)."""
    if wanted:
        asked = next((v for v in versions if str(v["id"]) == wanted), None)
        if asked is not None:
            return asked
    counting = next((v for v in versions if v["counts"]), None)
    if counting is not None:
        return counting
    return versions[0] if versions else None


class ReviewPage(PageHandler, ReviewHandler):
    """``GET <prefix>classes/<code>/assignments/<slug>/review[?user=&version=&file=]``.

    The first view is in the page: what its script would otherwise ask for one call after
    the other (teachers: the submissions list; the student's versions; the version's
    files), as JSON in a ``<script type="application/json">`` block, and the notebook it
    opens on in its frame's ``src``, so the browser fetches the notebook while the script
    loads. Both are made by the API's own functions with the API's checks (a student gets
    their own versions only, their grades once returned). The query says which view (the
    script keeps it up to date); a value that does not check out (not a student of the
    class, another student's or assignment's version) is ignored: a teacher's page opens
    on the first student who handed in, at the version that counts."""

    def _wanted_user(self) -> str:
        try:
            return validate_username(self.get_query_argument("user", ""))
        except BadName:
            return ""

    async def first_view(self, code: str, assignment: Assignment, role: str) -> tuple[dict, str]:
        """The first view's data (``students``: teachers only; ``user``; ``versions``;
        ``files``: of the version shown, when there is one) and the address of the
        notebook (or text file) the frame opens on, "" for none (a comparison, which the
        script asks for, or nothing to show)."""
        view: dict = {}
        roster = None
        if role == STUDENT:
            user = self.caller().name
            data = await self.standing_data(assignment, user)
        else:
            roster, data = await asyncio.gather(
                self.membership.students(code), self.standing_data(assignment)
            )
            view["students"] = submissions_answer(assignment, roster, data, self.now())
            user = first_student(view["students"]["students"], self._wanted_user())
            if not user:
                return view, ""
        view["user"] = user
        view["versions"] = await self.checked_student_answer(
            code, assignment, user, role, data=data, roster=roster
        )
        wanted = self.get_query_argument("version", "")
        shown = first_version(view["versions"]["submissions"], wanted)
        if shown is None:
            return view, ""  # nothing handed in
        submission = data.submissions[shown["id"]]
        view["files"] = await self.files_answer(submission, assignment, role, data)
        if self.get_query_argument("since", ""):
            return view, ""
        files = view["files"]["files"]
        path = first_shown(files, self.get_query_argument("file", ""))
        shown_file = next((f for f in files if f["path"] == path), None)
        return view, (shown_file or {}).get("render_url") or ""

    @web.authenticated
    async def get(self, code, slug):
        code, role = await self.role(code)
        assignment = await self.assignment(code, slug, role)
        teaches = role in (ADMIN, TEACHER)

        async def first() -> tuple[dict | None, str]:
            try:
                return await self.first_view(code, assignment, role)
            except (ServiceError, BadName) as e:  # the page's script asks for it instead
                self.log.info("Review page of %s/%s without a first view: %s", code, slug, e)
                return None, ""

        (view, src), name = await asyncio.gather(first(), self.class_name(code))
        self.render_page(
            "review.html",
            code=code,
            class_name=name,
            assignment=assignment,
            role=role,
            teaches=teaches,
            initial_src=src,
            first_view=view,
            assignment_json=json.dumps(assignment_view(assignment), separators=(",", ":")),
        )


def review_handlers(deps: dict) -> list[tuple[str, type, dict]]:
    a = r"api/classes/([^/]+)/assignments/([^/]+)"
    v = r"api/submissions/(\d+)"
    return [
        (r"classes/([^/]+)/assignments/([^/]+)/review", ReviewPage, deps),
        (r"static/(review\.js|review\.css)", StaticHandler, {"path": str(STATIC)}),
        (v + r"/files", VersionFilesHandler, deps),
        (v + r"/files/(.+)", VersionFileHandler, deps),
        (v + r"/render/(.+)", RenderHandler, deps),
        (v + r"/diff/(\d+)/(.+)", DiffHandler, deps),
        (a + r"/download-all", DownloadAllHandler, deps),
    ]
