"""``FilesApp``: the files service (``python -m services.files``).

On top of :class:`~services.base.app.ServiceApp`: the S3 bucket (created at start-up),
Traefik's route for presigned URLs (:mod:`.route`), the pushes' MongoDB collections, and
one background loop that starts scheduled pushes, delivers missed pushes to students whose
home appeared, and clears abandoned uploads (every
minute). Pushes are written into students' homes by
helper containers (:mod:`services.base.homes`, settings in
:class:`~services.base.homesapp.HomesSettings`). Settings come from ``CLASSHUB_*`` variables
(see :func:`services.files.config.files_service_config`) or the traits below.
"""

from __future__ import annotations

import asyncio

from traitlets import Float, Int, Set, TraitError, Unicode, default, validate

from common import clock
from common.errors import Unavailable
from common.settings import named
from common.units import parse_size
from services.base.app import ServiceApp
from services.base.homesapp import HomesSettings
from services.base.hubapi import HubAPIError
from services.base.membership import Membership
from services.base.s3app import S3Settings
from services.base.sharedenv import (
    checked_mongo_url,
    checked_week_seconds,
)

from .handlers import files_handlers
from .pages import TEMPLATES, page_handlers
from .push import Pusher
from .pushstore import RUNNING, PushStore
from .route import route_config, write_route
from .settings import FILES_TABLE
from .uploads import PendingUploads, abandoned

#: seconds between two clean-ups of abandoned staged uploads
STAGING_CLEANUP_INTERVAL = 60.0


def _size_trait(help_text: str) -> Unicode:
    return Unicode(config=True, help=help_text)


