"""Pushing a class's material into every student's environment.

A push packs the class's material area into one zip (stored at ``pushes/<code>/<id>.zip``,
so every student of this push gets the same files even if the teacher changes the material
afterwards) and writes it into each student's home, whether their class server runs or
not: a throwaway helper container (:mod:`services.base.homes`, a batch of students each)
mounts the homes and applies the zip to ``~/<code>/material/``
(:mod:`classhub_singleuser.material`) without ever overwriting a file the student changed,
and reports what it added, updated, left alone, skipped or saved beside a changed file.

Each push records the SHA-256 of every file it packs; the store keeps, per student and
destination folder, the hash of each file last delivered (``material_delivered``). The
delivery gets that record, so a file the teacher did not change since it was last delivered
to this student is skipped, whatever the student did to their copy (ran a notebook, edited
or deleted it): no "teacher's version" copy of a notebook the student merely ran. After a
delivery the record takes the hashes of the files delivered, found unchanged, skipped or
saved beside the student's copy. Nothing is ever sent to a student's server (no
credential of a service enters a container). Students who have no home yet (they never
started the class) are marked waiting; :meth:`Pusher.sync_new_homes` delivers to them
when their home first appears.

Re-running a push visits only the students it has not delivered to; a delivery that is
repeated anyway changes nothing (the extension compares content hashes), so nothing is
ever duplicated. Pushes of one class run one at a time, in order, so an older push can
never overwrite a newer one.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import logging
import secrets
import tempfile
import zipfile
from collections.abc import Callable

from pymongo.errors import DuplicateKeyError

from common.errors import BadRequest, Conflict, Unavailable
from services.base import names
from services.base.homes import HelperUnavailable, HomeMissing, HomeRefused, Homes
from services.base.hubapi import HubAPIError
from services.base.membership import Membership
from services.base.s3 import ObjectStore, StoredObject

from .pushstore import (
    CANCELLED,
    DELIVERED,
    DONE,
    FAILED,
    RUNNING,
    SCHEDULED,
    WAITING,
    PushStore,
)

log = logging.getLogger(__name__)

#: what a delivery waiting for the student's home says
NO_HOME = "no home folder yet (never started the class): gets the files at the first start"


def material_dest(code: str) -> str:
    return f"{code}/material"


def source_and_dest(code: str, assignment: str | None) -> tuple[str, str]:
    """What a push packs and where it lands: the class's material into
    ``~/<code>/material``, or an assignment's starting files (the teachers-only area
    ``classes/<code>/assignments/<slug>/``) into ``~/<code>/assignments/<slug>`` — the
    folder the student works in and submits."""
    if assignment is None:
        return names.material_prefix(code), material_dest(code)
    slug = names.validate_assignment(assignment)
    return f"{names.assignments_prefix(code)}{slug}/", f"{code}/assignments/{slug}"


def build_material_zip(
    store: ObjectStore, objects: list[StoredObject], prefix: str, spool
) -> dict[str, str]:
    """Blocking: write the material objects into ``spool`` as a zip; the SHA-256 of each
    file, by its path in the zip."""
    hashes: dict[str, str] = {}
    with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for obj in objects:
            path = names.relative_to(prefix, obj.key)
            info = zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            digest = hashlib.sha256()
            with zf.open(info, "w", force_zip64=obj.size > (1 << 31)) as out:
                for chunk in store.iter_object(obj.key):
                    digest.update(chunk)
                    out.write(chunk)
            hashes[path] = digest.hexdigest()
    return hashes


def delivered_after(
    before: dict[str, str] | None, teacher: dict[str, str], report: dict
) -> dict[str, str]:
    """The record of what was last delivered, after a delivery whose (clean) ``report``
    says what happened to each file of the push (``teacher``: the push's hashes): the
    files added, updated, found unchanged, skipped or saved beside the student's copy now
    have the push's version; files with an error keep what they had."""
    after = dict(before or {})
    done = [*report.get("added", ()), *report.get("updated", ()), *report.get("unchanged", ())]
    done += report.get("skipped", ())
    done += [c.get("path", "") for c in report.get("conflicts", ())]
    for path in done:
        if path in teacher:
            after[path] = teacher[path]
    return after


def summarise(report: dict) -> dict:
    """Counts of a delivery report, for lists."""
    return {
        k: len(report.get(k) or ())
        for k in ("added", "updated", "unchanged", "skipped", "conflicts", "errors")
    }


def _strings(value) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v[:1024] for v in value[:10000] if isinstance(v, str)]


