"""Taking a snapshot of a student's assignment folder and storing it (submission).

The snapshot comes from the student's class server: classhub's server extension
(``classhub_singleuser.snapshot``) answers ``GET classhub/snapshot?folder=<code>/assignments/<s>``
with a deterministic zip of that folder. When a teacher collects and the server is stopped,
it is started for the snapshot and stopped again afterwards.

The zip is stored in the S3 store first, under a key of its own
(``submissions/<code>/<slug>/<user>/<id>.zip``), and recorded in PostgreSQL only after it
is stored: so a recorded submission always has its snapshot. A snapshot whose record then
fails is removed at once, and any left behind (the service stopped in between) are found by
:meth:`Collector.remove_orphans`, which deletes stored snapshots no record points to.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import secrets
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from services.base.errors import ServiceError, Unavailable
from services.base.hubapi import HubAPI, HubAPIError
from services.base.userservers import answer_message, server_url
from services.files import names
from services.files.push import push_label
from services.files.s3 import ObjectStore

from . import rules
from .snapcheck import snapshot_files
from .store import GradesStore, Submission

log = logging.getLogger(__name__)

#: the largest snapshot accepted (the extension refuses more on its side, 100 MiB)
MAX_SNAPSHOT_BYTES = 110 << 20
#: a second Submit with the same content this soon is the same submission (a double click)
DUPLICATE_WINDOW = 120.0


class SnapshotFailed(ServiceError):
    status_code = 409


def feedback_text(item: dict) -> str:
    """The feedback file a student finds in their server (Markdown)."""
    points, maximum = item["points"], item["max_points"]
    lines = [f"# {item['title']}: feedback", "", f"Version {item['version']}."]
    lines.append(f"Points: {points} of {maximum}.")
    if item["late"] and item["penalty_percent"]:
        final = rules.apply_penalty(points, item["penalty_percent"])
        lines.append(f"Late: {item['penalty_percent']}% penalty, so {final} of {maximum}.")
    if item["feedback"]:
        lines += ["", item["feedback"]]
    return "\n".join(lines) + "\n"


def assignment_folder(code: str, slug: str) -> str:
    """Where the assignment lives in the student's class server: ``<code>/assignments/<slug>``."""
    return f"{names.validate_code(code)}/assignments/{names.validate_assignment(slug)}"


@dataclass(frozen=True)
class Snapshot:
    data: bytes
    sha256: str
    files: int
    size: int


