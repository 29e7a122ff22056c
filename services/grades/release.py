"""Releasing an assignment's starting files: the grades service asks the files service.

The starting files are in the files service's teachers-only area ``class/<code>/assignments``
(folder ``<slug>``). When an assignment's release is due (its ``release_at`` came, or a
teacher pressed "Release now" / "Release again now"), :class:`Releaser` claims it in
PostgreSQL (:meth:`~services.grades.store.GradesStore.claim_release`), reads the list of
starting files from the files service and asks it for a push of them into every student's
``~/<code>/assignments/<slug>`` (conflict-safe, running servers now and stopped ones at
their next start), under a push id derived from the assignment and the round, then records
the push. The files service answers the push it made already when the same id comes again,
so a call retried after a crash or a lost answer never pushes twice.

:class:`FilesClient` calls the files service's API (``FilesApp.release_services`` lets the
grades service do exactly this and nothing else) with the grades service's own hub token;
every call has a connect and a request timeout. The files service down or slow is a
:class:`FilesUnavailable` (503): the round is recorded as failed with that message and
retried ``retry_after`` seconds later.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from common.errors import BadGateway, ServiceError, Unavailable, answer_message
from services.base import names

from .store import GradesStore, ReleaseClaim

log = logging.getLogger(__name__)

#: the largest answer read from the files service (a push report lists every student)
MAX_ANSWER_BYTES = 8 << 20


class FilesUnavailable(Unavailable):
    def __init__(self, detail: str = ""):
        super().__init__(
            "The files service is unreachable right now, so the starting files cannot be "
            "read or released; the release is retried by itself.",
            detail,
        )


class FilesRefused(BadGateway):
    """The files service refused a call (its message says why: no such class, the grades
    service is not allowed, ...): 502."""


class FilesNotFound(FilesRefused):
    """The files service has no such class or push."""


class FilesSaidNo(ServiceError):
    """The files service refused an upload for a reason the teacher can fix (too large,
    a bad name, the quota, an expired upload): its status and message, passed on."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status_code = status


#: the answers of the files service that are about the teacher's upload, passed on as they are
_UPLOAD_STATUSES = frozenset({400, 404, 409, 413})


class FilesClient:
    """The files service's API as the grades service uses it (its own token)."""

    def __init__(self, files_url: str, token: str, *, timeout: float = 10.0):
        self.files_url = files_url.rstrip("/") + "/"
        self._token = token
        self.timeout = timeout
        self._http = AsyncHTTPClient(force_instance=True, max_clients=8)

    def close(self) -> None:
        self._http.close()

    async def _call(
        self, method: str, path: str, body: dict | None = None, *, upload: bool = False
    ) -> tuple[int, dict]:
        request = HTTPRequest(
            self.files_url + path,
            method=method,
            body=None if body is None else json.dumps(body),
            headers={
                "Authorization": f"token {self._token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if body is not None else {}),
            },
            connect_timeout=min(5.0, self.timeout),
            request_timeout=self.timeout,
            follow_redirects=False,
        )
        try:
            response = await self._http.fetch(request)
        except HTTPClientError as e:
            raw = e.response.body if e.response is not None else b""
            message = answer_message(raw or b"")
            if e.code in (502, 503, 504, 599) or e.response is None:
                raise FilesUnavailable(f"{method} {path}: {e.code} {message}".strip()) from None
            if upload and e.code in _UPLOAD_STATUSES and message:
                raise FilesSaidNo(message, e.code) from None
            if e.code == 404:
                raise FilesNotFound(
                    message or "The files service does not know this class."
                ) from None
            if e.code in (401, 403):
                raise FilesRefused(
                    "The files service refused the grades service"
                    + (f": {message}" if message else " (check its scopes and release_services).")
                ) from None
            raise FilesRefused(message or f"The files service answered {e.code}.") from None
        except (OSError, TimeoutError) as e:
            raise FilesUnavailable(f"{method} {path}: {type(e).__name__}") from None
        raw = response.body or b""
        if len(raw) > MAX_ANSWER_BYTES:
            raise FilesRefused("The files service's answer is too large.")
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            raise FilesRefused("The files service's answer is not JSON.") from None
        if not isinstance(data, dict):
            raise FilesRefused("The files service's answer is not a JSON object.")
        return response.code, data

    async def starting_files(self, code: str, slug: str) -> list[dict]:
        """The assignment's starting files: ``[{"path", "size", "modified"}]``, paths
        relative to its folder."""
        code, slug = names.validate_code(code), names.validate_assignment(slug)
        query = urlencode({"folder": slug})
        _, data = await self._call(
            "GET", f"api/files/class/{quote(code, safe='')}/assignments?{query}"
        )
        files = []
        for item in data.get("files") or []:
            path = str(item.get("path", ""))
            if path.startswith(slug + "/"):
                files.append(
                    {
                        "path": path[len(slug) + 1 :],
                        "size": int(item.get("size") or 0),
                        "modified": item.get("modified"),
                    }
                )
        return sorted(files, key=lambda f: f["path"])

    async def sign_starting_upload(
        self, code: str, slug: str, path: str, size: int, *, teacher: str, host: str, secure: bool
    ) -> dict:
        """A presigned upload of the starting file ``path`` of assignment ``slug``, for
        ``teacher`` (whom the caller checked), signed for the browser at ``host``: the
        files service's answer (``id``, ``method``, ``url``, ``headers``)."""
        code, slug = names.validate_code(code), names.validate_assignment(slug)
        body = {
            "path": f"{slug}/{names.validate_path(path)}",
            "size": size,
            "for": teacher,
            "host": host,
            "secure": secure,
        }
        _, data = await self._call(
            "POST", f"api/files/class/{quote(code, safe='')}/assignments/uploads", body, upload=True
        )
        if not isinstance(data.get("id"), str) or not isinstance(data.get("url"), str):
            raise FilesRefused("The files service's answer has no upload.")
        return data

    async def finish_starting_upload(self, code: str, upload_id: str, *, teacher: str) -> dict:
        """Tell the files service the upload ``upload_id`` arrived: ``{"path", "size"}``."""
        code = names.validate_code(code)
        _, data = await self._call(
            "POST",
            f"api/files/class/{quote(code, safe='')}/assignments/uploads/"
            f"{quote(upload_id, safe='')}",
            {"for": teacher},
            upload=True,
        )
        return data

    async def release(self, code: str, slug: str, push_id: str) -> tuple[dict, bool]:
        """Push the starting files now under ``push_id``: ``(push, created)`` (created is
        False when the files service had made this push already)."""
        status, data = await self._call(
            "POST",
            f"api/classes/{quote(names.validate_code(code), safe='')}/pushes",
            {"assignment": names.validate_assignment(slug), "release_id": push_id},
        )
        if not data.get("id"):
            raise FilesRefused("The files service's answer has no push id.")
        return data, status == 202

    async def push(self, code: str, push_id: str) -> dict | None:
        """One release push with its per-student report, or None when the files service
        has no such push."""
        try:
            _, data = await self._call(
                "GET",
                f"api/classes/{quote(names.validate_code(code), safe='')}/pushes/"
                f"{quote(push_id, safe='')}",
            )
        except FilesNotFound:
            return None
        return data


