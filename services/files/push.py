"""Pushing a class's material into every student's environment.

A push packs the class's material area into one zip (stored at ``pushes/<code>/<id>.zip``,
so every student of this push gets the same files even if the teacher changes the material
afterwards) and posts it to each student's running class server, where classhub's server
extension (``classhub_singleuser.material``) applies it to ``~/<code>/material/`` without
ever overwriting a file the student changed, and answers with what it added, updated,
left alone or saved beside a changed file. Students whose server is stopped are marked
waiting; :meth:`Pusher.sync_started_servers` delivers to them when their server starts.

Re-running a push visits only the students it has not delivered to; a delivery that is
repeated anyway changes nothing (the extension compares content hashes), so nothing is
ever duplicated. Pushes of one class run one at a time, in order, so an older push can
never overwrite a newer one.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import secrets
import tempfile
import zipfile
from collections.abc import Callable

from pymongo.errors import DuplicateKeyError
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from services.base.errors import BadRequest, Conflict, Unavailable
from services.base.hubapi import HubAPI, HubAPIError
from services.base.userservers import answer_message, server_url

from . import names
from .areas import Membership
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
from .s3 import ObjectStore, StoredObject

log = logging.getLogger(__name__)

#: the largest report a student's server may send back (it is the student's container)
MAX_REPORT_BYTES = 1 << 20


def push_label(at: float) -> str:
    """The name part of conflict copies: ``2026-12-01 10.30 UTC``."""
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H.%M UTC")


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


def build_material_zip(store: ObjectStore, objects: list[StoredObject], prefix: str, spool):
    """Blocking: write the material objects into ``spool`` as a zip."""
    with zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for obj in objects:
            info = zipfile.ZipInfo(names.relative_to(prefix, obj.key), (1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=obj.size > (1 << 31)) as out:
                for chunk in store.iter_object(obj.key):
                    out.write(chunk)


def summarise(report: dict) -> dict:
    """Counts of a delivery report, for lists."""
    return {
        k: len(report.get(k) or ())
        for k in ("added", "updated", "unchanged", "conflicts", "errors")
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


def _clean_report(raw: bytes) -> dict:
    """The extension's report, reduced to its known fields of the known types (the
    student's container answers it, so nothing in it is trusted). Raises ValueError."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ValueError("the report is nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError("the report is not an object")
    report: dict = {k: _strings(data.get(k)) for k in ("added", "updated", "unchanged")}
    report["conflicts"] = _records(data.get("conflicts"), ("path", "saved_as"))
    report["errors"] = _records(data.get("errors"), ("path", "message"))
    return report


