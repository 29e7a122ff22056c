"""The services' one door to the S3 store (the ``minio`` SDK, run in a thread pool): the
files service's files and material, the grades service's snapshots.

Every call goes through :class:`~common.blocking.BlockingCalls` (the SDK blocks)
with a time budget, and SDK errors become the service's own: a missing object is ``None``
or :class:`~common.errors.NotFound`; the store being down, slow or refusing our
credentials is :class:`~common.errors.Unavailable` (a 503 with a clear message);
anything else is re-raised.

Presigned URLs are signed for the address the *browser* uses (the ``Host`` of its request,
which Traefik passes on), because SigV4 signs the host: Traefik routes that address's
``/<bucket>`` paths to the store (:mod:`services.files.route`), so file bytes go from the
browser to the store and back without passing through the hub or this service.
"""

from __future__ import annotations

import datetime
import io
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import quote

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from common.blocking import BlockingCalls, CallTimedOut
from common.errors import Unavailable
from common.s3 import make_bucket

from . import sigv4

log = logging.getLogger(__name__)

DOWN = "The file store is unreachable right now; nothing was changed. Try again in a minute."
#: S3 error codes that mean "our configuration is wrong", not "your request is wrong"
_CONFIG_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "NoSuchBucket"}


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: float  # seconds since the epoch
    etag: str


def _stored(obj) -> StoredObject:
    modified = obj.last_modified.timestamp() if obj.last_modified else 0.0
    return StoredObject(obj.object_name, int(obj.size or 0), modified, (obj.etag or "").strip('"'))