class Releaser:
    """Makes the release pushes that are due, each round exactly once."""

    def __init__(
        self,
        *,
        store: GradesStore,
        files: FilesClient,
        lease: float = 120.0,
        retry_after: float = 30.0,
        log: logging.Logger | None = None,
    ):
        self.store = store
        self.files = files
        # longer than the two calls to the files service take at most
        self.lease = max(lease, 4 * files.timeout)
        self.retry_after = retry_after
        self.log = log or logging.getLogger(__name__)

    async def run(self, claim: ReleaseClaim) -> bool:
        """Make the claimed round: True when it was recorded as made. A failure of the
        files service is recorded in the assignment (shown on the teacher's page) and the
        round is due again after ``retry_after``; PostgreSQL being down is raised."""
        where = f"{claim.class_code}/{claim.slug}"
        try:
            files = await self.files.starting_files(claim.class_code, claim.slug)
            if not files:
                self.log.info("Release of %s (round %d): no starting files", where, claim.round)
                return await self.store.finish_release(claim, push_id=None, files=0)
            push, created = await self.files.release(claim.class_code, claim.slug, claim.push_id)
        except ServiceError as e:
            self.log.warning("Release of %s (round %d) failed: %s", where, claim.round, e)
            await self.store.fail_release(claim, str(e), retry_after=self.retry_after)
            return False
        self.log.info(
            "Release of %s (round %d): files push %s %s (%d file(s))",
            where,
            claim.round,
            push["id"],
            "created" if created else "found (made before)",
            len(files),
        )
        return await self.store.finish_release(claim, push_id=push["id"], files=len(files))

    async def release_due(self, limit: int = 50) -> int:
        """Make the due rounds (at most ``limit`` this time); how many were made."""
        made = 0
        for _ in range(limit):
            claim = await self.store.claim_release(lease=self.lease)
            if claim is None:
                break
            made += await self.run(claim)
        return made

    async def release_now(self, assignment_id: int) -> bool | None:
        """Make this assignment's due round now: True made, False failed (recorded), None
        nothing to do or another caller is making it right now."""
        claim = await self.store.claim_release(lease=self.lease, assignment_id=assignment_id)
        if claim is None:
            return None
        return await self.run(claim)
