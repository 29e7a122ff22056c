"""SwarmClassroomSpawner: ClassroomSpawner on a Docker Swarm, one service per student server.

dockerspawner's ``SwarmSpawner`` makes a service per server; this class gives it the same
hardening, labels, Traefik rules, image catalogue and class environments as the
single-machine spawner, and:

- endpoint mode ``dnsrr`` (the routing mesh and virtual IPs need IPVS, which not every
  kernel has; Traefik's Swarm provider routes to the task's own address);
- placement on the student nodes (``swarm_constraints``) with the server's memory limit
  *reserved*, so Swarm never puts a server on a node without that much unreserved memory
  and, among the nodes that have it, spreads servers (its scheduler prefers the node with
  the fewest tasks); ``swarm_spread`` adds placement preferences over node labels;
- homes that follow their student from node to node through the S3 store
  (``spawner/homesync.py``): saved by a one-shot service on the old node at stop, restored
  in the new container before its server starts.

Select it with ``c.JupyterHub.spawner_class = "classroom-swarm"``. The pure service
specification is :func:`service_spec`; the class only feeds it and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time

from docker.errors import APIError, NotFound
from docker.types import (
    ContainerSpec,
    EndpointSpec,
    Healthcheck,
    Mount,
    Placement,
    Resources,
    RestartPolicy,
    ServiceMode,
    TaskTemplate,
)
from dockerspawner import SwarmSpawner
from minio.error import MinioException
from traitlets import Bool, Float, List, Unicode, default, validate
from urllib3.exceptions import HTTPError

from common.errors import BadRequest, Conflict, Unavailable
from common.naming import object_name
from common.settings import EnvSetting, EnvTable, switch
from common.units import parse_size

from . import homesync
from .hardening import healthcheck
from .labels import identity_labels
from .readiness import SpawnError
from .spawner import HOME, ClassroomSpawner

#: Swarm service names are DNS labels: at most 63 characters; ``-save`` is added for the
#: one-shot save service of a home
MAX_SERVICE_NAME = 58
#: task states after which a task never runs again
_ENDED = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}


def service_name(prefix: str, user: str, server: str) -> str:
    """The service name of ``(user, server)``: :func:`common.naming.object_name`, cut to
    :data:`MAX_SERVICE_NAME` characters with its hash of the exact pair kept."""
    name = object_name(prefix, "srv", user, server)
    if len(name) <= MAX_SERVICE_NAME:
        return name
    digest = name.rsplit("-", 1)[1]
    return name[: MAX_SERVICE_NAME - len(digest) - 1].rstrip("-") + "-" + digest


def swarm_labels(labels: dict[str, str], network: str) -> dict[str, str]:
    """Traefik's Docker-provider labels as its Swarm provider reads them (the network
    label has the provider's own name; rules, gate and port are the same)."""
    out = dict(labels)
    if "traefik.docker.network" in out:
        out["traefik.swarm.network"] = out.pop("traefik.docker.network")
    return out


def hardened_container(
    *,
    image: str,
    command: list[str] | None,
    args: list[str],
    env: dict[str, str],
    labels: dict[str, str],
    mounts: list,
    health: dict | None,
    tmpfs_size: str,
) -> ContainerSpec:
    """The container of a student's (or a save) task, hardened as
    :func:`spawner.hardening.hardened_host_config` hardens a container: no capability,
    read-only root, private /tmp and /run, an init, uid 1000. (``no-new-privileges``,
    private IPC and no swap are node settings under Swarm: see the admin guide.)"""
    tmpfs = [
        Mount("/tmp", None, type="tmpfs", tmpfs_size=parse_size(tmpfs_size), tmpfs_mode=0o1777),
        Mount("/run", None, type="tmpfs", tmpfs_size=16 << 20, tmpfs_mode=0o755),
    ]
    spec = ContainerSpec(
        image=image,
        command=command,
        args=args,
        env=env,
        labels=labels,
        mounts=[*mounts, *tmpfs],
        user="1000:100",
        workdir=HOME,
        read_only=True,
        init=True,
        cap_drop=["ALL"],
        healthcheck=Healthcheck(**health) if health else None,
        stop_grace_period=10 * 1_000_000_000,
    )
    return spec