@FILES_TABLE.install
class FilesApp(S3Settings, HomesSettings, ServiceApp):
    name = "classhub-files"
    description = "classhub's files service: private files, class material and pushes on S3"
    default_service_name = "files"

    # ----- the S3 store

    s3_timeout = Float(
        config=True,
        help="""Seconds one S3 call may take before the answer is 503 (uploads and
        downloads do not count: browsers talk to the store directly). Set from
        ``CLASSHUB_S3_TIMEOUT``.

        Example: ``c.FilesApp.s3_timeout = 5``
        """,
    )

    # ----- MongoDB (pushes)

    mongo_url = Unicode(
        config=True,
        help="""MongoDB connection URL for the record of material pushes; its path names
        the database. The hub passes it as ``CLASSHUB_MONGO_URL`` from
        ``CLASSHUB_FILES_MONGO_URL`` (the service's own MongoDB user). It may hold a
        password: it is never logged.

        Example: ``c.FilesApp.mongo_url = "mongodb://127.0.0.1:17017/classhub"``
        """,
    ).tag(sensitive=True)

    @validate("mongo_url")
    def _check_mongo_url(self, proposal):
        return checked_mongo_url(self, proposal)

    mongo_timeout = Float(
        config=True,
        help="""Seconds a MongoDB call may take (server selection, connect, each
        operation) before the API answers 503, so a MongoDB outage shows as an error
        instead of a page that hangs. Set from ``CLASSHUB_MONGO_TIMEOUT``.

        Example: ``c.FilesApp.mongo_timeout = 2``
        """,
    )

    # ----- limits

    user_quota = _size_trait(
        """How much one person's private files may take together (K, M, G suffixes).
        Checked before an upload is signed and again when it lands. Set from
        ``CLASSHUB_FILES_USER_QUOTA``.

        Example: ``c.FilesApp.user_quota = "2G"``
        """
    )

    material_quota = _size_trait(
        """How much one class's material may take together (``CLASSHUB_FILES_MATERIAL_QUOTA``).

        Example: ``c.FilesApp.material_quota = "5G"``
        """
    )

    max_file_size = _size_trait(
        """The largest single file anyone may upload, and the largest file an archive may
        unpack to (``CLASSHUB_FILES_MAX_FILE_SIZE``). The store refuses a larger upload
        itself: the size is part of the signature.

        Example: ``c.FilesApp.max_file_size = "256M"``
        """
    )

    staging_quota = _size_trait(
        """How much one person's unfinished uploads may take while they wait to be
        checked: replacements of a file and zips to unpack go to a staging place outside
        every area first, and without this limit they would count against no quota. New
        upload links beyond it are refused (413) until earlier uploads finish; abandoned
        ones are removed a few minutes after their link expired. At least
        ``max_zip_size`` and ``max_file_size``. Set from ``CLASSHUB_FILES_STAGING_QUOTA``.

        Example: ``c.FilesApp.staging_quota = "2G"``
        """
    )

    max_zip_size = _size_trait(
        """The largest archive (zip) that may be uploaded to be unpacked
        (``CLASSHUB_FILES_MAX_ZIP_SIZE``).

        Example: ``c.FilesApp.max_zip_size = "1G"``
        """
    )

    max_unpacked_size = _size_trait(
        """The most an archive may unpack to, all files together: the zip-bomb cap
        (``CLASSHUB_FILES_MAX_UNPACKED_SIZE``).

        Example: ``c.FilesApp.max_unpacked_size = "2G"``
        """
    )

    max_zip_files = Int(
        config=True,
        help="""The most files one archive may hold (``CLASSHUB_FILES_MAX_ZIP_FILES``).

        Example: ``c.FilesApp.max_zip_files = 5000``
        """,
    )

    upload_expiry = Float(
        config=True,
        help="""Seconds an upload link stays valid. Long enough for a large file on a slow
        connection; the bytes it may send are fixed when it is signed.
        (``CLASSHUB_FILES_UPLOAD_EXPIRY``)

        Example: ``c.FilesApp.upload_expiry = 900``
        """,
    )

    download_expiry = Float(
        config=True,
        help="""Seconds a download link stays valid: enough to start the download; the
        page asks for a new link every time (``CLASSHUB_FILES_DOWNLOAD_EXPIRY``).

        Example: ``c.FilesApp.download_expiry = 30``
        """,
    )

    @validate("upload_expiry", "download_expiry", "s3_timeout", "mongo_timeout")
    def _check_seconds(self, proposal):
        return checked_week_seconds(self, proposal)

    # ----- pushes

    release_services = Set(
        Unicode(),
        config=True,
        help="""Hub services that may release assignments with their own token: list a
        class's ``class/<code>/assignments`` area, push one assignment's starting files
        into ``~/<code>/assignments/<slug>``, and read such a push. Nothing else (no
        material push, no upload, no other area). The service also needs the hub scope
        ``access:services!service=files``. Set from ``CLASSHUB_FILES_RELEASE_SERVICES``
        (names separated by commas; empty: none).

        Example: ``c.FilesApp.release_services = {"grades"}``
        """,
    )

    sync_interval = Float(
        config=True,
        help="""Seconds between two looks for students' homes that appeared (a student
        started a class for the first time: they get the pushes they missed), waiting
        deliveries to retry, and scheduled pushes that are due
        (``CLASSHUB_FILES_SYNC_INTERVAL``). Each look is one Docker call.

        Example: ``c.FilesApp.sync_interval = 10``
        """,
    )

    @validate("max_zip_files")
    def _check_positive_int(self, proposal):
        if proposal.value < 1:
            raise TraitError(f"{named(self, proposal)} must be at least 1")
        return proposal.value

    # ----- Traefik

    traefik_dynamic_dir = Unicode(
        config=True,
        help="""The directory watched by Traefik's file provider (the proxy's
        ``dynamic_config_dir``): the service writes its route for presigned URLs there at
        start-up, so browsers reach the S3 store through Traefik. Set from
        ``CLASSHUB_TRAEFIK_DYNAMIC_DIR``; by default ``$CLASSHUB_DATA_DIR/traefik-dynamic``
        as the proxy's. Empty: write nothing (the route is made elsewhere).

        Example: ``c.FilesApp.traefik_dynamic_dir = "/srv/classhub/traefik-dynamic"``
        """,
    )

    traefik_entrypoint = Unicode(
        config=True,
        help="""The Traefik entrypoint browsers come in through, on which the route for
        presigned URLs is made; the same as the proxy's ``entrypoint``. Set from
        ``CLASSHUB_TRAEFIK_ENTRYPOINT``.

        Example: ``c.FilesApp.traefik_entrypoint = "websecure"``
        """,
    )

    @default("template_paths")
    def _default_template_paths(self):
        return [str(TEMPLATES)]

    # ----- built from the settings

    def limits(self) -> dict:
        try:
            sizes = {
                name: parse_size(getattr(self, name))
                for name in (
                    "user_quota",
                    "material_quota",
                    "staging_quota",
                    "max_file_size",
                    "max_zip_size",
                    "max_unpacked_size",
                )
            }
        except ValueError as e:
            raise TraitError(
                f"A files size setting is not a size such as 512M or 2G: {e}"
            ) from None
        if sizes["staging_quota"] < max(sizes["max_zip_size"], sizes["max_file_size"]):
            raise TraitError(
                f"staging_quota ({self.staging_quota}, CLASSHUB_FILES_STAGING_QUOTA) must be "
                f"at least max_zip_size ({self.max_zip_size}) and max_file_size "
                f"({self.max_file_size}), or the largest uploads could never be staged."
            )
        return {
            **sizes,
            "max_zip_files": self.max_zip_files,
            "upload_expiry": self.upload_expiry,
            "download_expiry": self.download_expiry,
        }

    def check_settings(self) -> None:
        super().check_settings()
        self.limits()
        if not self.has_s3_keys():
            raise TraitError(
                "The files service needs S3 credentials: set CLASSHUB_S3_ACCESS_KEY and "
                "CLASSHUB_S3_SECRET_KEY (scripts/up.sh generates them)."
            )

    async def setup(self) -> None:
        await super().setup()
        self.objects = self.object_store(
            self.blocking, probe_prefix="staging/", timeout=self.s3_timeout
        )
        self.pushes = PushStore(
            self.mongo_url, blocking=self.blocking, timeout=self.mongo_timeout, log=self.log
        )
        self.membership = Membership(self.hub)
        self.uploads = PendingUploads(lambda: clock.now())
        self.homes = self.make_homes(
            self.service_name, self.log, hub=self.hub, objects=self.objects
        )
        self.pusher = Pusher(
            objects=self.objects,
            pushes=self.pushes,
            membership=self.membership,
            homes=self.homes,
            clock=lambda: clock.now(),
            max_material_bytes=self.limits()["max_unpacked_size"],
            log=self.log,
        )
        if self.traefik_dynamic_dir:
            path = write_route(
                self.traefik_dynamic_dir,
                route_config(
                    bucket=self.s3_bucket,
                    s3_url=self.s3_endpoint,
                    entrypoint=self.traefik_entrypoint,
                ),
            )
            self.log.info("Traefik route for presigned URLs written to %s", path)

    def handlers(self):
        deps = {
            "objects": self.objects,
            "membership": self.membership,
            "uploads": self.uploads,
            "limits": self.limits(),
            "clock": lambda: clock.now(),
            "pusher": self.pusher,
            "pushes": self.pushes,
            "release_services": frozenset(self.release_services),
        }
        return page_handlers(deps) + files_handlers(deps)

    def health_checks(self):
        return {"s3": self.objects.ping, "mongodb": self.pushes.ping, **super().health_checks()}

    async def on_started(self) -> None:
        self.spawn(self._background(), "files-background")
        self.spawn(self._sweep_helpers(), "files-helpers")

    async def _sweep_helpers(self) -> None:
        try:
            await self.homes.sweep()
        except Unavailable as e:
            self.log.warning("Helper containers of an earlier run not checked: %s", e.detail)

    async def teardown(self) -> None:
        await self.pusher.wait_idle()
        self.homes.close()
        self.pushes.close()
        await super().teardown()

    async def _background(self) -> None:
        """Bucket, resumed pushes, then every ``sync_interval``: due pushes, homes that
        appeared and waiting deliveries, abandoned uploads. Each step that fails (a store
        down) is retried on the next round; nothing here ever stops the loop."""
        ready = False
        last_cleanup = 0.0
        while True:
            try:
                if not ready:
                    await self.objects.ensure_bucket()
                    for push in await self.pushes.with_status(RUNNING):
                        self.log.info("Resuming push %s of %s", push["_id"], push["code"])
                        self.pusher.spawn(self.pusher.run(push["_id"]))
                    ready = True
                await self.pusher.run_due()
                await self.pusher.sync_new_homes()
                if clock.now() - last_cleanup > STAGING_CLEANUP_INTERVAL:
                    await self._remove_abandoned_uploads()
                    last_cleanup = clock.now()
            except (Unavailable, HubAPIError) as e:
                self.log.warning("Files background work postponed: %s", e)
            except Exception:
                self.log.exception("Files background work failed; retrying")
            await asyncio.sleep(self.sync_interval)

    async def _remove_abandoned_uploads(self) -> None:
        """Staged objects no upload waits for any more (its link expired, and the grace
        after it; every one after a restart of the service) are removed."""
        old = abandoned(
            await self.objects.list("staging/"),
            self.uploads.keys(),
            clock.now(),
            self.upload_expiry + self.uploads.grace,
        )
        if old:
            await self.objects.remove(old)
            self.log.info("Removed %d abandoned upload(s) from staging", len(old))


main = FilesApp.launch_instance
