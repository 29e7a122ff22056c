"""``ClassesApp``: the classes service (``python -m services.classes``).

On top of :class:`~services.base.app.ServiceApp`: the MongoDB store, the admin's limits
for class environments, the hub group sync (a full reconciliation at start-up, retried
until MongoDB and the hub answer, then every ``reconcile_interval``) and the idle culler
(every ``cull_interval``). Settings come from ``CLASSHUB_*`` variables, which
:func:`services.classes.config.classes_service_config` passes from the hub's environment.
"""

from __future__ import annotations

import asyncio
import os

from traitlets import Bool, Float, Int, List, TraitError, Unicode, default, validate

from common import clock
from common.errors import Unavailable
from common.images import ENV as IMAGES_ENV
from common.images import (
    LEGACY_ENV,
    CatalogueError,
    merge_names,
    parse_catalogue,
    parse_catalogue_json,
    split_names,
)
from common.settings import named
from services.base.app import ServiceApp
from services.base.homesapp import HomesSettings
from services.base.hubapi import HubAPIError
from services.base.nbrender import Renderer
from services.base.s3app import S3Settings
from services.base.sharedenv import checked_mongo_url

from .culler import Culler
from .handlers import class_handlers
from .hubsync import GroupSync
from .joincodes import JoinLimiter
from .model import InvalidClass, Limits, parse_mem
from .pages import TEMPLATES, page_handlers
from .settings import CLASSES_TABLE, SERVERS_ORIGIN
from .store import ClassStore
from .warmup import Warmer
from .work import work_handlers

#: start-up reconciliation retries: first wait, longest wait (seconds)
RETRY_FIRST, RETRY_MAX = 1.0, 30.0


