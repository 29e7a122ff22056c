"""Reviewing handed-in work in the browser (issue 13, item 4): a version's files, its
notebooks rendered, the difference between two versions, and **Download all**.

===========================================================  ===============================
``GET api/submissions/<id>/files``                           the version and its files
                                                             (path, size; notebooks with the
                                                             address of their rendering)
``GET api/submissions/<id>/files/<path>``                    one file, as an attachment
``GET api/submissions/<id>/render/<path>``                   a notebook (or a text file) as
                                                             a page that runs nothing
``GET api/submissions/<id>/diff/<base id>/<path>``           the changes to ``path`` from
                                                             version ``<base id>`` to this
                                                             one (same student and
                                                             assignment), as such a page
``GET api/classes/<code>/assignments/<slug>/download-all``   teachers: one zip of the
                                                             versions that count, a folder
                                                             per student and
                                                             ``manifest.csv``
``GET classes/<code>/assignments/<slug>/review``             the review page (teachers:
                                                             every student, grading beside
                                                             the notebook; a student: their
                                                             own versions)
===========================================================  ===============================

Who may: a version, the class's teachers and admins, and the student who handed it in (404
for anyone else, as the other routes of a version). Rendered pages and the difference are
built in worker processes (:class:`services.base.nbrender.Renderer`, with time and memory
limits), escape or sanitise everything the student wrote and are served with the
sandboxing :data:`~services.base.nbrender.CSP` (no script runs, an origin of their own);
the review page shows them in an ``<iframe sandbox>``. They are never served by the
student's server. A rendered page is kept (:class:`RenderCache`) under the version's
content hash and the path, so opening it again, or the same content in another version,
costs no rendering. Files are read from the version's zip in the S3 store with ranged reads
(:mod:`.snapzip`), never the whole zip; downloads stream, as does **Download all**, which
copies each student's files from the store into the zip as it is sent (memory: a few MB,
whatever the class's size).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime
import html
import io
import json
import os
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tornado import iostream, web
from traitlets import Integer, TraitError, Unicode, default, validate
from traitlets.config import Configurable

from hub import clock
from services.base import nbrender
from services.base.errors import BadRequest, NotFound, ServiceError, Unavailable
from services.base.handlers import error_message
from services.base.pages import StaticHandler
from services.classes.model import InvalidClass, parse_mem
from services.files.areas import ADMIN, STUDENT, TEACHER
from services.files.names import BadName, validate_path

from . import nbdiff, snapzip
from .handlers import GradesHandler, assignment_view, submission_view
from .pages import STATIC, PageHandler
from .store import Submission

#: the most bytes of a text file shown as a page (larger ones are downloaded)
MAX_TEXT_VIEW = 4 << 20
#: the most bytes of one file compared between two versions
MAX_DIFF_BYTES = nbrender.MAX_NOTEBOOK_BYTES
#: seconds one file or one student's files may take to copy into a download
COPY_TIMEOUT = 600.0
#: seconds a notebook that could not be rendered is not tried again (its reason is kept)
FAILURE_SECONDS = 600.0
_TEXT_SUFFIXES = (
    ".py", ".md", ".txt", ".csv", ".tsv", ".json", ".r", ".jl", ".sql", ".sh", ".tex", ".yml",
    ".yaml", ".toml", ".cfg", ".ini", ".c", ".h", ".cpp", ".java", ".js", ".html", ".css",
)  # fmt: skip


class Unreadable(ServiceError):
    """A file that cannot be shown (not a notebook, damaged, too large)."""

    status_code = 422


def _env(name: str, fallback: str) -> str:
    return os.environ.get(name, "").strip() or fallback


def _env_number(name: str, fallback: float, kind=float):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return fallback
    try:
        return kind(raw)
    except ValueError:
        raise TraitError(f"{name} must be a number, got {raw[:40]!r}") from None


def _size(name: str, value: str) -> int:
    try:
        return parse_mem(value)
    except InvalidClass as e:
        raise TraitError(f"GradesApp.{name} is not a size such as 256M or 2G: {e}") from None


class ReviewSettings(Configurable):
    """The grades service's settings of the review (mixed into ``GradesApp``)."""

    render_workers = Integer(
        config=True,
        help="""Worker processes that render notebooks and differences for the review
        page (``CLASSHUB_GRADES_RENDER_WORKERS``). Each is a Python process of about 40 MB
        at rest, started with the service (warm); a 5 MB notebook takes a worker about
        half a second. More workers render more notebooks at once; 2 suits a 2-core
        machine.

        Example: ``c.GradesApp.render_workers = 4``
        """,
    )

    @default("render_workers")
    def _default_render_workers(self):
        return _env_number("CLASSHUB_GRADES_RENDER_WORKERS", 2, int)

    @validate("render_workers")
    def _check_render_workers(self, proposal):
        if not 1 <= proposal.value <= 64:
            raise TraitError(f"GradesApp.render_workers must be 1 to 64, got {proposal.value}")
        return proposal.value

    render_timeout = Integer(
        config=True,
        help="""Seconds one notebook (or one difference) may take to render
        (``CLASSHUB_GRADES_RENDER_TIMEOUT``). A notebook built to be slow is stopped then
        (its worker is replaced) and the teacher reads "took longer than N s to render"
        with the download beside it.

        Example: ``c.GradesApp.render_timeout = 30``
        """,
    )

    @default("render_timeout")
    def _default_render_timeout(self):
        return _env_number("CLASSHUB_GRADES_RENDER_TIMEOUT", 20, int)

    @validate("render_timeout")
    def _check_render_timeout(self, proposal):
        if not 1 <= proposal.value <= 600:
            raise TraitError(
                f"GradesApp.render_timeout must be 1 to 600 seconds, got {proposal.value}"
            )
        return proposal.value

    render_memory = Unicode(
        config=True,
        help="""The address space one render worker may use (K, M, G suffixes;
        ``CLASSHUB_GRADES_RENDER_MEMORY``). A notebook that needs more fails with "too
        large to render" (its worker is replaced); notebooks over 50 MB are never
        rendered.

        Example: ``c.GradesApp.render_memory = "1G"``
        """,
    )

    @default("render_memory")
    def _default_render_memory(self):
        return _env("CLASSHUB_GRADES_RENDER_MEMORY", "2G")

    @validate("render_memory")
    def _check_render_memory(self, proposal):
        if _size("render_memory", proposal.value) < 256 << 20:
            raise TraitError("GradesApp.render_memory must be at least 256M.")
        return proposal.value

    render_cache_size = Unicode(
        config=True,
        help="""How much rendered HTML the service keeps in memory (K, M, G suffixes; 0
        keeps none; ``CLASSHUB_GRADES_RENDER_CACHE``), under each version's content hash:
        a notebook opened again (the next student and back, another teacher) is sent at
        once instead of being rendered again. A rendered notebook takes about its own size.

        Example: ``c.GradesApp.render_cache_size = "512M"``
        """,
    )

    @default("render_cache_size")
    def _default_render_cache_size(self):
        return _env("CLASSHUB_GRADES_RENDER_CACHE", "256M")

    @validate("render_cache_size")
    def _check_render_cache_size(self, proposal):
        if proposal.value.strip() != "0":
            _size("render_cache_size", proposal.value)
        return proposal.value

    download_all_concurrency = Integer(
        2,
        config=True,
        help="""How many **Download all** zips the service builds at once (each holds one
        of the service's S3 threads while it runs); one more is answered 503 "try again in
        a minute".

        Example: ``c.GradesApp.download_all_concurrency = 4``
        """,
    )

    @validate("download_all_concurrency")
    def _check_download_all_concurrency(self, proposal):
        if not 1 <= proposal.value <= 32:
            raise TraitError(
                f"GradesApp.download_all_concurrency must be 1 to 32, got {proposal.value}"
            )
        return proposal.value

    def make_review(self, objects, log) -> Review:
        cache = self.render_cache_size.strip()
        return Review(
            objects=objects,
            renderer=nbrender.Renderer(
                workers=self.render_workers,
                timeout=float(self.render_timeout),
                memory_bytes=_size("render_memory", self.render_memory),
            ),
            cache=RenderCache(0 if cache == "0" else _size("render_cache_size", cache)),
            downloads=self.download_all_concurrency,
            log=log,
        )


