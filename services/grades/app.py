"""``GradesApp``: the grades service (``python -m services.grades``).

On top of :class:`~services.base.app.ServiceApp`: the PostgreSQL store (migrated at
start-up), the S3 store for submitted snapshots (the files service's bucket and its
``submissions/`` area, through the same :class:`~services.base.s3.ObjectStore`), the
collector that takes snapshots from students' class servers, and the releaser that
pushes assignments' starting files through the files service when they are due. Settings come from
``CLASSHUB_*`` variables (see :func:`services.grades.config.grades_service_config`).
"""

from __future__ import annotations

import asyncio
import os
import socket

from traitlets import Float, Integer, TraitError, Unicode, default, validate

from common import clock
from common.errors import Unavailable
from common.settings import named
from common.units import parse_size
from services.base.app import ServiceApp
from services.base.homesapp import HomesSettings
from services.base.hubapi import HubAPIError
from services.base.membership import Membership
from services.base.pages import normal_base_url
from services.base.s3app import S3Settings
from services.base.sharedenv import (
    checked_week_seconds,
)

from .autograde.service import Autograding, snapshot_loader
from .autograde.settings import AutogradeSettings
from .autogradeapi import autograde_handlers
from .bookcache import GradebookCache
from .collect import Collector
from .deadlines import Deadliner
from .handlers import grades_handlers
from .pages import TEMPLATES, page_handlers
from .release import FilesClient, Releaser
from .review import review_handlers
from .reviewsettings import ReviewSettings
from .settings import GRADES_TABLE
from .store import GradesStore


