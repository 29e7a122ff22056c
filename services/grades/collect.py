"""Taking a snapshot of a student's assignment folder and storing it (submission).

The snapshot is taken from the student's home volume, never through their server
(issue 12: no credential of the service ever enters a student's container): a throwaway
helper container (:mod:`services.base.homes`) mounts the home read-only and writes a
deterministic zip of ``~/<code>/assignments/<slug>`` (:mod:`classhub_singleuser.snapshot`).
So Submit and collect work the same whether the class server runs or not, and a collect
never starts a stopped server. A student who never started the class server has no home
and nothing to snapshot.

The zip is stored in the S3 store first, under a key of its own
(``submissions/<code>/<slug>/<user>/<id>.zip``), and recorded in PostgreSQL only after it
is stored: so a recorded submission always has its snapshot. A snapshot whose record then
fails is removed at once, and any left behind (the service stopped in between) are found by
:meth:`Collector.remove_orphans`, which deletes stored snapshots no record points to.

Feedback goes the same way: the helper merges ``feedback.md`` into
``~/<code>/feedback/<slug>/`` by the material rule (a file the student edited is kept),
running or not; a student without a home yet gets it when the home first appears.
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from services.base.errors import ServiceError, Unavailable
from services.base.homes import HelperUnavailable, HomeMissing, HomeRefused, Homes
from services.files import names
from services.files.push import push_label
from services.files.s3 import ObjectStore

from . import rules
from .snapcheck import snapshot_files
from .store import GradesStore, Submission

log = logging.getLogger(__name__)

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


def _feedback_key(item: dict) -> tuple:
    return (item["submission_id"], item["revision"])


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
        homes: Homes,
        clock: Callable[[], float],
        log: logging.Logger | None = None,
    ):
        self.store = store
        self.objects = objects
        self.homes = homes
        self.clock = clock
        self.log = log or logging.getLogger(__name__)
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}
        # feedback whose delivery failed: when to try again
        self._failures: dict[tuple, int] = {}
        self._retry_at: dict[tuple, float] = {}

    # ----- the student's home

    async def fetch(self, user: str, code: str, slug: str) -> Snapshot:
        """The zip of the assignment folder, from the student's home (running or not)."""
        folder = assignment_folder(code, slug)
        try:
            taken = await self.homes.snapshot(user, code, folder)
        except HomeMissing:
            raise SnapshotFailed(
                f"There is no home folder for {code} yet (the class server was never"
                f" started), so there is nothing to hand in: start it once, put the work"
                f" in {folder}, then submit."
            ) from None
        except HomeRefused as e:
            raise SnapshotFailed(str(e)) from None
        except HelperUnavailable as e:
            self.log.warning("Snapshot of %s/%s not taken: %s", user, folder, e.detail)
            raise
        return Snapshot(taken.data, taken.sha256, taken.files, len(taken.data))

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
        """A teacher's collection of one student, from their home (no server is started)."""
        try:
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
        except ServiceError as e:
            return {"user": user, "status": "failed", "message": str(e)}

    async def collect_all(
        self, assignment_id: int, code: str, slug: str, users: list[str], *, teacher: str
    ) -> list[dict]:
        """Every student's collection, at once (the helper batches the snapshots)."""
        return list(
            await asyncio.gather(
                *(self.collect_one(assignment_id, code, slug, u, teacher=teacher) for u in users)
            )
        )

    # ----- feedback into the student's home

    async def deliver_feedback(self, item: dict) -> bool:
        """Write a returned grade's feedback into the student's home, as
        ``~/<code>/feedback/<slug>/feedback.md`` (the material rule: a file the student
        edited is never overwritten), whether the server runs or not. False when it was not
        delivered (no home yet, the helper could not run): a later round tries again."""
        user, code, slug = item["username"], item["class_code"], item["slug"]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("feedback.md", feedback_text(item))
        dest = f"{code}/feedback/{slug}"
        try:
            report = await self.homes.apply(
                user, code, dest, push_label(self.clock()), buffer.getvalue()
            )
        except HomeMissing:
            return False
        except (HomeRefused, HelperUnavailable) as e:
            self.log.warning("Feedback for %s/%s not delivered: %s", user, slug, e)
            return False
        errors = report.get("errors") if isinstance(report, dict) else None
        if errors:  # e.g. the student made ~/<code>/feedback a link: as the push's report
            self.log.warning("Feedback for %s/%s: %s", user, slug, str(errors)[:300])
        return await self.store.feedback_delivered(item["submission_id"], item["revision"])

    async def deliver_pending_feedback(self) -> int:
        """Deliver every returned grade's feedback not delivered yet (all at once: the
        helper batches them); how many were delivered."""
        items = await self.store.undelivered_feedback()
        if not items:
            return 0
        try:
            existing = await self.homes.existing()
        except HelperUnavailable as e:
            self.log.warning("Feedback delivery postponed: %s", e.detail)
            return 0
        now = self.clock()
        ready = [
            i
            for i in items
            if self.homes.volume(i["username"], i["class_code"]) in existing
            and self._retry_at.get(_feedback_key(i), 0.0) <= now
        ]
        results = await asyncio.gather(
            *(self.deliver_feedback(i) for i in ready), return_exceptions=True
        )
        delivered = 0
        for item, result in zip(ready, results, strict=True):
            key = _feedback_key(item)
            if isinstance(result, Unavailable):
                self.log.warning("Feedback delivery postponed: %s", result)
            elif isinstance(result, BaseException):
                raise result
            if result is True:
                delivered += 1
                self._failures.pop(key, None)
                self._retry_at.pop(key, None)
            else:  # tried again later, less and less often (each try is a container)
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                self._retry_at[key] = now + min(600.0, 5.0 * 2**failures)
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
