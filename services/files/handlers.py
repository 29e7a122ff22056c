"""The files service's REST API (JSON; paths relative to ``/services/files/``).

An *area* is ``me`` (the caller's private files), ``class/<code>`` (a class's material) or
``class/<code>/assignments`` (its assignments' starting files, teachers only).

==================================================  =======================================
``GET    api/files/<area>?folder=``                 files (recursive), used bytes, quota
``POST   api/files/<area>/uploads``                 sign an upload: ``{"path", "size"}`` or
                                                    ``{"folder", "size", "unpack": true}``
                                                    for a zip to unpack; answers an S3 PUT:
                                                    its URL and the headers it must carry
                                                    (the exact size is signed)
``POST   api/files/<area>/uploads/<id>``            the upload is done: check and keep it
``GET    api/files/<area>/download?path=``          a short-lived download link
                                                    (``&redirect=1``: a 302 to it)
``DELETE api/files/<area>/file?path=``              delete a file
``DELETE api/files/<area>/folder?path=``            delete a folder and everything in it
``POST   api/files/<area>/rename``                  ``{"from", "to"}``, a file or a folder
``GET    api/classes/<code>/pushes``                the class's material pushes, newest
                                                    first (``?releases=1``: its
                                                    assignments' release pushes instead)
``POST   api/classes/<code>/pushes``                push the material now, or ``{"at":
                                                    "<ISO date and time with offset>"}``;
                                                    ``{"assignment": "<slug>", "at"}``
                                                    releases an assignment's starting
                                                    files (area ``class/<code>/assignments``,
                                                    folder ``<slug>``) into
                                                    ``~/<code>/assignments/<slug>``
``GET    api/classes/<code>/pushes/<id>``           one push with every student's report
``POST   api/classes/<code>/pushes/<id>/run``       run it again: finishes what is missing
``DELETE api/classes/<code>/pushes/<id>``           cancel a scheduled push
``POST   api/classes/<code>/copy``                  ``{"from": "<old code>"}``: the old
                                                    class's material and starting files
                                                    into this one (teachers of both)
==================================================  =======================================

Services listed in ``FilesApp.release_services`` (the grades service, with its own hub
token) may call five of these, for an assignment's starting files and release only
(:func:`.areas.check_release_service`): ``GET api/files/class/<code>/assignments`` (read
only); ``POST api/files/class/<code>/assignments/uploads`` with ``{"path": "<slug>/<file>",
"size", "for": "<teacher>", "host", "secure"}`` and ``POST .../uploads/<id>`` with
``{"for"}`` (the assignment editor's upload of a starting file, for the teacher the
service checked; ``host`` and ``secure`` are the browser's, for the presigned URL; the
upload counts against that teacher's staging allowance); ``POST api/classes/<code>/pushes``
with ``{"assignment": "<slug>", "release_id":
"release-<key>-<n>"}`` (the push's id: posting the same id again answers the push made
the first time, 200 instead of 202, so a retried release never pushes twice) and ``GET
api/classes/<code>/pushes/<id>`` of such a push. Any other service, and any other call,
gets 403.

File bytes never pass through here: uploads and downloads go between the browser and
the S3 store through presigned URLs, which are signed only after the checks below.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
from collections.abc import Collection
from typing import Any

from tornado import web

from common.errors import BadRequest, Conflict, Forbidden, NotFound
from common.units import size_text
from services.base import archive, names
from services.base.handlers import BaseHandler
from services.base.membership import Caller, Membership
from services.base.s3 import ObjectStore, basename

from . import unpack
from .areas import (
    ASSIGNMENTS,
    LIST_STARTING_FILES,
    MATERIAL,
    READ_RELEASE_PUSH,
    RELEASE_PUSH,
    UPLOAD_STARTING_FILE,
    Area,
    assignments_area,
    check_release_service,
    material_area,
    private_area,
)
from .push import Pusher, summarise
from .pushstore import PushStore
from .uploads import (
    PendingUploads,
    TooLarge,
    Upload,
    abandoned,
    check_new_upload,
    check_staging,
    staged_bytes,
)

AREA = r"(me|class/[^/]+(?:/assignments)?)"
#: the id a release service gives its push: ``release-<key>-<round>``
RELEASE_ID_RE = re.compile(r"^release-[0-9a-f]{16,64}-[1-9][0-9]{0,8}$")
#: a browser's host as a release service passes it on: a name or address, maybe a port
HOST_RE = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


class FilesHandler(BaseHandler):
    """Dependencies (from the route): ``objects``, ``membership``, ``uploads``,
    ``limits`` (sizes, quotas, link lifetimes), ``clock``, ``release_services``."""

    objects: ObjectStore
    membership: Membership
    uploads: PendingUploads
    limits: dict
    release_services: Collection[str]

    def caller(self) -> Caller:
        return Caller.from_model(self.require_user())

    def service_caller(self) -> str | None:
        """The name of the hub service calling with its own token, or None (a person or
        nobody)."""
        model = self.current_user
        if model and model.get("kind") == "service":
            return str(model.get("name") or "")
        return None

    async def existing_class(self, code: str) -> str:
        code = names.validate_code(code)
        if not await self.membership.exists(code):
            raise NotFound(f"There is no class {code!r}.")
        return code

    async def release_area(self, service: str, spec: str) -> Area:
        """What a release service may list: a class's assignments' starting files."""
        check_release_service(service, self.release_services, LIST_STARTING_FILES, assignment=None)
        return await self.release_area_any(service, spec)

    async def starting_upload_area(self, service: str, spec: str, body: dict) -> Area:
        """What a release service may upload into for a teacher: one assignment's folder of
        a class's starting files (``body["path"]`` is ``<slug>/<file>``); 403 otherwise."""
        path = body.get("path")
        slug = path.split("/", 1)[0] if isinstance(path, str) and "/" in path else None
        check_release_service(service, self.release_services, UPLOAD_STARTING_FILE, assignment=slug)
        if "folder" in body or "unpack" in body:
            raise Forbidden("A service uploads single starting files, not archives.")
        names.validate_assignment(slug or "")
        area = await self.release_area_any(service, spec)
        return dataclasses.replace(area, writable=True)

    async def release_area_any(self, service: str, spec: str) -> Area:
        if not (spec.startswith("class/") and spec.endswith("/assignments")):
            raise Forbidden("A service may only use the starting files of assignments.")
        code = await self.existing_class(spec.removeprefix("class/").removesuffix("/assignments"))
        quota = self.limits["material_quota"]
        return Area(ASSIGNMENTS, names.assignments_prefix(code), code, quota, writable=False)

    @staticmethod
    def acting_for(body: dict) -> str:
        """The teacher a release service acts for (``body["for"]``)."""
        who = body.get("for")
        if not isinstance(who, str):
            raise BadRequest("A service's upload needs 'for': the teacher it uploads for.")
        return names.validate_username(who)

    @staticmethod
    def browser_of(body: dict) -> tuple[str, bool]:
        """The browser's host and scheme a release service passes on (``host``,
        ``secure``), for the presigned URL."""
        host, secure = body.get("host"), body.get("secure")
        if (
            not isinstance(host, str)
            or not 0 < len(host) <= 255
            or not HOST_RE.fullmatch(host)
            or not isinstance(secure, bool)
        ):
            raise BadRequest("A service's upload needs the browser's 'host' and 'secure'.")
        return host, secure

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, names.BadName | archive.BadArchive):
            kwargs["exc_info"] = (BadRequest, BadRequest(str(exc)), None)
        super().write_error(status_code, **kwargs)

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, names.BadName | archive.BadArchive):
            self.log.info("%s %s: 400 %s", self.request.method, self.request.path, value)
            return
        super().log_exception(typ, value, tb)

    async def area(self, spec: str, *, write: bool) -> Area:
        caller = self.caller()
        if spec == "me":
            return private_area(caller, self.limits["user_quota"])
        code = spec.removeprefix("class/")
        if code.endswith("/assignments"):
            return await assignments_area(
                self.membership,
                caller,
                code.removesuffix("/assignments"),
                self.limits["material_quota"],
            )
        area, _ = await material_area(
            self.membership, caller, code, self.limits["material_quota"], write=write
        )
        return area

    def arg(self, name: str) -> str:
        value = self.get_query_argument(name, None)
        if value is None:
            raise BadRequest(f"Missing the query parameter {name!r}.")
        return value

    def browser_address(self) -> tuple[str, bool]:
        """The host and scheme the browser uses (presigned URLs are signed for it)."""
        host = self.request.host
        proto = self.request.headers.get("X-Forwarded-Proto", self.request.protocol)
        return host, proto.split(",")[0].strip() == "https"

    async def used(self, area: Area) -> tuple[int, dict[str, int]]:
        objects = await self.objects.list(area.prefix)
        return sum(o.size for o in objects), {o.key: o.size for o in objects}