def service_spec(
    *,
    name: str,
    container: ContainerSpec,
    labels: dict[str, str],
    network: str,
    mem_limit: int | None,
    cpu_limit: float | None,
    pids_limit: int,
    reserve_memory: bool,
    constraints: list[str],
    spread: list[str],
    one_shot: bool = False,
) -> dict:
    """Keyword arguments of ``docker.APIClient.create_service`` for one task."""
    resources = Resources(
        mem_limit=mem_limit or None,
        cpu_limit=int(cpu_limit * 1e9) if cpu_limit else None,
        mem_reservation=mem_limit if (reserve_memory and mem_limit) else None,
    )
    # API 1.41 (Docker 20.10): the process limit of each task
    resources.setdefault("Limits", {})["Pids"] = int(pids_limit)
    placement = Placement(
        constraints=list(constraints) or None,
        preferences=[("spread", label) for label in spread] or None,
    )
    task = TaskTemplate(
        container_spec=container,
        resources=resources,
        networks=[network] if network else [],
        placement=placement,
        restart_policy=RestartPolicy(
            condition="none" if one_shot else "on-failure", delay=1_000_000_000, max_attempts=3
        ),
    )
    return {
        "task_template": task,
        "name": name,
        "labels": labels,
        "mode": ServiceMode("replicated", 1),
        "endpoint_spec": EndpointSpec(mode="dnsrr"),
    }


def task_address(task: dict, network: str) -> str | None:
    """The address of a Swarm task on ``network`` (by name; with or without the stack's
    prefix is the caller's business): what Traefik's Swarm provider routes to for a
    ``dnsrr`` service, so the hub's route check and readiness check use the same."""
    for attachment in task.get("NetworksAttachments") or []:
        if (attachment.get("Network") or {}).get("Spec", {}).get("Name") != network:
            continue
        for address in attachment.get("Addresses") or []:
            return address.split("/", 1)[0]
    return None


SWARM_TABLE = EnvTable(
    (
        EnvSetting(
            "homes_sync",
            "CLASSHUB_SWARM_HOMES_SYNC",
            False,
            switch,
            "1, true or yes (on), or 0, false or no (off)",
        ),
        EnvSetting("homes_s3_url", "CLASSHUB_SWARM_HOMES_S3_URL", ""),
        EnvSetting("homes_s3_access_key", "CLASSHUB_SWARM_HOMES_S3_ACCESS_KEY", ""),
        EnvSetting("homes_s3_secret_key", "CLASSHUB_SWARM_HOMES_S3_SECRET_KEY", "", sensitive=True),
        EnvSetting("homes_s3_bucket", "CLASSHUB_SWARM_HOMES_S3_BUCKET", "classhub-homes"),
    )
)