# ----------------------------------------------------------------------------- the cache


class RenderCache:
    """Rendered pages (bytes) by key, the least recently used dropped first once they take
    more than ``max_bytes``."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.used = 0
        self._items: OrderedDict[tuple, bytes] = OrderedDict()

    def get(self, key: tuple) -> bytes | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: tuple, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.used -= len(old)
        self._items[key] = value
        self.used += len(value)
        while self.used > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self.used -= len(dropped)


# ----------------------------------------------------------------------------- streaming


class Aborted(Exception):
    """The browser went away (or the stream was given up): stop copying."""


class ChunkPipe:
    """Bytes written by a worker thread (``zipfile`` writes into it), sent by the event
    loop: at most ``depth`` chunks of ``chunk`` bytes wait, so a slow browser slows the
    copy instead of filling memory."""

    def __init__(self, loop: asyncio.AbstractEventLoop, chunk: int = 256 << 10, depth: int = 8):
        self._loop = loop
        self._chunk = chunk
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._slots = threading.Semaphore(depth)
        self._buffer = bytearray()
        self.aborted = False
        self.sent = 0

    # ----- the worker thread's side (a file zipfile can write to: no tell, no seek)

    def write(self, data) -> int:
        if self.aborted:
            raise Aborted()
        self._buffer += data
        while len(self._buffer) >= self._chunk:
            self._send(bytes(self._buffer[: self._chunk]))
            del self._buffer[: self._chunk]
        return len(data)

    def flush(self) -> None:
        """zipfile flushes after each member: nothing to do (chunks go when full)."""

    def drain(self) -> None:
        """Send what is buffered (at the end)."""
        if self._buffer:
            self._send(bytes(self._buffer))
            self._buffer.clear()

    def _send(self, chunk: bytes) -> None:
        while not self._slots.acquire(timeout=0.5):
            if self.aborted:
                raise Aborted()
        if self.aborted:
            raise Aborted()
        self._loop.call_soon_threadsafe(self._queue.put_nowait, chunk)

    # ----- the event loop's side

    def end(self) -> None:
        self._queue.put_nowait(None)

    async def pump(self, handler: web.RequestHandler) -> None:
        """Send every chunk to ``handler``'s browser until :meth:`end`."""
        while True:
            chunk = await self._queue.get()
            if chunk is None:
                return
            self._slots.release()
            if self.aborted:
                continue
            handler.write(chunk)
            try:
                await handler.flush()
            except iostream.StreamClosedError:
                self.aborted = True
            self.sent += len(chunk)