@CLASSES_TABLE.install
class ClassesApp(S3Settings, HomesSettings, ServiceApp):
    name = "classhub-classes"
    description = "classhub's classes service: rosters, class environments, hub groups"
    default_service_name = "classes"

    mongo_url = Unicode(
        config=True,
        help="""MongoDB connection URL of the classes, rosters and environments; its path
        names the database (``classhub`` when empty). The hub passes it as
        ``CLASSHUB_MONGO_URL`` from ``CLASSHUB_CLASSES_MONGO_URL`` (the service's own
        MongoDB user). It may hold a password: it is never logged.

        Example: ``c.ClassesApp.mongo_url = "mongodb://127.0.0.1:17017/classhub"``
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

        Example: ``c.ClassesApp.mongo_timeout = 2``
        """,
    )

    default_image = Unicode(
        config=True,
        help="""Image of a new class unless its creator picks another; must be in the
        catalogue (``images``). Set from ``CLASSHUB_SINGLEUSER_IMAGE``.

        Example: ``c.ClassesApp.default_image = "classhub/singleuser:latest"``
        """,
    )

    allowed_images = List(
        Unicode(),
        config=True,
        help="""Older form of ``images``: image names (Docker references) that join the
        catalogue, each shown by its name. Set from ``CLASSHUB_ALLOWED_IMAGES``
        (comma-separated); default: the default image when ``CLASSHUB_IMAGES`` is not set.

        Example: ``c.ClassesApp.allowed_images = ["classhub/singleuser:latest"]``
        """,
    )

    @default("allowed_images")
    def _default_allowed_images(self):
        names = split_names(os.environ.get(LEGACY_ENV, ""))
        if names or os.environ.get(IMAGES_ENV, "").strip():
            return names
        return [self.default_image]

    images = List(
        config=True,
        help="""The image catalogue teachers choose from on the class form: each a dict
        with ``name`` (the Docker image reference), ``display_name`` and
        ``description``. A class whose image is not in it is refused with a 400, and the
        spawner checks every start against the same catalogue (the hub's
        ``ClassroomSpawner.images``, from the same variables), so keep both in step. Set
        from ``CLASSHUB_IMAGES`` (this list as JSON, on one line), plus the names of
        ``allowed_images``; the default image must be in it.

        Example: ``c.ClassesApp.images = [{"name": "classhub/singleuser:latest",
        "display_name": "Python", "description": "JupyterLab and Python"},
        {"name": "classhub/datascience:latest", "display_name": "Data science",
        "description": "numpy, pandas, matplotlib, scipy, scikit-learn, seaborn"}]``
        """,
    )

    @default("images")
    def _default_images(self):
        raw = os.environ.get(IMAGES_ENV, "").strip()
        try:
            entries = parse_catalogue_json(raw) if raw else []
            catalogue = parse_catalogue(merge_names(entries, self.allowed_images), IMAGES_ENV)
        except CatalogueError as e:
            raise TraitError(str(e)) from None
        return [c.as_json() for c in catalogue]

    @validate("images")
    def _check_images(self, proposal):
        try:
            catalogue = parse_catalogue(proposal.value, "ClassesApp.images (CLASSHUB_IMAGES)")
        except CatalogueError as e:
            raise TraitError(str(e)) from None
        return [c.as_json() for c in catalogue]

    max_cpu_limit = Float(
        config=True,
        help="""Most CPUs a teacher may give their class's servers. Set from
        ``CLASSHUB_MAX_CPU_LIMIT``.

        Example: ``c.ClassesApp.max_cpu_limit = 2.0``
        """,
    )

    max_mem_limit = Unicode(
        config=True,
        help="""Most memory a teacher may give their class's servers (K, M, G, T
        suffixes). Set from ``CLASSHUB_MAX_MEM_LIMIT``.

        Example: ``c.ClassesApp.max_mem_limit = "4G"``
        """,
    )

    default_cpu_limit = Float(
        config=True,
        help="""CPUs of a new class's servers. Set from ``CLASSHUB_CPU_LIMIT`` (the hub's
        default for every server).

        Example: ``c.ClassesApp.default_cpu_limit = 1.0``
        """,
    )

    default_mem_limit = Unicode(
        config=True,
        help="""Memory of a new class's servers. Set from ``CLASSHUB_MEM_LIMIT`` (the
        hub's default for every server).

        Example: ``c.ClassesApp.default_mem_limit = "1G"``
        """,
    )

    @validate("max_mem_limit", "default_mem_limit")
    def _check_mem(self, proposal):
        try:
            parse_mem(proposal.value)
        except InvalidClass:
            raise TraitError(
                f"{named(self, proposal)} must be a size such as '512M' or '2G', "
                f"got {proposal.value!r}"
            ) from None
        return proposal.value

    default_idle_timeout = Int(
        config=True,
        help="""Seconds of inactivity before a new class's servers are stopped. Set from
        ``CLASSHUB_DEFAULT_IDLE_TIMEOUT``.

        Example: ``c.ClassesApp.default_idle_timeout = 3600``
        """,
    )

    min_idle_timeout = Int(
        config=True,
        help="""Shortest idle timeout a teacher may set: a class's servers are never
        stopped sooner than this after their last activity. Set from
        ``CLASSHUB_MIN_IDLE_TIMEOUT``.

        Example: ``c.ClassesApp.min_idle_timeout = 600``
        """,
    )

    max_idle_timeout = Int(
        config=True,
        help="""Longest idle timeout a teacher may set (idle servers hold memory). Set
        from ``CLASSHUB_MAX_IDLE_TIMEOUT``.

        Example: ``c.ClassesApp.max_idle_timeout = 8 * 3600``
        """,
    )

    max_students = Int(
        2000,
        config=True,
        help="""Largest roster of one class (and most lines of one CSV import).

        Example: ``c.ClassesApp.max_students = 500``
        """,
    )

    cull_interval = Float(
        config=True,
        help="""Seconds between two rounds of idle culling (stopping class servers idle
        longer than their class's timeout); 0 switches culling off. Set from
        ``CLASSHUB_CULL_INTERVAL``.

        Example: ``c.ClassesApp.cull_interval = 60``
        """,
    )

    reconcile_interval = Float(
        config=True,
        help="""Seconds between two full reconciliations of the hub's class groups with
        the class records (after the one at start-up); 0: only at start-up. Catches up
        on changes whose sync failed while the hub was unreachable. Set from
        ``CLASSHUB_RECONCILE_INTERVAL``.

        Example: ``c.ClassesApp.reconcile_interval = 300``
        """,
    )

    warm_lead = Float(
        config=True,
        help="""Seconds before each meeting of a class (its weekly schedule, set on the
        class page) at which the service starts the class servers of its enrolled
        students, so that they find their server running when class begins. 0 switches
        the warm-up off. Set from ``CLASSHUB_WARM_LEAD`` (default 600: 10 minutes).

        Example: ``c.ClassesApp.warm_lead = 15 * 60``
        """,
    )

    warm_stop_after = Float(
        config=True,
        help="""Seconds after a meeting's start at which the warm servers nobody used
        (no activity of their student since the server was ready) are stopped; used ones
        stay and follow the class's idle timeout. Set from ``CLASSHUB_WARM_STOP_AFTER``
        (default 900: 15 minutes).

        Example: ``c.ClassesApp.warm_stop_after = 20 * 60``
        """,
    )

    warm_capacity = Int(
        config=True,
        help="""Most warm servers running at once, platform-wide (all classes together):
        servers the warm-up started and nobody has used yet. When several classes meet at
        once they share it in turn; the students beyond it start their own server as
        usual. Size it from the memory an idle server uses (about 110 MiB for the
        minimal image) and what the machine has left. 0 switches the warm-up off. Set
        from ``CLASSHUB_WARM_CAPACITY`` (default 50).

        Example: ``c.ClassesApp.warm_capacity = 200``
        """,
    )

    warm_interval = Float(
        config=True,
        help="""Seconds between two rounds of the warm-up (each starts what is due and
        stops unused warm servers whose time is up); 0 switches the warm-up off. Set from
        ``CLASSHUB_WARM_INTERVAL`` (default 30).

        Example: ``c.ClassesApp.warm_interval = 60``
        """,
    )

    @validate("warm_lead", "warm_stop_after")
    def _check_warm_seconds(self, proposal):
        if not 0 <= proposal.value <= 6 * 3600:
            raise TraitError(
                f"{named(self, proposal)} must be between 0 and 21600 seconds (6 hours), "
                f"got {proposal.value}"
            )
        return proposal.value

    @validate("warm_capacity")
    def _check_warm_capacity(self, proposal):
        if proposal.value < 0:
            raise TraitError(
                f"{named(self, proposal)} must be 0 (off) or a positive number of servers, "
                f"got {proposal.value}"
            )
        return proposal.value

    @validate("cull_interval", "reconcile_interval", "warm_interval")
    def _check_interval(self, proposal):
        if proposal.value != 0 and proposal.value < 1:
            raise TraitError(
                f"{named(self, proposal)} must be 0 (off) or at least 1 second, "
                f"got {proposal.value}"
            )
        return proposal.value

    @validate("mongo_timeout", "max_cpu_limit", "default_cpu_limit")
    def _check_positive_float(self, proposal):
        if proposal.value <= 0:
            raise TraitError(f"{named(self, proposal)} must be positive, got {proposal.value}")
        return proposal.value

    hub_concurrency = Int(
        8,
        config=True,
        help="""Most hub API calls one request makes at once (checking a CSV file's
        usernames, stopping an archived class's servers).

        Example: ``c.ClassesApp.hub_concurrency = 16``
        """,
    )

    join_codes = Bool(
        config=True,
        help="""Let signed-in students enrol themselves in a class with its join code (a
        random code each class has, which its teachers see on the class page and can
        replace). Off by default: teachers and admins enrol students. Wrong codes are
        limited per account and per address (``join_failures_per_account`` and
        ``join_failures_per_address`` within ``join_failure_window`` seconds). Set from
        ``CLASSHUB_JOIN_CODES`` (``1``/``true`` to turn it on).

        Example: ``c.ClassesApp.join_codes = True``
        """,
    )

    join_failures_per_account = Int(
        10,
        config=True,
        help="""Wrong join codes one account may try within ``join_failure_window``;
        then it waits until the oldest leaves the window.

        Example: ``c.ClassesApp.join_failures_per_account = 5``
        """,
    )

    join_failures_per_address = Int(
        30,
        config=True,
        help="""Wrong join codes from one address (all accounts) within
        ``join_failure_window``; a classroom behind one NAT shares it.

        Example: ``c.ClassesApp.join_failures_per_address = 60``
        """,
    )

    join_failure_window = Float(
        600.0,
        config=True,
        help="""Seconds over which wrong join codes are counted.

        Example: ``c.ClassesApp.join_failure_window = 900``
        """,
    )

    join_code_signup = Bool(
        config=True,
        help="""Let people without an account sign up with a class's join code: the page
        ``/services/classes/signup`` (linked from the hub's login page) creates a local
        student account with the name and password they choose and puts it on that
        class's roster, as if a teacher had created it. Needs ``join_codes`` on (without
        it the sign-up stays off and the log says so). Wrong
        codes count against the address as for joining (``join_failures_per_address``),
        and one address makes at most ``signups_per_address`` accounts within an hour.
        Set from ``CLASSHUB_JOIN_CODE_SIGNUP`` (``1``/``true`` to turn it on).

        Example: ``c.ClassesApp.join_code_signup = True``
        """,
    )

    signups_per_address = Int(
        config=True,
        help="""Accounts one address may create by signing up with a join code within an
        hour (``CLASSHUB_SIGNUPS_PER_ADDRESS``; a class behind one NAT shares the address:
        allow a class's size).

        Example: ``c.ClassesApp.signups_per_address = 60``
        """,
    )

    @validate(
        "join_failures_per_account",
        "join_failures_per_address",
        "join_failure_window",
        "signups_per_address",
    )
    def _check_join_limits(self, proposal):
        if proposal.value < 1:
            raise TraitError(f"{proposal.trait.name} must be at least 1, got {proposal.value}")
        return proposal.value

    hub_base_url = Unicode(
        config=True,
        help="""Where students' servers are: ``<base>user/<name>/<code>/``. On one shared
        origin the hub's base URL path (JupyterHub sets ``JUPYTERHUB_BASE_URL``); with
        per-user origins (``CLASSHUB_SERVERS_DOMAIN``) a URL whose host starts with
        ``{user}.``, replaced by each user's own label (the hub computes its origin from
        its own ``subdomain_host`` and passes it as ``CLASSHUB_SERVERS_ORIGIN``).

        Example: ``c.ClassesApp.hub_base_url = "https://{user}.classhub-servers.example.edu/"``
        """,
    )

    @default("hub_base_url")
    def _default_hub_base_url(self):
        base = os.environ.get("JUPYTERHUB_BASE_URL") or "/"
        origin = SERVERS_ORIGIN.read()
        return f"{origin}{base}" if origin else base

    @default("template_paths")
    def _default_template_paths(self):
        return [str(TEMPLATES)]

    render_workers = Int(
        2,
        config=True,
        help="""Worker processes that render students' notebooks for the read-only views
        (services/base/nbrender.py): each notebook is rendered in one of them, with a
        memory and a time limit, so a notebook made to be slow or huge costs its worker,
        never the service.

        Example: ``c.ClassesApp.render_workers = 2``
        """,
    )

    @validate("render_workers")
    def _check_render_workers(self, proposal):
        if not 1 <= proposal.value <= 32:
            raise TraitError(f"ClassesApp.render_workers must be 1-32, got {proposal.value}")
        return proposal.value

    @property
    def servers_on_own_origins(self) -> bool:
        """Whether students' servers have origins of their own (``CLASSHUB_SERVERS_DOMAIN``):
        then teachers may open them; otherwise they use the read-only views."""
        return "{user}." in self.hub_base_url

    # ----- built from the settings

    def limits(self) -> Limits:
        return Limits(
            images=parse_catalogue(self.images),
            default_image=self.default_image,
            max_cpu_limit=self.max_cpu_limit,
            max_mem_limit=parse_mem(self.max_mem_limit),
            default_cpu_limit=self.default_cpu_limit,
            default_mem_limit=parse_mem(self.default_mem_limit),
            default_idle_timeout=self.default_idle_timeout,
            min_idle_timeout=self.min_idle_timeout,
            max_idle_timeout=self.max_idle_timeout,
            max_students=self.max_students,
        )

    def check_settings(self) -> None:
        super().check_settings()
        problems = self.limits().problems()
        if problems:
            raise TraitError("Class environment settings: " + "; ".join(problems) + ".")

    async def setup(self) -> None:
        await super().setup()
        self.store = ClassStore(
            self.mongo_url, blocking=self.blocking, timeout=self.mongo_timeout, log=self.log
        )
        self.group_sync = GroupSync(self.hub, self.store, log=self.log, clock=lambda: clock.now())
        # on a Swarm its look into a student's home runs as a helper service on the node
        # that holds it, whose job travels through the store under helpers/classes/ (its
        # own S3 identity's only prefix); on one machine it needs no store
        self.objects = None
        if self.homes_swarm and self.has_s3_keys():
            self.objects = self.object_store(self.blocking, probe_prefix="helpers/classes/")
        self.homes = self.make_homes(
            self.service_name, self.log, hub=self.hub, objects=self.objects
        )
        self.renderer = Renderer(workers=self.render_workers)
        self.culler = Culler(
            self.hub,
            self.store,
            clock=lambda: clock.now(),
            concurrency=self.hub_concurrency,
            log=self.log,
        )
        self.warmer = Warmer(
            self.hub,
            self.store,
            clock=lambda: clock.now(),
            lead=self.warm_lead,
            capacity=self.warm_capacity,
            stop_after=self.warm_stop_after,
            concurrency=self.hub_concurrency,
            log=self.log,
        )

    @property
    def warm_up_on(self) -> bool:
        return bool(self.warm_interval and self.warm_lead and self.warm_capacity)

    def handlers(self):
        if self.join_code_signup and not self.join_codes:
            self.log.warning(
                "ClassesApp.join_code_signup is on but join codes are off: the sign-up "
                "stays off; set CLASSHUB_JOIN_CODES=1 too."
            )
        deps = {
            "store": self.store,
            "hub": self.hub,
            "sync": self.group_sync,
            "limits": self.limits(),
            "clock": lambda: clock.now(),
            "warm": {
                "on": self.warm_up_on,
                "lead": self.warm_lead,
                "stop_after": self.warm_stop_after,
            },
            "hub_base_url": self.hub_base_url,
            "hub_concurrency": self.hub_concurrency,
            "homes": self.homes,
            "renderer": self.renderer,
            "open_servers": self.servers_on_own_origins,
            "join_codes": self.join_codes,
            "join_limiter": JoinLimiter(
                per_account=self.join_failures_per_account,
                per_address=self.join_failures_per_address,
                window=self.join_failure_window,
            ),
            "join_code_signup": self.join_codes and self.join_code_signup,
            # accounts made per address and hour (every sign-up counts, made or not)
            "signup_limiter": JoinLimiter(
                per_account=self.signups_per_address,
                per_address=self.signups_per_address,
                window=3600.0,
            ),
        }
        # the pages first: their "" (My classes) replaces the API's sign-in answer for
        # browsers and keeps it for API clients
        return page_handlers(deps) + work_handlers(deps) + class_handlers(deps)

    def health_checks(self):
        return {"mongodb": self.store.ping, **super().health_checks()}

    async def on_started(self) -> None:
        self.spawn(self._keep_groups_in_step(), "reconcile")
        if self.cull_interval:
            self.spawn(self.culler.run_forever(self.cull_interval), "cull")
        if self.warm_up_on:
            self.spawn(self.warmer.run_forever(self.warm_interval), "warm-up")

    async def teardown(self) -> None:
        await self.group_sync.wait_background()
        self.renderer.close()
        self.homes.close()
        self.store.close()
        await super().teardown()

    async def reconcile(self) -> bool:
        """One full reconciliation; False (logged) when MongoDB or the hub is down."""
        try:
            report = await self.group_sync.reconcile()
        except Unavailable as e:
            self.log.warning("Group reconciliation postponed: %s (%s)", e, e.detail)
            return False
        except HubAPIError as e:
            self.log.error("Group reconciliation failed: %s", e)
            return False
        self.log.info("Group reconciliation: %s", report.summary())
        return True

    async def _keep_groups_in_step(self) -> None:
        wait = RETRY_FIRST
        while not await self.reconcile():
            await asyncio.sleep(wait)
            wait = min(wait * 2, RETRY_MAX)
        while self.reconcile_interval:
            await asyncio.sleep(self.reconcile_interval)
            await self.reconcile()


main = ClassesApp.launch_instance