class HomeHandler(FilesHandler):
    """``GET <prefix>``: signs a browser in (OAuth through the hub); the pages replace it
    with the "My files" page for browsers."""

    same_origin_home = True  # pages of other services read the XSRF token here

    @web.authenticated
    async def get(self):
        user = self.require_user()
        prefix = self.settings["service_prefix"]
        # the XSRF token: a page of another service calls this one with it (a class's copy)
        xsrf = self.xsrf_token.decode("ascii")
        self.write_json({"name": user["name"], "api": prefix + "api/files/me", "xsrf": xsrf})


class ListHandler(FilesHandler):
    async def get(self, spec):
        service = self.service_caller()
        if service is not None:
            area = await self.release_area(service, spec)
        else:
            area = await self.area(spec, write=False)
        prefix = area.folder_prefix(self.get_query_argument("folder", ""))
        objects = await self.objects.list(area.prefix)
        used = sum(o.size for o in objects)
        files = [
            {"path": area.path_of(o.key), "size": o.size, "modified": o.modified}
            for o in objects
            if o.key.startswith(prefix)
        ]
        self.write_json(
            {
                "area": {"kind": area.kind, "owner": area.owner, "writable": area.writable},
                "quota": area.quota,
                "used": used,
                "max_file_size": self.limits["max_file_size"],
                "files": files,
            }
        )