# ----------------------------------------------------------------------------- the work


@dataclass(frozen=True)
class ManifestRow:
    student: str
    status: str
    submission: Submission | None = None
    note: str = ""


def manifest_csv(rows: list[ManifestRow]) -> bytes:
    """``manifest.csv`` of a **Download all** zip (UTF-8 with a BOM, for spreadsheets)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            "student",
            "status",
            "version",
            "submitted_at",
            "late",
            "penalty_percent",
            "collected_by",
            "files",
            "bytes",
            "sha256",
            "note",
        ]
    )
    for row in rows:
        s = row.submission
        writer.writerow(
            [
                row.student,
                row.status,
                s.version if s else "",
                _iso(s.submitted_at) if s else "",
                ("yes" if s.late else "no") if s else "",
                str(s.penalty_percent) if s and s.late else "",
                (s.collected_by or "") if s else "",
                s.files if s else "",
                s.size_bytes if s else "",
                s.content_sha256 if s else "",
                row.note,
            ]
        )
    return out.getvalue().encode("utf-8-sig")


def _iso(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def _zip_time(value: datetime.datetime) -> tuple:
    t = value.astimezone(datetime.UTC)
    return (max(t.year, 1980), t.month, t.day, t.hour, t.minute, t.second)


def _add_file(zf: zipfile.ZipFile, name: str, size: int, chunks: Iterator[bytes], when) -> None:
    info = zipfile.ZipInfo(name, date_time=when)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    with zf.open(info, "w", force_zip64=size > 1 << 30) as out:
        for chunk in chunks:
            out.write(chunk)


def viewable(path: str) -> str | None:
    """How the review page shows ``path``: ``"notebook"``, ``"text"``, or None (listed
    and downloaded only)."""
    lower = path.lower()
    if lower.endswith(".ipynb"):
        return "notebook"
    if lower.endswith(_TEXT_SUFFIXES) or "." not in lower.rsplit("/", 1)[-1]:
        return "text"
    return None


class Review:
    """The review's work: the renderer, its cache, reading versions from the store."""

    def __init__(self, *, objects, renderer: nbrender.Renderer, cache: RenderCache, downloads, log):
        self.objects = objects
        self.renderer = renderer
        self.cache = cache
        self.log = log
        self.downloads = asyncio.Semaphore(downloads)
        self._listings: OrderedDict[str, list[snapzip.SnapshotFile]] = OrderedDict()
        self._pending: dict[tuple, asyncio.Future] = {}
        # pages that could not be made (a broken or too slow notebook): the reason, so
        # opening it again (or the page's look-ahead) does not make a worker try again
        self._failed: OrderedDict[tuple, tuple[float, str]] = OrderedDict()

    async def warm(self) -> None:
        try:
            await self.renderer.warm()
        except (nbrender.NotebookError, TimeoutError, OSError) as e:
            self.log.warning("The notebook renderer did not warm up: %s", e)

    def close(self) -> None:
        self.renderer.close()

    async def _job(self, what: str, fn: Callable, *args, timeout: float = 60.0):
        try:
            return await self.objects.run_job(what, fn, *args, timeout=timeout)
        except snapzip.FileTooLarge as e:
            raise Unreadable(f"{e} Download it instead.") from None
        except snapzip.SnapshotUnreadable as e:
            raise Unreadable(str(e)) from None

    async def files(self, s: Submission) -> list[snapzip.SnapshotFile]:
        """The files of version ``s`` (kept: a version never changes)."""
        found = self._listings.get(s.storage_key)
        if found is None:
            found = await self._job(
                "listing a version's files",
                snapzip.list_files,
                self.objects,
                s.storage_key,
                s.size_bytes,
            )
            self._listings[s.storage_key] = found
            if len(self._listings) > 2000:
                self._listings.popitem(last=False)
        else:
            self._listings.move_to_end(s.storage_key)
        return found

    async def read(self, s: Submission, paths: list[str], max_bytes: int) -> dict:
        return await self._job(
            "reading a version's files",
            snapzip.read_files,
            self.objects,
            s.storage_key,
            s.size_bytes,
            paths,
            max_bytes,
        )

    async def _cached(self, key: tuple, make: Callable[[], Awaitable[str]]) -> bytes:
        """The page under ``key``, made once even when asked for several times at once."""
        found = self.cache.get(key)
        if found is not None:
            return found
        failed = self._failed.get(key)
        if failed is not None and clock.now() - failed[0] < FAILURE_SECONDS:
            raise nbrender.NotebookError(failed[1])
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            body = (await make()).encode("utf-8")
        except nbrender.NotebookError as e:
            self._failed[key] = (clock.now(), str(e))
            if len(self._failed) > 1000:
                self._failed.popitem(last=False)
            future.set_exception(e)
            future.exception()
            raise
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as e:
            future.set_exception(e)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        else:
            future.set_result(body)
            self.cache.put(key, body)
            return body
        finally:
            self._pending.pop(key, None)

    async def rendered(self, s: Submission, path: str) -> bytes:
        """The page of ``path`` in version ``s`` (a notebook or a text file)."""
        kind = viewable(path)
        if kind is None:
            raise Unreadable(f"{path} cannot be shown here; download it instead.")
        limit = nbrender.MAX_NOTEBOOK_BYTES if kind == "notebook" else MAX_TEXT_VIEW

        async def make() -> str:
            raw = (await self.read(s, [path], limit))[path]
            if raw is None:
                raise NotFound(f"This version has no file {path!r}.")
            if kind == "notebook":
                return await self.renderer.render(raw, path)
            return await self.renderer.run(nbrender.render_text, raw, path)

        try:
            return await self._cached(("render", s.content_sha256, path), make)
        except nbrender.NotebookError as e:
            raise Unreadable(str(e)) from None

    async def diff(self, base: Submission, s: Submission, path: str) -> bytes:
        """The page of the changes to ``path`` from version ``base`` to ``s``."""
        labels = (f"version {base.version}", f"version {s.version}")

        async def make() -> str:
            old, new = await asyncio.gather(
                self.read(base, [path], MAX_DIFF_BYTES), self.read(s, [path], MAX_DIFF_BYTES)
            )
            if old[path] is None and new[path] is None:
                raise NotFound(f"Neither version has a file {path!r}.")
            return await self.renderer.run(nbdiff.diff_file, path, old[path], new[path], labels)

        key = ("diff", base.content_sha256, s.content_sha256, path, labels)
        try:
            return await self._cached(key, make)
        except nbrender.NotebookError as e:
            raise Unreadable(str(e)) from None

    async def stream_file(self, handler: GradesHandler, s: Submission, path: str) -> None:
        """Send one file of version ``s`` to ``handler``'s browser as it is read."""
        files = {f.path: f for f in await self.files(s)}
        if path not in files:
            raise NotFound(f"This version has no file {path!r}.")
        pipe = ChunkPipe(asyncio.get_running_loop())

        def copy() -> None:
            with snapzip.open_snapshot(self.objects, s.storage_key, s.size_bytes) as zf:
                for chunk in snapzip.iter_file(zf, path, files[path].size):
                    pipe.write(chunk)
            pipe.drain()

        pump = asyncio.create_task(pipe.pump(handler))
        try:
            await self._job("sending a file", copy, timeout=COPY_TIMEOUT)
        except Aborted:
            pass
        except (ServiceError, Unavailable) as e:
            pipe.aborted = True
            if not handler._headers_written:  # nothing sent yet: a clear answer
                raise
            handler.log.warning("Download of %s stopped: %s", path, e)
            handler.request.connection.close()
        finally:
            pipe.end()
            await pump

    async def download_all(
        self, handler: GradesHandler, subs: list[Submission], students: list[str]
    ) -> None:
        """Send the zip of versions ``subs`` (one folder per student) with its manifest.
        A version whose snapshot cannot be read is left out and the manifest says why; the
        store failing on the way ends the download (the browser shows it failed)."""
        pipe = ChunkPipe(asyncio.get_running_loop())
        zf = zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        on_roster = set(students)
        rows: list[ManifestRow] = []
        pump = asyncio.create_task(pipe.pump(handler))
        try:
            for s in sorted(subs, key=lambda x: x.username):
                when = _zip_time(s.submitted_at)

                def copy(s=s, when=when) -> list[str]:
                    def add(path: str, size: int, chunks: Iterator[bytes]) -> None:
                        _add_file(zf, f"{s.username}/{path}", size, chunks, when)

                    return snapzip.copy_files(
                        self.objects, s.storage_key, s.size_bytes, add, 1 << 40
                    )

                note = "" if s.username in on_roster else "no longer on the class's roster"
                try:
                    await self._job("copying a version into a zip", copy, timeout=COPY_TIMEOUT)
                except (Unreadable, snapzip.SnapshotMissing) as e:
                    note = f"left out: {e}"
                rows.append(
                    ManifestRow(s.username, "late" if s.late else "on time", s, note.strip())
                )
            handed_in = {s.username for s in subs}
            rows += [ManifestRow(u, "nothing handed in") for u in sorted(on_roster - handed_in)]
            rows.sort(key=lambda r: r.student)

            def finish() -> None:
                now = _zip_time(datetime.datetime.now(datetime.UTC))
                manifest = manifest_csv(rows)
                _add_file(zf, "manifest.csv", len(manifest), iter([manifest]), now)
                zf.close()
                pipe.drain()

            await self._job("finishing a zip", finish)
        except Aborted:
            self.log.info("Download all stopped: the browser went away")
        except (ServiceError, Unavailable) as e:
            pipe.aborted = True
            handler.log.warning("Download all stopped: %s", e)
            handler.request.connection.close()
        finally:
            pipe.end()
            await pump


