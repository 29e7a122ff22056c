"""ClassroomSpawner: DockerSpawner with Traefik labels, hardening and prompt readiness."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.types import Mount
from docker.utils import kwargs_from_env
from dockerspawner import DockerSpawner
from jupyterhub import orm
from tornado import web
from traitlets import Bool, Dict, Float, Int, List, TraitError, Unicode, default, validate

from common import startpriority
from common.classenv import ClassRefused, class_group, resolve_class
from common.cputhreads import thread_env
from common.hubenv import (
    CONTAINER_PREFIX,
    CPU_LIMIT,
    GATE_PORT,
    HOME_QUOTA,
    HOMES_DIR,
    MEM_LIMIT,
    SERVERS_DOMAIN,
    SINGLEUSER_IMAGE,
    STUDENT_NETWORK,
    TRAEFIK_ENTRYPOINT,
)
from common.images import CatalogueError, catalogue_from_env, check_default, parse_catalogue
from common.landing import may_start_default_server
from common.naming import object_name
from common.settings import EnvSetting, EnvTable, switch, whole
from common.web.nav import role_of

from . import homes
from .btrfs import BtrfsError
from .events import ContainerEvents
from .hardening import check_no_host_paths, hardened_host_config, healthcheck
from .labels import DEPLOYMENT_LABEL, identity_labels, traefik_labels
from .progress import ProgressLog
from .queue import StartQueue
from .readiness import SpawnError, wait_until_ready

#: what a server's own API token may do: report activity, never open the server itself
SERVER_TOKEN_SCOPES = ("users:activity!user",)

HOME = "/home/jovyan"

NO_DEFAULT_SERVER = (
    "Students have no personal server on this hub: your work lives in your class's "
    "server. Open it from My classes."
)


def _gate_default(spawner) -> str:
    return f"http://127.0.0.1:{GATE_PORT.read()}/check"


def _default_image_allowed(environ) -> str | None:
    """The catalogue (``CLASSHUB_IMAGES``, ``CLASSHUB_ALLOWED_IMAGES``) must be valid and
    list the default image (``CLASSHUB_SINGLEUSER_IMAGE``)."""
    image = SINGLEUSER_IMAGE.read(environ=environ)
    try:
        check_default(parse_catalogue(catalogue_from_env(environ, image)), image)
    except CatalogueError as e:
        return str(e)
    return None


#: the spawner's settings from the hub's environment: the @defaults of its traits (its
#: own and DockerSpawner's)
SPAWNER_TABLE = EnvTable(
    (
        SINGLEUSER_IMAGE.of("image"),
        STUDENT_NETWORK.of("network_name"),
        MEM_LIMIT.of("mem_limit"),
        CPU_LIMIT.of("cpu_limit"),
        EnvSetting("pids_limit", "CLASSHUB_PIDS_LIMIT", 512, whole, "a whole number"),
        EnvSetting("kernel_pool", "CLASSHUB_KERNEL_POOL", 1, whole, "a whole number"),
        CONTAINER_PREFIX.of("prefix"),
        CONTAINER_PREFIX.of("route_name_prefix"),
        TRAEFIK_ENTRYPOINT.of("traefik_entrypoint"),
        EnvSetting(
            "student_default_server",
            "CLASSHUB_STUDENT_DEFAULT_SERVER",
            False,
            switch,
            "1, true or yes (on), or 0, false or no (off)",
        ),
        HOMES_DIR.of("homes_root"),
        HOME_QUOTA.of("home_quota"),
        # an empty CLASSHUB_GATE_URL: no gate; per-user origins (CLASSHUB_SERVERS_DOMAIN): no
        # gate either (teachers and admins open servers as their scopes allow)
        EnvSetting(
            "owner_gate_url",
            "CLASSHUB_GATE_URL",
            _gate_default,
            keep_empty=True,
            doc_default=(
                "http://127.0.0.1:<CLASSHUB_GATE_PORT, 8082>/check; empty when "
                "CLASSHUB_SERVERS_DOMAIN is set"
            ),
            off_when=SERVERS_DOMAIN.env,
        ),
    ),
    checks=(_default_image_allowed,),
)


@SPAWNER_TABLE.install
class ClassroomSpawner(DockerSpawner):
    """One hardened container per student and named server, routed by Traefik labels.

    Select it with ``c.JupyterHub.spawner_class = "classroom"``.
    """

    traefik_entrypoint = Unicode(
        config=True,
        help="""Traefik entrypoint that student servers are routed on.

        Must match an entrypoint of Traefik's static configuration (see
        ``classhub-traefik-config``).

        Example: ``c.ClassroomSpawner.traefik_entrypoint = "websecure"``
        """,
    )

    route_name_prefix = Unicode(
        config=True,
        help="""Prefix of Traefik router and service names, shared with the proxy class.

        It is also the deployment name: containers carry it in the
        ``classhub.deployment`` label and Traefik only routes its own deployment's
        containers. Change it only to run two deployments on one Docker engine. 1-31
        lower-case letters, digits or ``-``.

        Example: ``c.ClassroomSpawner.route_name_prefix = "classhub"``
        """,
    )

    @validate("route_name_prefix")
    def _check_route_prefix(self, proposal):
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", proposal.value):
            raise ValueError(
                f"ClassroomSpawner.route_name_prefix={proposal.value!r} must be 1-31 lower-case "
                "letters, digits or '-', e.g. 'classhub'."
            )
        return proposal.value

    owner_gate_url = Unicode(
        config=True,
        help="""Address of the owner gate (``classhub-gate``, authenticator/gate.py) that
        Traefik asks before it forwards a request to a student's server: only the server's
        owner, signed in, gets through. Needed when every server shares the hub's origin
        (no ``CLASSHUB_SERVERS_DOMAIN``): a student controls what their server sends, and a
        page of theirs must never run in anybody else's browser on the hub's origin.
        Empty: no gate. Default: empty with per-user origins (``CLASSHUB_SERVERS_DOMAIN``
        set, whatever ``CLASSHUB_GATE_URL`` says: servers have their own origins, and
        teachers and admins open them as their scopes allow), else from
        ``CLASSHUB_GATE_URL``, else ``http://127.0.0.1:<CLASSHUB_GATE_PORT, 8082>/check``.

        Example: ``c.ClassroomSpawner.owner_gate_url = "http://127.0.0.1:8082/check"``
        """,
    )

    @validate("owner_gate_url")
    def _check_owner_gate_url(self, proposal):
        url = proposal.value
        if url and not re.fullmatch(
            r"http://(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}/[\w/.-]*", url
        ):
            raise ValueError(
                f"ClassroomSpawner.owner_gate_url={url!r} must be the gate on this machine, "
                "such as 'http://127.0.0.1:8082/check' (Traefik and the gate share the host)."
            )
        return url

    images = List(
        config=True,
        help="""The image catalogue: the images students' servers may run, each a dict with
        ``name`` (the Docker image reference), ``display_name`` and ``description`` (what
        teachers see on the class form; the classes service offers the same catalogue).
        Before every start the spawner checks the server's image against it, whatever the
        class record or a ``pre_spawn_hook`` says, so only an admin decides what runs; the
        default image (``image``) must be in it. Every image gets the same hardening.
        Default from ``CLASSHUB_IMAGES`` (the same list as JSON, on one line) and the names
        of ``CLASSHUB_ALLOWED_IMAGES`` (comma-separated); with neither, the default image
        alone.

        Example: ``c.ClassroomSpawner.images = [{"name": "classhub/singleuser:latest",
        "display_name": "Python"}, {"name": "classhub/datascience:latest",
        "display_name": "Data science", "description": "numpy, pandas, matplotlib"}]``
        """,
    )

    @default("images")
    def _default_images(self):
        # CLASSHUB_IMAGES and CLASSHUB_ALLOWED_IMAGES together (common.images; checked at
        # the hub's start by SPAWNER_TABLE's checks), else the default image alone
        try:
            entries = catalogue_from_env(os.environ, self.image)
            return [c.as_json() for c in parse_catalogue(entries, "ClassroomSpawner.images")]
        except CatalogueError as e:
            raise TraitError(str(e)) from None

    @validate("images")
    def _check_images(self, proposal):
        try:
            catalogue = parse_catalogue(proposal.value, "ClassroomSpawner.images")
        except CatalogueError as e:
            raise ValueError(str(e)) from None
        return [c.as_json() for c in catalogue]

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # fixed now, from the configuration: the default (the configured image) must not
        # follow a class's image that _apply_class_environment sets later
        self._catalogue = frozenset(entry["name"] for entry in self.images)

    pids_limit = Int(
        config=True,
        help="""Most processes and threads one student container may run.

        Stops fork bombs from starving the machine; JupyterLab with a few kernels uses
        well under 200. At least 64.

        Example: ``c.ClassroomSpawner.pids_limit = 512``
        """,
    )

    @validate("pids_limit")
    def _check_pids(self, proposal):
        if proposal.value < 64:
            raise ValueError(
                f"ClassroomSpawner.pids_limit={proposal.value} is too low for JupyterLab; "
                "use at least 64 (512 is a good default)."
            )
        return proposal.value

    kernel_pool = Int(
        config=True,
        help="""How many Python kernels each server keeps started ahead (0 to 4; 0: none).
        Opening a notebook then takes a running kernel at once (moved into the notebook's
        folder) instead of starting one: most useful with warm servers, when a class
        signs in together and thirty kernel starts (about half a CPU-second each) would
        queue on the machine. A kernel started ahead is not shown to the student and does
        not count as activity (an unused warm server is still stopped); each costs an
        idle kernel's memory (about 50 MB) within the server's memory limit. Set from
        ``CLASSHUB_KERNEL_POOL``.

        Example: ``c.ClassroomSpawner.kernel_pool = 1``
        """,
    )

    @validate("kernel_pool")
    def _check_kernel_pool(self, proposal):
        if not 0 <= proposal.value <= 4:
            raise ValueError(
                f"ClassroomSpawner.kernel_pool={proposal.value} must be 0 to 4 (1 is enough: "
                "another is started ahead as soon as one is taken)."
            )
        return proposal.value

    tmpfs_size = Unicode(
        "256m",
        config=True,
        help="""Size of the in-memory /tmp of each student container (the root filesystem
        is read-only; the home directory is a persistent volume).

        Example: ``c.ClassroomSpawner.tmpfs_size = "512m"``
        """,
    )

    ready_timeout = Float(
        90.0,
        config=True,
        help="""Seconds a new server may take to answer before the spawn fails cleanly.

        Keep it below ``c.Spawner.start_timeout`` so classhub, not the hub, reports
        the failure and removes the container.

        Example: ``c.ClassroomSpawner.ready_timeout = 90``
        """,
    )

    healthcheck_command = List(
        Unicode(),
        ["/usr/local/bin/classhub-healthcheck"],
        config=True,
        help="""Command Docker runs in the container to decide it is healthy.

        Traefik only routes to healthy containers. The default script ships in the
        ``classhub/singleuser`` image; a custom image must provide it too.

        Example:
        ``c.ClassroomSpawner.healthcheck_command = ["/usr/local/bin/classhub-healthcheck"]``
        """,
    )

    healthcheck_interval = Float(
        0.2,
        config=True,
        help="""Seconds between the start of a container and its first health probe.

        The default probe blocks until the server answers and then sleeps, so this
        short interval costs one probe per ~30 s once a server runs.

        Example: ``c.ClassroomSpawner.healthcheck_interval = 0.2``
        """,
    )

    docker_threads = Int(
        32,
        config=True,
        help="""Threads for Docker API calls, shared by all spawners.

        DockerSpawner runs every Docker call of every user through one thread, which
        serialises concurrent spawns; classhub sizes the pool for a class starting at
        once.

        Example: ``c.ClassroomSpawner.docker_threads = 32``
        """,
    )

    start_concurrency = Int(
        config=True,
        help="""How many student containers may be starting at the same moment.

        Starting JupyterLab is CPU-bound (about one CPU-second). When a whole class
        starts at once, running every start in parallel makes each one slower through
        scheduler and cache contention; a short queue finishes the class sooner. Queued
        students see their place on the spawn page. 0 means no limit. Defaults to the
        number of CPU cores plus one (measured best on 2 cores: docs/performance.md).

        Example: ``c.ClassroomSpawner.start_concurrency = 8``
        """,
    )

    class_servers_only = Bool(
        True,
        config=True,
        help="""Named servers are class environments only.

        A named server ``<code>`` starts only for a member of class ``<code>`` (group
        ``class-<code>``) or one of its teachers (group ``teachers-<code>``), with the
        image, CPU and memory limits the classes service stored on the group. Switch off
        to allow free-form named servers with the default environment.

        Example: ``c.ClassroomSpawner.class_servers_only = False``
        """,
    )

    student_default_server = Bool(
        config=True,
        help="""Whether students get a personal (default) server besides their class servers.

        A student's work lives in their class's server (named server ``<code>``), which
        they land in after sign-in (one class) or start from My classes; a personal server
        would be a container nobody uses. Off (the default): the hub refuses to start a
        student's default server with a 403 and a message that sends them to My classes,
        and no page offers it. Teachers and admins always may start theirs. Environment
        default: ``CLASSHUB_STUDENT_DEFAULT_SERVER`` (``1``/``true``/``yes`` turn it on).

        Example: ``c.ClassroomSpawner.student_default_server = True``
        """,
    )

    homes_root = Unicode(
        config=True,
        help="""Where the btrfs filesystem of student homes is mounted, as the hub sees it
        and as the Docker engine sees it (the same path in both). Each home volume is a
        subvolume there with a size limit (``home_quota``), so a student who fills their
        home is stopped by the kernel and nobody else notices. ``make up`` makes and
        mounts the filesystem (``classhub-homes mount``); the hub needs ``CAP_SYS_ADMIN``
        to make subvolumes and set limits. Empty: homes are plain Docker volumes without
        any size limit (only for a single-user test machine). Set from
        ``CLASSHUB_HOMES_DIR``.

        Example: ``c.ClassroomSpawner.homes_root = "/var/lib/classhub/homes"``
        """,
    )

    @validate("homes_root")
    def _check_homes_root(self, proposal):
        value = proposal.value.rstrip("/") if proposal.value != "/" else "/"
        if value and not os.path.isabs(value):
            raise ValueError(
                f"ClassroomSpawner.homes_root={proposal.value!r} must be an absolute path, "
                "e.g. '/var/lib/classhub/homes' (or empty for homes without a size limit)."
            )
        return value

    home_quota = Unicode(
        config=True,
        help="""The most one home folder may hold (K, M, G, T: powers of 1024). A write
        beyond it fails inside the student's server with "Disk quota exceeded"; the
        student sees their use on the My classes page. Applied when a home is made and
        again at every start of its server, so a change reaches everybody at their next
        start. Each class server has its own home, with its own limit; a
        ``pre_spawn_hook`` may set another value per server. Needs ``homes_root``.

        Example: ``c.ClassroomSpawner.home_quota = "5G"``
        """,
    )

    @validate("home_quota")
    def _check_home_quota(self, proposal):
        try:
            homes.parse_size(proposal.value)
        except ValueError as e:
            raise ValueError(f"ClassroomSpawner.home_quota: {e}") from None
        return proposal.value

    @default("start_concurrency")
    def _default_start_concurrency(self):
        return (os.cpu_count() or 1) + 1

    docker_timeout = Float(
        60.0,
        config=True,
        help="""Seconds any single Docker API call may take.

        Example: ``c.ClassroomSpawner.docker_timeout = 60``
        """,
    )

    extra_env = Dict(
        {},
        config=True,
        help="""Extra environment variables for student containers.

        Never put secrets here: students run arbitrary code and can read them.

        Example: ``c.ClassroomSpawner.extra_env = {"TZ": "Europe/Berlin"}``
        """,
    )

    # ----- DockerSpawner defaults we change -----

    @default("remove")
    def _default_remove(self):
        # containers are disposable; the home volume is what persists
        return True

    @default("use_internal_ip")
    def _default_use_internal_ip(self):
        return True

    @default("pull_policy")
    def _default_pull_policy(self):
        # no registry is assumed (images are built by `make images`), and start() checks
        # the image itself with a message for students, so DockerSpawner need not look again
        return "skip"

    @default("allowed_images")
    def _default_allowed_images(self):
        return [entry["name"] for entry in self.images]

    @default("server_token_scopes")
    def _default_server_token_scopes(self):
        # The server's own JUPYTERHUB_API_TOKEN (in the environment of every process in the
        # container, so in any terminal) may post activity and nothing else. JupyterHub's
        # default adds access:servers!server: the token would open this server from any
        # machine, through any carrier (header, URL, or a cookie signed with the server's
        # cookie secret, which lives in the home volume), and outlive every sign-in
        # session. Browsers open servers with their session's OAuth token, which ends
        # with the session (takeover, logout, an admin's End session).
        return list(SERVER_TOKEN_SCOPES)

    @default("options_form")
    def _default_options_form(self):
        return ""

    @default("options_from_form")
    def _default_options_from_form(self):
        return lambda formdata: {}

    @default("client_kwargs")
    def _default_client_kwargs(self):
        return {"timeout": self.docker_timeout, "max_pool_size": self.docker_threads}

    @validate("volumes")
    def _check_volumes(self, proposal):
        check_no_host_paths(proposal.value)
        return proposal.value

    _executors: dict[int, ThreadPoolExecutor] = {}
    _client_lock = threading.Lock()

    @property
    def client(self):
        """The hub's one Docker client, made once under a lock.

        DockerSpawner's property makes it on first use without a lock: safe with its one
        Docker thread, not with :attr:`executor`'s pool. Two threads' first calls (a fresh
        hub starting several servers: start all, warm-up) made two clients, and setting the
        class attribute the second time released the first client while other threads were
        using the class. CPython 3.11 invalidates a type's attribute cache only after the
        old value is released, and that release ran urllib3's pool finalizers, which let go
        of the GIL: another thread's ``cls._client`` came from the stale cache, a freed
        object, and the hub died with a segfault. Under the lock the attribute is set once.
        """
        with self._client_lock:
            return super().client

    @property
    def executor(self):
        """A Docker call pool sized for concurrency (DockerSpawner's has one thread)."""
        pool = self._executors.get(self.docker_threads)
        if pool is None:
            pool = ThreadPoolExecutor(self.docker_threads, thread_name_prefix="classhub-docker")
            self._executors[self.docker_threads] = pool
        return pool

    _events: dict[str, ContainerEvents] = {}
    _start_queues: dict[int, StartQueue] = {}

    def start_queue(self) -> StartQueue | None:
        """The hub-wide start queue (``None`` when ``start_concurrency`` is 0)."""
        if self.start_concurrency <= 0:
            return None
        queue = self._start_queues.get(self.start_concurrency)
        if queue is None:
            queue = StartQueue(self.start_concurrency)
            self._start_queues[self.start_concurrency] = queue
        return queue

    def _queued(self, ahead: int) -> None:
        """A progress event each time this start's place in the start queue changes."""
        self._progress(
            10,
            "The server is starting many environments; you are in the queue"
            f" ({ahead} ahead of you)",
        )

    def _background_start(self) -> bool:
        """Whether the hub API call that started this server marked it as background
        work (``common.startpriority``): it then waits behind students' own starts."""
        handler = getattr(self, "handler", None)
        request = getattr(handler, "request", None)
        if request is None:
            return False
        return request.headers.get(startpriority.HEADER, "") == startpriority.BACKGROUND

    def container_events(self) -> ContainerEvents:
        """The shared Docker event follower of this deployment."""
        label = f"{DEPLOYMENT_LABEL}={self.route_name_prefix}"
        events = self._events.get(label)
        if events is None:
            kwargs = {**kwargs_from_env(), **self.client_kwargs, "timeout": None}
            kwargs.pop("max_pool_size", None)
            events = ContainerEvents(
                lambda: docker.APIClient(version="auto", **kwargs), label, self.log
            )
            self._events[label] = events
        return events

    @default("object_name")
    def _object_name_default(self):
        return object_name(self.prefix, "srv", self.user.name, self.name or "")

    @property
    def home_volume(self) -> str:
        """Persistent home volume of this student and server."""
        return object_name(self.prefix, "home", self.user.name, self.name or "")

    # ----- progress events -----

    _progress_log: ProgressLog | None = None

    def _current_progress(self) -> ProgressLog:
        """The log of the spawn in progress (a new one once the last spawn finished)."""
        if self._progress_log is None or self._progress_log.finished:
            self._progress_log = ProgressLog()
        return self._progress_log

    def _progress(self, percent: int, message: str) -> None:
        self._current_progress().add(percent, message)

    async def progress(self):
        """Yield spawn events for the spawn page as they happen."""
        async for event in self._current_progress().stream():
            yield event

    # ----- hooks -----

    def run_pre_spawn_hook(self):
        # the class environment first, so a deployment's own pre_spawn_hook sees it
        self._apply_class_environment()
        return super().run_pre_spawn_hook()

    def _apply_class_environment(self) -> None:
        if not self.name:
            self._check_default_server()
            return
        if not self.class_servers_only:
            return
        group = orm.Group.find(self.user.db, class_group(self.name))
        try:
            env = resolve_class(
                self.name,
                member_of={g.name for g in self.user.orm_user.groups},
                group_properties=group.properties if group is not None else None,
                is_admin=bool(self.user.admin),
            )
        except ClassRefused as e:
            raise SpawnError(str(e), status_code=403) from None
        self.image = env.image
        # named in the server's environment: classhub's JupyterLab extension shows the
        # class's name in its title, top bar and Class panel (not a secret)
        self._class_env = env
        if env.cpu_limit:
            self.cpu_limit = env.cpu_limit
        if env.mem_limit:
            self.mem_limit = env.mem_limit
        self.log.info(
            "Starting %s with class %s's environment (%s)", self._log_name, env.code, env.image
        )

    def _check_default_server(self) -> None:
        roles = [r.name for r in self.user.orm_user.roles]
        role = role_of(admin=bool(self.user.admin), roles=roles)
        if not may_start_default_server(role, student_default_server=self.student_default_server):
            raise SpawnError(NO_DEFAULT_SERVER, status_code=403)

    def get_env(self):
        env = super().get_env()
        env.update(self.extra_env)
        # numpy & co. start one thread per core of the machine; as many as the limit
        # (common/cputhreads.py), unless the admin's extra_env says otherwise
        for name, value in thread_env(self.cpu_limit).items():
            env.setdefault(name, value)
        env["CLASSHUB_PORT"] = str(self.port)
        # kernels started ahead (classhub_singleuser/kernelpool.py)
        env["CLASSHUB_KERNEL_POOL"] = str(self.kernel_pool)
        # tokens in page URLs stay ignored (JupyterHub's default, pinned here)
        env["JUPYTERHUB_ALLOW_TOKEN_IN_URL"] = "0"
        env.pop("JUPYTER_IMAGE_SPEC", None)
        klass = getattr(self, "_class_env", None)
        if klass is not None and klass.code == self.name:
            env["CLASSHUB_CLASS_CODE"] = klass.code
            env["CLASSHUB_CLASS_NAME"] = klass.name
        return env

    def _identity_labels(self) -> dict[str, str]:
        """Who and what this server is (clean-up, the Sessions page, the homes)."""
        return identity_labels(
            user=self.user.name,
            server=self.name or "",
            routespec=self.proxy_spec,
            deployment=self.route_name_prefix,
        )

    def _traefik_labels(self) -> dict[str, str]:
        """Traefik's route to this server, behind the owner gate."""
        return traefik_labels(
            routespec=self.proxy_spec,
            port=self.port,
            network=self.network_name,
            entrypoint=self.traefik_entrypoint,
            name_prefix=self.route_name_prefix,
            gate_url=self.owner_gate_url,
        )

    def _extra_create_kwargs(self) -> dict:
        labels = {**self._identity_labels(), **self._traefik_labels()}
        return {
            "labels": labels,
            "user": "1000:100",
            "working_dir": HOME,
            "healthcheck": healthcheck(
                self.healthcheck_command,
                interval=self.healthcheck_interval,
                start_timeout=self.ready_timeout,
            ),
        }

    def _extra_host_config(self) -> dict:
        cfg = hardened_host_config(
            pids_limit=self.pids_limit, mem_limit=self.mem_limit, tmpfs_size=self.tmpfs_size
        )
        # keep a dead container until we have read why it died; stop() removes it
        cfg["auto_remove"] = False
        cfg["mounts"] = [Mount(target=HOME, source=self.home_volume, type="volume")]
        return cfg

    @default("extra_create_kwargs")
    def _default_extra_create_kwargs(self):
        return lambda spawner: spawner._extra_create_kwargs()

    @default("extra_host_config")
    def _default_extra_host_config(self):
        return lambda spawner: spawner._extra_host_config()

    def _check_user_options(self) -> None:
        unknown = sorted(set(self.user_options or {}))
        if unknown:
            raise web.HTTPError(
                400,
                "classhub servers take no options; remove " + ", ".join(map(repr, unknown)),
            )

    async def _check_image(self) -> None:
        """The image must be in the catalogue (and in ``allowed_images``, when an admin
        narrowed that further), installed, and declare no volumes: an anonymous volume
        would be writable storage beside the read-only root, outside the home's quota."""
        allowed = self._get_allowed_images()
        if self.image not in self._catalogue or (
            allowed != "*" and self.image not in (allowed or {})
        ):
            self.log.warning(
                "Refused to start %s with image %r: not in the image catalogue",
                self._log_name,
                self.image,
            )
            raise SpawnError(
                f"The image {self.image!r} is not on this hub's list of allowed images. "
                "An admin must add it to the image catalogue (CLASSHUB_IMAGES, "
                "ClassroomSpawner.images) or choose another image for the class.",
                status_code=403,
            )
        try:
            info = await self.docker("inspect_image", self.image)
        except ImageNotFound:
            raise SpawnError(
                f"The environment image {self.image!r} is not installed on this server. "
                "An admin must build it (make images) before students can start."
            ) from None
        self._image_id = info.get("Id", "")
        volumes = sorted((info.get("Config") or {}).get("Volumes") or {})
        if volumes:
            raise SpawnError(
                f"The image {self.image!r} declares volumes ({', '.join(volumes)[:200]}), "
                "which would give students storage outside their home folder's limit. An "
                "admin must rebuild it without VOLUME instructions."
            )

    #: the checked image's ID (``sha256:...``), set by ``_check_image``
    _image_id = ""

    async def _inspect_state(self) -> dict:
        try:
            return await self.docker("inspect_container", self.object_id)
        except NotFound:
            return {"State": {"Running": False, "ExitCode": "unknown (container vanished)"}}

    async def _volume_info(self) -> dict | None:
        try:
            return await self.docker("inspect_volume", self.home_volume)
        except NotFound:
            return None

    async def _volume_exists(self) -> bool:
        return await self._volume_info() is not None

    async def _in_pool(self, fn, *args):
        """Run a blocking call (btrfs ioctls) in the spawner's thread pool."""
        return await asyncio.wrap_future(self.executor.submit(fn, *args))

    async def _prepare_home(self) -> bool:
        """Make the home volume ready before the container is created; True when it was
        made now (so a failed first start removes it again).

        With ``homes_root``: a new home is a subvolume with its size limit, and the Docker
        volume a bind of it; an existing bind gets its limit again. A plain volume from
        before (not yet moved by ``classhub-homes migrate``) is used as it is, without a
        limit, and the log says so."""
        info = await self._volume_info()
        if not self.homes_root:
            return info is None
        path = homes.subvolume_path(self.homes_root, self.home_volume)
        if info is not None:
            kind = homes.volume_kind(info, path)
            if kind != homes.BIND:
                self.log.warning(
                    "Home volume %s of %s has no size limit (%s); %s",
                    self.home_volume,
                    self._log_name,
                    "a plain volume from before"
                    if kind == homes.PLAIN
                    else "not a bind of " + path,
                    "`classhub-homes migrate` (make up) moves it while its server is stopped"
                    if kind == homes.PLAIN
                    else "it is left as it is",
                )
                return False
        quota = homes.parse_size(self.home_quota)
        try:
            _, created = await self._in_pool(
                homes.ensure_home, self.homes_root, self.home_volume, quota
            )
        except (homes.HomeError, OSError) as e:  # BtrfsError is an OSError
            self.log.error("Home folder of %s not ready: %s", self._log_name, e)
            raise SpawnError(
                "Your home folder could not be prepared: the storage for home folders is "
                "not available. Tell your teacher or an administrator (the hub log says why)."
            ) from None
        if info is None:
            await self.docker(
                "create_volume",
                name=self.home_volume,
                driver="local",
                driver_opts=homes.volume_options(path),
                labels={DEPLOYMENT_LABEL: self.route_name_prefix, "classhub.home": "btrfs"},
            )
            self.log.info(
                "Home %s of %s: subvolume %s, limit %s",
                self.home_volume,
                self._log_name,
                path,
                self.home_quota,
            )
        return created

    async def home_usage(self) -> dict | None:
        """``{"used", "quota", "limited"}`` of this server's home (bytes; ``used`` and
        ``quota`` are None when unknown or unlimited), or None when it has no home yet."""
        usage = None
        if self.homes_root:
            try:
                usage = await self._in_pool(homes.home_usage, self.homes_root, self.home_volume)
            except BtrfsError as e:
                self.log.warning("Cannot read the home usage of %s: %s", self._log_name, e)
        if usage is None:
            if not await self._volume_exists():
                return None
            usage = homes.HomeUsage(None, None)
        return {"volume": self.home_volume, **usage.as_json()}

    async def _cleanup_failed_start(self, remove_volume: bool) -> None:
        try:
            await self.docker("remove_container", self.object_name, force=True, v=False)
        except APIError as e:
            if e.status_code not in (404, 409):
                raise
        self.object_id = ""
        if remove_volume:
            try:
                await self.docker("remove_volume", self.home_volume, force=True)
            except NotFound:
                pass
            if self.homes_root:
                try:
                    await self._in_pool(homes.remove_home, self.homes_root, self.home_volume)
                except BtrfsError as e:
                    self.log.warning("Home %s left behind: %s", self.home_volume, e)

    # ----- removing a person's homes (the admin's homes API, never delete_forever) -----

    async def home_servers(self) -> list[str]:
        """The server names (``""``: the default server) of every home volume of this
        spawner's user that exists: the user's servers, and each volume on Docker whose
        name is exactly a home name of this user (a class server removed since)."""
        user = self.user.name
        base = object_name(self.prefix, "home", user, "").rsplit("-", 1)[0] + "-"
        candidates = set(self.user.orm_user.orm_spawners.keys()) | {""}
        listed = await self.docker("volumes", filters={"name": base})
        for info in (listed or {}).get("Volumes") or []:
            name = info.get("Name", "")
            if not name.startswith(base):
                continue
            rest = name[len(base) :]
            # "<digest>" (the default server) or "<folded server name>-<digest>"
            candidates.add(rest.rsplit("-", 1)[0] if "-" in rest else "")
        found = []
        for server in sorted(candidates):
            volume = object_name(self.prefix, "home", user, server)
            try:
                await self.docker("inspect_volume", volume)
            except NotFound:
                continue
            found.append(server)
        return found

    async def remove_home_of(self, server: str) -> str | None:
        """Remove the home volume of this spawner's user's server ``server`` for good (the
        Docker volume, and its btrfs subvolume with its quota group): the name of the
        volume removed, None when there was none. Called only by the homes API's admin-only
        ``DELETE`` (hub/homes_api.py), after its confirmation: never from
        :meth:`delete_forever`, which JupyterHub also runs when a named server is removed
        (something a teacher's scopes allow)."""
        volume = object_name(self.prefix, "home", self.user.name, server)
        removed = None
        try:
            await self.docker("remove_volume", volume, force=True)
            removed = volume
        except NotFound:
            pass
        except APIError as e:  # in use by a container, Docker down
            self.log.error("Home volume %s not removed: %s", volume, e)
            raise web.HTTPError(
                503, f"The home {volume} could not be removed (Docker: {e.explanation}); try again."
            ) from None
        if self.homes_root:
            try:
                if await self._in_pool(homes.remove_home, self.homes_root, volume):
                    removed = volume
            except BtrfsError as e:
                self.log.error("Home subvolume %s not removed: %s", volume, e)
                raise web.HTTPError(
                    503, f"The home {volume} could not be removed from the homes filesystem."
                ) from None
        if removed:
            self.log.info("Home %s of %s removed", volume, self.user.name)
        return removed

    async def rename(self, old_name, new_name):
        """Refuse renaming (JupyterHub 6's ``PATCH /users/<name>/servers/<server>``,
        allowed by ``start:servers``): a class server's name is its class code, and a
        teacher holds ``servers!server=<student>/<code>`` for exactly that name."""
        raise web.HTTPError(
            400,
            "classhub servers cannot be renamed: a class server's name is its class code.",
        )

    def _follow_events(self) -> ContainerEvents | None:
        """Start following this deployment's container events (the readiness wait's
        wake-ups)."""
        events = self.container_events()
        events.start()
        return events

    async def _wait_ready(self, events: ContainerEvents | None) -> None:
        """Wait until the new container is healthy, or raise why it is not."""
        container_id = self.object_id
        seen = 0

        async def next_event(timeout: float) -> None:
            nonlocal seen
            await events.wait(container_id, seen, timeout)
            seen = events.seen(container_id)

        await wait_until_ready(
            inspect=self._inspect_state,
            next_event=next_event,
            timeout=self.ready_timeout,
            mem_limit=self.mem_limit,
        )

    async def start(self):
        progress = self._current_progress()
        try:
            self._check_user_options()
            self._progress(5, "Checking your environment image")
            await self._check_image()
            new_volume = await self._prepare_home()
            events = self._follow_events()
            queue = self.start_queue()
            slot = queue.slot(self._queued, background=self._background_start()) if queue else None
            async with slot or contextlib.nullcontext():
                try:
                    self._progress(
                        15, "Creating your server" + (" and home folder" if new_volume else "")
                    )
                    ip, port = await super().start()
                    self._progress(40, "Starting JupyterLab")
                    await self._wait_ready(events)
                except BaseException as e:
                    self.log.warning(
                        "Spawn of %s failed (%s); removing its container", self._log_name, e
                    )
                    await self._cleanup_failed_start(remove_volume=new_volume)
                    if isinstance(e, APIError):
                        raise SpawnError(
                            f"Docker could not start your server: {e.explanation or e}"
                        ) from e
                    raise
            self._progress(90, "Your server is ready; connecting you")
            return ip, port
        finally:
            progress.finish()
