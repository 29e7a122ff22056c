"""Reading and writing students' homes from outside their servers, so that nothing a
service holds enters a container.

The files and grades services used to send their own hub tokens (access to every server)
in requests to a student's server to take snapshots and deliver material and feedback;
the student shares that server's uid and could read them from its memory. Now nothing is
sent to the student's server at all. Each operation runs in a **throwaway helper
container** (image ``classhub/homes-helper``, see ``images/homes-helper``) that:

* mounts the home volumes of a small batch of students (the spawner's volume names:
  :func:`common.naming.object_name` ``(deployment, "home", user, server)``), each at its
  own path ``/mnt/homes/<n>``, read-only for snapshots; a home that does not exist is
  never mounted (Docker would create an empty one);
* runs ``python3 -I -m classhub_singleuser.homectl /mnt/io/job.json`` as uid 1000:100
  with ``network_mode=none``, a read-only root, every capability dropped,
  no-new-privileges, memory, process and CPU limits, a time limit, and no environment but
  ``HOME=/tmp``: nothing of the student's can run in it, and it holds nothing to steal;
* gets its job and inputs (material zips) through ``put_archive`` into a fresh anonymous
  volume at ``/mnt/io`` before it starts, and hands back its results
  (``/mnt/io/out/results.jsonl`` and the snapshot zips) through ``get_archive`` after it
  exits. Everything that comes back is treated as hostile: only the expected names, each
  under a size cap, result lines checked field by field (:func:`parse_results`);
* is removed with its anonymous volume when the operation ends, whatever happened.

Work arriving together is batched (:mod:`services.base.homebatch`): one container per
batch of up to ``max_batch`` homes, at most ``concurrency`` containers at once per
service. The Docker SDK is blocking: every call runs in a :class:`BlockingCalls` pool of
its own, with a time limit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
import logging
import secrets
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

from common.blocking import BlockingCalls, CallTimedOut
from common.errors import ServiceError, Unavailable
from common.naming import object_name

from .homebatch import Batcher

log = logging.getLogger(__name__)

#: labels of every helper container: the deployment it belongs to, the service, and the
#: service's run (a service that starts removes its earlier runs' leftovers, never its own)
HELPER_LABEL = "classhub.homes-helper"
SERVICE_LABEL = "classhub.homes-helper.service"
RUN_LABEL = "classhub.homes-helper.run"

IO_DIR = "/mnt/io"
OUT_DIR = "/mnt/io/out"
JOB_FILE = "/mnt/io/job.json"
HOMES_DIR = "/mnt/homes"
RESULTS = "results.jsonl"
COMMAND = ["python3", "-I", "-m", "classhub_singleuser.homectl", JOB_FILE]

#: the largest snapshot zip taken back (homectl refuses more than 100 MiB of files)
MAX_SNAPSHOT_BYTES = 110 << 20
#: the most files a snapshot may hold (homectl's snapshot.MAX_FILES)
MAX_SNAPSHOT_FILES = 2000
#: the largest file a teacher's read-only view takes back (homectl's VIEW_BYTES)
MAX_VIEW_BYTES = 50 << 20
#: the most entries of one folder a view lists (homectl's VIEW_ENTRIES)
MAX_VIEW_ENTRIES = 1000
#: the largest results file taken back (one line per home; a report lists every file)
MAX_RESULTS_BYTES = 64 << 20
MESSAGE_MAX = 1000
SKIPPED_MAX = 100
_HELPER_STATUSES = frozenset({400, 404, 413, 500})
_SPOOL_MEMORY = 8 << 20


class HomeMissing(ServiceError):
    """The student has no home for this server yet (it was never started): 409."""

    status_code = 409


class HomeRefused(ServiceError):
    """The helper refused or failed this one home (``status``: 400 bad name or a link,
    404 no such folder, 413 too large, 500 an error on the student's files): 409."""

    status_code = 409

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class HelperUnavailable(Unavailable):
    """No helper could run (Docker down, the image missing, a time limit): 503, retry."""

    def __init__(self, detail: str = "", message: str = ""):
        super().__init__(
            message
            or "classhub could not reach the students' home folders right now (its helper"
            " container did not run); try again in a minute.",
            detail,
        )


@dataclasses.dataclass(frozen=True)
class HelperSettings:
    """How helper containers are made (the services' ``homes_*`` traits)."""

    image: str
    deployment: str  # the spawner's prefix: volume names and labels
    service: str  # the service's name, in the labels
    mem_limit: str = "256m"
    cpu_limit: float = 1.0
    pids_limit: int = 64
    tmpfs_size: str = "64m"
    seconds_per_home: float = 60.0
    start_seconds: float = 30.0
    docker_timeout: float = 30.0
    run: str = ""  # this run of the service (a random id)

    def time_limit(self, homes: int) -> float:
        """Seconds a container of ``homes`` homes may run before it is killed."""
        return self.start_seconds + self.seconds_per_home * max(1, homes)


@dataclasses.dataclass(frozen=True)
class HomeSnapshot:
    """A snapshot taken by the helper: the zip (``data``) and what homectl said of it."""

    data: bytes
    sha256: str  # of the zip's bytes, computed here
    files: int
    bytes: int
    skipped: list[dict[str, str]]
    skipped_total: int


@dataclasses.dataclass(frozen=True)
class HomeView:
    """A read-only look into a home: a folder's ``entries`` (``{"name", "kind", "size"}``,
    folders first; ``total`` counts those not listed too), or a file's ``data``."""

    kind: str  # "folder" or "file"
    entries: list[dict] = dataclasses.field(default_factory=list)
    total: int = 0
    data: bytes = b""


@dataclasses.dataclass(frozen=True)
class _Work:
    op: str  # "snapshot", "apply" or "view"
    user: str
    server: str
    volume: str
    folder: str = ""  # snapshot; the path of a view
    dest: str = ""  # apply
    label: str = ""
    data: bytes = b""
    delivered: dict[str, str] | None = None  # apply: what was last delivered, by path


# ----- pure parts: the container's configuration, the job, what comes back


def container_config(
    settings: HelperSettings, homes: list[tuple[str, bool]], *, mount_factory=None
) -> dict[str, Any]:
    """Keyword arguments for ``DockerClient.containers.create``: the helper for ``homes``
    (``(volume name, read_only)``, mounted at ``/mnt/homes/<n>`` in that order)."""
    if mount_factory is None:
        from docker.types import Mount

        mount_factory = Mount
    mounts = [mount_factory(target=IO_DIR, source=None, type="volume")]
    for n, (volume, read_only) in enumerate(homes):
        mounts.append(
            mount_factory(
                target=f"{HOMES_DIR}/{n}",
                source=volume,
                type="volume",
                read_only=read_only,
                no_copy=True,
            )
        )
    nano_cpus = int(settings.cpu_limit * 1e9)
    return {
        "image": settings.image,
        "command": list(COMMAND),
        "user": "1000:100",
        "working_dir": "/tmp",
        # nothing but what Python needs: no token, no key, no setting of the service
        "environment": {"HOME": "/tmp", "LANG": "C.UTF-8"},
        "network_mode": "none",
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "privileged": False,
        "ipc_mode": "private",
        "mem_limit": settings.mem_limit,
        "memswap_limit": settings.mem_limit,
        "pids_limit": settings.pids_limit,
        "nano_cpus": nano_cpus,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={settings.tmpfs_size},mode=1777"},
        "mounts": mounts,
        "labels": {
            HELPER_LABEL: settings.deployment,
            SERVICE_LABEL: settings.service,
            RUN_LABEL: settings.run,
        },
        "log_config": {"type": "json-file", "config": {"max-size": "1m", "max-file": "1"}},
        "auto_remove": False,
        "detach": True,
    }


def job_archive(job: dict, inputs: dict[str, bytes]) -> bytes:
    """The tar put into ``/mnt/io`` before the helper starts: ``job.json``, ``in/<name>``
    (read-only for the helper) and an empty ``out/`` the helper (uid 1000) writes to."""
    buffer = io.BytesIO()

    def add(name: str, data: bytes | None, mode: int, kind=tarfile.REGTYPE) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.uid, info.gid = 1000, 100
        info.mtime = 0
        if data is None:
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add("out", None, 0o700, tarfile.DIRTYPE)
        add("in", None, 0o755, tarfile.DIRTYPE)
        for name, data in inputs.items():
            add(f"in/{name}", data, 0o444)
        add("job.json", json.dumps(job, ensure_ascii=True).encode(), 0o444)
    return buffer.getvalue()


def _int(value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{value!r} is not a whole number from {low} to {high}")
    return value


def _str(value, limit: int = 1024) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _check_line(op: str, line: dict) -> dict:
    """One result line, reduced to its known fields of the known types (ValueError)."""
    ok = line.get("ok")
    if ok is False:
        status = line.get("status")
        if status not in _HELPER_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        return {"ok": False, "status": status, "message": _str(line.get("message"), MESSAGE_MAX)}
    if ok is not True:
        raise ValueError("ok must be true or false")
    if op == "apply":
        report = line.get("report")
        if not isinstance(report, dict):
            raise ValueError("no report")
        return {"ok": True, "report": report}
    if op == "view":
        return _check_view(line)
    skipped = line.get("skipped")
    entries = []
    for entry in (skipped if isinstance(skipped, list) else [])[:SKIPPED_MAX]:
        if isinstance(entry, dict):
            entries.append({"path": _str(entry.get("path")), "reason": _str(entry.get("reason"))})
    return {
        "ok": True,
        "files": _int(line.get("files"), 0, MAX_SNAPSHOT_FILES),
        "bytes": _int(line.get("bytes"), 0, MAX_SNAPSHOT_BYTES),
        "skipped": entries,
        "skipped_total": _int(line.get("skipped_total", len(entries)), 0, 10**9),
    }


_VIEW_KINDS = frozenset({"folder", "file", "link", "other"})


def _check_view(line: dict) -> dict:
    kind = line.get("kind")
    if kind == "file":
        return {"ok": True, "kind": "file", "size": _int(line.get("size"), 0, MAX_VIEW_BYTES)}
    if kind != "folder":
        raise ValueError(f"unknown kind {kind!r}")
    raw = line.get("entries")
    if not isinstance(raw, list):
        raise ValueError("no entries")
    entries = []
    for entry in raw[:MAX_VIEW_ENTRIES]:
        if not isinstance(entry, dict) or entry.get("kind") not in _VIEW_KINDS:
            continue
        name = _str(entry.get("name"), 255)
        if not name or "/" in name or name in (".", ".."):
            continue
        entries.append(
            {"name": name, "kind": entry["kind"], "size": _int(entry.get("size", 0), 0, 1 << 50)}
        )
    total = _int(line.get("total", len(entries)), 0, 10**9)
    return {"ok": True, "kind": "folder", "entries": entries, "total": max(total, len(entries))}


def parse_results(op: str, data: bytes, ids: Iterable[str]) -> dict[str, dict]:
    """The checked result of each of ``ids`` found in a results file (hostile input:
    unknown ids, bad lines and repeats are ignored; the first line for an id counts)."""
    wanted = set(ids)
    found: dict[str, dict] = {}
    for raw in data.splitlines():
        try:
            line = json.loads(raw)
        except (ValueError, RecursionError):
            continue
        if not isinstance(line, dict):
            continue
        ident = line.get("id")
        if ident not in wanted or ident in found:
            continue
        try:
            found[ident] = _check_line(op, line)
        except ValueError as e:
            found[ident] = {"ok": False, "status": 500, "message": f"bad result ({e})"}
    return found


class _ChunkReader(io.RawIOBase):
    """A read()-able view of the SDK's chunk iterator, for tarfile's stream mode (which
    reads 10 KiB at a time from chunks of 2 MiB: each chunk is consumed through a
    memoryview, never copied again)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = iter(chunks)
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._view:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._view = memoryview(chunk)
        n = min(len(buffer), len(self._view))
        buffer[:n] = self._view[:n]
        self._view = self._view[n:]
        return n


def read_outputs(chunks: Iterator[bytes], caps: dict[str, int]) -> dict[str, BinaryIO]:
    """The files named in ``caps`` (``out/<name>`` in the tar ``get_archive`` streams), each
    in a spooled temporary file positioned at its start. Anything else (other names, links,
    folders, a file over its cap) is skipped unread; the caller closes the files."""
    found: dict[str, BinaryIO] = {}
    try:
        reader = io.BufferedReader(_ChunkReader(chunks), buffer_size=1 << 20)
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                name = member.name.removeprefix("out/")
                if not member.isreg() or name not in caps or name in found:
                    continue
                if member.size > caps[name]:
                    continue
                source = tar.extractfile(member)
                spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY)
                copied = 0
                while chunk := source.read(1 << 20):
                    copied += len(chunk)
                    if copied > caps[name]:
                        break
                    spool.write(chunk)
                if copied > caps[name]:
                    spool.close()
                    continue
                spool.seek(0)
                found[name] = spool
    except (tarfile.TarError, EOFError, OSError):
        pass  # what was read so far stands; the rest counts as missing
    return found


def check_snapshot_zip(data: bytes, files: int) -> None:
    """Refuse (ValueError) a snapshot zip that is not what homectl writes: its central
    directory is checked for size before it is parsed, then every member's name, type and
    size (the files service's rules), and the count must be what homectl reported."""
    import zipfile

    from services.base import archive

    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - (1 << 16) - 22))
    if eocd < 0 or len(data) - eocd < 22:
        raise ValueError("not a zip")
    entries = int.from_bytes(data[eocd + 10 : eocd + 12], "little")
    cd_size = int.from_bytes(data[eocd + 12 : eocd + 16], "little")
    if entries > MAX_SNAPSHOT_FILES or cd_size > MAX_SNAPSHOT_FILES * 2048:
        raise ValueError("its directory is too large")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            limits = archive.Limits(
                max_files=MAX_SNAPSHOT_FILES,
                max_total_bytes=MAX_SNAPSHOT_BYTES,
                max_file_bytes=MAX_SNAPSHOT_BYTES,
                max_ratio=10**9,  # a student's file of zeros is not a bomb here: sizes are capped
            )
            entries_ok = archive.plan(zf, limits)
    except (zipfile.BadZipFile, archive.BadArchive, OSError, ValueError, EOFError) as e:
        raise ValueError(str(e)) from None
    if len(entries_ok) != files:
        raise ValueError(f"it holds {len(entries_ok)} files, not {files}")


# ----- the blocking part: one helper container, start to end


@dataclasses.dataclass
class _Run:
    exit_code: int | None  # None: killed at its time limit
    results: bytes
    outputs: dict[str, BinaryIO]
    stderr: str


def run_helper(
    client,
    settings: HelperSettings,
    job: dict,
    inputs: dict[str, bytes],
    homes: list[tuple[str, bool]],
    caps: dict[str, int],
) -> _Run:
    """Blocking: create the helper, put the job in, run it within its time limit, take
    the results and outputs back, remove it (and its anonymous volume) in every case."""
    import requests

    container = client.containers.create(**container_config(settings, homes))
    try:
        container.put_archive(IO_DIR, job_archive(job, inputs))
        container.start()
        try:
            status = container.wait(timeout=settings.time_limit(len(homes)))
            exit_code = int(status.get("StatusCode", -1))
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            exit_code = None
            container.kill()
            try:
                container.wait(timeout=settings.docker_timeout)
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                pass  # the results written so far are taken all the same
        stderr = b""
        if exit_code != 0:  # what homectl (or Python) said, for the service's log
            stderr = container.logs(stdout=False, stderr=True, tail=20)[-4000:]
        chunks, _ = container.get_archive(OUT_DIR)
        outputs = read_outputs(chunks, {RESULTS: MAX_RESULTS_BYTES, **caps})
        results_file = outputs.pop(RESULTS, None)
        results = results_file.read() if results_file else b""
        if results_file:
            results_file.close()
        return _Run(exit_code, results, outputs, stderr.decode("utf-8", "replace"))
    finally:
        try:
            container.remove(v=True, force=True)
        except Exception as e:  # noqa: BLE001 - logged; the next sweep removes it
            log.warning("Could not remove helper container %s: %s", container.short_id, e)


def _view_of(result: dict, spool: BinaryIO | None) -> HomeView | Exception:
    if result["kind"] == "folder":
        return HomeView("folder", entries=result["entries"], total=result["total"])
    if spool is None:
        return HelperUnavailable("the file did not come back")
    data = spool.read(MAX_VIEW_BYTES + 1)
    if len(data) != result["size"]:
        return HomeRefused("The file changed while it was read; try again.", 500)
    return HomeView("file", data=data)


# ----- the service side


class Homes:
    """Snapshots of and deliveries into students' homes, through helper containers."""

    def __init__(
        self,
        settings: HelperSettings,
        *,
        max_batch: int = 25,
        concurrency: int = 2,
        client_factory: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.time,
        log: logging.Logger | None = None,
    ):
        if not settings.run:
            settings = dataclasses.replace(settings, run=secrets.token_hex(8))
        self.settings = settings
        self.log = log or logging.getLogger(__name__)
        self.clock = clock
        self._client_factory = client_factory or self._default_client
        self._client = None
        # a pool of its own: a running helper holds a thread, never the store calls'
        self.calls = BlockingCalls(
            threads=concurrency + 2, timeout=settings.docker_timeout, name="homes-docker"
        )
        slots = asyncio.Semaphore(concurrency)
        self.snapshots: Batcher = Batcher(
            self._run_snapshots,
            key=lambda w: w.volume,
            max_batch=max_batch,
            slots=slots,
            concurrency=concurrency,
            name="snapshots",
            log=self.log,
        )
        self.views: Batcher = Batcher(
            self._run_views,
            key=lambda w: w.volume,
            max_batch=max_batch,
            slots=slots,
            concurrency=concurrency,
            name="views",
            log=self.log,
        )
        self.deliveries: Batcher = Batcher(
            self._run_applies,
            key=lambda w: w.volume,
            max_batch=max_batch,
            slots=slots,
            concurrency=concurrency,
            name="deliveries",
            log=self.log,
        )

    def _default_client(self):
        import docker

        return docker.from_env(
            timeout=int(self.settings.docker_timeout), max_pool_size=self.calls.threads + 2
        )

    def close(self) -> None:
        self.calls.close()
        if self._client is not None:
            self._client.close()

    # ----- which homes exist

    def volume(self, user: str, server: str) -> str:
        """The home volume of ``user``'s server ``server``, as the spawner names it."""
        return object_name(self.settings.deployment, "home", user, server)

    async def existing(self) -> set[str]:
        """The names of every home volume of this deployment (one Docker call)."""
        prefix = f"{self.settings.deployment}-home-"

        def names() -> set[str]:
            volumes = self._client.api.volumes(filters={"name": prefix}).get("Volumes") or []
            return {v["Name"] for v in volumes if v.get("Name", "").startswith(prefix)}

        return await self._in_pool(names)

    async def _in_pool(self, fn, timeout: float | None = None):
        """``fn()`` in the helper's thread pool (Docker SDK calls, and reading what came
        back), with a time limit; Docker's errors as HelperUnavailable."""
        import docker
        import requests

        def call():
            if self._client is None:
                self._client = self._client_factory()
            return fn()

        try:
            return await self.calls.run(call, timeout=timeout)
        except docker.errors.ImageNotFound as e:
            raise HelperUnavailable(
                str(e),
                f"The helper image {self.settings.image} is not installed on this server:"
                " an admin must build it (images/build.sh homes-helper).",
            ) from None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise HelperUnavailable(f"{type(e).__name__}: {e}") from None
        except CallTimedOut as e:
            raise HelperUnavailable(str(e)) from None

    async def has_home(self, user: str, server: str) -> bool:
        return self.volume(user, server) in await self.existing()

    # ----- the operations

    async def snapshot(self, user: str, server: str, folder: str) -> HomeSnapshot:
        """The zip of ``~/<folder>`` in ``user``'s home of ``server``, running or not.
        Raises HomeMissing, HomeRefused (with homectl's message) or HelperUnavailable."""
        work = _Work("snapshot", user, server, self.volume(user, server), folder=folder)
        return await self.snapshots.submit(work)

    async def apply(
        self,
        user: str,
        server: str,
        dest: str,
        label: str,
        data: bytes,
        *,
        delivered: dict[str, str] | None = None,
    ) -> dict:
        """Merge the zip ``data`` into ``~/<dest>`` (material's rule: a file the teacher did
        not change since ``delivered`` says it was last delivered is skipped, the student's
        edits are kept); homectl's report, unchecked beyond its type (the caller cleans
        it). ``delivered``: the caller's record ``{path: sha256}`` (None: only the home's
        own record). Raises HomeMissing, HomeRefused or HelperUnavailable."""
        volume = self.volume(user, server)
        work = _Work(
            "apply", user, server, volume, dest=dest, label=label, data=data, delivered=delivered
        )
        return await self.deliveries.submit(work)

    async def view(self, user: str, server: str, path: str) -> HomeView:
        """A read-only look at ``~/<path>`` (``""``: the home itself) of ``user``'s home of
        ``server``, running or not: a folder's entries or a file's bytes. Raises
        HomeMissing, HomeRefused or HelperUnavailable."""
        work = _Work("view", user, server, self.volume(user, server), folder=path)
        return await self.views.submit(work)

    async def sweep(self) -> int:
        """Remove this service's helper containers left by an earlier run (the service
        stopped while one ran; never this run's own); how many. Called at start-up."""
        filters = {
            "label": [
                f"{HELPER_LABEL}={self.settings.deployment}",
                f"{SERVICE_LABEL}={self.settings.service}",
            ]
        }

        def sweep() -> int:
            removed = 0
            for container in self._client.containers.list(all=True, filters=filters):
                if container.labels.get(RUN_LABEL) != self.settings.run:
                    container.remove(v=True, force=True)
                    removed += 1
            return removed

        removed = await self._in_pool(sweep)
        if removed:
            self.log.info("Removed %d helper container(s) left by an earlier run", removed)
        return removed

    # ----- batches

    async def _split_missing(self, work: list[_Work]) -> tuple[list[_Work], dict[int, Exception]]:
        existing = await self.existing()
        present, missing = [], {}
        for i, w in enumerate(work):
            if w.volume in existing:
                present.append(w)
            else:
                missing[i] = HomeMissing(
                    f"{w.user} has no home folder for {w.server} yet (the class server was"
                    " never started), so there is nothing there to read or write yet."
                )
        return present, missing

    async def _run_job(
        self, op: str, work: list[_Work], items: list[dict], inputs: dict[str, bytes], caps
    ) -> _Run:
        job = {"version": 1, "op": op, "out": OUT_DIR, "items": items}
        homes = [(w.volume, op in ("snapshot", "view")) for w in work]
        budget = self.settings.time_limit(len(work)) + 4 * self.settings.docker_timeout
        started = self.clock()
        run = await self._in_pool(
            lambda: run_helper(self._client, self.settings, job, inputs, homes, caps),
            timeout=budget,
        )
        self.log.info(
            "Helper %s of %d home(s): exit %s in %.2f s",
            op,
            len(work),
            "timeout" if run.exit_code is None else run.exit_code,
            self.clock() - started,
        )
        if run.exit_code not in (0, None):
            self.log.warning("Helper %s exited %s: %s", op, run.exit_code, run.stderr.strip())
        return run

    def _outcome(self, w: _Work, result: dict | None, run: _Run) -> dict | Exception:
        if result is None:
            if run.exit_code is None:
                return HelperUnavailable(
                    "timed out",
                    f"The work on {w.user}'s home folder took too long and was stopped;"
                    " try again in a minute.",
                )
            return HelperUnavailable(f"no result (exit {run.exit_code}): {run.stderr[-300:]}")
        if not result["ok"]:
            return HomeRefused(result["message"] or "The helper refused.", result["status"])
        return result

    async def _run_snapshots(self, work: list[_Work]) -> list:
        present, outcomes = await self._split_missing(work)
        if present:
            items = [
                {"id": str(n), "home": f"{HOMES_DIR}/{n}", "folder": w.folder}
                for n, w in enumerate(present)
            ]
            caps = {f"{n}.zip": MAX_SNAPSHOT_BYTES for n in range(len(present))}
            run = await self._run_job("snapshot", present, items, {}, caps)

            def check() -> dict:
                """Blocking (reads, parses and hashes up to 110 MB a home): in the pool."""
                found = parse_results("snapshot", run.results, [i["id"] for i in items])
                checked = {}
                try:
                    for n, w in enumerate(present):
                        outcome = self._outcome(w, found.get(str(n)), run)
                        if isinstance(outcome, dict):
                            outcome = self._snapshot_of(w, outcome, run.outputs.get(f"{n}.zip"))
                        checked[id(w)] = outcome
                finally:
                    for spool in run.outputs.values():
                        spool.close()
                return checked

            by_work = await self._in_pool(check, timeout=60 + 10 * len(present))
        results = []
        for i, w in enumerate(work):
            results.append(outcomes[i] if i in outcomes else by_work[id(w)])
        return results

    def _snapshot_of(self, w: _Work, result: dict, spool: BinaryIO | None):
        if spool is None:
            return HelperUnavailable("the snapshot's zip did not come back")
        data = spool.read()
        try:
            check_snapshot_zip(data, result["files"])
        except ValueError as e:
            self.log.warning("Snapshot of %s/%s refused: %s", w.user, w.server, e)
            return HomeRefused(
                f"The snapshot of {w.folder} could not be used ({e}); nothing was recorded.", 500
            )
        return HomeSnapshot(
            data=data,
            sha256=hashlib.sha256(data).hexdigest(),
            files=result["files"],
            bytes=result["bytes"],
            skipped=result["skipped"],
            skipped_total=result["skipped_total"],
        )

    async def _run_views(self, work: list[_Work]) -> list:
        present, outcomes = await self._split_missing(work)
        by_work = {}
        if present:
            items = [
                {"id": str(n), "home": f"{HOMES_DIR}/{n}", "path": w.folder}
                for n, w in enumerate(present)
            ]
            caps = {f"{n}.bin": MAX_VIEW_BYTES for n in range(len(present))}
            run = await self._run_job("view", present, items, {}, caps)
            found = parse_results("view", run.results, [i["id"] for i in items])
            try:
                for n, w in enumerate(present):
                    outcome = self._outcome(w, found.get(str(n)), run)
                    if isinstance(outcome, dict):
                        outcome = _view_of(outcome, run.outputs.get(f"{n}.bin"))
                    by_work[id(w)] = outcome
            finally:
                for spool in run.outputs.values():
                    spool.close()
        return [outcomes[i] if i in outcomes else by_work[id(w)] for i, w in enumerate(work)]

    async def _run_applies(self, work: list[_Work]) -> list:
        present, outcomes = await self._split_missing(work)
        if present:
            inputs: dict[str, bytes] = {}
            items = []
            for n, w in enumerate(present):
                name = hashlib.sha256(w.data).hexdigest() + ".zip"
                inputs.setdefault(name, w.data)
                items.append(
                    {
                        "id": str(n),
                        "home": f"{HOMES_DIR}/{n}",
                        "dest": w.dest,
                        "label": w.label,
                        "zip": f"{IO_DIR}/in/{name}",
                        **({} if w.delivered is None else {"delivered": dict(w.delivered)}),
                    }
                )
            run = await self._run_job("apply", present, items, inputs, {})
            found = parse_results("apply", run.results, [i["id"] for i in items])
            by_work = {}
            for n, w in enumerate(present):
                outcome = self._outcome(w, found.get(str(n)), run)
                by_work[id(w)] = outcome["report"] if isinstance(outcome, dict) else outcome
        results = []
        for i, w in enumerate(work):
            results.append(outcomes[i] if i in outcomes else by_work[id(w)])
        return results