def _size_arg(body: dict) -> int:
    size = body.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadRequest("'size' must be the file's size in bytes (a whole number, 0 or more).")
    return size


class UploadsHandler(FilesHandler):
    async def post(self, spec):
        service = self.service_caller()
        if service is not None:
            if service not in self.release_services:  # refused before the body is read
                check_release_service(
                    service, self.release_services, UPLOAD_STARTING_FILE, assignment=None
                )
            keys = {"path", "folder", "size", "unpack", "for", "host", "secure"}
            body = self.json_body(keys, required=("size", "path", "for"))
            area = await self.starting_upload_area(service, spec, body)
            owner = self.acting_for(body)
            host, secure = self.browser_of(body)
        else:
            area = await self.area(spec, write=True)
            body = self.json_body({"path", "folder", "size", "unpack"}, required=("size",))
            owner = self.caller().name
            host, secure = self.browser_address()
        size = _size_arg(body)
        unpack_zip = body.get("unpack") is True
        upload_id = self.uploads.new_id()
        staging = names.staging_prefix(owner)
        if unpack_zip:
            if "path" in body:
                raise BadRequest(
                    "An archive to unpack takes 'folder' (where to unpack), not 'path'."
                )
            path = names.validate_folder(body.get("folder", ""))
            key, staged, replaced = f"{staging}{upload_id}.zip", True, 0
            if size > self.limits["max_zip_size"]:
                raise TooLarge(
                    f"The archive is {size_text(size)}; archives may be at most "
                    f"{size_text(self.limits['max_zip_size'])}."
                )
        else:
            if "folder" in body or "unpack" in body:
                raise BadRequest("'folder' and 'unpack' go together, for an archive to unpack.")
            if "path" not in body:
                raise BadRequest("Missing field: path (the file's name, e.g. 'notes/week1.ipynb').")
            path = names.validate_path(body["path"])
            existing = await self.objects.stat(area.key(path))
            replaced = existing.size if existing else 0
            # a replacement goes to staging first: a refused one must not cost the old file
            staged = existing is not None
            key = f"{staging}{upload_id}" if staged else area.key(path)
        if staged:
            await self.check_staging_allowance(staging, size, owner)
        used, _ = await self.used(area)
        check_new_upload(
            size=size if not unpack_zip else 0,
            max_file_size=self.limits["max_file_size"] if not unpack_zip else math.inf,
            quota=area.quota,
            used=used,
            replaced=replaced,
            reserved=self.uploads.reserved(area.prefix),
            label=area.label,
        )
        expires = self.limits["upload_expiry"]
        url, headers = self.objects.presign_put(
            host=host, secure=secure, key=key, size=size, expires=expires
        )
        self.uploads.add(
            Upload(
                id=upload_id,
                area_prefix=area.prefix,
                owner=owner,
                path=path,
                key=key,
                size=size,
                expires=self.clock() + expires,
                unpack=unpack_zip,
                staged=staged,
            )
        )
        self.write_json(
            {
                "id": upload_id,
                "method": "PUT",
                "url": url,
                "headers": headers,
                "expires_in": expires,
            }
        )

    async def check_staging_allowance(self, staging: str, size: int, owner: str) -> None:
        """What ``owner`` has waiting in staging (abandoned objects removed first), plus
        this upload, must fit their staging allowance."""
        stored = await self.objects.list(staging)
        pending = self.uploads.staged_by(owner)
        gone = abandoned(
            stored,
            {u.key for u in pending},
            self.clock(),
            self.limits["upload_expiry"] + self.uploads.grace,
        )
        if gone:
            await self.objects.remove(gone)
            stored = [o for o in stored if o.key not in set(gone)]
        check_staging(
            size=size,
            staged=staged_bytes(stored, pending),
            allowance=self.limits["staging_quota"],
        )


