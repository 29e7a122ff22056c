"""The sealed container of one grading run (docs/autograding.md).

A new container per run from the class's image, running the runner
(``python3 -I -m classhub_singleuser.grader``) as PID 1: no network, a read-only root with
size-capped tmpfs for ``/tmp`` and the work folder, no volume and no Docker socket, uid
1000:100, every capability dropped, no-new-privileges, memory equal to memory+swap, a
process and a CPU limit, an environment without any credential or grading marker. The
service talks to it over Docker's attach stream only: the secret and the plan on stdin
first, the tests only once the runner's signed ``student-done`` frame has arrived; its
stdout is read up to a cap and verified frame by frame (:mod:`.frames`). The run has a
wall-clock limit; the container is killed then and removed in every case.

:func:`run_sealed` is the blocking part (docker SDK); :class:`Autograder` runs it in a
:class:`common.blocking.BlockingCalls` pool and scores the result (:mod:`.scoring`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import secrets
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from common.blocking import BlockingCalls, CallTimedOut
from common.cputhreads import thread_env

from .frames import FrameReader
from .notebook import Plan
from .scoring import RunFacts, RunResult, score_run

log = logging.getLogger(__name__)

COMMAND = ["python3", "-I", "-m", "classhub_singleuser.grader"]
RUN_LABEL = "classhub.autograde"
WORKDIR = "/home/jovyan"
SECRET_BYTES = 32
_RECV = 1 << 16


@dataclasses.dataclass(frozen=True)
class Limits:
    """The limits of one run (the ``autograde_*`` traits, services/grades/autograde/settings.py)."""

    mem_limit: str = "1g"
    pids_limit: int = 256
    cpu_limit: float = 1.0
    timeout: float = 300.0  # the whole run, wall clock
    cell_timeout: float = 60.0  # each student cell and each test
    output_limit: int = 4 << 20  # bytes of stdout read
    tmpfs_size: str = "128m"  # each of /tmp and the work folder
    docker_timeout: float = 30.0
    deployment: str = "classhub"


def container_config(image: str, limits: Limits, run_id: str) -> dict[str, Any]:
    """Keyword arguments of ``client.containers.create`` for one sealed run."""
    tmpfs_opts = f"rw,nosuid,nodev,noexec,size={limits.tmpfs_size}"
    from docker.types import Ulimit

    return {
        "image": image,
        "command": list(COMMAND),
        "user": "1000:100",
        "working_dir": WORKDIR,
        # what Python and the kernel need, and nothing else: no token, no key, no grading
        # marker (nbgrader's NBGRADER_EXECUTION is the usual tell)
        "environment": {
            "HOME": WORKDIR,
            "LANG": "C.UTF-8",
            "PATH": "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin",
            "IPYTHONDIR": "/tmp/.ipython",
            "JUPYTER_RUNTIME_DIR": "/tmp/.jupyter-runtime",
            "MPLCONFIGDIR": "/tmp/.matplotlib",
            # numpy's threads as many as the CPU limit, as in a student's server
            **thread_env(limits.cpu_limit),
        },
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {
            "/tmp": f"{tmpfs_opts},mode=1777",
            WORKDIR: f"{tmpfs_opts},mode=0700,uid=1000,gid=100",
        },
        "mounts": [],
        "volumes": None,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "privileged": False,
        "ipc_mode": "private",
        "mem_limit": limits.mem_limit,
        "memswap_limit": limits.mem_limit,
        "pids_limit": limits.pids_limit,
        "nano_cpus": int(limits.cpu_limit * 1e9),
        "ulimits": [Ulimit(name="core", soft=0, hard=0)],
        "stdin_open": True,
        "tty": False,
        "labels": {RUN_LABEL: limits.deployment, f"{RUN_LABEL}.run": run_id},
        "log_config": {"type": "json-file", "config": {"max-size": "1m", "max-file": "1"}},
        "auto_remove": False,
        "detach": True,
    }


def message(data: bytes) -> bytes:
    """One input message for the runner: ``<length>\\n<bytes>``."""
    return str(len(data)).encode() + b"\n" + data


class Demux:
    """Docker's multiplexed attach stream (no tty): 8-byte headers ``[stream, 0, 0, 0,
    size(4, big-endian)]``; yields ``(stream, payload)`` as they complete."""

    def __init__(self):
        self._buffer = bytearray()

    def feed(self, data: bytes):
        self._buffer += data
        while len(self._buffer) >= 8:
            stream = self._buffer[0]
            (size,) = struct.unpack(">I", bytes(self._buffer[4:8]))
            if len(self._buffer) < 8 + size:
                return
            payload = bytes(self._buffer[8 : 8 + size])
            del self._buffer[: 8 + size]
            yield stream, payload


@dataclasses.dataclass
class SealedRun:
    frames: list[dict]
    facts: RunFacts


def run_sealed(
    client,
    image: str,
    limits: Limits,
    plan: Plan,
    *,
    secret: bytes | None = None,
    run_id: str = "",
    clock: Callable[[], float] = time.monotonic,
) -> SealedRun:
    """Blocking: one sealed run of ``plan`` in a new container of ``image``, start to end;
    the container is removed in every case."""
    import docker
    import requests

    secret = secret or secrets.token_bytes(SECRET_BYTES)
    run_id = run_id or secrets.token_hex(8)
    plan_json = json.dumps(
        plan.runner_plan(cell_timeout=limits.cell_timeout, run_timeout=limits.timeout)
    ).encode()
    tests_json = json.dumps(plan.runner_tests(timeout=limits.cell_timeout)).encode()
    reader = FrameReader(secret, [c.key for c in plan.cells], [t.id for t in plan.tests])
    timed_out = capped = False
    container = client.containers.create(**container_config(image, limits, run_id))
    try:
        sock = client.api.attach_socket(
            container.id, params={"stdin": 1, "stdout": 1, "stderr": 0, "stream": 1}
        )
        raw: socket.socket = getattr(sock, "_sock", sock)
        try:
            container.start()
            raw.settimeout(0.5)
            try:
                raw.sendall(message(secret.hex().encode()) + message(plan_json))
            except OSError:
                pass  # the runner ended at once (no grader in the image): read what it said
            deadline = clock() + limits.timeout
            demux = Demux()
            received = 0
            tests_sent = False
            while not reader.problem and not reader.ended:
                if clock() > deadline:
                    timed_out = True
                    break
                try:
                    chunk = raw.recv(_RECV)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                for stream, data in demux.feed(chunk):
                    if stream != 1:
                        continue
                    received += len(data)
                    if received > limits.output_limit:
                        capped = True
                        data = data[: max(0, len(data) - (received - limits.output_limit))]
                    reader.feed(data)
                if capped:
                    break
                if not tests_sent and reader.saw("student-done"):
                    tests_sent = True
                    try:
                        raw.sendall(message(tests_json))
                    except OSError:
                        break
            if not (timed_out or capped or reader.problem):
                reader.finish()
        finally:
            try:
                raw.close()
            except OSError:
                pass
        exit_code: int | None = None
        oom = False
        if timed_out or capped or reader.problem:
            _kill(container)
        try:
            status = container.wait(timeout=limits.docker_timeout)
            exit_code = int(status.get("StatusCode", -1))
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            _kill(container)
        try:
            container.reload()
            oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
        except docker.errors.DockerException:
            pass
        if exit_code not in (0, None) and not reader.frames:
            tail = container.logs(stdout=False, stderr=True, tail=5)[-1000:]
            log.warning("autograde run %s: the runner said: %r", run_id, tail)
        facts = RunFacts(
            problem=reader.problem,
            timed_out=timed_out,
            output_capped=capped,
            oom_killed=oom,
            exit_code=exit_code,
        )
        return SealedRun(list(reader.frames), facts)
    finally:
        try:
            container.remove(v=True, force=True)
        except docker.errors.DockerException as e:
            log.warning("Could not remove autograde container %s: %s", container.short_id, e)


def _kill(container) -> None:
    import docker

    try:
        container.kill()
    except docker.errors.APIError as e:  # it ended by itself meanwhile: nothing to kill
        log.debug("autograde container %s: kill: %s", container.short_id, e)


def remove_leftovers(client, deployment: str) -> int:
    """Blocking: remove every grading container of ``deployment`` (a service that died
    mid-run leaves its container; call before the first run). How many were removed."""
    import docker

    removed = 0
    for container in client.containers.list(all=True, filters={"label": RUN_LABEL}):
        if container.labels.get(RUN_LABEL) != deployment:
            continue
        try:
            container.remove(v=True, force=True)
            removed += 1
        except docker.errors.DockerException as e:
            log.warning("Could not remove autograde container %s: %s", container.short_id, e)
    return removed


class Autograder:
    """Sealed runs from async code: ``await autograder.grade(image, plan)``."""

    def __init__(
        self,
        limits: Limits,
        *,
        concurrency: int = 2,
        client_factory: Callable[[], Any] | None = None,
        log: logging.Logger | None = None,
    ):
        self.limits = limits
        self.log = log or logging.getLogger(__name__)
        self._client_factory = client_factory or self._default_client
        self._client = None
        self.calls = BlockingCalls(
            threads=concurrency,
            timeout=limits.timeout + 4 * limits.docker_timeout,
            name="autograde-docker",
        )
        self._slots = asyncio.Semaphore(concurrency)

    def _default_client(self):
        import docker

        return docker.from_env(timeout=int(self.limits.docker_timeout))

    def close(self) -> None:
        self.calls.close()
        if self._client is not None:
            self._client.close()

    async def remove_leftovers(self) -> int:
        """Remove the grading containers of this deployment a stopped run left (call once,
        before the first run: a live run of another process of the same deployment would
        be removed too)."""

        def call() -> int:
            if self._client is None:
                self._client = self._client_factory()
            return remove_leftovers(self._client, self.limits.deployment)

        return await self.calls.run(call)

    async def grade(self, image: str, plan: Plan) -> RunResult:
        """One sealed run of ``plan`` in ``image``, scored. Docker's failures give a result
        with every test scored 0 and the reason, never an exception a worker must know."""
        import docker
        import requests

        def call() -> SealedRun:
            if self._client is None:
                self._client = self._client_factory()
            return run_sealed(self._client, image, self.limits, plan)

        async with self._slots:
            try:
                run = await self.calls.run(call)
            except docker.errors.ImageNotFound:
                run = SealedRun([], RunFacts(error=f"the image {image} is not on this server"))
            except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
                run = SealedRun([], RunFacts(error=f"Docker: {type(e).__name__}: {e}"[:300]))
            except CallTimedOut as e:
                run = SealedRun([], RunFacts(error=str(e)))
        result = score_run(plan, run.frames, run.facts)
        if not result.complete:
            self.log.info("autograde run incomplete: %s", result.reason)
        return result