@GRADES_TABLE.install
class GradesApp(AutogradeSettings, ReviewSettings, S3Settings, HomesSettings, ServiceApp):
    name = "classhub-grades"
    description = "classhub's grades service: assignments, submissions, grades, gradebook"
    default_service_name = "grades"

    db_url = Unicode(
        config=True,
        help="""PostgreSQL URL of the grades (schema ``classhub_grades``, created and
        migrated at start-up). Set from ``CLASSHUB_GRADES_DB_URL``, else
        ``CLASSHUB_DB_URL`` (the hub's database). May hold a password: never logged.

        Example: ``c.GradesApp.db_url = "postgresql://classhub:...@127.0.0.1:15432/jupyterhub"``
        """,
    ).tag(sensitive=True)

    @validate("db_url")
    def _check_db_url(self, proposal):
        if not proposal.value.startswith(("postgresql", "postgres")):
            raise TraitError(
                "The grades service needs PostgreSQL: set CLASSHUB_GRADES_DB_URL or "
                "CLASSHUB_DB_URL to a postgresql:// URL"
            )
        return proposal.value

    db_timeout = Float(
        config=True,
        help="""Seconds a PostgreSQL call may take before the answer is 503
        (``CLASSHUB_GRADES_DB_TIMEOUT``).

        Example: ``c.GradesApp.db_timeout = 3``
        """,
    )

    hub_base_url = Unicode(
        config=True,
        help="""The hub's base URL path (``JUPYTERHUB_BASE_URL``, set by JupyterHub).

        Example: ``c.GradesApp.hub_base_url = "/"``
        """,
    )

    @default("hub_base_url")
    def _default_hub_base_url(self):
        return os.environ.get("JUPYTERHUB_BASE_URL") or "/"

    download_expiry = Float(
        config=True,
        help="""Seconds a link to a submitted snapshot stays valid (more than 0, at most 7
        days): enough to start the download; the page asks for a new link every time. The
        same variable as the files service's ``download_expiry``
        (``CLASSHUB_FILES_DOWNLOAD_EXPIRY``).

        Example: ``c.GradesApp.download_expiry = 60``
        """,
    )

    @validate("download_expiry")
    def _check_download_expiry(self, proposal):
        return checked_week_seconds(self, proposal)

    sync_interval = Float(
        config=True,
        help="""Seconds between two rounds delivering returned feedback to students whose
        server was stopped when it was returned. The same variable as the files
        service's ``sync_interval`` (``CLASSHUB_FILES_SYNC_INTERVAL``).

        Example: ``c.GradesApp.sync_interval = 10``
        """,
    )

    files_url = Unicode(
        config=True,
        help="""Where the service calls the files service's API (to read an assignment's
        starting files and release them), with the grades service's own token. Set from
        ``CLASSHUB_FILES_URL``; by default the files service on this machine,
        ``http://127.0.0.1:<CLASSHUB_FILES_PORT>/<base URL>services/files/``.

        Example: ``c.GradesApp.files_url = "http://127.0.0.1:10102/services/files/"``
        """,
    )

    @validate("files_url")
    def _check_files_url(self, proposal):
        if not proposal.value.startswith(("http://", "https://")):
            raise TraitError(
                f"files_url must be an http(s) URL such as "
                f"http://127.0.0.1:10102/services/files/, got {proposal.value[:80]!r}"
            )
        return proposal.value

    files_timeout = Float(
        config=True,
        help="""Seconds one call to the files service may take (``CLASSHUB_FILES_TIMEOUT``).
        A release that runs out of it is retried later.

        Example: ``c.GradesApp.files_timeout = 20``
        """,
    )

    release_retry_interval = Float(
        config=True,
        help="""Seconds after a failed release push (the files service down, ...) before
        it is tried again (``CLASSHUB_GRADES_RELEASE_RETRY``). The teacher's "Release now"
        button retries at once.

        Example: ``c.GradesApp.release_retry_interval = 60``
        """,
    )

    deadline_interval = Float(
        config=True,
        help="""Seconds between two looks for deadlines that came
        (``CLASSHUB_GRADES_DEADLINE_INTERVAL``). At each student's deadline the service
        takes a snapshot of their assignment folder by itself; a look is one
        indexed query, and the snapshots of a class must all be recorded within 60 s of
        its deadline, so keep this small.

        Example: ``c.GradesApp.deadline_interval = 2``
        """,
    )

    deadline_retry_interval = Float(
        config=True,
        help="""Seconds before a deadline snapshot that could not be taken (Docker or the
        S3 store down, a helper killed at its time limit) is tried again
        (``CLASSHUB_GRADES_DEADLINE_RETRY``). It still counts as on time when it is taken:
        it stands for the deadline.

        Example: ``c.GradesApp.deadline_retry_interval = 15``
        """,
    )

    deadline_lease = Float(
        config=True,
        help="""Seconds a claim on deadline snapshots holds (``CLASSHUB_GRADES_DEADLINE_LEASE``).
        Longer than the snapshots of a whole class take (300 students: about a minute on
        2 cores); when the service stops half-way, the snapshots it had claimed are taken
        once this has passed (still on time: they stand for the deadline).

        Example: ``c.GradesApp.deadline_lease = 600``
        """,
    )

    @validate("deadline_interval", "deadline_retry_interval", "deadline_lease")
    def _check_deadline_seconds(self, proposal):
        if not proposal.value > 0:
            raise TraitError(
                f"GradesApp.{named(self, proposal)} must be a positive number of seconds,"
                f" got {proposal.value}"
            )
        return proposal.value

    gradebook_cache_classes = Integer(
        64,
        config=True,
        help="""How many classes' gradebooks the service keeps, as last built, to answer the
        gradebook page again without reading and building it (a 300 × 20 gradebook costs
        about 50 ms of the service's time). One is reused only while PostgreSQL's gradebook
        generation of the class (raised by triggers on every change it reads) and the
        class's roster are unchanged, so it is never out of date. 0 turns the cache off;
        each entry is the gradebook's JSON (about 330 KB for 300 × 20).

        Example: ``c.GradesApp.gradebook_cache_classes = 200``
        """,
    )

    @validate("gradebook_cache_classes")
    def _check_gradebook_cache_classes(self, proposal):
        if proposal.value < 0:
            raise TraitError(
                "GradesApp.gradebook_cache_classes cannot be negative: use 0 to turn the "
                "gradebook cache off."
            )
        return proposal.value

    max_versions = Integer(
        config=True,
        help="""How many versions of one assignment a student may hand in
        (``CLASSHUB_GRADES_MAX_VERSIONS``; 0: no cap). At the cap, Submit is refused with a
        message that says every version is kept (the grades page shows the one that counts);
        nothing handed in is ever deleted, and a teacher's collect is never refused. Each
        version is a snapshot of up to 110 MB in the shared store.

        Example: ``c.GradesApp.max_versions = 20``
        """,
    )

    @validate("max_versions")
    def _check_max_versions(self, proposal):
        if proposal.value < 0:
            raise TraitError("GradesApp.max_versions cannot be negative; 0 means no cap.")
        return proposal.value

    student_quota = Unicode(
        config=True,
        help="""How much all of one student's handed-in versions (of every assignment,
        collected ones included) may take in the store (K, M, G suffixes;
        ``CLASSHUB_GRADES_STUDENT_QUOTA``). A Submit that would go beyond it is refused
        (413) with the numbers; a teacher's collect still works.

        Example: ``c.GradesApp.student_quota = "2G"``
        """,
    )

    @validate("student_quota")
    def _check_student_quota(self, proposal):
        try:
            parse_size(proposal.value)
        except ValueError as e:
            raise TraitError(
                f"GradesApp.student_quota is not a size such as 1G or 500M: {e}"
            ) from None
        return proposal.value

    @default("template_paths")
    def _default_template_paths(self):
        return [str(TEMPLATES)]

    def check_settings(self) -> None:
        super().check_settings()
        if not self.has_s3_keys():
            raise TraitError("The grades service needs CLASSHUB_S3_ACCESS_KEY and _SECRET_KEY.")

    async def setup(self) -> None:
        await super().setup()
        self.store = GradesStore(
            self.db_url,
            timeout=self.db_timeout,
            max_versions=self.max_versions,
            student_quota=parse_size(self.student_quota),
        )
        self.objects = self.object_store(self.blocking, probe_prefix="submissions/")
        self.membership = Membership(self.hub)
        self.homes = self.make_homes(
            self.service_name, self.log, hub=self.hub, objects=self.objects
        )
        self.collector = Collector(
            store=self.store,
            objects=self.objects,
            homes=self.homes,
            clock=lambda: clock.now(),
            log=self.log,
        )
        self.files = FilesClient(self.files_url, self.api_token, timeout=self.files_timeout)
        self.gradebook_cache = GradebookCache(self.gradebook_cache_classes)
        self.review = self.make_review(self.objects, self.log)
        self.releaser = Releaser(
            store=self.store,
            files=self.files,
            retry_after=self.release_retry_interval,
            log=self.log,
        )
        self.autograding = Autograding(
            store=self.store,
            grader=self.make_autograder(self.log, deployment=self.homes_deployment),
            load=snapshot_loader(self.objects),
            settings=self.autograde_worker_settings(),
            concurrency=self.autograde_concurrency,
            images=self.autograde_images,
            default_image=self.autograde_image,
            name=f"{socket.gethostname()}:{os.getpid()}",
            log=self.log,
        )
        self.deadliner = Deadliner(
            store=self.store,
            collector=self.collector,
            membership=self.membership,
            lease=self.deadline_lease,
            retry_after=self.deadline_retry_interval,
            log=self.log,
        )

    def handlers(self):
        deps = {
            "store": self.store,
            "membership": self.membership,
            "collector": self.collector,
            "objects": self.objects,
            "clock": lambda: clock.now(),
            "limits": {"download_expiry": self.download_expiry},
            "files": self.files,
            "releaser": self.releaser,
            "files_pages": f"{normal_base_url(self.hub_base_url)}services/files/",
            "gradebook_cache": self.gradebook_cache,
            "review": self.review,
            "autograding": self.autograding,
        }
        return (
            page_handlers(deps)
            + review_handlers(deps)
            + autograde_handlers(deps)
            + grades_handlers(deps)
        )

    def health_checks(self):
        return {"postgresql": self.store.ping, "s3": self.objects.ping, **super().health_checks()}

    async def on_started(self) -> None:
        # set once the store is open AND migrated (store.opened is true from the moment
        # the pool exists, before the migrations ran)
        self._store_ready = asyncio.Event()
        self.spawn(self._open_store(), "grades-store")
        self.spawn(self._sweep_helpers(), "grades-helpers")
        self.spawn(self.review.warm(), "grades-renderer")
        self.spawn(self._deadlines(), "grades-deadlines")
        self.spawn(self._autograde(), "grades-autograde")

    async def _autograde(self) -> None:
        """Once the store is open: remove grading containers a stopped run of this
        deployment left, then run the grading queue's workers until the service stops."""
        await self._store_ready.wait()
        try:
            removed = await self.autograding.grader.remove_leftovers()
            if removed:
                self.log.info("Removed %d grading container(s) of an earlier run", removed)
        except Exception as e:  # Docker down: the workers' runs say so themselves
            self.log.warning("Grading containers of an earlier run not checked: %s", e)
        await self.autograding.run()

    async def _deadlines(self) -> None:
        """Every ``deadline_interval``: plan the deadline snapshots of assignments whose
        due date came and take those that are due (:mod:`.deadlines`), until the service
        stops. Its own loop: a long feedback round never delays a deadline."""
        while True:
            await asyncio.sleep(self.deadline_interval)
            if not self.store.opened:
                continue  # _open_store keeps trying and says so
            try:
                await self.deadliner.run_once()
            except (Unavailable, HubAPIError) as e:
                self.log.warning("Deadline snapshots postponed: %s", e)
            except Exception:
                self.log.exception("Deadline snapshots failed; retrying")

    async def _sweep_helpers(self) -> None:
        try:
            await self.homes.sweep()
        except Unavailable as e:
            self.log.warning("Helper containers of an earlier run not checked: %s", e.detail)

    async def _open_store(self) -> None:
        """Open and migrate the store, retried until PostgreSQL answers; then, every
        ``sync_interval``, make the release pushes that are due, deliver returned feedback
        to servers that run now, and every 10 minutes remove stored snapshots left
        without a record."""
        wait = 1.0
        while True:
            try:
                await self.store.open()
                self.log.info("Grades store ready (schema classhub_grades migrated)")
                self._store_ready.set()
                break
            except Unavailable as e:
                self.log.warning("Grades store not ready yet (retrying in %.0f s): %s", wait, e)
                await asyncio.sleep(wait)
                wait = min(wait * 2, 30.0)
        last_sweep = 0.0
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                await self.releaser.release_due()
            except (Unavailable, HubAPIError) as e:
                self.log.warning("Release pushes postponed: %s", e)
            except Exception:
                self.log.exception("Release pushes failed; retrying")
            try:
                await self.collector.deliver_pending_feedback()
                if clock.now() - last_sweep > 600:
                    await self.collector.remove_orphans()
                    last_sweep = clock.now()
            except (Unavailable, HubAPIError) as e:
                self.log.warning("Feedback delivery postponed: %s", e)
            except Exception:
                self.log.exception("Feedback delivery failed; retrying")

    async def teardown(self) -> None:
        self.autograding.close()
        self.review.close()
        self.homes.close()
        self.files.close()
        await self.store.close()
        await super().teardown()


main = GradesApp.launch_instance