class UploadDoneHandler(FilesHandler):
    async def post(self, spec, upload_id):
        service = self.service_caller()
        if service is not None:
            # the upload's path (one assignment's folder) was checked when it was signed
            check_release_service(
                service, self.release_services, UPLOAD_STARTING_FILE, assignment="(signed)"
            )
            owner = self.acting_for(self.json_body({"for"}, required=("for",)))
            area = dataclasses.replace(await self.release_area_any(service, spec), writable=True)
        else:
            area = await self.area(spec, write=True)
            owner = self.caller().name
        upload = self.uploads.get(upload_id, owner)
        if upload is None or upload.area_prefix != area.prefix:
            raise NotFound("No such upload: it expired or was never signed. Upload the file again.")
        stored = await self.objects.stat(upload.key)
        if stored is None:
            raise Conflict(
                "The file has not arrived in the store: the upload failed or was not sent. "
                "Upload it again."
            )
        try:
            if upload.unpack:
                result = await self._unpack(area, upload)
            else:
                result = await self._keep(area, upload, stored.size)
        except (TooLarge, names.BadName, archive.BadArchive):
            await self.objects.remove([upload.key])
            self.uploads.finish(upload.id)
            raise
        self.uploads.finish(upload.id)
        by = owner if service is None else f"{service} for {owner}"
        self.log.info("%s stored %s in %s", by, upload.path or "/", area.prefix)
        self.write_json(result)

    async def _keep(self, area: Area, upload: Upload, size: int) -> dict:
        if size > upload.size:  # the store enforces the signed size; checked again anyway
            raise TooLarge(f"The file is larger than the {upload.size} bytes announced.")
        used, sizes = await self.used(area)
        target = area.key(upload.path)
        if upload.staged:
            used = used - sizes.get(target, 0) + size
        if used > area.quota:
            raise TooLarge(
                f"Not enough space in {area.label}: the quota is {size_text(area.quota)}. "
                "Delete files you no longer need and try again."
            )
        if upload.staged:
            await self.objects.copy(upload.key, target)
            await self.objects.remove([upload.key])
        return {"path": upload.path, "size": size}

    async def _unpack(self, area: Area, upload: Upload) -> dict:
        limits = archive.Limits(
            max_files=self.limits["max_zip_files"],
            max_total_bytes=self.limits["max_unpacked_size"],
            max_file_bytes=self.limits["max_file_size"],
        )
        spool, zf, entries = await self.objects.run_job(
            "checking an archive",
            unpack.plan_archive,
            self.objects,
            upload.key,
            limits,
            upload.path,
            self.limits["max_zip_size"],
            timeout=300,
        )
        try:
            if not entries:
                raise BadRequest("The archive holds no files.")
            used, sizes = await self.used(area)
            after = used + sum(e.size - sizes.get(area.prefix + e.path, 0) for e in entries)
            if after > area.quota:
                raise TooLarge(
                    f"Not enough space in {area.label}: the archive unpacks to "
                    f"{size_text(sum(e.size for e in entries))} and "
                    f"{size_text(max(0, area.quota - used))} are free."
                )
            done = await self.objects.run_job(
                "unpacking an archive",
                unpack.write_entries,
                self.objects,
                zf,
                entries,
                area.prefix,
                limits,
                timeout=900,
            )
        finally:
            zf.close()
            spool.close()
        await self.objects.remove([upload.key])
        return {"folder": upload.path, "files": done.files, "bytes": done.bytes}