# ----------------------------------------------------------------------------- handlers


def _file_path(raw: str) -> str:
    try:
        return validate_path(raw)
    except BadName as e:
        raise BadRequest(f"Not a file name of a version: {e}.") from None


class ReviewHandler(GradesHandler):
    """Dependencies also: ``review`` (:class:`Review`)."""

    review: Review

    async def version(self, submission_id: str) -> tuple[Submission, Any, str]:
        submission, assignment, role = await self.submission(submission_id)
        if role == STUDENT and submission.grade is not None and not submission.grade.returned:
            submission = dataclasses.replace(submission, grade=None)
        return submission, assignment, role


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
        submission, assignment, role = await self.version(submission_id)
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
        self.write_json(
            {
                "submission": submission_view(submission),
                "assignment": {**assignment_view(assignment), "class": assignment.class_code},
                "role": role,
                "files": files,
            }
        )


class VersionFileHandler(ReviewHandler):
    async def get(self, submission_id, raw_path):
        submission, assignment, _ = await self.version(submission_id)
        path = _file_path(raw_path)
        name = path.rsplit("/", 1)[-1]
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(name)}")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        self.set_header("Cache-Control", "private, no-store")
        await self.review.stream_file(self, submission, path)


class RenderHandler(PageAnswer, ReviewHandler):
    async def get(self, submission_id, raw_path):
        submission, _, _ = await self.version(submission_id)
        _send_page(self, await self.review.rendered(submission, _file_path(raw_path)))

    #: HEAD renders and keeps the page without sending it: the review page asks for the
    #: next and previous students' notebooks so that moving to them shows them at once
    head = get


