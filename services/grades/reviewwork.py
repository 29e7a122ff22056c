"""The review's work (:mod:`.review`): reading a version's files from its zip in the S3
store with ranged reads (:mod:`.snapzip`), rendering notebooks and differences in worker
processes (:class:`services.base.nbrender.Renderer`, with time and memory limits), the
cache of rendered pages (under the version's content hash, so opening a page again, or the
same content in another version, costs no rendering), and streaming one file."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from tornado import web

from common import clock
from common.errors import NotFound, ServiceError, Unavailable
from services.base import nbrender

from . import nbdiff, snapzip
from .store import Submission
from .zipstream import Aborted, ChunkPipe

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


#: in a rendered page's Show and Collapse links, replaced by a grant for each answer
GRANT_MARK = "__classhub_grant__"
GRANT_QUERY = "&grant=" + GRANT_MARK
#: how long the Show links of a page opened with the viewer's sign-in work
GRANT_SECONDS = 3600


class Grants:
    """Grants in a rendered page's Show links: the page runs no script and has an origin
    of its own, so a link clicked in it navigates without the viewer's cookies (the
    browser treats the request as cross-site). The link carries a grant instead: an HMAC,
    with a key derived from the service's cookie secret, of one version, one file and an
    expiry, which lets that link render that file of that version (with other outputs
    shown) and nothing else, until it expires. A page opened with a grant carries the same
    grant on (never a longer one)."""

    def __init__(self, secret: bytes):
        self._key = hmac.new(secret, b"classhub review: show outputs", hashlib.sha256).digest()

    def _mac(self, submission_id: int, path: str, expires: int) -> str:
        message = f"{submission_id}\0{path}\0{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def make(self, submission_id: int, path: str, now: float) -> str:
        expires = int(now) + GRANT_SECONDS
        return f"{expires}.{self._mac(submission_id, path, expires)}"

    def check(self, grant: str, submission_id: int, path: str, now: float) -> bool:
        expires, _, mac = grant.partition(".")
        if not expires.isdigit() or len(expires) > 12 or int(expires) < now:
            return False
        return hmac.compare_digest(mac, self._mac(submission_id, path, int(expires)))


class Unreadable(ServiceError):
    """A file that cannot be shown (not a notebook, damaged, too large)."""

    status_code = 422


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

    def __init__(
        self,
        *,
        objects,
        renderer: nbrender.Renderer,
        cache: RenderCache,
        downloads,
        log,
        collapse: nbrender.Collapse | None = None,
    ):
        self.objects = objects
        #: which HTML outputs a rendered notebook shows collapsed, before a teacher asks
        self.collapse = collapse or nbrender.Collapse()
        self.renderer = renderer
        self.cache = cache
        self.log = log
        self.downloads = asyncio.Semaphore(downloads)
        self._listings: OrderedDict[str, list[snapzip.SnapshotFile]] = OrderedDict()
        self._pending: dict[tuple, asyncio.Future] = {}
        # pages that could not be made (a broken or too slow notebook): the reason, so
        # opening it again (or the page's look-ahead) does not make a worker try again
        self._failed: OrderedDict[tuple, tuple[float, str]] = OrderedDict()
        self._grants: Grants | None = None

    def grants(self, secret: bytes) -> Grants:
        """The grants of Show links, keyed from the service's cookie secret (made once)."""
        if self._grants is None:
            self._grants = Grants(secret)
        return self._grants

    async def warm(self) -> None:
        try:
            await self.renderer.warm()
        except (nbrender.NotebookError, TimeoutError, OSError) as e:
            self.log.warning("The notebook renderer did not warm up: %s", e)

    def close(self) -> None:
        self.renderer.close()

    async def job(self, what: str, fn: Callable, *args, timeout: float = 60.0):
        """``fn(*args)`` in the S3 store's thread pool; a version that cannot be read is
        :class:`Unreadable` (422) with the reason."""
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
            found = await self.job(
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
        return await self.job(
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

    async def rendered(self, s: Submission, path: str, show: str = "") -> bytes:
        """The page of ``path`` in version ``s`` (a notebook or a text file); ``show``:
        the collapsed outputs asked for (``all``, or ids such as ``3.0,7.1``)."""
        kind = viewable(path)
        collapse = self.collapse.asking(show) if kind == "notebook" else self.collapse
        if kind is None:
            raise Unreadable(f"{path} cannot be shown here; download it instead.")
        limit = nbrender.MAX_NOTEBOOK_BYTES if kind == "notebook" else MAX_TEXT_VIEW

        async def make() -> str:
            raw = (await self.read(s, [path], limit))[path]
            if raw is None:
                raise NotFound(f"This version has no file {path!r}.")
            if kind == "notebook":
                return await self.renderer.render(raw, path, collapse)
            return await self.renderer.run(nbrender.render_text, raw, path)

        try:
            return await self._cached(("render", s.content_sha256, path, collapse.key()), make)
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

    async def stream_file(self, handler: web.RequestHandler, s: Submission, path: str) -> None:
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
            await self.job("sending a file", copy, timeout=COPY_TIMEOUT)
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