@SWARM_TABLE.install
class SwarmClassroomSpawner(ClassroomSpawner, SwarmSpawner):
    """ClassroomSpawner on a Docker Swarm: one hardened service per student server.

    Select it with ``c.JupyterHub.spawner_class = "classroom-swarm"``.
    """

    swarm_constraints = List(
        Unicode(),
        ["node.role==worker"],
        config=True,
        help="""Swarm placement constraints of students' servers: which nodes may run
        them. The default keeps them off the manager, which runs the hub and the data
        services. Swarm places each server on an eligible node with enough unreserved
        memory (``reserve_memory``), preferring the node with the fewest tasks.

        Example:
        ``c.SwarmClassroomSpawner.swarm_constraints = ["node.labels.classhub.role==students"]``
        """,
    )

    swarm_spread = List(
        Unicode(),
        [],
        config=True,
        help="""Node labels to spread students' servers over evenly (Swarm placement
        preferences ``spread=<label>``), e.g. a rack or zone label, so one failed rack
        stops only its share of a class. Empty: Swarm's own spreading by task count.

        Example: ``c.SwarmClassroomSpawner.swarm_spread = ["node.labels.zone"]``
        """,
    )

    reserve_memory = Bool(
        True,
        config=True,
        help="""Reserve each server's memory limit on its node. Swarm then never places a
        server on a node whose unreserved memory is smaller than that limit (a new
        server waits, pending, and the spawn fails with Swarm's reason after
        ``ready_timeout``), so a node never promises more memory than it has. Off: Swarm
        places by task count alone and a busy node can run out of memory.

        Example: ``c.SwarmClassroomSpawner.reserve_memory = True``
        """,
    )

    homes_sync = Bool(
        config=True,
        help="""Carry each home between Swarm nodes through the S3 store: saved when its
        server stops (a one-shot service on the node that ran it packs it and uploads it
        with a presigned URL), restored in the next container before the server starts,
        on whichever node that is. Without it a home stays in a Docker volume on the node
        that made it, and a server placed on another node starts with an empty home.
        Costs a pack and upload at every stop and, on a new node, a download at start.
        Set from ``CLASSHUB_SWARM_HOMES_SYNC``.

        Example: ``c.SwarmClassroomSpawner.homes_sync = True``
        """,
    )

    homes_s3_url = Unicode(
        config=True,
        help="""Address of the S3 store that holds the homes, as the hub AND the
        containers on every node reach it (presigned URLs are signed for this host).
        Set from ``CLASSHUB_SWARM_HOMES_S3_URL``.

        Example: ``c.SwarmClassroomSpawner.homes_s3_url = "http://s3:8333"``
        """,
    )

    @validate("homes_s3_url")
    def _check_homes_s3_url(self, proposal):
        url = proposal.value
        if url and not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?/?", url):
            raise ValueError(
                f"SwarmClassroomSpawner.homes_s3_url={url!r} must be an S3 address such as "
                "'http://s3:8333' (scheme, host and port only)."
            )
        return url.rstrip("/")

    homes_s3_access_key = Unicode(
        config=True,
        help="""S3 access key of the hub's identity for saved homes (only the hub holds
        it; containers get presigned URLs). Set from
        ``CLASSHUB_SWARM_HOMES_S3_ACCESS_KEY``.

        Example: ``c.SwarmClassroomSpawner.homes_s3_access_key = "classhub-homes"``
        """,
    )

    homes_s3_secret_key = Unicode(
        config=True,
        help="""S3 secret key that goes with ``homes_s3_access_key``. Set from
        ``CLASSHUB_SWARM_HOMES_S3_SECRET_KEY``.

        Example: ``c.SwarmClassroomSpawner.homes_s3_secret_key = "..."``
        """,
    )

    homes_s3_bucket = Unicode(
        config=True,
        help="""Bucket of the saved homes (made when missing); each home keeps its newest
        good copy under ``homes/<home volume>/<generation>.tar.gz``. Set from
        ``CLASSHUB_SWARM_HOMES_S3_BUCKET``.

        Example: ``c.SwarmClassroomSpawner.homes_s3_bucket = "classhub-homes"``
        """,
    )

    homes_save_timeout = Float(
        300.0,
        config=True,
        help="""Seconds the save of a home at stop may take (pack and upload). A save that
        takes longer is abandoned: the previous copy stays current and the home's newer
        files stay only on the old node.

        Example: ``c.SwarmClassroomSpawner.homes_save_timeout = 300``
        """,
    )

    @validate("owner_gate_url")
    def _check_owner_gate_url(self, proposal):
        # under Swarm Traefik reaches the gate by its service name on their network
        url = proposal.value
        if url and not re.fullmatch(r"http://[a-z0-9][a-z0-9.-]*:\d{1,5}/[\w/.-]*", url):
            raise ValueError(
                f"SwarmClassroomSpawner.owner_gate_url={url!r} must be the gate as Traefik "
                "reaches it, such as 'http://gate:8082/check'."
            )
        return url

    @default("object_name")
    def _object_name_default(self):
        return service_name(self.prefix, self.user.name, self.name or "")

    # ----- the service

    def _place(self) -> homesync.S3Place | None:
        if not self.homes_sync:
            return None
        if not (self.homes_s3_url and self.homes_s3_access_key and self.homes_s3_secret_key):
            raise SpawnError(
                "Home folders cannot be brought to this server's node: the hub's settings "
                "for them are incomplete. Tell an administrator (CLASSHUB_SWARM_HOMES_S3_*)."
            )
        return homesync.S3Place(
            self.homes_s3_url,
            self.homes_s3_access_key,
            self.homes_s3_secret_key,
            self.homes_s3_bucket,
        )

    _restore_env: dict[str, str] | None = None

    async def _prepare_home(self) -> bool:
        """Under Swarm a home is a volume on whichever node runs the server; with
        ``homes_sync`` the container restores the newest saved copy itself."""
        self._restore_env = None
        place = self._place()
        if place is None:
            return False
        if self.home_node:
            await self._bring_home_back(self.home_node)
        if self.home_node:
            return False  # the start runs on that node, where the home is newest
        try:
            generation = await self._in_pool(homesync.latest_generation, place, self.home_volume)
            url = (
                await self._in_pool(homesync.presign, place, "GET", self.home_volume, generation)
                if generation
                else ""
            )
        except Exception as e:  # minio's S3Error, urllib3's errors: the store is down
            self.log.error("Saved home of %s not readable: %s", self._log_name, e)
            raise SpawnError(
                "Your home folder could not be fetched from storage. Try again in a minute; "
                "if it keeps failing, tell your teacher or an administrator."
            ) from None
        self._restore_env = {
            "CLASSHUB_HOME_RESTORE_URL": url,
            "CLASSHUB_HOME_GENERATION": str(generation),
        }
        return False

    async def _node_out_of_service(self, node: str) -> str:
        """ "" when ``node`` can run tasks, else why not ("gone", "drained or down")."""
        try:
            info = await self.docker("inspect_node", node)
        except NotFound:
            return "gone"
        ready = (
            info.get("Spec", {}).get("Availability") == "active"
            and info.get("Status", {}).get("State") == "ready"
        )
        return "" if ready else "drained or down"

    async def _bring_home_back(self, node: str) -> None:
        """The last stop could not save the home on ``node`` (or a service wrote into it
        there since, :meth:`locate_home`): save it now (the store may be back), else start
        there. A node that cannot run it stops the start with a message, never a start
        elsewhere from an older copy."""
        why = await self._node_out_of_service(node)
        if why:
            self.log.error(
                "Home of %s is newest on node %s, which is %s", self._log_name, node, why
            )
            raise SpawnError(
                "Your newest files are still on a machine of the cluster that is out of "
                "service (they could not be saved when your server last stopped). Your "
                "server will start once an administrator brings that machine back; tell "
                "your teacher or an administrator."
            )
        if time.monotonic() < self._write_lease_until:
            # a service's helper may be writing into the home there right now (feedback,
            # material): start beside it, as on one machine, instead of saving half of it
            self.log.info("Starting %s on node %s, where a service writes", self._log_name, node)
            return
        self._progress(8, "Saving your home folder from where it was last used")
        if await self._save_home(node):
            self.home_node = ""
        else:
            self.log.warning("Starting %s on node %s, where its home is", self._log_name, node)

    # ----- where a home is, for the services' helper services (hub/homes_api.py)

    #: seconds after :meth:`locate_home` for writing during which a start runs on that
    #: node without first saving the home (the helper may still be writing into it)
    WRITE_LEASE = 1800.0
    _write_lease_until = 0.0
    _loaded: tuple[int, str] | None = None  # (generation, node) the last read restored
    _locate_lock: asyncio.Lock | None = None

    async def locate_home(self, *, write: bool) -> str:
        """The ID of the node whose volume holds this server's newest home, for a helper
        service of the files or grades service that reads (``write=False``) or writes it;
        "" when the home was never made. A running server's home is on its task's node; a
        stopped one's is on ``home_node`` when set, else it is brought from the S3 store
        onto an eligible node by a one-shot service (the container's own restore). After a
        write the node is remembered as ``home_node``: the next start saves the home from
        there first (or runs there), so nothing the service wrote is replaced by the older
        copy in the store. Raises :class:`HomeBusy` (starting or stopping),
        :class:`HomeUnreachable` (a node out of service, the store down, Docker's
        refusal) with a message for the teacher."""
        async with self._home_lock():
            try:
                node, running = await self._locate(write)
            except (APIError, OSError, MinioException, HTTPError) as e:
                self.log.error("Home of %s not located: %s", self._log_name, e)
                raise HomeUnreachable(
                    f"The home folder of {self.user.name} could not be reached on the cluster"
                    " right now; try again in a minute."
                ) from None
            if write and node:
                # a helper writes there now: a start within the lease runs beside it, a
                # stop keeps the home pinned to that node (the write may land after the
                # stop's save), and the start after the lease saves it from there first
                self._write_lease_until = time.monotonic() + self.WRITE_LEASE
                if not running:
                    self.home_node = node
            return node

    def _home_lock(self) -> asyncio.Lock:
        """Held by a locate, a start, a stop and a backup's save: a server never starts
        from the store's copy while a locate brings that copy onto another node for a
        helper to write into, and a backup never takes the store's copy of a home while
        its stop is still saving a newer one."""
        if self._locate_lock is None:
            self._locate_lock = asyncio.Lock()
        return self._locate_lock

    async def start(self):
        async with self._home_lock():
            return await super().start()

    async def _locate(self, write: bool) -> tuple[str, bool]:
        """``(node, running)``: the node of the home ("" when never made) and whether it
        is a running server's (see :meth:`locate_home`)."""
        task = await self._task()
        if task is not None:
            # a stopped server has no service (the stop removes it): any task is a server
            # running, starting, stopping or crashed, whose newest files are on its node
            status = task.get("Status", {}).get("State")
            if task.get("DesiredState") != "running" or status != "running":
                raise HomeBusy(
                    f"The class server of {self.user.name} is starting, stopping or "
                    "restarting; try again in a minute."
                )
            return task["NodeID"], True
        if self.home_node:
            why = await self._node_out_of_service(self.home_node)
            if why:
                raise HomeUnreachable(
                    f"The newest files of {self.user.name} are on a machine of the cluster "
                    f"that is {why}; an administrator must bring it back first."
                )
            return self.home_node, False
        place = self._place()
        if place is None:
            raise HomeUnreachable(
                "Home folders do not follow their student on this cluster (homes_sync is "
                "off), so classhub cannot tell on which machine this one is."
            )
        generation = await self._in_pool(homesync.latest_generation, place, self.home_volume)
        if not generation:
            return "", False
        if self._loaded and self._loaded[0] == generation:
            if not await self._node_out_of_service(self._loaded[1]):
                return self._loaded[1], False
        if not await self._ensure_image_id():
            raise HomeUnreachable(f"The image {self.image} is missing on the cluster's manager.")
        url = await self._in_pool(homesync.presign, place, "GET", self.home_volume, generation)
        env = {"CLASSHUB_HOME_RESTORE_URL": url, "CLASSHUB_HOME_GENERATION": str(generation)}
        state, why, node = await self._one_shot(
            "load", homesync.RESTORE, env, list(self.swarm_constraints), self.homes_save_timeout
        )
        if state != "complete" or not node:
            self.log.error(
                "Home of %s not brought onto a node (%s %s)",
                self._log_name,
                state or "timed out",
                why,
            )
            raise HomeUnreachable(
                f"The home folder of {self.user.name} could not be brought onto a machine of "
                "the cluster right now; try again in a minute."
            )
        self.log.info(
            "Brought the home of %s (generation %d) onto node %s", self._log_name, generation, node
        )
        self._loaded = (generation, node)
        return node, False

    # ----- backups (hub/backup_api.py): every home into the store now, and a restore

    async def save_home_now(self) -> dict:
        """For a backup: make the store hold this server's newest home. A running server's
        home is saved from its node now (as at a stop, while the student works: each file
        as it is at the moment it is read); a stopped one's whose newest files are on a
        node (``home_node``) is saved from there; any other's newest copy is in the store
        already. ``{"where": "running"|"node"|"store", "generation", "saved", "error"}``;
        never raises for one home (the backup goes on with the others)."""
        place = self._place()
        if place is None:
            return {"where": "", "generation": 0, "saved": False, "error": "homes_sync is off"}
        async with self._home_lock():
            try:
                task = await self._task()
                if task is not None:
                    state = task.get("Status", {}).get("State")
                    if task.get("DesiredState") != "running" or state != "running":
                        return self._saved("running", 0, "the server is starting or stopping")
                    where, node = "running", task["NodeID"]
                elif self.home_node:
                    where, node = "node", self.home_node
                    why = await self._node_out_of_service(node)
                    if why:
                        return self._saved(where, 0, f"its newest files are on a node {why}")
                else:
                    latest = await self._in_pool(
                        homesync.latest_generation, place, self.home_volume
                    )
                    return self._saved("store", latest, "" if latest else "never saved")
            except (APIError, OSError, MinioException, HTTPError) as e:
                return self._saved("", 0, f"not reached: {e}")
            generation = await self._save_home(node)  # never raises
            if not generation:
                return self._saved(where, 0, "the save did not finish (see the hub's log)")
            if where == "node" and time.monotonic() >= self._write_lease_until:
                self.home_node = ""  # now newest in the store (the caller keeps the state)
            return self._saved(where, generation, "")

    @staticmethod
    def _saved(where: str, generation: int, error: str) -> dict:
        return {"where": where, "generation": generation, "saved": not error, "error": error}

    async def adopt_restored_home(self, staged: str) -> int:
        """Make the archive a restore put at ``staged`` (in this home's staging keys,
        :func:`homesync.staged_key`) this home's newest generation: the next start
        restores it, on whichever node. Refused while the server runs (stop it first:
        its save would replace the restore). Returns the generation. Raises
        :class:`HomeBusy`, :class:`HomeUnreachable`, :class:`RestoreRefused`."""
        place = self._place()
        if place is None:
            raise HomeUnreachable("Home folders do not follow their student on this cluster.")
        if not homesync.is_staged_key(place.prefix, self.home_volume, staged):
            raise RestoreRefused(f"{staged!r} is not a staged archive of {self.home_volume}.")
        limit = homesync_limit(self.home_quota)
        async with self._home_lock():
            try:
                if await self._task() is not None:
                    raise HomeBusy(
                        f"The class server of {self.user.name} is running: stop it first, "
                        "then restore again. Nothing was changed."
                    )
                async with self._save_lock():
                    generation, size = await self._in_pool(
                        homesync.adopt, place, self.home_volume, staged, limit
                    )
            except (APIError, OSError, MinioException, HTTPError) as e:
                self.log.error("Home of %s not restored: %s", self._log_name, e)
                raise HomeUnreachable(
                    "The store of saved home folders cannot be reached; try again soon."
                ) from None
            if not generation:
                if size < 0:
                    raise RestoreRefused(f"Nothing was staged at {staged!r}.")
                raise RestoreRefused(
                    f"The home's archive is {size} bytes, over its limit of {limit} bytes "
                    "(home_quota): raise the limit first. Nothing was changed."
                )
            # the next start restores this generation wherever it runs: no node holds
            # anything newer, and no restored copy on a node is current any more
            self.home_node = ""
            self._loaded = None
            self._write_lease_until = 0.0
            self.log.info("Restored the home of %s as generation %d", self._log_name, generation)
            return generation

    _save_lock_obj: asyncio.Lock | None = None

    def _save_lock(self) -> asyncio.Lock:
        """Held while a save (a stop's, a backup's) or a restore picks and fills a
        generation: two of them never pick the same one."""
        if self._save_lock_obj is None:
            self._save_lock_obj = asyncio.Lock()
        return self._save_lock_obj

    async def existing_homes(self) -> set[str]:
        """The home volumes that exist anywhere on the cluster (any student's): those with
        a copy in the store; running servers' and ``home_node`` homes are added by the
        caller, which sees every server (hub/homes_api.py)."""
        place = self._place()
        if place is None:
            return set()
        return await self._in_pool(homesync.saved_volumes, place)

    # ----- state: the node a home could not be saved from outlives the server

    home_node = ""

    def get_state(self):
        state = super().get_state()
        if self.home_node:
            state["home_node"] = self.home_node
        return state

    def load_state(self, state):
        super().load_state(state)
        self.home_node = state.get("home_node", "")

    def clear_state(self):
        """JupyterHub clears the state after each stop; the node holding a home that
        could not be saved must outlive it."""
        node = self.home_node
        super().clear_state()
        self.home_node = node

    def get_env(self):
        env = super().get_env()
        env.update(self._restore_env or {})
        return env

    def _labels(self) -> dict[str, str]:
        return {
            **self._identity_labels(),
            **swarm_labels(self._traefik_labels(), self.network_name),
        }

    def _node_image(self) -> str:
        """The image as the nodes run it: by its ID (checked by ``_check_image`` on the
        manager), which every node has after ``docker save | docker load`` and which a
        node never tries to pull (by name, each start first waits for a registry)."""
        return self._image_id or self.image

    def _mem_bytes(self) -> int | None:
        return parse_size(self.mem_limit) if self.mem_limit else None

    async def create_object(self):
        cmd = await self.get_command()
        labels = self._labels()
        container = hardened_container(
            image=self._node_image(),
            command=["python3", "-I", "-c", homesync.RESTORE] if self.homes_sync else None,
            args=cmd,
            env=self.get_env(),
            labels=identity_labels(
                user=self.user.name,
                server=self.name or "",
                routespec=self.proxy_spec,
                deployment=self.route_name_prefix,
            ),
            mounts=[Mount(HOME, self.home_volume, type="volume")],
            health=healthcheck(
                self.healthcheck_command,
                interval=self.healthcheck_interval,
                start_timeout=self.ready_timeout,
            ),
            tmpfs_size=self.tmpfs_size,
        )
        spec = service_spec(
            name=self.object_name,
            container=container,
            labels=labels,
            network=self.network_name,
            mem_limit=self._mem_bytes(),
            cpu_limit=self.cpu_limit,
            pids_limit=self.pids_limit,
            reserve_memory=self.reserve_memory,
            constraints=[
                *self.swarm_constraints,
                *([f"node.id=={self.home_node}"] if self.home_node else []),
            ],
            spread=self.swarm_spread,
        )
        return await self.docker("create_service", **spec)

    async def get_ip_and_port(self):
        """The running task's address on the students' network: SwarmSpawner's own answer
        is the service's name, but Traefik's Swarm provider routes a ``dnsrr`` service to
        its task's address, and the proxy waits until Traefik routes to exactly the
        server's URL."""
        task = await self._task()
        ip = task_address(task or {}, self.network_name)
        if ip is None:
            self.log.warning(
                "Task of %s has no address on %s; using its service name",
                self.object_name,
                self.network_name,
            )
            ip = self.object_name
        return ip, self.port

    async def _task(self) -> dict | None:
        """The newest task of this server's service (None: no service or no task)."""
        try:
            tasks = await self.docker("tasks", filters={"service": self.object_name})
        except NotFound:
            return None
        if not tasks:
            return None
        return max(tasks, key=lambda t: t.get("CreatedAt", ""))

    async def start_object(self):
        """Wait until the task runs and is healthy (a Swarm task with a healthcheck stays
        ``starting`` until its first healthy probe), or fail with Swarm's reason."""
        deadline = time.monotonic() + self.ready_timeout
        while True:
            task = await self._task()
            status = (task or {}).get("Status", {})
            state = status.get("State", "")
            if state == "running":
                return
            why = status.get("Err") or status.get("Message") or state or "no task"
            if state in _ENDED and (task or {}).get("DesiredState") != "running":
                raise SpawnError(f"Your server could not start on the cluster: {why}")
            if time.monotonic() > deadline:
                raise SpawnError(
                    f"Your server did not start within {self.ready_timeout:.0f} s on the "
                    f"cluster ({why}). Try again; if it keeps failing, tell an administrator."
                )
            await asyncio.sleep(0.5)

    async def _wait_ready(self, events) -> None:
        return  # start_object waited for the healthy task

    def _follow_events(self):
        return None

    async def _cleanup_failed_start(self, remove_volume: bool) -> None:
        try:
            await self.docker("remove_service", self.object_name)
        except NotFound:
            pass
        self.object_id = ""

    async def home_usage(self) -> dict | None:
        return None  # a home's volume lives on a node the hub cannot see into

    # ----- stop: wind the task down, then save the home on its node

    async def stop(self, now=False):
        # under the home lock, as a start: a backup's save (save_home_now) or a locate of
        # this home waits until the stop's own save has ended and home_node says where the
        # newest files are
        async with self._home_lock():
            await self._stop_and_save(now)

    async def _stop_and_save(self, now: bool) -> None:
        task = await self._task()
        node = (task or {}).get("NodeID", "")
        if task is not None:
            await self._scale_to_zero()
        await super().stop(now=now)
        if self.homes_sync and node:
            saved = await self._save_home(node)
            # not saved (the store was down): the newest files are on that node only, and
            # the next start must run there rather than restore an older copy elsewhere;
            # the same while a service's helper may still write there (the write lease):
            # the next start saves it again from there (or runs beside the helper)
            writing = time.monotonic() < self._write_lease_until
            self.home_node = "" if saved and not writing else node

    async def _scale_to_zero(self) -> None:
        """Stop the task and wait until its container is gone, so the save reads a
        home nobody writes any more."""
        try:
            info = await self.docker("inspect_service", self.object_name)
            await self.docker(
                "update_service",
                info["ID"],
                info["Version"]["Index"],
                mode=ServiceMode("replicated", 0),
                fetch_current_spec=True,
            )
        except NotFound:
            return
        except APIError as e:
            self.log.warning("Could not scale %s down before removal: %s", self.object_name, e)
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tasks = await self.docker("tasks", filters={"service": self.object_name})
            if all(t.get("Status", {}).get("State") in _ENDED for t in tasks):
                return
            await asyncio.sleep(0.5)

    async def _ensure_image_id(self) -> bool:
        """The image's ID on the manager (one-shot services of a stopped server need it);
        False when the image is gone."""
        if not self._image_id:
            try:
                self._image_id = (await self.docker("inspect_image", self.image))["Id"]
            except NotFound:
                return False
        return True

    async def _one_shot(
        self, suffix: str, command: str, env: dict[str, str], constraints: list[str], timeout: float
    ) -> tuple[str, str, str]:
        """Run ``python3 -I -c command`` once in a hardened service ``<server>-<suffix>``
        with the home volume at ``HOME``, on a node that ``constraints`` allow; wait until
        it ended (at most ``timeout`` s) and remove it. ``(state, why, node)``: Swarm's
        final task state (``complete`` when it exited 0; "" when it timed out), its
        message, and the node it ran on. Docker's errors are raised."""
        name = f"{self.object_name}-{suffix}"
        labels = {"classhub.deployment": self.route_name_prefix, "classhub.oneshot": suffix}
        container = hardened_container(
            image=self._node_image(),
            command=["python3", "-I", "-c", command],
            args=["true"],  # RESTORE execs its arguments when done
            env={"HOME": HOME, **env},
            labels=labels,
            mounts=[Mount(HOME, self.home_volume, type="volume")],
            health=None,
            tmpfs_size="16m",
        )
        spec = service_spec(
            name=name,
            container=container,
            labels=labels,
            # the S3 store's address in the presigned URL is as the students network
            # reaches it (in the stack, http://s3:8333 is on no other network a node has)
            network=self.network_name,
            mem_limit=512 << 20,
            cpu_limit=1.0,
            pids_limit=64,
            reserve_memory=False,
            constraints=constraints,
            spread=[],
            one_shot=True,
        )
        started = time.monotonic()
        state, why, node = "", "", ""
        try:
            with contextlib.suppress(NotFound):
                await self.docker("remove_service", name)
            await self.docker("create_service", **spec)
            while time.monotonic() - started < timeout:
                tasks = await self.docker("tasks", filters={"service": name})
                task = tasks[0] if tasks else {}
                status = task.get("Status", {})
                state = status.get("State", "")
                why = status.get("Err") or status.get("Message") or ""
                node = task.get("NodeID", "") or node
                if state in _ENDED:
                    break
                await asyncio.sleep(0.5)
            else:
                state = ""
        finally:
            with contextlib.suppress(NotFound, APIError):
                await self.docker("remove_service", name)
        return state, why, node

    async def _save_home(self, node: str) -> int:
        """Save the home volume on ``node`` to the S3 store with a one-shot service there;
        the generation saved, 0 when not saved (never raises: a failure is logged)."""
        async with self._save_lock():
            return await self._save_home_locked(node)

    async def _save_home_locked(self, node: str) -> int:
        place = self._place()
        try:
            await self._in_pool(homesync.ensure_bucket, place)
            generation = (
                await self._in_pool(homesync.latest_generation, place, self.home_volume) + 1
            )
            url = await self._in_pool(homesync.presign, place, "PUT", self.home_volume, generation)
        except Exception as e:  # the store is down: the home stays on its node
            self.log.error("Home of %s not saved (S3 store: %s)", self._log_name, e)
            return 0
        limit = homesync_limit(self.home_quota)
        try:
            image_there = await self._ensure_image_id()
        except (APIError, OSError) as e:  # Docker's refusal: the home stays on its node
            self.log.error("Home of %s not saved (Docker: %s)", self._log_name, e)
            return 0
        if not image_there:
            self.log.error("Home of %s not saved: image %s is gone", self._log_name, self.image)
            return 0
        env = {
            "CLASSHUB_HOME_SAVE_URL": url,
            "CLASSHUB_HOME_GENERATION": str(generation),
            "CLASSHUB_HOME_LIMIT": str(limit),
        }
        started = time.monotonic()
        try:
            state, why, _ = await self._one_shot(
                "save", homesync.SAVE, env, [f"node.id=={node}"], self.homes_save_timeout
            )
            ok = state == "complete" and await self._in_pool(
                homesync.accept, place, self.home_volume, generation, limit
            )
        except (APIError, OSError, MinioException, HTTPError) as e:  # Docker, or the store
            state, why, ok = "failed:", str(e), False
        if ok:
            self.log.info(
                "Saved the home of %s (generation %d) in %.1f s",
                self._log_name,
                generation,
                time.monotonic() - started,
            )
        else:
            self.log.error(
                "Home of %s not saved (%s %s); its newer files stay on node %s",
                self._log_name,
                state or "timed out",
                why,
                node,
            )
        return generation if ok else 0


class HomeBusy(Conflict):
    """The server is starting or stopping: ask again in a moment (409)."""


class HomeUnreachable(Unavailable):
    """The home cannot be reached now (a node out of service, the store, Docker): 503."""


class RestoreRefused(BadRequest):
    """A restore that cannot be done as asked (nothing staged, over the limit): 400."""


def homesync_limit(quota: str) -> int:
    """The largest saved copy of a home: its quota (a compressed copy is smaller)."""
    return parse_size(quota)