class DiffHandler(PageAnswer, ReviewHandler):
    async def get(self, submission_id, base_id, raw_path):
        submission, assignment, _ = await self.version(submission_id)
        base, _, _ = await self.version(base_id)
        if base.assignment_id != submission.assignment_id or base.username != submission.username:
            raise BadRequest(
                "Two versions of the same student's work on the same assignment can be "
                "compared, not these."
            )
        path = _file_path(raw_path)
        _send_page(self, await self.review.diff(base, submission, path))


class DownloadAllHandler(ReviewHandler):
    async def get(self, code, slug):
        code = await self.teacher(code)
        assignment = await self.assignment(code, slug, TEACHER)
        subs, students = await asyncio.gather(
            self.store.counting_submissions(assignment.id), self.membership.students(code)
        )
        await self.objects.ping()  # the store down: a 503 now, before the first byte
        if self.review.downloads.locked():
            raise Unavailable(
                "Other downloads of all versions are being made right now; try again in a minute."
            )
        async with self.review.downloads:
            filename = f"{code}-{assignment.slug}-all.zip"
            self.set_header("Content-Type", "application/zip")
            self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
            self.set_header("Cache-Control", "private, no-store")
            self.log.info(
                "%s downloads all %d counting versions of %s/%s",
                self.caller().name,
                len(subs),
                code,
                assignment.slug,
            )
            await self.review.download_all(self, subs, list(students))