class Collector:
    def __init__(
        self,
        *,
        store: GradesStore,
        objects: ObjectStore,
        hub: HubAPI,
        servers_url: str,
        base_url: str,
        token: str,
        clock: Callable[[], float],
        start_timeout: float = 120.0,
        log: logging.Logger | None = None,
    ):
        self.store = store
        self.objects = objects
        self.hub = hub
        self.servers_url = servers_url
        self.base_url = base_url
        self._token = token
        self.clock = clock
        self.start_timeout = start_timeout
        self.log = log or logging.getLogger(__name__)
        self._http = AsyncHTTPClient(force_instance=True, max_clients=16)
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}

    def close(self) -> None:
        self._http.close()

    # ----- the student's server

    async def server_running(self, user: str, code: str) -> bool:
        model = await self.hub.get_user(user)
        server = ((model or {}).get("servers") or {}).get(code)
        return bool(server and server.get("ready"))

    async def start_server(self, user: str, code: str) -> None:
        await self.hub.start_server(user, code)
        deadline = self.clock() + self.start_timeout
        while self.clock() < deadline:
            if await self.server_running(user, code):
                return
            await asyncio.sleep(0.5)
        raise SnapshotFailed(
            f"{user}'s class server did not start within {self.start_timeout:.0f} s."
        )

    async def fetch(self, user: str, code: str, slug: str) -> Snapshot:
        """The zip of the assignment folder from the user's running class server."""
        folder = assignment_folder(code, slug)
        url = server_url(
            self.servers_url, self.base_url, user, code, "classhub/snapshot", {"folder": folder}
        )
        spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)
        received = 0

        def chunk(data: bytes) -> None:
            nonlocal received
            received += len(data)
            if received > MAX_SNAPSHOT_BYTES:
                raise ValueError("snapshot too large")
            spool.write(data)

        request = HTTPRequest(
            url,
            headers={"Authorization": f"token {self._token}"},
            connect_timeout=5,
            request_timeout=300,
            follow_redirects=False,
            streaming_callback=chunk,
        )
        try:
            response = await self._http.fetch(request)
        except HTTPClientError as e:
            spool.close()
            raise self._refusal(e, folder) from None
        except (OSError, TimeoutError, ValueError) as e:
            spool.close()
            raise SnapshotFailed(f"The snapshot of {folder} failed: {e}.") from None
        with spool:
            spool.seek(0)
            data = spool.read()
        files = int(response.headers.get("X-Classhub-Files", "0") or 0)
        return Snapshot(data, hashlib.sha256(data).hexdigest(), files, len(data))

    @staticmethod
    def _refusal(e: HTTPClientError, folder: str) -> SnapshotFailed:
        message = answer_message(e.response.body if e.response is not None else b"")
        if e.code == 404 and message:
            return SnapshotFailed(message)
        # 302/303: the hub sends the request to its spawn page (no server), 424: it failed
        if e.code in (302, 303, 404, 424, 502, 503, 599):
            return SnapshotFailed("The class server is not running: start it, then submit again.")
        if e.code == 413:
            return SnapshotFailed(message or f"The folder {folder} is too large to submit.")
        if e.code in (401, 403):
            return SnapshotFailed("The grades service may not read this server (check its scopes).")
        return SnapshotFailed(message or f"The snapshot of {folder} failed ({e.code}).")

    # ----- submitting

    async def submit(
        self, assignment_id: int, code: str, slug: str, user: str, *, collected_by: str | None
    ) -> tuple[Submission, bool]:
        """Snapshot, store and record one submission; ``(submission, duplicate)``.

        One at a time per student and assignment: a double click waits for the first and
        then finds the same content, just submitted, and returns that version."""
        lock = self._locks.setdefault((assignment_id, user), asyncio.Lock())
        async with lock:
            snapshot = await self.fetch(user, code, slug)
            files = snapshot_files(snapshot.data)  # refuses a hostile zip directory
            previous = await self._latest(assignment_id, user)
            if (
                previous is not None
                and previous.content_sha256 == snapshot.sha256
                and self.clock() - previous.submitted_at.timestamp() < DUPLICATE_WINDOW
            ):
                return previous, True
            key = (
                f"submissions/{names.validate_code(code)}/{names.validate_assignment(slug)}/"
                f"{names.validate_username(user)}/{secrets.token_hex(8)}.zip"
            )
            await self.objects.put_bytes(key, snapshot.data, "application/zip")
            try:
                submission = await self.store.record_submission(
                    assignment_id,
                    user,
                    content_sha256=snapshot.sha256,
                    size_bytes=snapshot.size,
                    files=files,
                    storage_key=key,
                    collected_by=collected_by,
                )
            except BaseException:
                # never a stored snapshot without its record
                try:
                    await self.objects.remove([key])
                except Unavailable:
                    self.log.warning("Snapshot %s left for the orphan clean-up", key)
                raise
            return submission, False

    async def _latest(self, assignment_id: int, user: str) -> Submission | None:
        for latest in await self.store.list_submissions(assignment_id):
            if latest.username == user:
                return latest.latest
        return None

    async def collect_one(
        self, assignment_id: int, code: str, slug: str, user: str, *, teacher: str
    ) -> dict:
        """A teacher's collection of one student: started for it when stopped."""
        started_here = False
        try:
            if not await self.server_running(user, code):
                await self.start_server(user, code)
                started_here = True
            submission, duplicate = await self.submit(
                assignment_id, code, slug, user, collected_by=teacher
            )
            return {
                "user": user,
                "status": "collected",
                "version": submission.version,
                "late": submission.late,
                "duplicate": duplicate,
            }
        except (ServiceError, HubAPIError) as e:
            return {"user": user, "status": "failed", "message": str(e)}
        finally:
            if started_here:
                try:
                    await self.hub.stop_server(user, code)
                except (Unavailable, HubAPIError) as e:
                    self.log.warning("Could not stop %s/%s after collecting: %s", user, code, e)

    # ----- feedback into the student's server

    async def deliver_feedback(self, item: dict) -> bool:
        """Write a returned grade's feedback into the student's class server, as
        ``~/<code>/feedback/<slug>/feedback.md`` (through the same server extension as
        material pushes, so a file the student edited is never overwritten). False when
        their server is not running: delivered at a later round."""
        user, code, slug = item["username"], item["class_code"], item["slug"]
        if not await self.server_running(user, code):
            return False
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("feedback.md", feedback_text(item))
        query = {"dest": f"{code}/feedback/{slug}", "label": push_label(self.clock())}
        request = HTTPRequest(
            server_url(self.servers_url, self.base_url, user, code, "classhub/material", query),
            method="POST",
            body=buffer.getvalue(),
            headers={"Authorization": f"token {self._token}", "Content-Type": "application/zip"},
            connect_timeout=5,
            request_timeout=60,
            follow_redirects=False,
        )
        try:
            await self._http.fetch(request)
        except HTTPClientError as e:
            if e.code in (404, 502, 503, 599):
                return False
            self.log.warning("Feedback for %s/%s not delivered: %s", user, slug, e.code)
            return False
        except (OSError, TimeoutError) as e:
            self.log.warning("Feedback for %s/%s not delivered: %s", user, slug, type(e).__name__)
            return False
        return await self.store.feedback_delivered(item["submission_id"], item["revision"])

    async def deliver_pending_feedback(self) -> int:
        delivered = 0
        for item in await self.store.undelivered_feedback():
            try:
                delivered += bool(await self.deliver_feedback(item))
            except (Unavailable, HubAPIError) as e:
                self.log.warning("Feedback delivery postponed: %s", e)
                break
        return delivered

    async def remove_orphans(self, min_age: float = 3600.0) -> int:
        """Delete stored snapshots that no record points to and that are older than
        ``min_age`` seconds (a submission being recorded right now is left alone): what a
        stop of the service between storing and recording leaves behind."""
        stored = await self.objects.list("submissions/")
        known = await self.store.all_storage_keys()
        now = self.clock()
        old = [o.key for o in stored if o.key not in known and now - o.modified > min_age]
        if old:
            await self.objects.remove(old)
            self.log.info("Removed %d stored snapshot(s) without a record", len(old))
        return len(old)