def _records(value, keys: tuple[str, str]) -> list[dict]:
    if not isinstance(value, list):
        return []
    return [
        {k: str(item.get(k, ""))[:1024] for k in keys}
        for item in value[:10000]
        if isinstance(item, dict)
    ]


def _clean_report(raw: bytes | dict) -> dict:
    """The helper's report, reduced to its known fields of the known types (the helper
    works on the student's files, so nothing in it is trusted). Raises ValueError."""
    if isinstance(raw, dict):
        data = raw
    elif not isinstance(raw, (bytes, str)):
        raise ValueError("the report is not an object")
    else:
        try:
            data = json.loads(raw)
        except RecursionError:
            raise ValueError("the report is nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError("the report is not an object")
    report: dict = {k: _strings(data.get(k)) for k in ("added", "updated", "unchanged", "skipped")}
    report["conflicts"] = _records(data.get("conflicts"), ("path", "saved_as"))
    report["errors"] = _records(data.get("errors"), ("path", "message"))
    return report


class Pusher:
    def __init__(
        self,
        *,
        objects: ObjectStore,
        pushes: PushStore,
        membership: Membership,
        homes: Homes,
        clock: Callable[[], float],
        max_material_bytes: int = 512 << 20,
        retry_after: float = 60.0,
        log: logging.Logger | None = None,
    ):
        self.objects = objects
        self.pushes = pushes
        self.membership = membership
        self.homes = homes
        self.clock = clock
        self.max_material_bytes = max_material_bytes
        self.retry_after = retry_after
        self.log = log or logging.getLogger(__name__)
        self._class_locks: dict[str, asyncio.Lock] = {}
        self._zips: dict[str, bytes] = {}  # push id -> zip, while a push runs
        self._seen_homes: set[str] | None = None  # home volumes already caught up
        self._retry_at: dict[tuple[str, str], float] = {}  # (user, code) -> next try
        self._tasks: set[asyncio.Task] = set()

    def _lock(self, code: str) -> asyncio.Lock:
        return self._class_locks.setdefault(code, asyncio.Lock())

    def spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # ----- creating and running pushes

    async def create_release(
        self, code: str, created_by: str, assignment: str, push_id: str
    ) -> tuple[dict, bool]:
        """The release push ``push_id`` of an assignment's starting files, made now; when
        a push with that id exists already (a retried release), that push: ``(push,
        created)``. Conflict when the id belongs to another class or assignment."""
        existing = await self.pushes.get(push_id)
        if existing is None:
            try:
                return await self.create(code, created_by, None, assignment, push_id=push_id), True
            except DuplicateKeyError:  # the same release, created meanwhile
                existing = await self.pushes.get(push_id)
        if existing is None or existing["code"] != code or existing.get("assignment") != assignment:
            raise Conflict(f"The push id {push_id!r} belongs to another push.")
        return existing, False

    async def create(
        self,
        code: str,
        created_by: str,
        at: float | None,
        assignment: str | None = None,
        *,
        push_id: str | None = None,
    ) -> dict:
        """A new push of class ``code``'s material (or, with ``assignment``, of that
        assignment's starting files: its release), now (``at`` None or past) or at ``at``.
        ``push_id``: the id to use (a release service's), else a new one."""
        now = self.clock()
        if at is not None and at > now + 365 * 86400:
            raise BadRequest("A push can be scheduled at most a year ahead.")
        when = now if at is None or at <= now else at
        source, dest = source_and_dest(code, assignment)
        objects = await self.objects.list(source)
        if not objects and when == now:
            what = "material" if assignment is None else f"starting files for {assignment}"
            raise BadRequest(f"The class has no {what} yet: upload files first, then push.")
        push = {
            "_id": push_id or new_push_id(now),
            "code": code,
            "assignment": assignment,
            "source": source,
            "dest": dest,
            "created_by": created_by,
            "created": now,
            "at": when,
            "status": SCHEDULED,
            "label": names.push_label(when),
            "zip_key": None,
            "files": [],
            "bytes": 0,
            "error": None,
        }
        await self.pushes.add(push)
        self.log.info(
            "%s created push %s of %s for %s", created_by, push["_id"], code, push["label"]
        )
        if when == now:
            self.spawn(self.run(push["_id"]))
        return push

    async def run(self, push_id: str, *, rerun: bool = False) -> None:
        """Run a push (claimed here, so only one runner wins); every failure is recorded
        in the push or its deliveries, never raised."""
        statuses = [SCHEDULED, RUNNING] + ([DONE, FAILED] if rerun else [])
        try:
            push = await self.pushes.claim(push_id, statuses)
        except Unavailable as e:
            self.log.warning("Push %s not started: %s", push_id, e)
            return
        if push is None:
            return
        async with self._lock(push["code"]):
            try:
                await self._run_claimed(push)
            except Unavailable as e:
                # left "running": resumed at the next start or by running it again
                self.log.warning("Push %s interrupted: %s", push_id, e)
            except Exception:
                self.log.exception("Push %s failed", push_id)
                await self._mark(push_id, {"status": FAILED, "error": "internal error (see log)"})
            finally:
                self._zips.pop(push_id, None)

    async def _mark(self, push_id: str, fields: dict) -> None:
        try:
            await self.pushes.update(push_id, fields)
        except Unavailable as e:
            self.log.warning("Push %s: could not record %s: %s", push_id, fields, e)

    async def _run_claimed(self, push: dict) -> None:
        if not push.get("zip_key"):
            try:
                await self._pack(push)
            except BadRequest as e:
                await self._mark(push["_id"], {"status": FAILED, "error": str(e)})
                return
        students = await self.membership.students(push["code"])
        done = await self.pushes.deliveries(push["_id"])
        delivered = {d["user"] for d in done if d.get("status") == DELIVERED}
        existing = await self.homes.existing()

        async def one(user: str) -> None:
            if user in delivered:
                return
            if self.homes.volume(user, push["code"]) not in existing:
                await self.pushes.record(
                    push, user, {"status": WAITING, "message": NO_HOME, "updated": self.clock()}
                )
                return
            await self._deliver(push, user)

        # all at once: the helper batches them (a few containers for a class)
        await asyncio.gather(*(one(u) for u in students))
        await self.pushes.update(push["_id"], {"status": DONE, "students": len(students)})
        self.log.info(
            "Push %s of %s: done for %d student(s)", push["_id"], push["code"], len(students)
        )

    async def _pack(self, push: dict) -> None:
        code = push["code"]
        prefix = push.get("source") or names.material_prefix(code)
        objects = await self.objects.list(prefix)
        if not objects:
            raise BadRequest("The class had no material when the push ran.")
        total = sum(o.size for o in objects)
        if total > self.max_material_bytes:
            raise BadRequest(
                f"The material is too large to push ({total} bytes; at most "
                f"{self.max_material_bytes})."
            )
        zip_key = f"pushes/{code}/{push['_id']}.zip"

        def pack() -> tuple[bytes, dict[str, str]]:
            with tempfile.TemporaryFile(prefix="classhub-push-") as spool:
                hashes = build_material_zip(self.objects, objects, prefix, spool)
                spool.seek(0)
                data = spool.read()
            self.objects.put_stream(zip_key, _BytesReader(data), len(data))
            return data, hashes

        data, hashes = await self.objects.run_job("packing the material", pack, timeout=600)
        self._zips[push["_id"]] = data
        files = []
        for o in objects:
            path = names.relative_to(prefix, o.key)
            files.append({"path": path, "size": o.size, "sha256": hashes.get(path)})
        fields = {
            "zip_key": zip_key,
            "files": files,
            "bytes": total,
        }
        await self.pushes.update(push["_id"], fields)
        push.update(fields)

    async def _zip(self, push: dict) -> bytes:
        data = self._zips.get(push["_id"])
        if data is None:

            def fetch() -> bytes:
                return b"".join(self.objects.iter_object(push["zip_key"]))

            data = await self.objects.run_job("reading a pushed zip", fetch, timeout=300)
            self._zips[push["_id"]] = data
        return data

    # ----- one student

    async def _deliver(self, push: dict, user: str) -> str:
        """Write the push into the user's home (running or not) and record the outcome."""
        data = await self._zip(push)
        code = push["code"]
        dest = push.get("dest") or material_dest(code)
        # pushes packed before the hashes were recorded decide by the home's record only
        teacher = {f["path"]: f["sha256"] for f in push.get("files") or () if f.get("sha256")}
        before = await self.pushes.delivered_files(code, user, dest) if teacher else None
        now = self.clock()
        try:
            report = await self.homes.apply(
                user,
                code,
                dest,
                push["label"],
                data,
                delivered=(before or {}) if teacher else None,
            )
            fields = {
                "status": DELIVERED,
                "report": _clean_report(report),
                "message": "",
                "updated": now,
            }
        except HomeMissing:
            fields = {"status": WAITING, "message": NO_HOME, "updated": now}
        except HelperUnavailable as e:
            fields = {
                "status": WAITING,
                "message": f"the helper container could not run ({e.detail[:200]});"
                " retried by itself",
                "updated": now,
            }
        except (HomeRefused, ValueError) as e:
            fields = {
                "status": FAILED,
                "message": f"the delivery was refused: {e}",
                "updated": now,
            }
        if fields["status"] == DELIVERED and teacher:
            after = delivered_after(before, teacher, fields["report"])
            if after != before:
                await self.pushes.save_delivered(code, user, dest, after, now)
        await self.pushes.record(push, user, fields)
        if fields["status"] != DELIVERED:
            self.log.warning(
                "Push %s to %s: %s %s", push["_id"], user, fields["status"], fields["message"]
            )
        return fields["status"]

    # ----- homes that appear later, deliveries to retry, scheduled pushes

    async def sync_new_homes(self) -> int:
        """Deliver missed pushes to students whose home appeared since the last look (they
        started the class for the first time, or this service just started), and retry
        waiting deliveries whose home exists (a helper that could not run); returns how
        many deliveries were made."""
        existing = await self.homes.existing()
        seen = self._seen_homes
        new = existing - seen if seen is not None else set(existing)
        now = self.clock()
        retry = {
            (user, code)
            for code, user in await self.pushes.waiting()
            if self.homes.volume(user, code) in existing
            and self._retry_at.get((user, code), 0.0) <= now
        }
        count, unsure = 0, False
        if new or retry:
            for code in await self.pushes.codes_with_pushes():
                try:
                    names.validate_code(code)
                    students = await self.membership.students(code)
                except names.BadName:
                    continue
                except (Unavailable, HubAPIError) as e:
                    self.log.warning("Material for %s not checked yet: %s", code, e)
                    unsure = True  # its new homes are looked at again next time
                    continue
                users = [
                    u for u in students if self.homes.volume(u, code) in new or (u, code) in retry
                ]
                if not users:
                    continue
                outcomes = await self._catch_up(code, users)
                for user, (delivered, complete) in outcomes.items():
                    count += delivered
                    if complete:
                        self._retry_at.pop((user, code), None)
                    else:
                        self._retry_at[(user, code)] = now + self.retry_after
        self._seen_homes = (seen or set()) | (set() if unsure else new)
        return count

    async def _catch_up(self, code: str, users: list[str]) -> dict[str, tuple[int, bool]]:
        """Deliver to each of ``users``, in order, the pushes of ``code`` they have not
        had (the students at once, each student's pushes one after the other):
        ``{user: (deliveries made, all delivered)}``."""
        async with self._lock(code):
            pushes = [p for p in await self.pushes.delivered_pushes_of(code) if p.get("zip_key")]
            if not pushes:
                return {u: (0, True) for u in users}

            async def one(user: str) -> tuple[int, bool]:
                mine = await self.pushes.deliveries_of(code, user)
                count = 0
                for push in pushes:
                    if mine.get(push["_id"], {}).get("status") == DELIVERED:
                        continue
                    if await self._deliver(push, user) != DELIVERED:
                        return count, False  # keep the order: the next one waits for this
                    count += 1
                return count, True

            try:
                outcomes = await asyncio.gather(*(one(u) for u in users))
            finally:
                for push in pushes:
                    self._zips.pop(push["_id"], None)
            return dict(zip(users, outcomes, strict=True))

    async def run_due(self) -> None:
        """Start scheduled pushes whose time has come, and resume interrupted ones."""
        now = self.clock()
        for push in await self.pushes.with_status(SCHEDULED):
            if push["at"] <= now:
                self.spawn(self.run(push["_id"]))


class _BytesReader:
    def __init__(self, data: bytes):
        self._data = memoryview(data)
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._pos + n
        chunk = bytes(self._data[self._pos : end])
        self._pos += len(chunk)
        return chunk


def new_push_id(now: float) -> str:
    """Sortable and unguessable: ``20261201T103000-1a2b3c4d``."""
    stamp = datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{secrets.token_hex(4)}"


__all__ = ["CANCELLED", "Pusher", "summarise"]