class DownloadHandler(FilesHandler):
    async def get(self, spec):
        area = await self.area(spec, write=False)
        path = names.validate_path(self.arg("path"))
        key = area.key(path)
        if await self.objects.stat(key) is None:
            raise NotFound(f"There is no file {path!r} in {area.label}.")
        host, secure = self.browser_address()
        expires = self.limits["download_expiry"]
        url = self.objects.presign_get(
            host=host, secure=secure, key=key, filename=basename(path), expires=expires
        )
        if self.get_query_argument("redirect", "") == "1":
            self.set_header("Cache-Control", "no-store")
            self.redirect(url)
            return
        self.write_json({"url": url, "expires_in": expires})


class FileHandler(FilesHandler):
    async def delete(self, spec):
        area = await self.area(spec, write=True)
        path = names.validate_path(self.arg("path"))
        if await self.objects.stat(area.key(path)) is None:
            raise NotFound(f"There is no file {path!r} in {area.label}.")
        await self.objects.remove([area.key(path)])
        self.set_status(204)
        self.finish()


class FolderHandler(FilesHandler):
    async def delete(self, spec):
        area = await self.area(spec, write=True)
        folder = names.validate_folder(self.arg("path"))
        if not folder:
            raise BadRequest(
                "Name the folder to delete (deleting everything at once is not offered)."
            )
        objects = await self.objects.list(area.folder_prefix(folder))
        if not objects:
            raise NotFound(f"There is no folder {folder!r} in {area.label}.")
        await self.objects.remove([o.key for o in objects])
        self.write_json({"folder": folder, "deleted": len(objects)})


class RenameHandler(FilesHandler):
    async def post(self, spec):
        area = await self.area(spec, write=True)
        body = self.json_body({"from", "to"}, required=("from", "to"))
        source, target = names.validate_path(body["from"]), names.validate_path(body["to"])
        if source == target:
            raise BadRequest("The new name is the same as the old one.")
        if target.startswith(source + "/"):
            raise BadRequest("A folder cannot be moved into itself.")
        objects = await self.objects.list(area.prefix)
        keys = {o.key for o in objects}
        if area.key(source) in keys:
            moves = [(area.key(source), area.key(target))]
        else:
            inside = area.folder_prefix(source)
            moves = [
                (k, area.folder_prefix(target) + k[len(inside) :])
                for k in sorted(keys)
                if k.startswith(inside)
            ]
            if not moves:
                raise NotFound(f"There is no file or folder {source!r} in {area.label}.")
        target_folder = area.folder_prefix(target)
        if area.key(target) in keys or any(k.startswith(target_folder) for k in keys):
            raise Conflict(f"{target!r} already exists in {area.label}: choose another name.")
        for old, new in moves:
            await self.objects.copy(old, new)
        await self.objects.remove([old for old, _ in moves])
        self.write_json({"from": source, "to": target, "moved": len(moves)})


