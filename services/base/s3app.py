"""The S3 store as a service reaches it with an identity of its own (``S3Settings``): the
files and grades services (their objects), and the classes service on a Swarm (its helper
services' jobs, services/base/swarmhomes.py). Each identity may work under its own key
prefixes only (hub/stores/s3.py); the hub passes each service its own keys under the
shared names ``CLASSHUB_S3_ACCESS_KEY``/``_SECRET_KEY`` (services/base/hubconfig.py
``service_s3_keys``)."""

from __future__ import annotations

from traitlets import Unicode, validate
from traitlets.config import Configurable

from common.blocking import BlockingCalls
from common.settings import EnvTable

from .s3 import ObjectStore
from .sharedenv import (
    S3_ACCESS_KEY,
    S3_BUCKET,
    S3_ENDPOINT,
    S3_SECRET_KEY,
    checked_s3_bucket,
    checked_s3_endpoint,
)

S3_TABLE = EnvTable(
    (
        S3_ENDPOINT.of("s3_endpoint"),
        S3_ACCESS_KEY.of("s3_access_key"),
        S3_SECRET_KEY.of("s3_secret_key"),
        S3_BUCKET.of("s3_bucket"),
    )
)


@S3_TABLE.install
class S3Settings(Configurable):
    """Where the S3 store is, the service's own identity in it, and the bucket."""

    s3_endpoint = Unicode(
        config=True,
        help="""Where the service reaches the S3 store (``http(s)://host:port``); for the
        files service also where Traefik sends browsers' presigned requests. Set from
        ``CLASSHUB_S3_ENDPOINT``.

        Example: ``c.FilesApp.s3_endpoint = "http://127.0.0.1:18333"``
        """,
    )

    @validate("s3_endpoint")
    def _check_s3_endpoint(self, proposal):
        return checked_s3_endpoint(self, proposal)

    s3_access_key = Unicode(
        config=True,
        help="""The access key of the service's own S3 identity (``files``, ``grades``, or
        on a Swarm ``classes``), which may work under that service's key prefixes only
        (hub/stores/s3.py). The hub passes it as ``CLASSHUB_S3_ACCESS_KEY`` from
        ``CLASSHUB_S3_<SERVICE>_ACCESS_KEY`` (or, with one identity for all,
        ``CLASSHUB_S3_ACCESS_KEY``). Never logged, never given to a container: browsers and
        helper services get presigned URLs instead.

        Example: ``c.GradesApp.s3_access_key = "grades"``
        """,
    ).tag(sensitive=True)

    s3_secret_key = Unicode(
        config=True,
        help="""The secret key of the service's own S3 identity, passed as
        ``CLASSHUB_S3_SECRET_KEY`` from ``CLASSHUB_S3_<SERVICE>_SECRET_KEY`` (or
        ``CLASSHUB_S3_SECRET_KEY``), as ``s3_access_key``. Never logged, never given to a
        container.

        Example: ``c.FilesApp.s3_secret_key = open("/run/secrets/s3-files").read().strip()``
        """,
    ).tag(sensitive=True)

    s3_bucket = Unicode(
        config=True,
        help="""The one bucket every service works in, each in its own areas (the files
        service makes it at start-up if missing). Its name is also the path of presigned
        URLs (``/<bucket>/...``), so it must not clash with the hub's paths. Set from
        ``CLASSHUB_S3_BUCKET``.

        Example: ``c.FilesApp.s3_bucket = "classhub-files"``
        """,
    )

    @validate("s3_bucket")
    def _check_s3_bucket(self, proposal):
        return checked_s3_bucket(self, proposal)

    def has_s3_keys(self) -> bool:
        return bool(self.s3_access_key and self.s3_secret_key)

    def object_store(
        self, blocking: BlockingCalls, *, probe_prefix: str, timeout: float = 10.0
    ) -> ObjectStore:
        """The bucket as this service's identity reaches it; a health check lists
        ``probe_prefix`` (a prefix the identity may list)."""
        return ObjectStore(
            endpoint=self.s3_endpoint,
            access_key=self.s3_access_key,
            secret_key=self.s3_secret_key,
            bucket=self.s3_bucket,
            blocking=blocking,
            timeout=timeout,
            probe_prefix=probe_prefix,
        )