def first_shown(files: list[snapzip.SnapshotFile], wanted: str = "") -> str:
    """The file the review page shows first: ``wanted`` when the version has it, else the
    first notebook, else the first text file (as ``firstShown`` in static/review.js)."""
    paths = [f.path for f in files]
    if wanted and wanted in paths:
        return wanted
    for kind in ("notebook", "text"):
        found = next((p for p in paths if viewable(p) == kind), None)
        if found:
            return found
    return paths[0] if paths else ""


class ReviewPage(PageHandler, ReviewHandler):
    """``GET <prefix>classes/<code>/assignments/<slug>/review[?user=&version=&file=]``.

    The page names the notebook it opens on in its frame's ``src``, so the browser fetches
    it while the page's script starts (the script then agrees on the same view). The query
    says which (the script keeps it up to date); a value that does not check out (not a
    student of the class, another assignment's version) is ignored: the page opens on the
    first student who handed in."""

    async def initial_view(self, code: str, assignment, role: str) -> str:
        """The address of the notebook (or text file) the page opens on, "" for none."""
        wanted_user = self.get_query_argument("user", "")
        wanted_version = self.get_query_argument("version", "")
        wanted_file = self.get_query_argument("file", "")
        if self.get_query_argument("since", ""):
            return ""  # a comparison: the script asks for it
        if role == STUDENT:
            users = [self.caller().name]
        else:
            users = list(await self.membership.students(code))
            if wanted_user in users:
                users = [wanted_user]
        counting = {s.username: s for s in await self.store.counting_submissions(assignment.id)}
        chosen = next((counting[u] for u in users if u in counting), None)
        if wanted_version.isdigit() and chosen is not None:
            for s in await self.store.user_submissions(assignment.id, chosen.username):
                if str(s.id) == wanted_version:
                    chosen = s
        if chosen is None:
            return ""
        path = first_shown(await self.review.files(chosen), wanted_file)
        if not path or viewable(path) is None:
            return ""
        prefix = self.settings["service_prefix"]
        return f"{prefix}api/submissions/{chosen.id}/render/{quote(path, safe='/')}"

    @web.authenticated
    async def get(self, code, slug):
        code, role = await self.role(code)
        assignment = await self.assignment(code, slug, role)
        teaches = role in (ADMIN, TEACHER)
        try:
            initial = await self.initial_view(code, assignment, role)
        except (ServiceError, BadName) as e:  # the page works without it
            self.log.info("Review page of %s/%s without a first view: %s", code, slug, e)
            initial = ""
        self.render_page(
            "review.html",
            code=code,
            class_name=await self.class_name(code),
            assignment=assignment,
            role=role,
            teaches=teaches,
            initial_src=initial,
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