class ClassCopyHandler(FilesHandler):
    """``POST api/classes/<code>/copy`` ``{"from": "<old code>"}``: copy the material and
    the assignments' starting files of class ``<old code>`` into class ``<code>`` (a copy
    of a class for a new term; the classes page calls it after the classes service made
    the new class). The caller must teach (or administer) both classes: it can copy
    nothing it could not read and write itself. Files the new class has already are
    kept as they are (``skipped``), so calling it again finishes an interrupted copy."""

    async def post(self, code):
        caller = self.caller()
        body = self.json_body({"from"}, required=("from",))
        source = names.validate_code(body["from"])
        target = names.validate_code(code)
        if source == target:
            raise BadRequest("A class cannot be copied into itself.")
        quota = self.limits["material_quota"]
        answer: dict = {"from": source, "code": target}
        plans = []
        for kind in (MATERIAL, ASSIGNMENTS):
            if kind == MATERIAL:
                old, _ = await material_area(self.membership, caller, source, quota, write=True)
                new, _ = await material_area(self.membership, caller, target, quota, write=True)
            else:
                old = await assignments_area(self.membership, caller, source, quota)
                new = await assignments_area(self.membership, caller, target, quota)
            existing = {o.key: o.size for o in await self.objects.list(new.prefix)}
            wanted = await self.objects.list(old.prefix)
            todo = [(o, new.key(old.path_of(o.key))) for o in wanted]
            todo = [(o, key) for o, key in todo if key not in existing]
            total = sum(existing.values()) + sum(o.size for o, _ in todo)
            if total > new.quota:
                raise BadRequest(
                    f"The copy does not fit: {new.label} would hold {size_text(total)}, more "
                    f"than its {size_text(new.quota)}. Make room in the new class first."
                )
            plans.append((kind, todo, len(wanted) - len(todo)))
        for kind, todo, skipped in plans:
            for stored, key in todo:
                await self.objects.copy(stored.key, key)
            answer[kind] = {
                "copied": len(todo),
                "skipped": skipped,
                "bytes": sum(o.size for o, _ in todo),
            }
        self.log.info(
            "%s copied the files of class %s to %s (%d material, %d starting files)",
            caller.name,
            source,
            target,
            answer[MATERIAL]["copied"],
            answer[ASSIGNMENTS]["copied"],
        )
        self.write_json(answer)


# ----- pushes


class PushHandler(FilesHandler):
    pusher: Pusher
    pushes: PushStore

    async def teacher_of(self, code: str) -> str:
        area, _ = await material_area(
            self.membership, self.caller(), code, self.limits["material_quota"], write=True
        )
        return area.owner

    def view(self, push: dict, deliveries: list[dict] | None = None) -> dict:
        keys = ("code", "assignment", "dest", "created_by", "status", "label", "files", "bytes")
        view = {k: push.get(k) for k in (*keys, "error")}
        view["id"] = push["_id"]
        view["created"] = _iso(push["created"])
        view["at"] = _iso(push["at"])
        if deliveries is not None:
            view["students"] = [
                {
                    "user": d["user"],
                    "status": d.get("status"),
                    "message": d.get("message", ""),
                    "updated": _iso(d.get("updated")),
                    "summary": summarise(d.get("report") or {}),
                    "report": d.get("report") or {},
                }
                for d in deliveries
            ]
            view["counts"] = _counts(deliveries)
        return view


class PushListHandler(PushHandler):
    async def get(self, code):
        code = await self.teacher_of(code)
        releases = self.get_query_argument("releases", "") == "1"
        pushes = await self.pushes.for_class(code, releases=releases)
        counts = await self.pushes.statuses([p["_id"] for p in pushes])
        views = [{**self.view(p), "counts": counts.get(p["_id"], {})} for p in pushes]
        self.write_json({"code": code, "pushes": views})

    async def post(self, code):
        service = self.service_caller()
        if service is not None:
            await self.release(service, code)
            return
        code = await self.teacher_of(code)
        body = self.json_body({"at", "assignment"})
        at = _parse_at(body.get("at"))
        assignment = body.get("assignment")
        if assignment is not None:
            assignment = names.validate_assignment(assignment)
        push = await self.pusher.create(code, self.caller().name, at, assignment)
        # accepted: it runs in the background now, or at its time
        self.write_json(self.view(push), status=202)

    async def release(self, service: str, code: str) -> None:
        """A release service pushes one assignment's starting files now, under the id it
        chose (the same id again: the push made the first time, 200)."""
        if service not in self.release_services:  # refused before the body is even read
            check_release_service(service, self.release_services, RELEASE_PUSH, assignment=None)
        body = self.json_body({"assignment", "release_id"}, required=("assignment", "release_id"))
        assignment = body["assignment"]
        check_release_service(service, self.release_services, RELEASE_PUSH, assignment=assignment)
        slug = names.validate_assignment(assignment)
        release_id = body["release_id"]
        if not isinstance(release_id, str) or not RELEASE_ID_RE.fullmatch(release_id):
            raise BadRequest("'release_id' must look like 'release-<hex key>-<round>'.")
        code = await self.existing_class(code)
        push, created = await self.pusher.create_release(code, service, slug, release_id)
        self.write_json(self.view(push), status=202 if created else 200)


