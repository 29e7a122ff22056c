"""Students' homes on a Docker Swarm: the helper as a one-shot service on the home's node.

On one machine (:mod:`services.base.homes`) the helper container mounts the home volumes
on the services' own Docker engine and its job goes in and its results come out through
``put_archive`` and ``get_archive``. On a Swarm a home is a volume on one worker, which the
manager's API cannot reach into. So, for each batch:

1. **Where.** The hub says on which node each home is (``POST
   /hub/api/classhub/swarm-homes/<user>/<server>``, :mod:`hub.homes_api`): a running
   server's node, or the node holding a stopped home's newest files (the hub first brings a
   home that is only in the S3 store onto a node; after a write, the next start of the
   server saves it from there). Which homes exist at all: ``GET .../swarm-homes``.
2. **In.** The job, with presigned URLs, and its input zips go into the service's own S3
   prefix ``helpers/<service>/<run>/<job>/`` (its identity may write nowhere else).
3. **Run.** A one-shot Swarm service per node, on that node (placement constraint), runs
   ``python3 -I -m classhub_singleuser.homeremote`` from the homes-helper image, as uid
   1000 with every capability dropped, a read-only root, a process, memory and CPU limit
   and a time limit; its job's folder is ``/tmp/io`` in its private ``/tmp`` (a tmpfs).
   It holds nothing but presigned URLs of this job's own objects (the job, its inputs,
   one PUT per expected output), reaches only the students network (where the S3 store
   answers), and runs no code of the student's.
4. **Out.** Its results and outputs come back from the store, each under its size cap, and
   are checked exactly as on one machine (:func:`services.base.homes.parse_results`); the
   job's keys are deleted and the service removed, whatever happened.

The classes service holds no S3 identity: its teachers' read-only look into a home is not
available on a Swarm (:class:`HomesUnsupported`, 501).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import io
import json
import logging
import secrets
import tempfile
import time
from typing import Any

from common.errors import ServiceError
from common.units import parse_size

from .homes import (
    HELPER_LABEL,
    MAX_RESULTS_BYTES,
    RESULTS,
    RUN_LABEL,
    SERVICE_LABEL,
    HelperSettings,
    HelperUnavailable,
    HomeMissing,
    Homes,
    _Run,
    _Work,
)
from .hubapi import HubAPIError, HubConflict, HubNotFound, HubUnavailable, q

COMMAND = ["python3", "-I", "-m", "classhub_singleuser.homeremote"]
#: task states after which a task never runs again
_ENDED = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}
#: the job's folder in the helper service (homeremote.IO): in its private /tmp, a tmpfs
#: that Docker makes with the mode of the image's /tmp (1777; a tmpfs elsewhere would be
#: root's only)
SWARM_IO = "/tmp/io"
#: the size of that /tmp: the inputs and one output at a time (a snapshot is at most 110 MB)
IO_TMPFS = 256 << 20
#: the least memory of a helper service (its tmpfs is charged to it)
MIN_MEMORY = 512 << 20
_SPOOL_MEMORY = 8 << 20

log = logging.getLogger(__name__)


class HomesUnsupported(ServiceError):
    """This operation does not exist on a Swarm (yet): 501."""

    status_code = 501


@dataclasses.dataclass(frozen=True)
class SwarmIO:
    """How the helper services exchange their job and results: the service's own bucket
    and identity (``objects``: :class:`services.base.s3.ObjectStore`), the key prefix its
    identity may write (``helpers/<service>/``), and the network on which the nodes reach
    the store at the address the URLs are signed for (the students network)."""

    objects: Any
    prefix: str
    network: str


def service_name(settings: HelperSettings) -> str:
    """A fresh name for one helper service (a DNS label: at most 63 characters)."""
    head = f"{settings.deployment}-homes-{settings.service}"[:46].rstrip("-")
    return f"{head}-{secrets.token_hex(8)}"


def helper_service_spec(
    settings: HelperSettings,
    *,
    name: str,
    image: str,
    job_url: str,
    homes: list[tuple[str, bool]],
    node: str,
    network: str,
) -> dict:
    """Keyword arguments of ``docker.APIClient.create_service``: the helper for ``homes``
    (``(volume name, read_only)`` at ``/mnt/homes/<n>`` in that order) on ``node``."""
    from docker.types import (
        ContainerSpec,
        EndpointSpec,
        Mount,
        Placement,
        Resources,
        RestartPolicy,
        ServiceMode,
        TaskTemplate,
    )

    mounts = [Mount("/tmp", None, type="tmpfs", tmpfs_size=IO_TMPFS, tmpfs_mode=0o1777)]
    for n, (volume, read_only) in enumerate(homes):
        mounts.append(
            Mount(f"/mnt/homes/{n}", volume, type="volume", read_only=read_only, no_copy=True)
        )
    labels = {
        HELPER_LABEL: settings.deployment,
        SERVICE_LABEL: settings.service,
        RUN_LABEL: settings.run,
    }
    container = ContainerSpec(
        image=image,
        command=list(COMMAND),
        # nothing but what Python needs and the job's URL: no token, no key, no setting
        env={"HOME": "/tmp", "LANG": "C.UTF-8", "CLASSHUB_HOMES_JOB_URL": job_url},
        labels=labels,
        mounts=mounts,
        user="1000:100",
        workdir="/tmp",
        read_only=True,
        init=True,
        cap_drop=["ALL"],
    )
    memory = max(parse_size(settings.mem_limit), MIN_MEMORY)
    resources = Resources(mem_limit=memory, cpu_limit=int(settings.cpu_limit * 1e9))
    resources.setdefault("Limits", {})["Pids"] = int(settings.pids_limit)
    task = TaskTemplate(
        container_spec=container,
        resources=resources,
        networks=[network],
        placement=Placement(constraints=[f"node.id=={node}"]),
        restart_policy=RestartPolicy(condition="none"),
    )
    return {
        "task_template": task,
        "name": name,
        "labels": labels,
        "mode": ServiceMode("replicated", 1),
        "endpoint_spec": EndpointSpec(mode="dnsrr"),
    }


def remote_job(job: dict, input_urls: dict[str, str], output_urls: dict[str, str]) -> dict:
    """homectl's job plus the URLs homeremote fetches its inputs from and puts its
    outputs to (``<name>`` of ``/tmp/io/in`` and ``/tmp/io/out``)."""
    return {**job, "inputs": dict(input_urls), "outputs": dict(output_urls)}


def _exit_code(task: dict) -> int | None:
    status = task.get("Status", {})
    if status.get("State") == "complete":
        return 0
    code = (status.get("ContainerStatus") or {}).get("ExitCode")
    return int(code) if isinstance(code, int) and code else 1


def run_swarm_helper(
    client,
    swarm_io: SwarmIO,
    settings: HelperSettings,
    job: dict,
    inputs: dict[str, bytes],
    homes: list[tuple[str, bool]],
    caps: dict[str, int],
    node: str,
    *,
    poll: float = 0.5,
) -> _Run:
    """Blocking: put the job and inputs into the store, run the helper service on
    ``node`` within its time limit, take the results and outputs back from the store,
    remove the service and every object of the job in every case."""
    objects = swarm_io.objects
    store = objects.client
    bucket = objects.bucket
    base = f"{swarm_io.prefix}{settings.run}/{secrets.token_hex(8)}/"
    limit = settings.time_limit(len(homes))
    expires = datetime.timedelta(seconds=int(limit + 4 * settings.docker_timeout + 60))
    api = client.api
    name = service_name(settings)
    created = False
    try:
        input_urls = {}
        for file_name, data in inputs.items():
            key = f"{base}in/{file_name}"
            store.put_object(bucket, key, io.BytesIO(data), len(data))
            input_urls[file_name] = store.presigned_get_object(bucket, key, expires=expires)
        output_urls = {
            out: store.presigned_put_object(bucket, f"{base}out/{out}", expires=expires)
            for out in (RESULTS, *caps)
        }
        body = json.dumps(remote_job(job, input_urls, output_urls)).encode()
        store.put_object(bucket, f"{base}job.json", io.BytesIO(body), len(body))
        job_url = store.presigned_get_object(bucket, f"{base}job.json", expires=expires)
        image = api.inspect_image(settings.image)["Id"]  # the nodes have it by ID
        spec = helper_service_spec(
            settings,
            name=name,
            image=image,
            job_url=job_url,
            homes=homes,
            node=node,
            network=swarm_io.network,
        )
        api.create_service(**spec)
        created = True
        started = time.monotonic()
        exit_code: int | None = None
        why = ""
        while True:
            tasks = api.tasks(filters={"service": name})
            task = tasks[0] if tasks else {}
            status = task.get("Status", {})
            why = status.get("Err") or status.get("Message") or ""
            if status.get("State") in _ENDED:
                exit_code = _exit_code(task)
                break
            if time.monotonic() - started > limit:
                break  # killed below by the removal: the results put so far are taken
            time.sleep(poll)
        if exit_code != 0:  # what homeremote said (one line, never a URL), for the log
            why = f"{why}: {_last_words(api, name)}"
        with contextlib.suppress(Exception):
            api.remove_service(name)
        created = False
        outputs = _take_outputs(store, bucket, f"{base}out/", {RESULTS: MAX_RESULTS_BYTES, **caps})
        results_file = outputs.pop(RESULTS, None)
        results = results_file.read() if results_file else b""
        if results_file:
            results_file.close()
        return _Run(exit_code, results, outputs, "" if exit_code == 0 else why)
    finally:
        if created:
            with contextlib.suppress(Exception):
                api.remove_service(name)
        _remove_prefix(store, bucket, base)


def _last_words(api, name: str) -> str:
    """The last lines the helper service wrote on stderr (Swarm gathers them from the
    node); "" when Docker cannot say."""
    try:
        lines = api.service_logs(name, stderr=True, stdout=False, tail=5)
        text = b"".join(lines if not isinstance(lines, bytes) else [lines])
    except Exception as e:  # noqa: BLE001 - only for the log
        return f"(no log: {type(e).__name__})"
    return text.decode("utf-8", "replace").strip()[-1000:]


def _take_outputs(store, bucket: str, prefix: str, caps: dict[str, int]) -> dict:
    """The outputs in the store under ``prefix``, each in a spooled file if within its cap
    (anything else is left out; the caller closes the files)."""
    from minio.error import S3Error

    found = {}
    for out, cap in caps.items():
        key = prefix + out
        try:
            if store.stat_object(bucket, key).size > cap:
                continue
            response = store.get_object(bucket, key)
        except S3Error as e:
            if e.code in ("NoSuchKey", "NoSuchObject"):
                continue
            raise
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY)
        try:
            copied = 0
            for chunk in response.stream(1 << 20):
                copied += len(chunk)
                if copied > cap:
                    break
                spool.write(chunk)
        finally:
            response.close()
            response.release_conn()
        if copied > cap:
            spool.close()
            continue
        spool.seek(0)
        found[out] = spool
    return found


def _remove_prefix(store, bucket: str, prefix: str, keep: str = "") -> int:
    """Delete every object under ``prefix`` (but those under ``keep``); how many. A
    failure is logged: the next start of the service sweeps what is left."""
    from minio.deleteobjects import DeleteObject
    from minio.error import S3Error

    try:
        keys = [
            DeleteObject(o.object_name)
            for o in store.list_objects(bucket, prefix, recursive=True)
            if not (keep and o.object_name.startswith(keep))
        ]
        errors = list(store.remove_objects(bucket, keys)) if keys else []
    except S3Error as e:
        if e.code == "NoSuchBucket":  # not made yet: nothing to remove
            return 0
        log.warning("Helper objects under %s not removed: %s", prefix, e)
        return 0
    except Exception as e:  # noqa: BLE001 - the store is down: swept later
        log.warning("Helper objects under %s not removed: %s", prefix, e)
        return 0
    for error in errors[:3]:
        log.warning("Helper object not removed: %s", error)
    return len(keys) - len(errors)


class SwarmHomes(Homes):
    """:class:`Homes` whose helpers run as one-shot Swarm services on the homes' nodes."""

    def __init__(self, settings: HelperSettings, *, hub, swarm_io: SwarmIO | None, **kwargs):
        super().__init__(settings, **kwargs)
        self.hub = hub
        self.swarm_io = swarm_io
        self._nodes: dict[int, str] = {}

    async def _hub(self, method: str, path: str, body=None):
        """The hub's answer; its refusals as HelperUnavailable with the hub's sentence
        (a server starting, a node out of service, the store down)."""
        try:
            # bringing a stopped home onto a node downloads and unpacks it
            return await self.hub.request(method, path, body=body, timeout=600)
        except HubNotFound:
            return None
        except (HubConflict, HubUnavailable) as e:
            raise HelperUnavailable(str(e), e.hub_message) from None
        except HubAPIError as e:
            self.log.error("The hub refused %s %s: %s", method, path, e)
            raise HelperUnavailable(str(e)) from None

    async def existing(self) -> set[str]:
        answer = await self._hub("GET", "/classhub/swarm-homes")
        return set((answer or {}).get("volumes") or [])

    async def _split_missing(self, work: list[_Work]):
        if self.swarm_io is None:
            raise HomesUnsupported(
                "This service has no S3 identity for its helper services on this Swarm "
                "cluster, so it cannot look into students' home folders; an administrator "
                "runs scripts/swarm/deploy.sh again (it adds the identity)."
            )
        write = any(w.op == "apply" for w in work)
        slots = asyncio.Semaphore(4)

        async def locate(w: _Work):
            async with slots:
                path = f"/classhub/swarm-homes/{q(w.user)}/{q(w.server)}"
                try:
                    answer = await self._hub("POST", path, {"write": write})
                except HelperUnavailable as e:
                    return e
                return (answer or {}).get("node") or ""

        nodes = await asyncio.gather(*(locate(w) for w in work))
        present, outcomes = [], {}
        for i, (w, node) in enumerate(zip(work, nodes, strict=True)):
            if isinstance(node, Exception):
                outcomes[i] = node
            elif not node:
                outcomes[i] = HomeMissing(
                    f"{w.user} has no home folder for {w.server} yet (the class server was"
                    " never started), so there is nothing there to read or write yet."
                )
            else:
                self._nodes[id(w)] = node
                present.append(w)
        return present, outcomes

    async def _run_job(self, op, work, items, inputs, caps) -> _Run:
        """One helper service per node, at once; their results and outputs merged."""
        by_node: dict[str, list[int]] = {}
        for n, w in enumerate(work):
            by_node.setdefault(self._nodes.pop(id(w)), []).append(n)
        started = self.clock()

        async def on(node: str, picked: list[int]) -> _Run:
            sub_items, homes, sub_inputs, sub_caps = [], [], {}, {}
            for k, n in enumerate(picked):
                item = dict(items[n], home=f"/mnt/homes/{k}")
                sub_items.append(item)
                homes.append((work[n].volume, op in ("snapshot", "view")))
                if "zip" in item:
                    file_name = item["zip"].rsplit("/", 1)[1]
                    sub_inputs[file_name] = inputs[file_name]
                    item["zip"] = f"{SWARM_IO}/in/{file_name}"
                for out in (f"{item['id']}.zip", f"{item['id']}.bin"):
                    if out in caps:
                        sub_caps[out] = caps[out]
            job = {"version": 1, "op": op, "out": f"{SWARM_IO}/out", "items": sub_items}
            budget = self.settings.time_limit(len(picked)) + 4 * self.settings.docker_timeout
            return await self._in_pool(
                lambda: self._blocking(job, sub_inputs, homes, sub_caps, node), timeout=budget
            )

        runs = await asyncio.gather(
            *(on(node, picked) for node, picked in by_node.items()), return_exceptions=True
        )
        merged = _Run(0, b"", {}, "")
        failure = None
        for run in runs:
            if isinstance(run, BaseException):
                failure = run
                continue
            if run.results:
                merged.results += run.results.rstrip(b"\n") + b"\n"
            merged.outputs.update(run.outputs)
            if run.exit_code is None or merged.exit_code is None:
                merged.exit_code = None
            else:
                merged.exit_code = max(merged.exit_code, run.exit_code)
            merged.stderr += run.stderr
        if failure is not None and not merged.results:
            raise failure
        self.log.info(
            "Helper services %s of %d home(s) on %d node(s): exit %s in %.2f s",
            op,
            len(work),
            len(by_node),
            "timeout" if merged.exit_code is None else merged.exit_code,
            self.clock() - started,
        )
        return merged

    def _blocking(self, job, inputs, homes, caps, node) -> _Run:
        from minio.error import MinioException
        from urllib3.exceptions import HTTPError

        try:
            return run_swarm_helper(
                self._client, self.swarm_io, self.settings, job, inputs, homes, caps, node
            )
        except (MinioException, HTTPError) as e:  # S3Error, ServerError, bad answers
            raise HelperUnavailable(f"S3: {e}") from None

    async def sweep(self) -> int:
        """Remove this service's helper services left by an earlier run."""
        filters = {
            "label": [
                f"{HELPER_LABEL}={self.settings.deployment}",
                f"{SERVICE_LABEL}={self.settings.service}",
            ]
        }

        def sweep() -> int:
            removed = 0
            for service in self._client.api.services(filters=filters):
                labels = service.get("Spec", {}).get("Labels") or {}
                if labels.get(RUN_LABEL) != self.settings.run:
                    self._client.api.remove_service(service["ID"])
                    removed += 1
            return removed

        removed = await self._in_pool(sweep)
        if self.swarm_io is not None:  # and the job objects of earlier runs
            io_ = self.swarm_io
            await self._in_pool(
                lambda: _remove_prefix(
                    io_.objects.client,
                    io_.objects.bucket,
                    io_.prefix,
                    keep=f"{io_.prefix}{self.settings.run}/",
                ),
                timeout=120,
            )
        if removed:
            self.log.info("Removed %d helper service(s) left by an earlier run", removed)
        return removed
