"""Taking a snapshot of a student's assignment folder and storing it (submission).

The snapshot is taken from the student's home volume, never through their server
(no credential of the service ever enters a student's container): a throwaway
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
from dataclasses import dataclass, field
from datetime import UTC, datetime

from common.errors import ServiceError, Unavailable
from services.base import names
from services.base.homes import HelperUnavailable, HomeMissing, HomeRefused, Homes
from services.base.s3 import ObjectStore

from . import rules
from .snapcheck import BadSnapshot, snapshot_files
from .store import DeadlineClaim, GradesStore, Submission

log = logging.getLogger(__name__)

#: a second Submit with the same content this soon is the same submission (a double click)
DUPLICATE_WINDOW = 120.0


class SnapshotFailed(ServiceError):
    status_code = 409


def feedback_text(item: dict) -> str:
    """The feedback file a student finds in their home (Markdown). ``late``,
    ``penalty_percent`` and ``counting_version`` come from the student's standing
    (:func:`with_standing`), as on their Grades page."""
    points, maximum = item["points"], item["max_points"]
    counting = item.get("counting_version", item["version"])
    head = f"Version {item['version']}."
    if counting is not None and counting != item["version"]:
        head += f" The version that counts for your grade is version {counting}."
    lines = [f"# {item['title']}: feedback", "", head]
    lines.append(f"Points: {points} of {maximum}.")
    if item["late"] and item["penalty_percent"]:
        final = rules.apply_penalty(points, item["penalty_percent"])
        lines.append(f"Late: {item['penalty_percent']}% penalty, so {final} of {maximum}.")
    if item["feedback"]:
        lines += ["", item["feedback"]]
    return "\n".join(lines) + "\n"


async def with_standing(store: GradesStore, items: list[dict], now: datetime) -> list[dict]:
    """``items`` (returned grades, :meth:`.store.GradesStore.undelivered_feedback`) with
    what the student's standing says of their version now: ``late``, ``penalty_percent``
    (0 when on time), ``counting_version``."""
    out = []
    for item in items:
        data = await store.standing_data(
            item["class_code"],
            assignment_id=item["assignment_id"],
            username=item["username"],
            full=False,
        )
        standing = data.standing(item["assignment_id"], item["username"], now)
        mine = standing.version(item["submission_id"])
        out.append(
            {
                **item,
                "late": bool(mine and mine.late),
                "penalty_percent": mine.penalty_percent if mine else 0,
                "counting_version": standing.counting.version if standing.counting else None,
                "counting_returned": standing.returned,
            }
        )
    return out


def one_file_each(items: list[dict]) -> tuple[list[dict], list[dict]]:
    """``(to write, superseded)``: a student has one feedback file per assignment, so of
    their returned grades it shows the one of the version that counts when that grade is
    returned (``counting_returned``), else the newest version's; the others are not
    written (they are on the grades page)."""
    chosen: dict[tuple, dict] = {}
    superseded: list[dict] = []
    for item in items:
        key = (item["username"], item["assignment_id"])
        if item.get("counting_returned") and item["version"] != item.get("counting_version"):
            superseded.append(item)
            continue
        best = chosen.get(key)
        if best is None:
            chosen[key] = item
            continue

        def rank(i: dict) -> tuple:
            return (i["version"] == i.get("counting_version"), i["version"])

        if rank(item) > rank(best):
            superseded.append(best)
            chosen[key] = item
        else:
            superseded.append(item)
    return list(chosen.values()), superseded


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
    #: what the snapshot left out (``{"path", "reason"}``, at most 100) and how many
    skipped: list[dict] = field(default_factory=list)
    skipped_total: int = 0


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

    async def take(self, user: str, code: str, slug: str) -> Snapshot:
        """The zip of the assignment folder, from the student's home (running or not);
        the homes helper's errors as they are (HomeMissing, HomeRefused,
        HelperUnavailable)."""
        taken = await self.homes.snapshot(user, code, assignment_folder(code, slug))
        return Snapshot(
            taken.data,
            taken.sha256,
            taken.files,
            len(taken.data),
            list(taken.skipped),
            taken.skipped_total,
        )

    async def fetch(self, user: str, code: str, slug: str) -> Snapshot:
        """The zip of the assignment folder, from the student's home (running or not);
        errors as a student or teacher reads them."""
        folder = assignment_folder(code, slug)
        try:
            return await self.take(user, code, slug)
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

    # ----- submitting

    def _lock(self, assignment_id: int, user: str) -> asyncio.Lock:
        return self._locks.setdefault((assignment_id, user), asyncio.Lock())

    @staticmethod
    def _key(code: str, slug: str, user: str) -> str:
        return (
            f"submissions/{names.validate_code(code)}/{names.validate_assignment(slug)}/"
            f"{names.validate_username(user)}/{secrets.token_hex(8)}.zip"
        )

    async def submit(
        self,
        assignment_id: int,
        code: str,
        slug: str,
        user: str,
        *,
        collected_by: str | None,
        deadline_passed: bool = False,
    ) -> tuple[Submission, bool, Snapshot]:
        """Snapshot, store and record one submission; ``(submission, duplicate, the
        snapshot taken)``.

        One at a time per student and assignment: a double click waits for the first and
        then finds the same content, just submitted, and returns that version. A
        teacher's collect after the student's deadline (``deadline_passed``) records a
        version only when the folder changed since the latest one (its content hash)."""
        async with self._lock(assignment_id, user):
            snapshot = await self.fetch(user, code, slug)
            files = snapshot_files(snapshot.data)  # refuses a hostile zip directory
            previous = await self.store.latest_submission(assignment_id, user)
            if (
                previous is not None
                and previous.content_sha256 == snapshot.sha256
                and (
                    (collected_by is not None and deadline_passed)
                    or self.clock() - previous.submitted_at.timestamp() < DUPLICATE_WINDOW
                )
            ):
                return previous, True, snapshot
            key = self._key(code, slug, user)
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
            return submission, False, snapshot

    async def collect_one(
        self,
        assignment_id: int,
        code: str,
        slug: str,
        user: str,
        *,
        teacher: str,
        deadline_passed: bool = False,
    ) -> dict:
        """A teacher's collection of one student, from their home (no server is started).
        After the student's deadline a version is recorded only when their folder changed."""
        try:
            submission, duplicate, _ = await self.submit(
                assignment_id,
                code,
                slug,
                user,
                collected_by=teacher,
                deadline_passed=deadline_passed,
            )
            return {
                "user": user,
                "status": "collected",
                "version": submission.version,
                "id": submission.id,
                "duplicate": duplicate,
            }
        except ServiceError as e:
            return {"user": user, "status": "failed", "message": str(e)}

    async def collect_all(
        self,
        assignment_id: int,
        code: str,
        slug: str,
        users: list[str],
        *,
        teacher: str,
        passed: set[str] = frozenset(),
    ) -> list[dict]:
        """Every student's collection, at once (the helper batches the snapshots);
        ``passed``: the students whose deadline has passed."""
        return list(
            await asyncio.gather(
                *(
                    self.collect_one(
                        assignment_id, code, slug, u, teacher=teacher, deadline_passed=u in passed
                    )
                    for u in users
                )
            )
        )

    # ----- the deadline snapshot (services/grades/deadlines.py claims them)

    async def deadline_snapshot(self, claimed: DeadlineClaim, *, retry_after: float) -> str:
        """Take and record one student's deadline snapshot: ``"taken"`` (a new version),
        ``"unchanged"`` (the latest on-time version holds the same folder), ``"missing"``
        (no home, no assignment folder, a folder refused: recorded with the reason),
        ``"failed"`` (the helper or the store could not: tried again ``retry_after``
        seconds later) or ``"lost"`` (another caller took it over)."""
        user, code, slug = claimed.username, claimed.class_code, claimed.slug
        folder = assignment_folder(code, slug)
        async with self._lock(claimed.assignment_id, user):
            try:
                snapshot = await self.take(user, code, slug)
                files = snapshot_files(snapshot.data)
            except HomeMissing:
                reason = (
                    f"no home folder for {code}: the class server was never started, so"
                    " there was nothing to take"
                )
                return "missing" if await self.store.deadline_missing(claimed, reason) else "lost"
            except (HomeRefused, BadSnapshot) as e:
                status = getattr(e, "status", 409)
                reason = (
                    f"no folder {folder} in their home at the deadline"
                    if status == 404
                    else f"the folder {folder} could not be taken: {e}"
                )
                return "missing" if await self.store.deadline_missing(claimed, reason) else "lost"
            except Unavailable as e:
                self.log.warning("Deadline snapshot of %s/%s postponed: %s", user, folder, e)
                await self.store.deadline_failed(claimed, str(e), retry_after)
                return "failed"
            done = await self.store.record_deadline_snapshot(
                claimed, content_sha256=snapshot.sha256, size_bytes=snapshot.size, files=files
            )
            if done is None:
                return "lost"
            if done[0] == "unchanged":
                return "unchanged"
            key = self._key(code, slug, user)
            try:
                await self.objects.put_bytes(key, snapshot.data, "application/zip")
            except Unavailable as e:
                self.log.warning("Deadline snapshot of %s/%s not stored: %s", user, folder, e)
                await self.store.deadline_failed(claimed, str(e), retry_after)
                return "failed"
            try:
                done = await self.store.record_deadline_snapshot(
                    claimed,
                    content_sha256=snapshot.sha256,
                    size_bytes=snapshot.size,
                    files=files,
                    storage_key=key,
                )
            except BaseException:
                await self._forget(key)
                raise
            if done is None or done[0] != "taken":
                await self._forget(key)
                return "lost" if done is None else done[0]
            return "taken"

    async def _forget(self, key: str) -> None:
        """Remove a stored snapshot that was not recorded (else the orphan clean-up does)."""
        try:
            await self.objects.remove([key])
        except Unavailable:
            self.log.warning("Snapshot %s left for the orphan clean-up", key)

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
                user, code, dest, names.push_label(self.clock()), buffer.getvalue()
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
        ready = await with_standing(self.store, ready, datetime.fromtimestamp(now, UTC))
        ready, superseded = one_file_each(ready)
        for item in superseded:  # the file shows another version's feedback
            await self.store.feedback_delivered(item["submission_id"], item["revision"])
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