class Pusher:
    def __init__(
        self,
        *,
        objects: ObjectStore,
        pushes: PushStore,
        hub: HubAPI,
        membership: Membership,
        servers_url: str,
        base_url: str,
        token: str,
        clock: Callable[[], float],
        concurrency: int = 8,
        max_material_bytes: int = 512 << 20,
        delivery_timeout: float = 120.0,
        log: logging.Logger | None = None,
    ):
        self.objects = objects
        self.pushes = pushes
        self.hub = hub
        self.membership = membership
        self.servers_url = servers_url
        self.base_url = base_url
        self._token = token
        self.clock = clock
        self.concurrency = concurrency
        self.max_material_bytes = max_material_bytes
        self.delivery_timeout = delivery_timeout
        self.log = log or logging.getLogger(__name__)
        self._http = AsyncHTTPClient(force_instance=True, max_clients=concurrency)
        self._class_locks: dict[str, asyncio.Lock] = {}
        self._zips: dict[str, bytes] = {}  # push id -> zip, while a push runs
        self._seen: dict[tuple[str, str], str] = {}  # (user, code) -> server "started"
        self._tasks: set[asyncio.Task] = set()

    def close(self) -> None:
        self._http.close()

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
            "label": push_label(when),
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
        servers = await self._running_class_servers(push["code"])
        gate = asyncio.Semaphore(self.concurrency)

        async def one(user: str) -> None:
            if user in delivered:
                return
            if user not in servers:
                await self.pushes.record(
                    push, user, {"status": WAITING, "message": "", "updated": self.clock()}
                )
                return
            async with gate:
                await self._deliver(push, user)

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

        def pack() -> bytes:
            with tempfile.TemporaryFile(prefix="classhub-push-") as spool:
                build_material_zip(self.objects, objects, prefix, spool)
                spool.seek(0)
                data = spool.read()
            self.objects.put_stream(zip_key, _BytesReader(data), len(data))
            return data

        data = await self.objects.run_job("packing the material", pack, timeout=600)
        self._zips[push["_id"]] = data
        fields = {
            "zip_key": zip_key,
            "files": [{"path": names.relative_to(prefix, o.key), "size": o.size} for o in objects],
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

    async def _running_class_servers(self, code: str) -> set[str]:
        """Users whose server ``code`` is running (read fresh from the hub)."""
        users = await self.hub.active_users(fresh=True)
        running = set()
        for user in users:
            server = (user.get("servers") or {}).get(code)
            if server and server.get("ready"):
                running.add(user["name"])
        return running

    # ----- one student

    def _url(self, user: str, push: dict) -> str:
        dest = push.get("dest") or material_dest(push["code"])
        return server_url(
            self.servers_url,
            self.base_url,
            user,
            push["code"],
            "classhub/material",
            {"dest": dest, "label": push["label"]},
        )

    async def _deliver(self, push: dict, user: str) -> str:
        """Post the push to the user's running server and record the outcome."""
        data = await self._zip(push)
        request = HTTPRequest(
            self._url(user, push),
            method="POST",
            body=data,
            headers={"Authorization": f"token {self._token}", "Content-Type": "application/zip"},
            connect_timeout=5,
            request_timeout=self.delivery_timeout,
            follow_redirects=False,
        )
        now = self.clock()
        try:
            response = await self._http.fetch(request)
            if len(response.body) > MAX_REPORT_BYTES:
                raise ValueError("the report is too large")
            report = _clean_report(response.body)
            fields = {"status": DELIVERED, "report": report, "message": "", "updated": now}
        except HTTPClientError as e:
            fields = self._failure(e.code, e.response.body if e.response else b"", now)
        except (OSError, TimeoutError) as e:
            fields = {
                "status": WAITING,
                "message": f"no answer from the server ({type(e).__name__}); retried at its start",
                "updated": now,
            }
        except ValueError as e:
            fields = {
                "status": FAILED,
                "message": f"the server's answer was not understood: {e}",
                "updated": now,
            }
        await self.pushes.record(push, user, fields)
        if fields["status"] != DELIVERED:
            self.log.warning(
                "Push %s to %s: %s %s", push["_id"], user, fields["status"], fields["message"]
            )
        return fields["status"]

    @staticmethod
    def _failure(code: int, body: bytes, now: float) -> dict:
        message = answer_message(body)
        if code in (404, 502, 503, 599):
            # the server stopped or is not routed (yet): it gets the push when it starts
            return {"status": WAITING, "message": "the server is not running", "updated": now}
        if code in (401, 403):
            message = "the files service may not write to this server (check its hub scopes)"
        return {
            "status": FAILED,
            "message": message or f"the server answered {code}",
            "updated": now,
        }

    # ----- servers that start later, scheduled pushes

    async def sync_started_servers(self) -> int:
        """Deliver missed pushes to class servers that started since the last look;
        returns how many deliveries were made."""
        users = await self.hub.active_users()
        count = 0
        for user in users:
            for code, server in (user.get("servers") or {}).items():
                if not code or not server.get("ready"):
                    continue
                started = str(server.get("started") or "")
                if self._seen.get((user["name"], code)) == started:
                    continue
                try:
                    count += await self._catch_up(user["name"], code)
                except (Unavailable, HubAPIError) as e:
                    self.log.warning(
                        "Material for %s/%s not checked yet: %s", user["name"], code, e
                    )
                    continue
                self._seen[(user["name"], code)] = started
        return count

    async def _catch_up(self, user: str, code: str) -> int:
        try:
            names.validate_code(code)
        except names.BadName:
            return 0  # not a class server
        if user not in await self.membership.students(code):
            return 0
        async with self._lock(code):
            pushes = [p for p in await self.pushes.delivered_pushes_of(code) if p.get("zip_key")]
            if not pushes:
                return 0
            mine = await self.pushes.deliveries_of(code, user)
            count = 0
            for push in pushes:
                if mine.get(push["_id"], {}).get("status") == DELIVERED:
                    continue
                status = await self._deliver(push, user)
                self._zips.pop(push["_id"], None)
                if status != DELIVERED:
                    break  # keep the order: the next one waits for this one
                count += 1
            return count

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


__all__ = ["CANCELLED", "Pusher", "push_label", "summarise"]