class PushItemHandler(PushHandler):
    async def load_release(self, service: str, code: str, push_id: str) -> dict:
        """A push a release service may read: one of an assignment, in this class."""
        if service not in self.release_services:
            check_release_service(
                service, self.release_services, READ_RELEASE_PUSH, assignment=None
            )
        code = names.validate_code(code)
        push = await self.pushes.get(push_id)
        if push is None or push["code"] != code or not push.get("assignment"):
            raise NotFound(f"Class {code} has no release push {push_id!r}.")
        return push

    async def load(self, code: str, push_id: str) -> dict:
        code = await self.teacher_of(code)
        push = await self.pushes.get(push_id)
        if push is None or push["code"] != code:
            raise NotFound(f"Class {code} has no push {push_id!r}.")
        return push

    async def get(self, code, push_id):
        service = self.service_caller()
        if service is not None:
            push = await self.load_release(service, code, push_id)
        else:
            push = await self.load(code, push_id)
        self.write_json(self.view(push, await self.pushes.deliveries(push["_id"])))

    async def delete(self, code, push_id):
        push = await self.load(code, push_id)
        if not await self.pushes.cancel(push["_id"]):
            raise Conflict(f"The push is {push['status']}; only a scheduled push can be cancelled.")
        self.set_status(204)
        self.finish()


class PushRunHandler(PushItemHandler):
    async def post(self, code, push_id):
        push = await self.load(code, push_id)
        if push["status"] == "scheduled":
            raise Conflict("The push has not run yet; it runs at its time (or cancel it).")
        if push["status"] == "cancelled":
            raise Conflict("The push was cancelled; create a new one.")
        await self.pusher.run(push["_id"], rerun=True)
        push = await self.pushes.get(push["_id"])
        self.write_json(self.view(push, await self.pushes.deliveries(push["_id"])))


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


def _parse_at(raw: Any) -> float | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise BadRequest("'at' must be a date and time such as '2026-12-02T09:00:00+01:00'.")
    try:
        when = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"'at' is not a date and time: {raw[:40]!r}. Use e.g. '2026-12-02T09:00:00+01:00'."
        ) from None
    if when.tzinfo is None:
        raise BadRequest(
            "'at' needs a time zone (e.g. '2026-12-02T09:00:00+01:00' or '...Z' for UTC), "
            "so the push runs when you mean."
        )
    return when.timestamp()


def _counts(deliveries: list[dict]) -> dict:
    counts: dict[str, int] = {}
    for d in deliveries:
        counts[d.get("status", "?")] = counts.get(d.get("status", "?"), 0) + 1
    return counts


def files_handlers(deps: dict) -> list[tuple[str, type, dict]]:
    files = {
        k: deps[k]
        for k in ("objects", "membership", "uploads", "limits", "clock", "release_services")
    }
    pushes = {**files, "pusher": deps["pusher"], "pushes": deps["pushes"]}
    return [
        ("", HomeHandler, files),
        (rf"api/files/{AREA}", ListHandler, files),
        (rf"api/files/{AREA}/uploads", UploadsHandler, files),
        (rf"api/files/{AREA}/uploads/([0-9a-f]+)", UploadDoneHandler, files),
        (rf"api/files/{AREA}/download", DownloadHandler, files),
        (rf"api/files/{AREA}/file", FileHandler, files),
        (rf"api/files/{AREA}/folder", FolderHandler, files),
        (rf"api/files/{AREA}/rename", RenameHandler, files),
        (r"api/classes/([^/]+)/copy", ClassCopyHandler, files),
        (r"api/classes/([^/]+)/pushes", PushListHandler, pushes),
        (r"api/classes/([^/]+)/pushes/([0-9A-Za-z-]+)", PushItemHandler, pushes),
        (r"api/classes/([^/]+)/pushes/([0-9A-Za-z-]+)/run", PushRunHandler, pushes),
    ]