class ObjectStore:
    """One bucket of an S3 store."""

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        blocking: BlockingCalls,
        region: str = "us-east-1",
        timeout: float = 10.0,
        probe_prefix: str = "",
    ):
        scheme, _, host = endpoint.partition("://")
        if scheme not in ("http", "https") or not host:
            raise ValueError(f"the S3 endpoint must be http(s)://host:port, got {endpoint!r}")
        self.bucket = bucket
        # a health check lists this reserved name (never a key: see names.RESERVED_PREFIX)
        # under a prefix the service's identity may list; a service's identity may not
        # look at the bucket itself (hub/stores/s3.py)
        self.probe = f"{probe_prefix}.classhub-probe"
        self.region = region
        self.blocking = blocking
        self.timeout = timeout
        self._keys = (access_key, secret_key)
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(3.0, timeout), read=timeout),
            # retried: connection failures and the store's own 5xx, never a 4xx
            retries=urllib3.Retry(
                total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)
            ),
            maxsize=blocking.threads,
        )
        self.client = Minio(
            host.rstrip("/"),
            access_key=access_key,
            secret_key=secret_key,
            secure=scheme == "https",
            region=region,
            http_client=self._http,
        )
        self._signers: dict[tuple[str, bool], Minio] = {}

    # ----- running SDK calls

    async def _run(self, what: str, fn, *args, timeout: float | None = None, **kwargs):
        try:
            return await self.blocking.run(fn, *args, timeout=timeout or self.timeout, **kwargs)
        except S3Error as e:
            if e.code in _CONFIG_CODES:
                log.error("S3 refused %s: %s (check the files service's S3 settings)", what, e.code)
                raise Unavailable(
                    "The file store refused the service's credentials; an administrator must "
                    "check the S3 settings.",
                    detail=e.code,
                ) from e
            raise
        except (CallTimedOut, urllib3.exceptions.HTTPError, OSError) as e:
            log.warning("S3 unavailable while %s: %s", what, type(e).__name__)
            raise Unavailable(DOWN, detail=str(e)) from e

    def _probe(self) -> None:
        for _ in self.client.list_objects(self.bucket, prefix=self.probe):
            break

    async def ensure_bucket(self) -> None:
        """Create the bucket when it is missing. ``make up`` creates it with the store's
        admin identity (``classhub-stores s3-bucket``); a service's own identity is
        refused, and the answer says so."""

        def ensure():
            try:
                self._probe()
            except S3Error as e:
                if e.code != "NoSuchBucket":
                    raise
                make_bucket(self.client, self.bucket)  # or another service did meanwhile

        await self._run("creating the bucket", ensure)

    async def ping(self) -> None:
        await self._run("checking the bucket", self._probe)

    # ----- objects

    async def list(self, prefix: str) -> list[StoredObject]:
        """Every object under ``prefix`` (recursive), sorted by key."""

        def listing():
            objects = self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
            return sorted((_stored(o) for o in objects if not o.is_dir), key=lambda o: o.key)

        return await self._run("listing files", listing)

    async def stat(self, key: str) -> StoredObject | None:
        def stat():
            try:
                return _stored(self.client.stat_object(self.bucket, key))
            except S3Error as e:
                if e.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                    return None
                raise

        return await self._run("reading a file's details", stat)

    async def remove(self, keys: list[str]) -> None:
        """Remove ``keys`` (missing ones are fine); raises if any removal failed."""
        if not keys:
            return

        def remove():
            errors = list(self.client.remove_objects(self.bucket, (DeleteObject(k) for k in keys)))
            if errors:
                raise OSError(f"{len(errors)} object(s) not removed: {errors[0].code}")

        await self._run("removing files", remove)

    async def copy(self, source: str, target: str) -> None:
        await self._run(
            "copying a file",
            self.client.copy_object,
            self.bucket,
            target,
            CopySource(self.bucket, source),
            timeout=max(self.timeout, 120.0),
        )

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await self._run(
            "storing a file",
            self.client.put_object,
            self.bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
        )

    def put_stream(self, key: str, stream: BinaryIO, length: int) -> None:
        """Blocking: store ``length`` bytes read from ``stream`` (run inside a pool job)."""
        self.client.put_object(
            self.bucket, key, stream, length, content_type="application/octet-stream"
        )

    def download_to_temp(self, key: str, max_bytes: int) -> BinaryIO:
        """Blocking: the object in an anonymous temporary file (at most ``max_bytes``)."""
        spool = tempfile.TemporaryFile(prefix="classhub-files-")
        try:
            response = self.client.get_object(self.bucket, key)
            try:
                total = 0
                for chunk in response.stream(1 << 20):
                    total += len(chunk)
                    if total > max_bytes:
                        raise ValueError(f"{key} is larger than {max_bytes} bytes")
                    spool.write(chunk)
            finally:
                response.close()
                response.release_conn()
            spool.seek(0)
            return spool
        except BaseException:
            spool.close()
            raise

    def iter_object(self, key: str) -> Iterator[bytes]:
        """Blocking: the object's bytes in chunks."""
        response = self.client.get_object(self.bucket, key)
        try:
            yield from response.stream(1 << 20)
        finally:
            response.close()
            response.release_conn()

    async def run_job(self, what: str, fn, *args, timeout: float):
        """Run a blocking job made of several SDK calls (unpacking, building a zip)."""
        return await self._run(what, fn, *args, timeout=timeout)

    # ----- presigned URLs for the browser

    def _signer(self, host: str, secure: bool) -> Minio:
        signer = self._signers.get((host, secure))
        if signer is None:
            if len(self._signers) > 64:  # hosts come from requests: bound the cache
                self._signers.clear()
            # presigning is local (the region is given): this client never connects
            signer = Minio(
                host,
                access_key=self._keys[0],
                secret_key=self._keys[1],
                secure=secure,
                region=self.region,
            )
            self._signers[(host, secure)] = signer
        return signer

    def presign_put(
        self, *, host: str, secure: bool, key: str, size: int, expires: float
    ) -> tuple[str, dict[str, str]]:
        """A browser upload of exactly one object ``key`` of exactly ``size`` bytes: the URL
        and the headers the request must carry. ``Content-Length`` and ``Content-Type`` are
        signed, so the store refuses a body of any other size (or a chunked one) and the
        object is always stored as opaque bytes; any unsigned ``x-amz-*`` header (a
        server-side copy, tags, metadata) breaks the signature too."""
        headers = {"Content-Type": "application/octet-stream"}
        url = sigv4.presign(
            method="PUT",
            scheme="https" if secure else "http",
            host=host,
            path=f"/{self.bucket}/{key}",
            access_key=self._keys[0],
            secret_key=self._keys[1],
            region=self.region,
            expires=max(1, int(expires)),
            now=datetime.datetime.now(datetime.UTC),
            headers={"content-length": str(size), "content-type": headers["Content-Type"]},
        )
        return url, headers

    def presign_get(
        self, *, host: str, secure: bool, key: str, filename: str, expires: float
    ) -> str:
        """A download link for ``key`` that saves as ``filename`` (never shown inline)."""
        disposition = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
        return self._signer(host, secure).presigned_get_object(
            self.bucket,
            key,
            expires=datetime.timedelta(seconds=expires),
            response_headers={
                "response-content-disposition": disposition,
                "response-content-type": "application/octet-stream",
            },
        )

    def close(self) -> None:
        self._http.clear()


def basename(path: str) -> str:
    return os.path.basename(path) or "download"
